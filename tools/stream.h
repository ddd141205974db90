/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms encrypt / p11kms decrypt: envelope encryption of a file or a
 * stream under a slot's KMS sealing key, in the segmented AES-256-GCM
 * format of docs/STREAM.md (modelled on Tink's streaming AEAD and age's
 * STREAM). A fresh 256-bit data key per file is wrapped by the KMS; the
 * data is encrypted locally, one segment at a time, in constant memory.
 */
#ifndef P11KMS_TOOLS_STREAM_H
#define P11KMS_TOOLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_MAGIC "p11kmsST"      /* 8 bytes, no NUL in the file */
#define STREAM_MAGIC_LEN 8
#define STREAM_VERSION 1
#define STREAM_ALG_AES256GCM 1
#define STREAM_KEY_LEN 32
#define STREAM_PREFIX_LEN 7          /* nonce = prefix | counter(4) | last(1) */
#define STREAM_TAG_LEN 16
/* magic | version | header length (2) | alg | segment size (4) | prefix */
#define STREAM_FIXED_LEN (STREAM_MAGIC_LEN + 1 + 2 + 1 + 4 + STREAM_PREFIX_LEN)
#define STREAM_HDR_MAX 8192
#define STREAM_SEG_MIN 16u
#define STREAM_SEG_MAX (16u << 20)
#define STREAM_SEG_DEFAULT (64u << 10) /* in L2 beside its output: faster than 1 MiB (bench/stream.sh) */
#define STREAM_NAME_MAX 255          /* provider name, provider type, key version */
#define STREAM_KEY_ID_MAX 2048
#define STREAM_WRAPPED_MAX 4096

/* Exit statuses: the tool's one convention (p11kms(1), docs/STREAM.md);
 * the kinds of failure share 2 and differ in the stderr line. */
enum stream_exit {
	STREAM_EXIT_OK = 0,
	STREAM_EXIT_INPUT = 2,  /* input that is not an intact stream */
	STREAM_EXIT_KMS = 2,    /* the KMS refused or could not be reached */
	STREAM_EXIT_IO = 2,     /* reading, writing or renaming failed */
	STREAM_EXIT_CONFIG = 3, /* configuration missing or wrong, no such slot/provider */
	STREAM_EXIT_USAGE = 3,  /* a usage error */
};

/* A parsed header. The strings are NUL-terminated copies; wrapped points
 * into raw, which holds the header's len bytes as they are in the file
 * (every segment's AAD). */
typedef struct stream_hdr {
	uint32_t seg_size;
	uint8_t prefix[STREAM_PREFIX_LEN];
	char provider[STREAM_NAME_MAX + 1];
	char type[STREAM_NAME_MAX + 1];
	char key_id[STREAM_KEY_ID_MAX + 1];
	char key_version[STREAM_NAME_MAX + 1];
	const uint8_t *wrapped;
	size_t wrapped_len;
	uint8_t raw[STREAM_HDR_MAX];
	size_t len;
} stream_hdr;

/* Parse a whole header (buf holds exactly its header-length bytes).
 * false with a one-line reason in why. */
bool stream_hdr_parse(const uint8_t *buf, size_t len, stream_hdr *h, char *why, size_t whylen);

/* Complete h->raw (and len, wrapped) from h's fields and the wrapped key;
 * false when they do not fit the format's bounds. */
bool stream_hdr_build(stream_hdr *h, const uint8_t *wrapped, size_t wl);

/* The AAD the KMS binds the wrapped data key to: everything of the header
 * known before the KMS call (docs/STREAM.md). aad holds STREAM_HDR_MAX. */
size_t stream_kms_aad(const stream_hdr *h, uint8_t *aad);

/* Opens the data key a header names into key (STREAM_KEY_LEN bytes);
 * prints its own one-line error and returns an exit status. */
typedef int (*stream_key_fn)(void *arg, const stream_hdr *h, uint8_t *key);

/* Decrypt the stream on in to out. name is the input's name for
 * messages; progress: a progress line on stderr. Writes only segments that
 * authenticated. Prints one line on failure; returns an exit status. */
int stream_decrypt_fd(int in, int out, const char *name, stream_key_fn open_key, void *arg,
		      bool progress);

/* Encrypt the plaintext on in to out under key with header h (built):
 * the header, then the segments. Prints one line on failure; returns an
 * exit status. */
int stream_encrypt_fd(int in, int out, const stream_hdr *h, const uint8_t *key, bool progress);

/* The commands: argv[0] is "encrypt" or "decrypt". */
int stream_main(int argc, char **argv);

#define STREAM_ENCRYPT_SYNOPSIS                                                        \
	"p11kms encrypt --slot NAME [--config PATH] [--segment-size N] [--quiet] [IN [OUT]]"
#define STREAM_ENCRYPT_HELP                                                            \
	"Encrypt IN (a file, or stdin when absent or \"-\") to OUT (stdout when\n"       \
	"absent or \"-\") under a fresh 256-bit data key, wrapped by the KMS key\n"      \
	"that seals slot NAME (a provider name or slot id) at its current version.\n"  \
	"The format is segmented AES-256-GCM (docs/STREAM.md); N is the plaintext\n"    \
	"segment size (default 64 KiB). OUT is written as OUT.tmp.XXXXXX and renamed\n"  \
	"into place when complete. Exit: 0 done, 2 usage or bad input, 3\n"              \
	"configuration, 4 KMS refused or unreachable, 5 I/O.\n"
#define STREAM_DECRYPT_SYNOPSIS "p11kms decrypt [--config PATH] [--quiet] [IN [OUT]]"
#define STREAM_DECRYPT_HELP                                                            \
	"Decrypt a file made by p11kms encrypt. The KMS opens its data key only\n"       \
	"while the key version named in its header is enabled and accessible; the\n"    \
	"error names provider, key and version otherwise. Truncated, reordered,\n"      \
	"duplicated or altered input is refused and OUT is not written. On stdout\n"    \
	"only authenticated segments are written, but a failure can come after\n"     \
	"some: check the exit status (0 only when the whole stream was intact).\n"      \
	"Exit statuses as for encrypt.\n"

#endif
