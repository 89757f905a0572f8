/* SPDX-License-Identifier: MIT */
/*
 * wake.c - the waker's half of the wait/wake protocol: choose the parked
 * members a publish or a freed slot concerns, clear each one's park, bump
 * its futex word, wake it and ring its doorbell (DESIGN.md section 4,
 * "Waiting"). The check that decides whether to come here at all
 * (after_publish, after_consume) is inline in internal.h; the parker's half
 * is in park.c.
 *
 * Writes: parked members' parked bits and futex words, the header's parked
 * counts (through shmc__unpark_bits) and rr_next.
 * Calls: member.c (clearing parks, liveness), doorbell.c (ringing).
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

/* Clear @bit in a parked member and wake it. Returns true if this call
 * cleared the bit (the member now owns a wake), false if it was not parked. */
static bool wake_member(struct handle *h, struct shmc_member *m, uint32_t bit,
			char rung[][SHMC_DOORBELL_MAX + 1], unsigned *nrung, bool *delivered)
{
	if (!shmc__unpark_bits(h, m, bit))
		return false;
	/* SYNC: release, paired with the waiter's futex_wait value check. */
	atomic_fetch_add_explicit(&m->wake, 1, memory_order_release);
	int woken = futex_wake(&m->wake);
	char addr[SHMC_DOORBELL_MAX + 1];
	memcpy(addr, m->doorbell, SHMC_DOORBELL_MAX);
	addr[SHMC_DOORBELL_MAX] = 0;
	bool rung_ok = false;
	if (addr[0]) {
		bool seen = false;
		for (unsigned i = 0; i < *nrung && !seen; i++)
			seen = strcmp(rung[i], addr) == 0;
		if (seen) {
			rung_ok = true;
		} else {
			rung_ok = shmc__doorbell_ring(addr) == 0;
			if (rung_ok && *nrung < 8)
				memcpy(rung[(*nrung)++], addr, sizeof addr);
		}
	}
	/* A futex sleeper or a listening doorbell took the wake. Otherwise the
	 * member is between park() and its sleep (it will see the bumped word)
	 * or dead: ask the kernel which. */
	*delivered = woken > 0 || rung_ok || shmc__member_alive(h, (uint32_t)(m - h->members));
	return true;
}

/* After publishing a message: wake the receivers it concerns. */
void shmc__wake_receivers(struct handle *h, uint32_t target, int target_idx)
{
	char rung[8][SHMC_DOORBELL_MAX + 1];
	unsigned nrung = 0;
	bool delivered;
	if (target) {
		wake_member(h, &h->members[target_idx], SHMC_WAIT_RECV, rung, &nrung, &delivered);
		return;
	}
	if (h->delivery == SHMC_BROADCAST) {
		for (uint32_t i = 0; i < h->max_members; i++)
			if (load_relaxed(&h->members[i].parked) & SHMC_WAIT_RECV)
				wake_member(h, &h->members[i], SHMC_WAIT_RECV, rung, &nrung, &delivered);
		return;
	}
	/* Unicast and multicast: one wake, rotating over the parked receivers so
	 * work spreads; a wake that reached a dead member is passed on. */
	uint32_t start = atomic_fetch_add_explicit(&h->ctl->rr_next, 1, memory_order_relaxed);
	for (uint32_t k = 0; k < h->max_members; k++) {
		uint32_t i = (start + k) % h->max_members;
		struct shmc_member *m = &h->members[i];
		if (!(load_relaxed(&m->parked) & SHMC_WAIT_RECV))
			continue;
		if (wake_member(h, m, SHMC_WAIT_RECV, rung, &nrung, &delivered) && delivered) {
			store_relaxed(&h->ctl->rr_next, i + 1);
			return;
		}
	}
}

/* After freeing room: wake every parked sender (they race for the room). */
void shmc__wake_senders(struct handle *h)
{
	char rung[8][SHMC_DOORBELL_MAX + 1];
	unsigned nrung = 0;
	bool delivered;
	for (uint32_t i = 0; i < h->max_members; i++)
		if (load_relaxed(&h->members[i].parked) & SHMC_WAIT_SEND)
			wake_member(h, &h->members[i], SHMC_WAIT_SEND, rung, &nrung, &delivered);
}
