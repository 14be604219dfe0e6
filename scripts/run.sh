#!/bin/bash
# run.sh: installs what weir needs, builds it, starts two demo origin servers on
# 127.0.0.1:9001 and :9002 and runs weir in the foreground on etc/weir.yaml, so
# that `curl http://127.0.0.1:8080/` answers through the proxy. Ctrl-C stops all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/deps.sh run
bash scripts/build.sh "$ROOT/build" -DWEIR_TESTS=OFF -DWEIR_BENCH=OFF
ORIGIN=$ROOT/build/tests/weir-origin
WEIR=$ROOT/build/master/weir
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$ORIGIN" --listen 127.0.0.1:9001 --name s1 & pids+=($!)
"$ORIGIN" --listen 127.0.0.1:9002 --name s2 & pids+=($!)
"$WEIR" -c -f etc/weir.yaml
echo "weir: try  curl -i http://127.0.0.1:8080/   (Ctrl-C to stop)"
"$WEIR" -f etc/weir.yaml & pids+=($!)
wait "${pids[-1]}"
