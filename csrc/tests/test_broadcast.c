/* SPDX-License-Identifier: MIT */
/*
 * test_broadcast - every receiver attached at send time gets every message,
 * in the same order; a late joiner starts with the next message; a send with
 * no receivers succeeds; the slowest receiver gates slot reuse (-ENOBUFS
 * until it reads) and a detaching one releases its hold; receivers in other
 * processes see the same sequence.
 */
#include "harness.h"

#include <unistd.h>

#define RING 4

static void send_u32(int h, uint32_t v)
{
	EXPECT_EQ(shmc_try_send(h, &v, sizeof(v), 0), sizeof(v));
}

static void expect_u32(int h, uint32_t want)
{
	uint32_t v = UINT32_MAX;

	EXPECT_EQ(shmc_try_recv(h, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, want);
}

struct remote {
	uint64_t key;
	atomic_uint attached;
	uint64_t hash;
	uint32_t count;
};

#define REMOTE_N 500

static int remote_receiver(void *p)
{
	struct remote *r = p;
	uint64_t hash = 1469598103934665603ull;
	int h = shmc_attach_key(r->key, SHMC_RECV);

	REQUIRE_GT(h, 0);
	atomic_fetch_add(&r->attached, 1);
	for (uint32_t i = 0; i < REMOTE_N; i++) {
		uint32_t v;
		int n = shmc_recv(h, &v, sizeof(v), 20 * 1000000000ll);

		if (n != (int)sizeof(v)) {
			EXPECT_EQ(n, sizeof(v));
			break;
		}
		EXPECT_EQ(v, i);
		hash = (hash ^ v) * 1099511628211ull;
		r->count++;
	}
	r->hash = hash;
	EXPECT_EQ(shmc_detach(h), 0);
	return 0;
}

int main(void)
{
	uint64_t key = th_key();
	int ch, a, b, c, tx;
	uint32_t v;

	th_init("test_broadcast", 0);
	ch = shmc_create(key, SHMC_BROADCAST, RING, 32, 0600, 0);
	REQUIRE_GT(ch, 0);

	th_section("no receivers: sends always succeed and go nowhere");
	tx = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_GT(tx, 0);
	for (v = 0; v < 5 * RING; v++) {
		send_u32(tx, v);
		send_u32(ch, v);
	}

	th_section("a receiver attaching now starts with the next message");
	a = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(a, 0);
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_pending(a), 0);
	send_u32(tx, 1000);
	EXPECT_EQ(shmc_pending(a), 1);
	expect_u32(a, 1000);
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), -EAGAIN);

	th_section("all receivers get every message, in the same order");
	b = shmc_attach_key(key, SHMC_BOTH);
	REQUIRE_GT(b, 0);
	send_u32(tx, 1);
	send_u32(b, 2);
	send_u32(ch, 3);
	expect_u32(a, 1);
	expect_u32(a, 2);
	expect_u32(a, 3);
	expect_u32(b, 1);
	expect_u32(b, 2); /* a sender with receive access gets its own message */
	expect_u32(b, 3);

	th_section("late joiner: attaches after 2 of 3 messages, gets only the third");
	send_u32(tx, 10);
	send_u32(tx, 11);
	c = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(c, 0);
	EXPECT_EQ(shmc_try_recv(c, &v, sizeof(v)), -EAGAIN);
	send_u32(tx, 12);
	expect_u32(c, 12);
	EXPECT_EQ(shmc_try_recv(c, &v, sizeof(v)), -EAGAIN);
	expect_u32(a, 10);
	expect_u32(a, 11);
	expect_u32(a, 12);
	expect_u32(b, 10);
	expect_u32(b, 11);
	expect_u32(b, 12);

	th_section("the slowest receiver gates reuse: -ENOBUFS until it reads");
	for (v = 0; v < RING; v++)
		send_u32(tx, 20 + v);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	for (v = 0; v < RING; v++) {
		expect_u32(a, 20 + v);
		expect_u32(b, 20 + v);
	}
	/* c has read nothing: still full for everyone. */
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_send(tx, &v, sizeof(v), 0, 20 * 1000000ll), -ETIMEDOUT);
	expect_u32(c, 20);
	send_u32(tx, 30);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	expect_u32(c, 21);
	expect_u32(c, 22);
	send_u32(tx, 31);
	send_u32(tx, 32);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);

	th_section("a slow receiver that detaches releases its hold");
	EXPECT_EQ(shmc_detach(c), 0);
	expect_u32(a, 30);
	expect_u32(b, 30);
	send_u32(tx, 40);
	expect_u32(a, 31);
	expect_u32(a, 32);
	expect_u32(a, 40);
	expect_u32(b, 31);
	expect_u32(b, 32);
	expect_u32(b, 40);
	for (v = 0; v < RING; v++)
		send_u32(tx, 50 + v);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	for (v = 0; v < RING; v++) {
		expect_u32(a, 50 + v);
		expect_u32(b, 50 + v);
	}
	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_detach(b), 0);

	th_section("a sender that is itself the slowest receiver is not taken for dead");
	{
		int both = shmc_attach_key(key, SHMC_BOTH);
		int other;

		REQUIRE_GT(both, 0);
		for (v = 0; v < RING; v++)
			send_u32(both, 60 + v);
		/* Its own unread messages hold the ring, now and after the
		 * library's liveness probe interval. */
		EXPECT_EQ(shmc_try_send(both, &v, sizeof(v), 0), -ENOBUFS);
		th_sleep_ms(50);
		EXPECT_EQ(shmc_try_send(both, &v, sizeof(v), 0), -ENOBUFS);
		EXPECT_EQ(shmc_send(both, &v, sizeof(v), 0, 50 * 1000000ll), -ETIMEDOUT);
		for (v = 0; v < RING; v++)
			expect_u32(both, 60 + v);
		EXPECT_EQ(shmc_try_recv(both, &v, sizeof(v)), -EAGAIN);
		/* Still a member: it receives, and the channel is not full of ghosts. */
		send_u32(tx, 70);
		expect_u32(both, 70);
		other = shmc_attach_key(key, SHMC_RECV);
		EXPECT_GT(other, 0);
		if (other > 0)
			EXPECT_EQ(shmc_detach(other), 0);
		EXPECT_EQ(shmc_detach(both), 0);
	}

	th_section("receivers in 3 processes: %d messages each, same order", REMOTE_N);
	{
		struct remote *r = th_shared_alloc(3 * sizeof(*r));
		pid_t pids[3];

		for (int i = 0; i < 3; i++) {
			r[i].key = key;
			pids[i] = th_fork(remote_receiver, &r[i]);
		}
		for (int i = 0; i < 3; i++)
			EXPECT_EQ(th_await_u32(&r[i].attached, 1, 10000), 0);
		for (v = 0; v < REMOTE_N; v++)
			EXPECT_EQ(shmc_send(tx, &v, sizeof(v), 0, 20 * 1000000000ll), sizeof(v));
		for (int i = 0; i < 3; i++)
			EXPECT_CHILD_OK(pids[i], 30000);
		for (int i = 0; i < 3; i++) {
			EXPECT_EQ(r[i].count, REMOTE_N);
			EXPECT_EQ_U64(r[i].hash, r[0].hash);
		}
	}

	th_section("after all receivers left, sends succeed again with nobody to read");
	for (v = 0; v < 3 * RING; v++)
		send_u32(tx, v);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
