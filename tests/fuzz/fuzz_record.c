/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object record codec (slots/object.c) on arbitrary bytes, in its
 * public and its secret form. Whatever parses must serialize again, and
 * the serialized form must parse back to the same attributes and be a
 * fixed point (serialize(parse(y)) == y): a record the module accepted
 * from its store must survive being written back unchanged.
 */
#include <stdint.h>

#include "fuzz_common.h"
#include "common/secmem.h"
#include "slots/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REC_CAP (256 * 1024 * 1024)

static void same_attrs(const object_t *a, const object_t *b)
{
	FUZZ_CHECK(a->nattrs == b->nattrs);
	for (size_t i = 0; i < a->nattrs; i++) {
		FUZZ_CHECK(a->attrs[i].type == b->attrs[i].type);
		FUZZ_CHECK(a->attrs[i].len == b->attrs[i].len);
		FUZZ_CHECK(!a->attrs[i].len ||
			   memcmp(a->attrs[i].val, b->attrs[i].val, a->attrs[i].len) == 0);
	}
}

static void one_form(const uint8_t *data, size_t size, bool secret)
{
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return;
	if (!obj_deserialize(o, data, size, secret)) {
		obj_free(o);
		return;
	}
	/* Attributes are kept sorted by type, each once. */
	for (size_t i = 1; i < o->nattrs; i++)
		FUZZ_CHECK(o->attrs[i - 1].type < o->attrs[i].type);
	for (size_t i = 0; i < o->nattrs; i++)
		FUZZ_CHECK(obj_attr_sealed(o, o->attrs[i].type) == secret);

	dbuf_t y;
	dbuf_init(&y, REC_CAP, secret);
	FUZZ_CHECK(obj_serialize(o, secret, &y));
	/* What was written reads back as the same attributes. */
	object_t *o2 = calloc(1, sizeof(*o2));
	FUZZ_CHECK(o2 != NULL);
	FUZZ_CHECK(obj_deserialize(o2, y.p, y.len, secret));
	same_attrs(o, o2);

	/* And the written form is canonical: a fixed point. */
	dbuf_t z;
	dbuf_init(&z, REC_CAP, secret);
	FUZZ_CHECK(obj_serialize(o2, secret, &z));
	FUZZ_CHECK(z.len == y.len && memcmp(z.p, y.p, y.len) == 0);

	dbuf_free(&z);
	dbuf_free(&y);
	obj_free(o2);
	obj_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		fuzz_quiet_log();
		ready = 1;
	}
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	size_t before = sec_in_use();
	one_form(copy, size, false);
	one_form(copy, size, true);
	/* Secret attributes live in secure memory and are all given back. */
	FUZZ_CHECK(sec_in_use() == before);
	free(copy);
	return 0;
}
