/* SPDX-License-Identifier: MIT */
/*
 * recv.c - the consumer's side: copying a message out, the unicast and
 * multicast scan from head with its FREE -> TAKEN claim of a published slot,
 * moving head, the broadcast cursor, and the non-blocking receives
 * (DESIGN.md section 7, "Unicast / multicast consume", "Broadcast consume",
 * "Targeted sends").
 *
 * Writes: the slots it takes (unicast/multicast: seq in ctl, TAKEN, then FREE
 * for the next lap), head, this member's cursor (broadcast: the private one
 * and the copy in its member file) and `taking` record, the dropped counter.
 * Never dat: receivers may only read what senders write.
 * Calls: recover.c (a target that left, a writer that died), wake.c
 * (through after_consume). One take under the receive turn (take,
 * try_recv, has_message) is inline in internal.h, for park.c's spin.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define HEAD_LAG        16         /* consumed slots scanned before head moves */

static uint32_t copy_out(struct handle *h, uint64_t pos, void *buf, uint32_t cap)
{
	/* Read the length once (from dat: only senders write it) and bound it
	 * by our private max_msg. */
	uint32_t len = load_relaxed(&slot_hdr(h, pos)->len);
	if (len > h->max_msg)
		len = h->max_msg;
	uint32_t n = len < cap ? len : cap;
	if (n)
		memcpy(buf, slot_payload(h, pos), n);
	return n;
}

/* Move head over the consumed prefix. head is only where scans start:
 * every position below it is consumed (a consumed slot stays consumed), and
 * a lagging head costs scanning, never correctness, as long as it lags by
 * less than ring_entries (queue_take keeps it so). */
void shmc__advance_head(struct handle *h)
{
	const uint64_t n = h->ring_entries;
	uint64_t hd = load_acquire(&h->ctl->head);
	uint64_t e = hd;
	/* SYNC: acquire, paired with the consumers' release of FREE. */
	while (e - hd < n && (int64_t)(seq_load_acquire(h, e) - SEQ(e + n, SLOT_FREE)) >= 0)
		e++;
	if (e != hd)
		cas_seq_cst(&h->ctl->head, &hd, e); /* lost the race: another moved it */
}

static inline uint64_t head_lag(struct handle *h)
{
	return h->ring_entries < HEAD_LAG ? h->ring_entries : HEAD_LAG;
}

/* Unicast and multicast: scan from head for the first published message this
 * member may take (untargeted or targeted at it); claim it with a CAS. The
 * scan does not read tail (the producers' hot line): each slot's seq says
 * whether it is published, and the scan stops at the first that is not. */
int shmc__queue_take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode,
		     uint64_t *resume)
{
	struct shmc_ctl_header *c = h->ctl;
	const uint64_t n = h->ring_entries;
	const bool peek = mode == TAKE_PEEK;
	bool head_moved = false;
again:;
	const uint64_t head = load_acquire(&c->head);
	uint64_t hd = head;
	/* A batch (TAKE_DEFER) resumes after its previous take instead of
	 * rescanning from head. */
	if (resume && *resume - hd < n)
		hd = *resume;
	bool prefix_consumed = hd == head; /* every slot in [head, p) consumed */
	for (uint64_t i = 0; i < n; i++) { /* bounded, whatever shared memory says */
		uint64_t p = hd + i;
		struct shmc_slot_header *sh = slot_hdr(h, p);
		/* The state (ctl, consumers' own) says whether p is taken; the
		 * stamp (dat, which only senders write) whether it is published.
		 * SYNC: acquire, paired with the release of FREE by the consumer
		 * of p - N (or a skip). */
		uint64_t q = seq_load_acquire(h, p);
		/* Not taken yet: FREE for p, as the consumer of p - N left it. */
		bool open = q == SEQ(p, SLOT_FREE);
		/* Or a state no participant writes while the slot holds p's
		 * message (p's are FREE, TAKEN, then FREE for p + N; later laps
		 * come only once the stamp is another position's): a corrupting
		 * peer's, which would outlive it (a producer claiming by head
		 * never looks), so a published message under it is taken, by a CAS
		 * from what is there, as from FREE (at worst taken again, §1). */
		bool odd = !open && q != SEQ(p, SLOT_TAKEN) && q - SEQ(p + n, SLOT_FREE) >= 8 * n;
		/* SYNC: acquire, paired with publish_end's release of the stamp:
		 * the bytes are complete. */
		uint64_t stamp = open || odd ? load_acquire(&sh->word) : 0;
		if ((open || odd) && stamp == stamp_of(h, p)) {
			uint32_t tg = load_relaxed(&sh->target);
			bool drop = false;
			if (tg && tg != h->member_id) {
				if (!shmc__target_gone(h, tg)) {
					prefix_consumed = false;
					continue; /* waits for its target */
				}
				drop = true;      /* its target left: nobody may have it */
			}
			if (peek && !drop)
				return 1;
			/* Record what we take first (pos + 1; 0: nothing): a producer
			 * finding the slot TAKEN by nobody alive frees it.
			 * SYNC: relaxed; the CAS below releases it with TAKEN, which
			 * free_if_taker_gone acquires before reading it. */
			store_relaxed(&h->me->taking, p + 1);
			/* SYNC: acq_rel CAS: exactly one consumer takes the slot. */
			if (!seq_cas_acq_rel(h, p, &q, SEQ(p, SLOT_TAKEN))) {
				prefix_consumed = false;
				continue;
			}
			if (mode == TAKE_VIEW && !drop) {
				/* In place: the slot stays TAKEN (and `taking` names it)
				 * until shmc_release; nothing is copied. */
				uint32_t len = load_relaxed(&sh->len);
				h->view_len = len > h->max_msg ? h->max_msg : len;
				h->view_pos = p;
				h->view_stamp = stamp;
				h->viewing = true;
				count_add(&h->me->received, 1);
				count_add(&h->me->received_bytes, h->view_len);
				return (int)h->view_len;
			}
			uint32_t got = drop ? 0 : copy_out(h, p, buf, cap);
			/* SYNC: the copy before the second stamp load, paired with
			 * publish's smp_wmb: a changed stamp means a producer reused
			 * the slot while we copied (a participant freed it early), and
			 * the copy is dropped, never returned. */
			smp_rmb();
			if (!drop && load_relaxed(&sh->word) != stamp) {
				drop = true;
				got = 0;
			}
			/* SYNC: release (as part of seq_cst), paired with the producers'
			 * acquire of seq: the copy is done before the slot is reused.
			 * seq_cst for after_consume's Dekker (a batch fences once). */
			if (mode == TAKE_DEFER && !drop)
				seq_store_release(h, p, SEQ(p + n, SLOT_FREE));
			else
				seq_store_seq_cst(h, p, SEQ(p + n, SLOT_FREE));
			store_relaxed(&h->me->taking, 0);
			/* head is a hint: move it only once it lags by HEAD_LAG (or
			 * the whole ring, if smaller), so a take usually costs no
			 * write to the shared head line. */
			if (prefix_consumed && p + 1 - head >= head_lag(h))
				shmc__advance_head(h);
			if (drop) {
				fetch_add_relaxed(&c->dropped, 1);
				COUNT_COLD(h, dropped);
				after_consume(h);
				continue;
			}
			count_add(&h->me->received, 1);
			count_add(&h->me->received_bytes, got);
			if (mode != TAKE_DEFER)
				after_consume(h);
			if (resume)
				*resume = p + 1;
			return (int)got;
		}
		if (open && stamp_after(h, p, stamp)) {
			/* A producer reused the slot before p was consumed: only
			 * after a participant forged head (DESIGN.md 7). p's message
			 * is gone; pass it (a failed CAS: somebody else did). */
			if (seq_cas_acq_rel(h, p, &q, SEQ(p + n, SLOT_FREE))) {
				fetch_add_relaxed(&c->dropped, 1);
				COUNT_COLD(h, dropped);
			}
			continue;
		}
		if (q == SEQ(p, SLOT_TAKEN)) {
			/* A taker keeps its slot: one that holds a later position's
			 * stamp was reused (by a producer trusting a forged head)
			 * and its TAKEN for p is a peer's leftover, which would hold
			 * head for good. p is long gone: consumed. SYNC: acquire, as
			 * the stamp load above; acq_rel CAS, as a take's. */
			if (stamp_after(h, p, load_acquire(&sh->word))) {
				seq_cas_acq_rel(h, p, &q, SEQ(p + n, SLOT_FREE));
				continue;
			}
			prefix_consumed = false; /* being copied out: not free yet */
			continue;
		}
		if ((int64_t)(q - SEQ(p + n, SLOT_FREE)) >= 0) {
			/* Consumed. A head lagging this far is moved now, and the
			 * scan restarts from it: messages may lie past our bound. */
			if (prefix_consumed && p + 1 - head >= head_lag(h) && !head_moved) {
				shmc__advance_head(h);
				head_moved = true;
				goto again;
			}
			continue;
		}
		/* Not yet published (not taken, and the stamp not "p, complete"),
		 * or a state only a corrupting peer writes: order stops here,
		 * unless its writer died. A stamp of an earlier lap is usually just
		 * the end of the queue: only the slow paths (peek, used before
		 * sleeping) look whether a producer claimed p and died before
		 * writing; a stamp "p, being written" is looked at always. */
		bool writing = open && stamp == stamp_writing(h, p);
		if ((writing || peek) && shmc__recover_stalled(h, p, q, false))
			continue;
		break;
	}
	return peek ? 0 : -EAGAIN;
}

/* Broadcast: read at this member's own cursor, kept private; slots are never
 * changed by receivers, the cursor's copy in our member file is what the
 * producers' gate reads (DESIGN.md 7, "Broadcast consume"). */
int shmc__broadcast_take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode)
{
	const bool peek = mode == TAKE_PEEK;
	struct shmc_member *m = h->me;
	const uint64_t n = h->ring_entries;
	uint64_t cur = h->cursor;
	for (uint64_t i = 0; i < n; i++) {
		/* SYNC: acquire, paired with the producer's release of READY. */
		uint64_t q = seq_load_acquire(h, cur);
		if (q == SEQ(cur, SLOT_READY)) {
			uint32_t tg = load_relaxed(&slot_hdr(h, cur)->target);
			bool mine = !tg || tg == h->member_id;
			if (peek && mine)
				return 1;
			if (mode == TAKE_VIEW && mine) {
				/* In place: the cursor stays at cur (and gates the
				 * producers) until shmc_release. */
				uint32_t len = load_relaxed(&slot_hdr(h, cur)->len);
				h->view_len = len > h->max_msg ? h->max_msg : len;
				h->view_pos = cur;
				h->viewing = true;
				count_add(&m->received, 1);
				count_add(&m->received_bytes, h->view_len);
				return (int)h->view_len;
			}
			uint32_t got = mine ? copy_out(h, cur, buf, cap) : 0;
			if (mine) {
				count_add(&m->received, 1);
				count_add(&m->received_bytes, got);
			}
			/* SYNC: release (as part of seq_cst), paired with
			 * broadcast_gate's acquire: the copy is finished before the
			 * producer may reuse the slot. seq_cst for after_consume. */
			h->cursor = cur + 1;
			store_seq_cst(&m->cursor, cur + 1);
			if (mode != TAKE_DEFER || !mine)
				broadcast_moved(h, cur);
			if (mine)
				return (int)got;
			cur++;
			continue;
		}
		if (q == SEQ(cur, SLOT_TAKEN) || (int64_t)(q - SEQ(cur + 1, SLOT_FREE)) >= 0) {
			/* Skipped slot, or overwritten (only a corrupt peer or a
			 * receiver wrongly released can see this): move on. */
			h->cursor = cur + 1;
			store_seq_cst(&m->cursor, cur + 1);
			cur++;
			continue;
		}
		/* Unpublished: a dead writer's slot is skipped in our own cursor
		 * only (receivers never write slots). */
		if ((q == SEQ(cur, SLOT_WRITING) || peek) && shmc__recover_stalled(h, cur, q, true)) {
			h->cursor = cur + 1;
			store_seq_cst(&m->cursor, cur + 1);
			cur++;
			continue;
		}
		break;
	}
	return peek ? 0 : -EAGAIN;
}

SHMC_API int shmc_try_recv(int handle, void *buf, uint32_t cap)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	return try_recv(h, buf, cap);
}

SHMC_API int shmc_try_recv_many(int handle, void *buf, uint32_t cap, uint32_t *lens,
				uint32_t max_count)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (poisoned(h))
		return -EIO;
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	if (cap < h->max_msg)
		return -EINVAL;
	if (!buf || (max_count && !lens))
		return -EFAULT;
	bool broadcast = h->delivery == SHMC_BROADCAST;
	recv_lock(h);
	if (h->viewing) {
		recv_unlock(h);
		return -EBUSY; /* the one receive record is the view's */
	}
	uint8_t *p = buf;
	uint32_t i, left = cap;
	int r = 0;
	uint64_t resume = load_acquire(&h->ctl->head);
	const uint64_t first = h->cursor; /* broadcast: where the batch starts */
	for (i = 0; i < max_count && i < INT32_MAX && left >= h->max_msg; i++) {
		r = broadcast ? shmc__broadcast_take(h, p, h->max_msg, TAKE_DEFER)
			      : shmc__queue_take(h, p, h->max_msg, TAKE_DEFER, &resume);
		if (r < 0)
			break;
		lens[i] = (uint32_t)r;
		p += r;
		left -= (uint32_t)r;
	}
	recv_unlock(h);
	if (i) {
		/* The deferred work of the takes above, once for the batch. */
		if (!broadcast)
			shmc__advance_head(h);
		/* SYNC: full barrier after the batch's release frees, for
		 * after_consume's Dekker. */
		smp_mb();
		if (broadcast)
			broadcast_moved(h, first);
		else
			after_consume(h);
	}
	if (poisoned(h))
		return -EIO; /* bytes from a replaced page are never returned */
	return i ? (int)i : r;
}

SHMC_API int shmc_pending(int handle)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (poisoned(h))
		return -EIO;
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	return has_message(h);
}
