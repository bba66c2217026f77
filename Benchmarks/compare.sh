#!/bin/bash
# Side-by-side load test on this machine, the same request bodies to three TLS HTTP/1.1 servers:
#   project - the atlas-stream-webhook binary given, `serve`
#   go-peer - Benchmarks/go-webhook: a webhook served the way controller-runtime serves one
#             (Go net/http + crypto/tls + encoding/json, HTTP/1.1), doing comparable
#             decode/default/validate/encode work
#   nginx   - nginx answering a fixed AdmissionReview: no JSON work at all, the ceiling for
#             a TLS HTTP/1.1 server on this machine
# Load: wrk, one thread, to 127.0.0.1 only. Bodies: Tests/Fixtures/review-kafka.json (2.5 KB)
# and the 250 KB and 2.2 MB reviews Benchmarks/reviews.py writes.
#
# Usage: Benchmarks/compare.sh BINARY [SECONDS_PER_RUN] [ROUNDS]      (defaults 5 and 3)
#   e.g. flock /tmp/build.lock Benchmarks/compare.sh .build/release/atlas-stream-webhook 5 3
# Installs wrk, nginx-light and golang-go from Debian when missing (apt-get, as root or
# through sudo) and builds the Go peer with Debian's Go (no module downloads).
# Prints one row per workload and server (median req/s and p99 of the rounds, the most
# non-2xx answers and socket errors of any round), the servers' RSS after the load, and the
# ratios of the median req/s project/go-peer and project/nginx.
# Takes 6 workloads x 3 servers x ROUNDS x SECONDS_PER_RUN plus about a minute the first
# time (package install, Go build).
set -euo pipefail

usage() { echo "usage: Benchmarks/compare.sh BINARY [SECONDS_PER_RUN 1-60] [ROUNDS 1-9]" >&2; exit 2; }
(($# >= 1 && $# <= 3)) || usage
[[ -x $1 && -f $1 ]] || { echo "not an executable file: $1" >&2; usage; }
BIN=$(realpath "$1")
SECS=${2:-5}
ROUNDS=${3:-3}
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > 60)); then usage; fi
[[ $ROUNDS =~ ^[1-9]$ ]] || usage
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

# Tools, from Debian when missing.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v go >/dev/null || missing+=(golang-go)
for tool in curl openssl python3; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
if ((${#missing[@]})); then
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  echo "installing from Debian: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

W=$(mktemp -d /tmp/atlas-stream-webhook-compare.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A throwaway CA and a certificate for localhost and 127.0.0.1, shared by the three servers.
(cd "$W" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=bench-ca &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -out tls.csr -subj /CN=localhost &&
  printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" >ext &&
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 2 -extfile ext) >/dev/null 2>&1 ||
  { echo "openssl did not make the test certificates" >&2; exit 2; }

# The Go peer: standard library only; GOPROXY=off so a build never reaches the network.
(cd "$HERE/go-webhook" && GOPROXY=off GOFLAGS=-mod=mod go build -o "$W/go-webhook" .) ||
  { echo "the Go peer did not build" >&2; exit 2; }

KAFKA=$ROOT/Tests/Fixtures/review-kafka.json
python3 "$HERE/reviews.py" "$W/reviews" >/dev/null
R250=$W/reviews/review-250kb.json
R2M=$W/reviews/review-2.2mb.json

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_PROJECT=$(port); P_GO=$(port); P_NGINX=$(port)

mkdir -p "$W/nginx"
cat >"$W/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/nginx/body;
  client_max_body_size 8m;
  server {
    listen 127.0.0.1:$P_NGINX ssl;
    ssl_certificate $W/tls.crt;
    ssl_certificate_key $W/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 10000000;
    location / { default_type application/json; return 200 '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}'; }
  }
}
NGINX

# No cluster lookups: the peers have none, and a kubeconfig on this machine must not matter.
"$BIN" serve --listen "127.0.0.1:$P_PROJECT" --tls-cert "$W/tls.crt" --tls-key "$W/tls.key" \
  --cluster-lookups false --shutdown-delay 0s >"$W/project.log" 2>&1 &
PID_PROJECT=$!; PIDS+=("$PID_PROJECT")
"$W/go-webhook" -addr "127.0.0.1:$P_GO" -cert "$W/tls.crt" -key "$W/tls.key" >"$W/go.log" 2>&1 &
PID_GO=$!; PIDS+=("$PID_GO")
# In the foreground (daemon off) so it is this script's child and stops with it.
nginx -p "$W/nginx" -e "$W/nginx/error.log" -c "$W/nginx/nginx.conf" -g "daemon off;" >"$W/nginx.log" 2>&1 &
PID_NGINX=$!; PIDS+=("$PID_NGINX")

declare -A PORT=([project]=$P_PROJECT [go-peer]=$P_GO [nginx]=$P_NGINX)
declare -A LOG=([project]=$W/project.log [go-peer]=$W/go.log [nginx]=$W/nginx/error.log)
SERVERS=(project go-peer nginx)

# Each server up (at most 10 s), and answering every body with 200 and an admission,
# so the load below measures answers, not errors.
for who in "${SERVERS[@]}"; do
  up=no
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$W/ca.crt" "https://localhost:${PORT[$who]}/healthz" && { up=yes; break; }
    sleep 0.1
  done
  [[ $up == yes ]] || { echo "$who did not start:" >&2; tail -5 "${LOG[$who]}" >&2; exit 2; }
  for check in "/validate:$KAFKA" "/mutate:$KAFKA" "/validate:$R250" "/validate:$R2M"; do
    path=${check%%:*} body=${check#*:}
    answer=$(curl -s --max-time 10 --cacert "$W/ca.crt" -H "Content-Type: application/json" \
      --data-binary "@$body" -w ' HTTP %{http_code}' "https://localhost:${PORT[$who]}$path")
    [[ $answer == *'"allowed":true'*' HTTP 200' ]] ||
      { echo "$who answered $path $(basename "$body") with: ${answer:0:300}" >&2; exit 2; }
  done
done

cat >"$W/post.lua" <<'LUA'
wrk.method = "POST"
local f = io.open(os.getenv("BODY"), "r"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

# One wrk run; prints "req/s p99_ms non2xx socket_errors".
load() { # port path body connections [wrk options...]
  local port=$1 path=$2 body=$3 connections=$4
  shift 4
  BODY=$body timeout $((SECS + 30)) wrk -t1 -c"$connections" -d"${SECS}s" --latency -s "$W/post.lua" "$@" \
    "https://127.0.0.1:$port$path" 2>&1 |
    awk '/Requests\/sec/ {r = $2}
         / 99%/ {v = $2
                 if (v ~ /us$/) {sub(/us/, "", v); v = v / 1000}
                 else if (v ~ /ms$/) {sub(/ms/, "", v)}
                 else if (v ~ /s$/) {sub(/s/, "", v); v = v * 1000}
                 p = v}
         /Non-2xx/ {n = $NF}
         /Socket errors/ {gsub(/,/, ""); e = $4 + $6 + $8 + $10}
         END {printf "%s %s %s %s\n", r + 0, p + 0, n + 0, e + 0}'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
most() { tr ' ' '\n' | grep . | sort -g | tail -1; }
rss() { ps -o rss= -p "$1" 2>/dev/null | awk '{printf "%.1f", $1 / 1024}'; }

WORKLOADS=(validate-2.5KB-c16 mutate-2.5KB-c16 validate-2.5KB-c256 validate-250KB-c4 validate-2.2MB-c4
  new-conn-per-request)
# The wrk arguments of a workload: path, body, connections, options.
workload() {
  case $1 in
    validate-2.5KB-c16) args=(/validate "$KAFKA" 16) ;;
    mutate-2.5KB-c16) args=(/mutate "$KAFKA" 16) ;;
    validate-2.5KB-c256) args=(/validate "$KAFKA" 256) ;;
    validate-250KB-c4) args=(/validate "$R250" 4) ;;
    validate-2.2MB-c4) args=(/validate "$R2M" 4) ;;
    new-conn-per-request) args=(/validate "$KAFKA" 16 -H "Connection: close") ;;
  esac
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${SECS}s per run, rounds: $ROUNDS; $(basename "$BIN"), $(go version | cut -d' ' -f3), nginx $(nginx -v 2>&1 | cut -d/ -f2), wrk $(wrk --version 2>&1 | head -1 | cut -d' ' -f2)"
declare -A R
for name in "${WORKLOADS[@]}"; do
  workload "$name"
  for _ in $(seq "$ROUNDS"); do
    for who in "${SERVERS[@]}"; do
      read -r rps p99 non2xx errors < <(load "${PORT[$who]}" "${args[@]}")
      R[$name,$who,rps]+="$rps "; R[$name,$who,p99]+="$p99 "
      R[$name,$who,non2xx]+="$non2xx "; R[$name,$who,errors]+="$errors "
    done
  done
done

printf "%-24s %-8s %12s %10s %8s %8s\n" workload server "req/s" "p99 ms" non2xx errors
for name in "${WORKLOADS[@]}"; do
  for who in "${SERVERS[@]}"; do
    R[$name,$who,median]=$(median <<<"${R[$name,$who,rps]}")
    printf "%-24s %-8s %12s %10s %8s %8s\n" "$name" "$who" "${R[$name,$who,median]}" \
      "$(median <<<"${R[$name,$who,p99]}")" "$(most <<<"${R[$name,$who,non2xx]}")" "$(most <<<"${R[$name,$who,errors]}")"
  done
done
workers=$(for pid in $(pgrep -P "$PID_NGINX"); do rss "$pid"; echo -n " "; done)
echo "RSS after load (MiB): project $(rss "$PID_PROJECT")  go-peer $(rss "$PID_GO")  nginx workers ${workers% }"
for name in "${WORKLOADS[@]}"; do
  awk -v n="$name" -v a="${R[$name,project,median]}" -v g="${R[$name,go-peer,median]}" -v x="${R[$name,nginx,median]}" \
    'BEGIN {printf "ratio %-24s project/go-peer %.2f  project/nginx %.2f\n", n, (g > 0 ? a / g : 0), (x > 0 ? a / x : 0)}'
done
