/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots/object.c: the attribute rules table (PKCS #11 v3.0 section 4),
 * obj_build defaults and per-origin rules, obj_modify, the
 * C_GetAttributeValue semantics of obj_get_attributes (section 5.7), and
 * the record codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/secmem.h"
#include "slots/object.h"

static CK_OBJECT_CLASS cls_key = CKO_SECRET_KEY, cls_data = CKO_DATA;
static CK_KEY_TYPE kt_aes = CKK_AES, kt_gen = CKK_GENERIC_SECRET;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static const uint8_t zero16[16];
static const obj_actor user = {.so = false}, so = {.so = true};

#define A(t, p, n) {(t), (void *)(p), (n)}
#define NATTR(a) (sizeof(a) / sizeof((a)[0]))

static int group_setup(void **state)
{
	return crypto_init() ? 0 : -1;
}

static int group_teardown(void **state)
{
	crypto_fini();
	return 0;
}

/* An AES-128 key of zeros made by C_CreateObject, plus extra entries. */
static CK_RV make_key(const CK_ATTRIBUTE *more, CK_ULONG nmore, obj_actor who,
		      object_t **o)
{
	CK_ATTRIBUTE t[16] = {
		A(CKA_CLASS, &cls_key, sizeof(cls_key)),
		A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
		A(CKA_VALUE, zero16, sizeof(zero16)),
	};
	CK_ULONG n = 3;
	for (CK_ULONG i = 0; i < nmore && n < NATTR(t); i++)
		t[n++] = more[i];
	return obj_build(ORIGIN_CREATE, t, n, NULL, 0, who, o);
}

static object_t *key_or_fail(const CK_ATTRIBUTE *more, CK_ULONG nmore)
{
	object_t *o = NULL;
	assert_int_equal(make_key(more, nmore, user, &o), CKR_OK);
	assert_non_null(o);
	return o;
}

static void assert_bool_attr(const object_t *o, CK_ATTRIBUTE_TYPE t, bool v)
{
	const attr_t *a = obj_attr(o, t);
	if (!a)
		fail_msg("attribute 0x%lx missing", (unsigned long)t);
	assert_int_equal(a->len, sizeof(CK_BBOOL));
	if ((*(CK_BBOOL *)a->val != CK_FALSE) != v)
		fail_msg("attribute 0x%lx: expected %s", (unsigned long)t,
			 v ? "TRUE" : "FALSE");
}

static void assert_empty_attr(const object_t *o, CK_ATTRIBUTE_TYPE t)
{
	const attr_t *a = obj_attr(o, t);
	if (!a)
		fail_msg("attribute 0x%lx missing", (unsigned long)t);
	assert_int_equal(a->len, 0);
}

/* --- obj_build ------------------------------------------------------ */

static void test_build_key_defaults(void **state)
{
	object_t *o = key_or_fail(NULL, 0);
	assert_int_equal(obj_ulong(o, CKA_CLASS, 0), CKO_SECRET_KEY);
	assert_int_equal(obj_ulong(o, CKA_KEY_TYPE, 0), CKK_AES);
	assert_bool_attr(o, CKA_TOKEN, false);
	assert_bool_attr(o, CKA_PRIVATE, true);
	assert_bool_attr(o, CKA_MODIFIABLE, true);
	assert_bool_attr(o, CKA_COPYABLE, true);
	assert_bool_attr(o, CKA_DESTROYABLE, true);
	assert_empty_attr(o, CKA_LABEL);
	assert_empty_attr(o, CKA_ID);
	assert_empty_attr(o, CKA_START_DATE);
	assert_empty_attr(o, CKA_END_DATE);
	assert_empty_attr(o, CKA_ALLOWED_MECHANISMS);
	assert_bool_attr(o, CKA_DERIVE, false);
	assert_bool_attr(o, CKA_SENSITIVE, true);
	assert_bool_attr(o, CKA_ENCRYPT, true);
	assert_bool_attr(o, CKA_DECRYPT, true);
	assert_bool_attr(o, CKA_SIGN, true);
	assert_bool_attr(o, CKA_VERIFY, true);
	/* One role (docs/SECURITY.md): a data key does not wrap, and a
	 * sensitive key is not extractable unless the template says so. */
	assert_bool_attr(o, CKA_WRAP, false);
	assert_bool_attr(o, CKA_UNWRAP, false);
	assert_bool_attr(o, CKA_EXTRACTABLE, false);
	assert_bool_attr(o, CKA_WRAP_WITH_TRUSTED, false);
	assert_bool_attr(o, CKA_TRUSTED, false);
	/* Set by the module for a key it did not generate. */
	assert_bool_attr(o, CKA_LOCAL, false);
	assert_bool_attr(o, CKA_ALWAYS_SENSITIVE, false);
	assert_bool_attr(o, CKA_NEVER_EXTRACTABLE, false);
	assert_int_equal(obj_ulong(o, CKA_KEY_GEN_MECHANISM, 0),
			 CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(obj_ulong(o, CKA_VALUE_LEN, 0), 16);
	/* AES-128(0^16) of 0^16 = 66e94bd4...: the check value is 66e94b. */
	const attr_t *kcv = obj_attr(o, CKA_CHECK_VALUE);
	assert_non_null(kcv);
	assert_int_equal(kcv->len, 3);
	assert_memory_equal(kcv->val, "\x66\xe9\x4b", 3);
	const attr_t *uid = obj_attr(o, CKA_UNIQUE_ID);
	assert_non_null(uid);
	assert_int_equal(uid->len, 32);
	for (int i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", uid->val[i]));
	assert_true(obj_is_private(o));
	assert_false(obj_is_token(o));
	assert_true(o->sec_loaded);
	/* Attributes are sorted and unique: serialization is canonical. */
	for (size_t i = 1; i < o->nattrs; i++)
		assert_true(o->attrs[i - 1].type < o->attrs[i].type);
	/* Data-object attributes do not exist on a key. */
	assert_null(obj_attr(o, CKA_APPLICATION));
	assert_null(obj_attr(o, CKA_OBJECT_ID));
	obj_free(o);
}

static void test_build_generic_secret(void **state)
{
	static const uint8_t v[20] = {1};
	CK_ATTRIBUTE t[] = {
		A(CKA_CLASS, &cls_key, sizeof(cls_key)),
		A(CKA_KEY_TYPE, &kt_gen, sizeof(kt_gen)),
		A(CKA_VALUE, v, sizeof(v)),
	};
	object_t *o = NULL;
	assert_int_equal(obj_build(ORIGIN_CREATE, t, NATTR(t), NULL, 0, user, &o),
			 CKR_OK);
	assert_int_equal(obj_ulong(o, CKA_VALUE_LEN, 0), 20);
	assert_int_equal(obj_attr(o, CKA_CHECK_VALUE)->len, 3);
	obj_free(o);
}

static void test_build_generated_key(void **state)
{
	CK_ULONG len = 32;
	static const uint8_t v[32] = {9};
	CK_ATTRIBUTE t[] = {
		A(CKA_CLASS, &cls_key, sizeof(cls_key)),
		A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
		A(CKA_VALUE_LEN, &len, sizeof(len)),
		A(CKA_EXTRACTABLE, &no, sizeof(no)),
	};
	CK_ATTRIBUTE extra[] = {A(CKA_VALUE, v, sizeof(v))};
	object_t *o = NULL;
	assert_int_equal(obj_build(ORIGIN_GENERATE, t, NATTR(t), extra, 1, user, &o),
			 CKR_OK);
	assert_bool_attr(o, CKA_LOCAL, true);
	assert_bool_attr(o, CKA_ALWAYS_SENSITIVE, true);
	assert_bool_attr(o, CKA_NEVER_EXTRACTABLE, true);
	assert_int_equal(obj_ulong(o, CKA_VALUE_LEN, 0), 32);
	obj_free(o);
}

static void test_build_data_defaults(void **state)
{
	CK_ATTRIBUTE t[] = {A(CKA_CLASS, &cls_data, sizeof(cls_data))};
	object_t *o = NULL;
	assert_int_equal(obj_build(ORIGIN_CREATE, t, 1, NULL, 0, user, &o), CKR_OK);
	assert_int_equal(obj_ulong(o, CKA_CLASS, 99), CKO_DATA);
	assert_bool_attr(o, CKA_TOKEN, false);
	assert_bool_attr(o, CKA_PRIVATE, false);
	assert_bool_attr(o, CKA_MODIFIABLE, true);
	assert_bool_attr(o, CKA_COPYABLE, true);
	assert_bool_attr(o, CKA_DESTROYABLE, true);
	assert_empty_attr(o, CKA_LABEL);
	assert_empty_attr(o, CKA_APPLICATION);
	assert_empty_attr(o, CKA_OBJECT_ID);
	assert_empty_attr(o, CKA_VALUE);
	assert_non_null(obj_attr(o, CKA_UNIQUE_ID));
	/* No key attributes on a data object. */
	assert_null(obj_attr(o, CKA_SENSITIVE));
	assert_null(obj_attr(o, CKA_KEY_TYPE));
	assert_null(obj_attr(o, CKA_CHECK_VALUE));
	assert_false(obj_is_private(o));
	obj_free(o);

	CK_ATTRIBUTE t2[] = {
		A(CKA_CLASS, &cls_data, sizeof(cls_data)),
		A(CKA_VALUE, "payload", 7),
		A(CKA_APPLICATION, "app", 3),
		A(CKA_PRIVATE, &yes, 1),
	};
	assert_int_equal(obj_build(ORIGIN_CREATE, t2, NATTR(t2), NULL, 0, user, &o),
			 CKR_OK);
	assert_int_equal(obj_attr(o, CKA_VALUE)->len, 7);
	assert_true(obj_is_private(o));
	obj_free(o);
}

static void expect_build(obj_origin origin, const CK_ATTRIBUTE *t, CK_ULONG n,
			 const CK_ATTRIBUTE *extra, CK_ULONG nextra, CK_RV want)
{
	object_t *o = (object_t *)0x1;
	size_t before = sec_in_use();
	CK_RV rv = obj_build(origin, t, n, extra, nextra, user, &o);
	if (rv != want)
		fail_msg("obj_build: expected 0x%lx, got 0x%lx", (unsigned long)want,
			 (unsigned long)rv);
	if (rv == CKR_OK)
		obj_free(o);
	else
		assert_null(o);
	/* Nothing of the key stays behind in secure memory. */
	assert_int_equal(sec_in_use(), before);
}

static void test_build_required(void **state)
{
	CK_ULONG len = 16;
	/* C_CreateObject: CKA_CLASS, CKA_KEY_TYPE and CKA_VALUE (footnote 1). */
	CK_ATTRIBUTE no_class[] = {A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
				   A(CKA_VALUE, zero16, 16)};
	expect_build(ORIGIN_CREATE, no_class, 2, NULL, 0, CKR_TEMPLATE_INCOMPLETE);
	CK_ATTRIBUTE no_type[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				  A(CKA_VALUE, zero16, 16)};
	expect_build(ORIGIN_CREATE, no_type, 2, NULL, 0, CKR_TEMPLATE_INCOMPLETE);
	CK_ATTRIBUTE no_value[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				   A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes))};
	expect_build(ORIGIN_CREATE, no_value, 2, NULL, 0, CKR_TEMPLATE_INCOMPLETE);
	/* C_GenerateKey: CKA_VALUE_LEN (footnote 3). */
	CK_ATTRIBUTE gen[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
			      A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes))};
	CK_ATTRIBUTE extra[] = {A(CKA_VALUE, zero16, 16)};
	expect_build(ORIGIN_GENERATE, gen, 2, extra, 1, CKR_TEMPLATE_INCOMPLETE);
	CK_ATTRIBUTE gen_ok[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				 A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
				 A(CKA_VALUE_LEN, &len, sizeof(len))};
	expect_build(ORIGIN_GENERATE, gen_ok, 3, extra, 1, CKR_OK);
	/* The unwrapping key supplies CKA_VALUE; nothing else is required
	 * beyond the class (from the caller or the mechanism). */
	expect_build(ORIGIN_UNWRAP, gen, 2, extra, 1, CKR_OK);
	CK_ATTRIBUTE cls_extra[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				    A(CKA_VALUE, zero16, 16)};
	CK_ATTRIBUTE only_type[] = {A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes))};
	expect_build(ORIGIN_UNWRAP, only_type, 1, cls_extra, 2, CKR_OK);
	/* Data objects need only the class; they are never generated. */
	CK_ATTRIBUTE data[] = {A(CKA_CLASS, &cls_data, sizeof(cls_data))};
	expect_build(ORIGIN_GENERATE, data, 1, extra, 1, CKR_TEMPLATE_INCONSISTENT);
	expect_build(ORIGIN_UNWRAP, data, 1, extra, 1, CKR_TEMPLATE_INCONSISTENT);
}

static void test_build_forbidden(void **state)
{
	CK_ULONG len = 16, len24 = 24;
	CK_ATTRIBUTE extra[] = {A(CKA_VALUE, zero16, 16)};
	/* C_GenerateKey: no CKA_VALUE, no CKA_CHECK_VALUE (footnote 4). */
	CK_ATTRIBUTE gen_value[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				    A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
				    A(CKA_VALUE_LEN, &len, sizeof(len)),
				    A(CKA_VALUE, zero16, 16)};
	expect_build(ORIGIN_GENERATE, gen_value, 4, extra, 1,
		     CKR_TEMPLATE_INCONSISTENT);
	CK_ATTRIBUTE gen_kcv[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				  A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
				  A(CKA_VALUE_LEN, &len, sizeof(len)),
				  A(CKA_CHECK_VALUE, "\x66\xe9\x4b", 3)};
	expect_build(ORIGIN_GENERATE, gen_kcv, 4, extra, 1,
		     CKR_TEMPLATE_INCONSISTENT);
	/* C_UnwrapKey: no CKA_VALUE (footnote 6). */
	CK_ATTRIBUTE unwrap_value[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				       A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
				       A(CKA_VALUE, zero16, 16)};
	expect_build(ORIGIN_UNWRAP, unwrap_value, 3, extra, 1,
		     CKR_TEMPLATE_INCONSISTENT);
	/* C_CreateObject: CKA_VALUE_LEN is tolerated only when it agrees. */
	CK_ATTRIBUTE ok_len[] = {A(CKA_VALUE_LEN, &len, sizeof(len))};
	object_t *o = NULL;
	assert_int_equal(make_key(ok_len, 1, user, &o), CKR_OK);
	obj_free(o);
	CK_ATTRIBUTE bad_len[] = {A(CKA_VALUE_LEN, &len24, sizeof(len24))};
	assert_int_equal(make_key(bad_len, 1, user, &o), CKR_TEMPLATE_INCONSISTENT);
	/* A check value that does not match the key; an empty one asks for
	 * none (v3.0 4.10). */
	CK_ATTRIBUTE bad_kcv[] = {A(CKA_CHECK_VALUE, "\x00\x00\x00", 3)};
	assert_int_equal(make_key(bad_kcv, 1, user, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE good_kcv[] = {A(CKA_CHECK_VALUE, "\x66\xe9\x4b", 3)};
	assert_int_equal(make_key(good_kcv, 1, user, &o), CKR_OK);
	obj_free(o);
	CK_ATTRIBUTE no_kcv[] = {A(CKA_CHECK_VALUE, NULL, 0)};
	assert_int_equal(make_key(no_kcv, 1, user, &o), CKR_OK);
	assert_int_equal(obj_attr(o, CKA_CHECK_VALUE)->len, 0);
	obj_free(o);
}

static void test_build_read_only(void **state)
{
	CK_MECHANISM_TYPE m = CKM_AES_KEY_GEN;
	const CK_ATTRIBUTE ro[] = {
		A(CKA_LOCAL, &no, 1),
		A(CKA_ALWAYS_SENSITIVE, &yes, 1),
		A(CKA_NEVER_EXTRACTABLE, &yes, 1),
		A(CKA_KEY_GEN_MECHANISM, &m, sizeof(m)),
		A(CKA_UNIQUE_ID, "0123", 4),
	};
	for (size_t i = 0; i < NATTR(ro); i++) {
		object_t *o = NULL;
		CK_RV rv = make_key(&ro[i], 1, user, &o);
		if (rv != CKR_ATTRIBUTE_READ_ONLY)
			fail_msg("attribute 0x%lx on create: got 0x%lx",
				 (unsigned long)ro[i].type, (unsigned long)rv);
		assert_null(o);
	}
}

static void test_build_bad_values(void **state)
{
	object_t *o = NULL;
	CK_BBOOL two = 2;
	CK_ULONG ul = 1;
	CK_KEY_TYPE rsa = CKK_RSA;
	CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
	/* Wrong shapes. */
	CK_ATTRIBUTE b2[] = {A(CKA_ENCRYPT, &two, 1)};
	assert_int_equal(make_key(b2, 1, user, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE blen[] = {A(CKA_ENCRYPT, &ul, sizeof(ul))};
	assert_int_equal(make_key(blen, 1, user, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE date[] = {A(CKA_START_DATE, "2024", 4)};
	assert_int_equal(make_key(date, 1, user, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE mechs[] = {A(CKA_ALLOWED_MECHANISMS, "abc", 3)};
	assert_int_equal(make_key(mechs, 1, user, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE nullval[] = {A(CKA_LABEL, NULL, 4)};
	assert_int_equal(make_key(nullval, 1, user, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	/* Duplicates. */
	CK_ATTRIBUTE dup[] = {A(CKA_LABEL, "a", 1), A(CKA_LABEL, "b", 1)};
	assert_int_equal(make_key(dup, 2, user, &o), CKR_TEMPLATE_INCONSISTENT);
	/* Unknown attribute, and one of another class. */
	CK_ATTRIBUTE unknown[] = {A(CKA_MODULUS, "x", 1)};
	assert_int_equal(make_key(unknown, 1, user, &o), CKR_ATTRIBUTE_TYPE_INVALID);
	CK_ATTRIBUTE app[] = {A(CKA_APPLICATION, "x", 1)};
	assert_int_equal(make_key(app, 1, user, &o), CKR_ATTRIBUTE_TYPE_INVALID);
	CK_ATTRIBUTE dsens[] = {A(CKA_CLASS, &cls_data, sizeof(cls_data)),
				A(CKA_SENSITIVE, &yes, 1)};
	expect_build(ORIGIN_CREATE, dsens, 2, NULL, 0, CKR_ATTRIBUTE_TYPE_INVALID);
	/* Unsupported class and key type, bad key lengths. */
	CK_ATTRIBUTE pk[] = {A(CKA_CLASS, &pub, sizeof(pub))};
	expect_build(ORIGIN_CREATE, pk, 1, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE rsak[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
			       A(CKA_KEY_TYPE, &rsa, sizeof(rsa)),
			       A(CKA_VALUE, zero16, 16)};
	expect_build(ORIGIN_CREATE, rsak, 3, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE aes15[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)),
				A(CKA_VALUE, zero16, 15)};
	expect_build(ORIGIN_CREATE, aes15, 3, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE unwrap[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
				 A(CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes))};
	CK_ATTRIBUTE v15[] = {A(CKA_VALUE, zero16, 15)};
	expect_build(ORIGIN_UNWRAP, unwrap, 2, v15, 1, CKR_WRAPPED_KEY_LEN_RANGE);
	CK_ATTRIBUTE gen0[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key)),
			       A(CKA_KEY_TYPE, &kt_gen, sizeof(kt_gen)),
			       A(CKA_VALUE, "", 0)};
	expect_build(ORIGIN_CREATE, gen0, 3, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID);
	assert_int_equal(tmpl_check(NULL, 1), CKR_ARGUMENTS_BAD);
	assert_int_equal(tmpl_check(NULL, 0), CKR_OK);
}

static void test_trusted_only_by_so(void **state)
{
	object_t *o = NULL;
	CK_ATTRIBUTE t[] = {A(CKA_TRUSTED, &yes, 1)};
	assert_int_equal(make_key(t, 1, user, &o), CKR_ATTRIBUTE_READ_ONLY);
	assert_null(o);
	assert_int_equal(make_key(t, 1, so, &o), CKR_OK);
	assert_bool_attr(o, CKA_TRUSTED, true);
	obj_free(o);
	CK_ATTRIBUTE f[] = {A(CKA_TRUSTED, &no, 1)};
	assert_int_equal(make_key(f, 1, user, &o), CKR_OK);
	/* Modify: the user may not set it TRUE, the SO may; back to FALSE is
	 * anyone's. */
	assert_int_equal(obj_modify(o, t, 1, false, user), CKR_ATTRIBUTE_READ_ONLY);
	assert_bool_attr(o, CKA_TRUSTED, false);
	assert_int_equal(obj_modify(o, t, 1, false, so), CKR_OK);
	assert_bool_attr(o, CKA_TRUSTED, true);
	assert_int_equal(obj_modify(o, f, 1, false, user), CKR_OK);
	assert_bool_attr(o, CKA_TRUSTED, false);
	obj_free(o);
}

/* --- obj_modify ----------------------------------------------------- */

static void test_sensitive_only_false_to_true(void **state)
{
	CK_ATTRIBUTE f[] = {A(CKA_SENSITIVE, &no, 1)};
	CK_ATTRIBUTE t[] = {A(CKA_SENSITIVE, &yes, 1)};
	object_t *o = key_or_fail(f, 1);
	assert_bool_attr(o, CKA_SENSITIVE, false);
	assert_int_equal(obj_modify(o, f, 1, false, user), CKR_OK); /* unchanged */
	assert_int_equal(obj_modify(o, t, 1, false, user), CKR_OK);
	assert_bool_attr(o, CKA_SENSITIVE, true);
	assert_int_equal(obj_modify(o, f, 1, false, user), CKR_ATTRIBUTE_READ_ONLY);
	assert_int_equal(obj_modify(o, f, 1, true, so), CKR_ATTRIBUTE_READ_ONLY);
	assert_bool_attr(o, CKA_SENSITIVE, true);
	obj_free(o);
}

static void test_extractable_only_true_to_false(void **state)
{
	CK_ATTRIBUTE f[] = {A(CKA_EXTRACTABLE, &no, 1)};
	CK_ATTRIBUTE t[] = {A(CKA_EXTRACTABLE, &yes, 1)};
	object_t *o = key_or_fail(t, 1);
	assert_int_equal(obj_modify(o, t, 1, false, user), CKR_OK); /* unchanged */
	assert_int_equal(obj_modify(o, f, 1, false, user), CKR_OK);
	assert_bool_attr(o, CKA_EXTRACTABLE, false);
	assert_int_equal(obj_modify(o, t, 1, false, user), CKR_ATTRIBUTE_READ_ONLY);
	assert_int_equal(obj_modify(o, t, 1, true, so), CKR_ATTRIBUTE_READ_ONLY);
	assert_bool_attr(o, CKA_EXTRACTABLE, false);
	obj_free(o);
}

static void test_wrap_with_trusted_only_true(void **state)
{
	CK_ATTRIBUTE f[] = {A(CKA_WRAP_WITH_TRUSTED, &no, 1)};
	CK_ATTRIBUTE t[] = {A(CKA_WRAP_WITH_TRUSTED, &yes, 1)};
	object_t *o = key_or_fail(NULL, 0);
	assert_int_equal(obj_modify(o, t, 1, false, user), CKR_OK);
	assert_int_equal(obj_modify(o, f, 1, false, user), CKR_ATTRIBUTE_READ_ONLY);
	obj_free(o);
}

static void test_modify_read_only(void **state)
{
	object_t *o = key_or_fail(NULL, 0);
	CK_KEY_TYPE gen = CKK_GENERIC_SECRET;
	CK_OBJECT_CLASS data = CKO_DATA;
	CK_MECHANISM_TYPE m = CKM_AES_GCM;
	const CK_ATTRIBUTE ro[] = {
		A(CKA_CLASS, &data, sizeof(data)),
		A(CKA_KEY_TYPE, &gen, sizeof(gen)),
		A(CKA_VALUE, "0123456789abcdef", 16),
		A(CKA_VALUE_LEN, &(CK_ULONG){32}, sizeof(CK_ULONG)),
		A(CKA_LOCAL, &yes, 1),
		A(CKA_ALWAYS_SENSITIVE, &yes, 1),
		A(CKA_NEVER_EXTRACTABLE, &yes, 1),
		A(CKA_CHECK_VALUE, "abc", 3),
		A(CKA_UNIQUE_ID, "x", 1),
		A(CKA_ALLOWED_MECHANISMS, &m, sizeof(m)),
		A(CKA_TOKEN, &yes, 1),
		A(CKA_PRIVATE, &no, 1),
	};
	for (size_t i = 0; i < NATTR(ro); i++) {
		CK_RV rv = obj_modify(o, &ro[i], 1, false, so);
		if (rv != CKR_ATTRIBUTE_READ_ONLY)
			fail_msg("changing 0x%lx: got 0x%lx", (unsigned long)ro[i].type,
				 (unsigned long)rv);
	}
	/* Setting a read-only attribute to its current value is harmless. */
	CK_ATTRIBUTE same[] = {A(CKA_CLASS, &cls_key, sizeof(cls_key))};
	assert_int_equal(obj_modify(o, same, 1, false, user), CKR_OK);
	/* CKA_TOKEN and CKA_PRIVATE may change while copying (footnote 8). */
	CK_ATTRIBUTE copy[] = {A(CKA_TOKEN, &yes, 1), A(CKA_PRIVATE, &no, 1)};
	assert_int_equal(obj_modify(o, copy, 2, true, user), CKR_OK);
	assert_bool_attr(o, CKA_TOKEN, true);
	assert_bool_attr(o, CKA_PRIVATE, false);
	/* Attributes of another class or unknown. */
	CK_ATTRIBUTE app[] = {A(CKA_APPLICATION, "x", 1)};
	assert_int_equal(obj_modify(o, app, 1, false, user), CKR_ATTRIBUTE_TYPE_INVALID);
	obj_free(o);
}

static void test_modify_atomic(void **state)
{
	object_t *o = key_or_fail(NULL, 0);
	CK_ATTRIBUTE t[] = {A(CKA_LABEL, "new", 3), A(CKA_SENSITIVE, &no, 1)};
	assert_int_equal(obj_modify(o, t, 2, false, user), CKR_ATTRIBUTE_READ_ONLY);
	assert_int_equal(obj_attr(o, CKA_LABEL)->len, 0);
	assert_int_equal(obj_modify(o, t, 1, false, user), CKR_OK);
	assert_int_equal(obj_attr(o, CKA_LABEL)->len, 3);
	obj_free(o);
}

static void test_modify_not_modifiable(void **state)
{
	CK_ATTRIBUTE nm[] = {A(CKA_MODIFIABLE, &no, 1)};
	object_t *o = key_or_fail(nm, 1);
	CK_ATTRIBUTE lab[] = {A(CKA_LABEL, "x", 1)};
	assert_int_equal(obj_modify(o, lab, 1, false, so), CKR_ACTION_PROHIBITED);
	/* C_CopyObject may still change what copying allows. */
	assert_int_equal(obj_modify(o, lab, 1, true, user), CKR_OK);
	/* MODIFIABLE goes TRUE -> FALSE only, and only while copying. */
	CK_ATTRIBUTE back[] = {A(CKA_MODIFIABLE, &yes, 1)};
	assert_int_equal(obj_modify(o, back, 1, true, user), CKR_ATTRIBUTE_READ_ONLY);
	obj_free(o);
}

/* --- obj_get_attributes (C_GetAttributeValue, v3.0 5.7) ------------- */

static void test_get_every_entry(void **state)
{
	CK_ATTRIBUTE lab[] = {A(CKA_LABEL, "label", 5), A(CKA_ID, "\x01\x02\x03", 3)};
	object_t *o = key_or_fail(lab, 2);
	CK_OBJECT_CLASS c = 0;
	CK_KEY_TYPE k = 0;
	uint8_t value[32] = {0xee}, id[2] = {0xee, 0xee};
	CK_ATTRIBUTE t[] = {
		A(CKA_CLASS, &c, sizeof(c)),                /* fine */
		A(CKA_VALUE, value, sizeof(value)),          /* sensitive */
		A(CKA_MODULUS, value, sizeof(value)),        /* no such type */
		A(CKA_LABEL, NULL, 0),                      /* length query */
		A(CKA_ID, id, sizeof(id)),                  /* too small */
		A(CKA_KEY_TYPE, &k, sizeof(k)),             /* fine, after errors */
		A(CKA_APPLICATION, value, sizeof(value)),    /* data-only */
	};
	CK_RV rv = obj_get_attributes(o, t, NATTR(t));
	assert_true(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
		    rv == CKR_BUFFER_TOO_SMALL);
	assert_int_equal(c, CKO_SECRET_KEY);
	assert_int_equal(t[0].ulValueLen, sizeof(CK_OBJECT_CLASS));
	assert_int_equal(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(value[0], 0xee); /* nothing of the key copied */
	assert_int_equal(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(t[3].ulValueLen, 5);
	assert_int_equal(t[4].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(k, CKK_AES);
	assert_int_equal(t[5].ulValueLen, sizeof(CK_KEY_TYPE));
	assert_int_equal(t[6].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	obj_free(o);
}

static void test_get_each_error(void **state)
{
	object_t *o = key_or_fail(NULL, 0);
	uint8_t buf[64];
	/* Sensitive, also for a length query. */
	CK_ATTRIBUTE v[] = {A(CKA_VALUE, buf, sizeof(buf))};
	assert_int_equal(obj_get_attributes(o, v, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(v[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	CK_ATTRIBUTE vq[] = {A(CKA_VALUE, NULL, 0)};
	assert_int_equal(obj_get_attributes(o, vq, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(vq[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* Invalid type. */
	CK_ATTRIBUTE m[] = {A(CKA_MODULUS, NULL, 0)};
	assert_int_equal(obj_get_attributes(o, m, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(m[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* Buffer too small, exact, larger. */
	CK_ATTRIBUTE s[] = {A(CKA_UNIQUE_ID, buf, 31)};
	assert_int_equal(obj_get_attributes(o, s, 1), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(s[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	s[0].ulValueLen = 32;
	assert_int_equal(obj_get_attributes(o, s, 1), CKR_OK);
	assert_int_equal(s[0].ulValueLen, 32);
	s[0].ulValueLen = sizeof(buf);
	assert_int_equal(obj_get_attributes(o, s, 1), CKR_OK);
	assert_int_equal(s[0].ulValueLen, 32);
	/* An empty attribute reads as length 0. */
	CK_ATTRIBUTE e[] = {A(CKA_LABEL, buf, 0)};
	assert_int_equal(obj_get_attributes(o, e, 1), CKR_OK);
	assert_int_equal(e[0].ulValueLen, 0);
	assert_int_equal(obj_get_attributes(o, NULL, 0), CKR_OK);
	obj_free(o);
}

static void test_get_value_visibility(void **state)
{
	uint8_t buf[16];
	CK_ATTRIBUTE v[] = {A(CKA_VALUE, buf, sizeof(buf))};
	/* Not sensitive and extractable: readable. */
	CK_ATTRIBUTE open_[] = {A(CKA_SENSITIVE, &no, 1)};
	object_t *o = key_or_fail(open_, 1);
	assert_int_equal(obj_get_attributes(o, v, 1), CKR_OK);
	assert_int_equal(v[0].ulValueLen, 16);
	assert_memory_equal(buf, zero16, 16);
	obj_free(o);
	/* Not sensitive but unextractable: hidden (footnote 7). */
	CK_ATTRIBUTE unx[] = {A(CKA_SENSITIVE, &no, 1), A(CKA_EXTRACTABLE, &no, 1)};
	o = key_or_fail(unx, 2);
	v[0].ulValueLen = sizeof(buf);
	assert_int_equal(obj_get_attributes(o, v, 1), CKR_ATTRIBUTE_SENSITIVE);
	obj_free(o);
	/* A data object's value is never sensitive. */
	CK_ATTRIBUTE d[] = {A(CKA_CLASS, &cls_data, sizeof(cls_data)),
			    A(CKA_VALUE, "abc", 3)};
	assert_int_equal(obj_build(ORIGIN_CREATE, d, 2, NULL, 0, user, &o), CKR_OK);
	v[0].ulValueLen = sizeof(buf);
	assert_int_equal(obj_get_attributes(o, v, 1), CKR_OK);
	assert_int_equal(v[0].ulValueLen, 3);
	CK_ATTRIBUTE sens[] = {A(CKA_SENSITIVE, buf, 1)};
	assert_int_equal(obj_get_attributes(o, sens, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	obj_free(o);
}

static void test_match(void **state)
{
	CK_ATTRIBUTE lab[] = {A(CKA_LABEL, "k1", 2)};
	object_t *o = key_or_fail(lab, 1);
	CK_ATTRIBUTE m1[] = {A(CKA_LABEL, "k1", 2), A(CKA_CLASS, &cls_key, sizeof(cls_key))};
	assert_true(obj_match(o, m1, 2));
	CK_ATTRIBUTE m2[] = {A(CKA_LABEL, "k2", 2)};
	assert_false(obj_match(o, m2, 1));
	/* A sensitive value never matches, even when right. */
	CK_ATTRIBUTE m3[] = {A(CKA_VALUE, zero16, 16)};
	assert_false(obj_match(o, m3, 1));
	assert_true(obj_match(o, NULL, 0));
	obj_free(o);
}

/* --- record codec --------------------------------------------------- */

static void same_attrs(const object_t *a, const object_t *b)
{
	assert_int_equal(a->nattrs, b->nattrs);
	for (size_t i = 0; i < a->nattrs; i++) {
		assert_int_equal(a->attrs[i].type, b->attrs[i].type);
		assert_int_equal(a->attrs[i].len, b->attrs[i].len);
		if (a->attrs[i].len)
			assert_memory_equal(a->attrs[i].val, b->attrs[i].val,
					    a->attrs[i].len);
	}
}

static void serialize(const object_t *o, bool secret, dbuf_t *b)
{
	dbuf_init(b, 1 << 20, secret);
	assert_true(obj_serialize(o, secret, b));
}

static bool parses(const uint8_t *p, size_t n, bool secret)
{
	object_t *o = calloc(1, sizeof(*o));
	assert_non_null(o);
	uint8_t *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, p, n);
	bool ok = obj_deserialize(o, copy, n, secret);
	free(copy);
	obj_free(o);
	return ok;
}

static void test_record_round_trip(void **state)
{
	CK_MECHANISM_TYPE mechs[] = {CKM_AES_GCM, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP};
	CK_DATE d = {{'2', '0', '2', '6'}, {'0', '1'}, {'0', '2'}};
	CK_ATTRIBUTE more[] = {A(CKA_LABEL, "label", 5), A(CKA_ID, "\x00\xff", 2),
			       A(CKA_ALLOWED_MECHANISMS, mechs, sizeof(mechs)),
			       A(CKA_START_DATE, &d, sizeof(d))};
	object_t *o = key_or_fail(more, NATTR(more));
	dbuf_t pub, sec;
	serialize(o, false, &pub);
	serialize(o, true, &sec);
	object_t *r = calloc(1, sizeof(*r));
	assert_true(obj_deserialize(r, pub.p, pub.len, false));
	assert_null(obj_attr(r, CKA_VALUE));
	assert_true(obj_deserialize(r, sec.p, sec.len, true));
	same_attrs(o, r);
	/* CK_ULONG lists survive as CK_ULONGs. */
	const attr_t *am = obj_attr(r, CKA_ALLOWED_MECHANISMS);
	assert_int_equal(am->len, sizeof(mechs));
	assert_memory_equal(am->val, mechs, sizeof(mechs));
	/* Canonical: serializing again gives the same bytes. */
	dbuf_t pub2;
	serialize(r, false, &pub2);
	assert_int_equal(pub2.len, pub.len);
	assert_memory_equal(pub2.p, pub.p, pub.len);
	/* Integers are big-endian u64 (the store moves between machines):
	 * the first attribute is CKA_CLASS = CKO_SECRET_KEY. */
	assert_memory_equal(pub.p, "P1KO\x01", 5);
	assert_memory_equal(pub.p + 9, "\0\0\0\0\0\0\0\0\x01\0\0\0\x08"
				       "\0\0\0\0\0\0\0\x04", 21);
	obj_drop_secrets(r);
	assert_null(obj_attr(r, CKA_VALUE));
	assert_false(r->sec_loaded);
	dbuf_free(&pub2);
	obj_free(r);

	/* Every proper prefix is refused, and so is one byte more. */
	for (size_t n = 0; n < pub.len; n++)
		assert_false(parses(pub.p, n, false));
	for (size_t n = 0; n < sec.len; n++)
		assert_false(parses(sec.p, n, true));
	uint8_t longer[4096];
	assert_true(pub.len < sizeof(longer));
	memcpy(longer, pub.p, pub.len);
	longer[pub.len] = 0;
	assert_false(parses(longer, pub.len + 1, false));
	/* Public and secret forms do not mix. */
	assert_false(parses(pub.p, pub.len, true));
	assert_false(parses(sec.p, sec.len, false));
	dbuf_free(&pub);
	dbuf_free(&sec);
	obj_free(o);
}

/* One-attribute record builder. */
static size_t rec1(uint8_t *b, uint64_t type, uint8_t kind, const void *v,
		   uint32_t vlen)
{
	size_t n = 0;
	memcpy(b, "P1KO\x01\0\0\0\x01", 9);
	n = 9;
	for (int i = 7; i >= 0; i--)
		b[n++] = (uint8_t)(type >> (8 * i));
	b[n++] = kind;
	for (int i = 3; i >= 0; i--)
		b[n++] = (uint8_t)(vlen >> (8 * i));
	memcpy(b + n, v, vlen);
	return n + vlen;
}

enum { KB = 0, KU = 1, KY = 2, KD = 3, KM = 4 }; /* object.c's akind */

static void test_record_garbled(void **state)
{
	uint8_t b[256];
	size_t n;
	static const uint8_t u64_2[8] = {0, 0, 0, 0, 0, 0, 0, 2};
	/* Baselines that parse. */
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	assert_true(parses(b, n, false));
	n = rec1(b, CKA_CLASS, KU, u64_2, 8);
	assert_true(parses(b, n, false));
	/* Magic, version. */
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	b[0] = 'X';
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	b[4] = 2;
	assert_false(parses(b, n, false));
	/* Count larger than what follows; count over the limit. */
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	b[8] = 2;
	assert_false(parses(b, n, false));
	memcpy(b, "P1KO\x01\0\0\x01\x01", 9); /* 257 */
	assert_false(parses(b, 9, false));
	memcpy(b, "P1KO\x01\0\0\0\0", 9);
	assert_true(parses(b, 9, false)); /* no attributes at all */
	/* Value length beyond the record; a huge length. */
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	b[21] = 4;
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	b[18] = 0xff;
	assert_false(parses(b, n, false));
	/* Unknown kind, unknown attribute, the same attribute twice. */
	n = rec1(b, CKA_LABEL, 5, "abc", 3);
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_MODULUS, KY, "abc", 3);
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_LABEL, KY, "abc", 3);
	memcpy(b + n, b + 9, n - 9);
	b[8] = 2;
	assert_false(parses(b, 2 * n - 9, false));
	/* CK_ULONG values are 8 bytes; lists a multiple of 8. */
	n = rec1(b, CKA_CLASS, KU, u64_2, 4);
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_ALLOWED_MECHANISMS, KM, "0123456789ab", 12);
	assert_false(parses(b, n, false));
}

static void test_record_shape_follows_table(void **state)
{
	/* Found by fuzz_record: the kind byte and the value are not checked
	 * against the attribute table, so a record the serializer would
	 * never write is accepted, and cannot be written back (CKA_CLASS as
	 * 32 raw bytes re-serializes as four u64s, which the parser then
	 * refuses). Each of these must be refused. */
	uint8_t b[256];
	size_t n;
	static const uint8_t v32[32] = {1, 2, 3};
	n = rec1(b, CKA_CLASS, KB, v32, 32);
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_CLASS, KY, v32, 3);
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_TOKEN, KY, v32, 5); /* a CK_BBOOL of 5 bytes */
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_TOKEN, KB, "\x07", 1); /* neither TRUE nor FALSE */
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_ALLOWED_MECHANISMS, KY, v32, 12);
	assert_false(parses(b, n, false));
	n = rec1(b, CKA_START_DATE, KD, v32, 5);
	assert_false(parses(b, n, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_key_defaults),
		cmocka_unit_test(test_build_generic_secret),
		cmocka_unit_test(test_build_generated_key),
		cmocka_unit_test(test_build_data_defaults),
		cmocka_unit_test(test_build_required),
		cmocka_unit_test(test_build_forbidden),
		cmocka_unit_test(test_build_read_only),
		cmocka_unit_test(test_build_bad_values),
		cmocka_unit_test(test_trusted_only_by_so),
		cmocka_unit_test(test_sensitive_only_false_to_true),
		cmocka_unit_test(test_extractable_only_true_to_false),
		cmocka_unit_test(test_wrap_with_trusted_only_true),
		cmocka_unit_test(test_modify_read_only),
		cmocka_unit_test(test_modify_atomic),
		cmocka_unit_test(test_modify_not_modifiable),
		cmocka_unit_test(test_get_every_entry),
		cmocka_unit_test(test_get_each_error),
		cmocka_unit_test(test_get_value_visibility),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_garbled),
		cmocka_unit_test(test_record_shape_follows_table),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
