/* SPDX-License-Identifier: MIT */
/*
 * The few memory-ordering operations shmchan uses, named for what they do.
 * Every use in the library's sources carries a comment naming the operation
 * it pairs with ("SYNC:"). Shared words are _Atomic; plain fields in shared
 * memory are only read or written under an ordering established by one of
 * these.
 */
#ifndef SHMCHAN_ATOMICS_H
#define SHMCHAN_ATOMICS_H

#include <stdatomic.h>

#define load_relaxed(p)        atomic_load_explicit((p), memory_order_relaxed)
#define load_acquire(p)        atomic_load_explicit((p), memory_order_acquire)
#define load_seq_cst(p)        atomic_load_explicit((p), memory_order_seq_cst)
#define store_relaxed(p, v)    atomic_store_explicit((p), (v), memory_order_relaxed)
#define store_release(p, v)    atomic_store_explicit((p), (v), memory_order_release)
#define store_seq_cst(p, v)    atomic_store_explicit((p), (v), memory_order_seq_cst)
#define fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define fetch_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define fetch_or_seq_cst(p, v)  atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
/* A successful CAS orders like a seq_cst RMW; a failed one reloads *expected. */
#define cas_seq_cst(p, expected, desired) \
	atomic_compare_exchange_strong_explicit((p), (expected), (desired), \
		memory_order_seq_cst, memory_order_relaxed)
#define cas_acq_rel(p, expected, desired) \
	atomic_compare_exchange_strong_explicit((p), (expected), (desired), \
		memory_order_acq_rel, memory_order_acquire)
/* Full barrier: a store before it is visible before any load after it. */
#define smp_mb()               atomic_thread_fence(memory_order_seq_cst)
/* Store-store barrier: stores before it are visible before stores after it
 * (a seqlock writer's stamp before its payload). No instruction on x86. */
#define smp_wmb()              atomic_thread_fence(memory_order_release)
/* Load-load barrier: loads before it complete before loads after it (a
 * seqlock reader's payload copy before its second stamp load). */
#define smp_rmb()              atomic_thread_fence(memory_order_acquire)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
