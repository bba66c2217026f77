#!/usr/bin/env python3
"""Worst-case shapes at full size against a built binary. For each shape: the time and peak memory of `review` in a process of
its own, the answer's size, and the same body through a running server (latency); then
the server's peak RSS over the whole run.

    Benchmarks/worst-case.py .build/release/atlas-stream-webhook

Not a test (timings depend on the machine); the figures go into the README.
"""
import json, os, socket, ssl, subprocess, sys, tempfile, time

binary = os.path.abspath(sys.argv[1])


def review(kind, obj, old=None, operation="CREATE", extra=""):
    request = ('{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"%s"},'
               '"operation":"%s","namespace":"team-a","userInfo":{"username":"u"}%s,"object":%s%s}'
               % (kind, operation, extra, obj, ',"oldObject":' + old if old else ""))
    return ('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":%s}' % request).encode()


def conn(spec):
    return '{"metadata":{"name":"c","namespace":"team-a"},"spec":%s}' % spec


def inst(spec):
    return '{"metadata":{"name":"i","namespace":"team-a"},"spec":%s}' % spec


def kafka(servers="b:9092", config="{}"):
    return ('{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"%s","authentication":{"mechanism":"SCRAM-256",'
            '"credentials":{"name":"c"}},"security":{"protocol":"SSL","certificate":{"name":"t"}},"config":%s}}' % (servers, config))


def registry(entries):
    return ('{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[%s]}'
            % entries)


def nested(depth, leaf):
    return '{"a":' * depth + leaf + '}' * depth


shapes = [
    ("UPDATE nested 24 deep, differing at the leaf (600 B)",
     review("AtlasStreamConnection", conn(nested(24, "1")), conn(nested(24, "2")), "UPDATE")),
    ("UPDATE nested 500 deep, differing at the leaf",
     review("AtlasStreamConnection", conn(nested(500, "1")), conn(nested(500, "2")), "UPDATE")),
    ("UPDATE 3 MiB spec, members reversed, one value changed",
     review("AtlasStreamConnection", conn("{" + ",".join('"k%d":[%d]' % (i, i) for i in range(200_000)) + ',"x":1}'),
            conn('{"x":2,' + ",".join('"k%d":[%d]' % (i, i) for i in reversed(range(200_000))) + "}"), "UPDATE")),
    ("bootstrapServers a,a,a,... of 1.4 MB", review("AtlasStreamConnection", conn(kafka(servers="a," * 700_000 + "a")))),
    ("bootstrapServers a,a,a,... of 6 MB", review("AtlasStreamConnection", conn(kafka(servers="a," * 3_000_000 + "a")))),
    ("100,000 distinct valid bootstrap servers",
     review("AtlasStreamConnection", conn(kafka(servers=",".join("h%d:9092" % i for i in range(100_000)))))),
    ("50,000 registry entries with invalid names",
     review("AtlasStreamInstance", inst(registry(",".join('{"name":"Bad_%d"}' % i for i in range(50_000)))))),
    ("150,000 duplicate config keys",
     review("AtlasStreamConnection", conn(kafka(config="{" + ",".join(['"sasl.password":"x"'] * 150_000) + "}")))),
    ("one 5 MB invalid bootstrap server", review("AtlasStreamConnection", conn(kafka(servers="x" * 5_000_000 + ":1:2")))),
    ("1,000 registry entries, each 3 errors of 5 KB values",
     review("AtlasStreamInstance", inst(registry(",".join('{"name":"Bad_%s%d","namespace":"NS_%s"}' % ("x" * 2500, i, "y" * 2500)
                                                           for i in range(1000)))))),
    ("[0,0,0,...] of 7 MiB beside the request",
     review("AtlasStreamConnection", conn(kafka()), extra=',"options":[' + ",".join(["0"] * 3_600_000) + "]")),
]


# Measures one `review --validate` on a body file: run from a small process of its own,
# since a child's peak RSS counts what it inherited at fork (this script holds every body).
MEASURE = """
import os, subprocess, sys, time
with open(sys.argv[2], "rb") as stdin:
    start = time.monotonic()
    process = subprocess.Popen([sys.argv[1], "review", "--validate"], stdin=stdin, stdout=subprocess.PIPE)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
print(time.monotonic() - start, len(out), usage.ru_maxrss / 1024)
"""


def main():
    directory = tempfile.mkdtemp()
    files = []
    for i, (name, body) in enumerate(shapes):
        path = os.path.join(directory, "body-%d.json" % i)
        with open(path, "wb") as f:
            f.write(body)
        files.append(path)
    results = []
    for (name, body), path in zip(shapes, files):
        elapsed, answer, peak = subprocess.run([sys.executable, "-c", MEASURE, binary, path], capture_output=True,
                                               text=True, check=True).stdout.split()
        results.append((name, body, int(answer), float(elapsed), float(peak)))
    # The same bodies through a server, one after another on one connection.
    server = subprocess.Popen([binary, "serve", "--dev", "--dev-cert-dir", directory, "--listen", "127.0.0.1:0",
                               "--shutdown-delay", "0s"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = None
    for line in server.stderr:
        message = json.loads(line)
        if message.get("msg") == "serving":
            port = int(message["address"].rsplit(":", 1)[1])
            break
    context = ssl.create_default_context(cafile=os.path.join(directory, "ca.crt"))
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    stream = sock.makefile("rb")
    print("%-55s %9s %8s %9s %9s %9s" % ("shape", "body B", "answer B", "review s", "peak MiB", "served s"))
    for (name, body, answer, elapsed, peak) in results:
        start = time.monotonic()
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
        status = stream.readline()
        length = 0
        while True:
            header = stream.readline()
            if header in (b"\r\n", b""):
                break
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        stream.read(length)
        served = time.monotonic() - start
        assert status.startswith(b"HTTP/1.1 200"), status
        print("%-55s %9d %8d %9.3f %9.1f %9.3f" % (name, len(body), answer, elapsed, peak, served))
    with open("/proc/%d/status" % server.pid) as f:
        hwm = [l for l in f if l.startswith("VmHWM")][0].split()[1]
    server.terminate()
    server.wait()
    print("server peak RSS over the run: %.1f MiB" % (int(hwm) / 1024))


main()
