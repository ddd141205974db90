/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret memory: every key byte, PIN and token the module holds lives here.
 * Pages are locked (kept out of swap), excluded from core dumps, wiped in a
 * forked child by the kernel (MADV_WIPEONFORK) and cleansed on free.
 */
#ifndef P11KMS_SECMEM_H
#define P11KMS_SECMEM_H

#include <stddef.h>
#include <stdint.h>

void *sec_alloc(size_t n);          /* zero-filled; NULL on failure */
void sec_free(void *p);             /* cleanses then releases; NULL ok */
void *sec_dup(const void *p, size_t n);
size_t sec_size(const void *p);     /* usable size of an allocation */
/* Counters for tests: bytes in use, and whether locking worked. */
size_t sec_in_use(void);
/* fork: module/entry.c's one pthread_atfork handler calls these (secmem
 * registers none of its own: the order of the module's locks around fork
 * is written there). The lock is a leaf: prepare takes it after the
 * module's lock, which its holders need while they allocate. */
void sec_fork_prepare(void);
void sec_fork_parent(void);
void sec_fork_child(void);

#endif
