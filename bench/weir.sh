#!/bin/bash
# weir.sh start|stop|reload - driver for the shared side-by-side bench harness
# (../shared/bench/run.sh). Runs the release build in build/ (scripts/build.sh
# makes it) on bench/weir.yaml, daemonized, with its pid in $BENCH_TMP/weir.
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

case ${1:-} in
  start)
    mkdir -p "$D"
    [[ -x $WEIR ]] || { echo "no weir binary at $WEIR (run scripts/build.sh)" >&2; exit 1; }
    "$WEIR" -c -f "$HERE/weir.yaml" >/dev/null
    "$WEIR" -D -f "$HERE/weir.yaml" -p "$PIDF" >>"$D/weir.log" 2>&1 ;;
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
