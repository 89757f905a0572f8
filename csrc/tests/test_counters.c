/* SPDX-License-Identifier: MIT */
/*
 * test_counters - a channel's counters match what its members did, across
 * processes, and departed members' counts are kept (DESIGN.md 11).
 *
 *  1. A sender child fills a 64-slot ring (64 sends) and is refused once
 *     (full = 1): its row and the channel's totals say so, and 64 wait.
 *  2. A receiver child takes 30 and detaches: its counts are folded into the
 *     channel's (its row is gone, the totals keep them); 34 wait.
 *  3. The sender is killed (kill -9, no detach): its row stays, dead, still
 *     counted; a new member reclaims its slot and folds its counts: the
 *     totals do not move and the dead row is gone.
 *  4. A blocking receiver child takes the 34 and parks for one more; the
 *     owner's send wakes it: parks >= 1 (folded when it detaches), the
 *     owner's row counts the wake it delivered; sent = received = 65.
 *  5. Broadcast: each receiver counts what it received; received is the sum.
 *  6. shmc_stats on a handle, a short @cap, bad arguments.
 */
#include "harness.h"

#include <unistd.h>

#define LEN 48u
#define RING 64u
#define ROOM (SHMC_STATS_COUNT + SHMC_MAX_MEMBERS * SHMC_MSTATS_COUNT)

struct shared {
	uint64_t key;
	atomic_uint stage;
	atomic_uint go;
	atomic_int full_rc;
};
static struct shared *sh;
static uint64_t st[ROOM];

/* Stats by key; the row of member @id (NULL when there is none). */
static const uint64_t *stats(uint64_t key, uint32_t id, int *rows)
{
	int n = shmc_stats_key(key, st, ROOM);
	REQUIRE_OK(n);
	*rows = n;
	for (int i = 0; i < n; i++) {
		const uint64_t *r = st + SHMC_STATS_COUNT + (size_t)i * SHMC_MSTATS_COUNT;
		if (id && r[SHMC_MSTATS_ID] == id)
			return r;
	}
	return NULL;
}

static int filler(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_OK(h);
	uint8_t buf[LEN];
	memset(buf, 0xab, sizeof buf);
	for (unsigned i = 0; i < RING; i++)
		EXPECT_EQ(shmc_try_send(h, buf, LEN, 0), LEN);
	atomic_store(&sh->full_rc, shmc_try_send(h, buf, LEN, 0));
	uint64_t info[SHMC_INFO_COUNT];
	REQUIRE_OK(shmc_info(h, info));
	atomic_store(&sh->stage, (unsigned)info[SHMC_INFO_MEMBER_ID]);
	for (;;)
		pause(); /* killed by the parent, never detaches */
}

static int taker(void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(h);
	uint8_t buf[LEN];
	for (unsigned i = 0; i < n; i++)
		EXPECT_EQ(shmc_try_recv(h, buf, sizeof buf), LEN);
	EXPECT_OK(shmc_detach(h));
	return 0;
}

static int blocking_taker(void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(h);
	uint8_t buf[LEN];
	for (unsigned i = 0; i < n; i++)
		EXPECT_OK(shmc_recv(h, buf, sizeof buf, 5000000000ll));
	EXPECT_OK(shmc_detach(h));
	return 0;
}

static void unicast_counts(void)
{
	th_section("a sender, a receiver that leaves, a sender killed, a parked receiver");
	sh->key = th_key();
	int owner = shmc_create(sh->key, SHMC_UNICAST, RING, 128, 0600, 0);
	REQUIRE_OK(owner);
	uint64_t info[SHMC_INFO_COUNT];
	REQUIRE_OK(shmc_info(owner, info));
	int rows;

	pid_t s = th_fork(filler, NULL);
	REQUIRE_EQ(th_await_u32(&sh->stage, 1, 10000), 0);
	uint32_t sid = atomic_load(&sh->stage);
	EXPECT_EQ(atomic_load(&sh->full_rc), -ENOBUFS);
	const uint64_t *r = stats(sh->key, sid, &rows);
	REQUIRE(r != NULL);
	EXPECT_EQ(rows, 2);
	EXPECT_EQ(st[SHMC_STATS_MEMBERS], 2);
	EXPECT_EQ(st[SHMC_STATS_SENT], RING);
	EXPECT_EQ(st[SHMC_STATS_SENT_BYTES], RING * LEN);
	EXPECT_EQ(st[SHMC_STATS_FULL], 1);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED], 0);
	EXPECT_EQ(st[SHMC_STATS_WAITING], RING);
	EXPECT_EQ_U64(st[SHMC_STATS_KEY], sh->key);
	EXPECT_EQ(st[SHMC_STATS_CHANNEL_ID], info[SHMC_INFO_CHANNEL_ID]);
	EXPECT_EQ(st[SHMC_STATS_CREATOR_PID], getpid());
	EXPECT_EQ(st[SHMC_STATS_OWNER_UID], geteuid());
	EXPECT_EQ(r[SHMC_MSTATS_PID], s);
	EXPECT_EQ(r[SHMC_MSTATS_ACCESS], SHMC_SEND);
	EXPECT_EQ(r[SHMC_MSTATS_ALIVE], 1);
	EXPECT_EQ(r[SHMC_MSTATS_IS_OWNER], 0);
	EXPECT_EQ(r[SHMC_MSTATS_SENT], RING);
	EXPECT_EQ(r[SHMC_MSTATS_FULL], 1);

	th_section("a receiver takes 30 and detaches: its counts are folded");
	EXPECT_CHILD_OK(th_fork(taker, (void *)(uintptr_t)30), 10000);
	stats(sh->key, 0, &rows);
	EXPECT_EQ(rows, 2);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED], 30);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED_BYTES], 30 * LEN);
	EXPECT_EQ(st[SHMC_STATS_WAITING], RING - 30);
	EXPECT_EQ(st[SHMC_STATS_SENT], RING);

	th_section("the sender is killed: counted where it lies, then folded by the reclaimer");
	th_kill(s);
	r = stats(sh->key, sid, &rows);
	REQUIRE(r != NULL);
	EXPECT_EQ(r[SHMC_MSTATS_ALIVE], 0);
	EXPECT_EQ(st[SHMC_STATS_MEMBERS], 1);
	EXPECT_EQ(st[SHMC_STATS_SENT], RING);
	int again = shmc_attach_key(sh->key, SHMC_SEND); /* reclaims the dead slot */
	REQUIRE_OK(again);
	r = stats(sh->key, sid, &rows);
	CHECK(r == NULL);
	EXPECT_EQ(rows, 2);
	EXPECT_EQ(st[SHMC_STATS_SENT], RING);
	EXPECT_EQ(st[SHMC_STATS_SENT_BYTES], RING * LEN);
	EXPECT_EQ(st[SHMC_STATS_FULL], 1);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED], 30);
	EXPECT_OK(shmc_detach(again));

	th_section("a parked receiver woken by the owner's send");
	pid_t b = th_fork(blocking_taker, (void *)(uintptr_t)(RING - 30 + 1));
	/* Wait until it has taken the 34 and sleeps for the 35th. */
	for (int i = 0; i < 1000; i++) {
		stats(sh->key, 0, &rows);
		if (st[SHMC_STATS_WAITING] == 0)
			break;
		th_sleep_ms(5);
	}
	EXPECT_EQ(th_wait_futex_blocked(b, 10000), 0);
	uint8_t buf[LEN] = { 0 };
	EXPECT_EQ(shmc_try_send(owner, buf, LEN, 0), LEN);
	EXPECT_CHILD_OK(b, 10000);
	uint64_t oid = 0;
	stats(sh->key, 0, &rows);
	EXPECT_EQ(rows, 1);
	oid = st[SHMC_STATS_COUNT + SHMC_MSTATS_ID];
	r = stats(sh->key, (uint32_t)oid, &rows);
	REQUIRE(r != NULL);
	EXPECT_EQ(r[SHMC_MSTATS_IS_OWNER], 1);
	EXPECT_EQ(r[SHMC_MSTATS_SENT], 1);
	EXPECT_GE(r[SHMC_MSTATS_WAKES], 1);
	EXPECT_EQ(st[SHMC_STATS_SENT], RING + 1);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED], RING + 1);
	EXPECT_GE(st[SHMC_STATS_PARKS], 1);
	EXPECT_GE(st[SHMC_STATS_WAKES], 1);
	EXPECT_EQ(st[SHMC_STATS_WAITING], 0);
	EXPECT_OK(shmc_destroy(owner));
	EXPECT_EQ(shmc_stats_key(sh->key, st, ROOM), -ENOENT);
}

static int bcast_receiver(void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(h);
	atomic_fetch_add(&sh->stage, 1);
	REQUIRE_EQ(th_await_u32(&sh->go, 1, 10000), 0);
	uint8_t buf[LEN];
	for (unsigned i = 0; i < n; i++)
		EXPECT_EQ(shmc_recv(h, buf, sizeof buf, 5000000000ll), 8);
	/* Stay (and count where we lie) until the parent has looked. */
	REQUIRE_EQ(th_await_u32(&sh->go, 2, 10000), 0);
	EXPECT_OK(shmc_detach(h));
	return 0;
}

static void broadcast_counts(void)
{
	th_section("broadcast: every receiver counts what it received");
	sh->key = th_key();
	atomic_store(&sh->stage, 0);
	atomic_store(&sh->go, 0);
	int owner = shmc_create(sh->key, SHMC_BROADCAST, 16, 64, 0600, 0);
	REQUIRE_OK(owner);
	pid_t a = th_fork(bcast_receiver, (void *)(uintptr_t)10);
	pid_t b = th_fork(bcast_receiver, (void *)(uintptr_t)10);
	REQUIRE_EQ(th_await_u32(&sh->stage, 2, 10000), 0);
	atomic_store(&sh->go, 1);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(shmc_send(owner, "12345678", 8, 0, 5000000000ll), 8);
	int rows = 0;
	for (int i = 0; i < 1000; i++) {
		stats(sh->key, 0, &rows);
		if (st[SHMC_STATS_RECEIVED] == 20)
			break;
		th_sleep_ms(5);
	}
	EXPECT_EQ(rows, 3);
	EXPECT_EQ(st[SHMC_STATS_SENT], 10);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED], 20);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED_BYTES], 160);
	EXPECT_EQ(st[SHMC_STATS_WAITING], 0);
	for (int i = 0; i < rows; i++) {
		const uint64_t *r = st + SHMC_STATS_COUNT + (size_t)i * SHMC_MSTATS_COUNT;
		if (r[SHMC_MSTATS_IS_OWNER])
			continue;
		EXPECT_EQ(r[SHMC_MSTATS_RECEIVED], 10);
		EXPECT_EQ(r[SHMC_MSTATS_BEHIND], 0);
	}
	atomic_store(&sh->go, 2);
	EXPECT_CHILD_OK(a, 10000);
	EXPECT_CHILD_OK(b, 10000);
	stats(sh->key, 0, &rows);
	EXPECT_EQ(rows, 1);
	EXPECT_EQ(st[SHMC_STATS_RECEIVED], 20);

	th_section("shmc_stats on a handle; a short cap; bad arguments");
	uint64_t small[SHMC_STATS_COUNT + 1];
	EXPECT_EQ(shmc_stats(owner, small, SHMC_STATS_COUNT + 1), 0); /* no room for a row */
	EXPECT_EQ(small[SHMC_STATS_ROWS], 1);
	EXPECT_EQ(small[SHMC_STATS_SENT], 10);
	EXPECT_EQ(shmc_stats(owner, small, SHMC_STATS_COUNT - 1), -ERANGE);
	EXPECT_EQ(shmc_stats(owner, NULL, ROOM), -EFAULT);
	EXPECT_EQ(shmc_stats(0, st, ROOM), -ENOENT);
	EXPECT_EQ(shmc_stats_key(0, st, ROOM), -EINVAL);
	EXPECT_EQ(shmc_stats_id(0, st, ROOM), -EINVAL);
	uint64_t info[SHMC_INFO_COUNT];
	REQUIRE_OK(shmc_info(owner, info));
	EXPECT_EQ(shmc_stats_id((int32_t)info[SHMC_INFO_CHANNEL_ID], st, ROOM), 1);
	EXPECT_EQ_U64(st[SHMC_STATS_KEY], sh->key);
	EXPECT_OK(shmc_destroy(owner));
	EXPECT_EQ(shmc_stats(owner, st, ROOM), -ENOENT);
}

int main(void)
{
	th_init("test_counters", 0);
	sh = th_shared_alloc(sizeof *sh);
	unicast_counts();
	broadcast_counts();
	return th_finish();
}
