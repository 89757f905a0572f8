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

#ifdef __cplusplus
}
#endif
#endif /* SHMCHAN_TEST_H */
