/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_api's arguments (api_args.h). */
#include "api_args.h"
#include "api_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* --- the program -------------------------------------------------------- */

uint8_t ap_u8(api_prog *r)
{
	if (r->pos >= r->n) {
		r->end = true;
		return 0;
	}
	return r->p[r->pos++];
}

uint32_t ap_u32(api_prog *r)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | ap_u8(r);
	return v;
}

static CK_ULONG ap_u64(api_prog *r)
{
	return (CK_ULONG)ap_u32(r) << 32 | ap_u32(r);
}

static const CK_ULONG boundary_lens[] = {
	0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 20, 23, 24, 25, 28,
	31, 32, 33, 40, 47, 48, 49, 63, 64, 65, 96, 100, 127, 128, 129, 255, 256,
	257, 511, 512, 513, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 8192,
	16384, 65535, 65536, 65537,
};

static const CK_ULONG huge_lens[] = {
	0x7fffffffUL, 0x80000000UL, 0xffffffffUL, 0x100000000UL, 0x100000010UL,
	0x7fffffffffffffffUL, ~0UL, ~0UL - 7, ~0UL - 15, 1UL << 40,
};

CK_ULONG ap_len(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s < 0x80)
		return s;
	if (s < 0xc0)
		return boundary_lens[s % COUNT(boundary_lens)];
	if (s < 0xe0)
		return ap_u8(r) << 8 | ap_u8(r);
	return huge_lens[s % COUNT(huge_lens)];
}

CK_ULONG ap_ulong(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s < 0x40)
		return s;
	if (s < 0x80)
		return ap_len(r);
	if (s < 0xa0)
		return CKA_VENDOR_DEFINED | P11KMS_VENDOR_BASE | (s & 0x1f);
	if (s < 0xe0)
		return ap_u32(r);
	return ap_u64(r);
}

CK_ULONG ap_pick(api_prog *r, const CK_ULONG *v, size_t n)
{
	uint8_t s = ap_u8(r);
	return s < 0xf0 ? v[s % n] : ap_ulong(r);
}

void ap_fill(api_prog *r, void *dst, size_t n)
{
	uint8_t *d = dst;
	size_t i = 0;
	for (; i < n && r->pos < r->n; i++)
		d[i] = r->p[r->pos++];
	for (; i < n; i++)
		d[i] = (uint8_t)(i * 31 + 7);
}

/* --- the arena -------------------------------------------------------------- */

#define ARENA_MAX_ALLOCS 4096
#define ARENA_MAX_BYTES (32u << 20)

static void *arena[ARENA_MAX_ALLOCS];
static size_t arena_n, arena_bytes;

void *arena_alloc(size_t n)
{
	if (arena_n == ARENA_MAX_ALLOCS || n > ARENA_MAX_BYTES - arena_bytes)
		return NULL;
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "fuzz_api: out of memory\n");
		abort();
	}
	arena[arena_n++] = p;
	arena_bytes += n;
	return p;
}

void arena_free_all(void)
{
	for (size_t i = 0; i < arena_n; i++)
		free(arena[i]);
	arena_n = arena_bytes = 0;
}

/* --- earlier outputs -------------------------------------------------------------- */

#define RING 4
#define RING_MAX 8192

static struct {
	uint8_t b[RING_MAX];
	size_t n;
} ring[RING];
static unsigned ring_next;

void ap_keep(const uint8_t *p, size_t n)
{
	if (!p || n == 0 || n > RING_MAX)
		return;
	memcpy(ring[ring_next].b, p, n);
	ring[ring_next].n = n;
	ring_next = (ring_next + 1) % RING;
}

void ap_ring_clear(void)
{
	for (unsigned i = 0; i < RING; i++)
		ring[i].n = 0;
	ring_next = 0;
}

/* --- caller data ------------------------------------------------------------------ */

static CK_ULONG real_len(CK_ULONG n)
{
	return n <= AP_REAL_MAX ? n : n % (AP_REAL_MAX + 1);
}

static void in_bytes(api_in *in, CK_ULONG n)
{
	in->len = n;
	in->p = arena_alloc(n);
	if (!in->p)
		in->len = 0;
}

/* An earlier output as input: as it was, a byte short or long, cut to
 * any length, or with one bit flipped. false: nothing kept there yet. */
static bool in_from_ring(api_prog *r, api_in *in, bool damage)
{
	unsigned k = ap_u8(r) % RING;
	size_t n = ring[k].n;
	if (!n)
		return false;
	CK_ULONG want = n;
	uint8_t how = damage ? ap_u8(r) : 0;
	if (how % 4 == 1)
		want = n - 1;
	else if (how % 4 == 2)
		want = n + 1 + (how >> 4);
	else if (how % 4 == 3)
		want = real_len(ap_len(r));
	in_bytes(in, want);
	if (in->p) {
		size_t c = want < n ? want : n;
		memcpy(in->p, ring[k].b, c);
		if (want > c)
			ap_fill(r, in->p + c, want - c);
		if (damage && want)
			in->p[ap_u8(r) % want] ^= (uint8_t)(1u << (how & 7));
	}
	return true;
}

void ap_in(api_prog *r, api_in *in)
{
	memset(in, 0, sizeof(*in));
	uint8_t mode = ap_u8(r) % 8;
	if (mode == 0) { /* NULL with any length */
		in->len = ap_len(r);
		return;
	}
	if ((mode == 5 || mode == 6) && in_from_ring(r, in, mode == 6)) {
		/* taken */
	} else {
		CK_ULONG n = real_len(ap_len(r));
		in_bytes(in, n);
		if (in->p && mode == 7) /* a pattern: long inputs from a short program */
			memset(in->p, ap_u8(r), n);
		else if (in->p) {
			ap_fill(r, in->p, n < 512 ? n : 512);
			if (n > 512)
				memset(in->p + 512, 0x5a, n - 512);
		}
	}
	if (in->p && (in->copy = arena_alloc(in->len)))
		memcpy(in->copy, in->p, in->len);
}

void ap_in_check(const api_in *in, const char *fn)
{
	if (in->p && in->copy)
		API_CHECK(memcmp(in->p, in->copy, in->len) == 0, fn,
			  "the module wrote into the caller's input data");
}

#define CANARY 0xa5
#define CANARY_LEN 32

static void out_alloc(api_out *o, CK_ULONG claimed, size_t extra)
{
	o->claimed = o->len = claimed;
	o->size = (size_t)claimed + extra;
	o->p = arena_alloc(o->size);
	if (!o->p) {
		o->claimed = o->len = 0;
		o->size = 0;
		return;
	}
	memset(o->p, 0x3c, claimed);
	memset(o->p + claimed, CANARY, extra);
}

void ap_out_sized(api_out *o, size_t n)
{
	memset(o, 0, sizeof(*o));
	out_alloc(o, (CK_ULONG)n, CANARY_LEN);
	o->plen = &o->len;
}

void ap_out(api_prog *r, api_out *o)
{
	memset(o, 0, sizeof(*o));
	o->plen = &o->len;
	switch (ap_u8(r) % 8) {
	case 0: /* a length query */
		o->claimed = o->len = ap_len(r);
		break;
	case 1: /* exactly what is claimed: ASan guards the end */
	case 6:
		out_alloc(o, real_len(ap_len(r)), 0);
		break;
	case 2: /* a longer buffer than claimed: the rest is a canary */
		out_alloc(o, real_len(ap_len(r)), CANARY_LEN);
		break;
	case 3: /* generous: room for the output of an input of up to 8 KiB */
		out_alloc(o, 8192 + 64, CANARY_LEN);
		break;
	case 7: /* and of any input */
		out_alloc(o, AP_REAL_MAX + 64, CANARY_LEN);
		break;
	case 4: /* no length pointer */
		out_alloc(o, real_len(ap_len(r)), 0);
		o->plen = NULL;
		break;
	case 5:
		o->plen = NULL;
		break;
	}
}

void ap_out_canary(const api_out *o, const char *fn)
{
	for (size_t i = o->claimed; o->p && i < o->size; i++)
		API_CHECK(o->p[i] == CANARY, fn,
			  "the module wrote past the output length the caller gave");
}

void ap_out_check(const api_out *o, CK_RV rv, const char *fn)
{
	ap_out_canary(o, fn);
	if (!o->plen)
		return;
	if (rv == CKR_OK && o->p) {
		API_CHECK(o->len <= o->claimed, fn,
			  "CKR_OK with *pulLen above the caller's buffer length");
		ap_keep(o->p, o->len);
	}
	if (rv == CKR_OK && !o->p && o->len > (1u << 24))
		api_finding(fn, "a length query answered over 16 MiB");
	if (rv == CKR_BUFFER_TOO_SMALL && !o->p)
		api_finding(fn, "CKR_BUFFER_TOO_SMALL to a length query (NULL buffer): "
				"PKCS #11 5.2 says CKR_OK");
	if (rv == CKR_BUFFER_TOO_SMALL && o->p)
		API_CHECK(o->len > o->claimed, fn,
			  "CKR_BUFFER_TOO_SMALL with *pulLen not above the buffer's "
			  "length: a caller retrying with that length loops forever");
}

/* --- templates ---------------------------------------------------------------------- */

typedef enum vkind { V_BOOL, V_ULONG, V_BYTES, V_DATE, V_MECHS, V_ARRAY } vkind;

static const struct {
	CK_ATTRIBUTE_TYPE type;
	vkind kind;
} attr_types[] = {
	{CKA_CLASS, V_ULONG}, {CKA_TOKEN, V_BOOL}, {CKA_PRIVATE, V_BOOL},
	{CKA_LABEL, V_BYTES}, {CKA_APPLICATION, V_BYTES}, {CKA_VALUE, V_BYTES},
	{CKA_OBJECT_ID, V_BYTES}, {CKA_KEY_TYPE, V_ULONG}, {CKA_ID, V_BYTES},
	{CKA_SENSITIVE, V_BOOL}, {CKA_ENCRYPT, V_BOOL}, {CKA_DECRYPT, V_BOOL},
	{CKA_WRAP, V_BOOL}, {CKA_UNWRAP, V_BOOL}, {CKA_SIGN, V_BOOL},
	{CKA_VERIFY, V_BOOL}, {CKA_DERIVE, V_BOOL}, {CKA_START_DATE, V_DATE},
	{CKA_END_DATE, V_DATE}, {CKA_VALUE_LEN, V_ULONG}, {CKA_EXTRACTABLE, V_BOOL},
	{CKA_LOCAL, V_BOOL}, {CKA_NEVER_EXTRACTABLE, V_BOOL},
	{CKA_ALWAYS_SENSITIVE, V_BOOL}, {CKA_KEY_GEN_MECHANISM, V_ULONG},
	{CKA_MODIFIABLE, V_BOOL}, {CKA_COPYABLE, V_BOOL}, {CKA_DESTROYABLE, V_BOOL},
	{CKA_CHECK_VALUE, V_BYTES}, {CKA_WRAP_WITH_TRUSTED, V_BOOL},
	{CKA_TRUSTED, V_BOOL}, {CKA_ALLOWED_MECHANISMS, V_MECHS},
	{CKA_UNIQUE_ID, V_BYTES}, {CKA_P11KMS_KMS_KEY_ID, V_BYTES},
	{CKA_P11KMS_KMS_KEY_VERSION, V_BYTES}, {CKA_P11KMS_CREATED_AT, V_ULONG},
	{CKA_MODULUS, V_BYTES}, {CKA_MODULUS_BITS, V_ULONG},
	{CKA_PUBLIC_EXPONENT, V_BYTES}, {CKA_SUBJECT, V_BYTES},
	{CKA_SIGN_RECOVER, V_BOOL}, {CKA_VERIFY_RECOVER, V_BOOL},
	{CKA_ALWAYS_AUTHENTICATE, V_BOOL}, {CKA_CERTIFICATE_TYPE, V_ULONG},
	{CKA_WRAP_TEMPLATE, V_ARRAY}, {CKA_UNWRAP_TEMPLATE, V_ARRAY},
	{CKA_EC_PARAMS, V_BYTES}, {CKA_EC_POINT, V_BYTES}, {CKA_PUBLIC_KEY_INFO, V_BYTES},
	{CKA_ISSUER, V_BYTES}, {CKA_SERIAL_NUMBER, V_BYTES},
	{CKA_CERTIFICATE_CATEGORY, V_ULONG}, {CKA_URL, V_BYTES},
	{CKA_HASH_OF_SUBJECT_PUBLIC_KEY, V_BYTES}, {CKA_NAME_HASH_ALGORITHM, V_ULONG},
	{CKA_CERTIFICATE_TYPE, V_ULONG},
	/* the common ones again, so templates are mostly about keys */
	{CKA_CLASS, V_ULONG}, {CKA_KEY_TYPE, V_ULONG}, {CKA_VALUE_LEN, V_ULONG},
	{CKA_TOKEN, V_BOOL}, {CKA_LABEL, V_BYTES}, {CKA_VALUE, V_BYTES},
};

static const CK_ULONG classes[] = {CKO_SECRET_KEY, CKO_DATA, CKO_SECRET_KEY, CKO_DATA,
				   CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_CERTIFICATE,
				   CKO_VENDOR_DEFINED, CKO_MECHANISM};
static const CK_ULONG key_types[] = {CKK_AES, CKK_GENERIC_SECRET, CKK_AES,
				     CKK_GENERIC_SECRET, CKK_P11KMS_KMS, CKK_RSA,
				     CKK_DES3, CKK_EC, CKK_VENDOR_DEFINED};
static const CK_ULONG value_lens[] = {16, 24, 32, 32, 0, 1, 8, 15, 17, 31, 33, 48,
				      64, 128, 512, 513, 4096, 4097, 0xffffffffUL,
				      ~0UL};

static CK_ULONG ulong_for(api_prog *r, CK_ATTRIBUTE_TYPE t)
{
	switch (t) {
	case CKA_CLASS:
		return ap_pick(r, classes, COUNT(classes));
	case CKA_KEY_TYPE:
		return ap_pick(r, key_types, COUNT(key_types));
	case CKA_VALUE_LEN:
	case CKA_MODULUS_BITS:
		return ap_pick(r, value_lens, COUNT(value_lens));
	case CKA_KEY_GEN_MECHANISM:
		return ap_mech_type(r);
	case CKA_CERTIFICATE_TYPE: {
		static const CK_ULONG ct[] = {CKC_X_509, CKC_X_509, CKC_X_509_ATTR_CERT,
					      CKC_WTLS, CKC_VENDOR_DEFINED};
		return ap_pick(r, ct, COUNT(ct));
	}
	default:
		return ap_ulong(r);
	}
}

/* The attribute's value: a copy of n bytes at v. */
static void put_value(CK_ATTRIBUTE *a, const void *v, size_t n)
{
	void *p = arena_alloc(n);
	if (p)
		memcpy(p, v, n);
	a->pValue = p;
	a->ulValueLen = p ? n : 0;
}

/* The attribute's value: n bytes of the program (at most cap). */
static void bytes_value(api_prog *r, CK_ATTRIBUTE *a, CK_ULONG n, CK_ULONG cap)
{
	n = real_len(n) > cap ? cap : real_len(n);
	uint8_t *b = arena_alloc(n);
	if (b)
		ap_fill(r, b, n);
	a->pValue = b;
	a->ulValueLen = b ? n : 0;
}

/* A well-typed value of t's kind into a fresh buffer. */
static void typed_value(api_prog *r, CK_ATTRIBUTE *a, vkind k)
{
	static const CK_BBOOL bools[] = {CK_TRUE, CK_FALSE, CK_TRUE, CK_FALSE, 2, 0xff};
	static const char *const dates[] = {"20240131", "19991231", "00000000",
					    "2024013", "abcdefgh", "20241301"};
	CK_ULONG n;
	switch (k) {
	case V_BOOL:
		put_value(a, &bools[ap_u8(r) % COUNT(bools)], sizeof(CK_BBOOL));
		return;
	case V_ULONG:
		n = ulong_for(r, a->type);
		put_value(a, &n, sizeof(n));
		return;
	case V_DATE: /* CK_DATE: 8 characters, valid or not */
		put_value(a, dates[ap_u8(r) % COUNT(dates)], 8);
		return;
	case V_MECHS: {
		n = ap_u8(r) % 5;
		CK_MECHANISM_TYPE *m = arena_alloc(n * sizeof(*m));
		for (CK_ULONG i = 0; m && i < n; i++)
			m[i] = ap_mech_type(r);
		a->pValue = m;
		a->ulValueLen = m ? n * sizeof(*m) : 0;
		return;
	}
	case V_ARRAY: /* nested templates: empty, so no pointers are made up */
		a->pValue = NULL;
		a->ulValueLen = 0;
		return;
	case V_BYTES:
		break;
	}
	/* a certificate's value: often a real one, so a template can pass */
	size_t cl = 0;
	const uint8_t *cert = a->type == CKA_VALUE ? api_cert_der(&cl) : NULL;
	if (cert && ap_u8(r) % 3 == 0) {
		put_value(a, cert, cl);
		return;
	}
	static const CK_ULONG byte_lens[] = {16, 32, 24, 0, 1, 4, 8, 12, 15, 17, 31, 33,
					     64, 65, 255, 256, 1024, 4097};
	bytes_value(r, a, ap_pick(r, byte_lens, COUNT(byte_lens)), 8192);
}

static const CK_ULONG odd_lens[] = {0, 1, 2, 3, 4, 5, 7, 9, 12, 15, 16, 17, 33};

static void set_value(api_prog *r, CK_ATTRIBUTE *a, vkind k)
{
	uint8_t mode = ap_u8(r) % 8;
	if (k == V_ARRAY && mode != 4)
		mode = 0;
	switch (mode) {
	case 4: /* NULL with a length */
		a->pValue = NULL;
		a->ulValueLen = ap_len(r);
		break;
	case 5: /* an odd length: a CK_ULONG of 3 bytes, a CK_BBOOL of 2 */
		bytes_value(r, a, ap_pick(r, odd_lens, COUNT(odd_lens)), 64);
		break;
	case 6: /* random bytes */
		bytes_value(r, a, ap_len(r), 1024);
		break;
	default:
		typed_value(r, a, k);
	}
}

static CK_ATTRIBUTE_TYPE attr_type(api_prog *r, vkind *k)
{
	uint8_t s = ap_u8(r);
	size_t n = COUNT(attr_types);
	if (s < 0xf0) {
		*k = attr_types[s % n].kind;
		return attr_types[s % n].type;
	}
	*k = V_BYTES;
	switch (s & 3) {
	case 0:
		return CKA_VENDOR_DEFINED | P11KMS_VENDOR_BASE | ap_u8(r);
	case 1:
		return ap_u32(r);
	case 2:
		return ~0UL;
	default:
		return ap_ulong(r);
	}
}

static const CK_ULONG get_lens[] = {0, 1, 2, 4, 7, 8, 9, 16, 31, 32, 33, 64, 256};

void ap_tmpl(api_prog *r, api_tmpl *t, bool for_get)
{
	memset(t, 0, sizeof(*t));
	uint8_t c = ap_u8(r);
	if (c >= 0xf0) { /* a NULL template, with a count */
		t->n = c & 1 ? ap_len(r) : 0;
		return;
	}
	CK_ULONG n = c % 10;
	t->p = arena_alloc(n * sizeof(CK_ATTRIBUTE));
	t->claimed = arena_alloc(n * sizeof(CK_ULONG));
	t->size = arena_alloc(n * sizeof(size_t));
	if (!t->p || !t->claimed || !t->size) {
		t->p = NULL;
		return;
	}
	t->n = n;
	for (CK_ULONG i = 0; i < n; i++) {
		vkind k;
		CK_ATTRIBUTE *a = &t->p[i];
		a->type = attr_type(r, &k);
		if (!for_get) {
			set_value(r, a, k);
			continue;
		}
		uint8_t mode = ap_u8(r) % 4;
		CK_ULONG len = mode == 3 ? real_len(ap_len(r)) : ap_pick(r, get_lens, COUNT(get_lens));
		if (mode == 0 || k == V_ARRAY) { /* NULL: the length is asked for */
			a->pValue = NULL;
			a->ulValueLen = mode == 0 ? ap_len(r) : len;
			t->claimed[i] = a->ulValueLen;
			t->size[i] = 0;
			continue;
		}
		len = real_len(len);
		size_t extra = mode == 2 ? CANARY_LEN : 0;
		uint8_t *b = arena_alloc(len + extra);
		if (b) {
			memset(b, 0x3c, len);
			memset(b + len, CANARY, extra);
		}
		a->pValue = b;
		a->ulValueLen = b ? len : 0;
		t->claimed[i] = a->ulValueLen;
		t->size[i] = b ? len + extra : 0;
	}
}

void ap_tmpl_check_get(const api_tmpl *t, CK_RV rv)
{
	static const char fn[] = "C_GetAttributeValue";
	bool any_unavailable = false;
	for (CK_ULONG i = 0; t->p && i < t->n; i++) {
		const CK_ATTRIBUTE *a = &t->p[i];
		const uint8_t *b = a->pValue;
		for (size_t j = t->claimed[i]; b && j < t->size[i]; j++)
			API_CHECK(b[j] == CANARY, fn,
				  "the module wrote past an attribute's ulValueLen");
		if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			any_unavailable = true;
			continue;
		}
		if (b)
			API_CHECK(a->ulValueLen <= t->claimed[i], fn,
				  "ulValueLen above the caller's buffer and not "
				  "CK_UNAVAILABLE_INFORMATION");
		else if (rv == CKR_OK && a->ulValueLen > (1u << 24))
			api_finding(fn, "an attribute length query answered over 16 MiB");
	}
	if (rv == CKR_OK && any_unavailable)
		api_finding(fn, "CKR_OK with an entry CK_UNAVAILABLE_INFORMATION "
				"(PKCS #11 5.7: one of the errors is returned)");
}

const CK_ATTRIBUTE *ap_tmpl_got(const api_tmpl *t, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; t->p && i < t->n; i++)
		if (t->p[i].type == type && t->p[i].pValue &&
		    t->p[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			return &t->p[i];
	return NULL;
}

/* --- mechanisms ---------------------------------------------------------------------- */

static const CK_MECHANISM_TYPE mech_types[] = {
	/* the module's table */
	CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN, CKM_AES_ECB, CKM_AES_CBC,
	CKM_AES_CBC_PAD, CKM_AES_CTR, CKM_AES_GCM, CKM_AES_KEY_WRAP,
	CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_KWP, CKM_AES_CMAC,
	CKM_AES_CMAC_GENERAL, CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL,
	CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, CKM_SHA512_HMAC,
	CKM_SHA512_HMAC_GENERAL, CKM_SHA256, CKM_SHA384, CKM_SHA512,
	CKM_RSA_PKCS_OAEP, CKM_P11KMS_KMS_ENVELOPE,
	CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS,
	CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS,
	CKM_SHA512_RSA_PKCS_PSS, CKM_ECDSA, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384,
	/* the most used ones again */
	CKM_AES_GCM, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP_KWP, CKM_P11KMS_KMS_ENVELOPE,
	CKM_AES_KEY_WRAP, CKM_SHA256_HMAC, CKM_AES_CTR,
	/* not offered */
	CKM_RSA_X_509, CKM_SHA1_RSA_PKCS, CKM_ECDSA_SHA1, CKM_SHA_1, CKM_SHA224, CKM_MD5, CKM_DES3_ECB, 0x1071UL /* CKM_AES_XTS */,
	CKM_AES_CCM, CKM_AES_CFB8, CKM_AES_OFB, CKM_AES_GMAC, CKM_AES_MAC,
	CKM_AES_MAC_GENERAL, CKM_SHA_1_HMAC, CKM_SHA224_HMAC,
	CKM_SHA256_KEY_DERIVATION, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_VENDOR_DEFINED,
	CKM_P11KMS_KMS_ENVELOPE + 1,
};

CK_MECHANISM_TYPE ap_mech_type(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s < 0xf0)
		return mech_types[s % COUNT(mech_types)];
	return s & 1 ? ap_u32(r) : ap_ulong(r);
}

static const CK_ULONG iv_lens[] = {12, 16, 12, 1, 0, 7, 8, 13, 15, 17, 32, 64, 128,
				   129, 256, 4096};
static const CK_ULONG tag_bits[] = {128, 96, 128, 64, 32, 104, 112, 120, 0, 8, 100,
				    127, 129, 256, 0xffffffffUL};

/* A buffer of the program's bytes of length len, or NULL (then any length):
 * *ptr and *len are what a caller would put in a parameter structure. */
static void param_buf(api_prog *r, CK_BYTE_PTR *ptr, CK_ULONG *len, const CK_ULONG *lens,
		      size_t nlens)
{
	uint8_t mode = ap_u8(r) % 8;
	*len = mode == 7 ? ap_len(r) : ap_pick(r, lens, nlens);
	*ptr = NULL;
	if (mode == 0) /* NULL, with that length */
		return;
	if (*len > 8192) {
		if (mode == 1) /* NULL with a huge length */
			return;
		*len = real_len(*len) % 8193;
	}
	*ptr = arena_alloc(*len);
	if (*ptr)
		ap_fill(r, *ptr, *len);
	else
		*len = 0;
}

static void *gcm_params(api_prog *r, size_t *size)
{
	CK_GCM_PARAMS *p = arena_alloc(sizeof(*p));
	if (!p)
		return NULL;
	static const CK_ULONG aad_lens[] = {0, 0, 16, 1, 13, 64, 4096, 65536, 65537};
	param_buf(r, &p->pIv, &p->ulIvLen, iv_lens, COUNT(iv_lens));
	uint8_t bits = ap_u8(r) % 4;
	p->ulIvBits = bits == 0 ? 0 : bits == 1 ? p->ulIvLen * 8 : bits == 2 ? p->ulIvLen * 8 + 1
									   : ap_ulong(r);
	param_buf(r, &p->pAAD, &p->ulAADLen, aad_lens, COUNT(aad_lens));
	p->ulTagBits = ap_pick(r, tag_bits, COUNT(tag_bits));
	*size = sizeof(*p);
	/* A random ulIvBits that is odd picks PKCS #11 v2.30's layout, which
	 * has none (the same bytes read, so seeds keep their meaning). */
	if (bits == 3 && (p->ulIvBits & 1)) {
		struct gcm_v230 {
			CK_BYTE_PTR pIv;
			CK_ULONG ulIvLen;
			CK_BYTE_PTR pAAD;
			CK_ULONG ulAADLen;
			CK_ULONG ulTagBits;
		} *o = arena_alloc(sizeof(struct gcm_v230));
		if (!o)
			return p;
		*o = (struct gcm_v230){p->pIv, p->ulIvLen, p->pAAD, p->ulAADLen, p->ulTagBits};
		*size = sizeof(*o);
		return o;
	}
	return p;
}

static void *ctr_params(api_prog *r, size_t *size)
{
	static const CK_ULONG counter_bits[] = {128, 32, 64, 0, 1, 8, 16, 127, 129, 256};
	CK_AES_CTR_PARAMS *p = arena_alloc(sizeof(*p));
	if (!p)
		return NULL;
	p->ulCounterBits = ap_pick(r, counter_bits, COUNT(counter_bits));
	ap_fill(r, p->cb, sizeof(p->cb));
	if (ap_u8(r) & 1) /* a counter about to wrap */
		memset(p->cb + 8, 0xff, 8);
	*size = sizeof(*p);
	return p;
}

static void *kms_params(api_prog *r, size_t *size)
{
	static const CK_ULONG ctx_lens[] = {0, 16, 1, 32, 255, 4096, 4097, 8192};
	CK_P11KMS_KMS_PARAMS *p = arena_alloc(sizeof(*p));
	if (!p)
		return NULL;
	param_buf(r, &p->pContext, &p->ulContextLen, ctx_lens, COUNT(ctx_lens));
	*size = sizeof(*p);
	return p;
}

static void *oaep_params(api_prog *r, size_t *size)
{
	static const CK_ULONG hashes[] = {CKM_SHA256, CKM_SHA_1, CKM_SHA384, CKM_SHA512,
					  CKM_MD5};
	static const CK_ULONG mgfs[] = {CKG_MGF1_SHA256, CKG_MGF1_SHA1, CKG_MGF1_SHA384,
					0};
	static const CK_ULONG sources[] = {CKZ_DATA_SPECIFIED, 0, 2};
	static const CK_ULONG label_lens[] = {0, 0, 1, 16};
	CK_RSA_PKCS_OAEP_PARAMS *p = arena_alloc(sizeof(*p));
	if (!p)
		return NULL;
	p->hashAlg = ap_pick(r, hashes, COUNT(hashes));
	p->mgf = ap_pick(r, mgfs, COUNT(mgfs));
	p->source = ap_pick(r, sources, COUNT(sources));
	CK_BYTE_PTR src;
	param_buf(r, &src, &p->ulSourceDataLen, label_lens, COUNT(label_lens));
	p->pSourceData = src;
	*size = sizeof(*p);
	return p;
}

static void *pss_params(api_prog *r, size_t *size)
{
	static const CK_ULONG hashes[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512, CKM_SHA_1, 0};
	static const CK_ULONG mgfs[] = {CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA512,
					CKG_MGF1_SHA1, 0};
	static const CK_ULONG salts[] = {32, 48, 64, 20, 0, 1, ~0UL};
	CK_RSA_PKCS_PSS_PARAMS *p = arena_alloc(sizeof(*p));
	if (!p)
		return NULL;
	p->hashAlg = ap_pick(r, hashes, COUNT(hashes));
	p->mgf = ap_pick(r, mgfs, COUNT(mgfs));
	p->sLen = ap_pick(r, salts, COUNT(salts));
	*size = sizeof(*p);
	return p;
}

static void *bytes_param(api_prog *r, size_t n, size_t *size)
{
	uint8_t *p = arena_alloc(n);
	if (p)
		ap_fill(r, p, n);
	*size = n;
	return p;
}

static void *ulong_param(api_prog *r, size_t *size)
{
	static const CK_ULONG mac_lens[] = {16, 32, 8, 0, 1, 4, 15, 17, 33, 48, 64, 65};
	CK_ULONG *p = arena_alloc(sizeof(*p));
	if (p)
		*p = ap_pick(r, mac_lens, COUNT(mac_lens));
	*size = sizeof(*p);
	return p;
}

/* The parameter the type takes, well formed but for its values. */
static void *proper_param(api_prog *r, CK_MECHANISM_TYPE t, size_t *size)
{
	*size = 0;
	switch (t) {
	case CKM_AES_CBC:
	case CKM_AES_CBC_PAD:
		return bytes_param(r, 16, size);
	case CKM_AES_CTR:
		return ctr_params(r, size);
	case CKM_AES_GCM:
		return gcm_params(r, size);
	case CKM_AES_KEY_WRAP:
	case CKM_AES_KEY_WRAP_PAD:
		return ap_u8(r) & 1 ? bytes_param(r, 8, size) : NULL;
	case CKM_AES_KEY_WRAP_KWP:
		return ap_u8(r) & 1 ? bytes_param(r, 4, size) : NULL;
	case CKM_AES_CMAC_GENERAL:
	case CKM_SHA256_HMAC_GENERAL:
	case CKM_SHA384_HMAC_GENERAL:
	case CKM_SHA512_HMAC_GENERAL:
	case CKM_AES_MAC_GENERAL:
		return ulong_param(r, size);
	case CKM_P11KMS_KMS_ENVELOPE:
		return ap_u8(r) % 4 ? kms_params(r, size) : NULL;
	case CKM_RSA_PKCS_OAEP:
		return oaep_params(r, size);
	case CKM_RSA_PKCS_PSS:
	case CKM_SHA256_RSA_PKCS_PSS:
	case CKM_SHA384_RSA_PKCS_PSS:
	case CKM_SHA512_RSA_PKCS_PSS:
		return pss_params(r, size);
	default:
		return NULL;
	}
}

/* Sizes at which a raw buffer would be read as a structure holding
 * pointers: random bytes there would be made-up pointers, the caller's
 * fault, not the module's. */
static bool pointer_struct_size(CK_MECHANISM_TYPE t, CK_ULONG n)
{
	switch (t) {
	case CKM_AES_GCM:
		/* v3.0's and v2.30's CK_GCM_PARAMS (module/mech.c), the message's */
		return n == sizeof(CK_GCM_PARAMS) || n == sizeof(CK_GCM_PARAMS) - sizeof(CK_ULONG) ||
		       n == sizeof(CK_GCM_MESSAGE_PARAMS);
	case CKM_P11KMS_KMS_ENVELOPE:
		return n == sizeof(CK_P11KMS_KMS_PARAMS);
	case CKM_RSA_PKCS_OAEP:
		return n == sizeof(CK_RSA_PKCS_OAEP_PARAMS);
	default:
		return false;
	}
}

CK_MECHANISM_PTR ap_mech(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s >= 0xf8)
		return NULL;
	CK_MECHANISM_PTR m = arena_alloc(sizeof(*m));
	if (!m)
		return NULL;
	m->mechanism = ap_mech_type(r);
	m->pParameter = NULL;
	m->ulParameterLen = 0;
	size_t size = 0;
	switch (ap_u8(r) % 8) {
	case 4: /* none */
		break;
	case 5: /* NULL with a length */
		m->ulParameterLen = ap_len(r);
		break;
	case 6: { /* raw bytes */
		CK_ULONG n = real_len(ap_len(r)) % 1025;
		if (pointer_struct_size(m->mechanism, n))
			n++;
		m->pParameter = bytes_param(r, n, &size);
		m->ulParameterLen = m->pParameter ? n : 0;
		break;
	}
	case 7: { /* well formed, but its length says otherwise */
		void *p = proper_param(r, m->mechanism, &size);
		uint8_t d = ap_u8(r) % 5;
		CK_ULONG claim = d == 0	  ? size - 1
				 : d == 1 ? size + 1
				 : d == 2 ? size + 8
				 : d == 3 ? (size >= 8 ? size - 8 : 0)
					  : 2 * size;
		if (!p) { /* no structure: NULL, with that length */
			m->ulParameterLen = claim;
			break;
		}
		if (claim > size) { /* a buffer as long as the claim */
			uint8_t *q = arena_alloc(claim);
			if (q) {
				memcpy(q, p, size);
				memset(q + size, 0, claim - size);
				p = q;
			} else {
				claim = size;
			}
		}
		m->pParameter = p;
		m->ulParameterLen = claim;
		break;
	}
	default:
		m->pParameter = proper_param(r, m->mechanism, &size);
		m->ulParameterLen = m->pParameter ? size : 0;
	}
	return m;
}

void *ap_msg_param(api_prog *r, CK_ULONG *plen)
{
	static const CK_ULONG fixed_bits[] = {0, 32, 64, 0, 95, 96, 97, 1024};
	static const CK_ULONG generators[] = {CKG_GENERATE_RANDOM, CKG_NO_GENERATE,
					      CKG_GENERATE_COUNTER, CKG_GENERATE, 4};
	uint8_t mode = ap_u8(r) % 8;
	*plen = 0;
	if (mode == 6) { /* NULL with a length */
		*plen = ap_len(r);
		return NULL;
	}
	if (mode == 7) { /* raw bytes, never the structure's size */
		size_t size;
		CK_ULONG n = real_len(ap_len(r)) % 257;
		if (n == sizeof(CK_GCM_MESSAGE_PARAMS))
			n++;
		void *p = bytes_param(r, n, &size);
		*plen = p ? n : 0;
		return p;
	}
	CK_GCM_MESSAGE_PARAMS *p = arena_alloc(sizeof(*p));
	if (!p)
		return NULL;
	param_buf(r, &p->pIv, &p->ulIvLen, iv_lens, COUNT(iv_lens));
	p->ulIvFixedBits = ap_pick(r, fixed_bits, COUNT(fixed_bits));
	p->ivGenerator = ap_pick(r, generators, COUNT(generators));
	p->ulTagBits = ap_pick(r, tag_bits, COUNT(tag_bits));
	/* The tag buffer holds what ulTagBits says (NULL if that is absurd). */
	CK_ULONG tagbytes = (p->ulTagBits + 7) / 8;
	p->pTag = NULL;
	if (ap_u8(r) % 8 && p->ulTagBits <= 8 * 4096 && (p->pTag = arena_alloc(tagbytes)))
		ap_fill(r, p->pTag, tagbytes);
	*plen = sizeof(*p);
	if (mode == 5) /* the structure, its length wrong */
		*plen = ap_u8(r) & 1 ? sizeof(*p) - 8 : sizeof(CK_GCM_PARAMS) - 1;
	return p;
}

/* --- results -------------------------------------------------------------------------- */

static const CK_RV defined_rvs[] = {
	CKR_OK, CKR_CANCEL, CKR_HOST_MEMORY, CKR_SLOT_ID_INVALID, CKR_GENERAL_ERROR,
	CKR_FUNCTION_FAILED, CKR_ARGUMENTS_BAD, CKR_NO_EVENT, CKR_NEED_TO_CREATE_THREADS,
	CKR_CANT_LOCK, CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_SENSITIVE,
	CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID, CKR_ACTION_PROHIBITED,
	CKR_DATA_INVALID, CKR_DATA_LEN_RANGE, CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY,
	CKR_DEVICE_REMOVED, CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE,
	0x00000042UL /* CKR_AEAD_DECRYPT_FAILED */, CKR_FUNCTION_CANCELED,
	CKR_FUNCTION_NOT_PARALLEL, CKR_FUNCTION_NOT_SUPPORTED, CKR_KEY_HANDLE_INVALID,
	CKR_KEY_SIZE_RANGE, CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_NOT_NEEDED, CKR_KEY_CHANGED,
	CKR_KEY_NEEDED, CKR_KEY_INDIGESTIBLE, CKR_KEY_FUNCTION_NOT_PERMITTED,
	CKR_KEY_NOT_WRAPPABLE, CKR_KEY_UNEXTRACTABLE, CKR_MECHANISM_INVALID,
	CKR_MECHANISM_PARAM_INVALID, CKR_OBJECT_HANDLE_INVALID, CKR_OPERATION_ACTIVE,
	CKR_OPERATION_NOT_INITIALIZED, CKR_PIN_INCORRECT, CKR_PIN_INVALID,
	CKR_PIN_LEN_RANGE, CKR_PIN_EXPIRED, CKR_PIN_LOCKED, CKR_SESSION_CLOSED,
	CKR_SESSION_COUNT, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_PARALLEL_NOT_SUPPORTED,
	CKR_SESSION_READ_ONLY, CKR_SESSION_EXISTS, CKR_SESSION_READ_ONLY_EXISTS,
	CKR_SESSION_READ_WRITE_SO_EXISTS, CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE,
	CKR_TEMPLATE_INCOMPLETE, CKR_TEMPLATE_INCONSISTENT, CKR_TOKEN_NOT_PRESENT,
	CKR_TOKEN_NOT_RECOGNIZED, CKR_TOKEN_WRITE_PROTECTED,
	CKR_UNWRAPPING_KEY_HANDLE_INVALID, CKR_UNWRAPPING_KEY_SIZE_RANGE,
	CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, CKR_USER_ALREADY_LOGGED_IN,
	CKR_USER_NOT_LOGGED_IN, CKR_USER_PIN_NOT_INITIALIZED, CKR_USER_TYPE_INVALID,
	CKR_USER_ANOTHER_ALREADY_LOGGED_IN, CKR_USER_TOO_MANY_TYPES,
	CKR_WRAPPED_KEY_INVALID, CKR_WRAPPED_KEY_LEN_RANGE,
	CKR_WRAPPING_KEY_HANDLE_INVALID, CKR_WRAPPING_KEY_SIZE_RANGE,
	CKR_WRAPPING_KEY_TYPE_INCONSISTENT, CKR_RANDOM_SEED_NOT_SUPPORTED,
	CKR_RANDOM_NO_RNG, CKR_DOMAIN_PARAMS_INVALID, CKR_CURVE_NOT_SUPPORTED,
	CKR_BUFFER_TOO_SMALL, CKR_SAVED_STATE_INVALID, CKR_INFORMATION_SENSITIVE,
	CKR_STATE_UNSAVEABLE, CKR_CRYPTOKI_NOT_INITIALIZED,
	CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_MUTEX_BAD, CKR_MUTEX_NOT_LOCKED,
	CKR_NEW_PIN_MODE, CKR_NEXT_OTP, CKR_EXCEEDED_MAX_ITERATIONS,
	CKR_FIPS_SELF_TEST_FAILED, CKR_LIBRARY_LOAD_FAILED, CKR_PIN_TOO_WEAK,
	CKR_PUBLIC_KEY_INVALID, CKR_FUNCTION_REJECTED,
	/* 3.0 */
	0x00000201UL /* CKR_TOKEN_RESOURCE_EXCEEDED */,
	0x00000202UL /* CKR_OPERATION_CANCEL_FAILED */,
};

static bool strict(void)
{
	static int s = -1;
	if (s < 0) {
		const char *e = getenv("P11KMS_APIFUZZ_STRICT");
		s = e && *e && *e != '0';
	}
	return s;
}

void api_fail(const char *fn, const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: fuzz check failed: %s: %s\n", file, line, fn, what);
	abort();
}

/* Each finding is printed once per process: a fuzzing run would print it
 * millions of times. */
#define SEEN_MAX 256
static const char *seen_fn[SEEN_MAX], *seen_what[SEEN_MAX];
static size_t nseen;

void api_finding(const char *fn, const char *what)
{
	if (strict()) {
		fprintf(stderr, "fuzz_api: finding (strict): %s: %s\n", fn, what);
		abort();
	}
	for (size_t i = 0; i < nseen; i++)
		if (seen_fn[i] == fn && seen_what[i] == what)
			return;
	if (nseen < SEEN_MAX) {
		seen_fn[nseen] = fn;
		seen_what[nseen++] = what;
	}
	fprintf(stderr, "fuzz_api: finding: %s: %s (run with P11KMS_APIFUZZ_STRICT=1 "
			"to stop here)\n",
		fn, what);
}

void api_rv(const char *fn, CK_RV rv)
{
	bool defined = (rv & CKR_VENDOR_DEFINED) != 0;
	for (size_t i = 0; !defined && i < COUNT(defined_rvs); i++)
		defined = defined_rvs[i] == rv;
	if (!defined) {
		fprintf(stderr, "fuzz_api: %s returned 0x%lx\n", fn, (unsigned long)rv);
		api_fail(fn, "a return value PKCS #11 does not define", __FILE__, __LINE__);
	}
	if (rv == CKR_GENERAL_ERROR)
		api_finding(fn, "CKR_GENERAL_ERROR (the module's own failure, with "
				"nothing failing under it here)");
	/* Nothing here runs out of memory (ASan stops an allocation it
	 * cannot make): CKR_HOST_MEMORY is another error mapped wrong, as
	 * C_DigestKey on a KMS key once answered (issue 14). */
	if (rv == CKR_HOST_MEMORY)
		api_finding(fn, "CKR_HOST_MEMORY with memory to spare");
}
