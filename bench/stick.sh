#!/bin/bash
# stick.sh [rate|memory|all] - issue 19's stick-table benchmark, weir beside HAProxy.
#
#   rate    scenario a of ../shared/bench (keep-alive GET /1k, wrk -t1 -c50, 2 s
#           warm-up, then DUR s) with bench/stick.lua sending `x-key: k<N>`, N
#           cycling through KEYS values, against three proxies in turn, ROUNDS
#           times (A B C A B C ...):
#             weir        bench/weir.yaml as is (no rule)
#             weir-rule   VARIANT=stick: tracks req.hdr(x-key) in a string table (1m
#                         entries, http_req_rate(10s)) and denies with 429 above
#                         a rate never reached, on every request
#             hap-rule    HAProxy 2.6 with the same table and rules
#           Prints each run (and the proxy's CPU time per request), the ratios
#           weir-rule/weir and weir-rule/hap-rule per round and their medians
#           (targets: >= 0.95 and >= 1.00).
#   memory  VARIANT=stickfill (string table, key_size 16, http_req_cnt and
#           http_req_rate(10s), 2m entries, expire 10m) filled by FILL_KEYS
#           requests with distinct keys; prints the entries `show table` counts
#           and (RSS after - RSS before) / entries, RSS summed over all the
#           proxy's processes (master and workers), weir then HAProxy.
#   all     both (the default): about 4 minutes.
#
# Env: DUR (10), ROUNDS (3), KEYS (100000), FILL_KEYS (1000000), FILL_MAX (300,
# the fill's time limit in s), OUT (raw output, /tmp/bench-out/<time>-stick),
# WEIR (build/master/weir), BENCH_DIR (../shared/bench from the project root).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export BENCH_DIR=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" && pwd)}
. "$BENCH_DIR/lib.sh"
DUR=${DUR:-10} ROUNDS=${ROUNDS:-3} KEYS=${KEYS:-100000}
FILL_KEYS=${FILL_KEYS:-1000000} FILL_MAX=${FILL_MAX:-300}
U=http://127.0.0.1:18080/1k
LUA=$HERE/stick.lua
WEIR_API=$(awk '/^ *runtime_api:/ {print $2}' "$HERE/weir.yaml")
HAP_API=$BENCH_TMP/haproxy-variant/stats.sock

# The proxies: label, start, stop, master pid file, runtime API socket.
declare -A START=(
  [weir]="VARIANT= '$HERE/weir.sh' start"
  [weir-rule]="VARIANT=stick '$HERE/weir.sh' start"
  [hap-rule]="VARIANT=stick '$HERE/haproxy-variant.sh' start"
  [weir-fill]="VARIANT=stickfill '$HERE/weir.sh' start"
  [hap-fill]="VARIANT=stickfill '$HERE/haproxy-variant.sh' start"
)
weir_stop="'$HERE/weir.sh' stop" hap_stop="'$HERE/haproxy-variant.sh' stop"
declare -A STOP=([weir]=$weir_stop [weir-rule]=$weir_stop [weir-fill]=$weir_stop
                 [hap-rule]=$hap_stop [hap-fill]=$hap_stop)
weir_pid=$BENCH_TMP/weir/weir.pid hap_pid=$BENCH_TMP/haproxy-variant/haproxy.pid
declare -A PIDFILE=([weir]=$weir_pid [weir-rule]=$weir_pid [weir-fill]=$weir_pid
                    [hap-rule]=$hap_pid [hap-fill]=$hap_pid)
declare -A API=([weir-fill]=$WEIR_API [hap-fill]=$HAP_API)

STOP_NOW='' BG=''
cleanup() {
  [[ -n $BG ]] && kill "$BG" 2>/dev/null
  [[ -n $STOP_NOW ]] && timeout 20 bash -c "$STOP_NOW"
  backends_stop
}

listening() { [[ -n $(ss -Hltn "sport = :$1") ]]; }

proxy_start() {  # LABEL
  STOP_NOW=${STOP[$1]}
  timeout 30 bash -c "${START[$1]}" && wait_port 18080 || { log "$1: start failed"; exit 1; }
}

proxy_stop() {
  local i
  timeout 20 bash -c "$STOP_NOW"; STOP_NOW=
  for ((i = 0; i < 50; i++)); do listening 18080 || return 0; sleep 0.1; done
  log "proxy still listening after stop"; exit 1
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }

# cpu_ticks PID...: user + system CPU time of the processes, in clock ticks.
cpu_ticks() {
  local p t sum=0
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}

# rate_run LABEL ROUND: scenario a with the keys (2 s warm-up, then DUR s), as
# ../shared/bench's wrk_scenario, plus the proxy's CPU time per request (all its
# processes, in microseconds): a figure that noisy neighbours disturb less.
rate_run() {
  local f=$OUT/$1-a_key.$2.txt pids c0 c1 reqs
  pids=$(tree_pids "$(cat "${PIDFILE[$1]}")")
  STICK_KEYS=$KEYS timeout --foreground 10 wrk -t1 -c50 -d2s -s "$LUA" "$U" >/dev/null 2>&1
  c0=$(cpu_ticks $pids)
  STICK_KEYS=$KEYS timeout --foreground $((DUR + 15)) \
    wrk -t1 -c50 -d"${DUR}s" --latency -s "$LUA" "$U" >"$f" 2>&1
  c1=$(cpu_ticks $pids)
  reqs=$(awk '/ requests in / {print $1}' "$f")
  printf '%-10s %-12s %s %10.2f\n' "$1" "a_key.$2" "$(wrk_parse "$f")" \
    "$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="${reqs:-0}" \
         'BEGIN {print (n > 0 ? t * 1e6 / hz / n : 0)}')"
}

rate() {
  local i label line rps cpu w=() r=() h=() cw=() cr=() ch=() rw=() rh=()
  log "rate: $ROUNDS rounds of weir, weir-rule, hap-rule; $KEYS keys; ${DUR}s runs"
  printf '%s %10s\n' "$(hdr)" cpu_us/req
  for ((i = 1; i <= ROUNDS; i++)); do
    for label in weir weir-rule hap-rule; do
      proxy_start "$label"
      line=$(rate_run "$label" "$i"); echo "$line"
      proxy_stop
      read -r _ _ rps _ _ _ _ cpu <<<"$line"
      case $label in
        weir) w+=("$rps") cw+=("$cpu") ;;
        weir-rule) r+=("$rps") cr+=("$cpu") ;;
        hap-rule) h+=("$rps") ch+=("$cpu") ;;
      esac
    done
    rw+=("$(ratio "${r[-1]}" "${w[-1]}")") rh+=("$(ratio "${r[-1]}" "${h[-1]}")")
  done
  echo "stick rate: median req/s weir=$(median "${w[@]}") weir-rule=$(median "${r[@]}")" \
       "hap-rule=$(median "${h[@]}")"
  echo "stick rate: per-round weir-rule/weir = ${rw[*]} | median $(median "${rw[@]}") (target >= 0.95)"
  echo "stick rate: per-round weir-rule/hap-rule = ${rh[*]} | median $(median "${rh[@]}") (target >= 1.00)"
  echo "stick rate: median cpu_us/req weir=$(median "${cw[@]}") weir-rule=$(median "${cr[@]}")" \
       "hap-rule=$(median "${ch[@]}")"
}

# tree_pids PID: PID and its descendants.
tree_pids() {
  local c
  echo "$1"
  for c in $(ps -o pid= --ppid "$1"); do tree_pids "$c"; done
}

# entries SOCKET [KEEP]: the `used` count of the first table `show table` lists
# (weir: "used: N", HAProxy: "used:N"); the answer is appended to KEEP.
entries() {
  echo "show table" | socat -t 5 - "UNIX-CONNECT:$1" | tee -a "${2:-/dev/null}" |
    grep -o 'used: *[0-9]*' | head -1 | grep -o '[0-9]*'
}

# rss_of LABEL WHEN PID...: the sum of VmRSS in KiB; each process's kept in $OUT.
rss_of() {
  local label=$1 when=$2 p kb sum=0; shift 2
  for p in "$@"; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    echo "$when pid=$p $(cat "/proc/$p/comm" 2>/dev/null) VmRSS=${kb:-0}kB" >>"$OUT/$label-rss.txt"
    sum=$((sum + ${kb:-0}))
  done
  echo "$sum"
}

fill() {  # LABEL
  local before after used pids t0 t1 f=$OUT/$1-fill.txt
  proxy_start "$1"
  # Connections and buffers first (no x-key header: nothing is tracked).
  timeout --foreground 10 wrk -t1 -c50 -d2s "$U" >/dev/null 2>&1
  sleep 1
  used=$(entries "${API[$1]}" "$OUT/$1-show-table.txt") || { log "$1: show table failed"; exit 1; }
  [[ $used == 0 ]] || log "$1: $used entries before the fill"
  pids=$(tree_pids "$(cat "${PIDFILE[$1]}")")
  before=$(rss_of "$1" before $pids)
  t0=$(date +%s.%N)
  # The script stops sending after FILL_KEYS responses, but wrk itself runs for
  # its -d: it is interrupted (it prints its summary on SIGINT) once the table
  # holds every key, or when the count has not moved for 5 s.
  STICK_KEYS=$FILL_KEYS STICK_ONCE=1 wrk -t1 -c50 -d"${FILL_MAX}s" -s "$LUA" "$U" >"$f" 2>&1 &
  BG=$!
  local last=-1 still=0
  while kill -0 "$BG" 2>/dev/null; do
    sleep 0.5
    used=$(entries "${API[$1]}" 2>/dev/null) || continue
    ((used >= FILL_KEYS)) && break
    if ((used == last && used > 0)); then ((++still < 10)) || break; else still=0 last=$used; fi
  done
  t1=$(date +%s.%N)
  kill -INT "$BG" 2>/dev/null || true
  wait "$BG" || true
  BG=''
  sleep 2
  used=$(entries "${API[$1]}" "$OUT/$1-show-table.txt") || { log "$1: show table failed"; exit 1; }
  pids=$(tree_pids "$(cat "${PIDFILE[$1]}")")
  after=$(rss_of "$1" after $pids)
  # The fill's time: until the table held every key.
  awk -v label="$1" -v used="$used" -v b="$before" -v a="$after" -v t0="$t0" -v t1="$t1" \
      -v reqs="$(awk '/ requests in / {print $1}' "$f")" -v procs="$(wc -w <<<"$pids")" '
    BEGIN {
      printf "%-10s procs=%d entries=%d rss_before=%.1fMiB rss_after=%.1fMiB bytes/entry=%.1f", \
        label, procs, used, b / 1024, a / 1024, (used > 0 ? (a - b) * 1024 / used : 0)
      printf " (fill: %d requests in %.1f s)\n", reqs, t1 - t0
    }'
  ((used >= FILL_KEYS)) || log "$1: only $used of $FILL_KEYS keys in the table"
  grep -h 'non-2xx\|Socket errors' "$f" >&2 || true
  proxy_stop
}

memory() {
  log "memory: $FILL_KEYS keys into weir-fill, then hap-fill"
  fill weir-fill
  fill hap-fill
}

mode=${1:-all}
case $mode in
  rate | memory | all) ;;
  *) sed -n '2,24p' "$0" >&2; exit 2 ;;
esac
for p in 18080 18081 18082 18090; do listening "$p" && { log "port $p already in use; aborting"; exit 1; }; done
OUT=${OUT:-/tmp/bench-out/$(date +%Y%m%d-%H%M%S)-stick}; mkdir -p "$OUT"
log "raw output: $OUT"
trap cleanup EXIT
trap 'exit 130' INT TERM
backends_start 2 || exit 1
case $mode in
  rate) rate ;;
  memory) memory ;;
  all) rate; memory ;;
esac
