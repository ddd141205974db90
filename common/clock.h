/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wall clock, with one test seam (STYLE habit 9): code that compares
 * expiry times, stamps JWTs or ages cache entries reads clock_now_s(), and
 * a unit test replaces it with clock_set_fake() so refresh-ahead and
 * expiry are tested without sleeping. Retry backoff and timeouts use the
 * monotonic clock, which the HTTP client's own sleep seam covers.
 */
#ifndef P11KMS_CLOCK_H
#define P11KMS_CLOCK_H

#include <stdint.h>

/* Seconds since the epoch (the fake clock's answer while one is set). */
uint64_t clock_now_s(void);

/* Tests only: answer clock_now_s() with now(arg) until called again with
 * NULL, which restores the real clock. Set it before the threads that
 * read the clock start, and clear it when they have stopped. */
void clock_set_fake(uint64_t (*now)(void *arg), void *arg);

#endif
