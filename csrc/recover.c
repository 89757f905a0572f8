/* SPDX-License-Identifier: MIT */
/*
 * recover.c - what a live member does about what a dead one left in the
 * ring: messages waiting for a target that left, a slot TAKEN by a consumer
 * that died, a slot claimed or half-written by a producer that died
 * (DESIGN.md section 5, "Dead members" and "A dead consumer").
 *
 * Writes: slot seq words (turning a dead peer's slot into a dropped or
 * skipped one), the dropped and skipped counters, a dead target's member
 * state (FREE), this handle's probe timestamps.
 * Calls: member.c (liveness probes, releasing a dead member's parks),
 * recv.c (moving head past what it freed).
 */
#include "internal.h"

/* Has the receiver a targeted message waits for left the channel? A member
 * still marked ACTIVE is probed (rate-limited); if its process died it is
 * released, so its messages are dropped instead of holding the ring. */
bool shmc__target_gone(struct handle *h, uint32_t target)
{
	int idx = shmc__find_receiver(h, target);
	if (idx < 0)
		return true;
	if (!shmc__probe_allowed(&h->target_probe_ns) || shmc__member_alive(h, (uint32_t)idx))
		return false;
	struct shmc_member *m = &h->members[idx];
	uint32_t st = MEMBER_ACTIVE;
	shmc__member_release_parks(h, m);
	cas_seq_cst(&m->state, &st, MEMBER_FREE);
	return true;
}

/* Unicast/multicast, ring full: the oldest message waits for a target that
 * has left. The producer drops it itself (no receiver may be scanning). */
bool shmc__drop_if_target_gone(struct handle *h, uint64_t pos, uint64_t q)
{
	struct shmc_slot *s = &h->slots[pos & h->mask];
	uint32_t tg = load_relaxed(&s->target);
	if (!tg || !shmc__target_gone(h, tg))
		return false;
	/* SYNC: acq_rel CAS, as a consumer's take in queue_take. */
	if (!cas_acq_rel(&s->seq, &q, SEQ(pos, SLOT_TAKEN)))
		return true; /* somebody else took it: retry anyway */
	store_seq_cst(&s->seq, SEQ(pos + h->ring_entries, SLOT_FREE));
	fetch_add_relaxed(&h->ctl->dropped, 1);
	shmc__advance_head(h);
	return true;
}

/* Unicast/multicast, ring full: the oldest slot was taken (READY -> TAKEN)
 * by a consumer that died before freeing it. Its message is lost (it had
 * been taken); the slot comes back. Rate-limited probe. */
bool shmc__free_if_taker_gone(struct handle *h, uint64_t pos, uint64_t q)
{
	if (!shmc__probe_allowed(&h->target_probe_ns))
		return false;
	for (uint32_t i = 0; i < h->max_members; i++)
		if (load_acquire(&h->members[i].state) == MEMBER_ACTIVE &&
		    load_relaxed(&h->members[i].taking) == pos + 1 && shmc__member_alive(h, i))
			return false;
	if (!cas_acq_rel(&h->slots[pos & h->mask].seq, &q, SEQ(pos + h->ring_entries, SLOT_FREE)))
		return true;
	fetch_add_relaxed(&h->ctl->dropped, 1);
	shmc__advance_head(h);
	return true;
}

/* A writer claimed @pos but has not published it. If that writer is dead,
 * turn the slot into a skipped one (never delivered as data). Rate-limited.
 * Returns true if the slot was skipped. */
bool shmc__recover_stalled(struct handle *h, uint64_t pos, uint64_t q)
{
	uint64_t now = now_coarse_ns();
	if (load_relaxed(&h->stall_pos) != pos) {
		store_relaxed(&h->stall_pos, pos);
		store_relaxed(&h->stall_probe_ns, now);
		return false;
	}
	if (now - load_relaxed(&h->stall_probe_ns) < LIVENESS_PROBE_NS)
		return false;
	store_relaxed(&h->stall_probe_ns, now);
	uint64_t tail = load_acquire(&h->ctl->tail);
	if ((int64_t)(tail - pos) <= 0)
		return false; /* not claimed yet: simply empty */
	bool writer_alive = false;
	if (q == SEQ(pos, SLOT_WRITING)) {
		uint32_t w = load_relaxed(&h->slots[pos & h->mask].writer);
		/* The index alone is not an identity (the slot of a dead writer
		 * is reused by the next attacher): its claim must cover pos. */
		writer_alive = w >= 1 && w <= h->max_members &&
			       load_acquire(&h->members[w - 1].state) == MEMBER_ACTIVE &&
			       pos - load_relaxed(&h->members[w - 1].claim) <
				       load_relaxed(&h->members[w - 1].claim_n) &&
			       shmc__member_alive(h, w - 1);
	} else {
		/* Claimed (tail moved past) but WRITING not yet stored: the claimer
		 * recorded its claimed range in its member first. */
		for (uint32_t i = 0; i < h->max_members && !writer_alive; i++)
			writer_alive = load_acquire(&h->members[i].state) == MEMBER_ACTIVE &&
				       pos - load_relaxed(&h->members[i].claim) <
					       load_relaxed(&h->members[i].claim_n) &&
				       shmc__member_alive(h, i);
	}
	if (writer_alive)
		return false;
	uint64_t dead = h->delivery == SHMC_BROADCAST ? SEQ(pos, SLOT_TAKEN)
						      : SEQ(pos + h->ring_entries, SLOT_FREE);
	if (!cas_seq_cst(&h->slots[pos & h->mask].seq, &q, dead))
		return false;
	fetch_add_relaxed(&h->ctl->skipped, 1);
	return true;
}
