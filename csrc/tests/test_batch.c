/* SPDX-License-Identifier: MIT */
/*
 * test_batch - shmc_try_send_many / shmc_try_recv_many: messages packed back
 * to back with their lengths; a batch stops at the first message that cannot
 * be sent (ring full, too long) and reports the count, or that message's
 * error when none went; receiving stops while less than max_message_size of
 * the buffer remains (nothing truncated), at @max_count, or when empty;
 * targeting, access and stale handles as for the single calls; order holds
 * across processes.
 */
#include "harness.h"

#include <sched.h>

#define MAX 8u

struct shared {
	uint64_t key;
	atomic_uint attached;
};

#define XN 5000

static int batch_receiver(void *p)
{
	struct shared *s = p;
	uint32_t next = 0, lens[16];
	unsigned char buf[16 * MAX];
	uint64_t deadline = th_now_ns() + 60 * 1000000000ull;
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(rx, 0);
	atomic_store(&s->attached, 1);
	while (next < XN && th_now_ns() < deadline) {
		int n = shmc_try_recv_many(rx, buf, sizeof(buf), lens, 16);
		uint32_t off = 0;

		if (n == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (n <= 0) {
			EXPECT_GT(n, 0);
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t v;

			if (lens[i] != sizeof(v)) {
				EXPECT_EQ(lens[i], sizeof(v));
				return 0;
			}
			memcpy(&v, buf + off, sizeof(v));
			off += lens[i];
			if (v != next) {
				EXPECT_EQ(v, next);
				return 0;
			}
			next++;
		}
	}
	EXPECT_EQ(next, XN);
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

int main(void)
{
	static const uint32_t lens_in[] = { 3, 0, 5, 8, 1 };
	unsigned char in[32], out[64];
	uint32_t lens[16], off;
	uint64_t key = th_key(), info[SHMC_INFO_COUNT];
	int ch, tx, rx, rx2, n;

	th_init("test_batch", 0);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 1);
	ch = shmc_create(key, SHMC_UNICAST, 8, MAX, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);

	th_section("send 5 messages (lengths 3,0,5,8,1) in one call, receive them one by one");
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), 5);
	off = 0;
	for (int i = 0; i < 5; i++) {
		memset(out, 0, sizeof(out));
		EXPECT_EQ(shmc_try_recv(rx, out, sizeof(out)), lens_in[i]);
		EXPECT_MEMEQ(out, in + off, lens_in[i]);
		off += lens_in[i];
	}
	EXPECT_EQ(shmc_try_recv(rx, out, sizeof(out)), -EAGAIN);

	th_section("receive many: packed back to back, lengths reported");
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), 5);
	memset(out, 0, sizeof(out));
	n = shmc_try_recv_many(rx, out, sizeof(out), lens, 16);
	EXPECT_EQ(n, 5);
	for (int i = 0; i < n && i < 5; i++)
		EXPECT_EQ(lens[i], lens_in[i]);
	EXPECT_MEMEQ(out, in, 17);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 16), -EAGAIN);

	th_section("receive many stops while less than max_message_size remains");
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), 5);
	/* cap 16: 3 (13 left), 0 (13), 5 (8), 8 (0 left < 8): four, then stop. */
	n = shmc_try_recv_many(rx, out, 16, lens, 16);
	EXPECT_EQ(n, 4);
	n = shmc_try_recv_many(rx, out, MAX, lens, 16);
	EXPECT_EQ(n, 1);
	EXPECT_EQ(lens[0], 1);
	EXPECT_EQ(out[0], in[16]);

	th_section("receive many: @max_count, cap below max -> -EINVAL");
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), 5);
	EXPECT_EQ(shmc_try_recv_many(rx, out, MAX - 1, lens, 16), -EINVAL);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 2), 2);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 1), 1);
	EXPECT_EQ(lens[0], 5);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 16), 2);

	th_section("send many stops at a full ring, then reports -ENOBUFS");
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), 5);
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), 3);
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 16), 8);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 16), -EAGAIN);

	th_section("send many stops before a message that is too long");
	{
		static const uint32_t bad[] = { 2, 3, MAX + 1, 1 };

		EXPECT_EQ(shmc_try_send_many(tx, in, bad, 4, 0), 2);
		EXPECT_EQ(shmc_try_send_many(tx, in, bad + 2, 2, 0), -EMSGSIZE);
		EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 16), 2);
	}

	th_section("access, stale handles, targets");
	EXPECT_EQ(shmc_try_send_many(rx, in, lens_in, 5, 0), -EACCES);
	EXPECT_EQ(shmc_try_recv_many(tx, out, sizeof(out), lens, 16), -EACCES);
	EXPECT_EQ(shmc_try_recv_many(ch, out, sizeof(out), lens, 16), -EACCES);
	EXPECT_EQ(shmc_info(tx, info), SHMC_INFO_COUNT);
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, (uint32_t)info[SHMC_INFO_MEMBER_ID]),
		  -ENOENT);
	EXPECT_EQ(shmc_try_send_many(tx, in, lens_in, 5, 9999), -ENOENT);
	rx2 = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(rx2, 0);
	EXPECT_EQ(shmc_info(rx2, info), SHMC_INFO_COUNT);
	EXPECT_EQ(shmc_try_send_many(ch, in, lens_in, 5, (uint32_t)info[SHMC_INFO_MEMBER_ID]), 5);
	EXPECT_EQ(shmc_try_recv_many(rx, out, sizeof(out), lens, 16), -EAGAIN);
	EXPECT_EQ(shmc_try_recv_many(rx2, out, sizeof(out), lens, 16), 5);
	EXPECT_EQ(shmc_detach(rx2), 0);
	EXPECT_EQ(shmc_try_send_many(rx2, in, lens_in, 5, 0), -ENOENT);
	EXPECT_EQ(shmc_try_recv_many(rx2, out, sizeof(out), lens, 16), -ENOENT);

	th_section("broadcast: every receiver gets the whole batch");
	{
		uint64_t bkey = th_key();
		int bch = shmc_create(bkey, SHMC_BROADCAST, 8, MAX, 0600, 0);
		int a = shmc_attach_key(bkey, SHMC_RECV), b = shmc_attach_key(bkey, SHMC_RECV);

		REQUIRE_GT(bch, 0);
		REQUIRE_GT(a, 0);
		REQUIRE_GT(b, 0);
		EXPECT_EQ(shmc_try_send_many(bch, in, lens_in, 5, 0), 5);
		EXPECT_EQ(shmc_try_recv_many(a, out, sizeof(out), lens, 16), 5);
		EXPECT_MEMEQ(out, in, 17);
		memset(out, 0, sizeof(out));
		EXPECT_EQ(shmc_try_recv_many(b, out, sizeof(out), lens, 16), 5);
		EXPECT_MEMEQ(out, in, 17);
		EXPECT_EQ(shmc_detach(a), 0);
		EXPECT_EQ(shmc_detach(b), 0);
		EXPECT_EQ(shmc_destroy(bch), 0);
	}

	th_section("across processes: %d messages in batches, in order", XN);
	{
		struct shared *s = th_shared_alloc(sizeof(*s));
		uint32_t vals[16], vl[16];
		uint32_t next = 0;
		pid_t pid;

		EXPECT_EQ(shmc_detach(rx), 0); /* the child is the only receiver */
		s->key = key;
		pid = th_fork(batch_receiver, s);
		EXPECT_EQ(th_await_u32(&s->attached, 1, 10000), 0);
		for (int i = 0; i < 16; i++)
			vl[i] = sizeof(uint32_t);
		uint64_t deadline = th_now_ns() + 60 * 1000000000ull;

		while (next < XN && th_now_ns() < deadline) {
			uint32_t k = XN - next < 16 ? XN - next : 1 + next % 16;

			for (uint32_t i = 0; i < k; i++)
				vals[i] = next + i;
			n = shmc_try_send_many(tx, vals, vl, k, 0);
			if (n == -ENOBUFS) {
				sched_yield();
				continue;
			}
			if (n <= 0) {
				EXPECT_GT(n, 0);
				break;
			}
			next += (uint32_t)n;
		}
		EXPECT_EQ(next, XN);
		EXPECT_CHILD_OK(pid, 70000);
	}
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
