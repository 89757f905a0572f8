/* SPDX-License-Identifier: MIT */
/*
 * park.c - the waiter's half of the wait/wake protocol and the blocking
 * calls: announcing a park and re-checking the ring, withdrawing it (and
 * passing on a wake it will not use), the spin-then-futex wait of
 * shmc_send/shmc_recv, and shmc_park/shmc_unpark for event loops
 * (DESIGN.md section 4, "Waiting"). The waker's half is in wake.c.
 *
 * Writes: this member's wait line (parked bits, sleepers, member id hint),
 * the header's parked counts.
 * Calls: send.c and recv.c (the non-blocking attempts, and has_room /
 * has_message, inline from internal.h), member.c (clearing its own park),
 * wake.c (passing a wake on).
 */
#include "internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPIN_ITERATIONS 2000       /* bounded spin before parking (~10-20 us) */
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

/* Wait until @what may succeed, or until the deadline. Spin first (bounded,
 * and never past the deadline), then sleep on this member's futex word.
 * Returns 0 to retry, or -ETIMEDOUT. */
static int wait_for(struct handle *h, uint32_t what, uint64_t deadline)
{
	if (deadline != UINT64_MAX && now_ns() >= deadline)
		return -ETIMEDOUT; /* even if the spin below would say "ready" */
	for (int i = 0; i < SPIN_ITERATIONS; i++) {
		if (ready(h, what))
			return 0;
		cpu_relax();
		/* A ring a peer filled with forgeries makes each look cost up to
		 * a scan of the ring: the deadline is checked every time. */
		if (deadline != UINT64_MAX && now_ns() >= deadline)
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
	for (;;) {
		int r = shmc__try_send(h, buf, len, target);
		if (r != -ENOBUFS || timeout_ns == 0)
			return r;
		r = wait_for(h, SHMC_WAIT_SEND, deadline);
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
	for (;;) {
		int r = try_recv(h, buf, cap);
		if (r != -EAGAIN || timeout_ns == 0)
			return r;
		r = wait_for(h, SHMC_WAIT_RECV, deadline);
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
