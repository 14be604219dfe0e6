#!/bin/bash
# weir.sh start|stop|reload - driver for the shared side-by-side bench harness
# (../shared/bench/run.sh). Runs the release build in build/ (scripts/build.sh
# makes it) on bench/weir.yaml, daemonized, with its pid in $BENCH_TMP/weir.
# VARIANT=leastconn (balance leastconn) or VARIANT=maxconn10 (maxconn: 10 on each
# server, so that wrk's 50 connections queue) runs a variant of that
# configuration; bench/haproxy-variant.sh runs HAProxy with the same settings.
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

config() {
  local cfg=$D/weir-${VARIANT:-plain}.yaml
  case ${VARIANT:-} in
    "") cp "$HERE/weir.yaml" "$cfg" ;;
    leastconn) sed 's/balance: roundrobin/balance: leastconn/' "$HERE/weir.yaml" >"$cfg" ;;
    maxconn10)
      sed -e 's|b1: "127.0.0.1:18081"|b1: {address: "127.0.0.1:18081", maxconn: 10}|' \
          -e 's|b2: "127.0.0.1:18082"|b2: {address: "127.0.0.1:18082", maxconn: 10}|' \
          "$HERE/weir.yaml" >"$cfg" ;;
    *) echo "unknown VARIANT=$VARIANT (leastconn, maxconn10)" >&2; exit 2 ;;
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
