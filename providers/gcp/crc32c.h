/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Cloud
 * KMS puts on every plaintext, ciphertext and AAD it receives and returns
 * (PROTOCOLS.md 3.2). OpenSSL has no CRC32C, so this is a small
 * table-driven implementation; speed is irrelevant at KMS payload sizes.
 */
#ifndef P11KMS_GCP_CRC32C_H
#define P11KMS_GCP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc32c_update(0, ...). */
uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n);
uint32_t crc32c(const uint8_t *p, size_t n);

#endif
