#!/bin/bash
# weir-tls.sh start|stop|reload - weir terminating TLS on :18443 for the shared TLS
# harness (../shared/bench/tls.sh): the release build in build/ on bench/weir-tls.yaml,
# with the certificate tls.sh writes ($TLS_DIR, default $BENCH_TMP/tls; run
# `tls.sh cert` first or let tls.sh do it).
#   cd ../shared/bench && ./tls.sh compare haproxy "./haproxy-tls.sh start" \
#     "./haproxy-tls.sh stop" weir "$PWD/../../main/bench/weir-tls.sh start" \
#     "$PWD/../../main/bench/weir-tls.sh stop"
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WEIR=${WEIR:-$ROOT/build/master/weir}
BENCH_TMP=${BENCH_TMP:-/tmp/bench}
export TLS_DIR=${TLS_DIR:-$BENCH_TMP/tls}
D=$BENCH_TMP/weir-tls
PIDF=$D/weir.pid

wait_gone() {  # pid
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

case ${1:-} in
  start)
    mkdir -p "$D"
    [[ -x $WEIR ]] || { echo "no weir binary at $WEIR (run scripts/build.sh)" >&2; exit 1; }
    [[ -r $TLS_DIR/cert+key.pem ]] || { echo "no $TLS_DIR/cert+key.pem (run tls.sh cert)" >&2; exit 1; }
    "$WEIR" -c -f "$HERE/weir-tls.yaml" >/dev/null
    "$WEIR" -D -f "$HERE/weir-tls.yaml" -p "$PIDF" >>"$D/weir.log" 2>&1 ;;
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
