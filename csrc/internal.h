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

/* ---- process-local state ------------------------------------------------ */

struct handle {
	int self;                 /* the public handle number */
	bool owner;
	uint32_t access;          /* SHMC_SEND | SHMC_RECV */
	pid_t opener_pid;         /* for the exit-time cleanup of owned channels */
	int ctl_fd, dat_fd;       /* ctl_fd holds this member's liveness lock */
	bool creator_locked;      /* owner: holds the creator lock of reg_index */
	uint32_t reg_index;       /* the channel's registry entry */

	struct shmc_ctl_header *ctl;
	size_t ctl_size;
	uint8_t *dat;
	size_t dat_size;
	struct shmc_member *members;
	struct shmc_slot *slots;
	struct shmc_member *me;

	/* Private copies of the immutable header, validated once at open: every
	 * bound used below comes from here, never from shared memory. */
	uint64_t key;
	int32_t channel_id;
	uint32_t delivery, ring_entries, mask, max_msg, stride, max_members;
	uint32_t mode, flags;
	uint64_t nonce;
	uint32_t member_idx, member_id;

	/* Per-handle caches; atomic (relaxed) only because threads may share a
	 * handle: a stale value is always safe. */
	_Atomic uint64_t gate;            /* broadcast: cached slowest cursor */
	_Atomic uint64_t stall_pos;       /* recovery: last unpublished position seen */
	_Atomic uint64_t stall_probe_ns;
	_Atomic uint64_t gate_probe_ns;
	_Atomic uint64_t target_probe_ns;
	/* A member's receive state is one record (broadcast: its cursor;
	 * unicast/multicast: `taking`, which tells producers whether a TAKEN
	 * slot's taker lives): threads sharing the handle take turns. */
	atomic_flag recv_busy;
	/* One claim in flight per member: recover_stalled identifies a live
	 * claimer by its member's one claim record, so threads sharing the
	 * handle take turns from claim to publish. */
	atomic_flag send_busy;
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

/* The registry's mapping, locked: opaque outside registry.c. */
struct registry;

/* ---- internal functions, by the file that defines them --------------------- */

/* fork.c */
SHMC_INTERNAL void shmc__process_init(void);

/* registry.c (every function but the creator lock: caller holds g_lock) */
SHMC_INTERNAL int shmc__registry_lock(struct registry **out);
SHMC_INTERNAL void shmc__registry_unlock(struct registry *r);
SHMC_INTERNAL void shmc__registry_sweep(struct registry *r);
SHMC_INTERNAL struct shmc_reg_entry *shmc__registry_find(struct registry *r, uint64_t key,
							 int32_t id, uint32_t *index);
SHMC_INTERNAL int shmc__registry_reserve(struct registry *r, uint64_t key, uint32_t *index,
					 int32_t *id);
SHMC_INTERNAL void shmc__registry_publish(struct registry *r, uint32_t index,
					  const struct handle *h);
SHMC_INTERNAL void shmc__registry_clear(struct registry *r, uint32_t index);
SHMC_INTERNAL void shmc__registry_drop(struct registry *r, const struct handle *h);
SHMC_INTERNAL int shmc__registry_hold_creator(uint32_t index);
SHMC_INTERNAL void shmc__registry_release_creator(uint32_t index);
SHMC_INTERNAL void shmc__registry_sweep_if_gone(uint32_t index, int32_t id, uint64_t nonce);
SHMC_INTERNAL void shmc__registry_after_fork(void);

/* segment.c */
SHMC_INTERNAL struct handle *shmc__handle_new(void);
SHMC_INTERNAL void shmc__handle_unmap(struct handle *h);
SHMC_INTERNAL void shmc__handle_geometry(struct handle *h, uint32_t delivery, uint32_t entries,
					 uint32_t max_msg);
SHMC_INTERNAL int shmc__segments_create(struct handle *h, bool *created);
SHMC_INTERNAL int shmc__segments_open(struct handle *h, const struct shmc_reg_entry *ent,
				      uint32_t access);
SHMC_INTERNAL void shmc__unlink_segments(int32_t id, uint64_t nonce);

/* member.c */
SHMC_INTERNAL uint64_t shmc__process_start_time(pid_t pid);
SHMC_INTERNAL int shmc__byte_locked(int fd, uint64_t offset);
SHMC_INTERNAL bool shmc__member_alive(struct handle *h, uint32_t idx);
SHMC_INTERNAL uint32_t shmc__unpark_bits(struct handle *h, struct shmc_member *m, uint32_t bits);
SHMC_INTERNAL void shmc__member_release_parks(struct handle *h, struct shmc_member *m);
SHMC_INTERNAL int shmc__member_join(struct handle *h, uint32_t access);
SHMC_INTERNAL int shmc__find_receiver(struct handle *h, uint32_t id);
SHMC_INTERNAL bool shmc__probe_allowed(_Atomic uint64_t *last);

/* recover.c */
SHMC_INTERNAL bool shmc__target_gone(struct handle *h, uint32_t target);
SHMC_INTERNAL bool shmc__drop_if_target_gone(struct handle *h, uint64_t pos, uint64_t q);
SHMC_INTERNAL bool shmc__free_if_taker_gone(struct handle *h, uint64_t pos, uint64_t q);
SHMC_INTERNAL bool shmc__recover_stalled(struct handle *h, uint64_t pos, uint64_t q);

/* doorbell.c */
SHMC_INTERNAL int shmc__doorbell_ring(const char *addr);
SHMC_INTERNAL void shmc__doorbell_record(struct shmc_member *m);
SHMC_INTERNAL void shmc__doorbell_init(void);
SHMC_INTERNAL void shmc__doorbell_after_fork(void);

/* wake.c */
SHMC_INTERNAL void shmc__wake_receivers(struct handle *h, uint32_t target, int target_idx);
SHMC_INTERNAL void shmc__wake_senders(struct handle *h);

/* send.c */
SHMC_INTERNAL int shmc__try_send(struct handle *h, const void *buf, uint32_t len,
				 uint32_t target);
SHMC_INTERNAL uint64_t shmc__broadcast_gate(struct handle *h, uint64_t t, bool probe);

/* recv.c */
/* How a take runs: a real take, a peek (report whether a message is there;
 * may drop messages whose target left), or a take whose head advance and
 * wake check the caller does once for a batch. */
enum take_mode { TAKE_NOW, TAKE_PEEK, TAKE_DEFER };
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

static inline uint8_t *dat_slot(struct handle *h, uint64_t pos)
{
	return (h->dat + sizeof(struct shmc_dat_header) +
					(size_t)(pos & h->mask) * h->stride);
}

/* Is slot @t free for a producer at position t? Broadcast also needs the
 * gate (checked by the caller). */
static inline bool slot_free_for(struct handle *h, uint64_t t, uint64_t q)
{
	const uint64_t n = h->ring_entries;
	if (h->delivery == SHMC_BROADCAST)
		return q == SEQ(t, SLOT_FREE) || q == SEQ(t - n, SLOT_READY) ||
		       q == SEQ(t - n, SLOT_TAKEN);
	return q == SEQ(t, SLOT_FREE);
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
 * visible with a seq_cst store (the READY publish, a freed slot, a moved
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

/* One take (or peek) under this handle's receive turn. */
static inline int take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode)
{
	recv_lock(h);
	int r = h->delivery == SHMC_BROADCAST ? shmc__broadcast_take(h, buf, cap, mode)
					      : shmc__queue_take(h, buf, cap, mode, NULL);
	recv_unlock(h);
	return r;
}

/* shmc_try_recv on a live handle (shmc_recv retries it). */
static inline int try_recv(struct handle *h, void *buf, uint32_t cap)
{
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	if (cap && !buf)
		return -EFAULT;
	return take(h, buf, cap, TAKE_NOW);
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
	uint64_t t = load_acquire(&h->ctl->tail);
	uint64_t q = load_acquire(&h->slots[t & h->mask].seq);
	uint64_t n = h->ring_entries;
	if (!slot_free_for(h, t, q))
		return 0; /* the same test as claim_positions */
	if (h->delivery != SHMC_BROADCAST)
		return 1;
	return t - shmc__broadcast_gate(h, t, false) < n;
}

#endif /* SHMCHAN_INTERNAL_H */
