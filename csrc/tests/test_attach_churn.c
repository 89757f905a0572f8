/* SPDX-License-Identifier: MIT */
/*
 * test_attach_churn - several processes attach and detach subscribers of one
 * channel over and over while messages flow. The channel never has more
 * than a handful of members, so no attach may fail (no -EUSERS from a slot
 * that is being released elsewhere), every live subscriber id is distinct,
 * and the traffic is unaffected.
 */
#include "harness.h"

#define PROCS 3
#define CYCLES 3000
#define MSGS 20000

struct shared {
	uint64_t key;
	atomic_uint ids[PROCS];     /* live subscriber id of each churner */
	atomic_uint failures;
	atomic_uint clashes;
	atomic_uint consumer_state; /* 1 attached, 2 failed to attach */
};

struct arg {
	struct shared *s;
	int index;
};

static int churner(void *p)
{
	struct arg *a = p;
	struct shared *s = a->s;
	uint64_t info[SHMC_INFO_COUNT];

	for (int i = 0; i < CYCLES; i++) {
		uint32_t access = (uint32_t)(i % 3) + 1;
		int h = shmc_attach_key(s->key, access);

		if (h <= 0) {
			if (atomic_fetch_add(&s->failures, 1) < 5)
				th_fail_at(__FILE__, __LINE__, "churner %d cycle %d: attach %d (%s)",
					   a->index, i, h, th_errname(h));
			continue;
		}
		if (shmc_info(h, info) == SHMC_INFO_COUNT) {
			uint32_t id = (uint32_t)info[SHMC_INFO_MEMBER_ID];

			atomic_store(&s->ids[a->index], id);
			for (int k = 0; k < PROCS; k++)
				if (k != a->index && atomic_load(&s->ids[k]) == id)
					atomic_fetch_add(&s->clashes, 1);
		}
		atomic_store(&s->ids[a->index], 0);
		EXPECT_EQ(shmc_detach(h), 0);
	}
	return 0;
}

static int consumer(void *p)
{
	struct shared *s = p;
	int rx = shmc_attach_key(s->key, SHMC_RECV);
	uint32_t next = 0;

	atomic_store(&s->consumer_state, rx > 0 ? 1 : 2);
	REQUIRE_GT(rx, 0);
	while (next < MSGS) {
		uint32_t v;
		int r = shmc_recv(rx, &v, sizeof(v), 20 * 1000000000ll);

		if (r != (int)sizeof(v) || v != next) {
			th_fail_at(__FILE__, __LINE__, "consumer: got %d (%s) value %u, want %u", r,
				   th_errname(r), v, next);
			break;
		}
		next++;
	}
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

static void run(uint32_t delivery)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	struct arg args[PROCS];
	pid_t pids[PROCS], cpid;
	unsigned failures, clashes;
	int ch, tx;

	th_section("delivery %u: %d processes x %d attach/detach cycles, %d messages flowing",
		   delivery, PROCS, CYCLES, MSGS);
	s->key = th_key();
	ch = shmc_create(s->key, delivery, 64, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(s->key, SHMC_SEND);
	REQUIRE_GT(tx, 0);
	cpid = th_fork(consumer, s);
	for (int i = 0; i < PROCS; i++) {
		args[i].s = s;
		args[i].index = i;
		pids[i] = th_fork(churner, &args[i]);
	}
	/* The churners never receive, so the consumer gets every message. */
	EXPECT_EQ(th_await_u32(&s->consumer_state, 1, 10000), 0);
	for (uint32_t v = 0; v < MSGS && atomic_load(&s->consumer_state) == 1; v++) {
		int r = shmc_send(tx, &v, sizeof(v), 0, 20 * 1000000000ll);

		if (r != (int)sizeof(v)) {
			EXPECT_EQ(r, sizeof(v));
			break;
		}
	}
	for (int i = 0; i < PROCS; i++)
		EXPECT_CHILD_OK(pids[i], 60000);
	EXPECT_CHILD_OK(cpid, 60000);
	failures = atomic_load(&s->failures);
	clashes = atomic_load(&s->clashes);
	printf("  failed attaches %u, id clashes %u\n", failures, clashes);
	EXPECT_EQ(failures, 0);
	EXPECT_EQ(clashes, 0);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_attach_churn", 0);
	run(SHMC_UNICAST);
	run(SHMC_BROADCAST);
	run(SHMC_MULTICAST);
	return th_finish();
}
