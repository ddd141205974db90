#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A consumer guide runs as typed: the ```sh blocks of docs/consumers/README.md
# ("Before each recipe") and then of docs/consumers/GUIDE.md, verbatim and in
# order, as one bash script (set -euo pipefail, so every command must
# succeed, the guides' own checks included), in a scratch folder that is
# also $HOME. What the package would have put in place is given instead
# from the build tree: $MODULE is the build's libp11kms.so (the guides use
# ${MODULE:-...}), the build's p11kms comes first on $PATH, and, as root,
# the script runs in a private mount namespace whose p11-kit module folders
# hold only the packaged module file (packaging/p11kms.module.in) naming
# the build's module, so p11-kit and GnuTLS find it as after an install.
#
# Usage: recipe.sh GUIDE [--emulator] (GUIDE: the file name without .md).
# --emulator: start the KMS emulator first and export its state folder as
# $KMSEMU_DIR (for the guides that use KMS RSA keys).
# Environment (set by ctest): P11KMS_MODULE, P11KMS_TOOL, P11KMS_SRC,
# P11KMS_SANITIZE.
set -euo pipefail
guide=${1:?usage: recipe.sh GUIDE [--emulator]}
emu=${2:-}
src=${P11KMS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${P11KMS_MODULE:?P11KMS_MODULE must name libp11kms.so}"
: "${P11KMS_TOOL:?P11KMS_TOOL must name the p11kms tool}"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$src/docs/consumers/$guide.md" ] || fail "no docs/consumers/$guide.md"

work=$(mktemp -d "/tmp/p11kms-recipe-$guide.XXXXXX")
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/run" "$work/modules" "$work/empty"
mkdir -m 0700 "$work/xdg"   # $XDG_RUNTIME_DIR, as a login session has

# Every ```sh block, in order, verbatim.
blocks() {
  /usr/bin/python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
found = re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)
if not found:
    sys.exit("%s has no ```sh block" % sys.argv[1])
for b in found:
    sys.stdout.write(b)
PY
}
{
  blocks "$src/docs/consumers/README.md"
  echo "# ---- docs/consumers/$guide.md"
  blocks "$src/docs/consumers/$guide.md"
} >"$work/recipe.sh"

if [ "$emu" = --emulator ]; then
  /usr/bin/python3 "$src/tests/kms-emulator/kmsemu.py" serve --state-dir "$work/kmsemu" \
    >"$work/kmsemu.out" 2>&1 &
  emu_pid=$!
  for _ in $(seq 1 100); do
    [ -s "$work/kmsemu/emulator.json" ] && break
    kill -0 "$emu_pid" 2>/dev/null || { cat "$work/kmsemu.out" >&2; fail "the emulator did not start"; }
    sleep 0.1
  done
  [ -s "$work/kmsemu/emulator.json" ] || fail "the emulator did not start in 10 s"
  export KMSEMU_DIR=$work/kmsemu
fi

# The packaged module file, naming the build's module.
sed "s|@P11KMS_MODULE_FULLPATH@|$P11KMS_MODULE|" "$src/packaging/p11kms.module.in" \
  >"$work/modules/p11kms.module"

san=()
case "${P11KMS_SANITIZE:-}" in
  1 | ON | on | true | TRUE | yes)
    rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    [ -f "$rt" ] || fail "ASan runtime not found ($rt)"
    # Every program of the recipe may load the module: preload the runtime
    # in all (leaks off: the consumers are not ours; the JVM handles SIGSEGV).
    san=(LD_PRELOAD="$rt"
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:handle_segv=0:allow_user_segv_handler=1")
    echo "== sanitizer build: preloading $rt" ;;
esac

echo "== docs/consumers/$guide.md, as typed, in $work/run"
# /usr/bin before the rest of $PATH: Debian's python3, java, as on a fresh
# machine (the recipes use Debian's packages).
run=(env -u P11KMS_CONFIG HOME="$work/run" XDG_RUNTIME_DIR="$work/xdg" PATH="$(dirname "$P11KMS_TOOL"):/usr/bin:$PATH"
  MODULE="$P11KMS_MODULE" "${san[@]}" bash -euo pipefail "$work/recipe.sh")
rc=0
if [ "$(id -u)" = 0 ]; then
  unshare -m --propagation private bash -c '
    m=$1 e=$2; shift 2
    mount --bind "$m" /usr/share/p11-kit/modules || exit 99
    [ -d /etc/pkcs11/modules ] && { mount --bind "$e" /etc/pkcs11/modules || exit 99; }
    exec "$@"' ns "$work/modules" "$work/empty" \
    bash -c 'cd "$1" && shift && exec "$@"' cd "$work/run" "${run[@]}" \
    >"$work/out.txt" 2>&1 || rc=$?
else
  echo "== not root: p11-kit sees the system's module files, not the packaged one"
  (cd "$work/run" && "${run[@]}") >"$work/out.txt" 2>&1 || rc=$?
fi
# Into a file, not a pipe: a daemon that a failed recipe leaves behind
# (p11-kit server) cannot keep the test waiting for the pipe's end.
cat "$work/out.txt"
if grep -Eq 'ERROR: AddressSanitizer|runtime error:' "$work/out.txt"; then
  fail "sanitizer report while running docs/consumers/$guide.md"
fi
[ $rc = 0 ] || fail "docs/consumers/$guide.md failed (exit $rc); the script was:
$(cat -n "$work/recipe.sh")"
echo "recipe $guide OK"
