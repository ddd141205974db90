#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the Debian package: dist/p11kms_<version>_<arch>.deb.
# Usage: scripts/package.sh [--no-lintian] [--force]
# The working tree (tracked and untracked-but-not-ignored files, so local
# edits count) is copied to build-deb/src and built there with
# dpkg-buildpackage, so nothing is written beside the checkout. lintian then
# checks the .deb and fails the build on an error. A .deb in dist/ newer
# than every one of those files is up to date and is kept (--force builds
# anyway): the tests and the README's Install then share one build.
set -euo pipefail
cd "$(dirname "$0")/.."
lint=1 force=0
for a in "$@"; do
  case "$a" in
    --no-lintian) lint=0 ;;
    --force) force=1 ;;
    *) echo "usage: $0 [--no-lintian] [--force]" >&2; exit 2 ;;
  esac
done
scripts/deps.sh --package
sources() {
  git ls-files -z --cached --others --exclude-standard |
    grep -zv '^tests/kms-emulator/sdk-js/node_modules' |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done
}

version=$(sed -n 's/^project(p11kms VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -S Version)
if [ "${deb_version%%-*}" != "$version" ]; then
  echo "p11kms: debian/changelog says $deb_version, CMakeLists.txt says $version" >&2
  exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=p11kms_${deb_version}_${arch}.deb

work=build-deb
fresh() {   # dist/$deb is newer than every source file
  [ -f "dist/$deb" ] && [ -z "$(sources | xargs -0 -r sh -c \
    'for f; do [ "$f" -nt "$0" ] && echo "$f"; done' "dist/$deb" | head -1)" ]
}
if [ $force = 0 ] && fresh; then
  echo "p11kms: dist/$deb is newer than every source file: kept (--force rebuilds)" >&2
else
  rm -rf "$work"
  mkdir -p "$work/src" dist
  printf "*\n" >dist/.gitignore   # build output, never committed
  sources | tar --null -T - -cf - | tar -C "$work/src" -xf -
  jobs=$(nproc)
  (cd "$work/src" &&
    DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -b -us -uc \
      >../dpkg-buildpackage.log 2>&1) || {
    tail -40 "$work/dpkg-buildpackage.log" >&2
    echo "p11kms: dpkg-buildpackage failed; full log in $work/dpkg-buildpackage.log" >&2
    exit 1
  }
  rm -f dist/p11kms_*.deb
  cp "$work/$deb" dist/
fi
if [ $lint = 1 ]; then
  mkdir -p "$work"
  lintian --fail-on error --info "dist/$deb" | tee "$work/lintian.txt" >&2
fi
echo "dist/$deb"
