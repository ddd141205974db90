#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Drive a running KMS emulator's key lifecycle from C tests, for every cloud alike:
emuctl_keys.py STATE_DIR COMMAND ARGS...

  key CLOUD ACTION KEY [JSON [FIELD]]   POST /v1/keys/ACTION {cloud, key, ...JSON}; prints
                                        the reply's FIELD when asked
                                        (e.g. key aws backdate alias/x '{"seconds": 8640000}')
  count SERVICE OP                      print the request count (OP "handshake": failed
                                        TLS handshakes)
  reset-counters | clear-faults
  fault JSON                            add a fault rule
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from kmsemu.harness import EmulatorHandle  # noqa: E402


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    if cmd == "key":
        extra = json.loads(args[3]) if len(args) > 3 else {}
        out = emu.key_action(args[0], args[1], args[2], **extra)
        if len(args) > 4:
            print(out[args[4]])
    elif cmd == "count":
        print(emu.count(args[0], args[1]))
    elif cmd == "reset-counters":
        emu.reset_counters()
    elif cmd == "clear-faults":
        emu.clear_faults()
    elif cmd == "fault":
        emu.fault(**json.loads(args[0]))
    else:
        sys.exit("emuctl_keys.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
