/* SPDX-License-Identifier: MIT */
/*
 * test_stress_multicast - 3 producer processes x 2 consumer processes x 20000
 * messages of varying length (20..512 bytes) on a multicast channel with a
 * ring of 64: every message received exactly once by one of the competing consumers;
 * no torn message (header, length and checksum of the payload verified), no
 * loss, no duplicate, per-producer order. One producer polls with
 * shmc_try_send, the others block in shmc_send; consumers mix shmc_recv and
 * shmc_try_recv. See th_stress_run() in harness_stress.c.
 */
#include "harness.h"

int main(void)
{
	th_init("test_stress_multicast", 0);
	th_stress_run(SHMC_MULTICAST, 3, 2, 20000, 64, 512);
	return th_finish();
}
