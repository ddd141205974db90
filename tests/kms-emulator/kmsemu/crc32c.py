# SPDX-License-Identifier: Apache-2.0
"""CRC32C (Castagnoli), as Google Cloud KMS uses for its integrity fields.

Pure Python so the emulator needs no extra package; table-driven, reflected
polynomial 0x82F63B78. Check value: crc32c(b"123456789") == 0xE3069283.
"""

_POLY = 0x82F63B78


def _make_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
