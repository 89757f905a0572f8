/* SPDX-License-Identifier: MIT */
/*
 * test_info - shmc_info reports every field for owner and subscriber
 * handles, the same channel fields from any process, and -ENOENT for a
 * stale handle.
 */
#include "harness.h"

struct shared {
	uint64_t key;
	int32_t id;
};

static void expect_channel(const uint64_t *info, uint64_t key, int32_t id, uint32_t delivery,
			   uint32_t ring, uint32_t max, uint32_t mode, uint32_t flags)
{
	EXPECT_EQ_U64(info[SHMC_INFO_KEY], key);
	EXPECT_EQ(info[SHMC_INFO_CHANNEL_ID], id);
	EXPECT_EQ(info[SHMC_INFO_DELIVERY], delivery);
	EXPECT_EQ(info[SHMC_INFO_RING_ENTRIES], ring);
	EXPECT_EQ(info[SHMC_INFO_MAX_MESSAGE_SIZE], max);
	EXPECT_EQ(info[SHMC_INFO_MODE], mode);
	EXPECT_EQ(info[SHMC_INFO_FLAGS], flags);
}

static int child(void *p)
{
	struct shared *s = p;
	uint64_t info[SHMC_INFO_COUNT];
	int h = shmc_attach_id(s->id, SHMC_SEND);

	REQUIRE_GT(h, 0);
	EXPECT_EQ(shmc_info(h, info), SHMC_INFO_COUNT);
	expect_channel(info, s->key, s->id, SHMC_MULTICAST, 128, 777, 0644, 0);
	EXPECT_EQ(info[SHMC_INFO_ACCESS], SHMC_SEND);
	EXPECT_EQ(info[SHMC_INFO_IS_OWNER], 0);
	EXPECT_GT(info[SHMC_INFO_MEMBER_ID], 0);
	EXPECT_EQ(shmc_detach(h), 0);
	return 0;
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	uint64_t info[SHMC_INFO_COUNT];
	int ch, sub;

	th_init("test_info", 0);
	s->key = th_key();

	th_section("owner handle");
	ch = shmc_create(s->key, SHMC_MULTICAST, 128, 777, 0644, 0);
	REQUIRE_GT(ch, 0);
	memset(info, 0xff, sizeof(info));
	EXPECT_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	s->id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	EXPECT_GT(s->id, 0);
	EXPECT_LE(info[SHMC_INFO_CHANNEL_ID], INT32_MAX);
	expect_channel(info, s->key, s->id, SHMC_MULTICAST, 128, 777, 0644, 0);
	EXPECT_EQ(info[SHMC_INFO_MEMBER_ID], 0);
	EXPECT_EQ(info[SHMC_INFO_IS_OWNER], 1);
	EXPECT_EQ(info[SHMC_INFO_DROPPED], 0);
	EXPECT_EQ(info[SHMC_INFO_SKIPPED], 0);

	th_section("subscriber handles, each access");
	static const uint32_t accesses[] = { SHMC_SEND, SHMC_RECV, SHMC_BOTH };

	for (int i = 0; i < 3; i++) {
		uint32_t access = accesses[i];

		sub = shmc_attach_key(s->key, access);
		REQUIRE_GT(sub, 0);
		memset(info, 0xff, sizeof(info));
		EXPECT_EQ(shmc_info(sub, info), SHMC_INFO_COUNT);
		expect_channel(info, s->key, s->id, SHMC_MULTICAST, 128, 777, 0644, 0);
		EXPECT_EQ(info[SHMC_INFO_ACCESS], access);
		EXPECT_EQ(info[SHMC_INFO_IS_OWNER], 0);
		EXPECT_GT(info[SHMC_INFO_MEMBER_ID], 0);
		EXPECT_EQ(info[SHMC_INFO_DROPPED], 0);
		EXPECT_EQ(info[SHMC_INFO_SKIPPED], 0);
		EXPECT_EQ(shmc_detach(sub), 0);
		EXPECT_EQ(shmc_info(sub, info), -ENOENT);
	}

	th_section("from another process, attached by id");
	EXPECT_CHILD_OK(th_fork(child, s), 20000);

	th_section("a private channel reports its flag");
	{
		uint64_t k = th_key();
		int p = shmc_create(k, SHMC_BROADCAST, 2, 1, 0600, SHMC_F_PRIVATE);

		REQUIRE_GT(p, 0);
		EXPECT_EQ(shmc_info(p, info), SHMC_INFO_COUNT);
		EXPECT_EQ(info[SHMC_INFO_FLAGS], SHMC_F_PRIVATE);
		EXPECT_EQ(info[SHMC_INFO_DELIVERY], SHMC_BROADCAST);
		EXPECT_EQ(shmc_destroy(p), 0);
		EXPECT_EQ(shmc_info(p, info), -ENOENT);
	}
	EXPECT_EQ(shmc_destroy(ch), 0);
	EXPECT_EQ(shmc_info(ch, info), -ENOENT);
	return th_finish();
}
