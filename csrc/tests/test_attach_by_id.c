/* SPDX-License-Identifier: MIT */
/*
 * test_attach_by_id - any process can attach by channel id: the subscriber
 * reaches the same channel as one attached by key; once the channel is
 * destroyed the id no longer attaches to it.
 */
#include "harness.h"

struct shared {
	int32_t id;
	uint64_t key;
	atomic_uint attached;
};

static int child(void *p)
{
	struct shared *s = p;
	uint64_t info[SHMC_INFO_COUNT];
	char buf[64] = { 0 };
	int sub = shmc_attach_id(s->id, SHMC_BOTH);

	REQUIRE_GT(sub, 0);
	EXPECT_EQ(shmc_info(sub, info), SHMC_INFO_COUNT);
	EXPECT_EQ_U64(info[SHMC_INFO_KEY], s->key);
	EXPECT_EQ(info[SHMC_INFO_CHANNEL_ID], s->id);
	atomic_store(&s->attached, 1);
	printf("  child: attached by id %d, waiting for the parent's message\n", (int)s->id);
	EXPECT_EQ(shmc_recv(sub, buf, sizeof(buf), 10 * 1000000000ll), 6);
	EXPECT_STREQ(buf, "parent");
	EXPECT_EQ(shmc_send(sub, "child", 6, 0, 10 * 1000000000ll), 6);
	EXPECT_EQ(shmc_detach(sub), 0);
	return 0;
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	uint64_t info[SHMC_INFO_COUNT];
	char buf[64] = { 0 };
	int ch, by_key, by_id, sender;
	pid_t pid;

	th_init("test_attach_by_id", 0);
	s->key = th_key();
	ch = shmc_create(s->key, SHMC_BROADCAST, 16, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	s->id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	printf("channel key 0x%016" PRIx64 " id %d\n", s->key, (int)s->id);
	EXPECT_GT(s->id, 0);

	th_section("attach by id in this process, for each access");
	by_id = shmc_attach_id(s->id, SHMC_RECV);
	EXPECT_GT(by_id, 0);
	sender = shmc_attach_id(s->id, SHMC_SEND);
	EXPECT_GT(sender, 0);
	by_key = shmc_attach_key(s->key, SHMC_RECV);
	EXPECT_GT(by_key, 0);
	EXPECT_EQ(shmc_info(by_id, info), SHMC_INFO_COUNT);
	EXPECT_EQ_U64(info[SHMC_INFO_KEY], s->key);
	EXPECT_EQ(info[SHMC_INFO_CHANNEL_ID], s->id);
	EXPECT_EQ(info[SHMC_INFO_ACCESS], SHMC_RECV);
	EXPECT_EQ(info[SHMC_INFO_IS_OWNER], 0);
	EXPECT_EQ(shmc_info(sender, info), SHMC_INFO_COUNT);
	EXPECT_EQ(info[SHMC_INFO_ACCESS], SHMC_SEND);

	th_section("a message sent via the id-attached sender reaches the key-attached receiver");
	EXPECT_EQ(shmc_try_send(sender, "hello", 5, 0), 5);
	EXPECT_EQ(shmc_try_recv(by_key, buf, sizeof(buf)), 5);
	EXPECT_MEMEQ(buf, "hello", 5);
	EXPECT_EQ(shmc_try_recv(by_id, buf, sizeof(buf)), 5);
	EXPECT_MEMEQ(buf, "hello", 5);

	th_section("another process attaches by id");
	pid = th_fork(child, s);
	EXPECT_EQ(th_await_u32(&s->attached, 1, 10000), 0);
	EXPECT_EQ(shmc_try_send(ch, "parent", 6, 0), 6);
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(shmc_recv(by_id, buf, sizeof(buf), 10 * 1000000000ll), 6);
	EXPECT_STREQ(buf, "parent");
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(shmc_recv(by_id, buf, sizeof(buf), 10 * 1000000000ll), 6);
	EXPECT_STREQ(buf, "child");
	EXPECT_CHILD_OK(pid, 20000);

	th_section("after destroy the id no longer attaches to this channel");
	EXPECT_EQ(shmc_destroy(ch), 0);
	{
		int r = shmc_attach_id(s->id, SHMC_RECV);

		if (r > 0) {
			/* Only acceptable if the id was reused by a new channel. */
			EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
			CHECK(info[SHMC_INFO_KEY] != s->key);
			printf("  id %d was reused by another channel meanwhile\n", (int)s->id);
			shmc_detach(r);
		} else {
			EXPECT_EQ(r, -ENOENT);
		}
	}
	EXPECT_EQ(shmc_detach(by_id), 0);
	EXPECT_EQ(shmc_detach(by_key), 0);
	EXPECT_EQ(shmc_detach(sender), 0);
	return th_finish();
}
