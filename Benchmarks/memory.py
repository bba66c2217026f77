#!/usr/bin/env python3
"""Resident memory of the release server: idle, holding N idle TLS connections, and
after M requests of wrk load. Loopback only; bounded in count and time.

Usage: Benchmarks/memory.py PATH/TO/atlas-stream-webhook [IDLE_CONNECTIONS] [REQUESTS]
Needs wrk (apt-get install wrk) and openssl.
"""
import os
import re
import socket
import ssl
import subprocess
import sys
import time

from harness import rss_mib, start_server

BINARY = sys.argv[1]
IDLE = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
REQUESTS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
HERE = os.path.dirname(os.path.abspath(__file__))
REVIEW = os.path.join(os.path.dirname(HERE), "Tests", "Fixtures", "review-kafka.json")




def main():
    server, port, work = start_server(BINARY)
    time.sleep(0.5)
    print(f"idle: {rss_mib(server.pid):.1f} MiB")

    context = ssl.create_default_context(cafile=f"{work}/tls.crt")
    held = []
    for _ in range(IDLE):
        raw = socket.create_connection(("127.0.0.1", port))
        held.append(context.wrap_socket(raw, server_hostname="localhost"))
    time.sleep(0.5)
    with_idle = rss_mib(server.pid)
    print(f"with {IDLE} idle TLS connections: {with_idle:.1f} MiB")
    for s in held:
        s.close()
    time.sleep(0.5)

    lua = f"{work}/post.lua"
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nlocal f = io.open("%s", "r"); wrk.body = f:read("*a"); f:close()\n'
                'wrk.headers["Content-Type"] = "application/json"\n' % REVIEW)
    done = 0
    started = time.time()
    while done < REQUESTS and time.time() - started < 300:
        out = subprocess.run(["wrk", "-t1", "-c16", "-d5s", "-s", lua, f"https://127.0.0.1:{port}/validate"],
                             capture_output=True, text=True).stdout
        match = re.search(r"(\d+) requests in", out)
        done += int(match.group(1)) if match else 0
    time.sleep(0.5)
    print(f"after {done} requests: {rss_mib(server.pid):.1f} MiB")
    server.terminate()
    server.wait(timeout=40)


if __name__ == "__main__":
    main()
