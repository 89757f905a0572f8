/* SPDX-License-Identifier: MIT */
/*
 * test_multicast - competing consumers: each message goes to exactly one
 * receiver; wakeups rotate round-robin over parked receivers, so two
 * receivers blocked in two processes both get work.
 */
#include "harness.h"

#include <unistd.h>

#define ROUNDS 20

struct worker_shared {
	uint64_t key;
	atomic_uint attached;
	atomic_uint taken;            /* messages consumed by all workers */
	uint32_t got[2][ROUNDS + 2];  /* what each worker received, in order */
	uint32_t count[2];
};

struct worker_arg {
	struct worker_shared *s;
	int index;
};

static int worker(void *p)
{
	struct worker_arg *a = p;
	struct worker_shared *s = a->s;
	int h = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(h, 0);
	atomic_fetch_add(&s->attached, 1);
	for (;;) {
		uint32_t v;
		int r = shmc_recv(h, &v, sizeof(v), 30 * 1000000000ll);

		if (r != (int)sizeof(v)) {
			EXPECT_EQ(r, sizeof(v));
			break;
		}
		if (v == UINT32_MAX) /* stop */
			break;
		if (s->count[a->index] < ROUNDS)
			s->got[a->index][s->count[a->index]++] = v;
		atomic_fetch_add(&s->taken, 1);
	}
	EXPECT_EQ(shmc_detach(h), 0);
	return 0;
}

int main(void)
{
	uint64_t key = th_key();
	int ch, tx, r1, r2, r3;
	uint32_t v;

	th_init("test_multicast", 0);
	ch = shmc_create(key, SHMC_MULTICAST, 16, 32, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	r1 = shmc_attach_key(key, SHMC_RECV);
	r2 = shmc_attach_key(key, SHMC_RECV);
	r3 = shmc_attach_key(key, SHMC_BOTH);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(r1, 0);
	REQUIRE_GT(r2, 0);
	REQUIRE_GT(r3, 0);

	th_section("exactly once over 3 receivers taking turns (300 messages)");
	{
		unsigned char seen[300] = { 0 };
		int rx[3] = { r1, r2, r3 };
		uint32_t sent = 0, got = 0;

		while (got < 300) {
			while (sent < 300 && shmc_try_send(tx, &sent, sizeof(sent), 0) == sizeof(sent))
				sent++;
			for (int i = 0; i < 3; i++) {
				/* Uneven turns: receiver i takes up to i+1 messages. */
				for (int k = 0; k <= i; k++) {
					int n = shmc_try_recv(rx[i], &v, sizeof(v));

					if (n == -EAGAIN)
						break;
					EXPECT_EQ(n, sizeof(v));
					if (n != (int)sizeof(v) || v >= 300) {
						th_fail_at(__FILE__, __LINE__, "bad message %u", v);
						return th_finish();
					}
					seen[v]++;
					got++;
				}
			}
		}
		for (int i = 0; i < 300; i++)
			if (seen[i] != 1)
				th_fail_at(__FILE__, __LINE__, "message %d received %d times", i,
					   seen[i]);
		for (int i = 0; i < 3; i++)
			EXPECT_EQ(shmc_try_recv(rx[i], &v, sizeof(v)), -EAGAIN);
	}

	th_section("the sender itself, with receive access, competes too");
	v = 7;
	EXPECT_EQ(shmc_try_send(r3, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_recv(r1, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 7);
	EXPECT_EQ(shmc_try_recv(r3, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_detach(r1), 0);
	EXPECT_EQ(shmc_detach(r2), 0);
	EXPECT_EQ(shmc_detach(r3), 0);

	th_section("round-robin wakeups: 2 receivers parked in 2 processes, %d sends", ROUNDS);
	{
		struct worker_shared *s = th_shared_alloc(sizeof(*s));
		struct worker_arg wa[2];
		pid_t pids[2];
		unsigned char seen[ROUNDS] = { 0 };

		s->key = key;
		for (int i = 0; i < 2; i++) {
			wa[i].s = s;
			wa[i].index = i;
			pids[i] = th_fork(worker, &wa[i]);
		}
		REQUIRE_EQ(th_await_u32(&s->attached, 2, 10000), 0);
		for (uint32_t i = 0; i < ROUNDS; i++) {
			/* Send only when both are asleep in the kernel, so each message
			 * is taken by a woken receiver, not a spinning one. */
			for (int k = 0; k < 2; k++)
				if (th_wait_futex_blocked(pids[k], 5000) < 0)
					printf("  note: worker %d not seen in a futex wait\n", k);
			EXPECT_EQ(shmc_try_send(tx, &i, sizeof(i), 0), sizeof(i));
			EXPECT_EQ(th_await_u32(&s->taken, i + 1, 20000), 0);
		}
		for (int k = 0; k < 2; k++) {
			v = UINT32_MAX;
			EXPECT_EQ(shmc_send(tx, &v, sizeof(v), 0, 10 * 1000000000ll), sizeof(v));
		}
		for (int k = 0; k < 2; k++)
			EXPECT_CHILD_OK(pids[k], 30000);
		printf("  worker 0 got %u, worker 1 got %u\n", s->count[0], s->count[1]);
		EXPECT_EQ(s->count[0] + s->count[1], ROUNDS);
		EXPECT_GT(s->count[0], 0);
		EXPECT_GT(s->count[1], 0);
		for (int k = 0; k < 2; k++)
			for (uint32_t i = 0; i < s->count[k] && i < ROUNDS; i++)
				if (s->got[k][i] < ROUNDS)
					seen[s->got[k][i]]++;
		for (int i = 0; i < ROUNDS; i++)
			EXPECT_EQ(seen[i], 1);
	}

	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
