/* SPDX-License-Identifier: MIT */
/*
 * test_subscriber_exit - a subscriber that dies (SIGKILL, no detach) never
 * blocks the others: a dead broadcast receiver stops gating a full ring;
 * messages targeted at a dead unicast receiver stop holding the ring; a
 * receiver killed while parked does not swallow the wake meant for the
 * living.
 */
#include "harness.h"

#include <unistd.h>

struct shared {
	uint64_t key;
	atomic_uint attached;
	atomic_uint member_id;
	uint32_t got;
};

/* Attaches, reports its id, never reads, waits to be killed. */
static int idle_receiver(void *p)
{
	struct shared *s = p;
	uint64_t info[SHMC_INFO_COUNT];
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(rx, 0);
	REQUIRE_EQ(shmc_info(rx, info), SHMC_INFO_COUNT);
	atomic_store(&s->member_id, (unsigned)info[SHMC_INFO_MEMBER_ID]);
	atomic_fetch_add(&s->attached, 1);
	th_sleep_ms(60000);
	return 0;
}

/* Attaches and blocks in one receive. */
static int parked_receiver(void *p)
{
	struct shared *s = p;
	uint32_t v = UINT32_MAX;
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(rx, 0);
	atomic_fetch_add(&s->attached, 1);
	EXPECT_EQ(shmc_recv(rx, &v, sizeof(v), 20 * 1000000000ll), sizeof(v));
	s->got = v;
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

static void dead_broadcast_receiver(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	int ch, tx, rx;
	uint32_t v;
	pid_t pid;

	th_section("broadcast: a killed receiver that never read stops gating the ring");
	s->key = th_key();
	ch = shmc_create(s->key, SHMC_BROADCAST, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(s->key, SHMC_SEND);
	rx = shmc_attach_key(s->key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);
	pid = th_fork(idle_receiver, s);
	REQUIRE_EQ(th_await_u32(&s->attached, 1, 10000), 0);
	for (v = 0; v < 4; v++)
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	for (uint32_t i = 0; i < 4; i++) {
		EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
		EXPECT_EQ(v, i);
	}
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	th_kill(pid);
	printf("  receiver killed; a blocking send must now get through\n");
	for (v = 4; v < 12; v++) {
		uint32_t got = UINT32_MAX;
		int r = shmc_send(tx, &v, sizeof(v), 0, 10 * 1000000000ll);

		EXPECT_EQ(r, sizeof(v));
		if (r != (int)sizeof(v))
			break;
		EXPECT_EQ(shmc_try_recv(rx, &got, sizeof(got)), sizeof(got));
		EXPECT_EQ(got, v);
	}
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void dead_target(uint32_t delivery)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	uint64_t info[SHMC_INFO_COUNT];
	int ch, tx, rx;
	uint32_t v, dead_id;
	pid_t pid;

	th_section("delivery %u: messages targeted at a killed receiver stop holding the ring",
		   delivery);
	s->key = th_key();
	ch = shmc_create(s->key, delivery, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(s->key, SHMC_SEND);
	rx = shmc_attach_key(s->key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);
	pid = th_fork(idle_receiver, s);
	REQUIRE_EQ(th_await_u32(&s->attached, 1, 10000), 0);
	dead_id = atomic_load(&s->member_id);
	for (v = 0; v < 4; v++)
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), dead_id), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);
	th_kill(pid);
	printf("  target killed; the living receiver must get new messages\n");
	for (v = 100; v < 110; v++) {
		uint32_t got = UINT32_MAX;
		int r = shmc_send(tx, &v, sizeof(v), 0, 10 * 1000000000ll);

		EXPECT_EQ(r, sizeof(v));
		if (r != (int)sizeof(v))
			break; /* one 10 s timeout is proof enough */
		/* Never one of the dead target's messages. */
		EXPECT_EQ(shmc_recv(rx, &got, sizeof(got), 10 * 1000000000ll), sizeof(got));
		EXPECT_EQ(got, v);
	}
	EXPECT_EQ(shmc_info(rx, info), SHMC_INFO_COUNT);
	printf("  dropped counter: %llu\n", (unsigned long long)info[SHMC_INFO_DROPPED]);
	if (delivery != SHMC_BROADCAST && v == 110)
		EXPECT_EQ(info[SHMC_INFO_DROPPED], 4);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void dead_parked(uint32_t delivery)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	pid_t victim, survivor;
	uint32_t v = 77;
	int ch;

	th_section("delivery %u: a receiver killed while parked does not swallow the wake",
		   delivery);
	s->key = th_key();
	ch = shmc_create(s->key, delivery, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	victim = th_fork(parked_receiver, s);
	REQUIRE_EQ(th_await_u32(&s->attached, 1, 10000), 0);
	if (th_wait_futex_blocked(victim, 5000) < 0)
		printf("  note: victim not seen in a futex wait\n");
	survivor = th_fork(parked_receiver, s);
	REQUIRE_EQ(th_await_u32(&s->attached, 2, 10000), 0);
	if (th_wait_futex_blocked(survivor, 5000) < 0)
		printf("  note: survivor not seen in a futex wait\n");
	th_kill(victim);
	EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), 0), sizeof(v));
	EXPECT_CHILD_OK(survivor, 30000);
	EXPECT_EQ(s->got, 77);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_subscriber_exit", 0);
	dead_broadcast_receiver();
	dead_target(SHMC_UNICAST);
	dead_target(SHMC_MULTICAST);
	dead_target(SHMC_BROADCAST);
	dead_parked(SHMC_UNICAST);
	dead_parked(SHMC_MULTICAST);
	return th_finish();
}
