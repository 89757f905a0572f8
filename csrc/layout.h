/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of shmchan. csrc/DESIGN.md explains it; every
 * field says who writes it. All offsets are published in the headers, never
 * pointers; positions are free-running 64-bit counters masked by
 * ring_entries - 1.
 */
#ifndef SHMCHAN_LAYOUT_H
#define SHMCHAN_LAYOUT_H

#include <stdint.h>
#include <stdatomic.h>
#include <stddef.h>

#define SHMC_CTL_MAGIC    0x4c544353u   /* "SCTL" */
#define SHMC_DAT_MAGIC    0x54414453u   /* "SDAT" */
#define SHMC_REG_MAGIC    0x47455253u   /* "SREG" */
#define SHMC_LAYOUT_VERSION 1u
#define SHMC_CACHELINE    64u

/* ---- the registry: one small machine-wide file, /dev/shm/shmchan.registry */

#define SHMC_REG_CAPACITY 1024u
/* Byte ranges locked (OFD write locks) to show liveness; beyond EOF. */
#define SHMC_REG_LOCK_BASE (1ull << 30)

struct shmc_reg_header {
	uint32_t magic;       /* SHMC_REG_MAGIC; written once, under the flock */
	uint32_t version;
	uint32_t capacity;    /* SHMC_REG_CAPACITY */
	uint32_t next_id;     /* next channel id to try */
	uint8_t pad[48];
};

/* One live channel. Written only under flock(registry, LOCK_EX). */
struct shmc_reg_entry {
	uint32_t state;       /* 0 free, 1 live */
	int32_t id;           /* channel id, 1 .. INT32_MAX */
	uint64_t key;
	uint64_t nonce;       /* names the segments: shmchan.<id>.<nonce>.{c,d} */
	uint32_t uid, gid;    /* creator's euid / egid */
	uint32_t mode;        /* & 0666 */
	uint32_t flags;       /* SHMC_F_* */
	uint32_t delivery;
	uint32_t creator_pid;
	uint64_t creator_start; /* /proc/<pid>/stat starttime: pid-reuse-proof */
};

/* ---- the control segment: /dev/shm/shmchan.<id>.<nonce>.c ---------------
 * Writable by every participant (receivers record their progress here);
 * never holds message bytes. */

enum slot_state { SLOT_FREE = 0, SLOT_WRITING = 1, SLOT_READY = 2, SLOT_TAKEN = 3 };
/* A slot's seq is position * 4 + state (mod 2^64). */
#define SEQ(pos, state) ((uint64_t)(pos) * 4u + (uint64_t)(state))

struct shmc_ctl_header {
	/* Immutable once published; written by the creator before `version`. */
	uint32_t magic;
	_Atomic uint32_t version;  /* written last (release): the segment is ready */
	uint32_t header_size;
	uint32_t delivery;
	uint32_t ring_entries;
	uint32_t max_msg_size;
	uint32_t slot_stride;      /* bytes per slot in the data segment */
	uint32_t flags;
	uint32_t mode;
	uint32_t owner_uid;
	uint32_t owner_gid;
	int32_t channel_id;
	uint64_t key;
	uint64_t nonce;
	uint32_t max_members;
	uint32_t members_offset;
	uint32_t slots_offset;
	uint32_t reserved0;
	uint64_t ctl_size;
	uint64_t dat_size;
	uint8_t pad0[32];

	/* Producers: the next position to claim (CAS). */
	_Atomic uint64_t tail;
	uint8_t pad1[56];

	/* Consumers (unicast/multicast): every position below head is consumed.
	 * A hint for scanners, advanced by whoever frees the slot at head. */
	_Atomic uint64_t head;
	uint8_t pad2[56];

	/* Waiting: counts of members with a RECV / SEND parked bit set. */
	_Atomic uint32_t recv_parked;    /* parkers increment, the clearer decrements */
	_Atomic uint32_t send_parked;
	_Atomic uint32_t rr_next;        /* round-robin start for wake-one; producers */
	_Atomic uint32_t next_member_id; /* attachers, under the registry flock */
	_Atomic uint64_t dropped;        /* targeted messages whose target left */
	_Atomic uint64_t skipped;        /* slots of writers that died mid-write */
	uint8_t pad3[32];
};

#define MEMBER_FREE   0u
#define MEMBER_ACTIVE 1u
#define MEMBER_OWNER  0x100u   /* access flag: the creator's handle */

/* One participant (owner handle or subscriber). Fields are written by the
 * member itself unless noted. */
struct shmc_member {
	_Atomic uint32_t state;   /* attacher sets ACTIVE (under registry flock);
				     itself, or a reclaimer of the dead, sets FREE */
	_Atomic uint32_t id;      /* subscriber id, unique in the channel */
	_Atomic uint32_t access;  /* SHMC_SEND | SHMC_RECV | MEMBER_OWNER */
	uint32_t pid;
	uint64_t start_time;      /* with pid: an identity that survives pid reuse */
	_Atomic uint32_t parked;  /* SHMC_WAIT_* bits: set by itself, cleared by a waker or itself */
	_Atomic uint32_t wake;    /* futex word: bumped by wakers */
	_Atomic uint64_t claim;   /* first position this member last claimed as producer */
	char doorbell[40];        /* abstract socket address, NUL padded */
	_Atomic uint32_t claim_n; /* how many positions from `claim` */
	uint32_t pad_t;
	_Atomic uint64_t taking;  /* consumer: position + 1 it is taking (0: none) */
	uint8_t pad0[32];
	_Atomic uint64_t cursor;  /* broadcast: next position to read */
	uint8_t pad1[56];
};

/* Per-slot descriptor in the control segment, one cache line each so that
 * a producer publishing slot i+1 does not steal the line a consumer is
 * reading slot i from. */
struct shmc_slot {
	_Atomic uint64_t seq;     /* SEQ(pos, state): producers and consumers */
	_Atomic uint32_t target;  /* 0 or subscriber id; producer, before READY */
	_Atomic uint32_t writer;  /* member index + 1 of the producer; producer */
	_Atomic uint32_t len;     /* message length; producer, before READY */
	uint8_t pad[44];
};

/* ---- the data segment: /dev/shm/shmchan.<id>.<nonce>.d ------------------
 * Writable only by senders (the OS enforces the mode), so a receive-only
 * participant cannot forge a message. */

struct shmc_dat_header {
	uint32_t magic;
	_Atomic uint32_t version;  /* written last */
	uint32_t ring_entries;
	uint32_t slot_stride;
	uint64_t nonce;
	uint64_t dat_size;
	uint8_t pad[32];
};

/* Each slot of the data segment is max_msg_size bytes of payload, rounded
 * up to a cache line (the length lives in the slot descriptor, so a 64-byte
 * message is one line of data). */

_Static_assert(sizeof(struct shmc_reg_header) == 64, "registry header");
_Static_assert(sizeof(struct shmc_reg_entry) == 56, "registry entry");
_Static_assert(sizeof(struct shmc_ctl_header) == 5 * SHMC_CACHELINE, "ctl header");
_Static_assert(offsetof(struct shmc_ctl_header, tail) == 2 * SHMC_CACHELINE, "tail line");
_Static_assert(offsetof(struct shmc_ctl_header, head) == 3 * SHMC_CACHELINE, "head line");
_Static_assert(offsetof(struct shmc_ctl_header, recv_parked) == 4 * SHMC_CACHELINE, "wait line");
_Static_assert(sizeof(struct shmc_member) == 3 * SHMC_CACHELINE, "member");
_Static_assert(offsetof(struct shmc_member, cursor) == 2 * SHMC_CACHELINE, "cursor line");
_Static_assert(sizeof(struct shmc_slot) == SHMC_CACHELINE, "slot descriptor");
_Static_assert(sizeof(struct shmc_dat_header) == SHMC_CACHELINE, "data header");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4, "atomics are plain-sized");

#endif
