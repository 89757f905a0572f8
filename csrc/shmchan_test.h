/* SPDX-License-Identifier: MIT */
/*
 * shmchan_test.h - hooks for the C tests only; not part of the API in
 * shmchan.h. They are exported by libshmchan.so so that the test programs
 * can reach them, and may change or go away in any release.
 */
#ifndef SHMCHAN_TEST_H
#define SHMCHAN_TEST_H

#include "shmchan.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * shmc__test_start_position - channels created by this process afterwards
 * start their 64-bit positions at @pos instead of 0, so that tests can cross
 * the wrap of the counters. Returns 0.
 */
SHMC_API int shmc__test_start_position(uint64_t pos);

/*
 * shmc__test_wait_stats - what the blocking calls (shmc_send for
 * SHMC_WAIT_SEND, shmc_recv for SHMC_WAIT_RECV) of @handle did when they had
 * to wait: @out[0] waits (calls that found nothing at first), [1] of those
 * that spun, [2] spins that ended with the condition met, [3] futex sleeps,
 * [4] ns (wall clock) spent in spins that did not, [5] the longest of those.
 * Returns 6, or -ENOENT, -EINVAL (@what), -EFAULT.
 */
SHMC_API int shmc__test_wait_stats(int handle, uint32_t what, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* SHMCHAN_TEST_H */
