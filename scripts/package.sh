#!/bin/bash
# package.sh [REV]: builds the Debian package of weir from the commit REV
# (default HEAD) into dist/, then runs lintian on it.
#
# The sources are those of REV (git archive); the packaging is this tree's
# packaging/ (and doc/man, the man pages' sources), laid over them, so that an
# older commit can be packaged the same way (the upgrade test installs the
# package of an older commit, then this one's). The version is the project's
# (CMakeLists.txt) followed by +gitN, N the number of commits up to REV, so a
# later commit is a newer package: 0.2.0+git372.
#
# Env: OUT (dist/), KEEP=1 keeps the build directory. Needs root for apt-get
# (or sudo) the first time, to install the build dependencies.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REV=${1:-HEAD}
OUT=${OUT:-$ROOT/dist}
bash scripts/deps.sh package
commit=$(git rev-parse --verify "$REV^{commit}")
count=$(git rev-list --count "$commit")
upstream=$(git show "$commit:CMakeLists.txt" | sed -n 's/^project(weir VERSION \([0-9.]*\).*/\1/p')
[[ -n $upstream ]] || { echo "package: no project version in $REV's CMakeLists.txt" >&2; exit 1; }
version="$upstream+git$count"
work=$(mktemp -d /tmp/weir-package.XXXXXX)
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
src=$work/weir-$version
mkdir -p "$src"
git archive "$commit" | tar -x -C "$src"
rm -rf "$src/packaging"
cp -a packaging "$src/packaging"
mkdir -p "$src/doc/man"
cp -a doc/man/. "$src/doc/man/"
cp -a packaging/debian "$src/debian"
subject=$(git log -1 --format=%s "$commit" | cut -c1-40)
{
  echo "weir ($version) unstable; urgency=medium"
  echo
  echo "  * Built from commit ${commit:0:12}: $subject"
  echo
  echo " -- weir developers <weir-dev@lists.weir.invalid>  $(git log -1 --format=%aD "$commit")"
} > "$src/debian/changelog"
echo "package: building weir $version from ${commit:0:12} in $src"
# ccache, when installed, makes a second package (or a rebuild) quick: the
# paths below $work are rewritten relative, so the mktemp name does not matter.
ccache_env=()
if command -v ccache > /dev/null; then
  ccache_env=(WEIR_CCACHE=1 CCACHE_BASEDIR="$work" CCACHE_DIR="${CCACHE_DIR:-$HOME/.ccache}")
fi
(cd "$src" && env "${ccache_env[@]}" DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -b -us -uc > "$work/build.log" 2>&1) || {
  tail -n 40 "$work/build.log" >&2
  echo "package: dpkg-buildpackage failed (the whole log: $work/build.log)" >&2
  trap - EXIT
  exit 1
}
mkdir -p "$OUT"
cp "$work"/weir_"$version"_*.deb "$OUT/"
cp "$work"/weir-dbgsym_"$version"_*.*deb "$OUT/" 2> /dev/null || true
deb=$(ls "$OUT"/weir_"$version"_*.deb)
echo "package: $deb"
# lintian: every tag of severity warning or error fails the build.
echo "package: lintian $(basename "$deb")"
lintian --fail-on error,warning --display-info "$deb"
echo "package: lintian found no error and no warning"
