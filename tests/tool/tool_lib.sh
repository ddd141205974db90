# SPDX-License-Identifier: Apache-2.0
# Shared by the tool tests that run the real p11kms ($P11KMS_TOOL) and the
# module through pkcs11-tool ($P11KMS_MODULE). Source it, then set $d (a
# scratch directory): expect_rc leaves the command's output in $d/out and
# $d/err.
tool=${P11KMS_TOOL:?P11KMS_TOOL is set by ctest}
module=${P11KMS_MODULE:?P11KMS_MODULE is set by ctest}
command -v pkcs11-tool >/dev/null || { echo "pkcs11-tool missing (opensc)"; exit 77; }
py=/usr/bin/python3
# Under the ASan build pkcs11-tool (uninstrumented) needs the runtime
# preloaded, and its own leaks must not count.
san_env=()
case "${P11KMS_SANITIZE:-}" in
  1 | ON | on | true | TRUE | yes)
    rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    san_env=(LD_PRELOAD="$rt" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0") ;;
esac
fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
expect_rc() { # DESC WANT -- ARGS
  local desc=$1 want=$2; shift 3
  "$tool" "$@" >"$d/out" 2>"$d/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$desc"; else
    bad "$desc (exit $rc, want $want)"; sed 's/^/  out: /' "$d/out"; sed 's/^/  err: /' "$d/err"; fi
}
