# SPDX-License-Identifier: Apache-2.0
# Sourced by the consumer scripts that run in either login mode
# (test_java.sh, test_nss.sh): a scratch folder, the sanitizer environment,
# a local-provider token initialized with pkcs11-tool (SO PIN 87654321,
# user PIN 123456), and the check that the consumer logged in only where
# the token requires it.
#
# consumer_token NAME MODE [ASAN_OPTIONS...]
#   MODE is required or optional. Sets pin, the PIN to give the consumer
#   (with login=optional one that is not the user's: a login would fail),
#   work (removed at exit), SAN_ENV, run() and P11KMS_CONFIG (the consumers
#   pass no init string); the module logs at info to $work/module.log.
# consumer_login_ok MODE: did the consumer log the user in exactly when
#   MODE is required? Says why not on stderr.

: "${P11KMS_MODULE:?P11KMS_MODULE must name libp11kms.so}"
: "${P11KMS_TOOL:?P11KMS_TOOL must name the p11kms tool}"

consumer_token() {
  local name=$1 mode=$2 extra=${3:-}
  case "$mode" in
    required) pin=123456 ;;
    optional) pin=99999999 ;;
    *) echo "usage: $0 [required|optional]" >&2; exit 2 ;;
  esac
  SAN_ENV=()
  case "${P11KMS_SANITIZE:-}" in
    1 | ON | on | true | TRUE | yes)
      local rt
      rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
      [ -f "$rt" ] || { echo "FAIL: ASan runtime not found ($rt)" >&2; exit 1; }
      SAN_ENV=(LD_PRELOAD="$rt"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0${extra:+:$extra}")
      echo "== sanitizer build: preloading $rt" ;;
  esac
  work=$(mktemp -d "/tmp/p11kms-$name.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "== scratch folder: $work"
  run "$P11KMS_TOOL" create-key-file "$work/master.key" >/dev/null
  cat >"$work/p11kms.json" <<JSON
{
  "log": { "level": "info", "destination": "$work/module.log" },
  "providers": [
    { "name": "$name", "type": "local",
      "key_file": "$work/master.key", "store": "$work/$name.db",
      "login": "$mode" }
  ]
}
JSON
  export P11KMS_CONFIG=$work/p11kms.json
  echo "-- initialize the token with pkcs11-tool (login=$mode)"
  run pkcs11-tool --module "$P11KMS_MODULE" --init-token --label "$name-tok" --so-pin 87654321 >/dev/null
  run pkcs11-tool --module "$P11KMS_MODULE" --login --login-type so --so-pin 87654321 --init-pin --pin 123456 >/dev/null
  echo "   ok: token $name-tok with a user PIN"
}

run() { env "${SAN_ENV[@]}" "$@"; }

consumer_login_ok() {
  # The token's own line (slots/token.c), not an explanation that names it.
  if grep -Eq "slot [0-9]+: user logged in" "$work/module.log"; then
    [ "$1" = required ] && return 0
    echo "FAIL: C_Login was called on a token without CKF_LOGIN_REQUIRED" >&2
  else
    [ "$1" = optional ] && return 0
    echo "FAIL: the user was never logged in" >&2
  fi
  return 1
}
