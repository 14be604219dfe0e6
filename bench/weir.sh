#!/bin/bash
# weir.sh start|stop|reload - driver for the shared side-by-side bench harness
# (../shared/bench/run.sh). Runs the release build in build/ (scripts/build.sh
# makes it) on bench/weir.yaml, daemonized, with its pid in $BENCH_TMP/weir.
# VARIANT=leastconn (balance leastconn) or VARIANT=maxconn10 (maxconn: 10 on each
# server, so that wrk's 50 connections queue) runs a variant of that
# configuration; bench/haproxy-variant.sh runs HAProxy with the same settings.
# VARIANT=stick and VARIANT=stickfill add a stick table keyed by the x-key
# header (issue 19's benchmark, bench/stick.sh): stick tracks it in a 1m-entry
# table and denies above an http_req_rate(10s) never reached; stickfill only
# tracks it, in a 2m-entry table storing http_req_cnt and http_req_rate(10s).
# VARIANT=sticky: both backends stick on src (a 100k-entry ip table storing
# server_key); VARIANT=cookie: be_http inserts a SRV cookie (indirect, nocache),
# which wrk never sends back, so every response sets it (issue 21).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WEIR=${WEIR:-$ROOT/build/master/weir}
D=${BENCH_TMP:-/tmp/bench}/weir
PIDF=$D/weir.pid

wait_gone() {  # pid
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# stick_config KIND: weir.yaml with fe_http tracking req.hdr(x-key) in a stick
# table (KIND stick: the throughput rule; stickfill: the memory table).
stick_config() {
  local table rules=""
  if [[ $1 == stick ]]; then
    table='keys: {type: string, key_size: 32, size: 1m, expire: 60s, store: ["http_req_rate(10s)"]}'
    rules='      - deny: {status: 429}
        if: "{ sc0_http_req_rate gt 1000000 }"'
  else
    table='keys: {type: string, key_size: 16, size: 2m, expire: 10m, store: [http_req_cnt, "http_req_rate(10s)"]}'
  fi
  awk -v rules="$rules" '
    /^  fe_http: / {
      print "  fe_http:"
      print "    bind: [\"127.0.0.1:18080\"]"
      print "    default_backend: be_http"
      print "    http_request:"
      print "      - track: {table: keys, key: \"req.hdr(x-key)\"}"
      if (rules != "") print rules
      found = 1; next
    }
    { print }
    END { if (!found) { print "weir.yaml: no fe_http line to replace" > "/dev/stderr"; exit 1 } }
  ' "$HERE/weir.yaml" || return 1
  printf 'stick_tables:\n  %s\n' "$table"
}

config() {
  local cfg=$D/weir-${VARIANT:-plain}.yaml
  case ${VARIANT:-} in
    "") cp "$HERE/weir.yaml" "$cfg" ;;
    leastconn) sed 's/balance: roundrobin/balance: leastconn/' "$HERE/weir.yaml" >"$cfg" ;;
    maxconn10)
      sed -e 's|b1: "127.0.0.1:18081"|b1: {address: "127.0.0.1:18081", maxconn: 10}|' \
          -e 's|b2: "127.0.0.1:18082"|b2: {address: "127.0.0.1:18082", maxconn: 10}|' \
          "$HERE/weir.yaml" >"$cfg" ;;
    stick | stickfill) stick_config "$VARIANT" >"$cfg" || exit 1 ;;
    sticky)
      { printf 'stick_tables:\n  by_src: {type: ip, size: 100k, expire: 30m, store: [server_key]}\n'
        sed 's|^    balance: roundrobin|&\n    stick: {match: src, store: src, table: by_src}|' "$HERE/weir.yaml"
      } >"$cfg" ;;
    cookie)
      awk '{ print } /^  be_http:/ { print "    cookie: {name: SRV, indirect: true, nocache: true}" }' \
        "$HERE/weir.yaml" >"$cfg" ;;
    *) echo "unknown VARIANT=$VARIANT (leastconn, maxconn10, stick, stickfill, sticky, cookie)" >&2; exit 2 ;;
  esac
  echo "$cfg"
}

case ${1:-} in
  start)
    mkdir -p "$D"
    [[ -x $WEIR ]] || { echo "no weir binary at $WEIR (run scripts/build.sh)" >&2; exit 1; }
    cfg=$(config)
    "$WEIR" -c -f "$cfg" >/dev/null
    "$WEIR" -D -f "$cfg" -p "$PIDF" >>"$D/weir.log" 2>&1 ;;
  reload)
    kill -HUP "$(cat "$PIDF")" ;;
  stop)
    if [[ -f $PIDF ]]; then
      pid=$(cat "$PIDF")
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid"
      rm -f "$PIDF"
    fi ;;
  *) echo "usage: $0 start|stop|reload" >&2; exit 2 ;;
esac
