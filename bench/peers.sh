#!/bin/bash
# peers.sh [weir|haproxy|both] - issue 22's cluster benchmark: three nodes on
# 127.0.0.2, .3 and .4 (weir with peers: and CURVE keys, or HAProxy 2.6 with a
# peers section), each tracking the x-key header in a synchronised string table
# in front of the shared bench's nginx backends, and measures:
#
#   converge  N (100000) distinct keys written on A with wrk; the milliseconds
#             from A holding all of them to B holding all of them (both read
#             every 0.2 ms over one runtime-API connection each:
#             converge_probe.py)
#   resync    FILL (1000000) keys written on A; C restarted; the milliseconds
#             from C's start until C's workers serve all of them (read every
#             2 ms over one runtime-API connection: resync_probe.py)
#   mesh      all three started at once; the milliseconds until every node
#             sees both others connected
#   delete    one key cleared on A; the milliseconds until B no longer has it
#             (HAProxy's peers do not send deletes: "never" after 5 s)
#   cut       C's peers process stopped (SIGSTOP) for CUT (20) s while A takes
#             10000 new keys and 10000 updates of old ones; the milliseconds
#             from SIGCONT until C has them all, and the expiry C gives the
#             new keys (the origin's, or a fresh whole one)
#   memory    RSS of all of a node's processes per entry, after the fill;
#             weir also: Protobuf payload bytes per entry update, and the bytes
#             on the wire (TCP, after CURVE) per entry update
#
# Env: N, FILL, CUT, OUT (raw output, /tmp/bench-out/<time>-peers), WEIR
# (build/master/weir), WEIRCTL (build/master/weirctl). Needs haproxy, wrk,
# socat, ss. Takes about 3 minutes per proxy. ONLY_RESYNC=R: only the fill
# and R resyncs; PERF=S: a system-wide perf profile of the first S seconds of
# each resync (perf-resync-R.data in OUT); KEEP=1 (with ONLY_RESYNC): the nodes
# are left running.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# The interpreter itself, not a shim in front of it (pyenv's run a dozen
# shell processes per start).
PY=${PY:-$(python3 -c 'import sys; print(sys.executable)')}
ROOT=$(cd "$HERE/.." && pwd)
WEIR=${WEIR:-$ROOT/build/master/weir}
WEIRCTL=${WEIRCTL:-$ROOT/build/master/weirctl}
N=${N:-100000} FILL=${FILL:-1000000} CUT=${CUT:-20}
OUT=${OUT:-/tmp/bench-out/$(date +%Y%m%d-%H%M%S)-peers}
D=${BENCH_TMP:-/tmp/bench}/peers
WHICH=${1:-both}
NODES=(a b c)
declare -A IP=([a]=127.0.0.2 [b]=127.0.0.3 [c]=127.0.0.4)
PEER_PORT=17400 HTTP_PORT=18080
mkdir -p "$OUT" "$D"
export BENCH_DIR=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" && pwd)}
. "$BENCH_DIR/lib.sh"

log() { echo "[$(date +%T)] $*" >&2; }
now_ms() { date +%s%3N; }

log() { echo "[$(date +%T)] $*" >&2; }

# ---- weir ------------------------------------------------------------------------------
weir_config() {  # node
  local n=$1 y
  y="global:
  threads: 1
  maxconn: 10000
  log: [{target: stdout, format: text}]
  runtime_api: [$D/$n.sock]
peers:
  cluster: bench
  local: $n
  secret_key_file: $D/$n.key
  nodes:
"
  for m in "${NODES[@]}"; do
    y+="    $m: {address: \"${IP[$m]}:$PEER_PORT\", public_key: \"$(sed -n 's/^public_key: "\(.*\)"$/\1/p' "$D/$m.key")\"}
"
  done
  y+="stick_tables:
  st: {type: string, key_size: 32, size: 2m, expire: 10m, store: [http_req_cnt], sync: true}
frontends:
  web:
    bind: \"${IP[$n]}:$HTTP_PORT\"
    metrics: {uri: /metrics}
    default_backend: app
    http_request:
      - track: {table: st, key: \"req.hdr(x-key)\"}
backends:
  app:
    servers: {s1: \"127.0.0.1:18081\", s2: \"127.0.0.1:18082\"}
"
  printf '%s' "$y" > "$D/$n.yaml"
}
weir_start() { "$WEIR" -f "$D/$1.yaml" > "$D/$1.log" 2>&1 & echo $! > "$D/$1.pid"; }
weir_stop() {
  local p; p=$(cat "$D/$1.pid" 2>/dev/null) || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
weir_used() { echo "show table" | socat - "UNIX-CONNECT:$D/$1.sock" 2>/dev/null | sed -n 's/.*, used: \([0-9]*\),.*/\1/p' | head -1; }
weir_has() { echo "show table st key $2" | socat - "UNIX-CONNECT:$D/$1.sock" 2>/dev/null | grep -c "^key=$2 " || true; }
weir_clear() { echo "clear table st key $2" | socat - "UNIX-CONNECT:$D/$1.sock" > /dev/null; }
weir_mesh_ok() {
  local n p
  for n in "${NODES[@]}"; do
    p=$(echo "show peers" | socat - "UNIX-CONNECT:$D/$n.sock" 2>/dev/null) || return 1
    [[ $(grep -c ' up up ' <<< "$p") -eq 2 ]] || return 1
  done
}
weir_peers_pid() { pgrep -P "$(cat "$D/$1.pid")" -f "weir .*peers" | head -1; }
weir_exp() { echo "show table st key $2" | socat - "UNIX-CONNECT:$D/$1.sock" | sed -n 's/.* exp=\([0-9]*\).*/\1/p'; }

# ---- HAProxy ---------------------------------------------------------------------------
hap_config() {
  local n=$1 m
  {
    echo "global
  localpeer $n
  stats socket $D/$n.sock level admin
  maxconn 5000
  nbthread 1
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
peers bench"
    for m in "${NODES[@]}"; do echo "  peer $m ${IP[$m]}:$PEER_PORT"; done
    echo "frontend web
  bind ${IP[$n]}:$HTTP_PORT
  http-request track-sc0 req.hdr(x-key) table st
  default_backend app
backend app
  balance roundrobin
  server s1 127.0.0.1:18081
  server s2 127.0.0.1:18082
backend st
  stick-table type string len 32 size 2m expire 10m peers bench store http_req_cnt"
  } > "$D/$n.cfg"
}
hap_start() { haproxy -W -f "$D/$1.cfg" -p "$D/$1.pid" > "$D/$1.log" 2>&1 & }
hap_stop() {
  local p; p=$(cat "$D/$1.pid" 2>/dev/null) || return 0
  kill -USR1 "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
hap_used() { echo "show table" | socat - "UNIX-CONNECT:$D/$1.sock" 2>/dev/null | sed -n 's/.*, used:\([0-9]*\).*/\1/p' | head -1; }
hap_has() { echo "show table st key $2" | socat - "UNIX-CONNECT:$D/$1.sock" 2>/dev/null | grep -c "key=$2 " || true; }
hap_clear() { echo "clear table st key $2" | socat - "UNIX-CONNECT:$D/$1.sock" > /dev/null; }
hap_mesh_ok() {
  local n
  for n in "${NODES[@]}"; do
    [[ $(echo "show peers" | socat - "UNIX-CONNECT:$D/$n.sock" 2>/dev/null | grep -c "status=ESTA") -ge 2 ]] || return 1
  done
}
# HAProxy runs its peers in the worker: the worker is stopped.
hap_peers_pid() { pgrep -P "$(cat "$D/$1.pid")" haproxy | head -1; }
hap_exp() { echo "show table st key $2" | socat - "UNIX-CONNECT:$D/$1.sock" | sed -n 's/.* exp=\([0-9]*\).*/\1/p'; }

# ---- the figures -----------------------------------------------------------------------
# wrk writing COUNT distinct keys PREFIX<0..COUNT-1> once each to node n. The
# lua script stops sending after COUNT answers, but wrk runs for its -d: it is
# interrupted once the node holds them all (new keys), or after UPDATE_S
# seconds when the keys exist already (updates).
write_keys() {  # node count prefix [update]
  local base; base=$("${P}_used" "$1")
  STICK_KEYS=$2 STICK_ONCE=1 STICK_PREFIX=$3 wrk -t1 -c50 -d600s -s "$HERE/stick.lua" \
    "http://${IP[$1]}:$HTTP_PORT/" > "$OUT/wrk-$1-$3.txt" 2>&1 &
  local w=$! t0; t0=$(now_ms)
  if [[ ${4:-} == update ]]; then
    sleep "${UPDATE_S:-4}"
  else
    while kill -0 "$w" 2>/dev/null; do
      local u; u=$("${P}_used" "$1")
      [[ -n $u && $u -ge $((base + $2)) ]] && break
      (( $(now_ms) - t0 > 300000 )) && break
      sleep 0.005
    done
  fi
  kill -INT "$w" 2>/dev/null || true
  wait "$w" 2>/dev/null || true
}
wait_for() {  # timeout_s command...: waits until the command succeeds; ms waited or "timeout"
  local limit=$1; shift
  local t0; t0=$(now_ms)
  while ! "$@"; do
    (( $(now_ms) - t0 > limit * 1000 )) && { echo timeout; return 0; }
    sleep 0.002
  done
  echo $(( $(now_ms) - t0 ))
}
used_at_least() { local u; u=$("${P}_used" "$1"); [[ -n $u && $u -ge $2 ]]; }
gone() { [[ $("${P}_has" "$1" "$2") -eq 0 ]]; }
node_pids() { local m; m=$(cat "$D/$1.pid"); echo "$m" $(pgrep -P "$m"); }
rss_kib() { local p s=0; for p in "$@"; do s=$((s + $(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo $s; }

# Milliseconds of CPU (user and system, every thread) a process has used.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ms_of() {  # HH:MM:SS.mmm -> milliseconds since midnight
  local h m sec ms
  IFS=':.' read -r h m sec ms <<< "$1"
  echo $(( (10#$h * 3600 + 10#$m * 60 + 10#$sec) * 1000 + 10#$ms ))
}
resync_rounds() {  # rounds: C stopped and started again, timed until it serves every entry
  local r used t perf_pid=
  used=$("${P}_used" a)
  for r in $(seq 1 "$1"); do
    log "$P: resync of c"
    "${P}_stop" c
    sleep 1
    rm -f "$D/c.sock"
    local a_peers a_cpu0; a_peers=$("${P}_peers_pid" a); a_cpu0=$(cpu_ms "$a_peers")
    # The probe starts first and waits for the socket: a Python started
    # after the node would take CPU from it while it resyncs (through pyenv's
    # shims, about 20 shell processes). It prints the wall clock in ms at
    # which it saw every entry.
    local probe_out="$OUT/resync-probe-$P-$r.txt"
    "$PY" "$HERE/resync_probe.py" "$D/c.sock" "$((used - 1))" 0 60 > "$probe_out" &
    local probe_pid=$!
    sleep 0.5
    local t0; t0=$(date +%s%N)
    "${P}_start" c
    if [[ -n ${PERF:-} ]]; then
      # A profile of all of c's processes during the resync (perf.data in OUT).
      perf record -F 2000 -g -o "$OUT/perf-resync-$r.data" -a -- sleep "${PERF}" > /dev/null 2>&1 &
      perf_pid=$!
    fi
    # Read over one runtime connection (resync_probe.py), not a socat per reading.
    wait "$probe_pid"
    t=$(cat "$probe_out")
    [[ $t == timeout ]] || t=$(( t - t0 / 1000000 ))
    echo "$P resync_${used}_ms=$t"
    # CPU time of C's processes since their start (the resync is most of it),
    # and of A's peers process during it.
    local pid cpu=""
    for pid in $(node_pids c); do cpu+=" $(cpu_ms "$pid")"; done
    echo "$P resync_cpu_ms c:$cpu a_peers: $(( $(cpu_ms "$a_peers") - a_cpu0 ))"
    [[ -z $perf_pid ]] || wait "$perf_pid"
  done
}

run() {  # weir | hap
  P=$1
  local n t
  log "$P: starting three nodes"
  rm -f "$D"/*.sock "$D"/*.log
  for n in "${NODES[@]}"; do
    if [[ $P == weir ]]; then
      [[ -f $D/$n.key ]] || "$WEIRCTL" peers keygen "$D/$n.key" > /dev/null
    fi
  done
  for n in "${NODES[@]}"; do "${P}_config" "$n"; done
  for n in "${NODES[@]}"; do "${P}_start" "$n"; done
  t=$(wait_for 30 "${P}_mesh_ok")
  echo "$P mesh_ms=$t"
  if [[ $P == weir ]]; then
    # From the logs: from the last agent ready to the last link up (what the
    # nodes themselves take, without the processes' start and this script's
    # polling).
    local ready linked
    ready=$(grep -h "peers agent ready" "$D"/{a,b,c}.log | cut -c12-23 | sort | tail -1)
    linked=$(grep -hE "linked to node|connected, weir" "$D"/{a,b,c}.log | cut -c12-23 | sort | tail -1)
    echo "weir mesh_after_last_agent_ready_ms=$(( $(ms_of "$linked") - $(ms_of "$ready") ))"
  fi
  sleep 1
  local rss0; rss0=$(rss_kib $(node_pids a))

  if [[ -n ${ONLY_RESYNC:-} ]]; then
    write_keys a "$FILL" f
    t=$(wait_for 60 used_at_least c "$FILL")
    resync_rounds "${ONLY_RESYNC}"
    # KEEP=1: the nodes stay up (filled) for experiments by hand.
    [[ -n ${KEEP:-} ]] && return
    for n in "${NODES[@]}"; do "${P}_stop" "$n"; done
    return
  fi
  python3 "$HERE/converge_probe.py" "$D/a.sock" "$D/b.sock" "$N" 120 > "$OUT/converge-$P.txt" &
  local probe=$!
  write_keys a "$N" k
  t=$(wait_for 60 used_at_least b "$N")
  wait "$probe" || true
  echo "$P converge_${N}_ms=$(cat "$OUT/converge-$P.txt") (from A holding them all to B holding them all; polled with socat after wrk's end: $t ms)"

  "${P}_clear" a k7
  t=$(wait_for 5 gone b k7)
  [[ $t == timeout ]] && t=never
  echo "$P delete_ms=$t"

  write_keys a $((FILL - N)) f
  sleep 2
  local used rss1; used=$("${P}_used" a); rss1=$(rss_kib $(node_pids a))
  echo "$P memory_bytes_per_entry=$(( (rss1 - rss0) * 1024 / (used > 0 ? used : 1) )) (entries $used, rss $((rss0 / 1024)) -> $((rss1 / 1024)) MiB)"
  if [[ $P == weir ]]; then
    local m; m=$(curl -s "http://${IP[a]}:$HTTP_PORT/metrics" -H 'x-key: metrics' || true)
    echo "$m" > "$OUT/metrics-a.txt"
    # Protobuf payload (before CURVE) per entry update sent, over both links.
    awk '/^weir_peers_node_payload_bytes_sent_total/ {b += $2} /^weir_peers_node_rows_sent_total/ {r += $2}
         END {if (r) printf "weir payload_bytes_per_update=%.1f (%d bytes, %d updates)\n", b / r, b, r}' \
      "$OUT/metrics-a.txt"
    # On the wire: what the kernel sent on a's agent's connections to the
    # other nodes (CURVE, ZMTP framing, heartbeats and acks' TCP included).
    local agent rows wire
    agent=$(weir_peers_pid a)
    rows=$(awk '/^weir_peers_node_rows_sent_total/ {r += $2} END {print r + 0}' "$OUT/metrics-a.txt")
    wire=$(ss -tinp state established "( dport = :$PEER_PORT )" 2>/dev/null |
      awk -v pid="pid=$agent," 'index($0, pid) {mine = 1; next} mine && /bytes_sent:/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^bytes_sent:/) {split($i, f, ":"); s += f[2]}
        mine = 0} END {print s + 0}')
    [[ $rows -gt 0 ]] && echo "weir wire_bytes_per_update=$(awk -v w="$wire" -v r="$rows" 'BEGIN {printf "%.1f", w / r}') ($wire bytes on TCP, $rows updates)"
  fi

  resync_rounds 1

  log "$P: cut of c for $CUT s"
  local pp; pp=$("${P}_peers_pid" c)
  kill -STOP "$pp"
  write_keys a 10000 cut &
  local w1=$!
  write_keys b 10000 k update &
  local w2=$!
  wait $w1 $w2
  sleep "$CUT"
  local t0; t0=$(now_ms)
  kill -CONT "$pp"
  t=$(wait_for 60 used_at_least c "$((used + 10000 - 1))")
  echo "$P cut_catch_up_ms=$t"
  echo "$P cut_new_key_exp_ms=$("${P}_exp" c cut5) (of 600000; the origin's left about $((600000 - CUT * 1000)))"
  for n in "${NODES[@]}"; do "${P}_stop" "$n"; done
}

backends_start
trap 'for n in "${NODES[@]}"; do weir_stop "$n"; hap_stop "$n"; done; backends_stop' EXIT
case $WHICH in
  weir) run weir ;;
  haproxy) run hap ;;
  both) run weir; run hap ;;
  *) echo "usage: $0 [weir|haproxy|both]" >&2; exit 2 ;;
esac 2>&1 | tee "$OUT/summary.txt"
