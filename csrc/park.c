/* SPDX-License-Identifier: MIT */
/*
 * park.c - the waiter's half of the wait/wake protocol and the blocking
 * calls: announcing a park and re-checking the ring, withdrawing it (and
 * passing on a wake it will not use), the wait of shmc_send/shmc_recv (an
 * adaptive spin, then the futex), and shmc_park/shmc_unpark and
 * shmc_try_recv_park for event loops
 * (DESIGN.md section 4, "Waiting"). The waker's half is in wake.c.
 *
 * Writes: this member's wait line (parked bits, sleepers, member id hint),
 * the header's parked counts; process-local: the handle's wait state, the
 * miss budget.
 * Calls: send.c and recv.c (the non-blocking attempts, and has_room /
 * has_message, inline from internal.h), member.c (clearing its own park),
 * wake.c (passing a wake on).
 */
#include "internal.h"
#include "shmchan_test.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IDLE_WAKES      4          /* futex returns with nothing to do before a pause */
#define IDLE_PAUSE_NS   1000000    /* the pause: bounds what a bumped word costs */

static int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	/* Shared (not PRIVATE) futex: waiters and wakers are different processes. */
	long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
	return r < 0 ? -errno : 0;
}

static bool clear_park(struct handle *h, uint32_t what);

static int do_park(struct handle *h, uint32_t what)
{
	struct shmc_wait *w = &h->waits[h->member_idx];
	store_relaxed(&w->member_id, h->member_id); /* a hint for wakers' views */
	/* SYNC: seq_cst RMWs, paired with after_publish/after_consume's full
	 * barrier: set the bit, then count it, then re-check the ring. */
	uint32_t old = fetch_or_seq_cst(&w->parked, what);
	if (!(old & what))
		fetch_add_seq_cst(what == SHMC_WAIT_RECV ? &h->ctl->recv_parked
							 : &h->ctl->send_parked, 1);
	/* SYNC: full barrier: the re-check's loads come after the count is
	 * visible (the loads below are acquire, not seq_cst). */
	smp_mb();
	int ready = what == SHMC_WAIT_RECV ? has_message(h) : has_room(h);
	if (!ready) {
		COUNT_COLD(h, parks);
		return 0;
	}
	clear_park(h, what);
	return 1;
}

/* Clear this member's @what bit if still set; true if this call cleared it,
 * false if a waker already had (and so delivered a wake). */
static bool clear_park(struct handle *h, uint32_t what)
{
	return shmc__unpark_bits(h, h->member_idx, what) != 0;
}

static void do_unpark(struct handle *h, uint32_t what)
{
	if (clear_park(h, what))
		return;
	/* A waker cleared the bit: this member was handed a wake it will not
	 * use. A wake-one (unicast/multicast) must be passed on. */
	if (what == SHMC_WAIT_RECV && h->delivery != SHMC_BROADCAST && has_message(h)) {
		smp_mb();
		if (load_relaxed(&h->ctl->recv_parked))
			shmc__wake_receivers(h, 0, -1);
	}
}

/* ---- adaptive spinning (DESIGN.md section 4) ------------------------------
 * A blocking call that finds nothing spins only when that is likely to pay,
 * for at most SPIN_NS and never past its deadline; otherwise it parks at
 * once. The rule is the one of the JavaScript waits (src/wait.ts). */

#define SPIN_NS            30000ull     /* a spin, when the rule says spin */
#define SPIN_CREDIT_MAX    8u           /* a hit earns 1, a miss costs 2 */
#define SPIN_CREDIT_MISS   2u
#define SPIN_DENSE_NS      SPIN_NS      /* mean period at or below: dense traffic */
#define SPIN_PERIOD_SHIFT  6            /* weight of a new period sample: 1/64 */
#define SPIN_PERIOD_MAX_NS 1000000000ull /* a longer gap counts as this */
#define PROBE_SHIFT_MAX    10u          /* probes back off to one in 1024 waits */
#define MISS_BUDGET_NS     50000000ll   /* per process: spinning in vain banked, */
#define MISS_REFILL_DIV    100          /* refilled by 1% of the time that passes */
#define MISS_REFILL_STEP_NS 1000000ull  /* refilled at most once a millisecond */

/* The process's miss budget (all handles, all threads). Relaxed: it bounds
 * CPU, not correctness; racing threads may refill or spend it a little more
 * or less than exactly. */
static _Atomic int64_t g_miss_left_ns = MISS_BUDGET_NS;
static _Atomic uint64_t g_miss_at_ns;

static bool miss_budget_allows(uint64_t now)
{
	uint64_t at = load_relaxed(&g_miss_at_ns);
	if (now > at && now - at >= MISS_REFILL_STEP_NS && cas_seq_cst(&g_miss_at_ns, &at, now)) {
		int64_t add = at ? (int64_t)((now - at) / MISS_REFILL_DIV) : MISS_BUDGET_NS;
		if (add > MISS_BUDGET_NS)
			add = MISS_BUDGET_NS;
		int64_t left = fetch_add_relaxed(&g_miss_left_ns, add) + add;
		while (left > MISS_BUDGET_NS && !cas_seq_cst(&g_miss_left_ns, &left, MISS_BUDGET_NS))
			;
	}
	return load_relaxed(&g_miss_left_ns) > 0;
}

/* A wait starts at @now: how many ns to spin before parking (0: park now). */
static uint64_t spin_budget(struct wait_state *w, uint64_t now)
{
	uint64_t last = load_relaxed(&w->last_start_ns);
	uint64_t period = 2 * SPIN_NS;
	if (last) {
		/* The time between wait starts, less this handle's own spinning
		 * in it: how dense the traffic is, whatever the spins do. */
		uint64_t gap = now > last ? now - last : 0;
		uint64_t spun = load_relaxed(&w->last_spun_ns);
		uint64_t sample = gap > spun ? gap - spun : 0;
		if (sample > SPIN_PERIOD_MAX_NS)
			sample = SPIN_PERIOD_MAX_NS;
		period = load_relaxed(&w->period_ns);
		period = period - (period >> SPIN_PERIOD_SHIFT) + (sample >> SPIN_PERIOD_SHIFT);
	}
	store_relaxed(&w->period_ns, period);
	store_relaxed(&w->last_start_ns, now);
	store_relaxed(&w->last_spun_ns, 0);
	if (!miss_budget_allows(now))
		return 0;
	if (load_relaxed(&w->debit) < SPIN_CREDIT_MAX || period <= SPIN_DENSE_NS)
		return SPIN_NS; /* recent spins paid, or the traffic is dense */
	uint32_t until = load_relaxed(&w->until_probe);
	if (until > 1) {
		store_relaxed(&w->until_probe, until - 1);
		return 0;
	}
	store_relaxed(&w->until_probe, 0);
	return SPIN_NS; /* a probe */
}

/* The spin that spin_budget allowed found what it waited for (@hit) or not,
 * after @spun ns. */
static void spin_record(struct wait_state *w, bool hit, uint64_t spun)
{
	store_relaxed(&w->last_spun_ns, spun);
	uint32_t debit = load_relaxed(&w->debit);
	if (hit) {
		fetch_add_relaxed(&w->hits, 1);
		store_relaxed(&w->debit, debit ? debit - 1 : 0);
		store_relaxed(&w->probe_shift, 0);
		store_relaxed(&w->until_probe, 0);
		return;
	}
	fetch_add_relaxed(&g_miss_left_ns, -(int64_t)spun);
	fetch_add_relaxed(&w->missed_ns, spun);
	if (spun > load_relaxed(&w->longest_miss_ns))
		store_relaxed(&w->longest_miss_ns, spun);
	uint32_t shift = load_relaxed(&w->probe_shift);
	if (debit == SPIN_CREDIT_MAX && load_relaxed(&w->until_probe) == 0 && shift < PROBE_SHIFT_MAX)
		store_relaxed(&w->probe_shift, ++shift); /* a probe missed: back off */
	debit = debit + SPIN_CREDIT_MISS < SPIN_CREDIT_MAX ? debit + SPIN_CREDIT_MISS : SPIN_CREDIT_MAX;
	store_relaxed(&w->debit, debit);
	if (debit == SPIN_CREDIT_MAX)
		store_relaxed(&w->until_probe, 1u << shift);
}

static bool ready(struct handle *h, uint32_t what)
{
	return what == SHMC_WAIT_RECV ? has_message(h) : has_room(h);
}

/*
 * Sleep while parked for up to @left_ns (DESIGN.md 4): FUTEX_WAIT on our wake
 * word, counted in `sleepers` so that a waker knows to FUTEX_WAKE us. Returns
 * when @what may succeed, or at the end of @left_ns. A wake that finds
 * nothing to do (a bumped word, a cleared bit: a stale wake, or a participant
 * rewriting ctl; a signal) parks again and sleeps again without spinning,
 * after IDLE_WAKES in a row with a pause first, so that rewriting our wait
 * line in a loop costs a sleeper at most about a thousand wakeups a second.
 * (Returning to the caller's spin instead would let each such write cost a
 * whole spin.)
 */
static void sleep_parked(struct handle *h, uint32_t what, uint32_t w, int64_t left_ns)
{
	struct shmc_wait *ws = &h->waits[h->member_idx];
	uint64_t end = now_ns() + (uint64_t)left_ns;
	unsigned idle = 0;
	for (;;) {
		/* SYNC: seq_cst, and a full barrier before the kernel reads the
		 * word in FUTEX_WAIT, paired with wake_member's seq_cst increment
		 * of the word and load of sleepers (Dekker): it sees us and wakes
		 * us, or our FUTEX_WAIT sees its new word. */
		fetch_add_seq_cst(&ws->sleepers, 1);
		smp_mb();
		uint64_t now = now_ns();
		int r = now >= end ? -ETIMEDOUT : futex_wait(&ws->wake, w, (int64_t)(end - now));
		fetch_sub_seq_cst(&ws->sleepers, 1);
		if (r == -ETIMEDOUT || poisoned(h) || ready(h, what))
			return;
		if ((now = now_ns()) >= end)
			return;
		if (++idle >= IDLE_WAKES) {
			uint64_t pause = end - now < IDLE_PAUSE_NS ? end - now : IDLE_PAUSE_NS;
			struct timespec ts = { 0, (long)pause };
			nanosleep(&ts, NULL);
		}
		/* SYNC: acquire, as before parking: read before parking again, so
		 * that a wake between the park and the sleep is not lost. */
		w = load_acquire(&ws->wake);
		if (!(load_seq_cst(&ws->parked) & what) && do_park(h, what))
			return; /* parked again, and the re-check found it ready */
	}
}

/* The spin of a blocking call that found nothing, once per call. Returns 1
 * when @what may succeed now, 0 to park, -ETIMEDOUT at the deadline. */
static int spin_for(struct handle *h, uint32_t what, uint64_t deadline)
{
	struct wait_state *w = &h->wait[what == SHMC_WAIT_SEND];
	uint64_t start = now_ns();
	if (start >= deadline)
		return -ETIMEDOUT; /* even if a look now would say "ready" */
	fetch_add_relaxed(&w->waits, 1);
	uint64_t budget = spin_budget(w, start);
	if (!budget)
		return 0;
	fetch_add_relaxed(&w->spins, 1);
	uint64_t end = deadline - start > budget ? start + budget : deadline;
	uint64_t now;
	bool hit;
	/* Every round checks the clock: the spin ends at its budget or at the
	 * deadline, whichever comes first. */
	do {
		hit = ready(h, what);
		if (hit)
			break;
		cpu_relax();
	} while ((now = now_ns()) < end);
	if (hit)
		now = now_ns();
	spin_record(w, hit, now - start);
	if (hit)
		return 1;
	return now >= deadline ? -ETIMEDOUT : 0;
}

/* Wait until @what may succeed, or until the deadline: the first time in a
 * call (*spun false), spin if the rule says so (never past the deadline);
 * then sleep on this member's futex word. Returns 0 to retry, or
 * -ETIMEDOUT. */
static int wait_for(struct handle *h, uint32_t what, uint64_t deadline, bool *spun)
{
	if (!*spun) {
		*spun = true;
		int s = spin_for(h, what, deadline);
		if (s != 0)
			return s > 0 ? 0 : s;
	} else if (deadline != UINT64_MAX && now_ns() >= deadline) {
		return -ETIMEDOUT;
	}
	/* SYNC: acquire, paired with wake_member's increment. Read before
	 * parking, so a wake between park and sleep is not lost. */
	uint32_t w = load_acquire(&h->waits[h->member_idx].wake);
	if (do_park(h, what))
		return 0;
	int64_t left = -1;
	if (deadline != UINT64_MAX) {
		uint64_t now = now_ns();
		if (now >= deadline) {
			do_unpark(h, what);
			return -ETIMEDOUT;
		}
		left = (int64_t)(deadline - now);
	}
	/* A dead writer or receiver is only noticed by probing: sleep in
	 * bounded steps so recovery runs even with no further sends. */
	if (left < 0 || left > 100000000)
		left = 100000000;
	fetch_add_relaxed(&h->wait[what == SHMC_WAIT_SEND].sleeps, 1);
	sleep_parked(h, what, w, left);
	/* Woken, timed out or spurious: withdraw the park if still there. No
	 * wake is passed on: the caller retries at once, and a message it then
	 * misses was taken by another receiver. */
	clear_park(h, what);
	return 0;
}

static uint64_t deadline_from(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return UINT64_MAX;
	return now_ns() + (uint64_t)timeout_ns;
}

SHMC_API int shmc_send(int handle, const void *buf, uint32_t len, uint32_t target,
		       int64_t timeout_ns)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (poisoned(h))
		return -EIO;
	uint64_t deadline = deadline_from(timeout_ns);
	bool spun = false;
	for (;;) {
		int r = shmc__try_send(h, buf, len, target);
		if (r != -ENOBUFS || timeout_ns == 0)
			return r;
		r = wait_for(h, SHMC_WAIT_SEND, deadline, &spun);
		if (r < 0)
			return poisoned(h) ? -EIO : r;
	}
}

SHMC_API int shmc_recv(int handle, void *buf, uint32_t cap, int64_t timeout_ns)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	uint64_t deadline = deadline_from(timeout_ns);
	bool spun = false;
	for (;;) {
		int r = try_recv(h, buf, cap);
		if (r != -EAGAIN || timeout_ns == 0)
			return r;
		r = wait_for(h, SHMC_WAIT_RECV, deadline, &spun);
		if (r < 0) {
			r = try_recv(h, buf, cap); /* a last look at the deadline */
			return r == -EAGAIN ? -ETIMEDOUT : r;
		}
	}
}

SHMC_API int shmc_park(int handle, uint32_t what)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (what != SHMC_WAIT_RECV && what != SHMC_WAIT_SEND)
		return -EINVAL;
	if (what == SHMC_WAIT_RECV && !(h->access & SHMC_RECV))
		return -EACCES;
	if (what == SHMC_WAIT_SEND && !(h->access & SHMC_SEND))
		return -EACCES;
	if (poisoned(h))
		return -EIO;
	/* Parked without a doorbell, nothing could wake it. */
	uint32_t bell = what == SHMC_WAIT_RECV ? MEMBER_BELL_RECV : MEMBER_BELL_SEND;
	if (!(load_relaxed(&h->me->bells) & bell))
		return -ENOTCONN;
	return do_park(h, what);
}

SHMC_API int shmc_unpark(int handle, uint32_t what)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (what != SHMC_WAIT_RECV && what != SHMC_WAIT_SEND)
		return -EINVAL;
	do_unpark(h, what);
	return 0;
}

/* wait_for for the blocking zero-copy calls (zerocopy.c); *spun as
 * wait_for's (false at the start of a call). */
int shmc__wait_for(struct handle *h, uint32_t what, uint64_t deadline, bool *spun)
{
	return wait_for(h, what, deadline, spun);
}

SHMC_API int shmc_try_recv_park(int handle, void *buf, uint32_t cap, uint32_t flags)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (flags & ~SHMC_TAKE_UNPARK)
		return -EINVAL;
	int r = try_recv(h, buf, cap);
	if (r == -EAGAIN && !(load_relaxed(&h->me->bells) & MEMBER_BELL_RECV))
		return -ENOTCONN; /* parked without a doorbell, nothing could wake it */
	if (r != -EAGAIN) {
		/* The caller's wait is over: withdraw its park, passing on a wake
		 * it was handed for a message it did not take. */
		if (r >= 0 && (flags & SHMC_TAKE_UNPARK))
			do_unpark(h, SHMC_WAIT_RECV);
		return r;
	}
	if (!do_park(h, SHMC_WAIT_RECV))
		return -EAGAIN; /* parked */
	/* The re-check after publishing the park saw a message, and the park
	 * is withdrawn again: one more take. */
	r = try_recv(h, buf, cap);
	return r == -EAGAIN ? -EBUSY : r;
}

SHMC_API int shmc__test_wait_stats(int handle, uint32_t what, uint64_t *out)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (what != SHMC_WAIT_RECV && what != SHMC_WAIT_SEND)
		return -EINVAL;
	if (!out)
		return -EFAULT;
	struct wait_state *w = &h->wait[what == SHMC_WAIT_SEND];
	out[0] = load_relaxed(&w->waits);
	out[1] = load_relaxed(&w->spins);
	out[2] = load_relaxed(&w->hits);
	out[3] = load_relaxed(&w->sleeps);
	out[4] = load_relaxed(&w->missed_ns);
	out[5] = load_relaxed(&w->longest_miss_ns);
	return 6;
}
