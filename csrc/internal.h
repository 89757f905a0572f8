/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the library's source files share; never installed.
 *
 * The private handle, the process-local globals (each defined in one file,
 * named below), the hot helpers the send and receive paths inline, and the
 * internal functions one file offers another. Internal functions are named
 * shmc__*, are hidden (SHMC_INTERNAL, on top of -fvisibility=hidden) and
 * return >= 0 or -errno like the API unless they return a bool or nothing.
 * The only exported shmc__ symbols are the test hooks of shmchan_test.h.
 *
 * csrc/DESIGN.md has the map: which file implements which part of the design.
 */
#ifndef SHMCHAN_INTERNAL_H
#define SHMCHAN_INTERNAL_H

#include "shmchan.h"
#include "atomics.h"
#include "layout.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SHMC_INTERNAL __attribute__((visibility("hidden")))

#define MAX_HANDLES     1024u      /* open handles per process */
#define HANDLE_INDEX_BITS 10
#define LIVENESS_PROBE_NS 10000000 /* re-probe a stuck peer at most every 10 ms */
#define STALE_AGE_NS    1000000000ull /* a half-built name of the dead is swept after 1 s */

/* ---- process-local state ------------------------------------------------ */

/* Another member's file as one handle sees it (DESIGN.md 5): mapped
 * read-only at page @slot of the handle's member region. Written under the
 * handle's view lock; the hot paths read the page and these words without
 * it (a stale view is always safe: a departed member's page reads as zeros or
 * says LEFT, and liveness is probed before anything is decided about it). */
struct member_view {
	_Atomic uint64_t ino;     /* inode of m<slot> when mapped, 0: nothing mapped */
	_Atomic uint32_t uid;     /* its owner */
	_Atomic bool dead;        /* probed dead: ignored by this handle */
	_Atomic bool bad;         /* failed validation: ignored */
};

struct handle {
	int self;                 /* the public handle number */
	bool owner;
	uint32_t access;          /* SHMC_SEND | SHMC_RECV */
	pid_t opener_pid;         /* for the exit-time cleanup of owned channels */
	int dfd;                  /* the channel's directory (O_RDONLY | O_DIRECTORY) */
	int id_fd;                /* owner: `id`, holding the creator lock; else -1 */
	int me_fd;                /* our member file, holding our liveness lock */
	int fault;                /* our ranges in fault.c's table, or -1 */
	_Atomic uint32_t *poison; /* set when a fault hit ctl, dat or our own member page */
	uint32_t owner_uid, owner_gid; /* the directory's owner: the kernel's word */
	uint64_t dir_dev, dir_ino;

	struct shmc_ctl_header *ctl;
	size_t ctl_size;
	uint8_t *dat;
	size_t dat_size;
	struct shmc_dat_header *dh;
	struct shmc_wait *waits;  /* ctl: one per member slot */
	struct shmc_qslot *qslots;/* ctl: unicast/multicast slot states */
	uint8_t *mregion;         /* SHMC_MAX_MEMBERS pages: member files */
	size_t page;
	struct shmc_member *me;   /* our own member file (read-write) */

	/* Private copies of the immutable descriptor, validated once at open:
	 * every bound used below comes from here, never from shared memory. */
	uint64_t key;
	int32_t channel_id;
	uint32_t delivery, ring_entries, mask, max_msg, stride, max_members;
	uint32_t mode, flags;
	uint64_t nonce, start;
	uint32_t member_idx, member_id;

	/* Broadcast: this receiver's read position, private (DESIGN.md 7);
	 * the member file's copy is what producers read. Under recv_lock. */
	uint64_t cursor;

	/* The view of the other members (DESIGN.md 5). */
	pthread_mutex_t view_lock;
	struct member_view view[SHMC_MAX_MEMBERS];
	_Atomic uint64_t refresh_ns; /* last refresh (rate limit of the slow paths' refreshes) */

	/* Per-handle caches; atomic (relaxed) only because threads may share a
	 * handle: a stale value is always safe. */
	_Atomic uint64_t gate;            /* broadcast: cached slowest cursor */
	_Atomic uint64_t head_seen;       /* unicast/multicast: head as a claim last loaded it */
	_Atomic uint64_t stall_pos;       /* recovery: last unpublished position seen */
	_Atomic uint64_t stall_probe_ns;
	_Atomic uint64_t gate_probe_ns;
	_Atomic uint64_t full_probe_ns;   /* unicast/multicast: a full ring's last look at head */
	_Atomic uint64_t target_probe_ns;
	/* A member's receive state is one record (broadcast: its cursor;
	 * unicast/multicast: `taking`, which tells producers whether a TAKEN
	 * slot's taker lives): threads sharing the handle take turns. */
	atomic_flag recv_busy;
	/* One claim in flight per member: recover_stalled identifies a live
	 * claimer by its member's one claim record, so threads sharing the
	 * handle take turns from claim to publish. */
	atomic_flag send_busy;

	/* Zero copy (DESIGN.md 7, "Zero copy"): the one loan (under the send
	 * turn) and the one view (under the receive turn) of this handle, and
	 * its JS view region (set under g_lock before any offset is handed out;
	 * -1 / NULL: none). */
	bool loaned, viewing;
	uint64_t loan_pos;
	uint64_t view_pos, view_stamp;
	uint32_t view_len;
	int region;               /* index in zerocopy.c's region table */
	uint8_t *region_addr;     /* where JS views of this handle's dat lie */
	bool region_private;      /* a copy-on-write mapping (receive-only handle) */
	/* When this handle's blocking calls spin before sleeping (DESIGN.md
	 * section 4, "Adaptive spinning"; park.c): [0] receive, [1] send. All
	 * zero is the initial state. Relaxed: threads sharing the handle may
	 * race on it, and a lost update only changes whether one wait spins. */
	struct wait_state {
		_Atomic uint32_t debit;       /* credit spent, 0 (full) .. SPIN_CREDIT_MAX */
		_Atomic uint32_t probe_shift; /* a probe every 1 << probe_shift waits */
		_Atomic uint32_t until_probe; /* waits left until the next probe */
		_Atomic uint64_t period_ns;   /* mean ns between wait starts, less own spins */
		_Atomic uint64_t last_start_ns; /* 0: no wait yet */
		_Atomic uint64_t last_spun_ns;
		/* What the waits did (shmc__test_wait_stats). */
		_Atomic uint64_t waits, spins, hits, sleeps, missed_ns, longest_miss_ns;
	} wait[2];
};

/* Defined in api.c: the handle table and the mutex that serialises handle
 * creation and closing (create/attach/detach/destroy). */
SHMC_INTERNAL extern pthread_mutex_t g_lock;
SHMC_INTERNAL extern struct handle *_Atomic g_handles[MAX_HANDLES];
/* Defined in api.c (the test hook): where new channels start their positions. */
SHMC_INTERNAL extern uint64_t g_start_position;
/* Defined in api.c: is @gid one of the caller's groups (the access check's
 * "group" class)? */
SHMC_INTERNAL bool shmc__in_group(gid_t gid);

/* A record of getdents64(2), which glibc 2.28 does not wrap (lookup.c,
 * member.c list directories with it). */
struct shmc_dirent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* What lookup found for a key or id (lookup.c). */
struct found {
	int dfd;                  /* the channel's directory, open */
	uint32_t uid, gid;        /* its owner */
	uint64_t dev, ino;
	struct shmc_desc desc;    /* validated private copy */
	char name[64];            /* its name in /dev/shm */
};

/* ---- internal functions, by the file that defines them --------------------- */

/* fork.c */
SHMC_INTERNAL void shmc__process_init(void);

/* lookup.c (callers hold g_lock unless noted) */
SHMC_INTERNAL void shmc__key_name(char *out, size_t n, uint64_t key);
/* The key a lookup name "shmchan.<16 hex>" names, or 0 for any other name. */
SHMC_INTERNAL uint64_t shmc__key_of_name(const char *name);
SHMC_INTERNAL int shmc__tmpfile(int dfd, int flags);
SHMC_INTERNAL int shmc__link_tmpfile(int fd, int dfd, const char *name);
SHMC_INTERNAL int shmc__find(uint64_t key, int32_t id, int64_t want_owner, struct found *f,
			     uint64_t *lookup_out);
SHMC_INTERNAL int shmc__build_begin(struct handle *h, char *tmpname, size_t n);
SHMC_INTERNAL int shmc__build_publish(struct handle *h, const char *tmpname);
SHMC_INTERNAL void shmc__build_abort(struct handle *h, const char *tmpname);
SHMC_INTERNAL void shmc__destroy_channel(struct handle *h);
SHMC_INTERNAL void shmc__after_leave(int dfd, uint32_t owner_uid, uint64_t key);
SHMC_INTERNAL int shmc__sweep(void);
SHMC_INTERNAL int shmc__read_desc(int dfd, uint32_t uid, struct shmc_desc *d);
SHMC_INTERNAL int shmc__remove_channel(const struct found *f);
SHMC_INTERNAL bool shmc__lock_held(int fd);
SHMC_INTERNAL uint64_t shmc__pidns(void);

/* segment.c */
SHMC_INTERNAL struct handle *shmc__handle_new(void);
SHMC_INTERNAL void shmc__handle_unmap(struct handle *h);
SHMC_INTERNAL void shmc__handle_geometry(struct handle *h, uint32_t delivery, uint32_t entries,
					 uint32_t max_msg);
SHMC_INTERNAL int shmc__segments_create(struct handle *h);
SHMC_INTERNAL int shmc__segments_open(struct handle *h, const struct found *f, uint32_t access);
SHMC_INTERNAL void shmc__fill_desc(const struct handle *h, struct shmc_desc *d);
SHMC_INTERNAL int shmc__check_desc(const struct shmc_desc *d);

/* member.c */
SHMC_INTERNAL uint64_t shmc__process_start_time(pid_t pid);
SHMC_INTERNAL int shmc__member_join(struct handle *h, uint32_t access);
SHMC_INTERNAL void shmc__member_leave(struct handle *h);
SHMC_INTERNAL bool shmc__member_alive(struct handle *h, uint32_t idx);
SHMC_INTERNAL int shmc__members_live(int dfd);
SHMC_INTERNAL int shmc__members_list(int dfd, uint64_t ino[SHMC_MAX_MEMBERS]);
SHMC_INTERNAL void shmc__view_refresh(struct handle *h);
SHMC_INTERNAL bool shmc__view_refresh_slow(struct handle *h);
SHMC_INTERNAL struct shmc_member *shmc__view(struct handle *h, uint32_t idx);
SHMC_INTERNAL void shmc__view_forget(struct handle *h, uint32_t idx);
SHMC_INTERNAL uint32_t shmc__unpark_bits(struct handle *h, uint32_t idx, uint32_t bits);
SHMC_INTERNAL void shmc__member_release_parks(struct handle *h, uint32_t idx);
SHMC_INTERNAL int shmc__find_receiver(struct handle *h, uint32_t id);
SHMC_INTERNAL bool shmc__probe_allowed(_Atomic uint64_t *last);

/* inspect.c */
SHMC_INTERNAL void shmc__fold_begin(struct shmc_ctl_header *c);
SHMC_INTERNAL void shmc__fold_end(struct shmc_ctl_header *c);
SHMC_INTERNAL void shmc__fold_member(struct shmc_ctl_header *c, const struct shmc_member *m);

/* fault.c */
SHMC_INTERNAL int shmc__fault_register(struct handle *h);
SHMC_INTERNAL void shmc__fault_unregister(struct handle *h);
SHMC_INTERNAL void shmc__fault_own(struct handle *h);
SHMC_INTERNAL uint64_t shmc__fault_member_hits(const struct handle *h);
SHMC_INTERNAL void shmc__fault_view(struct handle *h, void *lo, size_t len);

/* recover.c */
SHMC_INTERNAL bool shmc__target_gone(struct handle *h, uint32_t target);
SHMC_INTERNAL bool shmc__drop_if_target_gone(struct handle *h, uint64_t pos, uint64_t q);
SHMC_INTERNAL bool shmc__free_if_taker_gone(struct handle *h, uint64_t pos, uint64_t q);
SHMC_INTERNAL bool shmc__recover_stalled(struct handle *h, uint64_t pos, uint64_t q, bool privately);
SHMC_INTERNAL void shmc__count_skip(struct handle *h, uint64_t pos);

/* doorbell.c */
SHMC_INTERNAL int shmc__doorbell_ring(struct handle *h, uint32_t idx, uint32_t what);
SHMC_INTERNAL void shmc__doorbell_unlink(struct handle *h, uint32_t idx, const struct shmc_member *m);
SHMC_INTERNAL void shmc__doorbell_init(void);
SHMC_INTERNAL void shmc__doorbell_after_fork(void);

/* wake.c */
SHMC_INTERNAL void shmc__wake_receivers(struct handle *h, uint32_t target, int target_idx);
SHMC_INTERNAL void shmc__wake_senders(struct handle *h);

/* send.c */
SHMC_INTERNAL int shmc__try_send(struct handle *h, const void *buf, uint32_t len,
				 uint32_t target);
SHMC_INTERNAL uint64_t shmc__broadcast_gate(struct handle *h, uint64_t t, bool probe);
SHMC_INTERNAL int shmc__claim_one(struct handle *h, uint64_t *pos);
SHMC_INTERNAL void shmc__publish_loaned(struct handle *h, uint64_t t, uint32_t len,
					uint32_t target);

/* zerocopy.c (callers hold g_lock) */
SHMC_INTERNAL void shmc__zc_close(struct handle *h);
SHMC_INTERNAL void shmc__zc_retire(struct handle *h);

/* park.c */
SHMC_INTERNAL int shmc__wait_for(struct handle *h, uint32_t what, uint64_t deadline, bool *spun);

/* recv.c */
/* How a take runs: a real take, a peek (report whether a message is there;
 * may drop messages whose target left), a take whose head advance and
 * wake check the caller does once for a batch, or a take in place (a view:
 * the handle's view_* fields are set, nothing is copied or freed). */
enum take_mode { TAKE_NOW, TAKE_PEEK, TAKE_DEFER, TAKE_VIEW };
SHMC_INTERNAL int shmc__queue_take(struct handle *h, void *buf, uint32_t cap,
				   enum take_mode mode, uint64_t *resume);
SHMC_INTERNAL int shmc__broadcast_take(struct handle *h, void *buf, uint32_t cap,
				       enum take_mode mode);
SHMC_INTERNAL void shmc__advance_head(struct handle *h);

/* ---- small helpers ------------------------------------------------------ */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A clock for rate limits: a few ns through the vDSO, ms resolution. */
static inline uint64_t now_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline bool is_power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

/* ---- hot paths: inline in every file that uses them ------------------------
 * (the blocking calls in park.c spin on has_message/has_room and retry
 * try_recv: inline there as they were in one file) */

/* A public handle number to its handle, or NULL when stale. */
static inline struct handle *lookup(int h)
{
	if (h <= 0)
		return NULL;
	uint32_t idx = (uint32_t)h & (MAX_HANDLES - 1);
	struct handle *p = atomic_load_explicit(&g_handles[idx], memory_order_acquire);
	if (!p || p->self != h)
		return NULL;
	return p;
}

/* ---- slots: where each word lives, and its encoding (DESIGN.md 6) ---------- */

/* The first position the slot of @pos ever holds. */
static inline uint64_t slot_first(const struct handle *h, uint64_t pos)
{
	return h->start + ((pos - h->start) & h->mask);
}

/* What a slot's stored state word is relative to: SEQ(first, FREE), so that
 * a zero-filled file means "free for its first position". */
static inline uint64_t seq_base(const struct handle *h, uint64_t pos)
{
	return SEQ(slot_first(h, pos), SLOT_FREE);
}

/* The stored stamp of position @pos once its bytes are complete, and while
 * they are being written (DESIGN.md 7, "Publish"): odd, so never 0 (a
 * zero-filled slot), whatever the position (a forged head may send a scan to
 * positions before the first). */
static inline uint64_t stamp_of(const struct handle *h, uint64_t pos)
{
	return (pos - slot_first(h, pos)) * 2 + 1;
}

static inline uint64_t stamp_writing(const struct handle *h, uint64_t pos)
{
	return stamp_of(h, pos) ^ (1ull << 63);
}

/* Unicast/multicast: is @stamp (complete or being written) that of a later
 * position than @pos in the same slot? (Compared modulo 2^62, the stamps'
 * range, within half of it.) */
static inline bool stamp_after(const struct handle *h, uint64_t pos, uint64_t stamp)
{
	const uint64_t low = (1ull << 62) - 1;
	uint64_t v = stamp & ~(1ull << 63);
	if (!(v & 1))
		return false; /* no stamp: a zero-filled slot */
	uint64_t d = ((v >> 1) - (pos - slot_first(h, pos))) & low;
	return d != 0 && d < (1ull << 61);
}

static inline struct shmc_slot_header *slot_hdr(const struct handle *h, uint64_t pos)
{
	return (struct shmc_slot_header *)(h->dat + sizeof(struct shmc_dat_header) +
					   (size_t)(pos & h->mask) * h->stride);
}

static inline uint8_t *slot_payload(const struct handle *h, uint64_t pos)
{
	return (uint8_t *)slot_hdr(h, pos) + sizeof(struct shmc_slot_header);
}

/* The state word of @pos's slot: in ctl for unicast/multicast (consumers
 * claim it), in dat for broadcast (only producers write it). */
static inline _Atomic uint64_t *state_word(const struct handle *h, uint64_t pos)
{
	return h->delivery == SHMC_BROADCAST ? &slot_hdr(h, pos)->word
					     : &h->qslots[pos & h->mask].seq;
}

/* The state of @pos's slot, decoded (SEQ(position, state)). The orderings
 * are those of the plain operations named: see each caller's SYNC. */
static inline uint64_t seq_load_acquire(const struct handle *h, uint64_t pos)
{
	return load_acquire(state_word(h, pos)) + seq_base(h, pos);
}

static inline uint64_t seq_load_relaxed(const struct handle *h, uint64_t pos)
{
	return load_relaxed(state_word(h, pos)) + seq_base(h, pos);
}

static inline void seq_store_relaxed(const struct handle *h, uint64_t pos, uint64_t q)
{
	store_relaxed(state_word(h, pos), q - seq_base(h, pos));
}

static inline void seq_store_release(const struct handle *h, uint64_t pos, uint64_t q)
{
	store_release(state_word(h, pos), q - seq_base(h, pos));
}

static inline void seq_store_seq_cst(const struct handle *h, uint64_t pos, uint64_t q)
{
	store_seq_cst(state_word(h, pos), q - seq_base(h, pos));
}

/* CAS of the decoded state word; on failure *@expected gets the current
 * decoded value. */
static inline bool seq_cas_acq_rel(const struct handle *h, uint64_t pos, uint64_t *expected,
				   uint64_t desired)
{
	uint64_t base = seq_base(h, pos), e = *expected - base;
	bool ok = cas_acq_rel(state_word(h, pos), &e, desired - base);
	*expected = e + base;
	return ok;
}

static inline bool seq_cas_seq_cst(const struct handle *h, uint64_t pos, uint64_t *expected,
				   uint64_t desired)
{
	uint64_t base = seq_base(h, pos), e = *expected - base;
	bool ok = cas_seq_cst(state_word(h, pos), &e, desired - base);
	*expected = e + base;
	return ok;
}

/* Is the slot of @t free for a producer at position t (its decoded state
 * @q)? Broadcast also needs the gate (checked by the caller). */
static inline bool slot_free_for(const struct handle *h, uint64_t t, uint64_t q)
{
	const uint64_t n = h->ring_entries;
	if (h->delivery == SHMC_BROADCAST)
		return q == SEQ(t, SLOT_FREE) || q == SEQ(t - n, SLOT_READY) ||
		       q == SEQ(t - n, SLOT_TAKEN);
	return q == SEQ(t, SLOT_FREE);
}

/* Count @v on one of this member's hot counters (DESIGN.md 11): a plain
 * relaxed load and store, no read-modify-write. SYNC: relaxed; the one
 * writer is the thread holding the handle's send (or receive) turn, whose
 * acquire/release flag orders the previous holder's store before our load. */
static inline void count_add(_Atomic uint64_t *counter, uint64_t v)
{
	store_relaxed(counter, load_relaxed(counter) + v);
}

/* Count one on a cold counter of this member (slow paths, where a send and
 * a receive thread may both count): SYNC: relaxed RMW, nothing to order. */
static inline void count_cold(struct handle *h, size_t offset)
{
	if (h->me)
		fetch_add_relaxed((_Atomic uint64_t *)((uint8_t *)h->me + offset), 1);
}
#define COUNT_COLD(h, field) count_cold((h), offsetof(struct shmc_member, field))

/* The handle failed (a shared file was shrunk, DESIGN.md 9): -EIO from now
 * on. Set by fault.c's SIGBUS handler. */
static inline bool poisoned(const struct handle *h)
{
	return load_relaxed(h->poison) != 0;
}

/* SYNC: acquire/release on the flag: one thread's claim record and publish
 * come before the next thread's claim. */
static inline void send_lock(struct handle *h)
{
	while (atomic_flag_test_and_set_explicit(&h->send_busy, memory_order_acquire))
		sched_yield();
}

static inline void send_unlock(struct handle *h)
{
	atomic_flag_clear_explicit(&h->send_busy, memory_order_release);
}

/* SYNC: acquire/release on the flag orders one thread's cursor or `taking`
 * store before the next thread's load. */
static inline void recv_lock(struct handle *h)
{
	while (atomic_flag_test_and_set_explicit(&h->recv_busy, memory_order_acquire))
		sched_yield();
}

static inline void recv_unlock(struct handle *h)
{
	atomic_flag_clear_explicit(&h->recv_busy, memory_order_release);
}

/* The wake check (DESIGN.md, "Waiting"). Callers have just made their change
 * visible with a seq_cst store (a publish, a freed slot, a moved
 * cursor, a member leaving). */
static inline void after_publish(struct handle *h, uint32_t target, int target_idx)
{
	/* SYNC: seq_cst load after the caller's seq_cst store, paired with
	 * do_park's seq_cst RMWs and full barrier before its re-check of the
	 * ring (Dekker): either the parker sees the message or we see it parked. */
	if (load_seq_cst(&h->ctl->recv_parked))
		shmc__wake_receivers(h, target, target_idx);
}

static inline void after_consume(struct handle *h)
{
	/* SYNC: as after_publish, for room and send_parked. */
	if (load_seq_cst(&h->ctl->send_parked))
		shmc__wake_senders(h);
}

/* Broadcast: moving our cursor from @old opens room for a sender only if we
 * were a whole ring behind the tail (one of the slowest receivers: the
 * gate). Any other move wakes nobody: a sender parked for room waits for
 * the slowest, whose move wakes it; otherwise every receiver's move would
 * wake it only to find the ring still full (DESIGN.md 4). Takes and view releases alike. */
static inline void broadcast_moved(struct handle *h, uint64_t old)
{
	/* SYNC: seq_cst, after our seq_cst cursor store and before
	 * after_consume's seq_cst load of send_parked (its Dekker with a
	 * parking sender is unchanged). */
	uint64_t t = load_seq_cst(&h->dh->tail);
	if (t - old >= h->ring_entries)
		after_consume(h);
}

/* One take (or peek) under this handle's receive turn. */
static inline int take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode)
{
	recv_lock(h);
	int r = h->viewing && mode != TAKE_PEEK ? -EBUSY /* the one receive record is the view's */
		: h->delivery == SHMC_BROADCAST ? shmc__broadcast_take(h, buf, cap, mode)
						: shmc__queue_take(h, buf, cap, mode, NULL);
	recv_unlock(h);
	return r;
}

/* shmc_try_recv on a live handle (shmc_recv retries it). A message read
 * from a page the SIGBUS handler replaced is never returned. */
static inline int try_recv(struct handle *h, void *buf, uint32_t cap)
{
	if (poisoned(h))
		return -EIO;
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	if (cap && !buf)
		return -EFAULT;
	int r = take(h, buf, cap, TAKE_NOW);
	return poisoned(h) ? -EIO : r;
}

/* Is there a message for this member now? 1 or 0 (a hint: another
 * receiver may take it first). Spun on by waiters. */
static inline int has_message(struct handle *h)
{
	return take(h, NULL, 0, TAKE_PEEK);
}

/* Would a send find room now? 1 or 0 (a hint, as has_message). */
static inline int has_room(struct handle *h)
{
	uint64_t t = load_acquire(&h->dh->tail);
	uint64_t q = seq_load_acquire(h, t);
	uint64_t n = h->ring_entries;
	if (!slot_free_for(h, t, q))
		return 0; /* the same test as claim_positions */
	if (h->delivery != SHMC_BROADCAST)
		return 1;
	return t - shmc__broadcast_gate(h, t, false) < n;
}

#endif /* SHMCHAN_INTERNAL_H */
