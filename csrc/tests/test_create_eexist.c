/* SPDX-License-Identifier: MIT */
/*
 * test_create_eexist - a key used by a live channel cannot be created again
 * (-EEXIST), from this process or another, whatever the other parameters;
 * the live channel is untouched; destroy frees the key.
 */
#include "harness.h"

struct shared {
	uint64_t key;
	int32_t id;
};

static int child(void *p)
{
	struct shared *s = p;
	uint64_t info[SHMC_INFO_COUNT];
	int sub;

	printf("  child: create the same key -> -EEXIST\n");
	EXPECT_EQ(shmc_create(s->key, SHMC_UNICAST, 16, 64, 0600, 0), -EEXIST);
	EXPECT_EQ(shmc_create(s->key, SHMC_BROADCAST, 4, 128, 0666, SHMC_F_PRIVATE), -EEXIST);
	printf("  child: attach by key still reaches the original channel\n");
	sub = shmc_attach_key(s->key, SHMC_BOTH);
	EXPECT_GT(sub, 0);
	if (sub > 0) {
		EXPECT_EQ(shmc_info(sub, info), SHMC_INFO_COUNT);
		EXPECT_EQ(info[SHMC_INFO_CHANNEL_ID], s->id);
		EXPECT_EQ(shmc_try_send(sub, "from child", 10, 0), 10);
		EXPECT_EQ(shmc_detach(sub), 0);
	}
	return 0;
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	uint64_t info[SHMC_INFO_COUNT];
	char buf[64];
	int ch, ch2, sub;

	th_init("test_create_eexist", 0);
	s->key = th_key();

	th_section("create, then create the same key again -> -EEXIST");
	ch = shmc_create(s->key, SHMC_UNICAST, 16, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	s->id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	EXPECT_EQ(shmc_create(s->key, SHMC_UNICAST, 16, 64, 0600, 0), -EEXIST);
	EXPECT_EQ(shmc_create(s->key, SHMC_MULTICAST, 32, 256, 0644, 0), -EEXIST);
	EXPECT_EQ(shmc_create(s->key, SHMC_BROADCAST, 1, 1, 0, SHMC_F_PRIVATE), -EEXIST);

	th_section("from another process -> -EEXIST");
	EXPECT_CHILD_OK(th_fork(child, s), 20000);

	th_section("the live channel is untouched by the failed creates");
	EXPECT_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	EXPECT_EQ(info[SHMC_INFO_DELIVERY], SHMC_UNICAST);
	EXPECT_EQ(info[SHMC_INFO_RING_ENTRIES], 16);
	EXPECT_EQ(info[SHMC_INFO_MAX_MESSAGE_SIZE], 64);
	sub = shmc_attach_key(s->key, SHMC_RECV);
	EXPECT_GT(sub, 0);
	/* The child's message was queued before this receiver attached (unicast keeps it). */
	EXPECT_EQ(shmc_try_recv(sub, buf, sizeof(buf)), 10);
	EXPECT_MEMEQ(buf, "from child", 10);
	EXPECT_EQ(shmc_try_send(ch, "owner", 5, 0), 5);
	EXPECT_EQ(shmc_try_recv(sub, buf, sizeof(buf)), 5);

	th_section("destroy frees the key: create succeeds again");
	EXPECT_EQ(shmc_destroy(ch), 0);
	ch2 = shmc_create(s->key, SHMC_BROADCAST, 8, 32, 0600, 0);
	EXPECT_GT(ch2, 0);
	EXPECT_EQ(shmc_create(s->key, SHMC_UNICAST, 16, 64, 0600, 0), -EEXIST);
	if (ch2 > 0) {
		EXPECT_EQ(shmc_info(ch2, info), SHMC_INFO_COUNT);
		EXPECT_EQ(info[SHMC_INFO_DELIVERY], SHMC_BROADCAST);
		EXPECT_EQ(shmc_destroy(ch2), 0);
	}
	EXPECT_EQ(shmc_detach(sub), 0);

	th_section("repeated create/destroy of one key");
	for (int i = 0; i < 50; i++) {
		int c = shmc_create(s->key, SHMC_UNICAST, 4, 16, 0600, 0);

		EXPECT_GT(c, 0);
		EXPECT_EQ(shmc_create(s->key, SHMC_UNICAST, 4, 16, 0600, 0), -EEXIST);
		if (c > 0)
			EXPECT_EQ(shmc_destroy(c), 0);
	}
	return th_finish();
}
