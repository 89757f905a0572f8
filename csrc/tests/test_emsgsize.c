/* SPDX-License-Identifier: MIT */
/*
 * test_emsgsize - a message longer than the channel's maximum is -EMSGSIZE
 * from every send variant and handle (blocking sends do not wait), nothing
 * is queued, and a message of exactly the maximum passes whole.
 */
#include "harness.h"

static void check_max(uint32_t delivery, uint32_t max)
{
	unsigned char *msg = malloc((size_t)max + 2), *buf = malloc((size_t)max + 2);
	uint64_t key = th_key();
	int ch, tx, rx;

	REQUIRE(msg && buf);
	th_section("max %u (delivery %u)", max, delivery);
	for (uint32_t i = 0; i < max + 2; i++)
		msg[i] = (unsigned char)(i * 13 + 5);
	ch = shmc_create(key, delivery, 2, max, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);

	EXPECT_EQ(shmc_try_send(tx, msg, max + 1, 0), -EMSGSIZE);
	EXPECT_EQ(shmc_try_send(ch, msg, max + 1, 0), -EMSGSIZE);
	EXPECT_EQ(shmc_send(tx, msg, max + 1, 0, -1), -EMSGSIZE);
	EXPECT_EQ(shmc_send(tx, msg, max + 1, 0, 1000000), -EMSGSIZE);
	/* Huge lengths are rejected before any copy (the buffer is small). */
	EXPECT_EQ(shmc_try_send(tx, msg, UINT32_MAX, 0), -EMSGSIZE);
	EXPECT_EQ(shmc_try_send(tx, msg, 0x80000000u, 0), -EMSGSIZE);
	EXPECT_EQ(shmc_send(tx, msg, UINT32_MAX, 0, -1), -EMSGSIZE);
	EXPECT_EQ(shmc_pending(rx), 0);
	EXPECT_EQ(shmc_try_recv(rx, buf, max + 2), -EAGAIN);

	/* Exactly the maximum: accepted and received whole. */
	EXPECT_EQ(shmc_try_send(tx, msg, max, 0), max);
	memset(buf, 0, (size_t)max + 2);
	EXPECT_EQ(shmc_try_recv(rx, buf, max + 2), max);
	EXPECT_MEMEQ(buf, msg, max);

	/* A full ring: an oversized blocking send still fails at once. */
	EXPECT_EQ(shmc_try_send(tx, msg, 1, 0), 1);
	EXPECT_EQ(shmc_try_send(tx, msg, 1, 0), 1);
	EXPECT_EQ(shmc_try_send(tx, msg, 1, 0), -ENOBUFS);
	EXPECT_EQ(shmc_send(tx, msg, max + 1, 0, -1), -EMSGSIZE);

	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	free(msg);
	free(buf);
}

int main(void)
{
	th_init("test_emsgsize", 0);
	check_max(SHMC_UNICAST, 1);
	check_max(SHMC_UNICAST, 64);
	check_max(SHMC_MULTICAST, 100);
	check_max(SHMC_BROADCAST, 4096);
	check_max(SHMC_UNICAST, SHMC_MAX_MESSAGE_SIZE);
	return th_finish();
}
