/* SPDX-License-Identifier: MIT */
/*
 * test_detach_destroy - closing handles: a second destroy or detach is
 * -ENOENT, destroy/detach on the wrong kind of handle is -EINVAL, every
 * operation on a stale handle is -ENOENT, destroy frees the key for reuse,
 * and subscribers attached before destroy keep working.
 */
#include "harness.h"

#include <limits.h>

static void expect_stale(int h, const char *what)
{
	uint64_t info[SHMC_INFO_COUNT];
	char buf[16];

	printf("  stale %s handle %d: every call -> -ENOENT\n", what, h);
	EXPECT_EQ(shmc_try_send(h, "x", 1, 0), -ENOENT);
	EXPECT_EQ(shmc_send(h, "x", 1, 0, 1000000), -ENOENT);
	EXPECT_EQ(shmc_send(h, "x", 1, 0, -1), -ENOENT);
	EXPECT_EQ(shmc_try_recv(h, buf, sizeof(buf)), -ENOENT);
	EXPECT_EQ(shmc_recv(h, buf, sizeof(buf), 1000000), -ENOENT);
	EXPECT_EQ(shmc_recv(h, buf, sizeof(buf), -1), -ENOENT);
	EXPECT_EQ(shmc_info(h, info), -ENOENT);
	EXPECT_EQ(shmc_pending(h), -ENOENT);
	EXPECT_EQ(shmc_park(h, SHMC_WAIT_RECV), -ENOENT);
	EXPECT_EQ(shmc_park(h, SHMC_WAIT_SEND), -ENOENT);
	EXPECT_EQ(shmc_detach(h), -ENOENT);
	EXPECT_EQ(shmc_destroy(h), -ENOENT);
}

int main(void)
{
	uint64_t info[SHMC_INFO_COUNT];
	uint64_t key = th_key();
	char buf[64] = { 0 };
	int ch, ch2, a, b, c, s2;
	int32_t id;

	th_init("test_detach_destroy", 0);

	th_section("handles that were never valid -> -ENOENT");
	expect_stale(0, "zero");
	expect_stale(-1, "negative");
	expect_stale(INT_MAX, "huge");
	expect_stale(INT_MIN, "most negative");

	ch = shmc_create(key, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	a = shmc_attach_key(key, SHMC_BOTH);
	b = shmc_attach_key(key, SHMC_RECV);
	c = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_GT(a, 0);
	REQUIRE_GT(b, 0);
	REQUIRE_GT(c, 0);

	th_section("wrong kind of handle -> -EINVAL, and the handle survives");
	EXPECT_EQ(shmc_destroy(a), -EINVAL);
	EXPECT_EQ(shmc_detach(ch), -EINVAL);
	EXPECT_EQ(shmc_info(a, info), SHMC_INFO_COUNT);
	EXPECT_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);

	th_section("the owner handle cannot receive");
	EXPECT_EQ(shmc_try_recv(ch, buf, sizeof(buf)), -EACCES);

	th_section("detach, then a second detach -> -ENOENT");
	EXPECT_EQ(shmc_detach(c), 0);
	EXPECT_EQ(shmc_detach(c), -ENOENT);
	expect_stale(c, "detached");

	th_section("destroy: removed from lookup, a second destroy -> -ENOENT");
	EXPECT_EQ(shmc_try_send(a, "before", 6, 0), 6);
	EXPECT_EQ(shmc_destroy(ch), 0);
	EXPECT_EQ(shmc_destroy(ch), -ENOENT);
	expect_stale(ch, "destroyed owner");
	EXPECT_EQ(shmc_attach_key(key, SHMC_RECV), -ENOENT);
	{
		int r = shmc_attach_id(id, SHMC_RECV);

		if (r > 0) {
			/* Only if another test's new channel got the same id. */
			EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
			CHECK(info[SHMC_INFO_KEY] != key);
			shmc_detach(r);
		} else {
			EXPECT_EQ(r, -ENOENT);
		}
	}

	th_section("subscribers attached before destroy keep working");
	EXPECT_EQ(shmc_try_recv(b, buf, sizeof(buf)), 6);
	EXPECT_MEMEQ(buf, "before", 6);
	for (int i = 0; i < 20; i++) {
		int n = snprintf(buf, sizeof(buf), "after-%d", i);

		EXPECT_EQ(shmc_try_send(a, buf, (uint32_t)n, 0), n);
		memset(buf, 0, sizeof(buf));
		EXPECT_EQ(shmc_try_recv(b, buf, sizeof(buf)), n);
		EXPECT_EQ(strncmp(buf, "after-", 6), 0);
	}
	EXPECT_EQ(shmc_info(a, info), SHMC_INFO_COUNT);
	EXPECT_EQ(info[SHMC_INFO_CHANNEL_ID], id);

	th_section("destroy frees the key: a new channel with it is independent");
	ch2 = shmc_create(key, SHMC_BROADCAST, 4, 32, 0600, 0);
	REQUIRE_GT(ch2, 0);
	EXPECT_EQ(shmc_info(ch2, info), SHMC_INFO_COUNT);
	CHECK((int32_t)info[SHMC_INFO_CHANNEL_ID] != id);
	s2 = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(s2, 0);
	EXPECT_EQ(shmc_info(s2, info), SHMC_INFO_COUNT);
	EXPECT_EQ(info[SHMC_INFO_DELIVERY], SHMC_BROADCAST);
	EXPECT_EQ(shmc_try_send(a, "old", 3, 0), 3);
	EXPECT_EQ(shmc_try_recv(s2, buf, sizeof(buf)), -EAGAIN);
	EXPECT_EQ(shmc_try_send(ch2, "new", 3, 0), 3);
	EXPECT_EQ(shmc_try_recv(b, buf, sizeof(buf)), 3);
	EXPECT_MEMEQ(buf, "old", 3);
	EXPECT_EQ(shmc_try_recv(b, buf, sizeof(buf)), -EAGAIN);
	EXPECT_EQ(shmc_try_recv(s2, buf, sizeof(buf)), 3);
	EXPECT_MEMEQ(buf, "new", 3);

	th_section("the last detaches after destroy");
	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_detach(b), 0);
	expect_stale(a, "detached after destroy");
	expect_stale(b, "detached after destroy");
	EXPECT_EQ(shmc_detach(s2), 0);
	EXPECT_EQ(shmc_destroy(ch2), 0);
	EXPECT_EQ(shmc_attach_key(key, SHMC_RECV), -ENOENT);
	return th_finish();
}
