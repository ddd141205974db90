/* SPDX-License-Identifier: Apache-2.0 */
/* The wall clock and its test seam (clock.h). */
#include <stddef.h>
#include <time.h>

#include "clock.h"

/* Written by a test before its threads start, read by many: relaxed
 * atomics keep the reads race-free for ThreadSanitizer. */
static uint64_t (*fake_now)(void *arg);
static void *fake_arg;

uint64_t clock_now_s(void)
{
	uint64_t (*now)(void *) = __atomic_load_n(&fake_now, __ATOMIC_ACQUIRE);
	if (now)
		return now(__atomic_load_n(&fake_arg, __ATOMIC_RELAXED));
	return (uint64_t)time(NULL);
}

void clock_set_fake(uint64_t (*now)(void *arg), void *arg)
{
	__atomic_store_n(&fake_arg, arg, __ATOMIC_RELAXED);
	__atomic_store_n(&fake_now, now, __ATOMIC_RELEASE);
}
