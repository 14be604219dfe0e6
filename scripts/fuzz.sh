#!/bin/bash
# fuzz.sh [target...]: runs weir's libFuzzer targets (default: all of them).
# For each target: replays every seed of tests/fuzz/corpus/<target>/ once, then
# fuzzes for FUZZ_SECONDS from those seeds, and prints the number of executions.
# Any crash, sanitizer report, leak, timeout or failed check stops the script
# with status 1; the input that did it is kept as <build>/fuzz/<target>-crash-*
# (replay it with: <build>/tests/weir_fuzz_<target> FILE).
#
# Environment:
#   FUZZ_BUILD      build directory holding tests/weir_fuzz_* (default build-asan;
#                   configure it with clang, -DWEIR_FUZZ=ON -DWEIR_SANITIZE=ON)
#   FUZZ_SECONDS    fuzzing time per target (default 30)
#   FUZZ_CORPUS     "tmp" (default): start from a copy of the seeds, thrown away
#                   after; "keep": grow <build>/fuzz/corpus/<target> across runs
#   FUZZ_JOBS       parallel fuzzing processes per target (default 1; >1 uses -fork)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${FUZZ_BUILD:-build-asan}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-1}
ALL=(request response chunked config condition client_hello ipc_message master_state proxy_header table_command peers_message node_message)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
OUT=$BUILD/fuzz
mkdir -p "$OUT"

dict_for() {  # target
  case $1 in
    request | response | chunked) echo "-dict=tests/fuzz/http.dict" ;;
    *) [ -f "tests/fuzz/$1.dict" ] && echo "-dict=tests/fuzz/$1.dict" || true ;;
  esac
}

total=0
for t in "${targets[@]}"; do
  bin=$BUILD/tests/weir_fuzz_$t
  seeds=tests/fuzz/corpus/$t
  [ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 1; }
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
  # 1. Replay: every seed once.
  if ! "$bin" "$seeds"/* >"$OUT/$t-replay.log" 2>&1; then
    tail -n 60 "$OUT/$t-replay.log"
    echo "fuzz: $t fails on a seed of $seeds" >&2
    exit 1
  fi
  # 2. Fuzz from the seeds.
  if [ "${FUZZ_CORPUS:-tmp}" = keep ]; then
    corpus=$OUT/corpus/$t
    mkdir -p "$corpus"
    cp -n "$seeds"/* "$corpus"/
  else
    corpus=$(mktemp -d)
    cp "$seeds"/* "$corpus"/
  fi
  extra=()
  [ "$JOBS" -gt 1 ] && extra+=("-fork=$JOBS")
  d=$(dict_for "$t")
  [ -n "$d" ] && extra+=("$d")
  status=0
  "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$OUT/$t-" "${extra[@]}" "$corpus" >"$OUT/$t.log" 2>&1 || status=$?
  [ "${FUZZ_CORPUS:-tmp}" = keep ] || rm -rf "$corpus"
  if [ $status -ne 0 ]; then
    tail -n 80 "$OUT/$t.log"
    echo "fuzz: $t found a problem (exit $status); input kept as $OUT/$t-crash-* (or -leak-, -timeout-, -oom-)" >&2
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/$t.log" | awk '{s += $2} END {print s + 0}')
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$OUT/$t.log" | tail -n 1 || true)
  echo "fuzz: $t: $(ls "$seeds" | wc -l) seeds replayed, $execs executions in ${SECONDS_PER_TARGET} s, no findings. ${done_line}"
  total=$((total + execs))
done
echo "fuzz: $total executions in total"
