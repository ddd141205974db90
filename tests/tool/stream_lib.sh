# SPDX-License-Identifier: Apache-2.0
# Shared by the p11kms encrypt/decrypt tests (test_stream*.sh): checks
# that run the real tool ($P11KMS_TOOL) and count failures. Source it.
tool=${P11KMS_TOOL:?P11KMS_TOOL is set by ctest}
fails=0
passes=0

ok() { echo "ok - $1"; passes=$((passes + 1)); }
not_ok() { echo "not ok - $1"; fails=$((fails + 1)); }

# The header length of a stream file (bytes 9-10, big-endian).
hdr_len() { od -An -tu1 -j9 -N2 "$1" | awk '{print $1 * 256 + $2}'; }

# round_trip DESC CONFIG SLOT FILE [ENCRYPT OPTIONS...]: file -> file and
# stdin -> stdout both give FILE back, with nothing on stderr.
round_trip() {
  local desc=$1 cfg=$2 slot=$3 f=$4; shift 4
  local enc=$scratch/rt.enc dec=$scratch/rt.dec err=$scratch/rt.err
  rm -f "$enc" "$dec"
  if "$tool" encrypt --config "$cfg" --slot "$slot" "$@" "$f" "$enc" 2>"$err" &&
     [ ! -s "$err" ] &&
     "$tool" decrypt --config "$cfg" "$enc" "$dec" 2>"$err" && [ ! -s "$err" ] &&
     cmp -s "$f" "$dec" &&
     "$tool" encrypt --config "$cfg" --slot "$slot" "$@" <"$f" 2>"$err" |
       "$tool" decrypt --config "$cfg" 2>>"$err" | cmp -s "$f" - && [ ! -s "$err" ]; then
    ok "$desc"
  else
    not_ok "$desc"; sed 's/^/  /' "$err"
  fi
}

# refused DESC WANT_RE CONFIG FILE: decrypt FILE exits >= 2 with one line
# on stderr matching WANT_RE, writes no OUT (an existing OUT is left as it
# was) and leaves no temporary file; to stdout it also exits >= 2.
refused() {
  local desc=$1 want=$2 cfg=$3 f=$4
  local out=$scratch/refused.out err=$scratch/refused.err rc rc2
  echo "previous contents" >"$out"
  "$tool" decrypt --config "$cfg" "$f" "$out" 2>"$err"; rc=$?
  "$tool" decrypt --config "$cfg" "$f" >/dev/null 2>/dev/null </dev/null; rc2=$?
  local lines; lines=$(wc -l <"$err")
  if [ "$rc" -ge 2 ] && [ "$rc2" -ge 2 ] && [ "$lines" = 1 ] && grep -Eq -- "$want" "$err" &&
     [ "$(cat "$out")" = "previous contents" ] &&
     [ -z "$(find "$scratch" -name 'refused.out.tmp.*')" ]; then
    ok "$desc"
  else
    not_ok "$desc (exit $rc, to stdout $rc2, $lines stderr lines)"; sed 's/^/  /' "$err"
  fi
}
