/* SPDX-License-Identifier: MIT */
/*
 * test_zerocopy - loans and views (DESIGN.md section 7, "Zero copy"), in
 * every delivery mode:
 *   - a loaned slot is invisible until committed; commit delivers what was
 *     written in place; an aborted loan delivers nothing, counts a skipped
 *     slot, and the messages after it flow;
 *   - commit's -EMSGSIZE and -ENOENT keep the loan; the -EBUSY rules (a
 *     second loan, a send during a loan, a second view, a receive during a
 *     view) and -EINVAL without a loan or view, -EACCES without the access;
 *   - a held view is never overwritten: the producer gets -ENOBUFS (a
 *     blocking loan or send times out), release frees the slot; in broadcast
 *     a held view gates the producers while a faster receiver reads on,
 *     and only the slowest receiver's release wakes a sender parked for room;
 *   - the blocking variants time out and are woken by a release;
 *   - detach aborts a loan and releases a view;
 *   - a unicast view whose slot a participant freed early and a producer
 *     reused: release says -ESTALE;
 *   - bad input: NULL out-parameters (-EFAULT), stale handles and tokens
 *     (-ENOENT);
 *   - the view region: a receive-only handle's writes stay in its own copy
 *     (another reader sees the message intact, the next view of that slot
 *     shows the file again); after detach the region reads as zeros, and it
 *     is dropped by its token.
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static const char *dname(uint32_t d)
{
	return d == SHMC_UNICAST ? "unicast" : d == SHMC_BROADCAST ? "broadcast" : "multicast";
}

static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7);
}

static bool filled(const uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed * 31 + i * 7))
			return false;
	return true;
}

static void loans(uint32_t d)
{
	th_section("%s: loan, commit, abort", dname(d));
	uint64_t key = th_key();
	int owner = shmc_create(key, d, 8, 4096, 0600, 0);
	REQUIRE_OK(owner);
	int snd = shmc_attach_key(key, SHMC_SEND);
	int rcv = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_OK(snd);
	REQUIRE_OK(rcv);
	uint8_t buf[4096];

	void *p = NULL;
	EXPECT_EQ(shmc_try_loan(snd, &p), 4096);
	REQUIRE(p != NULL);
	fill(p, 1000, 1);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EAGAIN);
	EXPECT_EQ(shmc_pending(rcv), 0);
	/* The -EBUSY rules of a loan. */
	void *p2;
	EXPECT_EQ(shmc_try_loan(snd, &p2), -EBUSY);
	EXPECT_EQ(shmc_try_send(snd, "x", 1, 0), -EBUSY);
	EXPECT_EQ(shmc_send(snd, "x", 1, 0, 1000000), -EBUSY);
	uint32_t one = 1;
	EXPECT_EQ(shmc_try_send_many(snd, "x", &one, 1, 0), -EBUSY);
	/* Bad commits keep the loan. */
	EXPECT_EQ(shmc_commit(snd, 4097, 0), -EMSGSIZE);
	EXPECT_EQ(shmc_commit(snd, 10, 0x7fffff00u), -ENOENT);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EAGAIN);
	EXPECT_EQ(shmc_commit(snd, 1000, 0), 1000);
	EXPECT_EQ(shmc_commit(snd, 1000, 0), -EINVAL);
	EXPECT_EQ(shmc_abort(snd), -EINVAL);
	int r = shmc_try_recv(rcv, buf, sizeof buf);
	EXPECT_EQ(r, 1000);
	CHECK_MSG(r == 1000 && filled(buf, 1000, 1), "the committed bytes are what was written");

	/* Abort: nothing delivered, counted, what follows flows. */
	uint64_t skipped0 = th_info(owner, SHMC_INFO_SKIPPED);
	EXPECT_EQ(shmc_try_loan(snd, &p), 4096);
	fill(p, 100, 2);
	EXPECT_EQ(shmc_abort(snd), 0);
	EXPECT_EQ(shmc_try_send(snd, "after", 5, 0), 5);
	r = shmc_try_recv(rcv, buf, sizeof buf);
	EXPECT_EQ(r, 5);
	CHECK(r == 5 && memcmp(buf, "after", 5) == 0);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EAGAIN);
	EXPECT_EQ_U64(th_info(owner, SHMC_INFO_SKIPPED), skipped0 + 1);

	/* A later message waits behind a loan (order by position) in
	 * unicast/multicast; in broadcast too (the cursor is at the loan). */
	int snd2 = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_OK(snd2);
	EXPECT_EQ(shmc_try_loan(snd, &p), 4096);
	EXPECT_EQ(shmc_try_send(snd2, "second", 6, 0), 6);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EAGAIN);
	memcpy(p, "first", 5);
	EXPECT_EQ(shmc_commit(snd, 5, 0), 5);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), 5);
	CHECK(memcmp(buf, "first", 5) == 0);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), 6);
	CHECK(memcmp(buf, "second", 6) == 0);

	/* A targeted commit goes to its target only. */
	int rcv2 = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_OK(rcv2);
	uint32_t id2 = (uint32_t)th_info(rcv2, SHMC_INFO_MEMBER_ID);
	EXPECT_EQ(shmc_try_loan(snd, &p), 4096);
	memcpy(p, "for you", 7);
	EXPECT_EQ(shmc_commit(snd, 7, id2), 7);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EAGAIN);
	EXPECT_EQ(shmc_try_recv(rcv2, buf, sizeof buf), 7);
	CHECK(memcmp(buf, "for you", 7) == 0);

	/* Access and a loan aborted by detach. */
	EXPECT_EQ(shmc_try_loan(rcv, &p), -EACCES);
	const void *v;
	EXPECT_EQ(shmc_try_recv_view(snd, &v), -EACCES);
	EXPECT_EQ(shmc_try_loan(snd2, &p), 4096);
	EXPECT_OK(shmc_detach(snd2));
	EXPECT_EQ(shmc_try_send(snd, "z", 1, 0), 1);
	r = shmc_try_recv(rcv, buf, sizeof buf);
	CHECK_MSG(r == 1 && buf[0] == 'z', "after a detach with a loan: %s", th_errname(r));
	EXPECT_EQ_U64(th_info(owner, SHMC_INFO_SKIPPED), skipped0 + 2);
	/* A loan fills the ring like a send: ENOBUFS, and the blocking loan
	 * times out. */
	shmc_detach(rcv2); /* (broadcast: it would gate what it has not read) */
	unsigned sent = 0;
	while (shmc_try_send(snd, "f", 1, 0) == 1)
		sent++;
	EXPECT_EQ(sent, 8);
	EXPECT_EQ(shmc_try_loan(snd, &p), -ENOBUFS);
	EXPECT_EQ(shmc_loan(snd, &p, 20000000), -ETIMEDOUT);
	shmc_detach(rcv);
	shmc_detach(snd);
	shmc_destroy(owner);
}

struct releaser {
	int h;
	unsigned ms;
};

static void *release_later(void *arg)
{
	struct releaser *r = arg;
	th_sleep_ms(r->ms);
	EXPECT_EQ(shmc_release(r->h), 0);
	return NULL;
}

static void views(uint32_t d)
{
	th_section("%s: view, release, held slots", dname(d));
	const uint32_t N = 4;
	uint64_t key = th_key();
	int owner = shmc_create(key, d, N, 512, 0600, 0);
	REQUIRE_OK(owner);
	int snd = shmc_attach_key(key, SHMC_SEND);
	int rcv = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_OK(snd);
	REQUIRE_OK(rcv);
	uint8_t buf[512], msg[512];

	const void *v = NULL;
	EXPECT_EQ(shmc_try_recv_view(rcv, &v), -EAGAIN);
	EXPECT_EQ(shmc_recv_view(rcv, &v, 10000000), -ETIMEDOUT);
	EXPECT_EQ(shmc_release(rcv), -EINVAL);
	fill(msg, 300, 7);
	EXPECT_EQ(shmc_try_send(snd, msg, 300, 0), 300);
	EXPECT_EQ(shmc_try_recv_view(rcv, &v), 300);
	CHECK(v && filled(v, 300, 7));
	/* The -EBUSY rules of a view. */
	const void *v2;
	EXPECT_EQ(shmc_try_recv_view(rcv, &v2), -EBUSY);
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EBUSY);
	EXPECT_EQ(shmc_recv(rcv, buf, sizeof buf, 1000000), -EBUSY);
	uint32_t lens[4];
	EXPECT_EQ(shmc_try_recv_many(rcv, buf, sizeof buf, lens, 4), -EBUSY);
	/* The held slot is never overwritten: the ring has N - 1 more. */
	unsigned more = 0;
	for (uint32_t i = 0; i < N + 2; i++) {
		fill(msg, 300, 100 + i);
		int r = shmc_try_send(snd, msg, 300, 0);
		if (r != 300) {
			EXPECT_EQ(r, -ENOBUFS);
			break;
		}
		more++;
	}
	EXPECT_EQ(more, N - 1);
	EXPECT_EQ(shmc_send(snd, msg, 300, 0, 20000000), -ETIMEDOUT);
	void *lp;
	EXPECT_EQ(shmc_loan(snd, &lp, 20000000), -ETIMEDOUT);
	CHECK_MSG(filled(v, 300, 7), "%s: a held view was overwritten", dname(d));
	EXPECT_EQ(shmc_release(rcv), 0);
	EXPECT_EQ(shmc_release(rcv), -EINVAL);
	fill(msg, 300, 200);
	EXPECT_EQ(shmc_try_send(snd, msg, 300, 0), 300);
	for (uint32_t i = 0; i < more; i++) {
		int r = shmc_try_recv_view(rcv, &v);
		EXPECT_EQ(r, 300);
		CHECK_MSG(r == 300 && filled(v, 300, 100 + i), "view %u", i);
		EXPECT_EQ(shmc_release(rcv), 0);
	}
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), 300);
	CHECK(filled(buf, 300, 200));

	/* A blocking loan waiting on a full ring is woken by a release. */
	for (uint32_t i = 0; i < N; i++)
		EXPECT_EQ(shmc_try_send(snd, msg, 10, 0), 10);
	EXPECT_EQ(shmc_try_recv_view(rcv, &v), 10);
	struct releaser rel = { rcv, 30 };
	pthread_t th;
	pthread_create(&th, NULL, release_later, &rel);
	uint64_t t0 = th_now_ns();
	int r = shmc_loan(snd, &lp, 5000000000ll);
	uint64_t waited = th_now_ns() - t0;
	pthread_join(th, NULL);
	EXPECT_EQ(r, 512);
	CHECK_MSG(waited < 2000000000ull, "a release did not wake the blocking loan (%.0f ms)",
		  th_ms(waited));
	EXPECT_EQ(shmc_abort(snd), 0);
	while (shmc_try_recv(rcv, buf, sizeof buf) >= 0)
		;

	/* A blocking view is woken by a commit; detach releases a view. */
	EXPECT_EQ(shmc_try_loan(snd, &lp), 512);
	memcpy(lp, "held", 4);
	EXPECT_EQ(shmc_commit(snd, 4, 0), 4);
	EXPECT_EQ(shmc_recv_view(rcv, &v, 1000000000), 4);
	CHECK(memcmp(v, "held", 4) == 0);
	EXPECT_OK(shmc_detach(rcv));
	int rcv3 = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_OK(rcv3);
	for (uint32_t i = 0; i < N; i++)
		CHECK_MSG(shmc_try_send(snd, msg, 10, 0) == 10,
			  "%s: send %u after a detach that held a view", dname(d), i);
	shmc_detach(rcv3);
	shmc_detach(snd);
	shmc_destroy(owner);
}

/* A broadcast channel of N slots with a sender and two receivers. */
struct bcast {
	int owner, snd, slow, other;
};

static struct bcast bcast_open(uint32_t n)
{
	uint64_t key = th_key();
	struct bcast b;
	b.owner = shmc_create(key, SHMC_BROADCAST, n, 64, 0600, 0);
	REQUIRE_OK(b.owner);
	b.snd = shmc_attach_key(key, SHMC_SEND);
	b.slow = shmc_attach_key(key, SHMC_RECV);
	b.other = shmc_attach_key(key, SHMC_RECV);
	return b;
}

static void bcast_close(const struct bcast *b)
{
	shmc_detach(b->other);
	shmc_detach(b->slow);
	shmc_detach(b->snd);
	shmc_destroy(b->owner);
}

/* Broadcast: a slow receiver holding a view gates the producers; a fast one
 * reads on. */
static void broadcast_gate(void)
{
	th_section("broadcast: a held view gates the producers (slowest receiver), others read on");
	const uint32_t N = 4;
	struct bcast b = bcast_open(N);
	const int snd = b.snd, slow = b.slow, fast = b.other;
	uint8_t buf[64];
	EXPECT_EQ(shmc_try_send(snd, "m0", 2, 0), 2);
	const void *v;
	EXPECT_EQ(shmc_try_recv_view(slow, &v), 2);
	unsigned sent = 1;
	for (;;) {
		int r = shmc_try_send(snd, "mx", 2, 0);
		if (r != 2) {
			EXPECT_EQ(r, -ENOBUFS);
			break;
		}
		sent++;
		EXPECT_EQ(shmc_try_recv(fast, buf, sizeof buf), 2);
		if (sent > 2 * N)
			break;
	}
	EXPECT_EQ(sent, N);
	CHECK(memcmp(v, "m0", 2) == 0);
	EXPECT_EQ(shmc_release(slow), 0);
	EXPECT_EQ(shmc_try_send(snd, "my", 2, 0), 2);
	unsigned got = 0;
	while (shmc_try_recv(slow, buf, sizeof buf) == 2)
		got++;
	EXPECT_EQ(got, N);
	bcast_close(&b);
}

static uint64_t stat_of(int h, uint32_t field)
{
	uint64_t out[SHMC_STATS_COUNT];
	REQUIRE_OK(shmc_stats(h, out, SHMC_STATS_COUNT)); /* the header, no rows */
	return out[field];
}

struct blocked_send {
	int h;
	int rc;
	_Atomic int done;
};

static void *send_blocking(void *arg)
{
	struct blocked_send *b = arg;
	b->rc = shmc_send(b->h, "late", 4, 0, 5000000000ll);
	atomic_store(&b->done, 1);
	return NULL;
}

/* Releasing a view moves a broadcast cursor as a take does, and wakes a
 * sender parked for room by the same rule (DESIGN.md 4): only the release
 * of the slowest receiver, a whole ring behind the tail, opens room. */
static void broadcast_release_wakes(void)
{
	th_section("broadcast: only the slowest receiver's release wakes a sender parked for room");
	const uint32_t N = 4;
	struct bcast b = bcast_open(N);
	const int owner = b.owner, snd = b.snd, slow = b.slow, other = b.other;
	uint8_t buf[64];
	for (uint32_t i = 0; i < N; i++)
		EXPECT_EQ(shmc_try_send(snd, "mx", 2, 0), 2);
	const void *v;
	EXPECT_EQ(shmc_try_recv_view(slow, &v), 2);  /* holds position 0 */
	EXPECT_EQ(shmc_try_recv(other, buf, sizeof buf), 2);
	EXPECT_EQ(shmc_try_recv_view(other, &v), 2); /* holds position 1 */
	struct blocked_send bs = { snd, 0, 0 };
	pthread_t th;
	pthread_create(&th, NULL, send_blocking, &bs);
	uint64_t t0 = th_now_ns();
	while (stat_of(owner, SHMC_STATS_PARKS) == 0 && th_now_ns() - t0 < 5000000000ull)
		th_sleep_ms(1);
	REQUIRE_MSG(stat_of(owner, SHMC_STATS_PARKS) > 0, "the blocking send never parked");
	uint64_t wakes = stat_of(owner, SHMC_STATS_WAKES);
	EXPECT_EQ(shmc_release(other), 0);           /* N - 1 behind: opens no room */
	EXPECT_EQ(stat_of(owner, SHMC_STATS_WAKES), wakes);
	CHECK_MSG(!atomic_load(&bs.done), "the send went on while the slowest receiver held its view");
	EXPECT_EQ(shmc_release(slow), 0);            /* N behind: the gate moves */
	pthread_join(th, NULL);
	EXPECT_EQ(bs.rc, 4);
	EXPECT_EQ(stat_of(owner, SHMC_STATS_WAKES), wakes + 1);
	bcast_close(&b);
}

/* A participant frees a held unicast slot early (it may: it writes ctl) and
 * a producer reuses it: release says the bytes changed. */
static void stale(uint32_t d)
{
	th_section("%s: a held view overwritten after a forged free: release is -ESTALE", dname(d));
	const uint32_t N = 2;
	uint64_t key = th_key();
	int owner = shmc_create(key, d, N, 64, 0600, 0);
	REQUIRE_OK(owner);
	int snd = shmc_attach_key(key, SHMC_SEND);
	int rcv = shmc_attach_key(key, SHMC_RECV);
	struct th_map m;
	REQUIRE_OK(th_map_channel((int32_t)th_info(owner, SHMC_INFO_CHANNEL_ID), key, &m));
	EXPECT_EQ(shmc_try_send(snd, "old", 3, 0), 3);
	const void *v;
	EXPECT_EQ(shmc_try_recv_view(rcv, &v), 3);
	uint64_t p = m.start;
	th_set_seq(&m, p, SEQ(p + N, SLOT_FREE)); /* the forgery */
	EXPECT_EQ(shmc_try_send(snd, "x", 1, 0), 1);
	EXPECT_EQ(shmc_try_send(snd, "new", 3, 0), 3); /* lands in the held slot */
	EXPECT_EQ(shmc_release(rcv), -ESTALE);
	th_unmap(&m);
	shmc_detach(rcv);
	shmc_detach(snd);
	shmc_destroy(owner);
}

static void region(uint32_t d)
{
	th_section("%s: view regions (what JS gets): a reader's writes stay its own; detach leaves "
		   "zeros, not a hole", dname(d));
	uint64_t key = th_key();
	int owner = shmc_create(key, d, 4, 8192, 0600, 0);
	REQUIRE_OK(owner);
	int snd = shmc_attach_key(key, SHMC_SEND);
	int a = shmc_attach_key(key, SHMC_RECV);
	int b = shmc_attach_key(key, SHMC_RECV);
	uint64_t sr[3], ar[3];
	EXPECT_EQ(shmc_view_region(snd, sr), 0);
	EXPECT_EQ(shmc_view_region(a, ar), 0);
	uint8_t *sreg = (uint8_t *)(uintptr_t)sr[0], *areg = (uint8_t *)(uintptr_t)ar[0];
	CHECK(sr[1] == ar[1] && sr[2] > 0 && ar[2] > 0 && sr[2] != ar[2]);
	uint32_t off;
	EXPECT_EQ(shmc_try_loan_at(snd, &off), 8192);
	CHECK(off + 8192 <= sr[1]);
	fill(sreg + off, 8192, 3);
	EXPECT_EQ(shmc_commit(snd, 8192, 0), 8192);
	if (d == SHMC_BROADCAST) {
		/* both read it; a writes into its view, b sees the original */
		uint32_t aoff;
		EXPECT_EQ(shmc_try_recv_view_at(a, &aoff), 8192);
		EXPECT_EQ(aoff, off);
		CHECK(filled(areg + aoff, 8192, 3));
		memset(areg + aoff, 0xee, 8192); /* allowed: its own copy */
		const void *bv;
		EXPECT_EQ(shmc_try_recv_view(b, &bv), 8192);
		CHECK_MSG(filled(bv, 8192, 3), "a reader's write reached the channel");
		EXPECT_EQ(shmc_release(b), 0);
		EXPECT_EQ(shmc_release(a), 0);
	} else {
		uint32_t aoff;
		EXPECT_EQ(shmc_try_recv_view_at(a, &aoff), 8192);
		memset(areg + aoff, 0xee, 8192);
		EXPECT_EQ(shmc_release(a), 0);
	}
	/* A lap later the same slot holds another message: a's next view of it
	 * shows the file, not its own old copy. */
	for (uint32_t i = 0; i < 4; i++) {
		uint8_t msg[8192];
		fill(msg, 8192, 10 + i);
		EXPECT_EQ(shmc_try_send(snd, msg, 8192, 0), 8192);
		uint32_t aoff;
		int r = shmc_try_recv_view_at(a, &aoff);
		EXPECT_EQ(r, 8192);
		CHECK_MSG(r == 8192 && filled(areg + aoff, 8192, 10 + i),
			  "view %u of a reader that wrote into an earlier view shows stale bytes", i);
		EXPECT_EQ(shmc_release(a), 0);
		if (d == SHMC_BROADCAST)
			while (shmc_try_recv(b, msg, sizeof msg) >= 0)
				;
	}
	/* Detach: the regions stay readable (zeros), and go by their tokens. */
	EXPECT_EQ(shmc_try_loan_at(snd, &off), 8192);
	fill(sreg + off, 100, 4);
	EXPECT_OK(shmc_detach(snd));
	EXPECT_OK(shmc_detach(a));
	unsigned nonzero = 0;
	for (size_t i = 0; i < sr[1]; i += 512)
		nonzero += sreg[i] != 0 || areg[i] != 0;
	EXPECT_EQ(nonzero, 0);
	sreg[off] = 1; /* writable, private */
	EXPECT_EQ(shmc_view_region_drop((int)sr[2]), 0);
	EXPECT_EQ(shmc_view_region_drop((int)ar[2]), 0);
	EXPECT_EQ(shmc_view_region_drop((int)ar[2]), -ENOENT);
	/* A region dropped while its handle lives goes with the handle. */
	uint64_t br[3];
	EXPECT_EQ(shmc_view_region(b, br), 0);
	EXPECT_EQ(shmc_view_region_drop((int)br[2]), 0);
	EXPECT_OK(shmc_detach(b));
	shmc_destroy(owner);
}

static void bad_input(void)
{
	th_section("bad input: NULL out-parameters, stale handles and tokens");
	uint64_t key = th_key();
	int owner = shmc_create(key, SHMC_UNICAST, 4, 64, 0600, 0);
	REQUIRE_OK(owner);
	int both = shmc_attach_key(key, SHMC_BOTH);
	REQUIRE_OK(both);
	EXPECT_EQ(shmc_try_loan(both, NULL), -EFAULT);
	EXPECT_EQ(shmc_loan(both, NULL, 0), -EFAULT);
	EXPECT_EQ(shmc_try_loan_at(both, NULL), -EFAULT);
	EXPECT_EQ(shmc_try_recv_view(both, NULL), -EFAULT);
	EXPECT_EQ(shmc_recv_view(both, NULL, 0), -EFAULT);
	EXPECT_EQ(shmc_try_recv_view_at(both, NULL), -EFAULT);
	EXPECT_EQ(shmc_view_region(both, NULL), -EFAULT);
	EXPECT_EQ(shmc_view_region_drop(0), -ENOENT);
	EXPECT_EQ(shmc_view_region_drop(-5), -ENOENT);
	EXPECT_EQ(shmc_view_region_drop(0x3fffffff), -ENOENT);
	EXPECT_EQ(shmc_try_send(both, "x", 1, 0), 1); /* nothing above took anything */
	const void *v;
	EXPECT_EQ(shmc_try_recv_view(both, &v), 1);
	EXPECT_EQ(shmc_release(both), 0);
	EXPECT_OK(shmc_detach(both));
	void *p;
	uint32_t off;
	uint64_t out[3];
	EXPECT_EQ(shmc_try_loan(both, &p), -ENOENT);
	EXPECT_EQ(shmc_loan(both, &p, 0), -ENOENT);
	EXPECT_EQ(shmc_try_loan_at(both, &off), -ENOENT);
	EXPECT_EQ(shmc_commit(both, 1, 0), -ENOENT);
	EXPECT_EQ(shmc_abort(both), -ENOENT);
	EXPECT_EQ(shmc_try_recv_view(both, &v), -ENOENT);
	EXPECT_EQ(shmc_try_recv_view_at(both, &off), -ENOENT);
	EXPECT_EQ(shmc_release(both), -ENOENT);
	EXPECT_EQ(shmc_view_region(both, out), -ENOENT);
	EXPECT_EQ(shmc_try_recv_view(owner, &v), -EACCES); /* the owner does not receive */
	shmc_destroy(owner);
}

/* Loans and views count as sends and receives do (DESIGN.md 11): a commit
 * is a message sent, a view one received, an abort a skipped slot. */
static void counted(uint32_t delivery)
{
	th_section("delivery %u: loans and views are counted as sends and receives", delivery);
	uint64_t key = th_key();
	int ch = shmc_create(key, delivery, 8, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	int rx = shmc_attach_key(key, SHMC_RECV), tx = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_GT(rx, 0);
	REQUIRE_GT(tx, 0);
	for (uint32_t len = 10; len <= 30; len += 10) {
		void *p;
		REQUIRE_EQ(shmc_try_loan(tx, &p), 64);
		memset(p, (int)len, len);
		REQUIRE_EQ(shmc_commit(tx, len, 0), (int)len);
	}
	void *p;
	REQUIRE_EQ(shmc_try_loan(tx, &p), 64);
	REQUIRE_EQ(shmc_abort(tx), 0);
	for (int i = 0; i < 2; i++) {
		const void *v;
		REQUIRE_EQ(shmc_try_recv_view(rx, &v), 10 * (i + 1));
		REQUIRE_EQ(shmc_release(rx), 0);
	}
	uint64_t out[SHMC_STATS_COUNT + 8 * SHMC_MSTATS_COUNT];
	REQUIRE_GE(shmc_stats(ch, out, sizeof out / sizeof out[0]), 0);
	EXPECT_EQ(out[SHMC_STATS_SENT], 3);
	EXPECT_EQ(out[SHMC_STATS_SENT_BYTES], 60);
	EXPECT_EQ(out[SHMC_STATS_RECEIVED], 2);
	EXPECT_EQ(out[SHMC_STATS_RECEIVED_BYTES], 30);
	EXPECT_EQ(out[SHMC_STATS_SKIPPED], 1);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_zerocopy", 0);
	bad_input();
	const uint32_t modes[] = { SHMC_UNICAST, SHMC_MULTICAST, SHMC_BROADCAST };
	for (int i = 0; i < 3; i++) {
		loans(modes[i]);
		views(modes[i]);
		region(modes[i]);
		counted(modes[i]);
	}
	broadcast_gate();
	broadcast_release_wakes();
	stale(SHMC_UNICAST);
	stale(SHMC_MULTICAST);
	return th_finish();
}
