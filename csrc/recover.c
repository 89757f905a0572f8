/* SPDX-License-Identifier: MIT */
/*
 * recover.c - what a live member does about what a dead one left in the
 * ring: messages waiting for a target that left, a slot TAKEN by a consumer
 * that died, a slot claimed or half-written by a producer that died
 * (DESIGN.md section 10, "Dead members" and "A dead consumer"). What it
 * decides from comes from the dead member's own file (its claim and taking
 * records), never from what another participant could have written.
 *
 * Writes: slot state words (turning a dead peer's slot into a dropped or
 * skipped one: ctl for unicast/multicast, dat for a broadcast producer), the
 * dropped and skipped counters, this handle's view and probe timestamps.
 * Calls: member.c (the view, liveness probes, releasing a dead member's
 * parks), recv.c (moving head past what it freed).
 */
#include "internal.h"

/* Has the receiver a targeted message waits for left the channel? A member
 * still in our view is probed (rate-limited); if its process died it is
 * forgotten, so its messages are dropped instead of holding the ring. */
bool shmc__target_gone(struct handle *h, uint32_t target)
{
	int idx = shmc__find_receiver(h, target);
	if (idx < 0)
		return true;
	if (!shmc__probe_allowed(&h->target_probe_ns) || shmc__member_alive(h, (uint32_t)idx))
		return false;
	shmc__member_release_parks(h, (uint32_t)idx);
	shmc__view_forget(h, (uint32_t)idx);
	return true;
}

/* Unicast/multicast, ring full: the oldest slot (state @q: not taken) holds
 * a published message that waits for a target that has left. The producer
 * drops it itself (no receiver may be scanning). */
bool shmc__drop_if_target_gone(struct handle *h, uint64_t pos, uint64_t q)
{
	struct shmc_slot_header *sh = slot_hdr(h, pos);
	/* SYNC: acquire, paired with publish_end's release of the stamp: the
	 * target read below is the message's. */
	if (load_acquire(&sh->word) != stamp_of(h, pos))
		return false; /* not published: its writer is at it, or dead (consumers skip it) */
	uint32_t tg = load_relaxed(&sh->target);
	if (!tg || !shmc__target_gone(h, tg))
		return false;
	/* SYNC: acq_rel CAS, as a consumer's take in queue_take. */
	if (!seq_cas_acq_rel(h, pos, &q, SEQ(pos, SLOT_TAKEN)))
		return true; /* somebody else took it: retry anyway */
	seq_store_seq_cst(h, pos, SEQ(pos + h->ring_entries, SLOT_FREE));
	fetch_add_relaxed(&h->ctl->dropped, 1);
	COUNT_COLD(h, dropped);
	shmc__advance_head(h);
	return true;
}

/* Unicast/multicast, ring full: the oldest slot was taken (FREE -> TAKEN)
 * by a consumer that died before freeing it. Its message is lost (it had
 * been taken); the slot comes back. Rate-limited probe. */
bool shmc__free_if_taker_gone(struct handle *h, uint64_t pos, uint64_t q)
{
	if (!shmc__probe_allowed(&h->target_probe_ns))
		return false;
	shmc__view_refresh_slow(h);
	for (uint32_t i = 0; i < h->max_members; i++) {
		struct shmc_member *m = shmc__view(h, i);
		if (m && load_acquire(&m->state) == MEMBER_ACTIVE &&
		    load_relaxed(&m->taking) == pos + 1 && shmc__member_alive(h, i))
			return false;
	}
	if (!seq_cas_acq_rel(h, pos, &q, SEQ(pos + h->ring_entries, SLOT_FREE)))
		return true;
	fetch_add_relaxed(&h->ctl->dropped, 1);
	COUNT_COLD(h, dropped);
	shmc__advance_head(h);
	return true;
}

/* Count one skipped slot. Unicast/multicast slots are skipped by one CAS;
 * a broadcast slot is skipped by each receiver in its own cursor and maybe
 * by a producer too: the first to skip @pos counts it (skip_mark). */
void shmc__count_skip(struct handle *h, uint64_t pos)
{
	COUNT_COLD(h, skipped); /* ours: every skip this member made */
	if (h->delivery != SHMC_BROADCAST) {
		fetch_add_relaxed(&h->ctl->skipped, 1);
		return;
	}
	uint64_t mark = load_relaxed(&h->ctl->skip_mark);
	while ((int64_t)(pos - mark) >= 0)
		if (cas_seq_cst(&h->ctl->skip_mark, &mark, pos + 1)) {
			fetch_add_relaxed(&h->ctl->skipped, 1);
			return;
		}
}

/* A writer claimed @pos but has not published it. If that writer is dead,
 * turn the slot into a skipped one (never delivered as data): a CAS of its
 * state, or with @privately (a broadcast receiver, which may not write
 * slots) nothing but the verdict. Rate-limited. Returns true if the slot is
 * to be skipped. */
bool shmc__recover_stalled(struct handle *h, uint64_t pos, uint64_t q, bool privately)
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
	uint64_t tail = load_acquire(&h->dh->tail);
	if ((int64_t)(tail - pos) <= 0)
		return false; /* not claimed yet: simply empty */
	/* The claimer recorded its claimed range in its own member file before
	 * its tail CAS: the member whose range holds pos is the writer. */
	shmc__view_refresh(h);
	bool writer_alive = false;
	for (uint32_t i = 0; i < h->max_members && !writer_alive; i++) {
		struct shmc_member *m = shmc__view(h, i);
		/* SYNC: acquire, paired with claim_positions' release of the
		 * record (see below). */
		writer_alive = m && load_acquire(&m->state) == MEMBER_ACTIVE &&
			       pos - load_acquire(&m->claim) < load_relaxed(&m->claim_n) &&
			       shmc__member_alive(h, i);
	}
	if (writer_alive)
		return false;
	/* No record names pos: its writer died, or published it and claimed
	 * again since our look at the slot (a live writer is slow here only
	 * when descheduled). Having seen its new record, we see that publish:
	 * the slot must still be as we found it. (The CAS below checks the
	 * state of a slot we may write; a broadcast receiver's verdict is
	 * private, so it looks again.) */
	if (privately && seq_load_acquire(h, pos) != q)
		return false;
	/* Unicast/multicast: a publish writes only the stamp (the state stays
	 * FREE for pos), so that is what to look at again. SYNC: acquire, as
	 * queue_take's; the record's acquire above made a publish before it
	 * visible. (A state only a corrupting peer writes is skipped whatever
	 * the stamp says: a forged state must not wedge the ring.) */
	if (h->delivery != SHMC_BROADCAST && q == SEQ(pos, SLOT_FREE) &&
	    load_acquire(&slot_hdr(h, pos)->word) == stamp_of(h, pos))
		return false;
	if (!privately) {
		uint64_t dead = h->delivery == SHMC_BROADCAST ? SEQ(pos, SLOT_TAKEN)
							      : SEQ(pos + h->ring_entries, SLOT_FREE);
		if (!seq_cas_seq_cst(h, pos, &q, dead))
			return false;
	}
	shmc__count_skip(h, pos);
	return true;
}
