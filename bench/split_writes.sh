#!/bin/bash
# split_writes.sh [PROXY...] - issue 25's test of servers that write a
# response's head and body apart (bench/split_server.py, two of them on the
# shared bench's backend ports 18081 and 18082 instead of nginx). Through each
# proxy (default: haproxy weir), at the same time for 10 s: 4 keep-alive
# clients and 4 clients that open a connection per request (wrk -t2 -c4 each,
# the latter with "Connection: close"); then one keep-alive client alone for
# 5 s (its mean latency shows the stall: about 40 ms when every response
# waits for a delayed ACK). Prints req/s per client kind and the lone
# client's mean latency. Needs wrk, haproxy, python3; about 1 minute.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
B=$(cd "$ROOT/../shared/bench" && pwd)
PY=${PY:-$(python3 -c 'import sys; print(sys.executable)')}
D=${BENCH_TMP:-/tmp/bench}/split
mkdir -p "$D"
PROXIES=("$@")
[[ ${#PROXIES[@]} -gt 0 ]] || PROXIES=(haproxy weir)

servers=()
cleanup() { for p in "${servers[@]}"; do kill "$p" 2> /dev/null || true; done; }
trap cleanup EXIT
for port in 18081 18082; do
  "$PY" "$HERE/split_server.py" "$port" 2>> "$D/servers.log" &
  servers+=($!)
done
for port in 18081 18082; do
  for _ in $(seq 1 50); do
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
    sleep 0.1
  done
done

rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$1"; }
printf '%-8s %12s %12s %16s\n' proxy ka_req/s close_req/s lone_mean_ms
for proxy in "${PROXIES[@]}"; do
  case $proxy in
    haproxy) start="$B/haproxy.sh start" stop="$B/haproxy.sh stop" ;;
    weir) start="$HERE/weir.sh start" stop="$HERE/weir.sh stop" ;;
    *) echo "unknown proxy $proxy" >&2; exit 2 ;;
  esac
  bash -c "$start" > "$D/$proxy-start.log" 2>&1
  wrk -t2 -c4 -d10s http://127.0.0.1:18080/ > "$D/$proxy-ka.txt" &
  ka=$!
  wrk -t2 -c4 -d10s -H 'Connection: close' http://127.0.0.1:18080/ > "$D/$proxy-close.txt"
  wait "$ka"
  wrk -t1 -c1 -d5s http://127.0.0.1:18080/ > "$D/$proxy-lone.txt"
  bash -c "$stop" > /dev/null 2>&1 || true
  lone=$(awk '$1 == "Latency" { print $2 }' "$D/$proxy-lone.txt")
  printf '%-8s %12s %12s %16s\n' "$proxy" "$(rps "$D/$proxy-ka.txt")" \
    "$(rps "$D/$proxy-close.txt")" "$lone"
done
