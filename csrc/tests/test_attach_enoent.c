/* SPDX-License-Identifier: MIT */
/*
 * test_attach_enoent - attaching to a key or id with no live channel is
 * -ENOENT: never-used keys, destroyed channels, unused ids.
 */
#include "harness.h"

/* attach_id on an id that should be dead: -ENOENT, or (if the id was reused
 * by someone else's new channel meanwhile) a channel with another key. */
static void expect_id_gone(int32_t id, uint64_t old_key)
{
	uint64_t info[SHMC_INFO_COUNT];
	int r = shmc_attach_id(id, SHMC_RECV);

	if (r > 0) {
		EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
		CHECK(info[SHMC_INFO_KEY] != old_key);
		printf("  id %d reused by another live channel\n", (int)id);
		shmc_detach(r);
	} else {
		EXPECT_EQ(r, -ENOENT);
	}
}

int main(void)
{
	uint64_t info[SHMC_INFO_COUNT];
	uint64_t key;
	int32_t id;
	int ch;

	th_init("test_attach_enoent", 0);

	th_section("keys never created -> -ENOENT, for every access");
	for (int i = 0; i < 100; i++) {
		key = th_key();
		EXPECT_EQ(shmc_attach_key(key, SHMC_RECV), -ENOENT);
		EXPECT_EQ(shmc_attach_key(key, SHMC_SEND), -ENOENT);
		EXPECT_EQ(shmc_attach_key(key, SHMC_BOTH), -ENOENT);
	}

	th_section("a destroyed channel: by key and by id -> -ENOENT");
	key = th_key();
	ch = shmc_create(key, SHMC_UNICAST, 4, 16, 0600, 0);
	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	EXPECT_EQ(shmc_destroy(ch), 0);
	EXPECT_EQ(shmc_attach_key(key, SHMC_BOTH), -ENOENT);
	expect_id_gone(id, key);

	th_section("a destroyed channel that still has a subscriber -> -ENOENT");
	key = th_key();
	ch = shmc_create(key, SHMC_BROADCAST, 4, 16, 0600, 0);
	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	{
		int sub = shmc_attach_key(key, SHMC_BOTH);

		EXPECT_GT(sub, 0);
		EXPECT_EQ(shmc_destroy(ch), 0);
		EXPECT_EQ(shmc_attach_key(key, SHMC_BOTH), -ENOENT);
		expect_id_gone(id, key);
		EXPECT_EQ(shmc_detach(sub), 0);
		EXPECT_EQ(shmc_attach_key(key, SHMC_BOTH), -ENOENT);
	}

	th_section("large unused ids -> -ENOENT (or someone's live channel)");
	expect_id_gone(INT32_MAX, 0);
	expect_id_gone(INT32_MAX - 1, 0);
	expect_id_gone(0x40000000, 0);
	return th_finish();
}
