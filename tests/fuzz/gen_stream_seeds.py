#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Seeds for tests/fuzz/fuzz_stream.c, written from docs/STREAM.md alone
(an implementation of the format independent of tools/stream.c), under the
fuzz target's fixed data key (32 bytes of 0x42):

    /usr/bin/python3 tests/fuzz/gen_stream_seeds.py tests/fuzz/corpus/fuzz_stream
"""
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = b"\x42" * 32


def field(lenbytes, v):
    return (len(v).to_bytes(lenbytes, "big")) + v


def stream(pt, seg, prefix=b"seedpfx", provider=b"dev", typ=b"local",
           key_id=b"/seed/k.key", version=b"0011223344556677", wrapped=b"wrapped-key"):
    body = (bytes([1]) + struct.pack(">I", seg) + prefix + field(1, provider) + field(1, typ) +
            field(2, key_id) + field(1, version) + field(2, wrapped))
    hlen = 8 + 1 + 2 + len(body)
    hdr = b"p11kmsST" + bytes([1]) + struct.pack(">H", hlen) + body
    segs = [pt[i:i + seg] for i in range(0, len(pt), seg)] or [b""]
    out = hdr
    g = AESGCM(KEY)
    for i, s in enumerate(segs):
        last = i == len(segs) - 1
        nonce = prefix + struct.pack(">I", i) + bytes([1 if last else 0])
        out += g.encrypt(nonce, s, hdr)
    return out


def main(d):
    os.makedirs(d, exist_ok=True)
    seeds = {
        "empty": stream(b"", 16),
        "one-byte": stream(b"x", 16),
        "one-segment": stream(bytes(range(64)), 64),
        "three-segments": stream(bytes(range(200)), 64),
        "seg16-many": stream(b"abcdefghijklmnopqrstuvwxyz" * 5, 16),
        "gcp-names": stream(b"hello", 32, provider=b"gcp-prod", typ=b"gcp",
                            key_id=b"projects/p/locations/l/keyRings/r/cryptoKeys/k",
                            version=b"projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"),
    }
    for name, s in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"\x00" + s)
    with open(os.path.join(d, "truncated"), "wb") as f:
        f.write(b"\x00" + seeds["three-segments"][:-30])
    for name, (seg, at, pt) in {"rt-empty": (0, 5, b""), "rt-small": (0, 77, b"p" * 40),
                                "rt-big": (240, 200, bytes(range(256)) * 4)}.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes([1, seg, at]) + pt)


if __name__ == "__main__":
    main(sys.argv[1])
