#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Requests per second that boto3 gets from the emulator over keep-alive HTTPS connections.

    /usr/bin/python3 tests/kms-emulator/bench.py [--requests N] [--op describe|encrypt]
                                                 [--subprocess] [--clients N]

Starts its own emulator in-process (the client and the server then share the GIL, so this
is a floor); --subprocess runs it in a child process; --clients N runs N client processes
at once, each with its own connection, and reports the aggregate.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def measure(handle, n=500, op="describe"):
    import botocore.session
    from botocore.config import Config
    a = handle.info["aws"]
    kms = botocore.session.Session().create_client(
        "kms", region_name=a["region"], endpoint_url=a["endpoint_url"], verify=handle.ca_bundle,
        aws_access_key_id=a["access_key_id"], aws_secret_access_key=a["secret_access_key"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    call = (lambda: kms.describe_key(KeyId=a["alias"])) if op == "describe" else \
        (lambda: kms.encrypt(KeyId=a["alias"], Plaintext=b"x" * 32))
    for _ in range(20):         # warm up: TLS handshake, botocore's model loading
        call()
    t = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - t)


def _client_process(args):
    info, n, op = args
    from kmsemu.harness import EmulatorHandle
    return measure(EmulatorHandle(info, None, info["state_dir"], False), n, op)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--op", choices=["describe", "encrypt"], default="describe")
    p.add_argument("--subprocess", action="store_true", help="run the emulator in a child process")
    p.add_argument("--clients", type=int, default=1, help="client processes in parallel")
    args = p.parse_args()
    from kmsemu.harness import start
    with start(mode="subprocess" if args.subprocess else "thread") as h:
        if args.clients == 1:
            rps = measure(h, args.requests, args.op)
        else:
            import multiprocessing
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                rps = sum(pool.map(_client_process, [(h.info, args.requests, args.op)] * args.clients))
    print("boto3 %s over keep-alive HTTPS: %.0f requests/s (%d client(s) x %d requests, emulator in %s)"
          % (args.op, rps, args.clients, args.requests, "a subprocess" if args.subprocess else "this process"))


if __name__ == "__main__":
    main()
