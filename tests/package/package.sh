#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package works from its installed files alone.
#
# The .deb is unpacked with dpkg -x into a scratch root rather than
# installed with apt-get: the test then runs on developers' machines too
# without changing them, and sees only what the package ships. What an
# install would do beyond unpacking is done here the way postinst does it
# (the 0700 folder and a key file made by the packaged p11kms), inside the
# scratch root. The only paths rewritten are the default configuration's
# two, into the scratch root (given by $P11KMS_CONFIG, which GnuTLS honours
# too); p11-kit and p11tool run in a private mount namespace (root, as CI
# is) that shows them the scratch root's module files. Checked:
#   lintian (no errors), the file list, p11-kit list-modules, pkcs11-tool
#   --module <installed path> -L, p11tool --list-tokens, pkg-config
#   --cflags --libs p11kms (and a program built with them that dlopens the
#   module at p11kms_module), man -l of each page without warnings, and
#   the maintainer scripts' promise about key material.
set -euo pipefail
src=${P11KMS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. The package: scripts/package.sh keeps dist/'s when it is newer than
# every source file, so this test and the README's Install share one build.
echo "== the package (scripts/package.sh)"
deb=$(scripts/package.sh --no-lintian | tail -1)
[ -f "$deb" ] || fail "no package at $deb"

echo "== lintian"
lint_rc=0
lint=$(lintian --fail-on error "$deb" 2>&1) || lint_rc=$?
grep -v 'running with root privileges' <<<"$lint" || true
[ $lint_rc = 0 ] || fail "lintian reports errors"

work=$(mktemp -d /tmp/p11kms-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
dpkg -x "$deb" "$root"
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
mod=/usr/lib/$ma/pkcs11/libp11kms.so

echo "== files"
for f in "$mod" /usr/bin/p11kms /usr/include/p11kms/p11kms.h \
  /usr/include/p11kms/pkcs11.h /usr/lib/$ma/pkgconfig/p11kms.pc \
  /usr/share/p11-kit/modules/p11kms.module /etc/p11kms/p11kms.json \
  /usr/share/doc/p11kms/copyright /usr/share/doc/p11kms/README.md.gz \
  /usr/share/man/man1/p11kms.1.gz \
  /usr/share/man/man5/p11kms.json.5.gz /usr/share/man/man7/libp11kms.7.gz; do
  [ -e "$root$f" ] || fail "$f is not in the package"
done
ls "$root"/usr/share/doc/p11kms/consumers/ | grep -q '^java\.md' ||
  fail "the consumer guides are not in /usr/share/doc/p11kms/consumers"
dpkg-deb -f "$deb" Version | grep -qx "$(sed -n 's/^project(p11kms VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)" ||
  fail "package version is not the project's"
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | grep -qx /etc/p11kms/p11kms.json ||
  fail "/etc/p11kms/p11kms.json is not a conffile"
grep -qx "module: $mod" "$root/usr/share/p11-kit/modules/p11kms.module" ||
  fail "the p11-kit module file does not name $mod"

echo "== maintainer scripts keep key material"
dpkg-deb --ctrl-tarfile "$deb" | tar -C "$work" -xf - ./postinst ./postrm
grep -q 'install -d -m 0700 /var/lib/p11kms' "$work/postinst" || fail "postinst does not make /var/lib/p11kms 0700"
grep -q 'create-key-file /var/lib/p11kms/local.key' "$work/postinst" || fail "postinst does not make the key file"
! grep -Eq 'rm .*(/var/lib/p11kms|\.key)' "$work/postrm" "$work/postinst" || fail "a maintainer script deletes key material"

# What postinst does, in the scratch root, with the packaged tool.
install -d -m 0700 "$root/var/lib/p11kms"
"$root/usr/bin/p11kms" create-key-file "$root/var/lib/p11kms/local.key" >/dev/null
[ "$(stat -c %a "$root/var/lib/p11kms/local.key")" = 600 ] || fail "key file mode"
sed "s|\"/var/lib/p11kms/|\"$root/var/lib/p11kms/|g" "$root/etc/p11kms/p11kms.json" >"$work/p11kms.json"
export P11KMS_CONFIG=$work/p11kms.json   # GnuTLS drops the init string
"$root/usr/bin/p11kms" status | grep -q 'provider "local" (local)' || fail "p11kms status"

echo "== pkcs11-tool --module <installed path> -L"
out=$(pkcs11-tool --module "$root$mod" -L 2>&1) || fail "pkcs11-tool: $out"
echo "$out"
grep -q 'p11kms local provider "local"' <<<"$out" || fail "pkcs11-tool does not see the slot"

# p11-kit and GnuTLS find modules through the system's p11-kit module
# files, and p11-kit ignores a user config when run as root. So they run in
# a private mount namespace where the scratch root's module-file folder and
# module folder are bind-mounted over the system's: the packaged module file
# is used unchanged, and no other module is in sight.
ns() {
  unshare -m --propagation private bash -c '
    mount --bind "$1/usr/share/p11-kit/modules" /usr/share/p11-kit/modules &&
    mount --bind "$1/usr/lib/$2/pkcs11" /usr/lib/$2/pkcs11 || exit 99
    shift 2; exec "$@"' ns "$root" "$ma" "$@"
}
echo "== p11-kit list-modules"
out=$(ns p11-kit list-modules 2>&1) || fail "p11-kit list-modules (needs root for unshare -m): $out"
echo "$out"
grep -qx "p11kms: $mod" <<<"$out" || fail "p11-kit does not list p11kms"
grep -q 'library-manufacturer: p11kms project' <<<"$out" || fail "p11-kit did not initialize p11kms"
# enable-in: a program not named there does not load the module.
cp "$(command -v p11-kit)" "$work/some-program"
out=$(ns "$work/some-program" list-modules 2>&1) || fail "some-program: $out"
! grep -q p11kms <<<"$out" || fail "p11kms is loaded by a program enable-in does not name"

command -v p11tool >/dev/null || fail "p11tool missing: scripts/deps.sh --test installs gnutls-bin"
echo "== p11tool --list-tokens"
out=$(ns p11tool --list-tokens 2>&1) || fail "p11tool: $out"
echo "$out"
grep -q "Module: $mod" <<<"$out" || fail "p11tool does not list the p11kms token"
grep -q 'Manufacturer: p11kms project' <<<"$out" || fail "p11tool does not list the p11kms token"

echo "== pkg-config --cflags --libs p11kms"
export PKG_CONFIG_PATH=$root/usr/lib/$ma/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs p11kms | xargs) || fail "pkg-config"
echo "$flags"
[ -z "$(pkg-config --libs p11kms | xargs)" ] || fail "p11kms.pc should have nothing to link"
# p11kms.pc requires p11-kit-1 (libp11-kit-dev, a build dependency, so it is
# here); the sysroot prefixes its -I too, so show it inside the root.
[ "$flags" = "-I$root/usr/include/p11kms -I$root/usr/include/p11-kit-1" ] ||
  fail "unexpected flags: $flags"
ln -s /usr/include/p11-kit-1 "$root/usr/include/p11-kit-1"
unset PKG_CONFIG_SYSROOT_DIR
[ "$(pkg-config --variable=p11kms_module p11kms)" = "$mod" ] || fail "p11kms_module variable"
[ "$(pkg-config --modversion p11kms)" = "$(dpkg-deb -f "$deb" Version)" ] || fail "pkg-config version"
cat >"$work/consumer.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <p11kms.h>
int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW);
	CK_C_GetFunctionList get = h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST_PTR f = NULL;
	if (argc != 2 || !get || get(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK)
		return 1;
	CK_INFO info;
	if (f->C_GetInfo(&info) != CKR_OK)
		return 1;
	printf("%.32s %lx\n", info.manufacturerID, (unsigned long)CKM_P11KMS_KMS_ENVELOPE);
	return f->C_Finalize(NULL) == CKR_OK ? 0 : 1;
}
C
PKG_CONFIG_SYSROOT_DIR=$root cc -Wall -Werror $(PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs p11kms) \
  -o "$work/consumer" "$work/consumer.c" -ldl || fail "a consumer does not build with pkg-config's flags"
"$work/consumer" "$root$(pkg-config --variable=p11kms_module p11kms)" || fail "the consumer cannot use the module"

echo "== man -l of each page, without warnings"
for page in "$root"/usr/share/man/man*/*.gz; do
  warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
  [ -z "$warn" ] || fail "$(basename "$page"): $warn"
  LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q . || fail "$(basename "$page") renders empty"
  zcat "$page" | grep -q "^\.TH .*\"p11kms $(dpkg-deb -f "$deb" Version)\"" ||
    fail "$(basename "$page") names another version than the package's"
  echo "   $(basename "$page") ok"
done
echo "package OK"
