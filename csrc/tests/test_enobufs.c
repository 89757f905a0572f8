/* SPDX-License-Identifier: MIT */
/*
 * test_enobufs - a full ring refuses try-sends with -ENOBUFS (for every
 * ring size, delivery and handle); each receive frees exactly one slot;
 * a failed send queues nothing; blocking sends on a full ring wait.
 */
#include "harness.h"

static void check(uint32_t delivery, uint32_t ring)
{
	uint64_t key = th_key();
	int ch, tx, rx;
	uint32_t v;

	th_section("delivery %u, ring %u", delivery, ring);
	ch = shmc_create(key, delivery, ring, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);

	for (v = 0; v < ring; v++)
		EXPECT_EQ(shmc_try_send(v % 2 ? tx : ch, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_send(tx, &v, sizeof(v), 0, 0), -ENOBUFS);
	EXPECT_EQ(shmc_send(tx, &v, sizeof(v), 0, 1000000), -ETIMEDOUT);

	/* Three rounds: one receive frees one slot, exactly. */
	for (uint32_t round = 0; round < 3; round++) {
		uint32_t got = UINT32_MAX;

		EXPECT_EQ(shmc_try_recv(rx, &got, sizeof(got)), sizeof(got));
		EXPECT_EQ(got, round);
		v = ring + round;
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	}
	/* Everything queued is intact and in order; the failed sends added nothing. */
	for (v = 3; v < ring + 3; v++) {
		uint32_t got = UINT32_MAX;

		EXPECT_EQ(shmc_try_recv(rx, &got, sizeof(got)), sizeof(got));
		EXPECT_EQ(got, v);
	}
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);
	/* And the ring holds `ring` again. */
	for (v = 0; v < ring; v++)
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);

	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	static const uint32_t rings[] = { 1, 2, 4, 64, 1024 };
	static const uint32_t modes[] = { SHMC_UNICAST, SHMC_MULTICAST, SHMC_BROADCAST };

	th_init("test_enobufs", 0);
	for (int m = 0; m < 3; m++)
		for (int r = 0; r < 5; r++)
			check(modes[m], rings[r]);
	return th_finish();
}
