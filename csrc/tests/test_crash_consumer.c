/* SPDX-License-Identifier: MIT */
/*
 * test_crash_consumer - competing consumers (unicast, multicast) and parked
 * receivers die.
 *
 * The rule the library follows (DESIGN.md section 10, "A dead consumer"): a
 * message a unicast/multicast consumer had claimed (its slot CASed
 * FREE -> TAKEN) when it died is LOST: the consumer had taken it, and
 * nobody else receives it. Only that one message may be lost per death:
 * every other message still reaches exactly one live consumer, sends keep
 * working, and the slot the dead consumer held must come back into use (or
 * the ring would stop after one lap).
 *
 * Part A, death while holding a message (simulated by hand, faithful to
 * queue_take in DESIGN.md section 7): a consumer child maps the control
 * segment, CASes the published slot at head from FREE to TAKEN (it "took"
 * message 0) and _exits before copying and freeing it. Then the parent sends 3 laps of
 * the ring, each send with a 1 s timeout, and a live consumer must receive
 * every message but message 0, once each, in order.
 *
 * Part B, random moments: a live consumer S and a victim consumer V (in a
 * tight receive loop, replaced after each death) share the channel; the
 * parent sends 16 KiB checksummed messages with shmc_send (1 s timeout) and
 * SIGKILLs V at random moments (every other kill waits for a slot in TAKEN
 * state first). Checks: no send times out, no message is duplicated or
 * corrupt, every consumer sees increasing sequence numbers, and the
 * messages missing are at most one per kill (the rule above).
 *
 * Part C, dead parked receivers must not swallow wakes: three receivers park
 * (in shmc_recv's futex, or JS-style with shmc_park and a doorbell socket)
 * and are SIGKILLed; then a live receiver in another process parks with
 * shmc_park and waits on its own doorbell with no timeout fallback (3 s
 * limit). Each single send must ring that doorbell within 1 s: a wake-one
 * that lands on a dead member must be passed on. A variant where the live
 * receiver sleeps in shmc_recv checks the same within 1 s.
 *
 * Part D, a receiver dies with messages targeted at it (request/reply: the
 * client that asked is killed before the reply): a reply already in the
 * ring, and one sent after the death (-ENOENT or accepted, both fine), must
 * not wedge a unicast/multicast ring: they are never delivered to anyone
 * else, and 3 laps of other traffic flow to a live consumer.
 *
 * SHMCHAN_CRASH_ROUNDS=<n> sets the kills of part B per mode (CI: 60).
 */
#include "harness.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXMSG 16384u
#define MAXSEQ 200000u

static const char *dname(uint32_t d)
{
	return d == SHMC_UNICAST ? "unicast" : d == SHMC_BROADCAST ? "broadcast" : "multicast";
}

struct shared {
	uint64_t key;
	int32_t chan_id;
	uint32_t delivery;
	atomic_uint go, ready, done, total;
	atomic_uint taken_ok;
	atomic_ullong taken_pos;
	/* consumers */
	atomic_uint count[4], bad[4], order[4];
	atomic_uint received;
	atomic_uchar seen[MAXSEQ];
	/* part C */
	atomic_uint parked;       /* victims parked */
	atomic_uint b_parked, b_woken, b_got, b_fail;
	atomic_ullong b_wake_ns[16];
	atomic_uint b_rounds;
	int b_style;               /* 0 doorbell, 1 futex (shmc_recv) */
	int v_style;
};

static struct shared *sh;

/* ---- part A: death while holding a message ----------------------------------- */

static int taker_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "taker attach");
	struct th_map m;
	REQUIRE_MSG(th_map_channel(sh->chan_id, sh->key, &m) == 0, "taker map");
	uint64_t hd = atomic_load(&m.ctl->head);
	uint64_t q = SEQ(hd, SLOT_FREE);
	/* queue_take's claim of a published slot (its stamp says so):
	 * FREE -> TAKEN. Then death, before the copy and before the store of
	 * SEQ(p + N, FREE). */
	uint64_t stamp = atomic_load(&th_slot(&m, hd)->word);
	REQUIRE_MSG(!(stamp >> 63) && (stamp & 1), "taker: slot at head %" PRIu64 " not published", hd);
	REQUIRE_MSG(th_cas_seq(&m, hd, &q, SEQ(hd, SLOT_TAKEN)),
		    "taker: slot at head %" PRIu64 " not free to take", hd);
	atomic_store(&sh->taken_pos, hd);
	atomic_store(&sh->taken_ok, 1);
	_exit(0);
}

static int live_consumer_main(void *arg)
{
	unsigned c = (unsigned)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "consumer attach");
	atomic_fetch_add(&sh->ready, 1);
	REQUIRE_MSG(th_await_u32(&sh->go, 1, 30000) == 0, "no go");
	static unsigned char buf[MAXMSG];
	int64_t last = -1;
	uint64_t deadline = th_now_ns() + 60000000000ull;
	while (th_now_ns() < deadline) {
		if (atomic_load(&sh->done) && atomic_load(&sh->received) >= atomic_load(&sh->total))
			break;
		int r = shmc_recv(h, buf, sizeof buf, 50000000);
		if (r == -ETIMEDOUT) {
			if (atomic_load(&sh->done) == 2)
				break; /* the parent gave up waiting */
			continue;
		}
		uint32_t p, s;
		if (r < 0 || th_msg_verify(buf, r, &p, &s) < 0 || s >= MAXSEQ) {
			atomic_fetch_add(&sh->bad[c], 1);
			continue;
		}
		if ((int64_t)s <= last)
			atomic_fetch_add(&sh->order[c], 1);
		last = s;
		atomic_fetch_add(&sh->seen[s], 1);
		atomic_fetch_add(&sh->count[c], 1);
		atomic_fetch_add(&sh->received, 1);
	}
	shmc_detach(h);
	return 0;
}

static int send_msg(int snd, uint32_t seq, uint32_t maxlen, int64_t timeout_ns)
{
	static unsigned char buf[MAXMSG];
	uint32_t len = th_msg_build(buf, th_msg_len(maxlen, 1, seq), 1, seq);
	int r = shmc_send(snd, buf, len, 0, timeout_ns);
	return r == (int)len ? 0 : r;
}

static void part_a(uint32_t delivery)
{
	const uint32_t N = 4;
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->delivery = delivery;
	int owner = shmc_create(sh->key, delivery, N, 256, 0600, 0);
	REQUIRE_MSG(owner > 0, "create");
	sh->chan_id = (int32_t)th_info(owner, SHMC_INFO_CHANNEL_ID);
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_MSG(snd > 0, "attach");
	pid_t live = th_fork(live_consumer_main, (void *)(uintptr_t)0);
	REQUIRE_MSG(th_await_u32(&sh->ready, 1, 10000) == 0, "live consumer");
	uint32_t seq = 0;
	for (; seq < 2; seq++)
		CHECK_MSG(send_msg(snd, seq, 256, 0) == 0, "send");
	pid_t t = th_fork(taker_main, NULL);
	CHECK_MSG(th_wait(t, 10000) == 0 && atomic_load(&sh->taken_ok), "taker failed");
	atomic_store(&sh->go, 1);
	int err = 0;
	uint64_t t0 = th_now_ns();
	for (uint32_t i = 0; i < 3 * N; i++) {
		err = send_msg(snd, seq, 256, 1000000000ll);
		if (err)
			break;
		seq++;
	}
	CHECK_MSG(err == 0,
		  "%s: the consumer that died holding position %" PRIu64 " (TAKEN) wedges the "
		  "ring: "
		  "send %u (%u laps of %u) fails with %s after %.0f ms; the slot is never freed",
		  dname(delivery), (uint64_t)atomic_load(&sh->taken_pos), seq, seq / N, N, th_errname(err),
		  th_ms(th_now_ns() - t0));
	if (err) {
		struct th_map m;
		if (th_map_channel(sh->chan_id, sh->key, &m) == 0) {
			th_dump_ring(&m, "after the consumer died holding a message");
			th_unmap(&m);
		}
	}
	atomic_store(&sh->total, seq - 1); /* message 0 was taken by the dead consumer */
	atomic_store(&sh->done, 1);
	uint64_t w0 = th_now_ns();
	while (atomic_load(&sh->received) < seq - 1 && th_now_ns() - w0 < 3000000000ull)
		th_sleep_ms(1);
	atomic_store(&sh->done, 2);
	CHECK_MSG(th_wait(live, 10000) == 0, "live consumer");
	unsigned missing = 0, dup = 0;
	for (uint32_t s = 1; s < seq; s++) {
		missing += atomic_load(&sh->seen[s]) == 0;
		dup += atomic_load(&sh->seen[s]) > 1;
	}
	CHECK_MSG(atomic_load(&sh->seen[0]) == 0, "message 0 was taken by the dead consumer, yet "
		  "delivered %u time(s)", atomic_load(&sh->seen[0]));
	CHECK_MSG(missing == 0 && dup == 0 && atomic_load(&sh->bad[0]) == 0 &&
		  atomic_load(&sh->order[0]) == 0,
		  "%s: of messages 1..%u: missing %u, duplicated %u, invalid %u, out of order %u",
		  dname(delivery), seq - 1, missing, dup, atomic_load(&sh->bad[0]),
		  atomic_load(&sh->order[0]));
	printf("  %s: consumer died holding message 0 (position %" PRIu64 "): %u sends after it %s, "
	       "live consumer got %u of %u (missing %u, duplicated %u)\n",
	       dname(delivery), (uint64_t)atomic_load(&sh->taken_pos), seq - 2,
	       err ? "then WEDGED" : "all ok", atomic_load(&sh->received), seq - 1, missing, dup);
	shmc_detach(snd);
	shmc_destroy(owner);
}

/* ---- part B: random kills of a competing consumer -------------------------------- */

static int victim_consumer_main(void *arg)
{
	unsigned c = (unsigned)(uintptr_t)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	if (h < 0)
		return 3;
	static unsigned char buf[MAXMSG];
	int64_t last = -1;
	for (unsigned i = 0;; i++) {
		int r = (i & 1) ? shmc_try_recv(h, buf, sizeof buf) : shmc_recv(h, buf, sizeof buf, 20000000);
		if (r == -EAGAIN || r == -ETIMEDOUT)
			continue;
		uint32_t p, s;
		if (r < 0 || th_msg_verify(buf, r, &p, &s) < 0 || s >= MAXSEQ) {
			atomic_fetch_add(&sh->bad[c], 1);
			continue;
		}
		if ((int64_t)s <= last)
			atomic_fetch_add(&sh->order[c], 1);
		last = s;
		atomic_fetch_add(&sh->seen[s], 1);
		atomic_fetch_add(&sh->count[c], 1);
		atomic_fetch_add(&sh->received, 1);
	}
}

static void part_b(uint32_t delivery, unsigned kills, uint64_t seed)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->delivery = delivery;
	const uint32_t N = 8;
	int owner = shmc_create(sh->key, delivery, N, MAXMSG, 0600, 0);
	REQUIRE_MSG(owner > 0, "create");
	sh->chan_id = (int32_t)th_info(owner, SHMC_INFO_CHANNEL_ID);
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_MSG(snd > 0, "attach");
	struct th_map m;
	REQUIRE_MSG(th_map_channel(sh->chan_id, sh->key, &m) == 0, "map");
	pid_t live = th_fork(live_consumer_main, (void *)(uintptr_t)0);
	REQUIRE_MSG(th_await_u32(&sh->ready, 1, 10000) == 0, "live consumer");
	atomic_store(&sh->go, 1);
	pid_t v = th_fork(victim_consumer_main, (void *)(uintptr_t)1);
	uint64_t rng = seed;
	uint32_t seq = 0;
	unsigned done_kills = 0, hunted = 0, send_fail = 0;
	int last_err = 0;
	uint64_t next_kill = th_now_ns() + 1000000 + th_below(&rng, 4000000);
	uint64_t t_start = th_now_ns();
	while (done_kills < kills && seq < MAXSEQ - 1) {
		int e = send_msg(snd, seq, MAXMSG, 1000000000ll);
		if (e) {
			send_fail++;
			last_err = e;
			break;
		}
		seq++;
		if (th_now_ns() < next_kill)
			continue;
		if (done_kills & 1) {
			/* Wait (up to 2 ms) for some slot to be TAKEN: a consumer is
			 * copying; with luck it is the victim. */
			uint64_t until = th_now_ns() + 2000000;
			bool found = false;
			while (!found && th_now_ns() < until)
				for (uint32_t k = 0; k < m.n && !found; k++)
					found = (th_seq(&m, k) & 3) == SLOT_TAKEN;
			hunted += found;
		}
		th_kill(v);
		done_kills++;
		v = th_fork(victim_consumer_main, (void *)(uintptr_t)1);
		next_kill = th_now_ns() + 500000 + th_below(&rng, 4000000);
	}
	double run_ms = th_ms(th_now_ns() - t_start);
	CHECK_MSG(send_fail == 0,
		  "%s: after %u consumer kills, send %u failed: %s (ring wedged by a consumer that "
		  "died holding a slot?)", dname(delivery), done_kills, seq, th_errname(last_err));
	if (send_fail)
		th_dump_ring(&m, "send failed");
	/* Drain: the victim is killed, the live consumer takes the rest. */
	th_kill(v);
	atomic_store(&sh->total, seq);
	atomic_store(&sh->done, 1);
	uint64_t w0 = th_now_ns();
	unsigned prev = 0;
	while (th_now_ns() - w0 < 3000000000ull) {
		unsigned r = atomic_load(&sh->received);
		if (r + done_kills + 1 >= seq && r == prev && th_now_ns() - w0 > 300000000ull)
			break;
		prev = r;
		th_sleep_ms(20);
	}
	atomic_store(&sh->done, 2);
	CHECK_MSG(th_wait(live, 10000) == 0, "live consumer");
	unsigned missing = 0, dup = 0;
	for (uint32_t s = 0; s < seq; s++) {
		missing += atomic_load(&sh->seen[s]) == 0;
		dup += atomic_load(&sh->seen[s]) > 1;
	}
	unsigned bad = atomic_load(&sh->bad[0]) + atomic_load(&sh->bad[1]);
	unsigned order = atomic_load(&sh->order[0]) + atomic_load(&sh->order[1]);
	CHECK_MSG(dup == 0 && bad == 0 && order == 0,
		  "%s: duplicated %u, invalid %u, out of order %u", dname(delivery), dup, bad, order);
	CHECK_MSG(missing <= done_kills + 1,
		  "%s: %u messages missing for %u consumer deaths (at most one each: the one it "
		  "had "
		  "taken)", dname(delivery), missing, done_kills + 1);
	printf("  %s: %u consumers SIGKILLed (%u while a slot was TAKEN), %u messages sent in %.0f "
	       "ms, live consumer got %u, victims %u; missing %u (taken by the dead, allowed <= %u), "
	       "duplicated %u, invalid %u, sends failed %u\n",
	       dname(delivery), done_kills + 1, hunted, seq, run_ms, atomic_load(&sh->count[0]),
	       atomic_load(&sh->count[1]), missing, done_kills + 1, dup, bad, send_fail);
	th_unmap(&m);
	shmc_detach(snd);
	shmc_destroy(owner);
}

/* ---- part C: dead parked receivers ------------------------------------------------- */

static int parked_victim_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "victim attach");
	if (sh->v_style == 0) {
		unsigned char buf[64];
		atomic_fetch_add(&sh->parked, 1);
		shmc_recv(h, buf, sizeof buf, 30000000000ll); /* sleeps in the futex */
		CHECK_MSG(0, "parked victim woke up with something");
		return 1;
	}
	struct th_bell b;
	REQUIRE_MSG(th_bell_open(&b, h, SHMC_WAIT_RECV, 16) == 0, "victim doorbell");
	REQUIRE_MSG(shmc_park(h, SHMC_WAIT_RECV) == 0, "victim park");
	atomic_fetch_add(&sh->parked, 1);
	for (;;)
		pause();
}

static int b_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "B attach");
	struct th_bell b;
	if (sh->b_style == 0)
		REQUIRE_MSG(th_bell_open(&b, h, SHMC_WAIT_RECV, 16) == 0, "B doorbell");
	unsigned rounds = atomic_load(&sh->b_rounds);
	unsigned char buf[64];
	for (unsigned i = 0; i < rounds; i++) {
		if (sh->b_style == 1) {
			atomic_store(&sh->b_parked, i + 1);
			int r = shmc_recv(h, buf, sizeof buf, 3000000000ll);
			atomic_store(&sh->b_wake_ns[i], th_now_ns());
			if (r < 0) {
				atomic_fetch_add(&sh->b_fail, 1);
				break;
			}
			atomic_fetch_add(&sh->b_got, 1);
			continue;
		}
		int pr = shmc_park(h, SHMC_WAIT_RECV);
		REQUIRE_MSG(pr == 0, "B: park returned %d with nothing sent", pr);
		atomic_store(&sh->b_parked, i + 1);
		int w = th_bell_wait(&b, 3000);
		atomic_store(&sh->b_wake_ns[i], th_now_ns());
		if (!w) {
			atomic_fetch_add(&sh->b_fail, 1);
			shmc_unpark(h, SHMC_WAIT_RECV);
			break;
		}
		atomic_fetch_add(&sh->b_woken, 1);
		int r = shmc_try_recv(h, buf, sizeof buf);
		if (r >= 0)
			atomic_fetch_add(&sh->b_got, 1);
	}
	shmc_detach(h);
	return 0;
}

static void part_c(uint32_t delivery, int v_style, int b_style, uint64_t *max_wake)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->delivery = delivery;
	sh->v_style = v_style;
	sh->b_style = b_style;
	const unsigned victims = 3, sends = 6;
	char label[96];
	snprintf(label, sizeof label, "%s: %u dead parked in %s, live parked on %s", dname(delivery),
		 victims, v_style ? "shmc_park+doorbell" : "shmc_recv (futex)",
		 b_style ? "shmc_recv (futex)" : "shmc_park+doorbell");
	int owner = shmc_create(sh->key, delivery, 16, 64, 0600, 0);
	REQUIRE_MSG(owner > 0, "create");
	sh->chan_id = (int32_t)th_info(owner, SHMC_INFO_CHANNEL_ID);
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_MSG(snd > 0, "attach");
	pid_t vp[3];
	for (unsigned i = 0; i < victims; i++)
		vp[i] = th_fork(parked_victim_main, NULL);
	REQUIRE_MSG(th_await_u32(&sh->parked, victims, 10000) == 0, "victims parked");
	if (v_style == 0)
		for (unsigned i = 0; i < victims; i++)
			CHECK_MSG(th_wait_futex_blocked(vp[i], 3000) == 0,
				  "victim not asleep in a futex");
	for (unsigned i = 0; i < victims; i++)
		th_kill(vp[i]);
	atomic_store(&sh->b_rounds, sends);
	pid_t b = th_fork(b_main, NULL);
	unsigned ok = 0;
	uint64_t worst = 0;
	for (unsigned i = 0; i < sends; i++) {
		if (th_await_u32(&sh->b_parked, i + 1, 5000) < 0)
			break;
		if (b_style == 1)
			th_wait_futex_blocked(b, 2000); /* really asleep */
		else
			th_sleep_ms(2);
		uint64_t t0 = th_now_ns();
		unsigned char msg[16] = "wake up";
		CHECK_MSG(shmc_try_send(snd, msg, 8, 0) == 8, "send");
		uint64_t until = t0 + 3500000000ull;
		while (!atomic_load(&sh->b_wake_ns[i]) && th_now_ns() < until)
			th_sleep_us(100);
		uint64_t w = atomic_load(&sh->b_wake_ns[i]);
		if (!w || atomic_load(&sh->b_fail))
			break;
		uint64_t lat = w > t0 ? w - t0 : 0;
		if (lat > worst)
			worst = lat;
		if (lat <= 1000000000ull)
			ok++;
	}
	CHECK_MSG(th_wait(b, 10000) == 0, "B");
	CHECK_MSG(ok == sends && atomic_load(&sh->b_got) == sends,
		  "%s: only %u of %u sends woke the live receiver within 1 s (it got %u messages); the "
		  "wake went to a dead parked receiver", label, ok, sends, atomic_load(&sh->b_got));
	printf("  %s: %u/%u sends woke it, slowest %.2f ms\n", label, ok, sends, th_ms(worst));
	if (worst > *max_wake)
		*max_wake = worst;
	shmc_detach(snd);
	shmc_destroy(owner);
}

/* ---- part D: a dead target --------------------------------------------------------- */

static int idle_target_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "target attach");
	atomic_store(&sh->taken_pos, th_info(h, SHMC_INFO_MEMBER_ID));
	atomic_store(&sh->taken_ok, 1);
	for (;;) /* never receives; killed */
		pause();
}

static void part_d(uint32_t delivery)
{
	const uint32_t N = 4;
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->delivery = delivery;
	int owner = shmc_create(sh->key, delivery, N, 256, 0600, 0);
	REQUIRE_MSG(owner > 0, "create");
	sh->chan_id = (int32_t)th_info(owner, SHMC_INFO_CHANNEL_ID);
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_MSG(snd > 0, "attach");
	pid_t live = th_fork(live_consumer_main, (void *)(uintptr_t)0);
	REQUIRE_MSG(th_await_u32(&sh->ready, 1, 10000) == 0, "live consumer");
	pid_t t = th_fork(idle_target_main, NULL);
	REQUIRE_MSG(th_await_u32(&sh->taken_ok, 1, 10000) == 0, "target");
	uint32_t tid = (uint32_t)atomic_load(&sh->taken_pos);
	/* A reply already queued for the target when it dies. */
	unsigned char reply[32];
	uint32_t rl = th_msg_build(reply, 32, 9, 0);
	CHECK_MSG(shmc_try_send(snd, reply, rl, tid) == (int)rl, "targeted send");
	th_kill(t);
	/* And one sent after its death. */
	rl = th_msg_build(reply, 32, 9, 1);
	int after = shmc_try_send(snd, reply, rl, tid);
	CHECK_MSG(after == (int)rl || after == -ENOENT, "targeted send to a dead receiver: %s",
		  th_errname(after));
	atomic_store(&sh->go, 1);
	uint32_t seq = 0;
	int err = 0;
	for (uint32_t i = 0; i < 3 * N; i++) {
		err = send_msg(snd, seq, 256, 1000000000ll);
		if (err)
			break;
		seq++;
	}
	CHECK_MSG(err == 0,
		  "%s: replies targeted at a SIGKILLed receiver (id %u) wedge the ring: untargeted send "
		  "%u fails with %s (the dead target still counts as an active member, so every "
		  "consumer leaves its messages for it and head never passes them)",
		  dname(delivery), tid, seq, th_errname(err));
	if (err) {
		struct th_map m;
		if (th_map_channel(sh->chan_id, sh->key, &m) == 0) {
			th_dump_ring(&m, "after the target died");
			th_unmap(&m);
		}
	}
	atomic_store(&sh->total, seq);
	atomic_store(&sh->done, 1);
	uint64_t w0 = th_now_ns();
	while (atomic_load(&sh->received) < seq && th_now_ns() - w0 < 3000000000ull)
		th_sleep_ms(1);
	atomic_store(&sh->done, 2);
	CHECK_MSG(th_wait(live, 10000) == 0, "live consumer");
	unsigned missing = 0;
	for (uint32_t s = 0; s < seq; s++)
		missing += atomic_load(&sh->seen[s]) != 1;
	CHECK_MSG(atomic_load(&sh->bad[0]) == 0, "%s: the live consumer got %u foreign/invalid "
		  "messages (a reply for the dead target?)", dname(delivery), atomic_load(&sh->bad[0]));
	CHECK_MSG(missing == 0, "%s: %u of %u untargeted messages not received exactly once",
		  dname(delivery), missing, seq);
	printf("  %s: target killed with a reply queued (send after its death: %s): %u untargeted "
	       "sends %s, dropped counter %" PRIu64 "\n",
	       dname(delivery), th_errname(after), seq, err ? "then WEDGED" : "all ok",
	       th_info(owner, SHMC_INFO_DROPPED));
	shmc_detach(snd);
	shmc_destroy(owner);
}

int main(void)
{
	unsigned kills = th_rounds(60);
	uint64_t seed = th_seed("SHMCHAN_CRASH_SEED");
	th_init("test_crash_consumer", th_watchdog_for_rounds(110));
	sh = th_shared_alloc(sizeof *sh);

	th_section("A: a consumer dies holding a message (FREE -> TAKEN by hand, no free): that "
		   "message is lost, nothing else; sends keep working across the ring's laps");
	part_a(SHMC_UNICAST);
	part_a(SHMC_MULTICAST);

	th_section("B: competing consumer SIGKILLed at random moments (%u kills per mode, seed "
		   "0x%" PRIx64 ", SHMCHAN_CRASH_SEED to replay)", kills, seed);
	part_b(SHMC_UNICAST, kills, seed);
	part_b(SHMC_MULTICAST, kills, seed * 31 + 7);

	th_section("C: dead parked receivers do not swallow the wake of a live one");
	uint64_t max_wake = 0;
	const uint32_t dels[] = { SHMC_UNICAST, SHMC_MULTICAST };
	for (int d = 0; d < 2; d++)
		for (int vs = 0; vs < 2; vs++)
			for (int bs = 0; bs < 2; bs++)
				part_c(dels[d], vs, bs, &max_wake);
	th_section("D: a receiver dies with replies targeted at it");
	part_d(SHMC_UNICAST);
	part_d(SHMC_MULTICAST);
	printf("figures: slowest wake of a live parked receiver after parked receivers died: "
	       "%.2f ms\n", th_ms(max_wake));
	return th_finish();
}
