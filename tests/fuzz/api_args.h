/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_api's arguments: the input read as a program (a bounded reader with
 * a sticky end), a per-input arena, and builders that turn the program's
 * bytes into PKCS #11 arguments -- lengths, templates, mechanisms and their
 * parameters, input data and output buffers -- plus the checks made on
 * what the module gives back.
 *
 * The harness is an honest caller where honesty is all a module can rely
 * on: a pointer it passes always has at least the length it claims. Only
 * NULL comes with any length (huge ones included), and a claimed length
 * may be shorter than the buffer (the rest is a canary the module must
 * not touch). So every sanitizer report is the module's fault.
 *
 * Every buffer lives in the arena until the input ends: PKCS #11 lets a
 * module keep the caller's mechanism parameter between calls (the message
 * API's C_*MessageNext must be given the pointer C_*MessageBegin had).
 */
#ifndef P11KMS_FUZZ_API_ARGS_H
#define P11KMS_FUZZ_API_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p11kms/p11kms.h"

/* --- the program -------------------------------------------------------- */

typedef struct api_prog {
	const uint8_t *p;
	size_t n, pos;
	bool end; /* read past the input: every further read gives 0 */
} api_prog;

uint8_t ap_u8(api_prog *r);
uint32_t ap_u32(api_prog *r);
/* A length: small, on a boundary (block, key, tag sizes) or huge. */
CK_ULONG ap_len(api_prog *r);
/* Any CK_ULONG: small, boundary, vendor range, random. */
CK_ULONG ap_ulong(api_prog *r);
/* One of n values, or, now and then, any CK_ULONG. */
CK_ULONG ap_pick(api_prog *r, const CK_ULONG *v, size_t n);
/* n bytes of the program (a fixed pattern once it runs out). */
void ap_fill(api_prog *r, void *dst, size_t n);

/* --- the arena ------------------------------------------------------------ */

/* Exactly n bytes (1 for 0), freed at the input's end; NULL once the
 * input has used its share, and callers then pass NULL. */
void *arena_alloc(size_t n);
void arena_free_all(void);

/* The largest real buffer: above the module's caps (HOLD_MAX, the KMS
 * input bound) so their refusals are reached too. */
#define AP_REAL_MAX 70000u

/* --- caller data ------------------------------------------------------------ */

typedef struct api_in {
	CK_BYTE_PTR p;
	CK_ULONG len;
	uint8_t *copy; /* what p held before the call */
} api_in;

/* Input data: NULL with any length, bytes of the program, a pattern, or an
 * earlier call's output (as it was, or damaged): ciphertexts, wrapped
 * keys and signatures the module made, so decrypt, unwrap and verify get
 * past their first checks. */
void ap_in(api_prog *r, api_in *in);
/* The module never writes into the caller's input. */
void ap_in_check(const api_in *in, const char *fn);

typedef struct api_out {
	CK_BYTE_PTR p;
	CK_ULONG len;        /* *pulLen: in, the claimed length; out, the module's */
	CK_ULONG claimed;
	size_t size;         /* allocated; bytes from claimed on are a canary */
	CK_ULONG_PTR plen;   /* &len, or NULL */
} api_out;

/* An output buffer: NULL (a length query), exact, short, oversized with a
 * canary past the claimed length, generous, or with a NULL length pointer. */
void ap_out(api_prog *r, api_out *o);
/* After the call: the PKCS #11 5.2 length rules, the canary, and the
 * output kept for later input. */
void ap_out_check(const api_out *o, CK_RV rv, const char *fn);
/* Only the canary (an output with no length out: C_GenerateRandom). */
void ap_out_canary(const api_out *o, const char *fn);
/* An output of exactly this size (the round trips). */
void ap_out_sized(api_out *o, size_t n);
/* Keep these bytes as a later input (the ring of outputs). */
void ap_keep(const uint8_t *p, size_t n);
/* At each input's start: an earlier input's outputs must not reach this
 * one (its replay alone would not have them). */
void ap_ring_clear(void);

/* --- templates ---------------------------------------------------------------- */

typedef struct api_tmpl {
	CK_ATTRIBUTE_PTR p;
	CK_ULONG n;
	CK_ULONG *claimed; /* for_get: each entry's claimed length */
	size_t *size;      /* for_get: each entry's buffer size */
} api_tmpl;

/* A template: up to 9 attributes of known and unknown types, values well
 * typed, of odd lengths (a 3-byte CK_ULONG, a 2-byte CK_BBOOL), NULL with
 * any length, or random bytes; sometimes a NULL array with a count.
 * for_get: the values are output buffers for C_GetAttributeValue. */
void ap_tmpl(api_prog *r, api_tmpl *t, bool for_get);
/* After C_GetAttributeValue: every ulValueLen is CK_UNAVAILABLE_INFORMATION
 * or within the buffer, no canary is touched. */
void ap_tmpl_check_get(const api_tmpl *t, CK_RV rv);
/* The value a successful C_GetAttributeValue gave for type, if any. */
const CK_ATTRIBUTE *ap_tmpl_got(const api_tmpl *t, CK_ATTRIBUTE_TYPE type);

/* --- mechanisms ------------------------------------------------------------------ */

/* A mechanism type: the module's, others, unknown numbers. */
CK_MECHANISM_TYPE ap_mech_type(api_prog *r);
/* A mechanism (NULL now and then): the module's own, others, unknown
 * numbers; its parameter well formed for its type (GCM, CBC IVs, CTR,
 * key wrap, MAC lengths, OAEP, the vendor envelope's context), of a wrong
 * size, NULL with a length, or raw bytes. */
CK_MECHANISM_PTR ap_mech(api_prog *r);
/* A message API parameter (CK_GCM_MESSAGE_PARAMS, mostly). */
void *ap_msg_param(api_prog *r, CK_ULONG *plen);

/* --- results ------------------------------------------------------------------------ */

/* Every return value is one PKCS #11 defines (else abort). A
 * CKR_GENERAL_ERROR or CKR_HOST_MEMORY is a finding: logged once per
 * function, fatal with P11KMS_APIFUZZ_STRICT=1 (the suite's replay sets
 * it). */
void api_rv(const char *fn, CK_RV rv);
/* A rule broken that a caller could live with: logged once per message,
 * fatal with P11KMS_APIFUZZ_STRICT=1. */
void api_finding(const char *fn, const char *what);
/* A rule broken that a caller cannot live with (memory written past a
 * length, an impossible length): abort, so libFuzzer keeps the input. */
#define API_CHECK(cond, fn, what)                                              \
	do {                                                                   \
		if (!(cond))                                                   \
			api_fail(fn, what, __FILE__, __LINE__);                \
	} while (0)
__attribute__((noreturn)) void api_fail(const char *fn, const char *what, const char *file,
					int line);

#endif
