#!/bin/bash
# test.sh: installs what the tests need, then
#   1. checks formatting (clang-format) of weir's C++ sources, and every configuration
#      example (etc/, README.md, doc/) against doc/weir.schema.json (scripts/check-schema.py;
#      the loader's key tables are compared with the schema in step 2, by CTest, with weir),
#   2. builds release with g++ (warnings are errors) and runs every test (ctest), then
#      builds the last commit before Protobuf and upgrades from it (tests/upgrade/from-commit.sh),
#   3. builds with clang + AddressSanitizer + UndefinedBehaviorSanitizer, fuzzes the
#      parsers (scripts/fuzz.sh: every seed replayed, then FUZZ_SECONDS=30 per target),
#      builds with ThreadSanitizer and runs the tests labelled "sanitize" there, then
#      runs the unit and "sanitize" tests under ASan+UBSan.
# Prints the duration of each stage. Exit status is non-zero if anything fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
stage_start=$T0
stage() {  # name
  local now; now=$(date +%s)
  echo "== stage done in $((now - stage_start)) s"
  stage_start=$now
  echo "== $1"
}
echo "== dependencies"
bash scripts/deps.sh test

stage "format check"
mapfile -t sources < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find common worker master tests bench -name '*.cpp' -o -name '*.h')
if ! clang-format --dry-run --Werror "${sources[@]}"; then
  echo "format check failed: run clang-format -i on the files above" >&2
  exit 1
fi

stage "configuration schema (doc/weir.schema.json against every example)"
python3 scripts/check-schema.py

JOBS=$(nproc)
stage "release build (g++, -Werror)"
CC=gcc CXX=g++ cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEIR_TESTS=ON >/dev/null
ninja -C build -j"$JOBS"

stage "tests (release)"
(cd build && ctest --output-on-failure -j2 --timeout 300)

stage "upgrade from the last commit before Protobuf (tests/upgrade/from-commit.sh)"
bash tests/upgrade/from-commit.sh

stage "sanitizer build (clang, ASan+UBSan)"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DWEIR_SANITIZE=ON -DWEIR_TESTS=ON -DWEIR_BENCH=OFF -DWEIR_FUZZ=ON >/dev/null
ninja -C build-asan -j"$JOBS" weir weir-origin weir_unit_tests weir_integration_smoke_tests \
  weir_fuzz_request weir_fuzz_response weir_fuzz_chunked weir_fuzz_config weir_fuzz_condition \
  weir_fuzz_client_hello weir_fuzz_ipc_message weir_fuzz_master_state weir_fuzz_proxy_header \
  weir_fuzz_table_command weir_fuzz_peers_message weir_fuzz_node_message

stage "fuzzing (libFuzzer: replay each seed corpus, then ${FUZZ_SECONDS:-30} s per target)"
FUZZ_BUILD=build-asan FUZZ_SECONDS=${FUZZ_SECONDS:-30} bash scripts/fuzz.sh

stage "thread sanitizer build (clang, TSan) and its tests (label sanitize)"
CC=clang CXX=clang++ cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DWEIR_TSAN=ON -DWEIR_TESTS=ON -DWEIR_BENCH=OFF >/dev/null
ninja -C build-tsan -j"$JOBS" weir weir-origin weirctl weir-next weir_integration_smoke_tests
# A data race reported in weir's worker threads stops that process (halt_on_error),
# which the tests see as failed traffic.
# tests/tsan.supp: what libzmq (not instrumented) does inside itself.
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$ROOT/tests/tsan.supp" \
  ctest --output-on-failure -j2 --timeout 300 -L sanitize)

stage "tests (ASan+UBSan: unit + label sanitize)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2 --timeout 300 -L 'unit|sanitize')

stage "done"
echo "== all stages passed in $(( $(date +%s) - T0 )) s"
