#!/usr/bin/env python3
"""Soak: a million mixed requests against the release server while its resident memory
is sampled every second. Mixed: /validate and /mutate, valid and denied reviews, a
malformed body, on kept-alive connections (wrk -c16) and on a new connection per request
(wrk -c4, Connection: close) at the same time. Loopback only; bounded in count and time.

Usage: Benchmarks/soak.py PATH/TO/atlas-stream-webhook [REQUESTS]
Prints the RSS series and whether it stayed within 10 % after warm-up. Needs wrk.
"""
import os
import re
import subprocess
import sys
import threading
import time

from harness import rss_mib, start_server

BINARY = sys.argv[1]
TARGET = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")

LUA = r"""
local bodies = {}
local paths = {"/validate", "/mutate", "/validate", "/validate", "/mutate", "/validate"}
local files = {"review-kafka.json", "review-kafka-denied.json", "review-instance.json",
               "review-kafka-plaintext.json", "review-cluster.json", "review-sample.json"}
for i, name in ipairs(files) do
  local f = io.open("%s/" .. name, "r"); bodies[i] = f:read("*a"); f:close()
end
bodies[#bodies + 1] = "{not json"
paths[#paths + 1] = "/validate"
local n = 0
request = function()
  n = n + 1
  local i = (n %% #bodies) + 1
  return wrk.format("POST", paths[i], {["Content-Type"] = "application/json"}, bodies[i])
end
"""




def main():
    server, port, work = start_server(BINARY)
    with open(f"{work}/mixed.lua", "w") as f:
        f.write(LUA % FIXTURES)

    totals = {"keep-alive": 0, "new-connection": 0, "non2xx": 0}
    lock = threading.Lock()

    def load(name, extra):
        while True:
            with lock:
                if totals["keep-alive"] + totals["new-connection"] >= TARGET:
                    return
            out = subprocess.run(["wrk", "-t1", "-d5s", "-s", f"{work}/mixed.lua"] + extra + [f"https://127.0.0.1:{port}/"],
                                 capture_output=True, text=True).stdout
            done = re.search(r"(\d+) requests in", out)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            with lock:
                totals[name] += int(done.group(1)) if done else 0
                totals["non2xx"] += int(non2xx.group(1)) if non2xx else 0

    threads = [threading.Thread(target=load, args=("keep-alive", ["-c16"])),
               threading.Thread(target=load, args=("new-connection", ["-c4", "-H", "Connection: close"]))]
    start = time.time()
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads) and time.time() - start < 600:
        time.sleep(1)
        samples.append(rss_mib(server.pid))
    for t in threads:
        t.join()
    time.sleep(1)
    after = rss_mib(server.pid)
    server.terminate()
    server.wait(timeout=40)

    requests = totals["keep-alive"] + totals["new-connection"]
    steady = samples[len(samples) // 5:] or samples
    low, high = min(steady), max(steady)
    print(f"requests: {requests} ({totals['keep-alive']} kept-alive, {totals['new-connection']} new connections) "
          f"in {time.time() - start:.0f} s; non-2xx: {totals['non2xx']} (the malformed bodies, 400 by design)")
    print("RSS MiB each second: " + " ".join(f"{s:.1f}" for s in samples))
    print(f"after warm-up: min {low:.1f} MiB, max {high:.1f} MiB ({(high - low) / low * 100:.1f} % spread); "
          f"after the load: {after:.1f} MiB")
    return 0 if high <= low * 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
