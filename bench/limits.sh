#!/bin/bash
# limits.sh - issue 23's figures for weir: a limit held by two nodes (a on
# 127.0.0.2, b on 127.0.0.3) that share one table, each link through
# latency_relay.py with a chosen one-way latency, in front of the shared
# bench's nginx backends. Each scenario uses its own key:
#
#   limit-L   500 requests per 10 s (http_req_rate(10s)); 60 requests a second
#             on each node at random (Poisson) moments for 15 s; links at L ms
#             (10, 50); prints the requests allowed (a single node would
#             allow 500)
#   same      the same on loopback (0 ms), both nodes sent their requests at
#             the same moments
#   lost-20   50 requests a second on each node for 60 s, links at 20 ms: the
#             requests made against http_req_cnt on both nodes afterwards
#   cut-20    50 requests a second on each node for 26 s, the links cut for
#             20 s of it: the requests made against http_req_cnt on both
#             nodes once the links are back
#   flood     wrk on both nodes at once for 10 s (loopback links): wrk's
#             requests against http_req_cnt on both nodes (wrk stops with up
#             to its connections' requests in flight: counted by weir, not
#             by wrk)
#
# Env: OUT (raw output, /tmp/bench-out/<time>-limits), WEIR, WEIRCTL. Needs
# wrk, socat, python3. Takes about 4 minutes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=${PY:-$(python3 -c 'import sys; print(sys.executable)')}
WEIR=${WEIR:-$ROOT/build/master/weir}
WEIRCTL=${WEIRCTL:-$ROOT/build/master/weirctl}
OUT=${OUT:-/tmp/bench-out/$(date +%Y%m%d-%H%M%S)-limits}
D=${BENCH_TMP:-/tmp/bench}/limits
NODES=(a b)
declare -A IP=([a]=127.0.0.2 [b]=127.0.0.3) OTHER=([a]=b [b]=a)
PEER_PORT=17400 RELAY_PORT=17410 HTTP_PORT=18080
mkdir -p "$OUT" "$D"
export BENCH_DIR=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" && pwd)}
. "$BENCH_DIR/lib.sh"

log() { echo "[$(date +%T)] $*" >&2; }

config() {  # node: its peer m is reached through the relay on this node's address
  local n=$1 m=${OTHER[$1]}
  cat > "$D/$n.yaml" << EOF
global:
  threads: 1
  maxconn: 5000
  log: [{target: stdout, format: text}]
  runtime_api: [$D/$n.sock]
peers:
  cluster: limits
  local: $n
  bind: "${IP[$n]}:$PEER_PORT"
  secret_key_file: $D/$n.key
  nodes:
    $n: {address: "${IP[$n]}:$PEER_PORT", public_key: "$(sed -n 's/^public_key: "\(.*\)"$/\1/p' "$D/$n.key")"}
    $m: {address: "${IP[$n]}:$RELAY_PORT", public_key: "$(sed -n 's/^public_key: "\(.*\)"$/\1/p' "$D/$m.key")"}
stick_tables:
  st: {type: string, size: 100k, expire: 2m, store: ["http_req_rate(10s)", http_req_cnt], sync: true}
frontends:
  web:
    bind: "${IP[$n]}:$HTTP_PORT"
    default_backend: app
    timeouts: {http_keep_alive: 1m}
    http_request:
      - track: {table: st, key: "req.hdr(x-key)"}
      - deny: {status: 429}
        if: "{ sc0_http_req_rate gt 500 }"
backends:
  app:
    servers: {s1: "127.0.0.1:18081", s2: "127.0.0.1:18082"}
EOF
}

relays_start() {  # one-way latency in ms: a's relay leads to b's agent and back
  relays_stop
  local n
  for n in "${NODES[@]}"; do
    "$PY" "$HERE/latency_relay.py" "${IP[$n]}:$RELAY_PORT" "${IP[${OTHER[$n]}]}:$PEER_PORT" "$1" &
    echo $! > "$D/relay-$n.pid"
  done
}
relays_stop() {
  local f
  for f in "$D"/relay-*.pid; do
    [[ -f $f ]] || continue
    kill "$(cat "$f")" 2> /dev/null || true
    rm -f "$f"
  done
}
nodes_start() {
  local n
  for n in "${NODES[@]}"; do
    "$WEIR" -f "$D/$n.yaml" > "$D/$n.log" 2>&1 &
    echo $! > "$D/$n.pid"
  done
}
nodes_stop() {
  local n p
  for n in "${NODES[@]}"; do
    p=$(cat "$D/$n.pid" 2> /dev/null) || continue
    kill -TERM "$p" 2> /dev/null || true
    while kill -0 "$p" 2> /dev/null; do sleep 0.1; done
    rm -f "$D/$n.pid"
  done
}
api() { echo "$2" | socat - "UNIX-CONNECT:$D/$1.sock" 2> /dev/null; }
mesh_ok() {
  local n
  for n in "${NODES[@]}"; do
    [[ $(api "$n" "show peers" | grep -c ' up up ') -eq 1 ]] || return 1
  done
}
wait_mesh() {
  for _ in $(seq 1 300); do
    mesh_ok && return 0
    sleep 0.1
  done
  log "no mesh"
  return 1
}
count() {  # node key: its http_req_cnt
  api "$1" "show table st key $2" | sed -n 's/.* http_req_cnt=\([0-9]*\).*/\1/p'
}
settled() {  # key: both nodes' counts once they agree (or after 10 s)
  local x y
  for _ in $(seq 1 100); do
    x=$(count a "$1") y=$(count b "$1")
    [[ -n $x && $x == "$y" ]] && break
    sleep 0.1
  done
  echo "a=$x b=$y"
}
# The next 10 s period of the rates: a scenario does not start with what the
# last one left in the previous period.
next_period() { sleep "$(awk -v ms="$(date +%s%3N)" 'BEGIN {printf "%.3f", (10000 - ms % 10000) / 1000 + 0.05}')"; }

backends_start
trap 'nodes_stop; relays_stop; backends_stop' EXIT
for n in "${NODES[@]}"; do
  [[ -f $D/$n.key ]] || "$WEIRCTL" peers keygen "$D/$n.key" > /dev/null
done
for n in "${NODES[@]}"; do config "$n"; done
NODE_URLS=("${IP[a]}:$HTTP_PORT" "${IP[b]}:$HTTP_PORT")

for lat in 10 50 0; do
  relays_start "$lat"
  nodes_start
  wait_mesh
  if [[ $lat == 0 ]]; then
    next_period
    r=$("$PY" "$HERE/limits_load.py" same "same" 60 15 "${NODE_URLS[@]}")
    echo "weir same_0ms $r" | tee -a "$OUT/results.txt"
    # The flood: wrk on both nodes at once, a header of its own.
    log "flood"
    wrks=()
    for n in "${NODES[@]}"; do
      wrk -t1 -c20 -d10s -H "X-Key: flood" "http://${IP[$n]}:$HTTP_PORT/1k" > "$OUT/wrk-flood-$n.txt" &
      wrks+=($!)
    done
    wait "${wrks[@]}"
    made=0
    for n in "${NODES[@]}"; do
      made=$((made + $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$OUT/wrk-flood-$n.txt")))
    done
    echo "weir flood wrk_requests=$made counted $(settled flood)" | tee -a "$OUT/results.txt"
  else
    next_period
    r=$("$PY" "$HERE/limits_load.py" poisson "limit-$lat" 60 15 "${NODE_URLS[@]}")
    echo "weir limit_${lat}ms $r" | tee -a "$OUT/results.txt"
  fi
  if [[ $lat == 10 ]]; then
    # Both nodes keep counting while their links are cut for 20 s.
    log "cut"
    "$PY" "$HERE/limits_load.py" poisson "cut" 50 26 "${NODE_URLS[@]}" > "$OUT/cut.txt" &
    load=$!
    sleep 3
    relays_stop
    sleep 20
    relays_start "$lat"
    wait "$load"
    echo "weir cut_20s $(cat "$OUT/cut.txt") counted $(settled cut)" | tee -a "$OUT/results.txt"
  fi
  if [[ $lat == 50 ]]; then
    nodes_stop
    relays_start 20
    nodes_start
    wait_mesh
    r=$("$PY" "$HERE/limits_load.py" poisson "lost" 50 60 "${NODE_URLS[@]}")
    echo "weir lost_20ms $r counted $(settled lost)" | tee -a "$OUT/results.txt"
  fi
  nodes_stop
done
log "results in $OUT/results.txt"
