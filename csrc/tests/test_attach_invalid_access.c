/* SPDX-License-Identifier: MIT */
/*
 * test_attach_invalid_access - bad access values, key 0 and ids <= 0 are
 * -EINVAL; rejected attaches use up no member slot.
 */
#include "harness.h"

static const uint32_t bad_access[] = {
	0, SHMC_BOTH + 1, SHMC_SEND | 4, SHMC_BOTH | 4, 8, 0x100, 0x80000000u, UINT32_MAX,
};

int main(void)
{
	uint64_t info[SHMC_INFO_COUNT];
	uint64_t key = th_key();
	int32_t id;
	int ch, sub;

	th_init("test_attach_invalid_access", 0);
	ch = shmc_create(key, SHMC_UNICAST, 4, 16, 0666, 0);
	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	id = (int32_t)info[SHMC_INFO_CHANNEL_ID];

	th_section("bad access on a live channel -> -EINVAL (by key and by id)");
	for (size_t i = 0; i < sizeof(bad_access) / sizeof(bad_access[0]); i++) {
		printf("  access 0x%x\n", bad_access[i]);
		EXPECT_EQ(shmc_attach_key(key, bad_access[i]), -EINVAL);
		EXPECT_EQ(shmc_attach_id(id, bad_access[i]), -EINVAL);
	}

	th_section("key 0 and ids <= 0 -> -EINVAL");
	EXPECT_EQ(shmc_attach_key(0, SHMC_RECV), -EINVAL);
	EXPECT_EQ(shmc_attach_key(0, SHMC_BOTH), -EINVAL);
	EXPECT_EQ(shmc_attach_id(0, SHMC_RECV), -EINVAL);
	EXPECT_EQ(shmc_attach_id(-1, SHMC_RECV), -EINVAL);
	EXPECT_EQ(shmc_attach_id(INT32_MIN, SHMC_BOTH), -EINVAL);

	th_section("many rejected attaches use no member slot (> SHMC_MAX_MEMBERS)");
	for (unsigned i = 0; i < 2 * SHMC_MAX_MEMBERS; i++)
		EXPECT_EQ(shmc_attach_key(key, 0), -EINVAL);
	sub = shmc_attach_key(key, SHMC_BOTH);
	EXPECT_GT(sub, 0);

	th_section("valid accesses are recorded");
	{
		static const uint32_t ok[] = { SHMC_SEND, SHMC_RECV, SHMC_BOTH };

		for (size_t i = 0; i < 3; i++) {
			int s = shmc_attach_key(key, ok[i]);

			EXPECT_GT(s, 0);
			if (s <= 0)
				continue;
			EXPECT_EQ(shmc_info(s, info), SHMC_INFO_COUNT);
			EXPECT_EQ(info[SHMC_INFO_ACCESS], ok[i]);
			EXPECT_EQ(shmc_detach(s), 0);
		}
	}
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
