/* SPDX-License-Identifier: MIT */
/*
 * test_try_recv_park - shmc_try_recv_park, an event loop's receive in one
 * call (shmchan.h, "event-loop integration"):
 *   - nothing to take: -EAGAIN and the handle is parked, so a send rings
 *     its receive doorbell; without a sealed doorbell, -ENOTCONN (as
 *     shmc_park: nothing could wake it);
 *   - a message there: it is taken and copied, and nothing is parked; a park
 *     already in place stays, or with SHMC_TAKE_UNPARK is withdrawn;
 *   - errors park nothing: unknown flags -EINVAL, a stale handle -ENOENT, a
 *     send-only handle -EACCES, no buffer -EFAULT;
 *   - receivers racing on one channel with it lose and duplicate nothing.
 * Parked counts are read from the channel's header (recv_parked).
 */
#include "harness.h"

#include <pthread.h>

/* The receiver's doorbell. */
static struct th_bell g_bell;

/* Publish @v at the tail by hand: a message whose wake has not come yet
 * (a sender between its publish and its wake check). */
static void publish_unannounced(struct th_map *m, uint32_t v)
{
	uint64_t t = atomic_load(th_tail(m));

	REQUIRE(th_seq(m, t) == SEQ(t, SLOT_FREE));
	REQUIRE(atomic_compare_exchange_strong(th_tail(m), &t, t + 1));
	th_hand_write(m, t, &v, sizeof(v), true);
}

static unsigned parked(struct th_map *m)
{
	return atomic_load(&m->ctl->recv_parked);
}

/* ---- receivers racing ---------------------------------------------------- */

#define RACE_MSGS 20000u

struct race {
	int tx;
	atomic_uint seen[RACE_MSGS];
	atomic_uint got, busy, parks;
};

struct racer {
	struct race *r;
	int rx;
};

static void *race_receiver(void *p)
{
	struct racer *me = p;
	struct race *r = me->r;
	uint32_t v;

	while (atomic_load(&r->got) < RACE_MSGS) {
		int n = shmc_try_recv_park(me->rx, &v, sizeof(v), SHMC_TAKE_UNPARK);

		if (n == sizeof(v)) {
			REQUIRE(v < RACE_MSGS);
			atomic_fetch_add(&r->seen[v], 1);
			atomic_fetch_add(&r->got, 1);
		} else if (n == -EBUSY) {
			atomic_fetch_add(&r->busy, 1);
		} else {
			REQUIRE_EQ(n, -EAGAIN);
			atomic_fetch_add(&r->parks, 1);
			/* Parked: a wait would sleep here; withdraw and go on. */
			EXPECT_EQ(shmc_unpark(me->rx, SHMC_WAIT_RECV), 0);
		}
	}
	return NULL;
}

static void racing(uint64_t key)
{
	static struct race r;
	struct racer a = { &r, 0 }, b = { &r, 0 };
	pthread_t ta, tb;
	unsigned once = 0;

	th_section("two receivers racing with it on one channel: each message exactly once");
	r.tx = shmc_attach_key(key, SHMC_SEND);
	a.rx = shmc_attach_key(key, SHMC_RECV);
	b.rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(r.tx, 0);
	REQUIRE_GT(a.rx, 0);
	REQUIRE_GT(b.rx, 0);
	struct th_bell ba, bb;
	REQUIRE_EQ(th_bell_open(&ba, a.rx, SHMC_WAIT_RECV, 4), 0);
	REQUIRE_EQ(th_bell_open(&bb, b.rx, SHMC_WAIT_RECV, 4), 0);
	REQUIRE_EQ(pthread_create(&ta, NULL, race_receiver, &a), 0);
	REQUIRE_EQ(pthread_create(&tb, NULL, race_receiver, &b), 0);
	for (uint32_t i = 0; i < RACE_MSGS; i++)
		REQUIRE_EQ(shmc_send(r.tx, &i, sizeof(i), 0, 5000000000ll), sizeof(i));
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	for (uint32_t i = 0; i < RACE_MSGS; i++)
		once += atomic_load(&r.seen[i]) == 1;
	printf("  %u of %u received exactly once; %u parks, %u -EBUSY\n", once, RACE_MSGS,
	       atomic_load(&r.parks), atomic_load(&r.busy));
	EXPECT_EQ(once, RACE_MSGS);
	EXPECT_EQ(shmc_detach(r.tx), 0);
	EXPECT_EQ(shmc_detach(a.rx), 0);
	EXPECT_EQ(shmc_detach(b.rx), 0);
	th_bell_close(&ba);
	th_bell_close(&bb);
}

int main(void)
{
	uint64_t key = th_key(), info[SHMC_INFO_COUNT];
	struct th_map m;
	uint32_t v = 0;
	int ch, rx, tx;

	th_init("test_try_recv_park", 0);
	ch = shmc_create(key, SHMC_UNICAST, 8, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	rx = shmc_attach_key(key, SHMC_RECV);
	tx = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_GT(rx, 0);
	REQUIRE_GT(tx, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	REQUIRE_EQ(th_map_channel((int32_t)info[SHMC_INFO_CHANNEL_ID], key, &m), 0);

	th_section("errors park nothing");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 2), -EINVAL);
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), ~0u), -EINVAL);
	EXPECT_EQ(shmc_try_recv_park(0, &v, sizeof(v), 0), -ENOENT);
	{
		int gone = shmc_attach_key(key, SHMC_RECV);

		REQUIRE_GT(gone, 0);
		EXPECT_EQ(shmc_detach(gone), 0);
		EXPECT_EQ(shmc_try_recv_park(gone, &v, sizeof(v), 0), -ENOENT);
	}
	EXPECT_EQ(shmc_try_recv_park(tx, &v, sizeof(v), 0), -EACCES);
	EXPECT_EQ(shmc_try_recv_park(rx, NULL, sizeof(v), 0), -EFAULT);
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -ENOTCONN); /* no doorbell yet */
	EXPECT_EQ(parked(&m), 0);
	REQUIRE_EQ(th_bell_open(&g_bell, rx, SHMC_WAIT_RECV, 4), 0);

	th_section("nothing to take: -EAGAIN, parked; a send rings the doorbell");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -EAGAIN);
	EXPECT_EQ(parked(&m), 1);
	v = 7;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_GT(th_bell_wait(&g_bell, 10000), 0);
	EXPECT_EQ(parked(&m), 0); /* the wake cleared it */
	v = 0;
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), SHMC_TAKE_UNPARK), sizeof(v));
	EXPECT_EQ(v, 7);

	th_section("a message there: taken and copied, nothing parked, no ring on the next send");
	v = 8;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	v = 0;
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(v, 8);
	EXPECT_EQ(parked(&m), 0);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(th_bell_wait(&g_bell, 100), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));

	th_section("a message whose wake has not come, a park in place: it stays without the flag");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -EAGAIN);
	publish_unannounced(&m, 9);
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(v, 9);
	EXPECT_EQ(parked(&m), 1);
	EXPECT_EQ(shmc_unpark(rx, SHMC_WAIT_RECV), 0);
	EXPECT_EQ(parked(&m), 0);

	th_section("... and SHMC_TAKE_UNPARK withdraws it with the take");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -EAGAIN);
	publish_unannounced(&m, 10);
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), SHMC_TAKE_UNPARK), sizeof(v));
	EXPECT_EQ(v, 10);
	EXPECT_EQ(parked(&m), 0);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(th_bell_wait(&g_bell, 100), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));

	th_unmap(&m);
	racing(key);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	th_bell_close(&g_bell);
	return th_finish();
}
