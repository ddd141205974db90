/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log (config "log.audit", docs/AUDIT.md): one JSON line per
 * KMS operation, appended to a file with O_APPEND and one write() per line,
 * so lines of several processes never mix. Every provider operation that
 * reaches a KMS goes through the audit_* wrappers below: they are the one
 * place where slots/ (and the tool) call a provider's describe, encrypt,
 * decrypt, remote_crypt, public_key and sign. A line holds names, ids,
 * versions, times and result classes; never a secret (no key bytes, PINs,
 * tokens, ciphertexts).
 */
#ifndef P11KMS_AUDIT_H
#define P11KMS_AUDIT_H

#include "common/common.h"
#include "config.h"
#include "providers/provider.h"

/* The longest line written (and read back): less than PIPE_BUF, so one
 * write() with O_APPEND is atomic across processes. */
#define AUDIT_LINE_MAX 4000

/* Open (creating it 0600) the audit file at path, replacing the one open
 * before; NULL closes it. Refused, with the reason in why: a path that is
 * not absolute, a symbolic link owned by another user, not a regular file,
 * group- or world-writable. Called by config_load, at C_Initialize. */
bool audit_open(const char *path, char *why, size_t whylen);
/* This process only reads the audit log (p11kms audit): audit_open opens
 * nothing, so a reader needs no write access to it. */
void audit_reader_only(void);

/* The PKCS #11 function the calling thread is in (module/gate.h's enter()
 * names it: "ep_Login" is written "C_Login"), or "revalidation" for the
 * revalidation thread. A static string. */
const char *audit_caller_set(const char *fn); /* returns the one before */
/* The PKCS #11 function fn (leave's name: "Encrypt" for C_Encrypt)
 * returns (module/entry.c leave()). A KMS call made in one of its helpers,
 * which enter() named instead of the function, is written now, with fn;
 * later calls of the thread count as fn's until enter() names another. */
void audit_leave(const char *fn);
/* The command of the p11kms tool running in this process ("backup" is
 * written "p11kms backup"): it is the cause of every line the process
 * writes, but for the revalidation thread's. A static string or NULL. */
void audit_tool_set(const char *cmd);

/* The provider operations, each recorded. pc names the slot; version: the
 * key version the caller knows the operation uses (a seal row's, a file
 * header's), or NULL. */
p11k_err audit_describe(const provider_cfg *pc, void *prov, const char *key_id, key_info *out,
			provider_status *st);
p11k_err audit_encrypt(const provider_cfg *pc, void *prov, const char *key_id, const uint8_t *pt,
		       size_t ptlen, const uint8_t *aad, size_t aadlen, uint8_t **blob,
		       size_t *bloblen, char *key_version, size_t kvlen, provider_status *st);
p11k_err audit_decrypt(const provider_cfg *pc, void *prov, const char *key_id,
		       const char *version, const uint8_t *blob, size_t bloblen,
		       const uint8_t *aad, size_t aadlen, uint8_t **pt, size_t *ptlen,
		       provider_status *st);
p11k_err audit_remote_crypt(const provider_cfg *pc, void *prov, const char *key_id,
			    remote_req *r, uint8_t **out, size_t *outlen, provider_status *st);
p11k_err audit_public_key(const provider_cfg *pc, void *prov, const char *key_id,
			  asym_public *out, provider_status *st);
p11k_err audit_sign(const provider_cfg *pc, void *prov, const char *key_id, const char *version,
		    sign_alg alg, const uint8_t *digest, size_t dlen, uint8_t **sig,
		    size_t *siglen, provider_status *st);

/* One line of the audit file, parsed (p11kms audit). Strings point into
 * the parsed document: valid until audit_entry_free. */
typedef struct audit_entry {
	void *doc;            /* the JSON object */
	uint64_t time_ms;     /* since the epoch */
	const char *time, *exe, *slot, *provider, *key_id, *key_version, *op, *function,
		*result, *request_id; /* key_version, function, request_id: NULL when null */
	long long pid, uid, slot_id;
	double latency_ms;
} audit_entry;

/* Parse one line (without its newline). false: why says what is wrong. */
bool audit_line_parse(const char *line, size_t len, audit_entry *out, char *why, size_t whylen);
void audit_entry_free(audit_entry *e);
/* RFC 3339 ("2026-12-04T18:00:00Z", "...:00.123+02:00") to milliseconds
 * since the epoch. */
bool audit_time_parse(const char *s, uint64_t *ms);

#endif
