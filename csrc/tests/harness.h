/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the small test harness shared by every csrc/tests/test_*.c.
 *
 * Each test is one program: main() calls th_init(), runs its checks, and
 * returns th_finish() (0 pass, 1 fail) or TH_SKIP (77). Checks do not stop
 * the test; they print file:line and the values and count a failure. The
 * REQUIRE_* forms stop the process (exit 1) when a later step would make no
 * sense without them.
 *
 * Children are forked with th_fork(): they die with their parent, run under
 * the same watchdog, and exit 0 only when their function returned 0 and none
 * of their checks failed. th_wait() reaps one with a timeout.
 */
#ifndef SHMCHAN_TEST_HARNESS_H
#define SHMCHAN_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "shmchan.h"

#define TH_PASS 0
#define TH_FAIL 1
#define TH_SKIP 77

/* Default watchdog: below CTest's 120 s timeout, so a hang is reported by us. */
#define TH_WATCHDOG_S 100u

/* Failed checks in this process (a forked child starts again from 0). */
extern atomic_int th_failures;

/* ---- lifecycle ------------------------------------------------------------ */

/* Name the test, make stdout line-buffered, arm the watchdog (seconds). */
void th_init(const char *name, unsigned watchdog_s);
/* Print the verdict and return TH_PASS or TH_FAIL. */
int th_finish(void);
/* Print a skip reason and return TH_SKIP. */
int th_skip(const char *why);
/* Print "== what" so the log says what is being checked. */
void th_section(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record one failure at file:line with a message. */
void th_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "-EINVAL" for a negative errno value, "" for anything else. */
const char *th_errname(long long v);

/* ---- checks ---------------------------------------------------------------- */

#define TH_CMP_(a, op, b, stop)                                                   \
	do {                                                                      \
		long long th_a_ = (long long)(a), th_b_ = (long long)(b);         \
		if (!(th_a_ op th_b_)) {                                          \
			th_fail_at(__FILE__, __LINE__,                            \
				   "%s %s %s: %lld%s%s vs %lld%s%s", #a, #op, #b,  \
				   th_a_, *th_errname(th_a_) ? " " : "",          \
				   th_errname(th_a_), th_b_,                      \
				   *th_errname(th_b_) ? " " : "",                 \
				   th_errname(th_b_));                            \
			if (stop)                                                 \
				exit(TH_FAIL);                                    \
		}                                                                 \
	} while (0)

#define EXPECT_EQ(a, b) TH_CMP_(a, ==, b, 0)
#define EXPECT_NE(a, b) TH_CMP_(a, !=, b, 0)
#define EXPECT_GE(a, b) TH_CMP_(a, >=, b, 0)
#define EXPECT_GT(a, b) TH_CMP_(a, >, b, 0)
#define EXPECT_LE(a, b) TH_CMP_(a, <=, b, 0)
#define EXPECT_LT(a, b) TH_CMP_(a, <, b, 0)
#define REQUIRE_EQ(a, b) TH_CMP_(a, ==, b, 1)
#define REQUIRE_GE(a, b) TH_CMP_(a, >=, b, 1)
#define REQUIRE_GT(a, b) TH_CMP_(a, >, b, 1)

/* A shmc_* call that must succeed (return >= 0). */
#define EXPECT_OK(x) TH_CMP_(x, >=, 0, 0)
#define REQUIRE_OK(x) TH_CMP_(x, >=, 0, 1)

/* Unsigned 64-bit values (keys, info fields). */
#define EXPECT_EQ_U64(a, b)                                                       \
	do {                                                                      \
		uint64_t th_ua_ = (uint64_t)(a), th_ub_ = (uint64_t)(b);          \
		if (th_ua_ != th_ub_)                                             \
			th_fail_at(__FILE__, __LINE__,                            \
				   "%s == %s: 0x%" PRIx64 " vs 0x%" PRIx64, #a,   \
				   #b, th_ua_, th_ub_);                           \
	} while (0)

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond))                                                      \
			th_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);       \
	} while (0)

#define REQUIRE(cond)                                                             \
	do {                                                                      \
		if (!(cond)) {                                                    \
			th_fail_at(__FILE__, __LINE__, "REQUIRE(%s)", #cond);     \
			exit(TH_FAIL);                                            \
		}                                                                 \
	} while (0)

#define EXPECT_MEMEQ(a, b, n)                                                     \
	do {                                                                      \
		if (memcmp((a), (b), (n)) != 0)                                   \
			th_fail_at(__FILE__, __LINE__,                            \
				   "memcmp(%s, %s, %s) != 0", #a, #b, #n);        \
	} while (0)

#define EXPECT_STREQ(a, b)                                                        \
	do {                                                                      \
		const char *th_sa_ = (a), *th_sb_ = (b);                          \
		if (strcmp(th_sa_, th_sb_) != 0)                                  \
			th_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", \
				   #a, #b, th_sa_, th_sb_);                       \
	} while (0)

/* ---- keys, time ----------------------------------------------------------------- */

/* A fresh channel key: pid, both clocks and a counter mixed; never 0. */
uint64_t th_key(void);
uint64_t th_now_ns(void);
void th_sleep_ms(unsigned ms);

/* ---- processes --------------------------------------------------------------------- */

typedef int (*th_child_fn)(void *arg);

/*
 * Fork a child that runs fn(arg) and exits with its result, or 1 if one of
 * its checks failed. The child gets SIGKILL when the parent dies and keeps
 * the watchdog. Returns the pid; a failed fork stops the test.
 */
pid_t th_fork(th_child_fn fn, void *arg);
/*
 * Reap @pid within @timeout_ms. Returns its exit code (0..255), 128+signal
 * when a signal ended it, or -1 on timeout (it is then killed and reaped).
 */
int th_wait(pid_t pid, int timeout_ms);
/* th_wait() and a check that the child exited 0. */
#define EXPECT_CHILD_OK(pid, timeout_ms) EXPECT_EQ(th_wait((pid), (timeout_ms)), 0)
/* SIGKILL @pid and reap it. */
void th_kill(pid_t pid);
/*
 * Wait until @pid (its main thread) sleeps in a futex system call: then it
 * is really parked, not spinning. Reads /proc/<pid>/syscall, and the wchan
 * as well (which also holds under qemu-user). Returns 0, or -ETIMEDOUT.
 */
int th_wait_futex_blocked(pid_t pid, int timeout_ms);

/* Zeroed memory shared with forked children (MAP_SHARED | MAP_ANONYMOUS). */
void *th_shared_alloc(size_t size);
/* Spin-sleep until *flag >= value; 0, or -ETIMEDOUT. */
int th_await_u32(atomic_uint *flag, unsigned value, int timeout_ms);

/* ---- /dev/shm ---------------------------------------------------------------------- */

/* Number of /dev/shm entries whose name starts with "shmchan". */
int th_count_shm(void);
/* Write those names, one a line, after @prefix (for the log). */
void th_list_shm(const char *prefix);
/*
 * Give this process (and its future children) a private, empty /dev/shm:
 * a new mount namespace with its own tmpfs, so counting entries is not
 * disturbed by tests running in parallel. Call before any shmc_* call.
 * Returns 0 or -errno (not root, no namespaces).
 */
int th_private_shm(void);

/* ---- self-checking messages (stress tests) ----------------------------------------- */

/*
 * A message: 16-byte header {producer, seq, total length, checksum} and a
 * payload whose length and bytes follow from (producer, seq).
 */
#define TH_MSG_HDR 16u
/* Build message (producer, seq) in @buf (@cap >= TH_MSG_HDR); return length. */
uint32_t th_msg_build(void *buf, uint32_t cap, uint32_t producer, uint32_t seq);
/* Verify a received message: 0 and its ids, or -1 when torn or corrupt. */
int th_msg_verify(const void *buf, uint32_t len, uint32_t *producer, uint32_t *seq);

/*
 * Run a stress test: @producers processes each send @msgs messages (lengths
 * varying up to @max_msg) to a fresh channel of @delivery while @consumers
 * processes receive and check them. Unicast and multicast: every message is
 * received exactly once; broadcast: every consumer receives every message,
 * in one common order. Always: no torn message, per-producer order.
 * Returns the number of failed checks (also counted in th_failures).
 */
int th_stress_run(uint32_t delivery, unsigned producers, unsigned consumers,
		  unsigned msgs, uint32_t ring_entries, uint32_t max_msg);

#endif /* SHMCHAN_TEST_HARNESS_H */
