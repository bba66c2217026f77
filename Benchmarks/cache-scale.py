#!/usr/bin/env python3
"""The cluster cache at n and 8n objects: time to ready, RSS per object, CPU per event,
and admission latency during a burst of events.

For each size (default 5,000 and 40,000 Secrets), laid out in one namespace and again
spread over 500 namespaces, it fills the stand-in API server (Tests/Scripts/fake_apiserver.py),
starts `serve --kubeconfig` against it and measures:
- time to ready: from the start of the process to /readyz 200;
- RSS per object: (RSS once settled - RSS following an empty namespace) / objects;
- CPU per event: the webhook's user+system CPU time (/proc/PID/stat) over a burst of
  2,000 MODIFIED events, less the idle rate, divided by 2,000;
- p99 of 200 /validate reviews (the 2.5 KB Kafka fixture, one kept-alive connection)
  sent while the burst is applied.

Usage: python3 Benchmarks/cache-scale.py .build/release/atlas-stream-webhook [N]
"""
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")
BURST = 2_000


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class APIServer:
    def __init__(self, work):
        self.process = subprocess.Popen([sys.executable, f"{ROOT}/Tests/Scripts/fake_apiserver.py", "--cert", f"{work}/cert.pem",
                                         "--key", f"{work}/key.pem", "--token-file", f"{work}/token"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline().split()[1])

    def send(self, command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if answer.startswith(("error", "unknown")):
            sys.exit(f"stand-in API server: {answer}")
        return answer

    def fill(self, objects, namespaces, prefix="s"):
        per = objects // namespaces
        for ns in range(namespaces):
            self.send({"op": "bulk_secrets", "namespace": f"team-{ns:03d}", "count": per, "prefix": prefix,
                       "labelled": False, "data_bytes": 64, "annotation_bytes": 0})

    def stop(self):
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait()


class Server:
    def __init__(self, binary, work, extra):
        self.work = work
        self.started = time.monotonic()
        self.process = subprocess.Popen([binary, "serve", "--dev", "--dev-cert-dir", f"{work}/dev", "--listen", "127.0.0.1:0",
                                         "--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                                         "--kubeconfig", f"{work}/kubeconfig", "--loops", "1", "--log-level", "info"] + extra,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        while self.port is None:
            line = self.process.stderr.readline()
            if not line:
                sys.exit("serve did not start")
            match = re.search(r'"address":"127\.0\.0\.1:(\d+)"', line)
            self.port = match and int(match.group(1))
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
        self.context = ssl.create_default_context(cafile=f"{work}/dev/ca.crt")

    def connection(self):
        return http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=30)

    def wait_ready(self):
        while time.monotonic() - self.started < 600:
            c = self.connection()
            try:
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            finally:
                c.close()
            time.sleep(0.05)
        sys.exit("not ready after 600 s")

    def settled_rss(self):
        last, steady = -1, 0
        while steady < 4:
            time.sleep(0.5)
            now = rss_kib(self.process.pid)
            steady = steady + 1 if abs(now - last) < 64 else 0
            last = now
        return last

    def stop(self):
        self.process.terminate()
        self.process.wait()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def measure(binary, work, objects, namespaces, baseline_rss):
    api = APIServer(work)
    write_kubeconfig(work, api.port)
    api.fill(objects, namespaces)
    server = Server(binary, work, [])
    try:
        ready = server.wait_ready()
        rss = server.settled_rss()
        review = open(f"{ROOT}/Tests/Fixtures/review-kafka.json", "rb").read()
        # The idle rate (bookmarks, watchdog), then the burst: 2,000 Secrets modified,
        # spread as the objects are.
        idle_start, idle_cpu = time.monotonic(), cpu_seconds(server.process.pid)
        time.sleep(2)
        idle_rate = (cpu_seconds(server.process.pid) - idle_cpu) / (time.monotonic() - idle_start)
        latencies = []

        def reviews():
            c = server.connection()
            for _ in range(200):
                t = time.perf_counter()
                c.request("POST", "/validate", body=review, headers={"Content-Type": "application/json"})
                c.getresponse().read()
                latencies.append((time.perf_counter() - t) * 1000)
                time.sleep(0.002)
            c.close()

        before = cpu_seconds(server.process.pid)
        started = time.monotonic()
        sender = threading.Thread(target=reviews)
        sender.start()
        per = max(1, BURST // namespaces)
        sent = 0
        for ns in range(namespaces):
            count = min(per, BURST - sent)
            if count <= 0:
                break
            api.send({"op": "bulk_secrets", "namespace": f"team-{ns:03d}", "count": count, "prefix": "s",
                      "labelled": True, "data_bytes": 64, "annotation_bytes": 0})
            sent += count
        # The events are applied once the process's CPU stops moving.
        last, quiet = cpu_seconds(server.process.pid), 0
        while quiet < 3:
            time.sleep(0.5)
            now = cpu_seconds(server.process.pid)
            quiet = quiet + 1 if now - last <= idle_rate * 0.5 + 0.011 else 0
            last = now
        sender.join()
        elapsed = time.monotonic() - started
        burst_cpu = cpu_seconds(server.process.pid) - before - idle_rate * elapsed
        return {"objects": objects, "namespaces": namespaces, "ready_s": ready, "rss_kib": rss,
                "bytes_per_object": (rss - baseline_rss) * 1024 / objects if baseline_rss else None,
                "cpu_ms_per_event": burst_cpu * 1000 / sent, "events": sent,
                "p99_ms": percentile(latencies, 0.99), "p50_ms": percentile(latencies, 0.5)}
    finally:
        server.stop()
        api.stop()


def write_kubeconfig(work, port):
    with open(f"{work}/kubeconfig", "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: bench
contexts: [{{name: bench, context: {{cluster: stand-in, user: bench}}}}]
clusters: [{{name: stand-in, cluster: {{server: "https://localhost:{port}", certificate-authority: "{work}/cert.pem"}}}}]
users: [{{name: bench, user: {{token: bench-token}}}}]
""")


def prepare(binary):
    """A scratch directory with the stand-in's certificate and token, and the RSS of the
    server with the same threads and no objects: the baseline."""
    work = tempfile.mkdtemp(prefix="cache-scale-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    with open(f"{work}/token", "w") as f:
        f.write("bench-token")
    api = APIServer(work)
    write_kubeconfig(work, api.port)
    empty = Server(binary, work, ["--watch-namespaces", "nobody-here"])
    empty.wait_ready()
    baseline = empty.settled_rss()
    empty.stop()
    api.stop()
    return work, baseline


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000
    work, baseline = prepare(binary)
    print(f"baseline RSS (no objects): {baseline} KiB")
    print(f"{'objects':>8} {'namespaces':>10} {'ready s':>8} {'RSS KiB':>8} {'B/object':>9} {'CPU ms/event':>13} {'p50 ms':>7} {'p99 ms':>7}")
    results = []
    for namespaces in (1, 500):
        for objects in (n, 8 * n):
            r = measure(binary, work, objects, namespaces, baseline)
            results.append(r)
            print(f"{r['objects']:>8} {r['namespaces']:>10} {r['ready_s']:>8.2f} {r['rss_kib']:>8} {r['bytes_per_object']:>9.0f} "
                  f"{r['cpu_ms_per_event']:>13.4f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}", flush=True)
    for namespaces in (1, 500):
        small, large = [r for r in results if r["namespaces"] == namespaces]
        print(f"{namespaces} namespace(s): 8n/n time to ready {large['ready_s'] / small['ready_s']:.1f}x (target <= 10), "
              f"CPU per event {large['cpu_ms_per_event'] / max(small['cpu_ms_per_event'], 1e-9):.2f}x (target <= 1.5)")


if __name__ == "__main__":
    main()
