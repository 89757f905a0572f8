/* SPDX-License-Identifier: MIT */
/*
 * test_unicast_order - unicast is a queue: each message is received once,
 * in the order sent; per-sender order holds with several senders in several
 * processes; with several receivers whichever asks first takes the next
 * message; two parked receivers in two processes are each woken by one of
 * two sends (no lost wakeup).
 */
#include "harness.h"

#include <unistd.h>

#define N 1000

struct sender_arg {
	uint64_t key;
	uint32_t tag;
};

static int sender(void *p)
{
	struct sender_arg *a = p;
	int h = shmc_attach_key(a->key, SHMC_SEND);

	REQUIRE_GT(h, 0);
	for (uint32_t i = 0; i < N; i++) {
		uint32_t msg[2] = { a->tag, i };

		REQUIRE_EQ(shmc_send(h, msg, sizeof(msg), 0, 20 * 1000000000ll), sizeof(msg));
	}
	EXPECT_EQ(shmc_detach(h), 0);
	return 0;
}

struct waiter {
	uint64_t key;
	atomic_uint attached;
	uint32_t got[2];
};

struct waiter_arg {
	struct waiter *w;
	int index;
};

static int waiter(void *p)
{
	struct waiter_arg *a = p;
	uint32_t v = 0;
	int h = shmc_attach_key(a->w->key, SHMC_RECV);

	REQUIRE_GT(h, 0);
	atomic_fetch_add(&a->w->attached, 1);
	EXPECT_EQ(shmc_recv(h, &v, sizeof(v), 20 * 1000000000ll), sizeof(v));
	a->w->got[a->index] = v;
	EXPECT_EQ(shmc_detach(h), 0);
	return 0;
}

int main(void)
{
	uint64_t key = th_key();
	int ch, rx, rx2, tx;
	uint32_t v;

	th_init("test_unicast_order", 0);

	th_section("one sender, one receiver: %d messages through a ring of 16, in order", N);
	ch = shmc_create(key, SHMC_UNICAST, 16, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);
	{
		uint32_t next_send = 0, next_recv = 0;

		while (next_recv < N) {
			/* Send a burst of 1..16, then drain a burst of 1..16. */
			uint32_t burst = 1 + (next_send * 7) % 16;

			for (uint32_t i = 0; i < burst && next_send < N; i++) {
				int r = shmc_try_send(tx, &next_send, sizeof(next_send), 0);

				if (r == -ENOBUFS)
					break;
				EXPECT_EQ(r, sizeof(next_send));
				next_send++;
			}
			burst = 1 + (next_recv * 5) % 16;
			for (uint32_t i = 0; i < burst; i++) {
				int r = shmc_try_recv(rx, &v, sizeof(v));

				if (r == -EAGAIN)
					break;
				EXPECT_EQ(r, sizeof(v));
				if (v != next_recv) {
					EXPECT_EQ(v, next_recv);
					break;
				}
				next_recv++;
			}
			if (atomic_load(&th_failures))
				break;
		}
		EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);
	}

	th_section("two receivers: whichever asks first takes the next message");
	rx2 = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(rx2, 0);
	for (v = 0; v < 6; v++)
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	for (uint32_t i = 0; i < 6; i++) {
		uint32_t got = UINT32_MAX;

		EXPECT_EQ(shmc_try_recv((i % 3) ? rx : rx2, &got, sizeof(got)), sizeof(got));
		EXPECT_EQ(got, i);
	}
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_try_recv(rx2, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_detach(rx2), 0);

	th_section("the owner handle sends into the same queue");
	v = 42;
	EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), 0), sizeof(v));
	v = 0;
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 42);

	th_section("three sender processes x %d: per-sender order, nothing lost or duplicated", N);
	{
		struct sender_arg args[3];
		pid_t pids[3];
		uint32_t next[3] = { 0, 0, 0 };
		uint32_t total = 0;

		for (int i = 0; i < 3; i++) {
			args[i].key = key;
			args[i].tag = (uint32_t)i;
			pids[i] = th_fork(sender, &args[i]);
		}
		while (total < 3 * N) {
			uint32_t msg[2];
			int r = shmc_recv(rx, msg, sizeof(msg), 20 * 1000000000ll);

			if (r != (int)sizeof(msg)) {
				EXPECT_EQ(r, sizeof(msg));
				break;
			}
			if (msg[0] >= 3 || msg[1] != next[msg[0]]) {
				th_fail_at(__FILE__, __LINE__, "sender %u: got seq %u, expected %u",
					   msg[0], msg[1], msg[0] < 3 ? next[msg[0]] : 0);
				break;
			}
			next[msg[0]]++;
			total++;
		}
		for (int i = 0; i < 3; i++)
			EXPECT_CHILD_OK(pids[i], 30000);
		EXPECT_EQ(total, 3 * N);
		EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);
	}

	th_section("two parked receivers in two processes, two sends: each gets one");
	{
		struct waiter *w = th_shared_alloc(sizeof(*w));
		struct waiter_arg wa[2];
		pid_t pids[2];

		w->key = key;
		for (int i = 0; i < 2; i++) {
			wa[i].w = w;
			wa[i].index = i;
			pids[i] = th_fork(waiter, &wa[i]);
		}
		EXPECT_EQ(th_await_u32(&w->attached, 2, 10000), 0);
		for (int i = 0; i < 2; i++)
			if (th_wait_futex_blocked(pids[i], 5000) < 0)
				printf("  note: receiver %d not seen in a futex wait\n", i);
		v = 100;
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
		v = 200;
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
		for (int i = 0; i < 2; i++)
			EXPECT_CHILD_OK(pids[i], 30000);
		CHECK((w->got[0] == 100 && w->got[1] == 200) ||
		      (w->got[0] == 200 && w->got[1] == 100));
	}

	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
