/* SPDX-License-Identifier: MIT */
/*
 * send.c - the producer's side: the broadcast gate, claiming positions with
 * one tail CAS, filling and publishing slots, the non-blocking sends
 * (DESIGN.md section 7, "Claim", "Broadcast consume" for the gate, and
 * "Targeted sends").
 *
 * Writes: tail (dat), the slots it claimed (unicast/multicast: stamp, length,
 * target and payload in dat, never ctl but to drop a departed target's
 * message; broadcast: state, length, target and payload in dat), this
 * member's claim record, this handle's gate and head caches and view.
 * Calls: member.c (the view, finding a target, liveness), recover.c (slots
 * left by the dead when the ring looks full), wake.c (through after_publish).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Gate for broadcast: the slowest live receiver's cursor (wrap-safe min),
 * or @t when there is none, from the receivers' own member files as our view
 * has them (the caller refreshes it when the answer matters: DESIGN.md 7).
 * Dead receivers found gating (with @probe) stop gating in our view. */
uint64_t shmc__broadcast_gate(struct handle *h, uint64_t t, bool probe)
{
	uint64_t gate = t;
	for (uint32_t i = 0; i < h->max_members; i++) {
		struct shmc_member *m = shmc__view(h, i);
		if (!m)
			continue;
		/* SYNC: seq_cst, paired with member_leave's seq_cst LEFT (a
		 * joiner is ordered by the directory, DESIGN.md 7). */
		if (load_seq_cst(&m->state) != MEMBER_ACTIVE)
			continue;
		uint32_t a = m->access;
		if (!(a & SHMC_RECV) || (a & MEMBER_OWNER))
			continue;
		/* SYNC: acquire, paired with the receiver's seq_cst cursor store
		 * after it copied the message out. */
		uint64_t c = load_acquire(&m->cursor);
		uint64_t lag = t - c;
		if ((int64_t)lag <= 0 || lag > h->ring_entries)
			continue; /* ahead of t (racing join) or corrupt: not a gate */
		if (probe && lag == h->ring_entries && !shmc__member_alive(h, i)) {
			/* The slowest receiver is dead: it stops gating. */
			shmc__member_release_parks(h, i);
			shmc__view_forget(h, i);
			continue;
		}
		if (t - c > t - gate)
			gate = c;
	}
	return gate;
}

/* Broadcast: how many positions from @t the gate allows (0 when full). */
static uint64_t broadcast_room(struct handle *h, uint64_t t, uint64_t want)
{
	const uint64_t n = h->ring_entries;
	uint64_t gate = load_relaxed(&h->gate);
	if (t + want - 1 - gate < n)
		return want;
	/* A recompute sees every receiver that joined before it: the view is
	 * refreshed from the directory each time (DESIGN.md 7). */
	shmc__view_refresh(h);
	gate = shmc__broadcast_gate(h, t, false);
	if (t - gate >= n && shmc__probe_allowed(&h->gate_probe_ns))
		gate = shmc__broadcast_gate(h, t, true);
	store_relaxed(&h->gate, gate);
	if (t - gate >= n)
		return 0;
	uint64_t room = n - (t - gate);
	return room < want ? room : want;
}

/* Is the slot of position @t free for it (its state, when read, in *@q)?
 * Unicast/multicast first ask the head this handle last saw (DESIGN.md 7,
 * "Claim"): while the ring has room a producer then reads no line a
 * consumer writes. Else the slot's own state decides, and when it says free
 * the handle loads head again for the claims that follow; a full ring costs
 * a waiting producer one line per try, as it always did. */
static bool claimable(struct handle *h, uint64_t t, uint64_t *q)
{
	const uint64_t n = h->ring_entries;
	if (h->delivery != SHMC_BROADCAST && t - load_relaxed(&h->head_seen) < n)
		return true; /* t - N was consumed: below a head we saw */
	/* SYNC: acquire, paired with the consumer's release that freed the
	 * slot (unicast) or the producer's READY publish (broadcast). */
	*q = seq_load_acquire(h, t);
	if (!slot_free_for(h, t, *q))
		return false;
	if (h->delivery != SHMC_BROADCAST) {
		/* SYNC: acquire, paired with advance_head's seq_cst CAS, which
		 * follows the release stores of FREE it moves over: every
		 * position below the head it stored is consumed. Taken only if
		 * the slot of hd - 1 says so too, as it does for every head
		 * consumers moved: a head forged at random is mostly refused. */
		uint64_t hd = load_acquire(&h->ctl->head);
		if (t - hd < n && (int64_t)(seq_load_acquire(h, hd - 1) - SEQ(hd - 1 + n, SLOT_FREE)) >= 0)
			store_relaxed(&h->head_seen, hd);
	}
	return true;
}

/* Claim up to @want consecutive positions with one CAS of tail. On success
 * *pos_out is the first and the count is returned (>= 1). */
static int claim_positions(struct handle *h, uint32_t want, uint64_t *pos_out)
{
	struct shmc_dat_header *dh = h->dh;
	const uint64_t n = h->ring_entries;
	if (want > n)
		want = (uint32_t)n;
	uint64_t t = load_relaxed(&dh->tail);
	for (uint32_t attempt = 0; attempt < (1u << 20); attempt++) {
		uint64_t q = 0, qn;
		if (claimable(h, t, &q)) {
			uint64_t got = 1;
			while (got < want && claimable(h, t + got, &qn))
				got++;
			if (h->delivery == SHMC_BROADCAST && !(got = broadcast_room(h, t, got)))
				return -ENOBUFS;
			uint64_t prev = load_relaxed(&h->me->claim);
			uint32_t prev_n = load_relaxed(&h->me->claim_n);
			/* SYNC: release, paired with recover_stalled's acquire of
			 * the record: whoever sees this claim sees the publishes of
			 * our previous one (their stamps, or READY), so a position
			 * our record no longer names is never taken for a dead
			 * writer's. */
			store_release(&h->me->claim, t);
			store_relaxed(&h->me->claim_n, (uint32_t)got);
			/* SYNC: seq_cst, paired with member_join (gate) and with other
			 * producers' CAS. */
			if (cas_seq_cst(&dh->tail, &t, t + got)) {
				*pos_out = t;
				return (int)got;
			}
			/* Lost: do not go on naming positions another producer owns. */
			store_relaxed(&h->me->claim_n, prev_n);
			store_relaxed(&h->me->claim, prev);
			continue; /* t reloaded by the failed CAS */
		}
		uint64_t t2 = load_relaxed(&dh->tail);
		if ((int64_t)(q - SEQ(t, SLOT_FREE)) < 0) {
			/* The slot still holds the previous lap: full, unless tail moved,
			 * or unless that message (not taken: its stamp says whether
			 * it is published) waits for a target that is gone. */
			if (t2 == t && h->delivery != SHMC_BROADCAST && q == SEQ(t - n, SLOT_FREE) &&
			    shmc__drop_if_target_gone(h, t - n, q))
				continue;
			if (t2 == t && h->delivery != SHMC_BROADCAST && q == SEQ(t - n, SLOT_TAKEN) &&
			    shmc__free_if_taker_gone(h, t - n, q))
				continue;
			if (t2 == t && h->delivery == SHMC_BROADCAST &&
			    (q == SEQ(t - n, SLOT_WRITING) || q == SEQ(t - n, SLOT_FREE)) &&
			    shmc__recover_stalled(h, t - n, q, false))
				continue;
		}
		/* Unicast/multicast, tail unmoved: a state that is neither free for
		 * t nor t - N's (not taken, or taken) is only what a corrupting
		 * peer writes. It would hold the ring for ever (no consumer looks
		 * at a position not claimed yet): make the slot free for t. So too,
		 * looked at every 10 ms, a slot that says t - N is not consumed
		 * while head is past t - N: consumers have moved on and will not
		 * come back to it (a peer rewound its state). Whatever it hid is
		 * lost, as the peer could make it; a consumer still copying from
		 * it drops its copy (the stamp check).
		 * SYNC: seq_cst CAS, as a consumer's free; bounded by the loop.
		 * head: acquire, as claimable's. */
		if (t2 == t && h->delivery != SHMC_BROADCAST &&
		    ((q != SEQ(t - n, SLOT_FREE) && q != SEQ(t - n, SLOT_TAKEN)) ||
		     (shmc__probe_allowed(&h->full_probe_ns) &&
		      (int64_t)(load_acquire(&h->ctl->head) - (t - n)) > 0))) {
			seq_cas_seq_cst(h, t, &q, SEQ(t, SLOT_FREE));
			continue;
		}
		/* Another producer got ahead (tail moved): try there. Else a full
		 * ring (a broadcast state that is neither free nor an earlier lap
		 * is only what a corrupting sender writes: full, not a retry loop). */
		if (t2 == t)
			return -ENOBUFS;
		t = t2;
	}
	return -ENOBUFS;
}

static int check_send(struct handle *h, uint32_t target, int *tidx)
{
	if (!(h->access & SHMC_SEND))
		return -EACCES;
	*tidx = -1;
	if (target) {
		*tidx = shmc__find_receiver(h, target);
		if (*tidx < 0)
			return -ENOENT;
	}
	return 0;
}

/* The first half of a publish (DESIGN.md 7, "Publish"): unicast/multicast,
 * the stamp "being written" (the slot's state in ctl is the consumers' and
 * stays as they left it); broadcast, the slot's state WRITING. */
static inline void publish_begin(struct handle *h, uint64_t t)
{
	if (h->delivery == SHMC_BROADCAST) {
		seq_store_relaxed(h, t, SEQ(t, SLOT_WRITING));
		return;
	}
	store_relaxed(&slot_hdr(h, t)->word, stamp_writing(h, t));
	/* SYNC: the "writing" stamp before the bytes, paired with queue_take's
	 * smp_rmb before its second stamp load (a seqlock): a consumer still
	 * copying the slot's previous message sees the stamp change if it
	 * could have seen any of these bytes. */
	smp_wmb();
}

/* The second half: length, target, then the publish itself: the stamp
 * "complete" (unicast/multicast) or READY (broadcast). The payload is in
 * place. @batched: more publishes follow, and the caller issues one full
 * barrier after the last (instead of a seq_cst store each). */
static inline void publish_end(struct handle *h, uint64_t t, uint32_t len, uint32_t target,
			       bool batched)
{
	struct shmc_slot_header *sh = slot_hdr(h, t);
	store_relaxed(&sh->len, len);
	store_relaxed(&sh->target, target);
	/* SYNC: release (as part of seq_cst), paired with the consumers'
	 * acquire of the stamp (unicast/multicast: queue_take) or of seq
	 * (broadcast): length, payload and target are visible before the
	 * publish is. seq_cst for after_publish's Dekker (a batch fences once). */
	if (h->delivery == SHMC_BROADCAST) {
		if (batched)
			seq_store_release(h, t, SEQ(t, SLOT_READY));
		else
			seq_store_seq_cst(h, t, SEQ(t, SLOT_READY));
	} else if (batched) {
		store_release(&sh->word, stamp_of(h, t));
	} else {
		store_seq_cst(&sh->word, stamp_of(h, t));
	}
}

/* Fill a claimed slot and publish it (DESIGN.md 7, "Publish"). */
static inline void publish(struct handle *h, uint64_t t, const void *buf, uint32_t len,
			   uint32_t target, bool batched)
{
	publish_begin(h, t);
	if (len)
		memcpy(slot_payload(h, t), buf, len);
	publish_end(h, t, len, target, batched);
}

/* For zerocopy.c: a loan is a claim and the first half of a publish, its
 * commit the second half (DESIGN.md 7, "Zero copy"). Under the send turn. */
int shmc__claim_one(struct handle *h, uint64_t *pos)
{
	int r = claim_positions(h, 1, pos);
	if (r >= 0)
		publish_begin(h, *pos);
	return r < 0 ? r : 0;
}

void shmc__publish_loaned(struct handle *h, uint64_t t, uint32_t len, uint32_t target)
{
	publish_end(h, t, len, target, false);
}

int shmc__try_send(struct handle *h, const void *buf, uint32_t len, uint32_t target)
{
	if (poisoned(h))
		return -EIO;
	int tidx;
	int err = check_send(h, target, &tidx);
	if (err < 0)
		return err;
	if (len > h->max_msg)
		return -EMSGSIZE;
	if (len && !buf)
		return -EFAULT;
	uint64_t t;
	send_lock(h);
	err = h->loaned ? -EBUSY : claim_positions(h, 1, &t);
	if (err < 0) {
		if (err == -ENOBUFS)
			count_add(&h->me->full, 1);
		send_unlock(h);
		return err;
	}
	publish(h, t, buf, len, target, false);
	count_add(&h->me->sent, 1);
	count_add(&h->me->sent_bytes, len);
	send_unlock(h);
	after_publish(h, target, tidx);
	return poisoned(h) ? -EIO : (int)len;
}

/* Send up to @count messages packed in @buf: one tail CAS and one wake check
 * per run of consecutive free slots. */
static int try_send_many(struct handle *h, const uint8_t *buf, const uint32_t *lens,
			 uint32_t count, uint32_t target)
{
	if (poisoned(h))
		return -EIO;
	int tidx;
	int err = check_send(h, target, &tidx);
	if (err < 0)
		return err;
	/* Validate every length first: nothing is sent past a bad one. */
	uint32_t valid = 0;
	for (; valid < count && valid < INT32_MAX; valid++)
		if (lens[valid] > h->max_msg)
			break;
	if (valid == 0)
		return count ? -EMSGSIZE : 0;
	uint32_t sent = 0;
	uint64_t bytes = 0;
	send_lock(h);
	if (h->loaned) {
		send_unlock(h);
		return -EBUSY; /* the one claim record is the loan's */
	}
	while (sent < valid) {
		uint64_t t;
		int got = claim_positions(h, valid - sent, &t);
		if (got < 0) {
			if (got == -ENOBUFS)
				count_add(&h->me->full, 1);
			if (sent)
				break;
			send_unlock(h);
			return got;
		}
		for (int i = 0; i < got; i++) {
			publish(h, t + (uint64_t)i, buf, lens[sent], target, true);
			bytes += lens[sent];
			buf += lens[sent++];
		}
	}
	count_add(&h->me->sent, sent);
	count_add(&h->me->sent_bytes, bytes);
	send_unlock(h);
	/* SYNC: full barrier after the batch's release publishes, for
	 * after_publish's Dekker (in place of a seq_cst store each). */
	smp_mb();
	after_publish(h, target, tidx);
	return poisoned(h) ? -EIO : (int)sent;
}

SHMC_API int shmc_try_send(int handle, const void *buf, uint32_t len, uint32_t target)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	return shmc__try_send(h, buf, len, target);
}

SHMC_API int shmc_try_send_many(int handle, const void *buf, const uint32_t *lens,
				uint32_t count, uint32_t target)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (count && (!lens || !buf))
		return -EFAULT;
	return try_send_many(h, buf, lens, count, target);
}
