#!/bin/bash
# Instructions (user space, counted by callgrind) that the server spends per request on one
# kept-alive TLS connection: two runs of N1 and N2 requests, so start-up and shutdown cancel out.
# Deterministic for a given binary and input, whatever else the machine is doing.
# Usage: Benchmarks/instructions.sh BINARY [BODY_FILE] [PATH] [N1] [N2]   (needs valgrind, curl, openssl, python3)
# BODY_FILE defaults to Tests/Fixtures/review-kafka.json (a 2.5 KB Kafka connection review).
set -euo pipefail
BIN=$(realpath "$1"); BODY=$(realpath "${2:-$(dirname "$0")/../Tests/Fixtures/review-kafka.json}"); URLPATH=${3:-/validate}
N1=${4:-300}; N2=${5:-1500}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
(cd "$W" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=bench-ca &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -out tls.csr -subj /CN=localhost &&
  printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" > ext &&
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 2 -extfile ext) >/dev/null 2>&1
run() {
  local n=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  valgrind --tool=callgrind --callgrind-out-file="$W/cg.$n" "$BIN" serve --listen 127.0.0.1:$port \
    --health-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --tls-cert "$W/tls.crt" --tls-key "$W/tls.key" >"$W/log.$n" 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null --cacert "$W/ca.crt" "https://localhost:$port/healthz" && break; sleep 0.2; done
  python3 - "$port" "$n" "$BODY" "$URLPATH" "$W/ca.crt" <<'PY'
import sys, ssl, http.client
port, n, body, path, ca = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read(), sys.argv[4], sys.argv[5]
c = http.client.HTTPSConnection("localhost", port, context=ssl.create_default_context(cafile=ca))
for _ in range(n):
    c.request("POST", path, body=body, headers={"Content-Type": "application/json"}); r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f"HTTP {r.status}")
PY
  kill -INT $pid; wait $pid 2>/dev/null || true
  awk '/^(summary|totals):/ {print $2; exit}' "$W/cg.$n"
}
a=$(run "$N1"); b=$(run "$N2")
echo "$(( (b - a) / (N2 - N1) )) instructions per request ($(basename "$BODY") $URLPATH; callgrind totals $a for $N1, $b for $N2)"
