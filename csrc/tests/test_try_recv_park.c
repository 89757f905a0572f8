/* SPDX-License-Identifier: MIT */
/*
 * test_try_recv_park - shmc_try_recv_park, an event loop's receive in one
 * call (shmchan.h, "event-loop integration"):
 *   - nothing to take: -EAGAIN and the handle is parked, so a send rings
 *     this process's doorbell;
 *   - a message there: it is taken and copied, and nothing is parked; a park
 *     already in place stays, or with SHMC_TAKE_UNPARK is withdrawn;
 *   - errors park nothing: unknown flags -EINVAL, a stale handle -ENOENT, a
 *     send-only handle -EACCES, no buffer -EFAULT;
 *   - receivers racing on one channel with it lose and duplicate nothing.
 * Parked counts are read from the channel's header (recv_parked).
 */
#include "harness.h"

#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int g_lfd = -1, g_conn = -1;

/* Listen on "\0shmchan.test.<pid>.p" and make it this process's doorbell. */
static void doorbell_listen(void)
{
	struct sockaddr_un sa;
	char name[64];
	socklen_t alen;

	snprintf(name, sizeof(name), "shmchan.test.%d.p", (int)getpid());
	g_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	REQUIRE_GE(g_lfd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, strlen(name));
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	REQUIRE_EQ(bind(g_lfd, (struct sockaddr *)&sa, alen), 0);
	REQUIRE_EQ(listen(g_lfd, 4), 0);
	REQUIRE_EQ(shmc_set_doorbell(name, (uint32_t)strlen(name)), 0);
}

/* Bytes that arrived on the doorbell within @ms (0: none). */
static int rung(int ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)ms * 1000000ull;

	do {
		struct pollfd pfd = { g_conn >= 0 ? g_conn : g_lfd, POLLIN, 0 };

		if (poll(&pfd, 1, 10) <= 0)
			continue;
		if (g_conn < 0) {
			g_conn = accept4(g_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			continue;
		}
		char b[64];
		ssize_t r = read(g_conn, b, sizeof(b));
		if (r > 0)
			return (int)r;
	} while (th_now_ns() < deadline);
	return 0;
}

/* Publish @v at the tail by hand: a message whose wake has not come yet
 * (a sender between its publish and its wake check). */
static void publish_unannounced(struct th_map *m, uint32_t writer_idx, uint32_t v)
{
	uint64_t t = atomic_load(&m->ctl->tail);

	REQUIRE(atomic_load(&m->slots[t & m->mask].seq) == SEQ(t, SLOT_FREE));
	REQUIRE(atomic_compare_exchange_strong(&m->ctl->tail, &t, t + 1));
	th_hand_write(m, t, writer_idx, &v, sizeof(v), true);
}

static unsigned parked(struct th_map *m)
{
	return atomic_load(&m->ctl->recv_parked);
}

/* ---- receivers racing ---------------------------------------------------- */

#define RACE_MSGS 20000u

struct race {
	int tx, rx[2];
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
}

int main(void)
{
	uint64_t key = th_key(), info[SHMC_INFO_COUNT];
	struct th_map m;
	uint32_t v = 0;
	int ch, rx, tx, w;

	th_init("test_try_recv_park", 0);
	doorbell_listen();
	ch = shmc_create(key, SHMC_UNICAST, 8, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	rx = shmc_attach_key(key, SHMC_RECV);
	tx = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_GT(rx, 0);
	REQUIRE_GT(tx, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	REQUIRE_EQ(th_map_channel((int32_t)info[SHMC_INFO_CHANNEL_ID], key, &m), 0);
	w = th_member_of(&m, tx);
	REQUIRE_GE(w, 0);

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
	EXPECT_EQ(parked(&m), 0);

	th_section("nothing to take: -EAGAIN, parked; a send rings the doorbell");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -EAGAIN);
	EXPECT_EQ(parked(&m), 1);
	v = 7;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_GT(rung(10000), 0);
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
	EXPECT_EQ(rung(100), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));

	th_section("a message whose wake has not come, a park in place: it stays without the flag");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -EAGAIN);
	publish_unannounced(&m, (uint32_t)w, 9);
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(v, 9);
	EXPECT_EQ(parked(&m), 1);
	EXPECT_EQ(shmc_unpark(rx, SHMC_WAIT_RECV), 0);
	EXPECT_EQ(parked(&m), 0);

	th_section("... and SHMC_TAKE_UNPARK withdraws it with the take");
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), 0), -EAGAIN);
	publish_unannounced(&m, (uint32_t)w, 10);
	EXPECT_EQ(shmc_try_recv_park(rx, &v, sizeof(v), SHMC_TAKE_UNPARK), sizeof(v));
	EXPECT_EQ(v, 10);
	EXPECT_EQ(parked(&m), 0);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(rung(100), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));

	th_unmap(&m);
	racing(key);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
