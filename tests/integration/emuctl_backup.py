#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""What test_backup needs beyond the per-cloud control scripts:
emuctl_backup.py STATE_DIR COMMAND ARGS...

  azure-version disable|enable KEY VERSION   one version of a vault key (control API)
  manifest-version BACKUP                    the first seal's key_version in a backup's
                                             manifest (the file opened read-only)
"""
import json
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from kmsemu.harness import EmulatorHandle  # noqa: E402


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    if cmd == "manifest-version":
        c = sqlite3.connect("file:%s?mode=ro&immutable=1" % args[0], uri=True)
        m = c.execute("SELECT value FROM meta WHERE name = 'backup_manifest'").fetchone()[0]
        print(json.loads(m)["seals"][0]["key_version"])
        return
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    if cmd == "azure-version":
        emu.key_action("azure", args[0], args[1], vault="vault", version=args[2].rstrip("/").rsplit("/", 1)[-1])
    else:
        sys.exit("emuctl_backup: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
