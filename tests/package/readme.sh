#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# README.md's "Install" and "Using it" shell blocks run exactly as typed,
# as root, on this machine as a fresh one would see it: in a private mount
# namespace whose /etc, /usr and /var are overlays with a throwaway upper
# layer. So the package is really installed (apt-get, postinst, conffiles),
# the README's commands touch the real paths (/etc/p11kms, /var/lib/p11kms),
# and nothing of it outlives the test. Then the promises the README makes
# about the package are checked: the token, the key, what purge keeps.
set -euo pipefail
src=${P11KMS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src"
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/p11kms-readme.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The first ```sh block after each heading, verbatim.
block() {
  /usr/bin/python3 - "$1" <<'PY'
import re, sys
text = open("README.md").read()
m = re.search(r"^## " + re.escape(sys.argv[1]) + r"\n(.*?)^```sh\n(.*?)^```", text, re.S | re.M)
if not m or "\n## " in m.group(1):
    sys.exit("README.md has no sh block under '## %s'" % sys.argv[1])
sys.stdout.write(m.group(2))
PY
}
block Install >"$work/install.sh"
block "Using it" >"$work/using.sh"
grep -q 'scripts/package.sh' "$work/install.sh" || fail "Install does not build the package"
for want in create-key-file --init-token --init-pin --keygen; do
  grep -q -- "$want" "$work/using.sh" || fail "Using it lost its $want step"
done

[ "$(id -u)" = 0 ] || fail "needs root (CI is root) for the mount namespace"
mkdir "$work/ovl"
unshare -m --propagation private bash -euo pipefail -c '
  work=$1
  mount -t tmpfs p11kms-readme "$work/ovl"
  for d in etc usr var; do
    mkdir "$work/ovl/$d.up" "$work/ovl/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/ovl/$d.up,workdir=$work/ovl/$d.work" "/$d"
  done
  fail() { echo "FAIL: $*" >&2; exit 1; }
  # A fresh machine: whatever a developer has installed is not there.
  if dpkg-query -W p11kms >/dev/null 2>&1; then dpkg --purge p11kms >/dev/null; fi
  rm -rf /etc/p11kms /var/lib/p11kms

  echo "== README: Install"; cat "$work/install.sh"
  bash -e -o pipefail "$work/install.sh" || fail "the Install block failed"
  echo "== README: Using it"; cat "$work/using.sh"
  bash -e -o pipefail "$work/using.sh" 2>&1 | tee "$work/using.out" || fail "the Using it block failed"

  echo "== what the README promised"
  p11kms status | tee "$work/status.out"
  grep -q "token: label \"local" "$work/status.out" || fail "no initialized token"
  grep -q "objects: 1" "$work/status.out" || fail "the key is not in the token"
  grep -q "label: *my-key" "$work/using.out" || fail "a new login does not list my-key"
  [ "$(stat -c %a /var/lib/p11kms)" = 700 ] || fail "/var/lib/p11kms is not 0700"
  key=$(sha256sum /var/lib/p11kms/local.key)
  # Reinstalling keeps the key file; purging keeps key file and store.
  dpkg -i dist/p11kms_*.deb >/dev/null 2>&1 || fail "reinstall"
  [ "$(sha256sum /var/lib/p11kms/local.key)" = "$key" ] || fail "reinstall replaced the key file"
  apt-get purge -y p11kms >"$work/purge.out" 2>&1 || { cat "$work/purge.out"; fail "purge"; }
  [ ! -e /etc/p11kms/p11kms.json ] || fail "purge left the conffile"
  [ "$(sha256sum /var/lib/p11kms/local.key)" = "$key" ] || fail "purge removed the key file"
  [ -f /var/lib/p11kms/local.db ] || fail "purge removed the token store"
  grep -q "is kept" "$work/purge.out" || fail "purge does not say the key material is kept"
  echo "   purge kept /var/lib/p11kms: $(ls /var/lib/p11kms | xargs)"
' readme "$work"
echo "readme OK"
