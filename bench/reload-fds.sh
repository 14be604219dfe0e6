#!/bin/bash
# reload-fds.sh [N]: starts weir on bench/weir.yaml with a master CLI, reloads it
# N times (default 200) through the CLI, and compares the master's open file
# descriptors and RSS before and after. Not a CI test: a leak check to run by hand.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WEIR=${WEIR:-$ROOT/build/master/weir}
N=${1:-200}
D=$(mktemp -d)
SOCK=$D/master.sock
"$WEIR" -f "$ROOT/bench/weir.yaml" -S "$SOCK" >"$D/out.log" 2>"$D/err.log" &
MASTER=$!
trap 'kill $MASTER 2>/dev/null; wait $MASTER 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do [[ -S $SOCK ]] && break; sleep 0.1; done
cli() { echo "$1" | socat -t 60 - "UNIX-CONNECT:$SOCK"; }
settle() {  # wait until no generation drains any more
  for _ in $(seq 1 300); do cli "show proc" | grep -q draining || return 0; sleep 0.1; done
}
cli reload >/dev/null
settle
fds() { ls "/proc/$MASTER/fd" | wc -l; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$MASTER/status"; }
f0=$(fds) r0=$(rss)
for i in $(seq 1 "$N"); do
  cli reload | head -1 | grep -q '^Success=1' || { echo "reload $i failed"; exit 1; }
done
settle
f1=$(fds) r1=$(rss)
echo "reloads=$N master_fds before=$f0 after=$f1 master_rss_kib before=$r0 after=$r1"
[[ $f0 == "$f1" ]]
