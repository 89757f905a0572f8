/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the one test harness shared by every csrc/tests/test_*.c.
 *
 * Each test is one program: main() calls th_init(), runs its checks, and
 * returns th_finish() (0 pass, 1 fail) or th_skip() (77). Checks do not stop
 * the test; they print file:line and the values and count a failure in
 * th_failures. The REQUIRE_* forms stop the process (exit 1) when a later
 * step would make no sense without them.
 *
 * Children are forked with th_fork(): they die with their parent, run under
 * the same watchdog, and exit 0 only when their function returned 0 and none
 * of their checks failed. th_wait() reaps one with a timeout, th_kill()
 * SIGKILLs and reaps one.
 *
 * Beside the checks: keys and seeded randomness, /dev/shm helpers, one
 * self-checking message format, a stress driver, (for the crash and fuzz
 * tests) a writable mapping of a channel's files that can play a producer
 * or consumer step by step, and (for the attack tests) running code as
 * another uid.
 *
 * Environment: SHMCHAN_CRASH_ROUNDS=<n> sets the round count of the crash
 * tests (th_rounds()) and turns their watchdog off (th_watchdog_for_rounds()).
 */
#ifndef SHMCHAN_TEST_HARNESS_H
#define SHMCHAN_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "layout.h"
#include "shmchan.h"

#define TH_PASS 0
#define TH_FAIL 1
#define TH_SKIP 77

/* Default watchdog: below CTest's 120 s timeout, so a hang is reported by us. */
#define TH_WATCHDOG_S 100u
/* th_init()'s @watchdog_s for no watchdog at all (long runs chosen by an
 * environment variable; CTest's own timeout still applies under CTest). */
#define TH_NO_WATCHDOG UINT32_MAX

/* Failed checks in this process (a forked child starts again from 0). */
extern atomic_int th_failures;

/* ---- lifecycle ------------------------------------------------------------ */

/* Name the test, make stdout line-buffered, arm the watchdog: @watchdog_s
 * seconds, 0 for TH_WATCHDOG_S, TH_NO_WATCHDOG for none. When it fires it
 * kills every child it knows of and fails the test. */
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
/* A return code for the log: "ok" (>= 0), "-EINVAL", ..., or "-E?". */
const char *th_errname(long long v);
/* The failure report of the comparison macros below. */
void th_cmp_failed(const char *file, int line, const char *expr, long long a, long long b);

/* Round count: @ci by default; SHMCHAN_CRASH_ROUNDS=<n> sets it to n. */
unsigned th_rounds(unsigned ci);
/* @ci_seconds, or TH_NO_WATCHDOG when SHMCHAN_CRASH_ROUNDS asks for a long run. */
unsigned th_watchdog_for_rounds(unsigned ci_seconds);

/* ---- checks ---------------------------------------------------------------- */

#define TH_CMP_(a, op, b, stop)                                                   \
	do {                                                                      \
		long long th_a_ = (long long)(a), th_b_ = (long long)(b);         \
		if (!(th_a_ op th_b_)) {                                          \
			th_cmp_failed(__FILE__, __LINE__, #a " " #op " " #b,       \
				      th_a_, th_b_);                              \
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

/* CHECK and REQUIRE with a printf message: CHECK_MSG(r == 0, "send %u", i). */
#define CHECK_MSG(cond, ...)                                                      \
	do {                                                                      \
		if (!(cond))                                                      \
			th_fail_at(__FILE__, __LINE__, "(" #cond ") " __VA_ARGS__); \
	} while (0)

#define REQUIRE_MSG(cond, ...)                                                    \
	do {                                                                      \
		if (!(cond)) {                                                    \
			th_fail_at(__FILE__, __LINE__, "(" #cond ") " __VA_ARGS__); \
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

/* ---- keys, time, randomness ------------------------------------------------------ */

/* A fresh channel key: pid, both clocks and a counter mixed; never 0, and
 * never shared by parallel runs of different programs. */
uint64_t th_key(void);
uint64_t th_now_ns(void);
void th_sleep_ms(unsigned ms);
void th_sleep_us(uint64_t us);
/* Nanoseconds as milliseconds, for the log. */
double th_ms(uint64_t ns);

/* The splitmix64 finaliser. */
uint64_t th_mix64(uint64_t x);
/* splitmix64 generator; the state is the seed. */
uint64_t th_rand(uint64_t *state);
/* Uniform in [0, n) (0 when n is 0). */
uint64_t th_below(uint64_t *state, uint64_t n);
/* A seed from the environment variable @env (decimal or 0x hex), or fresh. */
uint64_t th_seed(const char *env);

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
/* SIGKILL @pid and reap it; returns when the kernel has released its locks. */
void th_kill(pid_t pid);
/* Forget a child the test reaped itself (waitpid), so the watchdog leaves
 * its pid alone. */
void th_forget(pid_t pid);
/*
 * Wait until @pid (its main thread) sleeps in a futex system call: then it
 * is really parked, not spinning. Reads /proc/<pid>/syscall, and the wchan
 * as well (which also holds under qemu-user). Returns 0, or -ETIMEDOUT.
 */
int th_wait_futex_blocked(pid_t pid, int timeout_ms);

/*
 * Become @uid/@gid (no supplementary groups) in this process, and stay
 * dumpable (so that /proc/self/fd keeps working, as after an exec). 0, or
 * -errno (not root).
 */
int th_become(uid_t uid, gid_t gid);
/* The uid attack tests play their attacker as (nobody). */
#define TH_NOBODY 65534
/* th_fork() a child that becomes TH_NOBODY first, then runs @fn. */
pid_t th_fork_nobody(th_child_fn fn, void *arg);

/* Zeroed memory shared with forked children (MAP_SHARED | MAP_ANONYMOUS). */
void *th_shared_alloc(size_t size);
/* Spin-sleep until *flag >= value; 0, or -ETIMEDOUT. */
int th_await_u32(atomic_uint *flag, unsigned value, int timeout_ms);

/* ---- /dev/shm ---------------------------------------------------------------------- */

/* Number of /dev/shm entries whose name starts with "shmchan". */
int th_count_shm(void);
/* Number of channel names: "shmchan." entries (a channel in lookup has two:
 * its directory and its id link). */
int th_count_segments(void);
/* Number of /dev/shm names of the channel (@key, @id): its directory (in or
 * out of lookup) and its id link. */
int th_count_segments_of(uint64_t key, int32_t id);
/* Write the "shmchan" names, one a line, after @prefix (for the log). */
void th_list_shm(const char *prefix);
/* Whether /dev/shm/@name exists. */
bool th_shm_exists(const char *name);
/*
 * Give this process (and its future children) a private, empty /dev/shm:
 * a new mount namespace with its own tmpfs, so counting entries is not
 * disturbed by tests running in parallel. Call before any shmc_* call.
 * Returns 0 or -errno (not root, no namespaces).
 */
int th_private_shm(void);

/* ---- self-checking messages ---------------------------------------------------------- */

/*
 * Message (producer, seq) of a given length: a 20-byte header {magic,
 * producer, seq, length, checksum} and a payload whose bytes follow from
 * (producer, seq). A torn, truncated, padded or stale copy fails the check.
 */
#define TH_MSG_MAGIC 0x4d534843u /* "CHSM" */
#define TH_MSG_HDR 20u
/* A length for message (producer, seq) in [TH_MSG_HDR, max]. */
uint32_t th_msg_len(uint32_t max, uint32_t producer, uint32_t seq);
/* Build message (producer, seq) of @len bytes (>= TH_MSG_HDR) in @buf;
 * returns @len. */
uint32_t th_msg_build(void *buf, uint32_t len, uint32_t producer, uint32_t seq);
/* Verify a received message of exactly @len bytes: 0 and its ids, or -1
 * when torn or corrupt. */
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

/* ---- doorbells, as an event loop has them ------------------------------------------ */

/* A handle's doorbell for one direction: a listening socket at the path the
 * library gives (shmc_doorbell_path), sealed (shmc_doorbell_seal), and the
 * connections accepted on it. */
struct th_bell {
	int lfd;
	int cfd[16];
	int ncfd;
	char path[SHMC_DOORBELL_PATH_MAX];
};
/* Listen for @handle's wakes of @what (SHMC_WAIT_RECV / SHMC_WAIT_SEND) with a
 * listen backlog of @backlog. 0 or -errno. */
int th_bell_open(struct th_bell *b, int handle, uint32_t what, int backlog);
/* Wait up to @ms for bytes on the doorbell (accepting connections on the
 * way): the byte count, 0 on timeout. */
int th_bell_wait(struct th_bell *b, int ms);
/* Close the accepted connections (a waker then reconnects). */
void th_bell_drop_conns(struct th_bell *b);
void th_bell_close(struct th_bell *b);

/* ---- a channel's files, through a writable mapping of the test's own ---------------- */

/*
 * For the crash and fuzz tests, which must leave the shared state exactly as
 * a peer dying at a given point does, or as a hostile peer writes it. The
 * mapping holds no descriptor and no liveness lock, so it keeps nobody alive.
 * Everything that depends on the layout (which file a word lives in, its
 * encoding, how a claim is recorded) is here, so a layout change is one edit.
 */
struct th_map {
	int dfd;                        /* the channel's directory */
	struct shmc_desc desc;
	struct shmc_ctl_header *ctl;
	struct shmc_dat_header *dh;
	uint8_t *dat;
	size_t csize, dsize;
	struct shmc_wait *waits;        /* ctl: one per member slot */
	struct shmc_qslot *qslots;      /* ctl: unicast/multicast slot states (NULL: broadcast) */
	struct shmc_member *members[SHMC_MAX_MEMBERS]; /* m<i> mapped read-write, or NULL */
	uint32_t n, mask, stride, max_msg, delivery;
	uint64_t nonce, start;
	char dir[96];                   /* its path, /dev/shm/shmchan.<K> */
};

/*
 * Map the files of the live channel (@id, @key): ctl, dat and every member
 * file present now, read-write where the caller may write them, else
 * read-only (the tests run as the channel's owner or root, or as an attacker
 * who sees what its rights give it). 0 or -errno.
 */
int th_map_channel(int32_t id, uint64_t key, struct th_map *m);
/* Map the member files again (members joined or left since). */
void th_map_members(struct th_map *m);
void th_unmap(struct th_map *m);
/* The path of a file of the channel of @key: "/dev/shm/shmchan.<K>/@name". */
void th_channel_path(char *out, size_t n, uint64_t key, const char *name);

/* The shared words of DESIGN.md section 6, decoded. */
/* The slot state word of @pos (ctl for unicast/multicast, dat for broadcast). */
_Atomic uint64_t *th_state_word(struct th_map *m, uint64_t pos);
uint64_t th_seq(struct th_map *m, uint64_t pos);
void th_set_seq(struct th_map *m, uint64_t pos, uint64_t q);
bool th_cas_seq(struct th_map *m, uint64_t pos, uint64_t *expected, uint64_t desired);
/* Is the slot of position @k being written (a producer between its first
 * and its last publish store, or dead there and not skipped yet)? Then true,
 * with the position in *@pos. */
bool th_being_written(struct th_map *m, uint64_t k, uint64_t *pos);
/* The slot header of @pos in dat, its payload, its length. */
struct shmc_slot_header *th_slot(struct th_map *m, uint64_t pos);
uint8_t *th_payload(struct th_map *m, uint64_t pos);
void th_set_len(struct th_map *m, uint64_t pos, uint32_t len);
/* Unicast/multicast: the stamp that says the bytes of the slot are @pos's,
 * complete. */
void th_set_stamp(struct th_map *m, uint64_t pos);
_Atomic uint64_t *th_tail(struct th_map *m);
/* Step 1 of a claim: record the claimed range [t, t+n) in the member. */
void th_record_claim(struct shmc_member *me, uint64_t t, uint32_t n);
/* After the tail CAS, as a producer writes (DESIGN.md 7, "Publish"): the
 * "being written" stamp (unicast/multicast) or WRITING (broadcast), target 0,
 * length and @len bytes of payload; then, if @publish, the stamp "complete"
 * (unicast/multicast) or READY (broadcast) (else the producer "dies" here). */
void th_hand_write(struct th_map *m, uint64_t t, const void *buf, uint32_t len, bool publish);

/* Index of the active member with subscriber id @id, or -1. */
int th_member_by_id(struct th_map *m, uint32_t id);
/* Index of the member of a handle of this process, or -1. */
int th_member_of(struct th_map *m, int handle);
/* Index of the active member of process @pid, or -1. */
int th_member_of_pid(struct th_map *m, pid_t pid);
/* One shmc_info() field of @handle, or UINT64_MAX. */
uint64_t th_info(int handle, int field);
/* "SEQ(p,STATE)" for the log. */
const char *th_seq_str(uint64_t q, char *buf, size_t n);
/* Print the ring's state (tail, head, slots, members) for a failure report. */
void th_dump_ring(struct th_map *m, const char *why);
/* The address of a mapping of the file at @path in this process (found by
 * its inode), the @nth such (0, 1, ...), skipping @except (a mapping of the
 * test's own); 0 when there is none. */
uintptr_t th_library_mapping(const char *path, int nth, const void *except);

#endif /* SHMCHAN_TEST_HARNESS_H */
