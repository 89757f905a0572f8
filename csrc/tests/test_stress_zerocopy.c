/* SPDX-License-Identifier: MIT */
/*
 * test_stress_zerocopy - loans and views under concurrency, every delivery
 * mode: producer processes alternate loans (committed, and now and then
 * aborted) with copying sends, consumer processes alternate views with
 * copying receives, blocking and non-blocking; every message carries a
 * checksum over its whole length (th_msg_build). Checks: no torn message,
 * per-producer order, unicast/multicast each committed message exactly once
 * and broadcast every message at every receiver, no aborted loan ever
 * delivered, skipped counts the aborts.
 */
#include "harness.h"

#include <sched.h>
#include <unistd.h>

#define PRODUCERS 2u
#define CONSUMERS 2u
#define MSGS 4000u
#define MAXMSG 8192u

struct shared {
	uint64_t key;
	uint32_t delivery;
	atomic_uint ready, go, producers_done;
	atomic_uint aborted[PRODUCERS];
	atomic_uchar abort_mark[PRODUCERS][MSGS];
	atomic_uchar seen[CONSUMERS][PRODUCERS][MSGS];
	atomic_uint bad, order, received[CONSUMERS];
};
static struct shared *sh;

static int producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_OK(h);
	atomic_fetch_add(&sh->ready, 1);
	REQUIRE_EQ(th_await_u32(&sh->go, 1, 30000), 0);
	uint64_t rng = 0x9e37 + id;
	static uint8_t buf[MAXMSG];
	for (uint32_t seq = 0; seq < MSGS; seq++) {
		uint32_t len = th_msg_len(MAXMSG, id, seq);
		uint64_t how = th_below(&rng, 8);
		if (how == 0) {
			th_msg_build(buf, len, id, seq);
			REQUIRE_EQ(shmc_send(h, buf, len, 0, 10000000000ll), (int)len);
			continue;
		}
		void *p;
		int r = how & 1 ? shmc_loan(h, &p, 10000000000ll) : shmc_try_loan(h, &p);
		if (r == -ENOBUFS) {
			seq--;
			sched_yield();
			continue;
		}
		REQUIRE_EQ(r, (int)MAXMSG);
		th_msg_build(p, len, id, seq);
		if (how == 6) {
			/* An aborted loan: a message that must never arrive. */
			atomic_store(&sh->abort_mark[id][seq], 1);
			atomic_fetch_add(&sh->aborted[id], 1);
			REQUIRE_EQ(shmc_abort(h), 0);
			continue;
		}
		REQUIRE_EQ(shmc_commit(h, len, 0), (int)len);
	}
	atomic_fetch_add(&sh->producers_done, 1);
	shmc_detach(h);
	return 0;
}

static void take(uint32_t c, const void *p, int len, int64_t *last)
{
	uint32_t pr, s;
	if (th_msg_verify(p, (uint32_t)len, &pr, &s) < 0 || pr >= PRODUCERS || s >= MSGS) {
		atomic_fetch_add(&sh->bad, 1);
		return;
	}
	if ((int64_t)s <= last[pr])
		atomic_fetch_add(&sh->order, 1);
	last[pr] = s;
	atomic_fetch_add(&sh->seen[c][pr][s], 1);
	atomic_fetch_add(&sh->received[c], 1);
}

static int consumer(void *arg)
{
	uint32_t c = (uint32_t)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(h);
	atomic_fetch_add(&sh->ready, 1);
	REQUIRE_EQ(th_await_u32(&sh->go, 1, 30000), 0);
	int64_t last[PRODUCERS] = { -1, -1 };
	static uint8_t buf[MAXMSG];
	uint64_t rng = 0x51 + c;
	unsigned idle = 0;
	for (;;) {
		uint64_t how = th_below(&rng, 4);
		const void *v;
		int r;
		if (how == 0) {
			r = shmc_recv(h, buf, sizeof buf, 20000000);
			if (r >= 0)
				take(c, buf, r, last);
		} else {
			r = how == 1 ? shmc_try_recv_view(h, &v) : shmc_recv_view(h, &v, 20000000);
			if (r >= 0) {
				take(c, v, r, last);
				if (how == 3)
					sched_yield(); /* hold it a while */
				REQUIRE_EQ(shmc_release(h), 0);
			}
		}
		if (r >= 0) {
			idle = 0;
			continue;
		}
		REQUIRE_MSG(r == -EAGAIN || r == -ETIMEDOUT, "receive: %s", th_errname(r));
		if (atomic_load(&sh->producers_done) == PRODUCERS && ++idle > 20)
			break;
	}
	shmc_detach(h);
	return 0;
}

static void run(uint32_t d)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->delivery = d;
	int owner = shmc_create(sh->key, d, 16, MAXMSG, 0600, 0);
	REQUIRE_OK(owner);
	pid_t pids[PRODUCERS + CONSUMERS];
	for (uint32_t c = 0; c < CONSUMERS; c++)
		pids[PRODUCERS + c] = th_fork(consumer, (void *)(uintptr_t)c);
	REQUIRE_EQ(th_await_u32(&sh->ready, CONSUMERS, 10000), 0);
	for (uint32_t p = 0; p < PRODUCERS; p++)
		pids[p] = th_fork(producer, (void *)(uintptr_t)p);
	REQUIRE_EQ(th_await_u32(&sh->ready, CONSUMERS + PRODUCERS, 10000), 0);
	uint64_t t0 = th_now_ns();
	atomic_store(&sh->go, 1);
	for (uint32_t i = 0; i < PRODUCERS + CONSUMERS; i++)
		EXPECT_CHILD_OK(pids[i], 90000);
	double ms = th_ms(th_now_ns() - t0);
	unsigned missing = 0, dup = 0, aborted_seen = 0, aborts = 0;
	for (uint32_t p = 0; p < PRODUCERS; p++) {
		aborts += atomic_load(&sh->aborted[p]);
		for (uint32_t s = 0; s < MSGS; s++) {
			unsigned total = 0;
			for (uint32_t c = 0; c < CONSUMERS; c++) {
				unsigned n = atomic_load(&sh->seen[c][p][s]);
				total += n;
				if (d == SHMC_BROADCAST && !atomic_load(&sh->abort_mark[p][s]))
					missing += n == 0, dup += n > 1;
			}
			if (atomic_load(&sh->abort_mark[p][s]))
				aborted_seen += total;
			else if (d != SHMC_BROADCAST)
				missing += total == 0, dup += total > 1;
		}
	}
	const char *name = d == SHMC_UNICAST ? "unicast" : d == SHMC_BROADCAST ? "broadcast" : "multicast";
	CHECK_MSG(atomic_load(&sh->bad) == 0 && atomic_load(&sh->order) == 0,
		  "%s: %u torn or corrupt, %u out of order", name, atomic_load(&sh->bad),
		  atomic_load(&sh->order));
	CHECK_MSG(missing == 0 && dup == 0 && aborted_seen == 0,
		  "%s: missing %u, duplicated %u, aborted loans delivered %u", name, missing, dup,
		  aborted_seen);
	EXPECT_EQ_U64(th_info(owner, SHMC_INFO_SKIPPED), aborts);
	printf("  %s: %u producers x %u messages (up to %u B; %u loans aborted), %u consumers got "
	       "%u + %u in %.0f ms: missing %u, duplicated %u, corrupt %u\n",
	       name, PRODUCERS, MSGS, MAXMSG, aborts, CONSUMERS, atomic_load(&sh->received[0]),
	       atomic_load(&sh->received[1]), ms, missing, dup, atomic_load(&sh->bad));
	shmc_destroy(owner);
}

int main(void)
{
	th_init("test_stress_zerocopy", 0);
	sh = th_shared_alloc(sizeof *sh);
	th_section("loans and views with copying sends and receives, checksummed");
	run(SHMC_UNICAST);
	run(SHMC_MULTICAST);
	run(SHMC_BROADCAST);
	return th_finish();
}
