/* SPDX-License-Identifier: MIT */
/*
 * test_create_invalid - every parameter of shmc_create outside its valid
 * range is -EINVAL, the boundary values inside it are accepted, and a
 * rejected create leaves nothing behind (the key stays free).
 */
#include "harness.h"

struct bad {
	const char *what;
	int zero_key;
	uint32_t delivery, ring, max, mode, flags;
};

static const struct bad bad_cases[] = {
	{ "key 0", 1, SHMC_UNICAST, 16, 64, 0600, 0 },
	{ "ring_entries 0", 0, SHMC_UNICAST, 0, 64, 0600, 0 },
	{ "ring_entries 3", 0, SHMC_UNICAST, 3, 64, 0600, 0 },
	{ "ring_entries 6", 0, SHMC_UNICAST, 6, 64, 0600, 0 },
	{ "ring_entries 1000", 0, SHMC_UNICAST, 1000, 64, 0600, 0 },
	{ "ring_entries 65536", 0, SHMC_UNICAST, SHMC_MAX_RING_ENTRIES * 2, 64, 0600, 0 },
	{ "ring_entries 2^31", 0, SHMC_UNICAST, 0x80000000u, 64, 0600, 0 },
	{ "ring_entries UINT32_MAX", 0, SHMC_UNICAST, UINT32_MAX, 64, 0600, 0 },
	{ "max_msg_size 0", 0, SHMC_UNICAST, 16, 0, 0600, 0 },
	{ "max_msg_size 1 MiB + 1", 0, SHMC_UNICAST, 16, SHMC_MAX_MESSAGE_SIZE + 1, 0600, 0 },
	{ "max_msg_size UINT32_MAX", 0, SHMC_UNICAST, 16, UINT32_MAX, 0600, 0 },
	{ "region 32768 x 1 MiB", 0, SHMC_UNICAST, SHMC_MAX_RING_ENTRIES,
	  SHMC_MAX_MESSAGE_SIZE, 0600, 0 },
	{ "region 2048 x 1 MiB (2^31 > 2^31-1)", 0, SHMC_UNICAST, 2048,
	  SHMC_MAX_MESSAGE_SIZE, 0600, 0 },
	{ "region 32768 x 65536 (2^31)", 0, SHMC_BROADCAST, SHMC_MAX_RING_ENTRIES, 65536, 0600, 0 },
	{ "mode 0700", 0, SHMC_UNICAST, 16, 64, 0700, 0 },
	{ "mode 0777", 0, SHMC_UNICAST, 16, 64, 0777, 0 },
	{ "mode 0001", 0, SHMC_UNICAST, 16, 64, 0001, 0 },
	{ "mode 0010", 0, SHMC_UNICAST, 16, 64, 0010, 0 },
	{ "mode 01600 (sticky)", 0, SHMC_UNICAST, 16, 64, 01600, 0 },
	{ "mode 04600 (setuid)", 0, SHMC_UNICAST, 16, 64, 04600, 0 },
	{ "mode 0x10000", 0, SHMC_UNICAST, 16, 64, 0x10000, 0 },
	{ "delivery 3", 0, SHMC_MULTICAST + 1, 16, 64, 0600, 0 },
	{ "delivery BROADCAST|MULTICAST", 0, SHMC_BROADCAST | SHMC_MULTICAST, 16, 64, 0600, 0 },
	{ "delivery UINT32_MAX", 0, UINT32_MAX, 16, 64, 0600, 0 },
	{ "flags 2", 0, SHMC_UNICAST, 16, 64, 0600, SHMC_F_PRIVATE << 1 },
	{ "flags 0xFF00", 0, SHMC_UNICAST, 16, 64, 0600, 0xFF00 },
	{ "flags 2^31", 0, SHMC_UNICAST, 16, 64, 0600, 0x80000000u },
	{ "flags PRIVATE|0x100", 0, SHMC_UNICAST, 16, 64, 0600, SHMC_F_PRIVATE | 0x100 },
};

struct good {
	const char *what;
	uint32_t delivery, ring, max, mode, flags;
};

static const struct good good_cases[] = {
	{ "ring_entries 1", SHMC_UNICAST, 1, 64, 0600, 0 },
	{ "ring_entries 2", SHMC_UNICAST, 2, 64, 0600, 0 },
	{ "ring_entries 32768", SHMC_UNICAST, SHMC_MAX_RING_ENTRIES, 1, 0600, 0 },
	{ "max_msg_size 1", SHMC_UNICAST, 16, 1, 0600, 0 },
	{ "max_msg_size 1 MiB", SHMC_UNICAST, 1, SHMC_MAX_MESSAGE_SIZE, 0600, 0 },
	{ "region 1024 x 1 MiB (1 GiB)", SHMC_BROADCAST, 1024, SHMC_MAX_MESSAGE_SIZE, 0600, 0 },
	{ "mode 0", SHMC_UNICAST, 16, 64, 0, 0 },
	{ "mode 0666", SHMC_UNICAST, 16, 64, 0666, 0 },
	{ "mode 0444", SHMC_UNICAST, 16, 64, 0444, 0 },
	{ "mode 0222", SHMC_UNICAST, 16, 64, 0222, 0 },
	{ "broadcast", SHMC_BROADCAST, 16, 64, 0600, 0 },
	{ "multicast", SHMC_MULTICAST, 16, 64, 0600, 0 },
	{ "private", SHMC_UNICAST, 16, 64, 0600, SHMC_F_PRIVATE },
	{ "private 0666", SHMC_MULTICAST, 16, 64, 0666, SHMC_F_PRIVATE },
};

int main(void)
{
	uint64_t info[SHMC_INFO_COUNT];
	size_t i;

	th_init("test_create_invalid", 0);

	th_section("out-of-range parameters are -EINVAL and leave the key free");
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad *b = &bad_cases[i];
		uint64_t key = b->zero_key ? 0 : th_key();
		int r = shmc_create(key, b->delivery, b->ring, b->max, b->mode, b->flags);

		printf("  %-40s -> %d %s\n", b->what, r, th_errname(r));
		EXPECT_EQ(r, -EINVAL);
		if (r > 0)
			shmc_destroy(r);
		if (!b->zero_key) {
			/* Nothing was registered under the key. */
			EXPECT_EQ(shmc_attach_key(key, SHMC_BOTH), -ENOENT);
			r = shmc_create(key, SHMC_UNICAST, 16, 64, 0600, 0);
			EXPECT_GT(r, 0);
			if (r > 0)
				EXPECT_EQ(shmc_destroy(r), 0);
		}
	}

	th_section("largest key 2^64-1 is valid");
	{
		int r = shmc_create(UINT64_MAX, SHMC_UNICAST, 16, 64, 0600, 0);

		/* Another test run may hold it right now: then it is EEXIST. */
		if (r == -EEXIST) {
			printf("  key 2^64-1 in use elsewhere; skipped\n");
		} else {
			EXPECT_GT(r, 0);
			if (r > 0) {
				EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
				EXPECT_EQ_U64(info[SHMC_INFO_KEY], UINT64_MAX);
				EXPECT_EQ(shmc_destroy(r), 0);
			}
		}
	}

	th_section("boundary values inside the valid range are accepted");
	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good *g = &good_cases[i];
		uint64_t key = th_key();
		int r = shmc_create(key, g->delivery, g->ring, g->max, g->mode, g->flags);

		printf("  %-40s -> %d %s\n", g->what, r, th_errname(r));
		EXPECT_GT(r, 0);
		if (r <= 0)
			continue;
		EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
		EXPECT_EQ_U64(info[SHMC_INFO_KEY], key);
		EXPECT_EQ(info[SHMC_INFO_DELIVERY], g->delivery);
		EXPECT_EQ(info[SHMC_INFO_RING_ENTRIES], g->ring);
		EXPECT_EQ(info[SHMC_INFO_MAX_MESSAGE_SIZE], g->max);
		EXPECT_EQ(info[SHMC_INFO_MODE], g->mode);
		EXPECT_EQ(info[SHMC_INFO_FLAGS], g->flags);
		EXPECT_EQ(info[SHMC_INFO_IS_OWNER], 1);
		EXPECT_EQ(shmc_destroy(r), 0);
	}
	return th_finish();
}
