#!/bin/bash
# from-commit.sh [COMMIT]: proves the upgrade from an older weir to this one.
# Builds weir at COMMIT (release, the weir binary only, in build-prev/<commit>,
# kept for the next run), then builds and runs tests/upgrade/upgrade_test.cpp
# (ctest label "upgrade") in the release build (build/) against it: a binary
# upgrade under traffic with no failed request, and a worker respawned by the
# old master after a package upgrade. CI runs it (scripts/test.sh).
#
# The default COMMIT is the last one before the messages between processes
# became Protobuf (issue 17): 8b0ab2e, "HttpTransaction: accessors nobody
# calls removed". It needs the repository's history (not a shallow clone).
set -euo pipefail
PREVIOUS=${1:-8b0ab2e8ae0b988f1b0b9f6cd23087dc1f7e5fe4}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if ! git cat-file -e "$PREVIOUS^{commit}" 2>/dev/null; then
  git fetch -q --unshallow 2>/dev/null || true
fi
if ! git cat-file -e "$PREVIOUS^{commit}" 2>/dev/null; then
  echo "from-commit.sh: commit $PREVIOUS is not in this clone (a shallow clone?); fetch the" \
       "history (git fetch --unshallow) and run again" >&2
  exit 1
fi
short=$(git rev-parse --short=12 "$PREVIOUS")
SRC=$ROOT/build-prev/src-$short
BUILD=$ROOT/build-prev/$short
if [[ ! -x $BUILD/master/weir ]]; then
  echo "from-commit.sh: building weir at $short"
  rm -rf "$SRC"
  mkdir -p "$SRC"
  git archive "$PREVIOUS" | tar -x -C "$SRC"
  CC=${CC:-gcc} CXX=${CXX:-g++} cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DWEIR_TESTS=OFF >/dev/null
  ninja -C "$BUILD" -j"$(nproc)" weir
fi
"$BUILD/master/weir" -v | head -1
cmake -S "$ROOT" -B "$ROOT/build" -DWEIR_PREVIOUS_BINARY="$BUILD/master/weir" >/dev/null
ninja -C "$ROOT/build" -j"$(nproc)" weir_upgrade_tests
cd "$ROOT/build"
ctest --output-on-failure -L upgrade --timeout 300
