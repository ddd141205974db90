/* SPDX-License-Identifier: Apache-2.0 */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "secmem.h"

#define HMAP_EMPTY 0
#define HMAP_TOMB UINT64_MAX

void hmap_init(hmap_t *m)
{
	memset(m, 0, sizeof(*m));
}

void hmap_free(hmap_t *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t hmap_slot(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

static bool hmap_grow(hmap_t *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	if (m->live * 4 < m->cap)
		ncap = m->cap; /* mostly tombstones: rehash in place size */
	uint64_t *nk = calloc(ncap, sizeof(*nk));
	void **nv = calloc(ncap, sizeof(*nv));
	if (!nk || !nv) {
		free(nk);
		free(nv);
		return false;
	}
	for (size_t i = 0; i < m->cap; i++) {
		uint64_t k = m->keys[i];
		if (k == HMAP_EMPTY || k == HMAP_TOMB)
			continue;
		size_t j = hmap_slot(k, ncap);
		while (nk[j] != HMAP_EMPTY)
			j = (j + 1) & (ncap - 1);
		nk[j] = k;
		nv[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	m->used = m->live;
	return true;
}

bool hmap_put(hmap_t *m, uint64_t key, void *val)
{
	if (key == HMAP_EMPTY || key == HMAP_TOMB)
		return false;
	if ((m->used + 1) * 4 >= m->cap * 3 && !hmap_grow(m))
		return false;
	size_t j = hmap_slot(key, m->cap), tomb = SIZE_MAX;
	while (m->keys[j] != HMAP_EMPTY) {
		if (m->keys[j] == key) {
			m->vals[j] = val;
			return true;
		}
		if (m->keys[j] == HMAP_TOMB && tomb == SIZE_MAX)
			tomb = j;
		j = (j + 1) & (m->cap - 1);
	}
	if (tomb != SIZE_MAX)
		j = tomb;
	else
		m->used++;
	m->keys[j] = key;
	m->vals[j] = val;
	m->live++;
	return true;
}

static size_t hmap_find(const hmap_t *m, uint64_t key)
{
	if (!m->cap || key == HMAP_EMPTY || key == HMAP_TOMB)
		return SIZE_MAX;
	size_t j = hmap_slot(key, m->cap);
	while (m->keys[j] != HMAP_EMPTY) {
		if (m->keys[j] == key)
			return j;
		j = (j + 1) & (m->cap - 1);
	}
	return SIZE_MAX;
}

void *hmap_get(const hmap_t *m, uint64_t key)
{
	size_t j = hmap_find(m, key);
	return j == SIZE_MAX ? NULL : m->vals[j];
}

void *hmap_del(hmap_t *m, uint64_t key)
{
	size_t j = hmap_find(m, key);
	if (j == SIZE_MAX)
		return NULL;
	void *v = m->vals[j];
	m->keys[j] = HMAP_TOMB;
	m->vals[j] = NULL;
	m->live--;
	return v;
}

bool hmap_next(const hmap_t *m, size_t *iter, uint64_t *key, void **val)
{
	for (size_t i = *iter; i < m->cap; i++) {
		if (m->keys[i] != HMAP_EMPTY && m->keys[i] != HMAP_TOMB) {
			*key = m->keys[i];
			*val = m->vals[i];
			*iter = i + 1;
			return true;
		}
	}
	*iter = m->cap;
	return false;
}

void dbuf_init(dbuf_t *b, size_t max, bool secret)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	b->secret = secret;
}

void dbuf_free(dbuf_t *b)
{
	if (b->secret)
		sec_free(b->p);
	else
		free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

bool dbuf_add(dbuf_t *b, const void *data, size_t n)
{
	size_t need;
	if (b->failed || !size_add(b->len, n, &need) || need > b->max) {
		b->failed = true;
		return false;
	}
	if (need > b->cap) {
		size_t ncap = b->cap ? b->cap : 64;
		while (ncap < need)
			ncap = ncap > b->max / 2 ? b->max : ncap * 2;
		uint8_t *np = b->secret ? sec_alloc(ncap) : malloc(ncap);
		if (!np) {
			b->failed = true;
			return false;
		}
		if (b->len)
			memcpy(np, b->p, b->len);
		if (b->secret)
			sec_free(b->p);
		else
			free(b->p);
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len = need;
	return true;
}

bool dbuf_add_u8(dbuf_t *b, uint8_t v)
{
	return dbuf_add(b, &v, 1);
}

bool dbuf_add_u32(dbuf_t *b, uint32_t v)
{
	uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
	return dbuf_add(b, x, 4);
}

bool dbuf_add_u64(dbuf_t *b, uint64_t v)
{
	return dbuf_add_u32(b, (uint32_t)(v >> 32)) && dbuf_add_u32(b, (uint32_t)v);
}

const uint8_t *rd_take(rd_t *r, size_t n)
{
	if (r->failed || n > r->len - r->off) {
		r->failed = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t rd_u8(rd_t *r)
{
	const uint8_t *p = rd_take(r, 1);
	return p ? p[0] : 0;
}

uint32_t rd_u32(rd_t *r)
{
	const uint8_t *p = rd_take(r, 4);
	return p ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3])
		 : 0;
}

uint64_t rd_u64(rd_t *r)
{
	uint64_t hi = rd_u32(r);
	return hi << 32 | rd_u32(r);
}

void pad_copy(CK_UTF8CHAR *dst, size_t dstlen, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	memset(dst, ' ', dstlen);
	if (n)
		memcpy(dst, src, n < dstlen ? n : dstlen);
}
