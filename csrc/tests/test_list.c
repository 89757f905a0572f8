/* SPDX-License-Identifier: MIT */
/*
 * test_list - shmc_list: the live channels the caller may look into, with
 * their descriptions (DESIGN.md 11).
 *
 *  1. Two channels of ours are listed with key, id, delivery, mode, flags,
 *     owner, creator pid, members, ring size, max message size and waiting
 *     (3 sent: 3 waiting; a broadcast with a receiver 2 behind: 2).
 *  2. A short buffer: the count of all, the rows that fit; NULL with 0.
 *  3. A channel whose creator was killed is not listed.
 *  4. As uid 65534: a 0644 channel of root's is listed, a 0600 one is not.
 *
 * Runs in a private /dev/shm when it can (root), so the list is exactly
 * ours; else it looks for its own channels among the machine's.
 */
#include "harness.h"

#include <signal.h>
#include <unistd.h>

#define ROWS 256
static uint64_t rows[ROWS * SHMC_LIST_COUNT];
static bool g_private;

struct shared {
	uint64_t key_a, key_b, key_dead;
	atomic_uint stage;
};
static struct shared *sh;

/* The row of @key in the list, or NULL. */
static const uint64_t *row_of(uint64_t key, int *count)
{
	int n = shmc_list(rows, ROWS * SHMC_LIST_COUNT);
	REQUIRE_OK(n);
	*count = n;
	for (int i = 0; i < n && i < ROWS; i++)
		if (rows[(size_t)i * SHMC_LIST_COUNT + SHMC_LIST_KEY] == key)
			return rows + (size_t)i * SHMC_LIST_COUNT;
	return NULL;
}

static int dead_creator(void *arg)
{
	(void)arg;
	REQUIRE_OK(shmc_create(sh->key_dead, SHMC_UNICAST, 8, 64, 0600, 0));
	atomic_store(&sh->stage, 1);
	for (;;)
		pause();
}

static int nobody_lists(void *arg)
{
	(void)arg;
	int n;
	const uint64_t *a = row_of(sh->key_a, &n);
	CHECK_MSG(a != NULL, "uid 65534 sees root's 0644 channel");
	CHECK_MSG(row_of(sh->key_b, &n) == NULL, "uid 65534 does not see root's 0600 channel");
	return 0;
}

int main(void)
{
	th_init("test_list", 0);
	sh = th_shared_alloc(sizeof *sh);
	g_private = geteuid() == 0 && th_private_shm() == 0;
	printf("# %s /dev/shm\n", g_private ? "private" : "shared");

	th_section("our channels, described");
	sh->key_a = th_key();
	sh->key_b = th_key();
	int a = shmc_create(sh->key_a, SHMC_UNICAST, 64, 256, 0644, 0);
	int b = shmc_create(sh->key_b, SHMC_BROADCAST, 16, 32, 0600, SHMC_F_PRIVATE);
	REQUIRE_OK(a);
	REQUIRE_OK(b);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(shmc_try_send(a, "abc", 3, 0), 3);
	int rx = shmc_attach_key(sh->key_b, SHMC_RECV);
	REQUIRE_OK(rx);
	EXPECT_EQ(shmc_try_send(b, "x", 1, 0), 1);
	EXPECT_EQ(shmc_try_send(b, "y", 1, 0), 1);
	uint64_t ia[SHMC_INFO_COUNT], ib[SHMC_INFO_COUNT];
	REQUIRE_OK(shmc_info(a, ia));
	REQUIRE_OK(shmc_info(b, ib));

	int n;
	const uint64_t *r = row_of(sh->key_a, &n);
	REQUIRE(r != NULL);
	if (g_private)
		EXPECT_EQ(n, 2);
	EXPECT_EQ(r[SHMC_LIST_CHANNEL_ID], ia[SHMC_INFO_CHANNEL_ID]);
	EXPECT_EQ(r[SHMC_LIST_DELIVERY], SHMC_UNICAST);
	EXPECT_EQ(r[SHMC_LIST_MODE], 0644);
	EXPECT_EQ(r[SHMC_LIST_FLAGS], 0);
	EXPECT_EQ(r[SHMC_LIST_OWNER_UID], geteuid());
	EXPECT_EQ(r[SHMC_LIST_CREATOR_PID], getpid());
	EXPECT_EQ(r[SHMC_LIST_MEMBERS], 1);
	EXPECT_EQ(r[SHMC_LIST_RING_ENTRIES], 64);
	EXPECT_EQ(r[SHMC_LIST_MAX_MESSAGE_SIZE], 256);
	EXPECT_EQ(r[SHMC_LIST_WAITING], 3);
	r = row_of(sh->key_b, &n);
	REQUIRE(r != NULL);
	EXPECT_EQ(r[SHMC_LIST_CHANNEL_ID], ib[SHMC_INFO_CHANNEL_ID]);
	EXPECT_EQ(r[SHMC_LIST_DELIVERY], SHMC_BROADCAST);
	EXPECT_EQ(r[SHMC_LIST_MODE], 0600);
	EXPECT_EQ(r[SHMC_LIST_FLAGS], SHMC_F_PRIVATE);
	EXPECT_EQ(r[SHMC_LIST_MEMBERS], 2);
	EXPECT_EQ(r[SHMC_LIST_WAITING], 2);
	char buf[8];
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 1);
	r = row_of(sh->key_b, &n);
	REQUIRE(r != NULL);
	EXPECT_EQ(r[SHMC_LIST_WAITING], 1);

	th_section("a short buffer: the count of all, the rows that fit");
	if (g_private) {
		uint64_t one[SHMC_LIST_COUNT + 3];
		memset(one, 0xff, sizeof one);
		EXPECT_EQ(shmc_list(one, SHMC_LIST_COUNT + 2), 2);
		EXPECT_EQ_U64(one[SHMC_LIST_COUNT + 2], UINT64_MAX); /* untouched */
		EXPECT_EQ(shmc_list(NULL, 0), 2);
	}
	EXPECT_EQ(shmc_list(NULL, SHMC_LIST_COUNT), -EFAULT);

	th_section("a channel whose creator was killed is not listed");
	sh->key_dead = th_key();
	pid_t d = th_fork(dead_creator, NULL);
	REQUIRE_EQ(th_await_u32(&sh->stage, 1, 10000), 0);
	CHECK(row_of(sh->key_dead, &n) != NULL);
	th_kill(d);
	CHECK(row_of(sh->key_dead, &n) == NULL);

	if (geteuid() == 0) {
		th_section("uid 65534 sees what its rights let it look into");
		EXPECT_CHILD_OK(th_fork_nobody(nobody_lists, NULL), 10000);
	}
	EXPECT_OK(shmc_detach(rx));
	EXPECT_OK(shmc_destroy(a));
	EXPECT_OK(shmc_destroy(b));
	CHECK(row_of(sh->key_a, &n) == NULL);
	return th_finish();
}
