/* SPDX-License-Identifier: MIT */
/*
 * test_truncation - a receive buffer shorter than the message gets what
 * fits, the call returns that length, and the message is consumed (the
 * next receive returns the next message); bytes past @cap are untouched.
 * In broadcast, each receiver truncates independently.
 */
#include "harness.h"

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7);
}

static void check_delivery(uint32_t delivery, const char *name)
{
	unsigned char msg[1000], buf[1024];
	uint64_t key = th_key();
	int ch, a, b;

	th_section("%s: truncating receives", name);
	ch = shmc_create(key, delivery, 16, sizeof(msg), 0600, 0);
	REQUIRE_GT(ch, 0);
	a = shmc_attach_key(key, SHMC_BOTH);
	REQUIRE_GT(a, 0);
	b = delivery == SHMC_BROADCAST ? shmc_attach_key(key, SHMC_RECV) : 0;

	static const uint32_t caps[] = { 1, 7, 8, 63, 64, 999 };
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		fill(msg, sizeof(msg), i);
		EXPECT_EQ(shmc_try_send(a, msg, sizeof(msg), 0), sizeof(msg));
	}
	EXPECT_EQ(shmc_try_send(a, "next", 4, 0), 4);
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		fill(msg, sizeof(msg), i);
		memset(buf, 0xEE, sizeof(buf));
		printf("  cap %4u -> ", caps[i]);
		{
			int r = shmc_try_recv(a, buf, caps[i]);

			printf("%d\n", r);
			EXPECT_EQ(r, caps[i]);
		}
		EXPECT_MEMEQ(buf, msg, caps[i]);
		/* Nothing written past the capacity. */
		EXPECT_EQ(buf[caps[i]], 0xEE);
		EXPECT_EQ(buf[sizeof(buf) - 1], 0xEE);
	}
	/* The truncated messages were consumed: the next one is "next". */
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(shmc_try_recv(a, buf, sizeof(buf)), 4);
	EXPECT_MEMEQ(buf, "next", 4);
	EXPECT_EQ(shmc_try_recv(a, buf, sizeof(buf)), -EAGAIN);

	if (b > 0) {
		/* The other broadcast receiver still gets every message whole. */
		for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
			fill(msg, sizeof(msg), i);
			EXPECT_EQ(shmc_try_recv(b, buf, sizeof(buf)), sizeof(msg));
			EXPECT_MEMEQ(buf, msg, sizeof(msg));
		}
		EXPECT_EQ(shmc_try_recv(b, buf, sizeof(buf)), 4);
		EXPECT_EQ(shmc_detach(b), 0);
	}

	th_section("%s: cap 0 consumes the message and returns 0", name);
	EXPECT_EQ(shmc_try_send(a, "abc", 3, 0), 3);
	EXPECT_EQ(shmc_try_send(a, "def", 3, 0), 3);
	buf[0] = 0xEE;
	EXPECT_EQ(shmc_try_recv(a, buf, 0), 0);
	EXPECT_EQ(buf[0], 0xEE);
	EXPECT_EQ(shmc_try_recv(a, buf, sizeof(buf)), 3);
	EXPECT_MEMEQ(buf, "def", 3);

	th_section("%s: blocking receive truncates the same way", name);
	fill(msg, sizeof(msg), 99);
	EXPECT_EQ(shmc_try_send(a, msg, sizeof(msg), 0), sizeof(msg));
	EXPECT_EQ(shmc_try_send(a, "z", 1, 0), 1);
	EXPECT_EQ(shmc_recv(a, buf, 10, 1000000000ll), 10);
	EXPECT_MEMEQ(buf, msg, 10);
	EXPECT_EQ(shmc_recv(a, buf, sizeof(buf), 1000000000ll), 1);
	EXPECT_EQ(buf[0], 'z');

	th_section("%s: a buffer larger than the message returns the message length", name);
	EXPECT_EQ(shmc_try_send(a, msg, 17, 0), 17);
	EXPECT_EQ(shmc_try_recv(a, buf, sizeof(buf)), 17);

	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_truncation", 0);
	check_delivery(SHMC_UNICAST, "unicast");
	check_delivery(SHMC_MULTICAST, "multicast");
	check_delivery(SHMC_BROADCAST, "broadcast");
	return th_finish();
}
