#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what building and testing p11kms needs on Debian 12 (as root, or
# with sudo). Quick when everything is already there.
# Usage: scripts/deps.sh [--test|--demo|--package]
set -euo pipefail
BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libp11-kit-dev
  libcmocka-dev)
TEST_PKGS=(opensc p11-kit softhsm2 gnutls-bin libnss3-tools sqlite3 valgrind
  python3 python3-pykcs11 python3-pytest python3-cryptography python3-botocore
  python3-boto3 python3-azure python3-jwt nodejs npm openjdk-17-jdk-headless
  libnss3-dev libengine-pkcs11-openssl)   # the last two: docs/consumers recipes
# scripts/package.sh (and the package test, so --test has them too).
PACKAGE_PKGS=(debhelper dpkg-dev fakeroot lintian man-db)
want=("${BUILD_PKGS[@]}")
[ "${1:-}" = "--test" ] && want+=("${TEST_PKGS[@]}" "${PACKAGE_PKGS[@]}")
[ "${1:-}" = "--package" ] && want+=("${PACKAGE_PKGS[@]}")
[ "${1:-}" = "--demo" ] && want+=(opensc)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Java and Node may come from outside Debian on some machines: accept them.
if command -v java >/dev/null; then missing=("${missing[@]/openjdk-17-jdk-headless}"); fi
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "p11kms: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
