#!/usr/bin/env python3
"""Memory of the cluster cache per cached object (SPEC section 11, README "Cluster lookups").

Fills the stand-in API server (Tests/Scripts/fake_apiserver.py) with 10,000 Secrets (half
labelled atlas.mongodb.com/type=credentials, each with username and password) and 5,000
Kafka AtlasStreamConnections over 50 namespaces, then starts the server twice with
--kubeconfig pointing at it: once following every namespace, once following a namespace
that holds nothing (the same five reflector threads, no objects). Once /readyz answers
200 and the RSS has settled, the difference of the two RSS figures over the number of
cached objects is the memory per object.

Usage: python3 Benchmarks/cache-memory.py .build/release/atlas-stream-webhook [SECRETS CONNECTIONS]
"""
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    binary = sys.argv[1]
    secrets = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 5_000
    work = tempfile.mkdtemp(prefix="cache-memory-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    with open(f"{work}/token", "w") as f:
        f.write("bench-token")
    apiserver = subprocess.Popen([sys.executable, f"{ROOT}/Tests/Scripts/fake_apiserver.py", "--cert", f"{work}/cert.pem",
                                  "--key", f"{work}/key.pem", "--token-file", f"{work}/token"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(apiserver.stdout.readline().split()[1])

    def send(command):
        apiserver.stdin.write(json.dumps(command) + "\n")
        apiserver.stdin.flush()
        return apiserver.stdout.readline()

    for i in range(secrets):
        metadata = {"name": f"kafka-credentials-{i:05d}", "namespace": f"team-{i % 50:02d}"}
        if i % 2 == 0:
            metadata["labels"] = {"atlas.mongodb.com/type": "credentials"}
        send({"op": "put", "object": {"apiVersion": "v1", "kind": "Secret", "metadata": metadata,
                                      "data": {"username": "dXNlcm5hbWUtMDAwMDA=", "password": "cGFzc3dvcmQtMDAwMDAtMDAwMDAtMDAwMDA="}}})
    for i in range(connections):
        send({"op": "put", "object": {
            "apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasStreamConnection",
            "metadata": {"name": f"kafka-connection-{i:05d}", "namespace": f"team-{i % 50:02d}"},
            "spec": {"name": f"kafka-connection-{i:05d}", "type": "Kafka",
                     "kafkaConfig": {"bootstrapServers": "broker-1:9092,broker-2:9092",
                                     "authentication": {"mechanism": "SCRAM-512", "credentials": {"name": f"kafka-credentials-{i:05d}"}},
                                     "security": {"protocol": "SSL", "certificate": {"name": "kafka-ca"}}}}}})
    with open(f"{work}/kubeconfig", "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: bench
contexts: [{{name: bench, context: {{cluster: stand-in, user: bench}}}}]
clusters: [{{name: stand-in, cluster: {{server: "https://localhost:{port}", certificate-authority: "{work}/cert.pem"}}}}]
users: [{{name: bench, user: {{token: bench-token}}}}]
""")

    def measure(extra):
        server = subprocess.Popen([binary, "serve", "--dev", "--dev-cert-dir", f"{work}/dev", "--listen", "127.0.0.1:0",
                                   "--kubeconfig", f"{work}/kubeconfig", "--loops", "2", "--log-level", "info"] + extra,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            port = None
            while port is None:
                line = server.stderr.readline()
                if not line:
                    sys.exit("serve did not start")
                match = re.search(r'"address":"127\.0\.0\.1:(\d+)"', line)
                port = match and int(match.group(1))
            context = ssl.create_default_context(cafile=f"{work}/dev/ca.crt")
            started = time.time()
            while time.time() - started < 120:
                try:
                    with urllib.request.urlopen(f"https://localhost:{port}/readyz", context=context) as answer:
                        if answer.status == 200:
                            break
                except urllib.error.HTTPError:
                    time.sleep(0.2)
            synced = time.time() - started
            # The RSS once it stops moving (lists parsed, their buffers freed).
            last, steady = -1, 0
            while steady < 4:
                time.sleep(0.5)
                now = rss_kib(server.pid)
                steady = steady + 1 if abs(now - last) < 64 else 0
                last = now
            with urllib.request.urlopen(f"https://localhost:{port}/metrics", context=context) as answer:
                objects = [l for l in answer.read().decode().splitlines() if l.startswith("atlas_stream_webhook_cache_objects")]
            print(f"{' '.join(extra) or 'all namespaces'}: ready after {synced:.1f} s, RSS {last} KiB; " + ", ".join(
                l.split("resource=")[1].replace('"}', "=").replace('"', "") for l in objects))
            return last, synced
        finally:
            server.terminate()
            server.wait()

    full, full_seconds = measure([])
    empty, _ = measure(["--watch-namespaces", "nobody-here"])
    apiserver.stdin.close()
    apiserver.terminate()
    objects = secrets + secrets // 2 + connections  # metadata, labelled key names, connections
    print(f"cached: {secrets} Secrets (metadata) + {secrets // 2} labelled Secrets (key names) + {connections} connections")
    print(f"RSS with the cache full: {full} KiB; following an empty namespace: {empty} KiB")
    print(f"per cached object: {(full - empty) * 1024 / objects:.0f} bytes ({objects} records);"
          f" per cluster object ({secrets + connections}): {(full - empty) * 1024 / (secrets + connections):.0f} bytes")


if __name__ == "__main__":
    main()
