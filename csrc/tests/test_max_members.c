/* SPDX-License-Identifier: MIT */
/*
 * test_max_members - a channel holds SHMC_MAX_MEMBERS members (the owner
 * and SHMC_MAX_MEMBERS - 1 subscribers); one more attach is -EUSERS; a
 * detach frees a place; all members work, and a full broadcast channel
 * delivers to every receiver.
 */
#include "harness.h"

#define SUBS (SHMC_MAX_MEMBERS - 1)

int main(void)
{
	uint64_t key = th_key();
	int subs[SHMC_MAX_MEMBERS];
	int ch, n = 0, r;
	uint32_t v;

	th_init("test_max_members", 0);
	ch = shmc_create(key, SHMC_BROADCAST, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);

	th_section("attach %u subscribers", SUBS);
	for (unsigned i = 0; i < SUBS; i++) {
		subs[n] = shmc_attach_key(key, SHMC_BOTH);
		if (subs[n] <= 0) {
			EXPECT_GT(subs[n], 0);
			break;
		}
		n++;
	}
	printf("  attached %d\n", n);
	EXPECT_EQ(n, SUBS);

	th_section("one more -> -EUSERS (by key and by id)");
	{
		uint64_t info[SHMC_INFO_COUNT];

		EXPECT_EQ(shmc_attach_key(key, SHMC_RECV), -EUSERS);
		EXPECT_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
		EXPECT_EQ(shmc_attach_id((int32_t)info[SHMC_INFO_CHANNEL_ID], SHMC_SEND), -EUSERS);
	}

	th_section("every member receives a broadcast");
	v = 7;
	EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), 0), sizeof(v));
	for (int i = 0; i < n; i++) {
		v = 0;
		EXPECT_EQ(shmc_try_recv(subs[i], &v, sizeof(v)), sizeof(v));
		EXPECT_EQ(v, 7);
	}

	th_section("a detach frees one place");
	if (n > 0) {
		EXPECT_EQ(shmc_detach(subs[n - 1]), 0);
		r = shmc_attach_key(key, SHMC_RECV);
		EXPECT_GT(r, 0);
		subs[n - 1] = r;
		EXPECT_EQ(shmc_attach_key(key, SHMC_RECV), -EUSERS);
	}

	th_section("after all detach, the places are free again");
	for (int i = 0; i < n; i++)
		if (subs[i] > 0)
			EXPECT_EQ(shmc_detach(subs[i]), 0);
	for (n = 0; n < (int)SUBS; n++) {
		subs[n] = shmc_attach_key(key, SHMC_RECV);
		if (subs[n] <= 0) {
			EXPECT_GT(subs[n], 0);
			break;
		}
	}
	EXPECT_EQ(n, SUBS);
	for (int i = 0; i < n; i++)
		EXPECT_EQ(shmc_detach(subs[i]), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
