/* SPDX-License-Identifier: MIT */
/*
 * test_attack_deadline - timeouts hold whatever a peer writes (csrc/DESIGN.md
 * 4 and 9). Root owns the channels (mode 0644: uid 65534 may receive, so it
 * may write ctl, which receivers share); the attacker is a child running as
 * uid 65534 that rewrites ctl in a loop.
 *
 *   - every slot of a 32768-slot unicast ring marked READY (0.2.0's
 *     case: the forged states have no stamp in dat, which the reader cannot
 *     write), marked TAKEN, marked consumed, or marked READY at a later lap;
 *     head moved far behind: root's shmc_recv with a 20 ms timeout returns
 *     -ETIMEDOUT within a few ms of 20 ms (not counting time spent waiting
 *     for a CPU), and never returns a forged message;
 *   - the same deadline for shmc_send on a full ring of 32768 slots, which
 *     may also succeed at once: forged states are repaired (or freed slots
 *     taken) by the producer, whatever the ring held lost;
 *   - the attacker bumps root's futex word and sets its park bits in a loop
 *     while root sleeps in a 300 ms shmc_recv: root returns at 300 ms and
 *     uses a small part of a CPU (the sleep's bound on spurious wakeups).
 */
#include "harness.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#define RING SHMC_MAX_RING_ENTRIES
#define SLACK_NS 15000000ull     /* "within a few ms": 15 ms, for a loaded CI machine */

enum forgery { F_READY, F_TAKEN, F_CONSUMED, F_READY_LATER, F_HEAD_BEHIND, F_WAKE_WORD, F_COUNT };
static const char *fname[] = { "every slot READY (no stamp)", "every slot TAKEN",
			       "every slot consumed", "every slot READY a lap later",
			       "head far behind, slots consumed", "the futex word bumped in a loop" };

struct shared {
	uint64_t key;
	int32_t id;
	int forgery;
	uint32_t victim_slot;
	atomic_uint ready, stop;
	atomic_ullong writes;
	atomic_int map_err, dat_err;
};

static struct shared *sh;

/* Time this thread spent runnable but waiting for a CPU (ns). */
static uint64_t runqueue_wait_ns(void)
{
	FILE *fp = fopen("/proc/thread-self/schedstat", "r");
	unsigned long long run = 0, wait = 0;
	if (fp) {
		if (fscanf(fp, "%llu %llu", &run, &wait) != 2)
			wait = 0;
		fclose(fp);
	}
	return wait;
}

static int forger(void *arg)
{
	(void)arg;
	struct th_map m;
	int err = th_map_channel(sh->id, sh->key, &m);
	atomic_store(&sh->map_err, err);
	if (err < 0)
		return 1;
	/* What the reader may not do: write dat. */
	char path[160];
	snprintf(path, sizeof path, "%s/dat", m.dir);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	atomic_store(&sh->dat_err, fd < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	uint64_t t = atomic_load(th_tail(&m));
	uint64_t n = m.n;
	bool first = true;
	while (!atomic_load(&sh->stop)) {
		for (uint64_t i = 0; i < n && !atomic_load(&sh->stop); i++) {
			uint64_t p = t + i;
			switch (sh->forgery) {
			case F_READY: th_set_seq(&m, p, SEQ(p, SLOT_READY)); break;
			case F_TAKEN: th_set_seq(&m, p, SEQ(p, SLOT_TAKEN)); break;
			case F_CONSUMED: th_set_seq(&m, p, SEQ(p + n, SLOT_FREE)); break;
			case F_READY_LATER: th_set_seq(&m, p, SEQ(p + n, SLOT_READY)); break;
			case F_HEAD_BEHIND:
				th_set_seq(&m, p, SEQ(p + n, SLOT_FREE));
				atomic_store(&m.ctl->head, t - 5 * n);
				break;
			default: {
				struct shmc_wait *w = &m.waits[sh->victim_slot];
				atomic_fetch_add(&w->wake, 1);
				atomic_fetch_or(&w->parked, SHMC_WAIT_RECV | SHMC_WAIT_SEND);
				i = n; /* one bump per pass */
				break;
			}
			}
			atomic_fetch_add(&sh->writes, 1);
		}
		if (first) {
			atomic_store(&sh->ready, 1);
			first = false;
		}
	}
	th_unmap(&m);
	return 0;
}

static void start(int forgery, pid_t *pid)
{
	sh->forgery = forgery;
	atomic_store(&sh->ready, 0);
	atomic_store(&sh->stop, 0);
	atomic_store(&sh->writes, 0);
	*pid = th_fork_nobody(forger, NULL);
	REQUIRE_MSG(th_await_u32(&sh->ready, 1, 20000) == 0, "the forger did not start (%s)",
		    th_errname(atomic_load(&sh->map_err)));
}

static void stop(pid_t pid)
{
	atomic_store(&sh->stop, 1);
	EXPECT_CHILD_OK(pid, 20000);
}

/* A call with a @timeout_ms timeout must return -ETIMEDOUT within a few ms
 * (or, when @done >= 0, succeed with @done at any time before). */
static void timed(const char *what, int (*call)(int h, void *buf, int64_t t), int h,
		  unsigned timeout_ms, int done)
{
	static unsigned char buf[256];
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	uint64_t q0 = runqueue_wait_ns(), t0 = th_now_ns();
	int r = call(h, buf, (int64_t)timeout_ms * 1000000);
	uint64_t took = th_now_ns() - t0, queued = runqueue_wait_ns() - q0;
	getrusage(RUSAGE_THREAD, &r1);
	double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
			      r0.ru_stime.tv_sec) * 1e3 +
		     (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
			      r0.ru_stime.tv_usec) / 1e3;
	uint64_t own = took > queued ? took - queued : 0;
	printf("    %-34s %s after %.2f ms (%.2f ms waiting for a CPU), %.1f ms of CPU\n", what,
	       th_errname(r), th_ms(took), th_ms(queued), cpu);
	if (done >= 0 && r == done) {
		/* Succeeded: what the forger wrote was taken for room. */
	} else {
		CHECK_MSG(r == -ETIMEDOUT, "%s: returned %s, not -ETIMEDOUT", what, th_errname(r));
		CHECK_MSG(took >= (uint64_t)timeout_ms * 1000000 - 1000000, "%s: a %u ms timeout "
			  "returned after %.2f ms", what, timeout_ms, th_ms(took));
	}
	CHECK_MSG(own <= (uint64_t)timeout_ms * 1000000 + SLACK_NS,
		  "%s: a %u ms timeout returned after %.2f ms of its own time", what, timeout_ms,
		  th_ms(own));
	if (timeout_ms >= 300)
		CHECK_MSG(cpu < 0.3 * timeout_ms, "%s: %.1f ms of CPU in a %u ms wait", what, cpu,
			  timeout_ms);
}

static int recv_call(int h, void *buf, int64_t t)
{
	return shmc_recv(h, buf, 256, t);
}

static int send_call(int h, void *buf, int64_t t)
{
	return shmc_send(h, buf, 16, 0, t);
}

/* The forger bumps @h's futex word and sets its parked bits in a loop while
 * @call waits @timeout_ms: the call still times out at its deadline. */
static void wake_word_attack(int (*call)(int h, void *buf, int64_t t), int h, unsigned timeout_ms)
{
	struct th_map m;
	REQUIRE_EQ(th_map_channel(sh->id, sh->key, &m), 0);
	sh->victim_slot = (uint32_t)th_member_of(&m, h);
	th_unmap(&m);
	pid_t p;
	start(F_WAKE_WORD, &p);
	timed(fname[F_WAKE_WORD], call, h, timeout_ms, -1);
	stop(p);
	printf("    (the reader bumped the word %llu times)\n",
	       (unsigned long long)atomic_load(&sh->writes));
}

int main(void)
{
	th_init("test_attack_deadline", 0);
	if (geteuid() != 0)
		return th_skip("needs root, to play uid 65534 against root's channels");
	sh = th_shared_alloc(sizeof *sh);

	th_section("a reader forges ctl on a %u-slot ring; root's 20 ms receives", RING);
	sh->key = th_key();
	int ch = shmc_create(sh->key, SHMC_UNICAST, RING, 64, 0644, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	for (int f = F_READY; f <= F_HEAD_BEHIND; f++) {
		pid_t p;
		start(f, &p);
		timed(fname[f], recv_call, rx, 20, -1);
		unsigned char b[64];
		int r = shmc_try_recv(rx, b, sizeof b);
		CHECK_MSG(r == -EAGAIN, "%s: try_recv returned %s: a forged message", fname[f],
			  th_errname(r));
		stop(p);
		if (f == F_READY)
			CHECK_MSG(atomic_load(&sh->dat_err) == -EACCES, "the reader opened dat for writing: %s",
				  th_errname(atomic_load(&sh->dat_err)));
	}
	printf("    (the reader's attempt to open dat for writing: %s)\n",
	       th_errname(atomic_load(&sh->dat_err)));

	th_section("the futex word of a root receiver sleeping 300 ms, bumped in a loop");
	wake_word_attack(recv_call, rx, 300);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);

	th_section("a reader forges ctl on a full %u-slot ring; root's 20 ms sends", RING);
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	ch = shmc_create(sh->key, SHMC_UNICAST, RING, 16, 0644, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int tx = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_GT(tx, 0);
	for (uint32_t i = 0; i < RING; i++)
		REQUIRE_EQ(shmc_try_send(tx, "fill", 4, 0), 4);
	for (int f = F_READY; f <= F_HEAD_BEHIND; f++) {
		/* A reader may free slots ("consumed", head): a send then
		 * succeeds, as it does when a producer repairs a state that only
		 * a corrupting peer writes (DESIGN.md 7, "Claim"); else it waits
		 * out its deadline. Either way it returns in time. */
		pid_t p;
		start(f, &p);
		timed(fname[f], send_call, tx, 20, 16);
		stop(p);
		while (shmc_try_send(tx, "fill", 4, 0) == 4)
			; /* full again for the next forgery */
	}
	/* A send that must wait (the ring is full), its wait words bumped. */
	wake_word_attack(send_call, tx, 20);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
