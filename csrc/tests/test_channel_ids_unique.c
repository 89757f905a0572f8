/* SPDX-License-Identifier: MIT */
/*
 * test_channel_ids_unique - channel ids are positive 32-bit integers, unique
 * among live channels of the machine (several processes creating at once);
 * subscriber ids are positive and unique within a channel, the owner's is 0.
 */
#include "harness.h"

#define PER_PROC 24
#define CHILDREN 2

struct shared {
	int32_t ids[CHILDREN][PER_PROC];
	atomic_uint created;
	atomic_uint release;
};

static int32_t channel_id(int handle)
{
	uint64_t info[SHMC_INFO_COUNT];

	if (shmc_info(handle, info) != SHMC_INFO_COUNT)
		return -1;
	return (int32_t)info[SHMC_INFO_CHANNEL_ID];
}

struct child_arg {
	struct shared *s;
	int index;
};

static int child(void *p)
{
	struct child_arg *a = p;
	int h[PER_PROC];

	for (int i = 0; i < PER_PROC; i++) {
		h[i] = shmc_create(th_key(), SHMC_UNICAST, 4, 16, 0600, 0);
		REQUIRE_GT(h[i], 0);
		a->s->ids[a->index][i] = channel_id(h[i]);
	}
	atomic_fetch_add(&a->s->created, 1);
	/* Keep the channels live until the parent has compared the ids. */
	REQUIRE_EQ(th_await_u32(&a->s->release, 1, 60000), 0);
	for (int i = 0; i < PER_PROC; i++)
		EXPECT_EQ(shmc_destroy(h[i]), 0);
	return 0;
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	struct child_arg args[CHILDREN];
	int32_t all[(CHILDREN + 1) * PER_PROC];
	int h[PER_PROC], n = 0, dup = 0;
	pid_t pids[CHILDREN];
	uint64_t key = th_key();

	th_init("test_channel_ids_unique", 0);

	th_section("%d processes create %d channels each at the same time", CHILDREN + 1,
		   PER_PROC);
	for (int c = 0; c < CHILDREN; c++) {
		args[c].s = s;
		args[c].index = c;
		pids[c] = th_fork(child, &args[c]);
	}
	for (int i = 0; i < PER_PROC; i++) {
		h[i] = shmc_create(th_key(), SHMC_BROADCAST, 4, 16, 0600, 0);
		REQUIRE_GT(h[i], 0);
		all[n++] = channel_id(h[i]);
	}
	REQUIRE_EQ(th_await_u32(&s->created, CHILDREN, 60000), 0);
	for (int c = 0; c < CHILDREN; c++)
		for (int i = 0; i < PER_PROC; i++)
			all[n++] = s->ids[c][i];

	th_section("every id is positive and distinct");
	for (int i = 0; i < n; i++) {
		EXPECT_GT(all[i], 0);
		for (int j = i + 1; j < n; j++)
			if (all[i] == all[j])
				dup++;
	}
	EXPECT_EQ(dup, 0);

	th_section("each id attaches to its own channel");
	for (int i = 0; i < PER_PROC; i++) {
		uint64_t a[SHMC_INFO_COUNT], b[SHMC_INFO_COUNT];
		int sub = shmc_attach_id(all[i], SHMC_RECV);

		EXPECT_GT(sub, 0);
		if (sub <= 0)
			continue;
		EXPECT_EQ(shmc_info(sub, a), SHMC_INFO_COUNT);
		EXPECT_EQ(shmc_info(h[i], b), SHMC_INFO_COUNT);
		EXPECT_EQ_U64(a[SHMC_INFO_KEY], b[SHMC_INFO_KEY]);
		EXPECT_EQ(a[SHMC_INFO_CHANNEL_ID], all[i]);
		EXPECT_EQ(shmc_detach(sub), 0);
	}
	atomic_store(&s->release, 1);
	for (int c = 0; c < CHILDREN; c++)
		EXPECT_CHILD_OK(pids[c], 60000);

	th_section("after destroying half, new channels still get distinct ids");
	for (int i = 0; i < PER_PROC; i += 2)
		EXPECT_EQ(shmc_destroy(h[i]), 0);
	for (int i = 0; i < PER_PROC; i += 2) {
		h[i] = shmc_create(th_key(), SHMC_MULTICAST, 4, 16, 0600, 0);
		REQUIRE_GT(h[i], 0);
	}
	dup = 0;
	for (int i = 0; i < PER_PROC; i++) {
		int32_t id = channel_id(h[i]);

		EXPECT_GT(id, 0);
		for (int j = i + 1; j < PER_PROC; j++)
			if (id == channel_id(h[j]))
				dup++;
	}
	EXPECT_EQ(dup, 0);
	for (int i = 0; i < PER_PROC; i++)
		EXPECT_EQ(shmc_destroy(h[i]), 0);

	th_section("subscriber ids: owner 0, subscribers positive and distinct");
	{
		uint64_t info[SHMC_INFO_COUNT];
		uint64_t sid[16];
		int subs[16];
		int ch = shmc_create(key, SHMC_UNICAST, 4, 16, 0600, 0);

		REQUIRE_GT(ch, 0);
		EXPECT_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
		EXPECT_EQ(info[SHMC_INFO_MEMBER_ID], 0);
		for (int i = 0; i < 16; i++) {
			subs[i] = shmc_attach_key(key, i % 3 == 0 ? SHMC_SEND : SHMC_BOTH);
			REQUIRE_GT(subs[i], 0);
			EXPECT_EQ(shmc_info(subs[i], info), SHMC_INFO_COUNT);
			sid[i] = info[SHMC_INFO_MEMBER_ID];
			EXPECT_GT(sid[i], 0);
			EXPECT_EQ(info[SHMC_INFO_IS_OWNER], 0);
			for (int j = 0; j < i; j++)
				EXPECT_NE(sid[i], sid[j]);
		}
		for (int i = 0; i < 16; i++)
			EXPECT_EQ(shmc_detach(subs[i]), 0);
		EXPECT_EQ(shmc_destroy(ch), 0);
	}
	return th_finish();
}
