/* SPDX-License-Identifier: MIT */
/*
 * test_adaptive_spin - the blocking calls spin only when that is likely to
 * pay (DESIGN.md section 4, "Adaptive spinning"), as counted by
 * shmc__test_wait_stats:
 *   - back-to-back request/reply: every wait spins, and the spins pay;
 *   - a message 2 ms after each wait starts: once four spins have missed,
 *     waits park at once, with probes backing off (few of 200 waits spin);
 *     the same for a sender waiting 2 ms for room;
 *   - spins that miss are bounded per process: 50 ms, then 1% of the time
 *     that passes, even when the traffic looks dense;
 *   - a spin stops at the deadline: a 5 us timeout returns before a 30 us
 *     spin could end, a 20 ms timeout within a few ms of 20 ms.
 * Counts, not speeds, are checked, apart from those two deadlines.
 */
#include "harness.h"
#include "shmchan_test.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

enum { WAITS, SPINS, HITS, SLEEPS, MISSED_NS, LONGEST_MISS_NS, NSTATS };

static void stats(int h, uint32_t what, uint64_t *out)
{
	REQUIRE_EQ(shmc__test_wait_stats(h, what, out), NSTATS);
}

static void print_stats(const char *what, const uint64_t *s)
{
	printf("  %s: %llu waits, %llu spun, %llu hits, %llu futex sleeps, %.2f ms in spins that missed"
	       " (longest %.1f us)\n",
	       what, (unsigned long long)s[WAITS], (unsigned long long)s[SPINS],
	       (unsigned long long)s[HITS], (unsigned long long)s[SLEEPS], th_ms(s[MISSED_NS]),
	       s[LONGEST_MISS_NS] / 1000.0);
}

struct pair {
	int tx, rx;              /* a channel's two ends */
};

static struct pair pair_new(uint32_t entries)
{
	uint64_t key = th_key();
	struct pair p;
	int ch = shmc_create(key, SHMC_UNICAST, entries, 64, 0600, 0);

	REQUIRE_GT(ch, 0);
	p.tx = shmc_attach_key(key, SHMC_SEND);
	p.rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(p.tx, 0);
	REQUIRE_GT(p.rx, 0);
	/* Subscribers keep the channel; the owner handle is not needed. */
	EXPECT_EQ(shmc_destroy(ch), 0);
	return p;
}

static void pair_close(struct pair p)
{
	EXPECT_EQ(shmc_detach(p.tx), 0);
	EXPECT_EQ(shmc_detach(p.rx), 0);
}

/* ---- back-to-back ----------------------------------------------------------- */

/* Under qemu-user (the prebuilt libraries' tests) timing says nothing. */
static bool emulated(void)
{
	const char *e = getenv("SHMCHAN_EMULATED");
	return e && *e && strcmp(e, "0") != 0;
}

/* Involuntary context switches of the calling thread so far. */
static long preempted(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : -1;
}

static bool pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

struct echo {
	struct pair req, rep;
	unsigned n;
	int cpu;
	bool pinned;
	long preempted;          /* involuntary switches during the run */
};

static void *echo_thread(void *p)
{
	struct echo *e = p;
	char buf[64];

	e->pinned = pin_to(e->cpu);
	long before = preempted();
	for (unsigned i = 0; i < e->n; i++) {
		int r = shmc_recv(e->req.rx, buf, sizeof buf, 5000000000ll);
		REQUIRE_GE(r, 0);
		REQUIRE_EQ(shmc_send(e->rep.tx, buf, (uint32_t)r, 0, 5000000000ll), r);
	}
	e->preempted = preempted() - before;
	return NULL;
}

static void round_trips(struct echo *e, unsigned n)
{
	char buf[64] = "ping";

	for (unsigned i = 0; i < n; i++) {
		REQUIRE_EQ(shmc_send(e->req.tx, buf, 8, 0, 5000000000ll), 8);
		REQUIRE_EQ(shmc_recv(e->rep.rx, buf, sizeof buf, 5000000000ll), 8);
	}
}

/* One round on two CPUs: 200 round trips to start the echo and learn, then
 * 2000 measured. 1: every measured wait for a reply spun and spins paid;
 * 0: not so, although neither thread was preempted; -1: disturbed. */
static int back_to_back_round(int cpu_a, int cpu_b)
{
	struct echo e = { pair_new(64), pair_new(64), 2200, cpu_b, false, 0 };
	uint64_t s0[NSTATS], s1[NSTATS], d[NSTATS];
	pthread_t t;
	long before;
	int verdict;

	REQUIRE(pin_to(cpu_a));
	REQUIRE_EQ(pthread_create(&t, NULL, echo_thread, &e), 0);
	round_trips(&e, 200);
	stats(e.rep.rx, SHMC_WAIT_RECV, s0);
	before = preempted();
	round_trips(&e, 2000);
	long mine = preempted() - before;
	stats(e.rep.rx, SHMC_WAIT_RECV, s1);
	pthread_join(t, NULL);
	REQUIRE(e.pinned);
	for (int i = 0; i < NSTATS; i++)
		d[i] = s1[i] - s0[i];
	print_stats("waits for a reply, last 2000 round trips", d);
	printf("  preempted: client %ld, echo %ld times\n", mine, e.preempted);
	pair_close(e.req);
	pair_close(e.rep);
	if (d[WAITS] > 0 && d[SPINS] == d[WAITS] && d[HITS] > 0)
		verdict = 1;
	else
		verdict = mine == 0 && e.preempted == 0 ? 0 : -1;
	return verdict;
}

static cpu_set_t g_all_cpus;

/* The first two CPUs this process may run on; false if it has one. */
static bool two_cpus(int cpus[2])
{
	int found = 0;

	for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
		if (CPU_ISSET(c, &g_all_cpus))
			cpus[found++] = c;
	return found == 2;
}

/* The calling thread back on every CPU. */
static void unpin(void)
{
	REQUIRE_EQ(pthread_setaffinity_np(pthread_self(), sizeof g_all_cpus, &g_all_cpus), 0);
}

static void back_to_back(void)
{
	int cpus[2], verdict = -1;

	th_section("back-to-back request/reply on two CPUs: every wait spins");
	if (emulated()) {
		printf("  skipped: emulated, timing says nothing\n");
		return;
	}
	if (!two_cpus(cpus)) {
		printf("  skipped: one CPU only\n");
		return;
	}
	/* A round where another process took one of the CPUs says nothing
	 * about the rule (no spin can pay then): try again, up to 10 times. */
	for (int round = 0; round < 10 && verdict < 0; round++)
		verdict = back_to_back_round(cpus[0], cpus[1]);
	if (verdict < 0)
		printf("  note: every round was disturbed by other processes; nothing checked\n");
	else
		CHECK_MSG(verdict == 1, "an undisturbed round where a wait for a reply did not spin");
	unpin();
}

/* ---- sparse traffic: 2 ms after each wait starts ------------------------------- */

struct sparse {
	struct pair p;
	unsigned n;
	bool room;               /* peer frees room (else: sends a message) */
	atomic_uint done;        /* operations the waiter finished */
};

static void *sparse_peer(void *arg)
{
	struct sparse *s = arg;
	char buf[64] = "late";

	for (unsigned i = 0; i < s->n; i++) {
		/* The waiter's next wait starts right after it counts one done. */
		REQUIRE_EQ(th_await_u32(&s->done, i + 1, 10000), 0);
		th_sleep_ms(2);
		if (s->room)
			REQUIRE_EQ(shmc_try_recv(s->p.rx, buf, sizeof buf), 4);
		else
			REQUIRE_EQ(shmc_try_send(s->p.tx, buf, 4, 0), 4);
	}
	return NULL;
}

static void sparse(bool room)
{
	const unsigned n = 200;
	struct sparse sp = { pair_new(1), n, room, 0 };
	uint32_t what = room ? SHMC_WAIT_SEND : SHMC_WAIT_RECV;
	int h = room ? sp.p.tx : sp.p.rx;
	uint64_t s[NSTATS];
	pthread_t t;
	char buf[64] = "full";

	th_section("%s 2 ms after each wait starts: after four missed spins, waits park at once",
		   room ? "room" : "a message");
	if (room)
		REQUIRE_EQ(shmc_try_send(sp.p.tx, buf, 4, 0), 4); /* the ring (1 slot) is full */
	else
		atomic_store(&sp.done, 0);
	REQUIRE_EQ(pthread_create(&t, NULL, sparse_peer, &sp), 0);
	/* done = 1 lets the peer act for the first wait. */
	atomic_store(&sp.done, 1);
	for (unsigned i = 0; i < n; i++) {
		int r = room ? shmc_send(sp.p.tx, buf, 4, 0, 5000000000ll)
			     : shmc_recv(sp.p.rx, buf, sizeof buf, 5000000000ll);
		REQUIRE_EQ(r, 4);
		atomic_store(&sp.done, i + 2);
	}
	pthread_join(t, NULL);
	stats(h, what, s);
	print_stats(room ? "waits for room" : "waits for a message", s);
	/* Every call waited; each wait slept unless a spin caught it (or,
	 * when preempted, the re-check after parking did). */
	EXPECT_EQ(s[WAITS], n);
	EXPECT_GE(s[SLEEPS] + 5, n - s[HITS]);
	/* Four waits on credit, then probes after 1, 2, 4, ... 128 waits:
	 * 11 spins; a few more if a preempted spin happened to catch one. */
	EXPECT_GE(s[SPINS], 4);
	EXPECT_LE(s[SPINS], 20);
	pair_close(sp.p);
}

/* ---- the miss budget ----------------------------------------------------------- */

struct fives {
	struct pair p;
	uint64_t until_ns;
	int cpu;
	atomic_uint done;        /* messages the receiver took */
};

/* After each wait starts: four times a message at once, then one 60 us
 * later. Four spins in five pay, so credit never runs out, and every fifth
 * spins its whole 30 us in vain. The sender never sleeps. */
static void *five_sender(void *arg)
{
	struct fives *f = arg;

	if (f->cpu >= 0)
		pin_to(f->cpu);
	for (unsigned i = 0; th_now_ns() < f->until_ns; i++) {
		while (atomic_load(&f->done) < i)
			;
		if (i % 5 == 4) {
			uint64_t t = th_now_ns();
			while (th_now_ns() - t < 60000)
				;
		}
		REQUIRE_EQ(shmc_send(f->p.tx, "tick", 4, 0, 5000000000ll), 4);
	}
	REQUIRE_EQ(shmc_send(f->p.tx, "stop", 4, 0, 5000000000ll), 4);
	return NULL;
}

static void miss_budget(void)
{
	struct fives f = { pair_new(256), 0, -1, 0 };
	uint64_t s[NSTATS], t0, elapsed, bound, misses;
	int cpus[2];
	pthread_t t;
	char buf[64];

	th_section("spins that pay four times, then miss: missed spinning <= 50 ms + 1%% of the time");
	if (two_cpus(cpus)) {
		REQUIRE(pin_to(cpus[0]));
		f.cpu = cpus[1];
	}
	t0 = th_now_ns();
	f.until_ns = t0 + 600000000ull;
	REQUIRE_EQ(pthread_create(&t, NULL, five_sender, &f), 0);
	for (unsigned i = 1;; i++) {
		REQUIRE_EQ(shmc_recv(f.p.rx, buf, sizeof buf, 5000000000ll), 4);
		if (!memcmp(buf, "stop", 4))
			break;
		atomic_store(&f.done, i);
	}
	elapsed = th_now_ns() - t0;
	pthread_join(t, NULL);
	unpin();
	stats(f.p.rx, SHMC_WAIT_RECV, s);
	print_stats("waits for a message", s);
	/* The budget left at t0 (at most 50 ms), its refill, and the one spin
	 * that overdraws it (at most the longest: a preempted spin counts its
	 * wall time), with 1 ms for the refill's steps. */
	bound = 50000000ull + elapsed / 100 + s[LONGEST_MISS_NS] + 1000000ull;
	printf("  %.0f ms; bound on missed spinning %.1f ms\n", th_ms(elapsed), th_ms(bound));
	EXPECT_LE(s[MISSED_NS], bound);
	/* When the spins paid as planned (the sender ran beside us), credit
	 * never ran out and the budget is what stopped the spinning. Whether
	 * the sender ran beside us is up to the scheduler (another load on
	 * the machine takes its CPU), so this is reported, not asserted: the
	 * bound above is the guarantee. */
	misses = s[SPINS] - s[HITS];
	if (!emulated() && s[HITS] >= 3 * misses && misses > 0)
		printf("  budget %s (%.1f ms missed of 50 ms)\n",
		       s[MISSED_NS] >= 40000000ull ? "spent" : "not spent: the sender was held off",
		       th_ms(s[MISSED_NS]));
	pair_close(f.p);
}

/* ---- deadlines ------------------------------------------------------------------- */

static void deadlines(void)
{
	uint64_t best = UINT64_MAX, s0[NSTATS], s1[NSTATS], t0, dt;
	char buf[8];
	unsigned spun = 0;

	th_section("a spin stops at the deadline: 5 us timeouts on fresh handles (which spin)");
	for (int i = 0; i < 20; i++) {
		struct pair p = pair_new(2);

		stats(p.rx, SHMC_WAIT_RECV, s0);
		t0 = th_now_ns();
		EXPECT_EQ(shmc_recv(p.rx, buf, sizeof buf, 5000), -ETIMEDOUT);
		dt = th_now_ns() - t0;
		stats(p.rx, SHMC_WAIT_RECV, s1);
		EXPECT_GE(dt, 5000);
		if (s1[SPINS] > s0[SPINS]) {
			spun++;
			if (dt < best)
				best = dt;
		}
		pair_close(p);
	}
	printf("  %u of 20 spun; shortest %.1f us\n", spun, best / 1000.0);
	EXPECT_GT(spun, 0);
	/* A spin that ignored the deadline would take its full 30 us. */
	if (!emulated())
		EXPECT_LT(best, 25000);

	th_section("a 20 ms timeout returns within a few ms of 20 ms");
	{
		struct pair p = pair_new(2);

		t0 = th_now_ns();
		EXPECT_EQ(shmc_recv(p.rx, buf, sizeof buf, 20000000), -ETIMEDOUT);
		dt = th_now_ns() - t0;
		printf("  returned after %.2f ms\n", th_ms(dt));
		EXPECT_GE(dt, 20000000);
		if (!emulated())
			EXPECT_LT(dt, 30000000);
		pair_close(p);
	}
}

int main(void)
{
	th_init("test_adaptive_spin", 0);
	REQUIRE_EQ(sched_getaffinity(0, sizeof g_all_cpus, &g_all_cpus), 0);
	deadlines();
	back_to_back();
	sparse(false);
	sparse(true);
	miss_budget();
	return th_finish();
}
