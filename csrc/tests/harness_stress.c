/* SPDX-License-Identifier: MIT */
/*
 * harness_stress.c - the stress driver of the C tests (th_stress_run): forked
 * producers and consumers exchange self-checking messages. See harness.h.
 */
#include "harness.h"

#include <sched.h>
#include <sys/mman.h>

/* ---- stress driver ---------------------------------------------------------------- */

#define STRESS_MAX_PROCS 8
#define STRESS_DEADLINE_MS 90000

struct stress {
	uint64_t key;
	uint32_t delivery, max_msg;
	unsigned producers, consumers, msgs;
	atomic_uint ready;            /* consumers attached */
	atomic_uint received;         /* messages taken, all consumers */
	atomic_uint producers_done;
	uint64_t order_hash[STRESS_MAX_PROCS];
	uint32_t count[STRESS_MAX_PROCS];
	uint32_t torn[STRESS_MAX_PROCS];
	uint32_t disorder[STRESS_MAX_PROCS];
	uint32_t bad_ids[STRESS_MAX_PROCS];
	/* seen[(c * producers + p) * msgs + seq]: times consumer c got it */
	unsigned char seen[];
};

struct stress_arg {
	struct stress *s;
	unsigned index;
};

static int stress_producer(void *p)
{
	struct stress_arg *a = p;
	struct stress *s = a->s;
	uint64_t deadline = th_now_ns() + STRESS_DEADLINE_MS * 1000000ull;
	unsigned char *buf = malloc(s->max_msg);
	int h;

	REQUIRE(buf != NULL);
	h = shmc_attach_key(s->key, SHMC_SEND);
	REQUIRE_GT(h, 0);
	/* Every consumer must be attached first (broadcast late joiners miss). */
	REQUIRE_EQ(th_await_u32(&s->ready, s->consumers, 30000), 0);
	for (uint32_t seq = 0; seq < s->msgs; seq++) {
		uint32_t len = th_msg_len(s->max_msg, a->index, seq);
		int r;

		th_msg_build(buf, len, a->index, seq);
		for (;;) {
			/* Producer 0 polls with the try variant; the others block. */
			if (a->index == 0) {
				r = shmc_try_send(h, buf, len, 0);
				if (r == -ENOBUFS)
					sched_yield();
			} else {
				r = shmc_send(h, buf, len, 0, 200 * 1000000ll);
			}
			if (r != -ENOBUFS && r != -ETIMEDOUT)
				break;
			if (th_now_ns() > deadline) {
				th_fail_at(__FILE__, __LINE__,
					   "producer %u stuck at seq %u", a->index, seq);
				exit(TH_FAIL);
			}
		}
		if (r != (int)len) {
			th_fail_at(__FILE__, __LINE__, "producer %u seq %u: send returned %d (%s)",
				   a->index, seq, r, th_errname(r));
			exit(TH_FAIL);
		}
	}
	atomic_fetch_add(&s->producers_done, 1);
	EXPECT_EQ(shmc_detach(h), 0);
	free(buf);
	return 0;
}

static int stress_consumer(void *p)
{
	struct stress_arg *a = p;
	struct stress *s = a->s;
	unsigned c = a->index;
	uint64_t deadline = th_now_ns() + STRESS_DEADLINE_MS * 1000000ull;
	uint64_t total = (uint64_t)s->producers * s->msgs;
	int64_t last[STRESS_MAX_PROCS];
	unsigned char *buf = malloc(s->max_msg);
	uint64_t hash = 1469598103934665603ull;
	uint32_t mine = 0, attempts = 0;
	int h, idle = 0;

	REQUIRE(buf != NULL);
	for (unsigned i = 0; i < STRESS_MAX_PROCS; i++)
		last[i] = -1;
	h = shmc_attach_key(s->key, SHMC_RECV);
	REQUIRE_GT(h, 0);
	atomic_fetch_add(&s->ready, 1);
	for (;;) {
		uint32_t prod, seq;
		int r;

		/* Mostly blocking receives; every 8th is the try variant (by
		 * attempts, not by messages: with nothing left to receive the
		 * blocking ones must come, their timeouts end the loop). */
		if ((++attempts & 7) == 7)
			r = shmc_try_recv(h, buf, s->max_msg);
		else
			r = shmc_recv(h, buf, s->max_msg, 100 * 1000000ll);
		if (r == -EAGAIN || r == -ETIMEDOUT) {
			if (s->delivery != SHMC_BROADCAST && atomic_load(&s->received) >= total)
				break;
			/* All sent and nothing came for a while: what is missing is lost. */
			if (r == -ETIMEDOUT && atomic_load(&s->producers_done) == s->producers) {
				if (++idle >= 10)
					break;
				continue;
			}
			if (th_now_ns() > deadline) {
				th_fail_at(__FILE__, __LINE__,
					   "consumer %u: gave up after %u messages", c, mine);
				break;
			}
			continue;
		}
		if (r < 0) {
			th_fail_at(__FILE__, __LINE__, "consumer %u: recv returned %d (%s)", c, r,
				   th_errname(r));
			break;
		}
		if (th_msg_verify(buf, (uint32_t)r, &prod, &seq) < 0) {
			s->torn[c]++;
		} else if (prod >= s->producers || seq >= s->msgs) {
			s->bad_ids[c]++;
		} else {
			/* Per-producer order; broadcast must also be gap-free. */
			if ((int64_t)seq <= last[prod] ||
			    (s->delivery == SHMC_BROADCAST && (int64_t)seq != last[prod] + 1))
				s->disorder[c]++;
			last[prod] = seq;
			s->seen[((size_t)c * s->producers + prod) * s->msgs + seq]++;
			hash = (hash ^ (((uint64_t)prod << 32) | seq)) * 1099511628211ull;
		}
		mine++;
		if (s->delivery == SHMC_BROADCAST) {
			if (mine == total)
				break;
		} else if (atomic_fetch_add(&s->received, 1) + 1 >= total) {
			break;
		}
	}
	s->count[c] = mine;
	s->order_hash[c] = hash;
	EXPECT_EQ(shmc_detach(h), 0);
	free(buf);
	return 0;
}

int th_stress_run(uint32_t delivery, unsigned producers, unsigned consumers,
		  unsigned msgs, uint32_t ring_entries, uint32_t max_msg)
{
	int before = atomic_load(&th_failures);
	size_t seen_bytes = (size_t)consumers * producers * msgs;
	size_t size = sizeof(struct stress) + seen_bytes;
	struct stress *s;
	struct stress_arg pa[STRESS_MAX_PROCS], ca[STRESS_MAX_PROCS];
	pid_t pp[STRESS_MAX_PROCS], cp[STRESS_MAX_PROCS];
	int owner;

	REQUIRE(producers <= STRESS_MAX_PROCS && consumers <= STRESS_MAX_PROCS);
	REQUIRE(max_msg >= TH_MSG_HDR && max_msg <= 65536);
	s = th_shared_alloc(size);
	s->key = th_key();
	s->delivery = delivery;
	s->max_msg = max_msg;
	s->producers = producers;
	s->consumers = consumers;
	s->msgs = msgs;
	owner = shmc_create(s->key, delivery, ring_entries, max_msg, 0600, 0);
	REQUIRE_GT(owner, 0);
	th_section("%u producers x %u consumers x %u messages, ring %u, up to %u bytes",
		   producers, consumers, msgs, ring_entries, max_msg);

	for (unsigned c = 0; c < consumers; c++) {
		ca[c].s = s;
		ca[c].index = c;
		cp[c] = th_fork(stress_consumer, &ca[c]);
	}
	for (unsigned p = 0; p < producers; p++) {
		pa[p].s = s;
		pa[p].index = p;
		pp[p] = th_fork(stress_producer, &pa[p]);
	}
	for (unsigned p = 0; p < producers; p++)
		EXPECT_CHILD_OK(pp[p], STRESS_DEADLINE_MS + 5000);
	for (unsigned c = 0; c < consumers; c++)
		EXPECT_CHILD_OK(cp[c], STRESS_DEADLINE_MS + 5000);

	th_section("verify: no torn message, no unknown id, per-producer order");
	for (unsigned c = 0; c < consumers; c++) {
		printf("consumer %u received %u messages\n", c, s->count[c]);
		EXPECT_EQ(s->torn[c], 0);
		EXPECT_EQ(s->bad_ids[c], 0);
		EXPECT_EQ(s->disorder[c], 0);
	}
	if (delivery == SHMC_BROADCAST) {
		th_section("verify: every consumer got every message once, same order");
		for (unsigned c = 0; c < consumers; c++) {
			size_t missing = 0, dup = 0;

			for (size_t i = 0; i < (size_t)producers * msgs; i++) {
				unsigned char n = s->seen[(size_t)c * producers * msgs + i];

				missing += n == 0;
				dup += n > 1;
			}
			EXPECT_EQ(missing, 0);
			EXPECT_EQ(dup, 0);
			EXPECT_EQ(s->count[c], (uint64_t)producers * msgs);
			if (c > 0)
				EXPECT_EQ_U64(s->order_hash[c], s->order_hash[0]);
		}
	} else {
		size_t missing = 0, dup = 0;

		th_section("verify: every message received exactly once over all consumers");
		for (size_t i = 0; i < (size_t)producers * msgs; i++) {
			unsigned n = 0;

			for (unsigned c = 0; c < consumers; c++)
				n += s->seen[(size_t)c * producers * msgs + i];
			missing += n == 0;
			dup += n > 1;
		}
		EXPECT_EQ(missing, 0);
		EXPECT_EQ(dup, 0);
		for (unsigned c = 0; c < consumers; c++)
			if (s->count[c] == 0)
				printf("note: consumer %u received nothing\n", c);
	}
	EXPECT_EQ(shmc_destroy(owner), 0);
	munmap(s, size);
	return atomic_load(&th_failures) - before;
}
