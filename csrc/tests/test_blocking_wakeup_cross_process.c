/* SPDX-License-Identifier: MIT */
/*
 * test_blocking_wakeup_cross_process - a receiver asleep in shmc_recv (no
 * timeout) in another process is woken by a send; a sender asleep on a full
 * ring is woken when a receive frees a slot; a broadcast send wakes every
 * sleeping receiver. Each send happens once the sleeper is seen in a futex
 * wait, so the wake path (not the spin) is what is tested.
 */
#include "harness.h"

#define ROUNDS 50
#define WAITERS 3

struct shared {
	uint64_t ping_key, pong_key, key;
	atomic_uint attached;
};

static void wait_asleep(pid_t pid, const char *who)
{
	if (th_wait_futex_blocked(pid, 5000) < 0)
		printf("  note: %s not seen in a futex wait\n", who);
}

static int ponger(void *p)
{
	struct shared *s = p;
	int in = shmc_attach_key(s->ping_key, SHMC_RECV);
	int out = shmc_attach_key(s->pong_key, SHMC_SEND);

	REQUIRE_GT(in, 0);
	REQUIRE_GT(out, 0);
	atomic_store(&s->attached, 1);
	for (uint32_t i = 0; i < ROUNDS; i++) {
		uint32_t v = UINT32_MAX;

		REQUIRE_EQ(shmc_recv(in, &v, sizeof(v), -1), sizeof(v));
		EXPECT_EQ(v, i);
		v += 1000;
		REQUIRE_EQ(shmc_send(out, &v, sizeof(v), 0, -1), sizeof(v));
	}
	EXPECT_EQ(shmc_detach(in), 0);
	EXPECT_EQ(shmc_detach(out), 0);
	return 0;
}

static int blocked_sender(void *p)
{
	struct shared *s = p;
	int tx = shmc_attach_key(s->key, SHMC_SEND);

	REQUIRE_GT(tx, 0);
	atomic_store(&s->attached, 1);
	/* The ring is full: this sleeps until the parent receives. */
	EXPECT_EQ(shmc_send(tx, "child", 5, 0, -1), 5);
	EXPECT_EQ(shmc_detach(tx), 0);
	return 0;
}

static int blocked_receiver(void *p)
{
	struct shared *s = p;
	char buf[16] = { 0 };
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(rx, 0);
	atomic_fetch_add(&s->attached, 1);
	EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), -1), 4);
	EXPECT_MEMEQ(buf, "wake", 4);
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	char buf[16];
	pid_t pid;

	th_init("test_blocking_wakeup_cross_process", 0);

	th_section("ping-pong, %d rounds, both sides sleeping without timeout", ROUNDS);
	{
		int c1, c2, out, in;

		s->ping_key = th_key();
		s->pong_key = th_key();
		c1 = shmc_create(s->ping_key, SHMC_UNICAST, 4, 8, 0600, 0);
		c2 = shmc_create(s->pong_key, SHMC_UNICAST, 4, 8, 0600, 0);
		REQUIRE_GT(c1, 0);
		REQUIRE_GT(c2, 0);
		out = shmc_attach_key(s->ping_key, SHMC_SEND);
		in = shmc_attach_key(s->pong_key, SHMC_RECV);
		REQUIRE_GT(out, 0);
		REQUIRE_GT(in, 0);
		pid = th_fork(ponger, s);
		REQUIRE_EQ(th_await_u32(&s->attached, 1, 10000), 0);
		for (uint32_t i = 0; i < ROUNDS; i++) {
			uint32_t v = i;

			if (i % 10 == 0)
				wait_asleep(pid, "ponger");
			EXPECT_EQ(shmc_try_send(out, &v, sizeof(v), 0), sizeof(v));
			v = 0;
			EXPECT_EQ(shmc_recv(in, &v, sizeof(v), -1), sizeof(v));
			EXPECT_EQ(v, i + 1000);
		}
		EXPECT_CHILD_OK(pid, 30000);
		EXPECT_EQ(shmc_detach(out), 0);
		EXPECT_EQ(shmc_detach(in), 0);
		EXPECT_EQ(shmc_destroy(c1), 0);
		EXPECT_EQ(shmc_destroy(c2), 0);
	}

	th_section("a sender asleep on a full ring is woken by a receive");
	{
		int ch, rx;

		atomic_store(&s->attached, 0);
		s->key = th_key();
		ch = shmc_create(s->key, SHMC_UNICAST, 1, 8, 0600, 0);
		REQUIRE_GT(ch, 0);
		rx = shmc_attach_key(s->key, SHMC_RECV);
		REQUIRE_GT(rx, 0);
		EXPECT_EQ(shmc_try_send(ch, "full", 4, 0), 4);
		pid = th_fork(blocked_sender, s);
		REQUIRE_EQ(th_await_u32(&s->attached, 1, 10000), 0);
		wait_asleep(pid, "sender");
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof(buf)), 4);
		EXPECT_CHILD_OK(pid, 30000);
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof(buf)), 5);
		EXPECT_MEMEQ(buf, "child", 5);
		EXPECT_EQ(shmc_detach(rx), 0);
		EXPECT_EQ(shmc_destroy(ch), 0);
	}

	th_section("a broadcast send wakes all %d sleeping receivers", WAITERS);
	{
		pid_t pids[WAITERS];
		int ch;

		atomic_store(&s->attached, 0);
		s->key = th_key();
		ch = shmc_create(s->key, SHMC_BROADCAST, 4, 8, 0600, 0);
		REQUIRE_GT(ch, 0);
		for (int i = 0; i < WAITERS; i++)
			pids[i] = th_fork(blocked_receiver, s);
		REQUIRE_EQ(th_await_u32(&s->attached, WAITERS, 10000), 0);
		for (int i = 0; i < WAITERS; i++)
			wait_asleep(pids[i], "receiver");
		EXPECT_EQ(shmc_try_send(ch, "wake", 4, 0), 4);
		for (int i = 0; i < WAITERS; i++)
			EXPECT_CHILD_OK(pids[i], 30000);
		EXPECT_EQ(shmc_destroy(ch), 0);
	}

	static const uint32_t queues[] = { SHMC_UNICAST, SHMC_MULTICAST };

	for (int q = 0; q < 2; q++) {
		uint32_t delivery = queues[q];
		pid_t pids[WAITERS];
		int ch;

		th_section("delivery %u: %d sleeping receivers, %d sends: all woken", delivery,
			   WAITERS, WAITERS);
		atomic_store(&s->attached, 0);
		s->key = th_key();
		ch = shmc_create(s->key, delivery, 4, 8, 0600, 0);
		REQUIRE_GT(ch, 0);
		for (int i = 0; i < WAITERS; i++)
			pids[i] = th_fork(blocked_receiver, s);
		REQUIRE_EQ(th_await_u32(&s->attached, WAITERS, 10000), 0);
		for (int i = 0; i < WAITERS; i++)
			wait_asleep(pids[i], "receiver");
		for (int i = 0; i < WAITERS; i++)
			EXPECT_EQ(shmc_try_send(ch, "wake", 4, 0), 4);
		for (int i = 0; i < WAITERS; i++)
			EXPECT_CHILD_OK(pids[i], 30000);
		EXPECT_EQ(shmc_destroy(ch), 0);
	}
	return th_finish();
}
