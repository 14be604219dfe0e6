#!/bin/bash
# fuzz.sh [target...]: long fuzzing runs, beyond CI's 30 seconds per target.
# Builds the libFuzzer targets in build-fuzz/ (clang, ASan+UBSan), then runs
# scripts/fuzz.sh with FUZZ_SECONDS (default 600) per target and a corpus that
# grows across runs in build-fuzz/fuzz/corpus/<target>. FUZZ_JOBS=N fuzzes with
# N processes per target. Inputs worth keeping can be minimised into the seeds:
#   build-fuzz/tests/weir_fuzz_T -merge=1 tests/fuzz/corpus/T build-fuzz/fuzz/corpus/T
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DWEIR_SANITIZE=ON -DWEIR_TESTS=ON -DWEIR_BENCH=OFF -DWEIR_FUZZ=ON >/dev/null
ninja -C build-fuzz -j"${BUILD_JOBS:-2}" weir_fuzz_request weir_fuzz_response weir_fuzz_chunked \
  weir_fuzz_config
FUZZ_BUILD=build-fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-600} FUZZ_CORPUS=keep exec bash scripts/fuzz.sh "$@"
