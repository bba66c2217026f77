#!/usr/bin/env python3
"""Writes Benchmarks/link-order.txt, the symbol ordering file the release
link hands to lld: the functions a serving process runs, hottest first.

Why: the kernel maps a file-backed page together with its neighbours (64 KiB around each
fault), so a stdlib function run once at startup keeps 64 KiB of code resident. With the
functions that run laid out together, those windows hold code that is used.

Usage (from the repository root, after a static release build):
    swift build -c release --static-swift-stdlib --product atlas-stream-webhook
    Benchmarks/link-order.py [BINARY]

It runs the server under valgrind's callgrind (on a copy without DWARF, which this
valgrind cannot read), sends it every kind of request the server sees (keep-alive
/validate and /mutate, the 2.2 MB review of Benchmarks/reviews.py, 256 connections
at once, a new and a resumed TLS connection per request, health, readiness,
metrics and the error rows), stops it with SIGTERM and lists what ran in the binary.
Regenerate after changing the request path or the toolchain, then delete the binary:
SwiftPM does not track this file as a link input. A stale file only costs memory, never
correctness (names not found are ignored).
"""
import collections
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.dont_write_bytecode = True  # no __pycache__ left in Benchmarks/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reviews  # noqa: E402  (Benchmarks/reviews.py, beside this file)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "Benchmarks/link-order.txt")


def start(binary, work, profile):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", f"{work}/tls.key", "-out", f"{work}/tls.crt", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no", f"--callgrind-out-file={profile}",
         binary, "serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--shutdown-delay", "0s",
         "--tls-cert", f"{work}/tls.crt", "--tls-key", f"{work}/tls.key"],
        stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        match = re.search(r'"address":"127\.0\.0\.1:(\d+)"', line)
        if match:
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, int(match.group(1))
    raise RuntimeError("the server exited before it listened")


def drive(port, work):
    """Every kind of request, a few times each: valgrind runs them 50 times slower."""
    context = ssl.create_default_context(cafile=f"{work}/tls.crt")
    kafka = open(os.path.join(ROOT, "Tests/Fixtures/review-kafka.json"), "rb").read()
    denied = open(os.path.join(ROOT, "Tests/Fixtures/review-kafka-denied.json"), "rb").read()
    large = reviews.review(reviews.SIZES["review-2.2mb.json"])
    json_headers = {"Content-Type": "application/json"}

    def connection():
        return http.client.HTTPSConnection("localhost", port, context=context, timeout=600)

    kept = connection()
    for _ in range(200):
        for path, body in [("/validate", kafka), ("/mutate", kafka), ("/validate", denied), ("/mutate", denied)]:
            kept.request("POST", path, body, json_headers)
            kept.getresponse().read()
    for path in ["/healthz", "/readyz", "/metrics", "/nothing-here"]:
        kept.request("GET", path)
        kept.getresponse().read()
    for path in ["/validate", "/mutate"]:
        kept.request("POST", path, large, json_headers)
        kept.getresponse().read()
    kept.close()

    # Error rows: each closes its connection.
    for method, path, body, headers in [("POST", "/validate", b'{"x":', json_headers),
                                        ("POST", "/validate", kafka, {"Content-Type": "text/plain"}),
                                        ("PUT", "/validate", kafka, json_headers),
                                        ("GET", "/healthz", None, {f"X-Field-{i}": "x" for i in range(120)})]:
        c = connection()
        try:
            c.request(method, path, body, headers)
            c.getresponse().read()
        except (ConnectionError, http.client.HTTPException):
            pass  # the server may close before the whole request is sent
        c.close()

    # Many connections at once, then a new (and a resumed) TLS connection per request.
    many = [connection() for _ in range(256)]
    for c in many:
        c.request("POST", "/validate", kafka, json_headers)
    for c in many:
        c.getresponse().read()
        c.close()
    session = None
    for _ in range(100):
        raw = socket.create_connection(("127.0.0.1", port))
        tls = context.wrap_socket(raw, server_hostname="localhost", session=session)
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: " + str(len(kafka)).encode() + b"\r\n\r\n" + kafka)
        while tls.recv(65536):
            pass
        session = tls.session
        tls.close()


def executed_functions(profile, binary_name):
    """Functions of the binary in a callgrind profile, by instructions run, most first."""
    objects, functions = {}, {}
    cost = collections.Counter()
    seen = set()
    current_object = current_function = call_object = None
    after_calls = False

    def resolve(table, text):
        match = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not match:
            return text
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1), "?")

    def ours(obj):
        return obj is not None and obj.endswith(binary_name)

    with open(profile) as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                current_object = resolve(objects, line[3:])
            elif line.startswith("fn="):
                current_function = resolve(functions, line[3:])
                if ours(current_object):
                    seen.add(current_function)
            elif line.startswith("cob="):
                call_object = resolve(objects, line[4:])
            elif line.startswith("cfn="):
                called = resolve(functions, line[4:])
                if ours(call_object or current_object):
                    seen.add(called)
                call_object = None
            elif line.startswith("calls="):
                after_calls = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_calls:
                    after_calls = False  # the inclusive cost of a call, not this function's own
                elif ours(current_object):
                    fields = line.split()
                    if len(fields) >= 2:
                        cost[current_function] += int(fields[1])
    names = {}
    for function in seen:
        if function.startswith("0x"):
            continue  # no symbol: nothing to order by
        names.setdefault(re.sub(r"'\d+$", "", function), 0)
        names[re.sub(r"'\d+$", "", function)] += cost[function]
    return sorted(names, key=lambda name: (-names[name], name))


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/atlas-stream-webhook"))
    work = tempfile.mkdtemp(prefix="asw-link-order-")
    try:
        copy = os.path.join(work, "atlas-stream-webhook")
        shutil.copy(binary, copy)
        subprocess.run(["strip", "-g", copy], check=True)
        profile = os.path.join(work, "callgrind.out")
        server, port = start(copy, work, profile)
        try:
            drive(port, work)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=600)
        functions = executed_functions(profile, os.path.basename(copy))
        with open(OUTPUT, "w") as out:
            out.write("\n".join(functions) + "\n")
        print(f"{len(functions)} functions written to {os.path.relpath(OUTPUT, ROOT)}; "
              f"delete {os.path.relpath(binary, ROOT)} so the next build links with them")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
