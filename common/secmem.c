/* SPDX-License-Identifier: Apache-2.0 */
#include "secmem.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

/*
 * A small slab allocator over mmap'd regions. Secrets are small (keys,
 * PINs, tokens), so size classes from 32 bytes to 4 KiB are carved from
 * 64 KiB chunks; anything larger gets its own mapping. Each block carries
 * a 16-byte header recording its class so sec_free needs no size.
 */
#define CHUNK (64 * 1024)
#define HDR 16
#define NCLASS 8 /* 32 .. 4096 */

typedef struct blk {
	struct blk *next;
} blk_t;

static pthread_mutex_t sec_lock = PTHREAD_MUTEX_INITIALIZER;
static blk_t *freelist[NCLASS];
static size_t in_use;

static void *map_region(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Best effort: an unprivileged process may hit RLIMIT_MEMLOCK; the
	 * dump and fork protections still apply. */
	(void)mlock(p, len);
#ifdef MADV_DONTDUMP
	(void)madvise(p, len, MADV_DONTDUMP);
#endif
#ifdef MADV_WIPEONFORK
	(void)madvise(p, len, MADV_WIPEONFORK);
#endif
	return p;
}

/* A thread may hold sec_lock while another forks: it is taken around fork
 * (secmem.h: by the module's one handler, after the module's lock, never
 * before it) so the child never inherits it locked. */
void sec_fork_prepare(void)
{
	pthread_mutex_lock(&sec_lock);
}

void sec_fork_parent(void)
{
	pthread_mutex_unlock(&sec_lock);
}

void sec_fork_child(void)
{
	/* MADV_WIPEONFORK zeroed every chunk, free blocks included: start the
	 * child with empty free lists rather than follow wiped links. */
	memset(freelist, 0, sizeof(freelist));
	in_use = 0;
	pthread_mutex_unlock(&sec_lock);
}

static int class_of(size_t total)
{
	size_t sz = 32;
	for (int c = 0; c < NCLASS; c++, sz <<= 1)
		if (total <= sz)
			return c;
	return -1;
}

static bool refill(int c)
{
	size_t sz = (size_t)32 << c;
	uint8_t *p = map_region(CHUNK);
	if (!p)
		return false;
	for (size_t off = 0; off + sz <= CHUNK; off += sz) {
		blk_t *b = (blk_t *)(p + off);
		b->next = freelist[c];
		freelist[c] = b;
	}
	return true;
}

void *sec_alloc(size_t n)
{
	size_t total;
	if (__builtin_add_overflow(n, (size_t)HDR, &total))
		return NULL;
	int c = class_of(total);
	uint8_t *p;
	if (c < 0) {
		size_t pg = 4096, len = (total + pg - 1) / pg * pg;
		p = map_region(len);
		if (!p)
			return NULL;
		((size_t *)p)[0] = (size_t)-1;
		((size_t *)p)[1] = len;
	} else {
		pthread_mutex_lock(&sec_lock);
		if (!freelist[c] && !refill(c)) {
			pthread_mutex_unlock(&sec_lock);
			return NULL;
		}
		p = (uint8_t *)freelist[c];
		freelist[c] = freelist[c]->next;
		pthread_mutex_unlock(&sec_lock);
		memset(p, 0, (size_t)32 << c);
		((size_t *)p)[0] = (size_t)c;
		((size_t *)p)[1] = n;
	}
	__atomic_add_fetch(&in_use, n, __ATOMIC_RELAXED);
	if (c < 0)
		((size_t *)p)[1] = n | ((size_t)1 << 62); /* big: len via mapping */
	return p + HDR;
}

size_t sec_size(const void *ptr)
{
	if (!ptr)
		return 0;
	const size_t *h = (const size_t *)((const uint8_t *)ptr - HDR);
	if (h[0] == (size_t)-1)
		return h[1] & ~((size_t)1 << 62);
	return h[1];
}

void sec_free(void *ptr)
{
	if (!ptr)
		return;
	uint8_t *p = (uint8_t *)ptr - HDR;
	size_t *h = (size_t *)p;
	size_t n = sec_size(ptr);
	__atomic_sub_fetch(&in_use, n, __ATOMIC_RELAXED);
	if (h[0] == (size_t)-1) {
		size_t pg = 4096, len = (n + HDR + pg - 1) / pg * pg;
		OPENSSL_cleanse(p, len);
		munlock(p, len);
		munmap(p, len);
		return;
	}
	int c = (int)h[0];
	OPENSSL_cleanse(p, (size_t)32 << c);
	pthread_mutex_lock(&sec_lock);
	((blk_t *)p)->next = freelist[c];
	freelist[c] = (blk_t *)p;
	pthread_mutex_unlock(&sec_lock);
}

void *sec_dup(const void *src, size_t n)
{
	void *p = sec_alloc(n);
	if (p && n)
		memcpy(p, src, n);
	return p;
}

size_t sec_in_use(void)
{
	return __atomic_load_n(&in_use, __ATOMIC_RELAXED);
}
