/* SPDX-License-Identifier: MIT */
/*
 * test_attack_slots - what a reader can and cannot do to messages
 * (csrc/DESIGN.md 1, 6, 7). Root owns the channels (mode 0644) and runs the
 * producer and the consumers; the attacker is a child running as uid 65534
 * (nobody), a reader, rewriting everything it may write (ctl) in a loop.
 *
 *   1. lengths, targets, stamps and payloads are in dat, which the reader
 *      cannot open for writing (EACCES) nor write through its mapping: the
 *      "stretched a slot's length" of 0.2.0 is impossible, and every message
 *      root's unicast receiver gets, while the reader rewrites every slot
 *      state, head and wait word at random, is intact (checksummed, its
 *      length its own, never padded with an earlier message's bytes) and was
 *      sent. What stays possible by design (the threat table): among
 *      unicast/multicast receivers, a reader can drop messages or replay ones
 *      still in the ring (byte-identical); counted and reported. Once it
 *      stops, the channel recovers from what it left in ctl: the last of
 *      64 messages sent after it stopped arrives.
 *   2. broadcast: root's receiver's cursor is private and its member file is
 *      not the reader's to write (EACCES): while the reader rewrites ctl at
 *      random, root's broadcast receiver gets every message exactly once, in
 *      order, intact.
 *   3. a reader that frees the slots root is copying from (the next lap's
 *      FREE, so that the producer reuses a slot while root copies it) never
 *      makes root's receiver return a torn message: the stamp is checked
 *      again after the copy.
 *   4. a reader that rewinds a consumed slot's state ("not consumed", with
 *      head past it, so no consumer comes back to it) does not wedge the
 *      ring: a lap of blocking sends over it completes.
 */
#include "harness.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAXMSG 200u
#define MSGS 20000u
#define AFTER 64u /* sent once the reader stopped: 4 laps of the ring */

enum { RANDOM_CTL, EARLY_FREE };

struct shared {
	uint64_t key;
	int32_t id;
	int mode;
	atomic_uint ready, stop, stopped, producing;
	atomic_int dat_rw, member_rw;
	atomic_ullong writes;
	atomic_uint sent;
};

static struct shared *sh;

static int hammer(void *arg)
{
	(void)arg;
	struct th_map m;
	if (th_map_channel(sh->id, sh->key, &m) < 0)
		return 1;
	char path[200];
	snprintf(path, sizeof path, "%s/dat", m.dir);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	atomic_store(&sh->dat_rw, fd < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof path, "%s/m1", m.dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	atomic_store(&sh->member_rw, fd < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	uint64_t rng = th_key();
	atomic_store(&sh->ready, 1);
	while (!atomic_load(&sh->stop)) {
		uint64_t t = atomic_load(th_tail(&m)); /* it may read dat, not write it */
		uint64_t p = t - th_below(&rng, 2 * m.n);
		if (sh->mode == EARLY_FREE) {
			/* A slot root is copying from: free it for the next lap. */
			for (uint64_t k = 0; k < m.n && m.qslots; k++) {
				uint64_t x = t - m.n + k, q = SEQ(x, SLOT_TAKEN);
				if (th_seq(&m, x) == q)
					th_set_seq(&m, x, SEQ(x + m.n, SLOT_FREE));
			}
		} else {
			switch (th_below(&rng, 6)) {
			case 0: /* a replay: READY again, for a position the ring still holds */
				if (m.qslots)
					th_set_seq(&m, p, SEQ(p, SLOT_READY));
				break;
			case 1:
				if (m.qslots)
					th_set_seq(&m, p, SEQ(p, th_below(&rng, 4)));
				break;
			case 2:
				atomic_store(&m.ctl->head, p);
				break;
			case 3: {
				struct shmc_wait *w = &m.waits[th_below(&rng, SHMC_MAX_MEMBERS)];
				atomic_store(&w->parked, (uint32_t)th_below(&rng, 4));
				atomic_fetch_add(&w->wake, 1);
				break;
			}
			case 4:
				atomic_store(&m.ctl->recv_parked, (uint32_t)th_below(&rng, 3));
				break;
			default:
				if (m.qslots)
					atomic_store(th_state_word(&m, p), th_rand(&rng));
				break;
			}
		}
		atomic_fetch_add(&sh->writes, 1);
		if ((atomic_load(&sh->writes) & 255) == 0)
			sched_yield();
	}
	atomic_store(&sh->stopped, 1);
	th_unmap(&m);
	return 0;
}

static int producer(void *arg)
{
	(void)arg;
	int tx = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_GT(tx, 0);
	static unsigned char buf[MAXMSG];
	atomic_store(&sh->producing, 1);
	/* A reader can stall a unicast ring (by design): keep trying, for a
	 * few seconds in all, and on until a hundred have gone (a slow build,
	 * a sanitizer's, lets the reader win more often), for at most 30 s. */
	uint64_t until = th_now_ns() + 4000000000ull, last = th_now_ns() + 30000000000ull;
	uint32_t seq = 0;
	while (seq < MSGS - AFTER && (th_now_ns() < until || seq < 100) && th_now_ns() < last) {
		uint32_t len = th_msg_build(buf, th_msg_len(MAXMSG, 1, seq), 1, seq);
		if (shmc_send(tx, buf, len, 0, 50000000) == (int)len)
			atomic_store(&sh->sent, ++seq);
	}
	/* The attack stops; AFTER more messages must get through: whatever
	 * the reader left in ctl (forged states, head) may cost messages, never
	 * the channel (the last one arrives). */
	atomic_store(&sh->producing, 2);
	REQUIRE_EQ(th_await_u32(&sh->stopped, 1, 20000), 0);
	for (uint32_t end = seq + AFTER; seq < end && th_now_ns() < last + 20000000000ull;) {
		uint32_t len = th_msg_build(buf, th_msg_len(MAXMSG, 1, seq), 1, seq);
		if (shmc_send(tx, buf, len, 0, 50000000) == (int)len)
			atomic_store(&sh->sent, ++seq);
	}
	atomic_store(&sh->producing, 3);
	EXPECT_EQ(shmc_detach(tx), 0);
	return 0;
}

struct tally {
	unsigned got, bad, dup, order, missing;
	bool last; /* the last message sent was received */
	double recover_ms; /* from the reader's stop to that message */
};

/* Receive until the producer is done and the ring is quiet. */
static void consume(int rx, struct tally *t, bool broadcast)
{
	static unsigned char buf[MAXMSG];
	static uint8_t seen[MSGS];
	memset(seen, 0, sizeof seen);
	memset(t, 0, sizeof *t);
	int64_t last = -1;
	uint64_t give_up = th_now_ns() + 40000000000ull, stopped_at = 0;
	while (th_now_ns() < give_up) {
		/* Once the producer is done, the attack stops (a reader replaying
		 * in a loop would feed a receiver for ever), the producer sends
		 * its last messages, and the rest drains. */
		if (atomic_load(&sh->producing) >= 2 && !stopped_at) {
			atomic_store(&sh->stop, 1);
			stopped_at = th_now_ns();
		}
		int r = shmc_recv(rx, buf, sizeof buf, 300000000);
		unsigned sent = atomic_load(&sh->sent);
		if (r == -ETIMEDOUT && atomic_load(&sh->producing) == 3 && sent && seen[sent - 1])
			break;
		if (r == -ETIMEDOUT)
			continue;
		uint32_t p, s;
		if (r < 0 || th_msg_verify(buf, (uint32_t)r, &p, &s) < 0 || p != 1 || s >= MSGS) {
			t->bad++;
			continue;
		}
		t->got++;
		if (atomic_load(&sh->producing) == 3 && s + 1 == atomic_load(&sh->sent))
			t->recover_ms = th_ms(th_now_ns() - stopped_at);
		if (seen[s]++)
			t->dup++;
		if ((int64_t)s <= last)
			t->order++;
		last = s;
	}
	unsigned sent = atomic_load(&sh->sent);
	for (unsigned s = 0; s < sent; s++)
		t->missing += !seen[s];
	t->last = sent && seen[sent - 1];
	(void)broadcast;
}

static void run(const char *label, uint32_t delivery, int mode, struct tally *t)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->mode = mode;
	int ch = shmc_create(sh->key, delivery, 16, MAXMSG, 0644, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	pid_t hm = th_fork_nobody(hammer, NULL);
	REQUIRE_EQ(th_await_u32(&sh->ready, 1, 20000), 0);
	pid_t pr = th_fork(producer, NULL);
	REQUIRE_EQ(th_await_u32(&sh->producing, 1, 20000), 0);
	consume(rx, t, delivery == SHMC_BROADCAST);
	atomic_store(&sh->stop, 1);
	EXPECT_CHILD_OK(pr, 30000);
	EXPECT_CHILD_OK(hm, 20000);
	printf("    %s: the reader wrote ctl %llu times; root's receiver got %u of %u sent: invalid %u, "
	       "replayed %u, out of order %u, missing %u\n", label,
	       (unsigned long long)atomic_load(&sh->writes), t->got, atomic_load(&sh->sent), t->bad,
	       t->dup, t->order, t->missing);
	if (t->last) {
		printf("    the last message, sent after the reader stopped, arrived %.0f ms after it stopped\n",
		       t->recover_ms);
	} else {
		struct th_map m;
		if (th_map_channel(sh->id, sh->key, &m) == 0) {
			th_dump_ring(&m, "the last message did not arrive");
			th_unmap(&m);
		}
	}
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* The reader rewinds a consumed slot's state to "position p, not taken":
 * the consumers are past p (head says so) and never look at it again. */
static int rewinder(void *arg)
{
	uint64_t p = *(uint64_t *)arg;
	struct th_map m;
	if (th_map_channel(sh->id, sh->key, &m) < 0)
		return 1;
	int ok = th_seq(&m, p) == SEQ(p + m.n, SLOT_FREE) && atomic_load(&m.ctl->head) > p;
	th_set_seq(&m, p, SEQ(p, SLOT_FREE));
	th_unmap(&m);
	return ok ? 0 : 2;
}

/* 4. A consumed slot rewound by a reader: the producer that comes round to it
 * sees "not consumed", head past it; within a probe it takes the slot back. */
static void rewound(void)
{
	const uint32_t N = 4;
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	int ch = shmc_create(sh->key, SHMC_UNICAST, N, 64, 0644, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	unsigned char buf[64];
	for (uint32_t i = 0; i < N; i++)
		EXPECT_EQ(shmc_try_send(ch, "first", 5, 0), 5);
	for (uint32_t i = 0; i < N; i++)
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 5); /* head moves past all N */
	struct th_map m;
	REQUIRE_EQ(th_map_channel(sh->id, sh->key, &m), 0);
	uint64_t first = m.start; /* the first position: its slot was consumed */
	th_unmap(&m);
	pid_t pid = th_fork_nobody(rewinder, &first);
	EXPECT_CHILD_OK(pid, 20000);
	uint64_t t0 = th_now_ns();
	for (uint32_t i = 0; i < N; i++)
		EXPECT_EQ(shmc_send(ch, "again", 5, 0, 2000000000ll), 5);
	printf("    a lap sent over the rewound slot in %.1f ms\n", th_ms(th_now_ns() - t0));
	for (uint32_t i = 0; i < N; i++) {
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 5);
		EXPECT_EQ(memcmp(buf, "again", 5), 0);
	}
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_attack_slots", 0);
	if (geteuid() != 0)
		return th_skip("needs root, to play uid 65534 against root's channels");
	sh = th_shared_alloc(sizeof *sh);
	struct tally t;

	th_section("1. unicast: a reader rewrites every slot state, head and wait word");
	run("unicast", SHMC_UNICAST, RANDOM_CTL, &t);
	printf("    the reader's attempt to open dat for writing: %s\n", th_errname(atomic_load(&sh->dat_rw)));
	EXPECT_EQ(atomic_load(&sh->dat_rw), -EACCES);
	EXPECT_EQ(t.bad, 0);      /* never torn, padded or forged */
	CHECK_MSG(t.last, "the channel did not recover once the reader stopped");

	th_section("2. broadcast: a reader rewrites ctl; root's cursor is its own");
	run("broadcast", SHMC_BROADCAST, RANDOM_CTL, &t);
	printf("    the reader's attempt to open root's member file for writing: %s\n",
	       th_errname(atomic_load(&sh->member_rw)));
	EXPECT_EQ(atomic_load(&sh->member_rw), -EACCES);
	/* Every message sent (in the time the producer had), once, in order. */
	EXPECT_GT(atomic_load(&sh->sent), 0);
	EXPECT_EQ(t.got, atomic_load(&sh->sent));
	EXPECT_EQ(t.bad, 0);
	EXPECT_EQ(t.dup, 0);
	EXPECT_EQ(t.order, 0);
	EXPECT_EQ(t.missing, 0);

	th_section("3. unicast: a reader frees slots early, for the producer to reuse while root copies");
	run("unicast, early frees", SHMC_UNICAST, EARLY_FREE, &t);
	EXPECT_EQ(t.bad, 0);      /* the stamp checked after the copy: never a torn message */
	CHECK_MSG(t.last, "the channel did not recover once the reader stopped");

	th_section("4. unicast: a reader rewinds a consumed slot; the producer takes it back");
	rewound();
	return th_finish();
}
