#!/bin/bash
# soak.sh [reloads|steady|both] - long-running fault soak of weir (issue 13):
# mixed traffic (keep-alive, close, TLS, tcp, streaming responses of up to 20 s,
# uploads, a flapping server) with a runtime change to a server every second.
#   reloads: DURATION seconds (default 1800) with a reload every RELOAD_EVERY (60) s
#   steady:  DURATION seconds without reloads (the worker's fds and RSS must stay flat)
#   both:    one, then the other (the default)
# Needs the release build (scripts/build.sh) and python3; prints a summary per run
# and exits 1 if a run failed. Output under $OUT (default /tmp/soak-<time>).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WEIR=${WEIR:-$ROOT/build/master/weir}
ORIGIN=${ORIGIN:-$ROOT/build/tests/weir-origin}
OUT=${OUT:-/tmp/soak-$(date +%Y%m%d-%H%M%S)}
DURATION=${DURATION:-1800}
RELOAD_EVERY=${RELOAD_EVERY:-60}
[[ -x $WEIR && -x $ORIGIN ]] || { echo "build first: scripts/build.sh" >&2; exit 1; }
what=${1:-both}
rc=0
run() {  # name extra-args...
  local name=$1; shift
  echo "== soak $name -> $OUT/$name"
  python3 "$HERE/soak.py" --weir "$WEIR" --origin "$ORIGIN" --dir "$OUT/$name" \
    --duration "$DURATION" --sample-every "${SAMPLE_EVERY:-60}" "$@" 2>&1 | tee "$OUT/$name.txt" || rc=1
}
mkdir -p "$OUT"
case $what in
  reloads) run reloads --reload-every "$RELOAD_EVERY" ;;
  steady) run steady ;;
  both) run reloads --reload-every "$RELOAD_EVERY"; run steady ;;
  *) echo "usage: $0 [reloads|steady|both]" >&2; exit 2 ;;
esac
exit $rc
