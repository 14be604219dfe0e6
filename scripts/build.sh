#!/bin/bash
# build.sh [BUILD_DIR] [extra cmake args...]: configures and builds weir (release
# by default) with Ninja. BUILD_DIR defaults to build/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$ROOT/build}
shift || true
cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
ninja -C "$dir" -j"$(nproc)"
