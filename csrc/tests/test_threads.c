/* SPDX-License-Identifier: MIT */
/*
 * test_threads - one process, many threads: several threads send on one
 * handle and several receive on one handle (unicast: each message once;
 * broadcast: two threads sharing one receiver handle together get each
 * message once, another handle gets all), while other threads attach,
 * query and detach handles of the same channel. Run it under TSan too.
 */
#include "harness.h"

#include <pthread.h>
#include <sched.h>

#define SENDERS 4
#define PER_SENDER 10000
#define TOTAL (SENDERS * PER_SENDER)

struct ctx {
	uint64_t key;
	int tx, rx, rx2;
	atomic_uint received;     /* by rx's threads */
	atomic_uint received2;    /* by rx2 (broadcast) */
	atomic_uint stop_churn;
	atomic_uint senders_done;
	atomic_uchar seen[TOTAL];
	atomic_uchar seen2[TOTAL];
	atomic_uint disorder;
};

struct targ {
	struct ctx *c;
	uint32_t index;
};

static void *sender(void *p)
{
	struct targ *a = p;

	for (uint32_t i = 0; i < PER_SENDER; i++) {
		uint32_t msg[2] = { a->index, i };
		int r = shmc_send(a->c->tx, msg, sizeof(msg), 0, 30 * 1000000000ll);

		if (r != (int)sizeof(msg)) {
			EXPECT_EQ(r, sizeof(msg));
			break;
		}
	}
	return NULL;
}

static void *receiver(void *p)
{
	struct targ *a = p;
	struct ctx *c = a->c;
	int h = a->index == 2 ? c->rx2 : c->rx;
	atomic_uint *count = a->index == 2 ? &c->received2 : &c->received;
	atomic_uchar *seen = a->index == 2 ? c->seen2 : c->seen;
	int64_t last[SENDERS];
	int idle = 0;

	for (int i = 0; i < SENDERS; i++)
		last[i] = -1;
	while (atomic_load(count) < TOTAL) {
		uint32_t msg[2];
		int r = shmc_recv(h, msg, sizeof(msg), 50 * 1000000ll);

		if (r == -ETIMEDOUT) {
			/* All sent and nothing more comes: the rest is lost. */
			if (atomic_load(&c->senders_done) && ++idle >= 20)
				break;
			continue;
		}
		if (r != (int)sizeof(msg) || msg[0] >= SENDERS || msg[1] >= PER_SENDER) {
			th_fail_at(__FILE__, __LINE__, "bad receive %d (%s)", r, th_errname(r));
			break;
		}
		/* Each thread sees each sender's messages in increasing order. */
		if ((int64_t)msg[1] <= last[msg[0]])
			atomic_fetch_add(&c->disorder, 1);
		last[msg[0]] = msg[1];
		atomic_fetch_add(&seen[msg[0] * PER_SENDER + msg[1]], 1);
		atomic_fetch_add(count, 1);
	}
	return NULL;
}

static void *churn(void *p)
{
	struct targ *a = p;
	uint64_t info[SHMC_INFO_COUNT];

	while (!atomic_load(&a->c->stop_churn)) {
		int h = shmc_attach_key(a->c->key, a->index % 2 ? SHMC_SEND : SHMC_BOTH);

		EXPECT_GT(h, 0);
		if (h <= 0)
			break;
		EXPECT_EQ(shmc_info(h, info), SHMC_INFO_COUNT);
		EXPECT_EQ(shmc_pending(a->c->rx) >= 0, 1);
		EXPECT_EQ(shmc_detach(h), 0);
		sched_yield();
	}
	return NULL;
}

static void run(uint32_t delivery)
{
	struct ctx *c = calloc(1, sizeof(*c));
	pthread_t st[SENDERS], rt[3], ct[2];
	struct targ sa[SENDERS], ra[3], ca[2];
	int ch, nrecv = delivery == SHMC_BROADCAST ? 3 : 2;
	unsigned missing = 0, dup = 0, disorder;

	REQUIRE(c != NULL);
	th_section("delivery %u: %d sender threads on one handle, 2 receiver threads on one handle%s",
		   delivery, SENDERS, delivery == SHMC_BROADCAST ? ", 1 on another" : "");
	c->key = th_key();
	ch = shmc_create(c->key, delivery, 64, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	c->tx = shmc_attach_key(c->key, SHMC_SEND);
	c->rx = shmc_attach_key(c->key, SHMC_RECV);
	c->rx2 = delivery == SHMC_BROADCAST ? shmc_attach_key(c->key, SHMC_RECV) : 0;
	REQUIRE_GT(c->tx, 0);
	REQUIRE_GT(c->rx, 0);
	for (int i = 0; i < 2; i++) {
		ca[i].c = c;
		ca[i].index = (uint32_t)i;
		REQUIRE_EQ(pthread_create(&ct[i], NULL, churn, &ca[i]), 0);
	}
	for (int i = 0; i < nrecv; i++) {
		ra[i].c = c;
		ra[i].index = (uint32_t)i;
		REQUIRE_EQ(pthread_create(&rt[i], NULL, receiver, &ra[i]), 0);
	}
	for (int i = 0; i < SENDERS; i++) {
		sa[i].c = c;
		sa[i].index = (uint32_t)i;
		REQUIRE_EQ(pthread_create(&st[i], NULL, sender, &sa[i]), 0);
	}
	for (int i = 0; i < SENDERS; i++)
		pthread_join(st[i], NULL);
	atomic_store(&c->senders_done, 1);
	for (int i = 0; i < nrecv; i++)
		pthread_join(rt[i], NULL);
	atomic_store(&c->stop_churn, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(ct[i], NULL);

	for (int i = 0; i < TOTAL; i++) {
		missing += atomic_load(&c->seen[i]) == 0;
		dup += atomic_load(&c->seen[i]) > 1;
		if (delivery == SHMC_BROADCAST) {
			missing += atomic_load(&c->seen2[i]) == 0;
			dup += atomic_load(&c->seen2[i]) > 1;
		}
	}
	disorder = atomic_load(&c->disorder);
	printf("  received %u (+%u), missing %u, duplicated %u, out of order %u\n",
	       atomic_load(&c->received), atomic_load(&c->received2), missing, dup, disorder);
	EXPECT_EQ(missing, 0);
	EXPECT_EQ(dup, 0);
	EXPECT_EQ(disorder, 0);
	EXPECT_EQ(shmc_detach(c->tx), 0);
	EXPECT_EQ(shmc_detach(c->rx), 0);
	if (c->rx2 > 0)
		EXPECT_EQ(shmc_detach(c->rx2), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	free(c);
}

int main(void)
{
	th_init("test_threads", 0);
	run(SHMC_UNICAST);
	run(SHMC_MULTICAST);
	run(SHMC_BROADCAST);
	return th_finish();
}
