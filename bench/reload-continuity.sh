#!/bin/bash
# reload-continuity.sh - issue 20's reload benchmark: how many stick-table
# increments a proxy loses when it is reloaded under traffic, weir beside
# HAProxy 2.6 (master-worker) on this machine. It measures counts, not time.
#
# Each proxy listens on 127.0.0.1:PORT in front of ../shared/bench's two nginx
# backends and tracks the request header x-key in a string stick table `t`
# that stores http_req_cnt:
#   weir       track: {table: t, key: "req.hdr(x-key)"}; t: {type: string,
#              key_size: 32, size: 100k, expire: 10m, store: [http_req_cnt]}.
#              The peers agent keeps the table across reloads.
#   hap        HAProxy -W, `http-request track-sc0 req.hdr(x-key) table t`,
#              `stick-table type string len 32 size 100k expire 10m store
#              http_req_cnt peers local`: the local peer (`localpeer`, a peers
#              section naming only this host, on PEER_PORT) is how HAProxy hands
#              a table to the next worker at a reload.
#   hap-nopeers  the same without the peers section (HAProxy's default): every
#              reload starts an empty table. Not in the default PROXIES.
# Per proxy and per round (ROUNDS rounds, the proxies in turn), the proxy
# starts afresh and is left to get ready (weir: its worker linked to the peers
# agent; HAProxy: its first worker's peers resync done, which takes its 5 s
# resync timeout: a worker younger than that teaches the next one nothing).
# Then reload-continuity.py sends exactly N requests at RATE per second (600
# at 100/s: 6 s, paced), `x-key: k0` to `k<KEYS-1>` in turn, over CONNS
# keep-alive connections used in turn, and counts the responses and their
# statuses; meanwhile the proxy is reloaded RELOADS times spread over the run
# (the first at 0.3 s, then every 0.6 s), each after the previous one completed:
#   weir: `reload` on the master CLI (-S), which answers once the new
#         generation serves;
#   HAProxy: SIGUSR2 to the master, then its master CLI polled until `show
#         proc` lists a new current worker and that worker's `show peers` says
#         it has learned the table from the old one (flags 0x3).
# Each connection is idle CONNS/RATE s (0.5) between its requests, so a
# draining generation goes on answering requests (weir answers each with
# `Connection: close`) for about that long after the next one serves: the
# path where an old generation's increments must still reach the table.
# HAProxy closes idle connections when a worker stops, so its old workers
# answer few requests; the client sends a request again on a new connection
# when its connection was closed before any byte of an answer (`retries`).
# When the client is done (its connections closed) and no old generation is
# left, the sum of http_req_cnt over the keys is read from the current worker
# (`show table t` on weir's runtime_api socket; on HAProxy's stats socket,
# which the newest worker binds). Printed per round: the requests answered
# 2xx, the sum counted, lost = answered - counted, failed requests, retries,
# the answers that said `Connection: close`, the reloads that succeeded, the
# most draining generations (weir) or old workers (HAProxy) `show proc` listed
# right after a reload, and the client's elapsed time; then per proxy the
# range of lost over the rounds.
#
# Env: ROUNDS (3), N (600), RATE (100), KEYS (5), CONNS (50), RELOADS (10),
# PROXIES ("weir hap"; also hap-nopeers), PORT (18080), BACKEND_PORT (18081, and
# the next), PEER_PORT (18095), OUT (raw output: configs, logs, reload answers,
# show proc and show table answers, the client's JSON;
# /tmp/bench-out/<time>-reload-continuity), WEIR (build/master/weir), HAPROXY
# (/usr/sbin/haproxy), BENCH_DIR (../shared/bench beside the project, or beside
# the main checkout when this is a git worktree).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
[[ $# == 0 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
# ../shared/bench beside the checkout, or beside the main checkout of a worktree.
if [[ -z ${BENCH_DIR:-} ]]; then
  for BENCH_DIR in "$ROOT/../shared/bench" \
      "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared/bench"; do
    [[ -f $BENCH_DIR/lib.sh ]] && break
  done
fi
BENCH_DIR=$(cd "$BENCH_DIR" 2>/dev/null && pwd) || { echo "no shared bench at $BENCH_DIR: set BENCH_DIR" >&2; exit 1; }
export BENCH_DIR
. "$BENCH_DIR/lib.sh"
ROUNDS=${ROUNDS:-3} N=${N:-600} RATE=${RATE:-100} KEYS=${KEYS:-5} CONNS=${CONNS:-50}
RELOADS=${RELOADS:-10} PROXIES=${PROXIES:-weir hap}
PORT=${PORT:-18080} BACKEND_BASE_PORT=${BACKEND_PORT:-18081} PEER_PORT=${PEER_PORT:-18095}
WEIR=${WEIR:-$ROOT/build/master/weir} HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
B1=$BACKEND_BASE_PORT B2=$((BACKEND_BASE_PORT + 1))
D=$BENCH_TMP/reload-continuity
CLI_WEIR=$D/weir-master.sock API_WEIR=$D/weir-admin.sock
CLI_HAP=$D/haproxy-master.sock API_HAP=$D/haproxy-stats.sock

MASTER='' HAP_PEERS=no
cleanup() {
  [[ -n $MASTER ]] && stop_pid "$MASTER"
  backends_stop
}

listening() { [[ -n $(ss -Hltn "sport = :$1") ]]; }

# cli SOCKET COMMAND: one command on a weir or HAProxy CLI socket.
cli() { echo "$2" | socat -t 60 - "UNIX-CONNECT:$1"; }

weir_config() {
  cat <<EOF
# reload-continuity.sh: bench/weir.yaml's shape (one thread, round robin over
# the two nginx backends) with a stick table on x-key.
global:
  threads: 1
  timeouts: {hard_stop_after: 30s}
  runtime_api: $API_WEIR
defaults:
  mode: http
  timeouts: {connect: 5s, client: 30s, server: 30s, http_keep_alive: 30s}
frontends:
  fe_http:
    bind: ["127.0.0.1:$PORT"]
    default_backend: be_http
    http_request:
      - track: {table: t, key: "req.hdr(x-key)"}
backends:
  be_http:
    balance: roundrobin
    servers: {b1: "127.0.0.1:$B1", b2: "127.0.0.1:$B2"}
stick_tables:
  t: {type: string, key_size: 32, size: 100k, expire: 10m, store: [http_req_cnt]}
EOF
}

hap_config() {  # PEERS (yes or no)
  local localpeer='' peers='' table_peers=''
  if [[ $1 == yes ]]; then
    localpeer="    localpeer bench"
    peers="peers local
    peer bench 127.0.0.1:$PEER_PORT"
    table_peers=" peers local"
  fi
  cat <<EOF
# reload-continuity.sh: ../shared/bench/haproxy.sh's shape (one thread, round
# robin over the two nginx backends) with a stick table on x-key.
global
    nbthread 1
    hard-stop-after 30s
    stats socket $API_HAP level admin
$localpeer

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

$peers

frontend fe_http
    bind 127.0.0.1:$PORT
    http-request track-sc0 req.hdr(x-key) table t
    default_backend be_http

backend be_http
    balance roundrobin
    http-reuse safe
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2

backend t
    stick-table type string len 32 size 100k expire 10m store http_req_cnt$table_peers
EOF
}

# Each proxy (KIND weir or hap) has KIND_start, KIND_ready (wait until it can
# take the run), KIND_reload (the command the client runs: it returns once the
# reload is complete) and KIND_settle (wait until no old generation is left).
weir_start() {  # LOG
  weir_config >"$D/weir.yaml"
  "$WEIR" -c -f "$D/weir.yaml" >>"$1" 2>&1 || { log "weir -c failed: $1"; return 1; }
  "$WEIR" -f "$D/weir.yaml" -S "$CLI_WEIR" >>"$1" 2>&1 &
  MASTER=$!
}

# weir_reload: the master CLI's reload answers `Success=1` when the new
# generation serves; `show proc` after it lists the draining generations.
weir_reload() {
  local answer
  answer=$(cli "$CLI_WEIR" reload)
  echo "$answer"
  cli "$CLI_WEIR" "show proc"
  [[ $answer == Success=1* ]]
}

# weir_ready: the worker is linked to the peers agent.
weir_ready() {
  local i
  for ((i = 0; i < 150; i++)); do
    cli "$API_WEIR" "show peers" 2>/dev/null | grep -q '^agent: .* linked' && return 0
    sleep 0.1
  done
  log "weir: the worker is not linked to the peers agent after 15 s"; return 1
}

weir_settle() {
  local i
  for ((i = 0; i < 400; i++)); do
    cli "$CLI_WEIR" "show proc" | grep -q 'draining\|starting' || return 0
    sleep 0.1
  done
  log "weir: a draining generation is still there after 40 s"
}

# hap_workers: HAProxy's `show proc` lists the current worker first under
# `# workers`, the stopping ones under `# old workers`.
hap_workers() {
  cli "$CLI_HAP" "show proc" | awk -v s="$1" 'index($0, s) == 1 {w = 1; next} /^#/ {w = 0} w && NF {print $1}'
}

hap_start() {  # LOG PEERS
  HAP_PEERS=$2
  hap_config "$2" >"$D/haproxy.cfg"
  "$HAPROXY" -c -q -f "$D/haproxy.cfg" >>"$1" 2>&1 || { log "haproxy -c failed: $1"; return 1; }
  "$HAPROXY" -W -S "$CLI_HAP" -f "$D/haproxy.cfg" >>"$1" 2>&1 &
  MASTER=$!
}

# hap_synced PID: the worker's peers section has finished its resync (`show
# peers` flags with both PEERS_F_RESYNC_LOCAL and _REMOTE, 0x3), or there is
# no peers section (HAP_PEERS=no). A worker only teaches its table to the next
# one once it is synced itself: the first one after start waits its
# resync_timeout (5 s).
hap_synced() {
  local flags
  [[ $HAP_PEERS == no ]] && return 0
  flags=$(cli "$CLI_HAP" "@!$1 show peers" 2>/dev/null | grep -o '^0x[0-9a-f]*: .* flags=0x[0-9a-f]*' |
          grep -o 'flags=0x[0-9a-f]*' | head -1) || return 1
  [[ -n $flags ]] && (( (${flags#flags=} & 3) == 3 ))
}

# hap_reload: SIGUSR2 to the master; complete when `show proc` lists a new
# current worker, the previous one is no longer current, and the new one has
# learned the table from the old one (hap_synced), which is all HAProxy tells.
hap_reload() {
  local before now i
  before=$(hap_workers "# workers" | head -1)
  kill -USR2 "$MASTER"
  for ((i = 0; i < 500; i++)); do
    now=$(hap_workers "# workers" 2>/dev/null | head -1) || now=''
    if [[ -n $now && $now != "$before" ]] && hap_synced "$now"; then
      cli "$CLI_HAP" "show proc"
      return 0
    fi
    sleep 0.02
  done
  echo "reload not complete after 10 s"; cli "$CLI_HAP" "show proc"; return 1
}

hap_ready() {
  local i
  for ((i = 0; i < 150; i++)); do
    hap_synced "$(hap_workers "# workers" | head -1)" && return 0
    sleep 0.1
  done
  log "haproxy: the peers section did not finish its resync in 15 s"; return 1
}

hap_settle() {
  local i
  for ((i = 0; i < 400; i++)); do
    [[ -z $(hap_workers "# old workers") ]] && return 0
    sleep 0.1
  done
  log "haproxy: an old worker is still there after 40 s"
}

# sum_counted FILE: the sum of http_req_cnt over the keys k<N> in a `show
# table t` answer (weir and HAProxy both print `key=K ... http_req_cnt=V`).
sum_counted() {
  awk '/key=k[0-9]+ / { for (i = 1; i <= NF; i++) if ($i ~ /^http_req_cnt=/) { split($i, kv, "="); s += kv[2] } }
       END { print s + 0 }' "$1"
}

# run LABEL ROUND: one round of one proxy; prints its line and appends lost to
# $OUT/LABEL.lost.
run() {
  local label=$1 round=$2 p=$OUT/$1.$2 kind api cli_sock json answered counted
  case $label in
    weir) weir_start "$p.log" || exit 1
          kind=weir api=$API_WEIR cli_sock=$CLI_WEIR ;;
    hap) hap_start "$p.log" yes || exit 1
         kind=hap api=$API_HAP cli_sock=$CLI_HAP ;;
    hap-nopeers) hap_start "$p.log" no || exit 1
                 kind=hap api=$API_HAP cli_sock=$CLI_HAP ;;
    *) log "unknown proxy $label (weir, hap, hap-nopeers)"; exit 2 ;;
  esac
  wait_port "$PORT" 20 || { log "$label: not listening; see $p.log"; exit 1; }
  for _ in $(seq 1 100); do [[ -S $cli_sock && -S $api ]] && break; sleep 0.1; done
  ${kind}_ready || exit 1
  if [[ $kind == weir ]]; then cp "$D/weir.yaml" "$OUT/weir.yaml"; else cp "$D/haproxy.cfg" "$OUT/$label.cfg"; fi
  # The client runs the reload function with bash -c: export what it uses.
  export -f cli weir_reload hap_reload hap_workers hap_synced
  export CLI_WEIR CLI_HAP MASTER HAP_PEERS
  python3 "$HERE/reload-continuity.py" --port "$PORT" --n "$N" --rate "$RATE" --keys "$KEYS" \
    --conns "$CONNS" --reloads "$RELOADS" --reload-cmd "${kind}_reload" \
    --reload-log "$p.reloads.txt" >"$p.client.json" || { log "$label: the client failed"; exit 1; }
  ${kind}_settle
  cli "$api" "show table t" >"$p.table.txt"
  cli "$cli_sock" "show proc" >"$p.proc-end.txt"
  [[ $kind == weir ]] && cli "$api" "show peers" >"$p.peers.txt"
  stop_pid "$MASTER"; MASTER=
  for _ in $(seq 1 50); do listening "$PORT" || break; sleep 0.1; done
  json=$p.client.json
  answered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["answered_2xx"])' "$json")
  counted=$(sum_counted "$p.table.txt")
  echo $((answered - counted)) >>"$OUT/$label.lost"
  python3 - "$json" "$label" "$round" "$counted" "$p.reloads.txt" <<'EOF'
import json, re, sys
r = json.load(open(sys.argv[1]))
label, rnd, counted = sys.argv[2], sys.argv[3], int(sys.argv[4])
log = open(sys.argv[5]).read()
ok = sum(1 for x in r["reloads"] if x["status"] == 0)
# `show proc` after each reload: the draining generations (weir) or old
# workers (HAProxy) it listed.
def old_ones(part):
    if "# workers" in part:  # HAProxy
        m = re.search(r"^# old workers\n((?:[^#\n].*\n?)*)", part, re.M)
        return len([l for l in m.group(1).splitlines() if l.strip()]) if m else 0
    return len(re.findall(r"^\d+\s+worker\s+\d+\s+draining", part, re.M))
draining = [old_ones(part) for part in log.split("--- reload ")[1:]]
other = {k: v for k, v in r["statuses"].items() if not k.startswith("2")}
print("%-11s %5s %8d %7d %5d %6d %7d %6d %7s %8s %8.2f %s" % (
    label, rnd, r["answered_2xx"], counted, r["answered_2xx"] - counted, r["failed"],
    r["retries"], r["close_responses"], "%d/%d" % (ok, len(r["reloads"])),
    ("%d" % max(draining)) if draining else "-", r["elapsed_s"],
    (" non2xx=%s" % other) if other else ""))
for e in r["errors"]:
    print("    " + e, file=sys.stderr)
if label == "weir" and r["close_responses"] == 0:
    print("    weir: no answer came from a draining generation: the old generation's"
          " path was not exercised (raise CONNS)", file=sys.stderr)
EOF
}

for p in "$PORT" "$B1" "$B2" "$PEER_PORT"; do
  listening "$p" && { log "port $p already in use; aborting (PORT, BACKEND_PORT, PEER_PORT move them)"; exit 1; }
done
[[ -x $WEIR ]] || { log "no weir binary at $WEIR (scripts/build.sh)"; exit 1; }
OUT=${OUT:-/tmp/bench-out/$(date +%Y%m%d-%H%M%S)-reload-continuity}; mkdir -p "$OUT" "$D"
log "raw output: $OUT"
trap cleanup EXIT
trap 'exit 130' INT TERM
backends_start 2 || exit 1
log "$ROUNDS rounds of: $PROXIES; $N requests at $RATE/s over $KEYS keys and $CONNS connections, $RELOADS reloads"
printf '%-11s %5s %8s %7s %5s %6s %7s %6s %7s %8s %8s\n' proxy round answered counted lost failed \
  retries close reloads draining elapsed
for ((r = 1; r <= ROUNDS; r++)); do
  for label in $PROXIES; do run "$label" "$r"; done
done
for label in $PROXIES; do
  awk -v l="$label" -v n="$N" '
    NR == 1 {min = max = $1} {min = ($1 < min ? $1 : min); max = ($1 > max ? $1 : max); all = all " " $1}
    END {printf "reload-continuity: %-11s lost %d-%d of %d (rounds:%s)\n", l, min, max, n, all}' "$OUT/$label.lost"
done
