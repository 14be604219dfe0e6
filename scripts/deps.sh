#!/bin/bash
# deps.sh [run|test|package]: installs the Debian 12 packages weir needs, and
# only those that are missing (idempotent). "run" = build + run; "test" = also
# the test, sanitizer and formatting tools; "package" = build + the Debian
# packaging tools (scripts/package.sh).
set -euo pipefail
what=${1:-run}
pkgs=(build-essential cmake ninja-build pkg-config libssl-dev libyaml-cpp-dev libjemalloc-dev
      libpcre2-dev libprotobuf-dev protobuf-compiler libzmq3-dev cppzmq-dev curl ca-certificates)
if [[ $what == test ]]; then
  pkgs+=(libgtest-dev libgmock-dev libbenchmark-dev clang clang-format libclang-rt-14-dev
         procps iproute2 chromium  # chromium: the stats page test renders it headless
         haproxy nginx  # the PROXY protocol interoperability tests run both
         python3-yaml python3-jsonschema)  # scripts/check-schema.py
fi
if [[ $what == package ]]; then
  pkgs+=(dpkg-dev debhelper fakeroot lintian python3 git)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # The tests start haproxy and nginx themselves: their packages must not start
  # the system services (which would take port 80, or fail the install where
  # it is taken). policy-rc.d says no to every start while we install.
  own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  [[ -n $own_policy ]] && $SUDO rm -f /usr/sbin/policy-rc.d
  ((status == 0)) || exit "$status"
fi
if [[ $what == test ]]; then
  # promtool validates the /metrics output in the tests. Taken from Debian's
  # prometheus package without installing it (no service, no dependencies).
  ROOT=$(cd "$(dirname "$0")/.." && pwd)
  if [[ ! -x $ROOT/build-tools/promtool ]]; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
      dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
      mkdir -p "$ROOT/build-tools"
      cp "$tmp/x/usr/bin/promtool" "$ROOT/build-tools/promtool"
    else
      echo "deps: could not fetch promtool; the metrics test will check the format itself"
    fi
    rm -rf "$tmp"
  fi
fi
