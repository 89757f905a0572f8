/* SPDX-License-Identifier: MIT */
/*
 * wake.c - the waker's half of the wait/wake protocol: choose the parked
 * members a publish or a freed slot concerns, clear each one's park, bump its
 * futex word, FUTEX_WAKE it when it has a sleeper, ring its doorbell when it
 * has one, and restore a park whose wake could not be delivered (DESIGN.md
 * section 4, "Waking"). The check that decides whether to come here at all
 * (after_publish, after_consume) is inline in internal.h; the parker's half
 * is in park.c.
 *
 * Writes: parked members' parked bits and futex words, the header's parked
 * counts (through shmc__unpark_bits) and rr_next.
 * Calls: member.c (clearing parks, the view, liveness), doorbell.c (ringing).
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int futex_wake(_Atomic uint32_t *word)
{
	long r = syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	return r < 0 ? -errno : (int)r;
}

/* Put a park back that this waker cleared and could not deliver. */
static void restore_park(struct handle *h, uint32_t idx, uint32_t bit)
{
	/* SYNC: seq_cst, as do_park's: the next publisher sees the count. */
	uint32_t old = fetch_or_seq_cst(&h->waits[idx].parked, bit);
	if (!(old & bit))
		fetch_add_seq_cst(bit == SHMC_WAIT_RECV ? &h->ctl->recv_parked : &h->ctl->send_parked,
				  1);
}

/* Clear @bit in a parked member's wait line and wake it. Returns true if this
 * call cleared the bit (the member then owns a wake); *@delivered tells
 * whether the wake reached it (DESIGN.md 4, "Waking", step 4). A wake that
 * did not, for a member alive or that we cannot tell about (our view of the
 * directory may be a millisecond old), is restored for the next publish to
 * try again; only a member probed dead loses its park. A participant that
 * sets parked bits of empty slots therefore costs each publish a few atomic
 * operations per such slot, and a refresh of the view at most once a
 * millisecond. */
static bool try_wake(struct handle *h, uint32_t idx, uint32_t bit, bool *delivered)
{
	*delivered = false;
	if (!shmc__unpark_bits(h, idx, bit))
		return false;
	struct shmc_wait *w = &h->waits[idx];
	/* SYNC: seq_cst RMW, then a seq_cst load of sleepers, paired with the
	 * sleeper's seq_cst increment of sleepers before FUTEX_WAIT reads the
	 * word (Dekker): either we see its sleeper and wake it, or its
	 * FUTEX_WAIT sees the new word and does not sleep. Also release, paired
	 * with the waiter's acquire of the word before it parked. */
	fetch_add_seq_cst(&w->wake, 1);
	bool sleeper = load_seq_cst(&w->sleepers) != 0;
	if (sleeper && futex_wake(&w->wake) > 0) {
		*delivered = true;
		return true;
	}
	for (int pass = 0; pass < 2; pass++) {
		const struct shmc_member *m = shmc__view(h, idx);
		if ((!m || m->id != load_relaxed(&w->member_id)) && shmc__view_refresh_slow(h))
			m = shmc__view(h, idx);
		if (!m)
			break; /* nobody we know of there (yet): try again later */
		uint64_t ino = load_relaxed(&h->view[idx].ino);
		int rung = shmc__doorbell_ring(h, idx, bit);
		if (rung == 0) {
			*delivered = true;
			return true;
		}
		bool alive = shmc__member_alive(h, idx);
		if (alive && (sleeper || rung == -ENOTCONN)) {
			/* A C waiter between its park and its sleep: it will see the
			 * bumped word. */
			*delivered = true;
			return true;
		}
		if (alive)
			break; /* alive but not reachable now: the next publish tries */
		/* The member we mapped is dead; the slot may hold a newer one. */
		if (idx == h->member_idx || !shmc__view_refresh_slow(h))
			break;
		if (load_relaxed(&h->view[idx].ino) == ino) {
			shmc__view_forget(h, idx);
			return true; /* dead: its park goes */
		}
	}
	restore_park(h, idx, bit);
	return true;
}

/* try_wake, counting each delivered wake in our member file (DESIGN.md 11). */
static bool wake_member(struct handle *h, uint32_t idx, uint32_t bit, bool *delivered)
{
	bool cleared = try_wake(h, idx, bit, delivered);
	if (*delivered)
		COUNT_COLD(h, wakes);
	return cleared;
}

/* After publishing a message: wake the receivers it concerns. */
void shmc__wake_receivers(struct handle *h, uint32_t target, int target_idx)
{
	bool delivered;
	if (target) {
		wake_member(h, (uint32_t)target_idx, SHMC_WAIT_RECV, &delivered);
		return;
	}
	if (h->delivery == SHMC_BROADCAST) {
		for (uint32_t i = 0; i < h->max_members; i++)
			if (load_relaxed(&h->waits[i].parked) & SHMC_WAIT_RECV)
				wake_member(h, i, SHMC_WAIT_RECV, &delivered);
		return;
	}
	/* Unicast and multicast: one wake, rotating over the parked receivers so
	 * work spreads; a wake that was not delivered is passed on. */
	uint32_t start = atomic_fetch_add_explicit(&h->ctl->rr_next, 1, memory_order_relaxed);
	for (uint32_t k = 0; k < h->max_members; k++) {
		uint32_t i = (start + k) % h->max_members;
		if (!(load_relaxed(&h->waits[i].parked) & SHMC_WAIT_RECV))
			continue;
		if (wake_member(h, i, SHMC_WAIT_RECV, &delivered) && delivered) {
			store_relaxed(&h->ctl->rr_next, i + 1);
			return;
		}
	}
}

/* After freeing room: wake every parked sender (they race for the room). */
void shmc__wake_senders(struct handle *h)
{
	bool delivered;
	for (uint32_t i = 0; i < h->max_members; i++)
		if (load_relaxed(&h->waits[i].parked) & SHMC_WAIT_SEND)
			wake_member(h, i, SHMC_WAIT_SEND, &delivered);
}
