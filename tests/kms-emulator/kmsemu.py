#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""p11kms KMS emulator command line.

    /usr/bin/python3 tests/kms-emulator/kmsemu.py serve --state-dir DIR
        Serve AWS KMS (+STS, IMDS, ECS), Azure Key Vault / Managed HSM (+Entra ID,
        managed identity) and Google Cloud KMS (+OAuth2, metadata server) on
        loopback until interrupted; writes DIR/emulator.json (ports, CA bundle,
        credentials) and prints it.
    /usr/bin/python3 tests/kms-emulator/kmsemu.py env --state-dir DIR [aws|azure|gcp]
        Print shell `export` lines that point the SDKs at a running emulator.
"""

import argparse
import json
import os
import shlex
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def serve(args):
    from kmsemu.emulator import Emulator
    emu = Emulator(args.state_dir)
    info = emu.start()
    if not args.quiet:
        print(json.dumps(info, indent=2), flush=True)
        print("kms-emulator: serving; state in %s; Ctrl-C to stop" % args.state_dir,
              file=sys.stderr, flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    emu.stop()
    return 0


def env(args):
    from kmsemu.harness import EmulatorHandle
    with open(os.path.join(args.state_dir, "emulator.json")) as f:
        handle = EmulatorHandle(json.load(f), None, args.state_dir, False)
    clouds = [args.cloud] if args.cloud else ["aws", "azure", "gcp"]
    for c in clouds:
        for k, v in getattr(handle, "env_" + c)().items():
            print("export %s=%s" % (k, shlex.quote(v)))
    return 0


def main():
    p = argparse.ArgumentParser(description="p11kms KMS emulator (AWS, Azure, Google) on loopback")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the emulator")
    s.add_argument("--state-dir", required=True, help="directory for the CA, credentials and emulator.json")
    s.add_argument("--quiet", action="store_true", help="do not print the connection details")
    e = sub.add_parser("env", help="print export lines for a running emulator")
    e.add_argument("--state-dir", required=True)
    e.add_argument("cloud", nargs="?", choices=["aws", "azure", "gcp"])
    args = p.parse_args()
    return serve(args) if args.cmd == "serve" else env(args)


if __name__ == "__main__":
    sys.exit(main())
