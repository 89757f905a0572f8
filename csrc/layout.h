/* SPDX-License-Identifier: MIT */
/*
 * The shared layout of shmchan: the files of a channel's directory in
 * /dev/shm (csrc/DESIGN.md sections 2 and 6). Every field says who writes
 * it. All offsets are fixed by the geometry, never pointers; positions are
 * free-running 64-bit counters masked by ring_entries - 1, and each slot's
 * stored words are relative to the first position the slot holds, so that a
 * zero-filled file is the valid initial state (DESIGN.md 6, "Encoding").
 */
#ifndef SHMCHAN_LAYOUT_H
#define SHMCHAN_LAYOUT_H

#include <stdint.h>
#include <stdatomic.h>
#include <stddef.h>

#define SHMC_DESC_MAGIC   0x43534453u   /* "SDSC" */
#define SHMC_CTL_MAGIC    0x4c544353u   /* "SCTL" */
#define SHMC_DAT_MAGIC    0x54414453u   /* "SDAT" */
#define SHMC_MEMBER_MAGIC 0x4d454d53u   /* "SMEM" */
#define SHMC_LAYOUT_VERSION 4u
#define SHMC_CACHELINE    64u

/* The liveness lock byte (an OFD write lock; beyond EOF) of `id` (the
 * creator) and of each member file (the member). */
#define SHMC_LOCK_BYTE    (1ull << 30)

/* Names in /dev/shm and in a channel's directory. */
#define SHMC_SHM_DIR      "/dev/shm"
#define SHMC_PREFIX       "shmchan."

/* ---- id: the descriptor, written once by the creator before it is linked */

struct shmc_desc {
	uint32_t magic;            /* SHMC_DESC_MAGIC */
	uint32_t version;          /* SHMC_LAYOUT_VERSION */
	uint32_t desc_size;        /* sizeof(struct shmc_desc) */
	uint32_t delivery;
	uint32_t ring_entries;
	uint32_t max_msg_size;
	uint32_t slot_stride;      /* bytes per slot in dat: header + payload */
	uint32_t flags;            /* SHMC_F_* */
	uint32_t mode;             /* & 0666 */
	int32_t channel_id;
	uint64_t key;
	uint64_t nonce;            /* ties ctl, dat and member files to this channel */
	uint64_t start;            /* the first position (DESIGN.md 6, "Encoding") */
	uint64_t ctl_size;
	uint64_t dat_size;
	uint32_t member_size;      /* sizeof(struct shmc_member) */
	uint32_t creator_pid;      /* for messages and diagnostics */
	uint64_t creator_start;    /* /proc/<pid>/stat starttime */
	uint64_t pidns;            /* inode of the creator's pid namespace */
	uint8_t pad[152];
};

/* ---- ctl: what receivers share; writable by every participant ----------
 * Never message bytes, lengths or targets. */

enum slot_state { SLOT_FREE = 0, SLOT_WRITING = 1, SLOT_READY = 2, SLOT_TAKEN = 3 };
/* A slot's state word is position * 4 + state (mod 2^64), stored encoded. */
#define SEQ(pos, state) ((uint64_t)(pos) * 4u + (uint64_t)(state))

struct shmc_ctl_header {
	/* Written by the creator before the file is linked; checked at open. */
	uint32_t magic;
	uint32_t header_size;
	uint64_t nonce;
	uint32_t ring_entries;
	uint32_t pad_a;
	uint64_t ctl_size;
	uint8_t pad0[32];

	/* Consumers (unicast/multicast): every position below head is consumed.
	 * A hint for scanners, advanced by whoever frees the slot at head. */
	_Atomic uint64_t head;
	uint8_t pad1[56];

	/* Waiting: counts of members with a RECV / SEND parked bit set. */
	_Atomic uint32_t recv_parked;    /* parkers increment, the clearer decrements */
	_Atomic uint32_t send_parked;
	_Atomic uint32_t rr_next;        /* round-robin start for wake-one; producers */
	_Atomic uint32_t next_member_gen;/* joiners: the generation in member ids */
	_Atomic uint64_t dropped;        /* targeted messages whose target left */
	_Atomic uint64_t skipped;        /* slots of writers that died mid-write */
	_Atomic uint64_t skip_mark;      /* broadcast: next position a skip may count */
	uint8_t pad2[24];

	/* What departed members counted (DESIGN.md 11, "Folding"): added once
	 * per member, by the member leaving or by the reclaimer of a dead one,
	 * inside the fold_busy/fold_gen seqlock. */
	_Atomic uint64_t folded_sent;
	_Atomic uint64_t folded_sent_bytes;
	_Atomic uint64_t folded_received;
	_Atomic uint64_t folded_received_bytes;
	_Atomic uint64_t folded_full;
	_Atomic uint64_t folded_parks;
	_Atomic uint64_t folded_wakes;
	_Atomic uint32_t fold_busy;      /* folds in progress */
	_Atomic uint32_t fold_gen;       /* folds completed */
};

/* One member slot's waiting state (DESIGN.md 4), one cache line. */
struct shmc_wait {
	_Atomic uint32_t parked;   /* SHMC_WAIT_* bits: the member sets, a waker or itself clears */
	_Atomic uint32_t wake;     /* futex word: wakers increment */
	_Atomic uint32_t sleepers; /* the member's threads in FUTEX_WAIT on `wake` */
	_Atomic uint32_t member_id;/* the member, when it parks: a hint for wakers' views */
	uint8_t pad[48];
};

/* Unicast/multicast slot state: whether a position is taken or consumed
 * (whether it is published is its stamp's, in dat). Consumers write it
 * (FREE -> TAKEN -> FREE for the next lap); producers read it only when head
 * does not show room, and write it only to drop a departed target's message
 * or abort a loan. One cache line each, so that consumers taking adjacent
 * slots do not share one. */
struct shmc_qslot {
	_Atomic uint64_t seq;      /* encoded SEQ(pos, state) */
	uint8_t pad[56];
};

/* ---- dat: what only senders write (the OS enforces the mode) ------------ */

struct shmc_dat_header {
	uint32_t magic;            /* written by the creator before linking */
	uint32_t header_size;
	uint64_t nonce;
	uint32_t ring_entries;
	uint32_t slot_stride;
	uint64_t dat_size;
	uint8_t pad0[32];
	_Atomic uint64_t tail;     /* producers: the next position to claim (CAS) */
	uint8_t pad1[56];
};

/* The header of every slot in dat, then the payload. */
struct shmc_slot_header {
	/* unicast/multicast: the stamp, encoded (the position the bytes below
	 * belong to); broadcast: the encoded state word SEQ(pos, state). */
	_Atomic uint64_t word;
	_Atomic uint32_t len;      /* message length; the producer, before the publish */
	_Atomic uint32_t target;   /* 0 or subscriber id; the producer, before the publish */
};

/* ---- m<i>: a member's own file; only the member writes it ---------------- */

#define MEMBER_ACTIVE 1u
#define MEMBER_LEFT   2u
#define MEMBER_OWNER  0x100u   /* access flag: the creator's handle */
/* Doorbell bits (`bells`): a sealed socket listens for this direction. */
#define MEMBER_BELL_RECV 1u
#define MEMBER_BELL_SEND 2u

struct shmc_member {
	/* line 0: identity, written before the file is linked; then state and
	 * the doorbell bits, by the member */
	uint32_t magic;            /* SHMC_MEMBER_MAGIC */
	uint32_t size;             /* sizeof(struct shmc_member) */
	uint64_t nonce;            /* the channel's */
	uint32_t slot;             /* i of m<i> */
	uint32_t id;               /* subscriber id: slot + 1 + 64 * generation */
	uint32_t access;           /* SHMC_SEND | SHMC_RECV | MEMBER_OWNER */
	uint32_t pid;
	uint64_t start_time;       /* with pid: an identity that survives pid reuse */
	uint64_t pidns;            /* inode of the member's pid namespace */
	_Atomic uint32_t state;    /* MEMBER_ACTIVE, then MEMBER_LEFT */
	_Atomic uint32_t bells;    /* MEMBER_BELL_*: a token below is published */
	uint8_t pad0[8];
	/* line 1: the broadcast cursor (the gate reads it) */
	_Atomic uint64_t cursor;
	uint8_t pad1[56];
	/* line 2: the producer's claim and the consumer's take (recovery reads them) */
	_Atomic uint64_t claim;    /* first position this member last claimed */
	_Atomic uint32_t claim_n;  /* how many positions from `claim` */
	uint32_t pad_c;
	_Atomic uint64_t taking;   /* consumer: position + 1 it is taking (0: none) */
	/* The hot counters (DESIGN.md 11): the member, plain relaxed load and
	 * store under its send turn (sent, sent_bytes, full) or its receive
	 * turn (received, received_bytes). */
	_Atomic uint64_t sent;
	_Atomic uint64_t sent_bytes;
	_Atomic uint64_t received;
	_Atomic uint64_t received_bytes;
	_Atomic uint64_t full;     /* send attempts refused: ring full */
	/* line 3: the doorbells' names: b<slot>.<token>.r / .s (written before
	 * the bell bit) */
	_Atomic uint64_t token_r;
	_Atomic uint64_t token_s;
	uint8_t pad3[48];
	/* line 4: the cold counters (DESIGN.md 11): the member, relaxed
	 * fetch_add on slow paths (a send and a receive thread may both count) */
	_Atomic uint64_t dropped;  /* targeted messages of departed targets, dead takers' slots */
	_Atomic uint64_t skipped;  /* slots of writers that died mid-write */
	_Atomic uint64_t parks;    /* times it parked */
	_Atomic uint64_t wakes;    /* wakes it delivered to others */
	uint8_t pad4[32];
};

_Static_assert(sizeof(struct shmc_desc) == 256, "descriptor");
_Static_assert(sizeof(struct shmc_ctl_header) == 4 * SHMC_CACHELINE, "ctl header");
_Static_assert(offsetof(struct shmc_ctl_header, folded_sent) == 3 * SHMC_CACHELINE, "folded line");
_Static_assert(offsetof(struct shmc_ctl_header, head) == SHMC_CACHELINE, "head line");
_Static_assert(offsetof(struct shmc_ctl_header, recv_parked) == 2 * SHMC_CACHELINE, "wait line");
_Static_assert(sizeof(struct shmc_wait) == SHMC_CACHELINE, "wait slot");
_Static_assert(sizeof(struct shmc_qslot) == SHMC_CACHELINE, "queue slot");
_Static_assert(sizeof(struct shmc_dat_header) == 2 * SHMC_CACHELINE, "data header");
_Static_assert(offsetof(struct shmc_dat_header, tail) == SHMC_CACHELINE, "tail line");
_Static_assert(sizeof(struct shmc_slot_header) == 16, "slot header");
_Static_assert(sizeof(struct shmc_member) == 5 * SHMC_CACHELINE, "member");
_Static_assert(offsetof(struct shmc_member, sent) == 2 * SHMC_CACHELINE + 24, "hot counters beside claim");
_Static_assert(offsetof(struct shmc_member, token_r) == 3 * SHMC_CACHELINE, "token line");
_Static_assert(offsetof(struct shmc_member, dropped) == 4 * SHMC_CACHELINE, "cold counters line");
_Static_assert(offsetof(struct shmc_member, cursor) == SHMC_CACHELINE, "cursor line");
_Static_assert(offsetof(struct shmc_member, claim) == 2 * SHMC_CACHELINE, "claim line");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4, "atomics are plain-sized");

#endif
