#!/usr/bin/env python3
"""The audit at n and 8n AtlasStreamConnections: memory per object, CPU per event, and the
time until a change reaches the PolicyReport.

For each size (default 2,000 and 16,000 connections), in one namespace and again spread
over 100 namespaces, it fills the stand-in API server (Tests/Scripts/fake_apiserver.py)
with n Kafka connections, each with its own credentials Secret (creds-I) and the shared
certificate Secret, starts `serve --kubeconfig` against it (audit and PolicyReports on)
and measures:
- RSS per connection: (RSS once settled - RSS with no objects) / n, the connection's
  Secret and its share of the audit's state and reports included;
- CPU per event: the webhook's user+system CPU time (/proc/PID/stat) over a burst of
  20,000 Secret changes (2,000 Secrets changed ten times: enough CPU time for the
  clock's 10 ms ticks), each of which makes the audit judge its connection again, less
  the idle rate, divided by 20,000;
- report latency: from deleting one connection's Secret to its result turning to fail
  in the PolicyReport (`cluster.missingReferences: deny`).

Usage: python3 Benchmarks/audit-scale.py .build/release/atlas-stream-webhook [N]
"""
import importlib.util
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("cache_scale", os.path.join(ROOT, "Benchmarks", "cache-scale.py"))
cache_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cache_scale)
APIServer, Server, write_kubeconfig = cache_scale.APIServer, cache_scale.Server, cache_scale.write_kubeconfig
cpu_seconds, rss_kib = cache_scale.cpu_seconds, cache_scale.rss_kib
BURST = 2_000
ROUNDS = 10


def connection(namespace, i):
    return {"apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasStreamConnection",
            "metadata": {"name": f"kafka-{i}", "namespace": namespace, "uid": f"uid-{namespace}-{i}"},
            "spec": {"name": f"kafka-{i}", "type": "Kafka",
                     "kafkaConfig": {"bootstrapServers": "broker-1:9092,broker-2:9092",
                                     "authentication": {"mechanism": "SCRAM-256", "credentials": {"name": f"creds-{i}"}},
                                     "security": {"protocol": "SSL", "certificate": {"name": "ca"}},
                                     "config": {"auto.offset.reset": "earliest"}}}}


def fill(api, objects, namespaces):
    per = objects // namespaces
    for ns in range(namespaces):
        namespace = f"team-{ns:03d}"
        api.send({"op": "bulk_secrets", "namespace": namespace, "count": per, "prefix": "creds", "labelled": True,
                  "data_bytes": 64, "annotation_bytes": 0})
        api.send({"op": "put", "object": {"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "ca", "namespace": namespace,
                                                       "labels": {"atlas.mongodb.com/type": "credentials"}},
                                          "data": {"certificate": "UEVN"}}})
        for start in range(0, per, 1000):
            api.send({"op": "bulk_put", "objects": [connection(namespace, i) for i in range(start, min(per, start + 1000))]})


def report_result(api, namespace, name):
    report = json.loads(api.send({"op": "get", "resource": "policyreports", "namespace": namespace,
                                  "name": "atlas-stream-webhook"}))
    for result in (report or {}).get("results", []):
        if result["resources"][0]["name"] == name:
            return result["result"]
    return None


def measure(binary, work, objects, namespaces, baseline_rss):
    api = APIServer(work)
    write_kubeconfig(work, api.port)
    fill(api, objects, namespaces)
    with open(f"{work}/config.yaml", "w") as f:
        f.write("cluster:\n  missingReferences: deny\naudit:\n  leaseNamespace: webhook\n")
    server = Server(binary, work, ["--config", f"{work}/config.yaml"])
    try:
        ready = server.wait_ready()
        # The first full pass and the reports written: every namespace has its report.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            reports = json.loads(api.send({"op": "objects", "resource": "policyreports"}))
            if len(reports) == namespaces:
                break
            time.sleep(0.2)
        rss = server.settled_rss()
        idle_start, idle_cpu = time.monotonic(), cpu_seconds(server.process.pid)
        time.sleep(2)
        idle_rate = (cpu_seconds(server.process.pid) - idle_cpu) / (time.monotonic() - idle_start)
        before = cpu_seconds(server.process.pid)
        started = time.monotonic()
        per = max(1, BURST // namespaces)
        sent = 0
        for round in range(ROUNDS):
            this_round = 0
            for ns in range(namespaces):
                count = min(per, BURST - this_round)
                if count <= 0:
                    break
                # The same Secrets again, modified (a new resourceVersion each).
                api.send({"op": "bulk_secrets", "namespace": f"team-{ns:03d}", "count": count, "prefix": "creds",
                          "labelled": True, "data_bytes": 64 + 4 * (round + 1), "annotation_bytes": 0})
                this_round += count
            sent += this_round
        last, quiet = cpu_seconds(server.process.pid), 0
        while quiet < 3:
            time.sleep(0.5)
            now = cpu_seconds(server.process.pid)
            quiet = quiet + 1 if now - last <= idle_rate * 0.5 + 0.011 else 0
            last = now
        elapsed = time.monotonic() - started
        burst_cpu = cpu_seconds(server.process.pid) - before - idle_rate * elapsed
        # One Secret deleted: how long until the report says so.
        deleted = time.monotonic()
        api.send({"op": "delete", "kind": "Secret", "namespace": "team-000", "name": "creds-1"})
        while report_result(api, "team-000", "kafka-1") != "fail" and time.monotonic() - deleted < 60:
            time.sleep(0.02)
        latency = time.monotonic() - deleted
        return {"objects": objects, "namespaces": namespaces, "ready_s": ready, "rss_kib": rss,
                "bytes_per_object": (rss - baseline_rss) * 1024 / objects,
                "cpu_ms_per_event": burst_cpu * 1000 / sent, "report_latency_s": latency}
    finally:
        server.stop()
        api.stop()


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    work, baseline = cache_scale.prepare(binary)
    print(f"baseline RSS (no objects): {baseline} KiB")
    print(f"{'objects':>8} {'namespaces':>10} {'ready s':>8} {'RSS KiB':>8} {'B/object':>9} {'CPU ms/event':>13} {'report s':>9}")
    results = []
    for namespaces in (1, 100):
        for objects in (n, 8 * n):
            r = measure(binary, work, objects, namespaces, baseline)
            results.append(r)
            print(f"{r['objects']:>8} {r['namespaces']:>10} {r['ready_s']:>8.2f} {r['rss_kib']:>8} {r['bytes_per_object']:>9.0f} "
                  f"{r['cpu_ms_per_event']:>13.4f} {r['report_latency_s']:>9.2f}", flush=True)
    for namespaces in (1, 100):
        small, large = [r for r in results if r["namespaces"] == namespaces]
        print(f"{namespaces} namespace(s): 8n/n CPU per event {large['cpu_ms_per_event'] / max(small['cpu_ms_per_event'], 1e-9):.2f}x "
              f"(target <= 1.5), memory per object {small['bytes_per_object']:.0f} and {large['bytes_per_object']:.0f} B")


if __name__ == "__main__":
    main()
