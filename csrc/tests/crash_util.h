/* SPDX-License-Identifier: MIT */
/*
 * crash_util.h - static helpers for the crash-safety and fuzz tests
 * (test_crash_*.c, test_fuzz_*.c). Self-contained on purpose: these tests
 * fork, SIGKILL and SIGSTOP processes, and poke the shared segments through
 * their own mappings, so they keep their own small toolbox instead of
 * depending on harness.h (which is linked in, but not used).
 *
 * Conventions
 *   - cu_init() names the test, line-buffers stdout and arms a watchdog that
 *     kills every child it knows of and fails the test (exit 1).
 *   - CU_CHECK(cond, fmt, ...) records a failure (file:line, message) and goes
 *     on; CU_REQUIRE stops the process. cu_finish() returns 0 / 1.
 *   - Exit codes: 0 pass, 1 fail, 77 skip (CTest SKIP_RETURN_CODE).
 *   - SHMCHAN_CRASH_ROUNDS=<n> scales every round count (cu_rounds()).
 *   - Keys mix the pid, both clocks and a counter, so parallel CTest runs of
 *     different programs never share a key.
 */
#ifndef SHMCHAN_CRASH_UTIL_H
#define SHMCHAN_CRASH_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "layout.h"
#include "shmchan.h"

#define CU_PASS 0
#define CU_FAIL 1
#define CU_SKIP 77
#define CU_MAX_CHILDREN 256

/* Per-process state (each test is one translation unit). */
static atomic_int cu_failures __attribute__((unused));
static const char *cu_name __attribute__((unused)) = "test";
static volatile sig_atomic_t cu_children[CU_MAX_CHILDREN] __attribute__((unused));
static unsigned cu_watchdog_s __attribute__((unused)) = 110;

/* ---- time ---------------------------------------------------------------- */

static inline uint64_t cu_now_ns(void) { return th_now_ns(); }

static inline void cu_sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000u),
			       .tv_nsec = (long)(us % 1000000u) * 1000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline void cu_sleep_ms(unsigned ms) { cu_sleep_us((uint64_t)ms * 1000u); }

static inline double cu_ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- randomness ---------------------------------------------------------- */

static inline uint64_t cu_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* splitmix64 generator; the state is the seed. */
static inline uint64_t cu_rand(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	uint64_t x = *s;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t cu_below(uint64_t *s, uint64_t n) { return n ? cu_rand(s) % n : 0; }

/* A fresh channel key: pid, both clocks and a counter; never 0. */
static inline uint64_t cu_key(void)
{
	static atomic_uint_fast64_t counter;
	struct timespec m, r;
	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	uint64_t k = cu_mix64(((uint64_t)getpid() << 40) ^ (uint64_t)m.tv_nsec ^
			      ((uint64_t)m.tv_sec << 20));
	k = cu_mix64(k ^ (uint64_t)r.tv_nsec ^ ((uint64_t)r.tv_sec << 32) ^
		     (atomic_fetch_add(&counter, 1) * 0x2545f4914f6cdd1dull));
	return k ? k : 1;
}

/* A seed from the environment variable @env (decimal or 0x hex), or fresh. */
static inline uint64_t cu_seed(const char *env)
{
	const char *s = getenv(env);
	if (s && *s)
		return strtoull(s, NULL, 0);
	return cu_key();
}

/* ---- reporting ----------------------------------------------------------- */

static inline void cu_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline void cu_fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	atomic_fetch_add(&cu_failures, 1);
	fflush(stdout);
	fprintf(stderr, "%s:%d: [pid %d] FAILED: %s\n", file, line, (int)getpid(), msg);
	fflush(stderr);
}

#define CU_CHECK(cond, ...)                                                       \
	do {                                                                      \
		if (!(cond))                                                      \
			cu_fail_at(__FILE__, __LINE__, "(" #cond ") " __VA_ARGS__); \
	} while (0)

#define CU_REQUIRE(cond, ...)                                                     \
	do {                                                                      \
		if (!(cond)) {                                                    \
			cu_fail_at(__FILE__, __LINE__, "(" #cond ") " __VA_ARGS__); \
			exit(CU_FAIL);                                            \
		}                                                                 \
	} while (0)

static inline const char *cu_err(int v)
{
	if (v >= 0)
		return "ok";
	switch (-v) {
	case ENOENT: return "-ENOENT";
	case EEXIST: return "-EEXIST";
	case EAGAIN: return "-EAGAIN";
	case ENOBUFS: return "-ENOBUFS";
	case ETIMEDOUT: return "-ETIMEDOUT";
	case EACCES: return "-EACCES";
	case EINVAL: return "-EINVAL";
	case EBADMSG: return "-EBADMSG";
	case EUSERS: return "-EUSERS";
	case EMSGSIZE: return "-EMSGSIZE";
	case EFAULT: return "-EFAULT";
	case ENOSPC: return "-ENOSPC";
	case EMFILE: return "-EMFILE";
	default: return "-E?";
	}
}

static inline void cu_section(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void cu_section(const char *fmt, ...)
{
	va_list ap;
	printf("== ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* ---- lifecycle, children, watchdog ---------------------------------------- */

static inline void cu_write_err(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));
	(void)r;
}

static inline void cu_on_alarm(int sig)
{
	(void)sig;
	cu_write_err("WATCHDOG: ");
	cu_write_err(cu_name);
	cu_write_err(" hung; killing children and failing\n");
	for (int i = 0; i < CU_MAX_CHILDREN; i++)
		if (cu_children[i] > 0)
			kill((pid_t)cu_children[i], SIGKILL);
	_exit(CU_FAIL);
}

static inline void cu_arm_watchdog(unsigned seconds)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = cu_on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds); /* 0 cancels */
}

/* @watchdog_s 0: no watchdog (long runs selected by an environment variable;
 * CTest's own timeout still applies to CTest runs). */
static inline void cu_init(const char *name, unsigned watchdog_s)
{
	cu_name = name;
	cu_watchdog_s = watchdog_s;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# %s (pid %d, library 0x%06x)\n", name, (int)getpid(), (unsigned)shmc_version());
	cu_arm_watchdog(cu_watchdog_s);
}

static inline int cu_finish(void)
{
	alarm(0);
	int n = atomic_load(&cu_failures);
	if (n) {
		printf("FAIL: %s: %d check(s) failed\n", cu_name, n);
		return CU_FAIL;
	}
	printf("PASS: %s\n", cu_name);
	return CU_PASS;
}

static inline int cu_skip(const char *why)
{
	alarm(0);
	printf("SKIP: %s: %s\n", cu_name, why);
	return CU_SKIP;
}

/* Round count: @ci by default; SHMCHAN_CRASH_ROUNDS=<n> sets it to n. */
static inline unsigned cu_rounds(unsigned ci)
{
	const char *s = getenv("SHMCHAN_CRASH_ROUNDS");
	if (s && *s) {
		unsigned long v = strtoul(s, NULL, 0);
		if (v > 0 && v < 10000000ul)
			return (unsigned)v;
	}
	return ci;
}

/* A long run (env var set) gets a longer watchdog. */
static inline unsigned cu_watchdog_for_rounds(unsigned ci_seconds)
{
	const char *s = getenv("SHMCHAN_CRASH_ROUNDS");
	return (s && *s) ? 0u : ci_seconds;
}

static inline void cu_remember(pid_t pid)
{
	for (int i = 0; i < CU_MAX_CHILDREN; i++)
		if (cu_children[i] == 0) {
			cu_children[i] = pid;
			return;
		}
}

static inline void cu_forget(pid_t pid)
{
	for (int i = 0; i < CU_MAX_CHILDREN; i++)
		if (cu_children[i] == pid)
			cu_children[i] = 0;
}

typedef int (*cu_child_fn)(void *arg);

/* Fork a child running fn(arg); it dies with its parent (PDEATHSIG) and exits
 * with fn's result, or 1 if one of its checks failed. */
static inline pid_t cu_fork(cu_child_fn fn, void *arg)
{
	pid_t parent = getpid();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CU_REQUIRE(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(CU_FAIL);
		for (int i = 0; i < CU_MAX_CHILDREN; i++)
			cu_children[i] = 0;
		atomic_store(&cu_failures, 0);
		cu_arm_watchdog(cu_watchdog_s);
		int rc = fn(arg);
		if (rc == 0 && atomic_load(&cu_failures))
			rc = CU_FAIL;
		fflush(stdout);
		fflush(stderr);
		exit(rc);
	}
	cu_remember(pid);
	return pid;
}

/* Reap @pid within @timeout_ms: its exit code, 128+signal, or -1 on timeout
 * (then it is killed and reaped). */
static inline int cu_wait(pid_t pid, int timeout_ms)
{
	uint64_t deadline = cu_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			cu_forget(pid);
			return -1;
		}
		if (cu_now_ns() > deadline) {
			fprintf(stderr, "child %d still running after %d ms: killing it\n",
				(int)pid, timeout_ms);
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			cu_forget(pid);
			return -1;
		}
		cu_sleep_us(500);
	}
	cu_forget(pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* SIGKILL @pid and reap it; returns when the kernel has released its locks. */
static inline void cu_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	cu_forget(pid);
}

/* Wait until @pid's main thread sleeps in a futex call; 0 or -ETIMEDOUT. */
static inline int cu_wait_futex(pid_t pid, int timeout_ms)
{
	return th_wait_futex_blocked(pid, timeout_ms);
}

/* Zeroed memory shared with forked children (exits on failure). */
static inline void *cu_shared(size_t size) { return th_shared_alloc(size); }

/* Spin-sleep until *v >= want; 0 or -ETIMEDOUT. */
static inline int cu_await(atomic_uint *v, unsigned want, int timeout_ms)
{
	uint64_t deadline = cu_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (atomic_load(v) < want) {
		if (cu_now_ns() > deadline)
			return -ETIMEDOUT;
		cu_sleep_us(200);
	}
	return 0;
}

/* ---- self-checking messages ------------------------------------------------ */

#define CU_MSG_MAGIC 0x4d534843u /* "CHSM" */
#define CU_MSG_HDR 20u

static inline uint32_t cu_fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

/* The payload of message (producer, seq): a cheap per-message LCG stream. */
static inline void cu_msg_fill(unsigned char *b, uint32_t n, uint32_t producer, uint32_t seq)
{
	uint64_t x = cu_mix64(((uint64_t)producer << 32) | seq);
	for (uint32_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

/* Build message (producer, seq) of @len bytes (>= CU_MSG_HDR) in @buf:
 * {magic, producer, seq, len, checksum} then a payload derived from them. */
static inline uint32_t cu_msg_build(void *buf, uint32_t len, uint32_t producer, uint32_t seq)
{
	unsigned char *b = buf;
	uint32_t h[5] = { CU_MSG_MAGIC, producer, seq, len, 0 };
	cu_msg_fill(b + CU_MSG_HDR, len - CU_MSG_HDR, producer, seq);
	h[4] = cu_fnv(cu_fnv(2166136261u, h, 16), b + CU_MSG_HDR, len - CU_MSG_HDR);
	memcpy(b, h, sizeof h);
	return len;
}

/* A length for (producer, seq) in [CU_MSG_HDR, max]. */
static inline uint32_t cu_msg_len(uint32_t max, uint32_t producer, uint32_t seq)
{
	if (max <= CU_MSG_HDR)
		return CU_MSG_HDR;
	return CU_MSG_HDR + (uint32_t)(cu_mix64(((uint64_t)producer << 32) | seq) %
				       (max - CU_MSG_HDR + 1));
}

/* 0 and the ids for a well-formed message of exactly @len bytes, else -1. */
static inline int cu_msg_check(const void *buf, int len, uint32_t *producer, uint32_t *seq)
{
	const unsigned char *b = buf;
	uint32_t h[5];
	if (len < (int)CU_MSG_HDR)
		return -1;
	memcpy(h, b, sizeof h);
	if (h[0] != CU_MSG_MAGIC || h[3] != (uint32_t)len)
		return -1;
	if (cu_fnv(cu_fnv(2166136261u, h, 16), b + CU_MSG_HDR, (size_t)len - CU_MSG_HDR) != h[4])
		return -1;
	/* The checksum could be forged consistently by a torn copy only by
	 * chance; the payload stream is checked too, in 8-byte steps. */
	uint64_t x = cu_mix64(((uint64_t)h[1] << 32) | h[2]);
	for (uint32_t i = CU_MSG_HDR; i < (uint32_t)len; i++) {
		uint32_t k = i - CU_MSG_HDR;
		if ((k & 7) == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (b[i] != (unsigned char)(x >> ((k & 7) * 8)))
			return -1;
	}
	*producer = h[1];
	*seq = h[2];
	return 0;
}

/* ---- /dev/shm ---------------------------------------------------------------- */

/* Entries of /dev/shm starting with "shmchan." other than the registry. */
static inline int cu_count_shm(void)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "shmchan.", 8) == 0 && strcmp(e->d_name, "shmchan.registry"))
			n++;
	closedir(d);
	return n;
}

static inline void cu_list_shm(const char *prefix) { th_list_shm(prefix); }

/* Count the /dev/shm names of channel @id ("shmchan.<id>.*"). */
static inline int cu_count_shm_id(int32_t id)
{
	char pfx[32];
	snprintf(pfx, sizeof pfx, "shmchan.%d.", (int)id);
	DIR *d = opendir("/dev/shm");
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, pfx, strlen(pfx)) == 0)
			n++;
	closedir(d);
	return n;
}

static inline bool cu_shm_exists(const char *name)
{
	char path[300];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	return access(path, F_OK) == 0;
}

/* Give this process (and its future children) a private, empty /dev/shm (a
 * new mount namespace with its own tmpfs), so entry counts are not disturbed
 * by tests running in parallel. Call before any shmc_* call. 0 or -errno. */
static inline int cu_private_shm(void) { return th_private_shm(); }

/* ---- the shared segments, through our own writable mapping ------------------- */

struct cu_map {
	int cfd, dfd;
	struct shmc_ctl_header *ctl;
	uint8_t *dat;
	size_t csize, dsize;
	struct shmc_member *members;
	struct shmc_slot *slots;
	uint32_t n, mask, stride, max_msg;
	uint64_t nonce;
	char cname[128], dname[128];   /* names in /dev/shm (no leading '/') */
};

static inline void cu_unmap(struct cu_map *m)
{
	if (m->ctl)
		munmap(m->ctl, m->csize);
	if (m->dat)
		munmap(m->dat, m->dsize);
	if (m->cfd >= 0)
		close(m->cfd);
	if (m->dfd >= 0)
		close(m->dfd);
	memset(m, 0, sizeof *m);
	m->cfd = m->dfd = -1;
}

static inline int cu_map_file(const char *name, int *fd, void **p, size_t *size)
{
	char path[300];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	struct stat st;
	if (fstat(*fd, &st) < 0 || st.st_size <= 0) {
		close(*fd);
		*fd = -1;
		return -EBADMSG;
	}
	*size = (size_t)st.st_size;
	*p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*p == MAP_FAILED) {
		int err = -errno;
		close(*fd);
		*fd = -1;
		*p = NULL;
		return err;
	}
	return 0;
}

/*
 * Map the control and data segments of the live channel (@id, @key) read-write
 * (find "shmchan.<id>.<nonce>.c" in /dev/shm whose header names @key). Needs
 * the file permission (the tests run as the channel's owner). 0 or -errno.
 * The mapping's fd holds no liveness lock, so it does not keep anyone alive.
 */
static inline int cu_map_channel(int32_t id, uint64_t key, struct cu_map *m)
{
	memset(m, 0, sizeof *m);
	m->cfd = m->dfd = -1;
	char pfx[32];
	snprintf(pfx, sizeof pfx, "shmchan.%d.", (int)id);
	DIR *d = opendir("/dev/shm");
	if (!d)
		return -errno;
	struct dirent *e;
	int err = -ENOENT;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, pfx, strlen(pfx)) || l < 3 || strcmp(e->d_name + l - 2, ".c"))
			continue;
		void *p = NULL;
		size_t sz = 0;
		int fd = -1;
		if (cu_map_file(e->d_name, &fd, &p, &sz) < 0)
			continue;
		struct shmc_ctl_header *c = p;
		if (sz < sizeof *c || c->magic != SHMC_CTL_MAGIC || c->key != key ||
		    c->channel_id != id || c->ctl_size != sz) {
			munmap(p, sz);
			close(fd);
			continue;
		}
		m->cfd = fd;
		m->ctl = c;
		m->csize = sz;
		snprintf(m->cname, sizeof m->cname, "%s", e->d_name);
		snprintf(m->dname, sizeof m->dname, "%s", e->d_name);
		m->dname[l - 1] = 'd';
		err = 0;
		break;
	}
	closedir(d);
	if (err)
		return err;
	void *dp;
	err = cu_map_file(m->dname, &m->dfd, &dp, &m->dsize);
	if (err) {
		cu_unmap(m);
		return err;
	}
	m->dat = dp;
	m->n = m->ctl->ring_entries;
	m->mask = m->n - 1;
	m->stride = m->ctl->slot_stride;
	m->max_msg = m->ctl->max_msg_size;
	m->nonce = m->ctl->nonce;
	m->members = (struct shmc_member *)((uint8_t *)m->ctl + sizeof(struct shmc_ctl_header));
	m->slots = (struct shmc_slot *)((uint8_t *)m->members +
					SHMC_MAX_MEMBERS * sizeof(struct shmc_member));
	return 0;
}

/*
 * The producer's steps of DESIGN.md section 3, by hand, for tests that must
 * leave the shared state exactly as a producer dying at a given point does.
 * Everything that depends on the layout (where the length lives, how a claim
 * is recorded) is here, so a layout change is one edit.
 */

/* The payload bytes of the slot of @pos in the data segment. */
static inline uint8_t *cu_payload(struct cu_map *m, uint64_t pos)
{
	return m->dat + sizeof(struct shmc_dat_header) + (size_t)(pos & m->mask) * m->stride;
}

/* The message length of the slot of @pos (it lives in the slot descriptor). */
static inline void cu_set_len(struct cu_map *m, uint64_t pos, uint32_t len)
{
	atomic_store(&m->slots[pos & m->mask].len, len);
}

/* Step 1 of a claim: record the claimed range [t, t+n) in the member. */
static inline void cu_record_claim(struct shmc_member *me, uint64_t t, uint32_t n)
{
	atomic_store(&me->claim, t);
	atomic_store(&me->claim_n, n);
}

/* After the tail CAS: target, writer, WRITING, length and @len bytes of
 * payload; then READY if @publish (else the producer "dies" here). */
static inline void cu_hand_write(struct cu_map *m, uint64_t t, uint32_t member_idx,
				 const void *buf, uint32_t len, bool publish)
{
	struct shmc_slot *s = &m->slots[t & m->mask];
	atomic_store(&s->target, 0);
	atomic_store(&s->writer, member_idx + 1);
	atomic_store(&s->seq, SEQ(t, SLOT_WRITING));
	cu_set_len(m, t, len);
	if (len)
		memcpy(cu_payload(m, t), buf, len);
	if (publish)
		atomic_store(&s->seq, SEQ(t, SLOT_READY));
}

/* Index of the active member with subscriber id @id (owner: pass the owner
 * handle's member through cu_member_of_pid), or -1. */
static inline int cu_member_by_id(struct cu_map *m, uint32_t id)
{
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
		if (atomic_load(&m->members[i].state) == MEMBER_ACTIVE &&
		    atomic_load(&m->members[i].id) == id)
			return (int)i;
	return -1;
}

/* Index of the active member of a handle (by its subscriber id), or -1. */
static inline int cu_member_of(struct cu_map *m, int handle)
{
	uint64_t info[SHMC_INFO_COUNT];
	if (shmc_info(handle, info) != SHMC_INFO_COUNT)
		return -1;
	if (info[SHMC_INFO_IS_OWNER]) {
		for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
			if (atomic_load(&m->members[i].state) == MEMBER_ACTIVE &&
			    (atomic_load(&m->members[i].access) & MEMBER_OWNER) &&
			    m->members[i].pid == (uint32_t)getpid())
				return (int)i;
		return -1;
	}
	return cu_member_by_id(m, (uint32_t)info[SHMC_INFO_MEMBER_ID]);
}

static inline uint64_t cu_info(int handle, int field)
{
	uint64_t info[SHMC_INFO_COUNT];
	if (shmc_info(handle, info) != SHMC_INFO_COUNT)
		return UINT64_MAX;
	return info[field];
}

/* "SEQ(p, STATE)" for the log. */
static inline const char *cu_seq_str(uint64_t q, char *buf, size_t n)
{
	static const char *st[] = { "FREE", "WRITING", "READY", "TAKEN" };
	snprintf(buf, n, "SEQ(%" PRIu64 ",%s)", q / 4, st[q & 3]);
	return buf;
}

/* Print the ring's state (tail, head, every slot) for a failure report. */
static inline void cu_dump_ring(struct cu_map *m, const char *why)
{
	char b[64];
	printf("  ring state (%s): tail %" PRIu64 " head %" PRIu64 " recv_parked %u send_parked %u"
	       " skipped %" PRIu64 " dropped %" PRIu64 "\n",
	       why, atomic_load(&m->ctl->tail), atomic_load(&m->ctl->head),
	       atomic_load(&m->ctl->recv_parked), atomic_load(&m->ctl->send_parked),
	       atomic_load(&m->ctl->skipped), atomic_load(&m->ctl->dropped));
	for (uint32_t i = 0; i < m->n && i < 16; i++)
		printf("    slot %u: %s writer %u target %u\n", i,
		       cu_seq_str(atomic_load(&m->slots[i].seq), b, sizeof b),
		       atomic_load(&m->slots[i].writer), atomic_load(&m->slots[i].target));
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
		struct shmc_member *mm = &m->members[i];
		if (atomic_load(&mm->state) == MEMBER_FREE)
			continue;
		printf("    member %u: state %u id %u access 0x%x pid %u parked %u claim %" PRIu64
		       " cursor %" PRIu64 "\n",
		       i, atomic_load(&mm->state), atomic_load(&mm->id), atomic_load(&mm->access),
		       mm->pid, atomic_load(&mm->parked), atomic_load(&mm->claim),
		       atomic_load(&mm->cursor));
	}
	fflush(stdout);
}

#endif /* SHMCHAN_CRASH_UTIL_H */
