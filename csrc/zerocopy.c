/* SPDX-License-Identifier: MIT */
/*
 * zerocopy.c - messages written straight into their slot and read where they
 * lie (DESIGN.md section 7, "Zero copy: loans and views"): a loan is a claim
 * and the first half of a publish, its commit the second half, its abort a
 * skipped slot; a view is a take without the copy, its release the free (or
 * the broadcast cursor's step). And the JS view regions: one per handle,
 * the handle's own dat mapping (send access) or a copy-on-write mapping of
 * dat (receive-only), retired, never unmapped, while the runtime may still
 * hold a view of it.
 *
 * Writes: what a send and a receive write (through send.c and recv.c: the
 * claim record, tail, slot states, stamps, lengths, targets; `taking`, the
 * broadcast cursor), the skipped counter, this handle's loan and view state,
 * the region table and the mappings of retired regions.
 * Calls: send.c (claim, publish), recv.c (the take in place, head),
 * member.c (finding a target), park.c (the
 * blocking variants' wait), fault.c (registering a region).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t deadline_after(int64_t timeout_ns)
{
	return timeout_ns < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ns;
}

/* ---- loans -------------------------------------------------------------- */

static int loan(struct handle *h, uint64_t *pos)
{
	if (poisoned(h))
		return -EIO;
	if (!(h->access & SHMC_SEND))
		return -EACCES;
	send_lock(h);
	int r = h->loaned ? -EBUSY : shmc__claim_one(h, pos);
	if (r == 0) {
		h->loan_pos = *pos;
		h->loaned = true;
	} else if (r == -ENOBUFS) {
		count_add(&h->me->full, 1); /* as a send refused for room */
	}
	send_unlock(h);
	if (r < 0)
		return r;
	return poisoned(h) ? -EIO : (int)h->max_msg;
}

/* Wait for room as shmc_send does. */
static int loan_wait(struct handle *h, uint64_t *pos, int64_t timeout_ns)
{
	uint64_t deadline = deadline_after(timeout_ns);
	bool spun = false;
	for (;;) {
		int r = loan(h, pos);
		if (r != -ENOBUFS || timeout_ns == 0)
			return r;
		r = shmc__wait_for(h, SHMC_WAIT_SEND, deadline, &spun);
		if (r < 0)
			return poisoned(h) ? -EIO : r;
	}
}

SHMC_API int shmc_try_loan(int handle, void **payload)
{
	return shmc_loan(handle, payload, 0);
}

SHMC_API int shmc_loan(int handle, void **payload, int64_t timeout_ns)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!payload)
		return -EFAULT;
	uint64_t p;
	int r = loan_wait(h, &p, timeout_ns);
	if (r >= 0)
		*payload = slot_payload(h, p);
	return r;
}

SHMC_API int shmc_try_loan_at(int handle, uint32_t *offset)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!offset)
		return -EFAULT;
	uint64_t p;
	int r = loan(h, &p);
	if (r >= 0)
		*offset = (uint32_t)(slot_payload(h, p) - h->dat);
	return r;
}

SHMC_API int shmc_commit(int handle, uint32_t len, uint32_t target)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (poisoned(h))
		return -EIO;
	int tidx = -1;
	send_lock(h);
	int r = !h->loaned ? -EINVAL : len > h->max_msg ? -EMSGSIZE : 0;
	if (r == 0 && target && (tidx = shmc__find_receiver(h, target)) < 0)
		r = -ENOENT; /* the loan stays: retarget or abort */
	if (r == 0) {
		shmc__publish_loaned(h, h->loan_pos, len, target);
		h->loaned = false;
		count_add(&h->me->sent, 1);
		count_add(&h->me->sent_bytes, len);
	}
	send_unlock(h);
	if (r < 0)
		return r;
	after_publish(h, target, tidx);
	return poisoned(h) ? -EIO : (int)len;
}

/* The loaned position becomes a skipped slot, as a dead writer's does. */
static void abort_loan(struct handle *h)
{
	uint64_t p = h->loan_pos;
	uint64_t skipped = h->delivery == SHMC_BROADCAST ? SEQ(p, SLOT_TAKEN)
							 : SEQ(p + h->ring_entries, SLOT_FREE);
	/* SYNC: seq_cst, paired with the consumers' acquire of the state word
	 * (skipped, never delivered) and the producers' acquire before reuse;
	 * seq_cst for the wake checks' Dekker below. */
	seq_store_seq_cst(h, p, skipped);
	/* Counted here, once: receivers pass a skipped slot without counting
	 * (the skip_mark of a dead writer's slot assumes skips found in order,
	 * and aborts of two producers are not). */
	fetch_add_relaxed(&h->ctl->skipped, 1);
	COUNT_COLD(h, skipped);
	h->loaned = false;
}

SHMC_API int shmc_abort(int handle)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	send_lock(h);
	bool had = h->loaned;
	if (had)
		abort_loan(h);
	send_unlock(h);
	if (!had)
		return -EINVAL;
	/* Receivers queued behind the position may go on; in unicast and
	 * multicast the slot is room again. */
	after_publish(h, 0, -1);
	after_consume(h);
	return poisoned(h) ? -EIO : 0;
}

/* ---- views -------------------------------------------------------------- */

static int view(struct handle *h)
{
	if (poisoned(h))
		return -EIO;
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	recv_lock(h);
	int r = h->viewing ? -EBUSY
		: h->delivery == SHMC_BROADCAST ? shmc__broadcast_take(h, NULL, 0, TAKE_VIEW)
						: shmc__queue_take(h, NULL, 0, TAKE_VIEW, NULL);
	recv_unlock(h);
	if (r < 0)
		return r;
	return poisoned(h) ? -EIO : r;
}

static int view_wait(struct handle *h, int64_t timeout_ns)
{
	uint64_t deadline = deadline_after(timeout_ns);
	bool spun = false;
	for (;;) {
		int r = view(h);
		if (r != -EAGAIN || timeout_ns == 0)
			return r;
		r = shmc__wait_for(h, SHMC_WAIT_RECV, deadline, &spun);
		if (r < 0) {
			r = view(h); /* a last look at the deadline */
			return r == -EAGAIN ? -ETIMEDOUT : r;
		}
	}
}

SHMC_API int shmc_try_recv_view(int handle, const void **payload)
{
	return shmc_recv_view(handle, payload, 0);
}

SHMC_API int shmc_recv_view(int handle, const void **payload, int64_t timeout_ns)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!payload)
		return -EFAULT;
	int r = view_wait(h, timeout_ns);
	if (r >= 0)
		*payload = slot_payload(h, h->view_pos);
	return r;
}

static void region_refresh(struct handle *h, size_t off, size_t len);

SHMC_API int shmc_try_recv_view_at(int handle, uint32_t *offset)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!offset)
		return -EFAULT;
	int r = view(h);
	if (r >= 0) {
		size_t off = (size_t)(slot_payload(h, h->view_pos) - h->dat);
		if (h->region_private && r > 0)
			region_refresh(h, off, (size_t)r);
		*offset = (uint32_t)off;
	}
	return r;
}

/* Give the viewed message back. 0, or -ESTALE when its bytes changed while
 * it was held (unicast/multicast, a participant freed the slot early). */
static int release_view(struct handle *h)
{
	uint64_t p = h->view_pos;
	int r = 0;
	h->viewing = false;
	if (h->delivery == SHMC_BROADCAST) {
		/* SYNC: release (as part of seq_cst), paired with broadcast_gate's
		 * acquire: the caller's reads are done before the producer may
		 * reuse the slot. seq_cst for after_consume. */
		h->cursor = p + 1;
		store_seq_cst(&h->me->cursor, p + 1);
		broadcast_moved(h, p);
		return 0;
	}
	/* SYNC: the caller's reads of the bytes before the second stamp load,
	 * paired with publish's smp_wmb (the seqlock of queue_take). */
	smp_rmb();
	if (load_relaxed(&slot_hdr(h, p)->word) != h->view_stamp)
		r = -ESTALE;
	uint64_t q = SEQ(p, SLOT_TAKEN);
	/* SYNC: seq_cst CAS, paired with the producers' acquire of seq: the
	 * reads are done before the slot is reused; seq_cst for after_consume.
	 * It fails only if a participant rewrote the word: then nothing is
	 * stored over what is there now. */
	seq_cas_seq_cst(h, p, &q, SEQ(p + h->ring_entries, SLOT_FREE));
	store_relaxed(&h->me->taking, 0);
	shmc__advance_head(h);
	return r;
}

SHMC_API int shmc_release(int handle)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	recv_lock(h);
	int r = h->viewing ? release_view(h) : -EINVAL;
	recv_unlock(h);
	if (r == -EINVAL)
		return r;
	if (h->delivery != SHMC_BROADCAST)
		after_consume(h); /* broadcast: release_view's broadcast_moved */
	return poisoned(h) ? -EIO : r;
}

/* ---- JS view regions ------------------------------------------------------ */

/* One region per handle that asked for one; a region outlives its handle
 * while the runtime may hold views of it (js), and is then anonymous memory
 * at the same address. Under g_lock. */
struct region {
	uint8_t *addr;
	size_t len;
	uint32_t gen;
	bool used, js, handle, owns; /* owns: the mapping is the region's own */
};

static struct region g_regions[MAX_HANDLES];

static int token_of(uint32_t i)
{
	return (int)((g_regions[i].gen << HANDLE_INDEX_BITS) | i);
}

/* A copy-on-write mapping of dat for a receive-only handle: what the OS lets
 * a reader's process write (its own copies of pages), never the file. */
static void *private_dat(struct handle *h)
{
	int fd = openat(h->dfd, "dat", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct statx st;
	void *p = NULL;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_UID | STATX_SIZE, &st) == 0 &&
	    S_ISREG(st.stx_mode) && st.stx_uid == h->owner_uid && st.stx_size == h->dat_size) {
		p = mmap(NULL, h->dat_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			p = NULL;
	}
	close(fd);
	return p;
}

SHMC_API int shmc_view_region(int handle, uint64_t *out)
{
	if (!out)
		return -EFAULT;
	pthread_mutex_lock(&g_lock);
	struct handle *h = lookup(handle);
	int r = 0;
	if (!h) {
		r = -ENOENT;
	} else if (poisoned(h)) {
		r = -EIO;
	} else if (h->region < 0) {
		uint32_t i = 1;
		while (i < MAX_HANDLES && g_regions[i].used)
			i++;
		if (i == MAX_HANDLES) {
			r = -EMFILE;
		} else {
			bool priv = !(h->access & SHMC_SEND);
			uint8_t *addr = priv ? private_dat(h) : h->dat;
			if (!addr) {
				r = -ENOMEM;
			} else {
				struct region *g = &g_regions[i];
				g->gen = (g->gen + 1) & ((1u << (30 - HANDLE_INDEX_BITS)) - 1);
				if (!g->gen)
					g->gen = 1;
				g->addr = addr;
				g->len = h->dat_size;
				g->used = g->handle = true;
				g->owns = priv;
				if (priv)
					shmc__fault_view(h, addr, h->dat_size);
				h->region_private = priv;
				h->region_addr = addr;
				h->region = (int)i;
			}
		}
	}
	if (r == 0) {
		struct region *g = &g_regions[h->region];
		g->js = true;
		out[0] = (uint64_t)(uintptr_t)g->addr;
		out[1] = g->len;
		out[2] = (uint64_t)token_of((uint32_t)h->region);
	}
	pthread_mutex_unlock(&g_lock);
	return r;
}

SHMC_API int shmc_view_region_drop(int token)
{
	uint32_t i = (uint32_t)token & (MAX_HANDLES - 1);
	pthread_mutex_lock(&g_lock);
	struct region *g = &g_regions[i];
	int r = 0;
	if (token <= 0 || !g->used || token_of(i) != token) {
		r = -ENOENT;
	} else {
		g->js = false;
		if (!g->handle) {
			/* Retired and collected: the address range goes back. */
			munmap(g->addr, g->len);
			g->used = false;
		}
	}
	pthread_mutex_unlock(&g_lock);
	return r;
}

/* Drop this process's copies of the pages of [off, off + len) in the
 * private region, so a view shows the file (DESIGN.md 7, "Views from
 * JavaScript"). */
static int g_pagemap = -1;
static pid_t g_pagemap_pid;
static pthread_mutex_t g_pagemap_lock = PTHREAD_MUTEX_INITIALIZER;

static void region_refresh(struct handle *h, size_t off, size_t len)
{
	uintptr_t pg = (uintptr_t)h->page;
	uintptr_t lo = ((uintptr_t)h->region_addr + off) & ~(pg - 1);
	uintptr_t hi = ((uintptr_t)h->region_addr + off + len + pg - 1) & ~(pg - 1);
	size_t pages = (hi - lo) / pg;
	uint64_t ent[64];
	pthread_mutex_lock(&g_pagemap_lock);
	if (g_pagemap < 0 || g_pagemap_pid != getpid()) {
		if (g_pagemap >= 0)
			close(g_pagemap); /* a forked child reads its own */
		g_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		g_pagemap_pid = getpid();
	}
	int fd = g_pagemap;
	pthread_mutex_unlock(&g_pagemap_lock);
	for (size_t done = 0; done < pages;) {
		size_t n = pages - done < 64 ? pages - done : 64;
		uintptr_t a = lo + done * pg;
		ssize_t got = fd < 0 ? -1 : pread(fd, ent, n * 8, (off_t)(a / pg * 8));
		if (got != (ssize_t)(n * 8)) {
			madvise((void *)a, n * pg, MADV_DONTNEED); /* no pagemap: drop them all */
		} else {
			for (size_t k = 0; k < n; k++) {
				/* bit 63: present; bit 61: a file page (not our copy) */
				if ((ent[k] >> 63) & 1 && !((ent[k] >> 61) & 1))
					madvise((void *)(a + k * pg), pg, MADV_DONTNEED);
			}
		}
		done += n;
	}
}

void shmc__zc_close(struct handle *h)
{
	if (h->loaned) {
		abort_loan(h);
		after_publish(h, 0, -1);
	}
	if (h->viewing)
		release_view(h);
}

void shmc__zc_retire(struct handle *h)
{
	if (h->region < 0)
		return;
	struct region *g = &g_regions[h->region];
	h->region = -1;
	g->handle = false;
	if (g->js) {
		/* Views may remain: anonymous memory in place of the shared pages,
		 * in one mmap; the range goes back when the runtime drops it. */
		mmap(g->addr, g->len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		if (!g->owns)
			h->dat = NULL; /* not unmapped with the handle */
		return;
	}
	if (g->owns)
		munmap(g->addr, g->len);
	g->used = false;
}
