/* SPDX-License-Identifier: MIT */
/*
 * cbench - the C floor for shmchan's benchmarks.
 *
 *   cbench pair        ITERS          one process: shmc_try_send + shmc_try_recv, ns per pair
 *   cbench ring-tput   SIZE MSGS      plain SPSC ring in shared memory, two processes
 *   cbench ring-rt     ITERS          plain SPSC ring, 64 B ping-pong, both sides spinning
 *   cbench shmc-tput   SIZE MSGS      shmchan C API, try_send / try_recv spinning
 *   cbench shmc-tput-batch SIZE MSGS  same with try_send_many / try_recv_many, 32 a call
 *   cbench shmc-rt     ITERS          shmchan C API, 64 B ping-pong, try_* spinning
 *   cbench shmc-rt-wait ITERS         shmchan C API, 64 B ping-pong, blocking shmc_send/shmc_recv
 *   cbench sock-rt     ITERS          Unix socketpair, 64 B ping-pong, blocking read/write
 *   cbench sock-tput   SIZE MSGS      Unix socketpair, one write() per message
 *   cbench paced-shmc  PATTERN N      request/reply with gaps, blocking shmc_send/shmc_recv
 *   cbench paced-sock  PATTERN N      the same over a blocking Unix socketpair
 *   cbench fill-tput   HOW SIZE MSGS  large messages, the producer filling each one (a
 *                                     64-bit counter pattern over every byte) and the
 *                                     consumer checksumming all of it and checking the
 *                                     sum: HOW = ring (plain SPSC ring, filled and
 *                                     summed in place: the floor), zc (shmc_try_loan /
 *                                     commit, shmc_try_recv_view / release), copy
 *                                     (shmc_try_send / shmc_try_recv with private
 *                                     buffers), sock (socketpair write / read). Ring
 *                                     and shmchan use the same entries, slot stride
 *                                     and payload offset. HOW-head (zc-head,
 *                                     ...): the consumer checks only the first
 *                                     64 bytes of each message, as one that
 *                                     reads a header and hands the frame on.
 *
 * PATTERN (as bench/bench.ts): b2b (back-to-back), 50us (the client computes
 * 50 us between requests), 1ms and 10ms (the client sleeps), burst (16
 * back-to-back requests, then 10 ms asleep). Paced cases report p50/p99 and
 * the CPU time per request of both processes (client: its process CPU
 * clock less the computed gaps; server: /proc/PID/schedstat).
 *
 * Each prints one JSON object per line on stdout. Two-process cases fork; the
 * child dies with its parent (PR_SET_PDEATHSIG) and both arm alarm(), so a
 * hung run always ends. Channels are created with a random key and destroyed.
 *
 * The plain ring is the rigtorp/Lamport SPSC queue: free-running write and
 * read indices on their own cache lines, each side caching the other's index
 * and reloading it only when the ring looks full (producer) or empty
 * (consumer); one release store publishes each message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shmchan.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_S 60

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "cbench: %s: %s (%d)\n", what, err < 0 ? shmc_strerror(err) : strerror(err), err);
	exit(1);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Pin to one CPU when there are at least two: spinning peers on separate cores. */
static void pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	sched_setaffinity(0, sizeof set, &set);
}

/* Process-shared scratch: start barrier and timestamps. */
struct shared {
	alignas(64) _Atomic uint32_t ready;
	alignas(64) _Atomic uint64_t t0;
	_Atomic uint64_t t1;
	_Atomic int64_t result;
};

static struct shared *shared_new(size_t extra, void **extra_out)
{
	size_t sz = 4096 + extra;
	void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap", errno);
	if (extra_out)
		*extra_out = (char *)p + 4096;
	return p;
}

static pid_t fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(WATCHDOG_S);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int st = 0;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void wait_flag(_Atomic uint32_t *f, uint32_t v)
{
	uint64_t start = now_ns();
	while (atomic_load_explicit(f, memory_order_acquire) < v) {
		cpu_relax();
		if (now_ns() - start > 20ull * 1000000000u) {
			fprintf(stderr, "cbench: peer did not start\n");
			exit(1);
		}
	}
}

static uint64_t random_key(void)
{
	uint64_t k = 0;
	if (getrandom(&k, sizeof k, 0) != sizeof k)
		k = now_ns() ^ ((uint64_t)getpid() << 40);
	return (k | 1) & ~(1ull << 63);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void print_rt(const char *name, uint32_t *ns, size_t n)
{
	qsort(ns, n, sizeof *ns, cmp_u32);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	printf("{\"case\":\"%s\",\"kind\":\"rt\",\"n\":%zu,\"p50_ns\":%u,\"p99_ns\":%u,\"mean_ns\":%.1f,\"min_ns\":%u}\n",
	       name, n, ns[n / 2], ns[(size_t)((double)n * 0.99)], sum / (double)n, ns[0]);
	fflush(stdout);
}

static void print_tput(const char *name, uint32_t size, uint64_t msgs, uint64_t ns)
{
	double secs = (double)ns / 1e9;
	printf("{\"case\":\"%s\",\"kind\":\"tput\",\"size\":%u,\"msgs\":%llu,\"ns\":%llu,"
	       "\"msgs_per_s\":%.0f,\"gb_per_s\":%.4f}\n",
	       name, size, (unsigned long long)msgs, (unsigned long long)ns, (double)msgs / secs,
	       (double)msgs * size / secs / 1e9);
	fflush(stdout);
}

/* ---- the plain SPSC ring -------------------------------------------------- */

struct ring {
	alignas(64) _Atomic uint64_t write;  /* producer: next index to write */
	alignas(64) _Atomic uint64_t read;   /* consumer: next index to read */
	alignas(64) uint8_t slots[];         /* capacity * size bytes */
};

struct ring_end {
	struct ring *r;
	uint64_t mask, size;
	uint64_t pos;      /* own index (private copy) */
	uint64_t cached;   /* the other side's index, reloaded only when needed */
};

static struct ring *ring_new(uint64_t cap, uint64_t size)
{
	size_t sz = sizeof(struct ring) + cap * size;
	void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap ring", errno);
	return p;
}

static inline int ring_try_push(struct ring_end *e, const void *buf)
{
	uint64_t cap = e->mask + 1;
	if (e->pos - e->cached == cap) {
		/* Looks full: reload the consumer's index. Acquire pairs with its
		 * release store after copying the slot out. */
		e->cached = atomic_load_explicit(&e->r->read, memory_order_acquire);
		if (e->pos - e->cached == cap)
			return 0;
	}
	memcpy(&e->r->slots[(e->pos & e->mask) * e->size], buf, e->size);
	/* Release pairs with the consumer's acquire load of write. */
	atomic_store_explicit(&e->r->write, ++e->pos, memory_order_release);
	return 1;
}

static inline int ring_try_pop(struct ring_end *e, void *buf)
{
	if (e->pos == e->cached) {
		e->cached = atomic_load_explicit(&e->r->write, memory_order_acquire);
		if (e->pos == e->cached)
			return 0;
	}
	memcpy(buf, &e->r->slots[(e->pos & e->mask) * e->size], e->size);
	atomic_store_explicit(&e->r->read, ++e->pos, memory_order_release);
	return 1;
}

static uint64_t entries_for(uint32_t size)
{
	/* The same ring geometry for the plain ring and shmchan. */
	if (size <= 256)
		return 1024;
	if (size <= 8192)
		return 256;
	return 32;
}

static void ring_tput(uint32_t size, uint64_t msgs)
{
	uint64_t cap = entries_for(size);
	struct ring *r = ring_new(cap, size);
	struct shared *sh = shared_new(0, NULL);
	pid_t pid = fork_child();
	if (pid == 0) {
		pin(1);
		struct ring_end e = { r, cap - 1, size, 0, 0 };
		uint8_t *buf = aligned_alloc(64, size);
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < msgs;)
			if (ring_try_pop(&e, buf))
				i++;
			else
				cpu_relax();
		atomic_store(&sh->t1, now_ns());
		_exit(0);
	}
	pin(0);
	struct ring_end e = { r, cap - 1, size, 0, 0 };
	uint8_t *buf = aligned_alloc(64, size);
	memset(buf, 0xab, size);
	wait_flag(&sh->ready, 1);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < msgs;)
		if (ring_try_push(&e, buf))
			i++;
		else
			cpu_relax();
	if (reap(pid) != 0)
		die("ring consumer", EIO);
	print_tput("c.ring.tput", size, msgs, atomic_load(&sh->t1) - t0);
}

static void ring_rt(uint64_t iters)
{
	const uint64_t size = 64, cap = 1024;
	struct ring *ping = ring_new(cap, size), *pong = ring_new(cap, size);
	struct shared *sh = shared_new(0, NULL);
	uint64_t warm = iters / 10 + 1000;
	pid_t pid = fork_child();
	if (pid == 0) {
		pin(1);
		struct ring_end in = { ping, cap - 1, size, 0, 0 }, out = { pong, cap - 1, size, 0, 0 };
		uint8_t buf[64];
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < warm + iters; i++) {
			while (!ring_try_pop(&in, buf))
				cpu_relax();
			while (!ring_try_push(&out, buf))
				cpu_relax();
		}
		_exit(0);
	}
	pin(0);
	struct ring_end out = { ping, cap - 1, size, 0, 0 }, in = { pong, cap - 1, size, 0, 0 };
	uint8_t buf[64] = { 1 };
	uint32_t *ns = malloc(iters * sizeof *ns);
	wait_flag(&sh->ready, 1);
	for (uint64_t i = 0; i < warm + iters; i++) {
		uint64_t t = now_ns();
		while (!ring_try_push(&out, buf))
			cpu_relax();
		while (!ring_try_pop(&in, buf))
			cpu_relax();
		if (i >= warm)
			ns[i - warm] = (uint32_t)(now_ns() - t);
	}
	if (reap(pid) != 0)
		die("ring echo", EIO);
	print_rt("c.ring.rt", ns, iters);
}

/* ---- shmchan --------------------------------------------------------------- */

static int attach_retry(uint64_t key, uint32_t access)
{
	uint64_t start = now_ns();
	for (;;) {
		int h = shmc_attach_key(key, access);
		if (h != -ENOENT)
			return h;
		if (now_ns() - start > 10ull * 1000000000u)
			return h;
		usleep(200);
	}
}

static void shmc_pair(uint64_t iters)
{
	uint64_t key = random_key();
	int ch = shmc_create(key, SHMC_UNICAST, 1024, 64, 0600, 0);
	if (ch < 0)
		die("shmc_create", ch);
	int sub = shmc_attach_key(key, SHMC_RECV);
	if (sub < 0)
		die("shmc_attach_key", sub);
	uint8_t msg[64] = { 7 }, buf[64];
	uint64_t warm = iters / 10 + 1000;
	for (uint64_t i = 0; i < warm; i++) {
		shmc_try_send(ch, msg, 64, 0);
		shmc_try_recv(sub, buf, 64);
	}
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		int r = shmc_try_send(ch, msg, 64, 0);
		if (r != 64)
			die("shmc_try_send", r);
		r = shmc_try_recv(sub, buf, 64);
		if (r != 64)
			die("shmc_try_recv", r);
	}
	uint64_t ns = now_ns() - t0;
	printf("{\"case\":\"c.shmc.pair\",\"kind\":\"pair\",\"n\":%llu,\"ns_per_pair\":%.1f}\n",
	       (unsigned long long)iters, (double)ns / (double)iters);
	fflush(stdout);
	shmc_detach(sub);
	shmc_destroy(ch);
}

#define BATCH 32

/* @batch: 1 sends and receives one message per call; more uses
 * shmc_try_send_many / shmc_try_recv_many with up to @batch per call. */
static void shmc_tput(uint32_t size, uint64_t msgs, uint32_t batch)
{
	uint64_t key = random_key();
	struct shared *sh = shared_new(0, NULL);
	int ch = shmc_create(key, SHMC_UNICAST, (uint32_t)entries_for(size), size, 0600, 0);
	if (ch < 0)
		die("shmc_create", ch);
	pid_t pid = fork_child();
	if (pid == 0) {
		pin(1);
		int sub = attach_retry(key, SHMC_RECV);
		if (sub < 0)
			die("attach", sub);
		uint8_t *buf = aligned_alloc(64, (size_t)size * BATCH);
		uint32_t lens[BATCH];
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < msgs;) {
			int r = batch > 1 ? shmc_try_recv_many(sub, buf, size * batch, lens, batch)
					  : shmc_try_recv(sub, buf, size);
			if (r >= 0)
				i += batch > 1 ? (uint64_t)r : 1;
			else if (r == -EAGAIN)
				cpu_relax();
			else
				die("shmc_try_recv", r);
		}
		atomic_store(&sh->t1, now_ns());
		shmc_detach(sub);
		_exit(0);
	}
	pin(0);
	uint8_t *buf = aligned_alloc(64, (size_t)size * BATCH);
	memset(buf, 0xab, (size_t)size * BATCH);
	uint32_t lens[BATCH];
	for (int i = 0; i < BATCH; i++)
		lens[i] = size;
	wait_flag(&sh->ready, 1);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < msgs;) {
		uint32_t want = msgs - i < batch ? (uint32_t)(msgs - i) : batch;
		int r = batch > 1 ? shmc_try_send_many(ch, buf, lens, want, 0)
				  : shmc_try_send(ch, buf, size, 0);
		if (r >= 0)
			i += batch > 1 ? (uint64_t)r : 1;
		else if (r == -ENOBUFS)
			cpu_relax();
		else
			die("shmc_try_send", r);
	}
	int st = reap(pid);
	shmc_destroy(ch);
	if (st != 0)
		die("shmc consumer", EIO);
	print_tput(batch > 1 ? "c.shmc.tput_batch" : "c.shmc.tput", size, msgs,
		   atomic_load(&sh->t1) - t0);
}

/* Ping on channel A (parent -> child), pong on channel B (child -> parent). */
static void shmc_rt(uint64_t iters, int blocking)
{
	uint64_t ka = random_key(), kb = random_key();
	struct shared *sh = shared_new(0, NULL);
	int a = shmc_create(ka, SHMC_UNICAST, 1024, 64, 0600, 0);
	int b = shmc_create(kb, SHMC_UNICAST, 1024, 64, 0600, 0);
	if (a < 0 || b < 0)
		die("shmc_create", a < 0 ? a : b);
	uint64_t warm = iters / 10 + 1000;
	pid_t pid = fork_child();
	if (pid == 0) {
		pin(1);
		int in = attach_retry(ka, SHMC_RECV), out = attach_retry(kb, SHMC_SEND);
		if (in < 0 || out < 0)
			die("attach", in < 0 ? in : out);
		uint8_t buf[64];
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < warm + iters; i++) {
			int r;
			if (blocking) {
				r = shmc_recv(in, buf, 64, 5000000000ll);
				if (r < 0)
					die("shmc_recv", r);
				r = shmc_send(out, buf, 64, 0, 5000000000ll);
				if (r < 0)
					die("shmc_send", r);
			} else {
				while ((r = shmc_try_recv(in, buf, 64)) == -EAGAIN)
					cpu_relax();
				if (r < 0)
					die("shmc_try_recv", r);
				while ((r = shmc_try_send(out, buf, 64, 0)) == -ENOBUFS)
					cpu_relax();
				if (r < 0)
					die("shmc_try_send", r);
			}
		}
		shmc_detach(in);
		shmc_detach(out);
		_exit(0);
	}
	pin(0);
	int in = shmc_attach_key(kb, SHMC_RECV);
	if (in < 0)
		die("attach", in);
	uint8_t buf[64] = { 1 };
	uint32_t *ns = malloc(iters * sizeof *ns);
	wait_flag(&sh->ready, 1);
	for (uint64_t i = 0; i < warm + iters; i++) {
		uint64_t t = now_ns();
		int r;
		if (blocking) {
			r = shmc_send(a, buf, 64, 0, 5000000000ll);
			if (r < 0)
				die("shmc_send", r);
			r = shmc_recv(in, buf, 64, 5000000000ll);
			if (r < 0)
				die("shmc_recv", r);
		} else {
			while ((r = shmc_try_send(a, buf, 64, 0)) == -ENOBUFS)
				cpu_relax();
			if (r < 0)
				die("shmc_try_send", r);
			while ((r = shmc_try_recv(in, buf, 64)) == -EAGAIN)
				cpu_relax();
			if (r < 0)
				die("shmc_try_recv", r);
		}
		if (i >= warm)
			ns[i - warm] = (uint32_t)(now_ns() - t);
	}
	int st = reap(pid);
	shmc_detach(in);
	shmc_destroy(a);
	shmc_destroy(b);
	if (st != 0)
		die("shmc echo", EIO);
	print_rt(blocking ? "c.shmc.rt_wait" : "c.shmc.rt_spin", ns, iters);
}

/* ---- Unix socketpair ------------------------------------------------------- */

static void full_write(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write", errno);
		}
		p += w;
		n -= (size_t)w;
	}
}

static int full_read(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read", errno);
		}
		if (r == 0)
			return 0;
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

static void sock_rt(uint64_t iters)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair", errno);
	uint64_t warm = iters / 10 + 100;
	pid_t pid = fork_child();
	if (pid == 0) {
		close(sv[0]);
		uint8_t buf[64];
		while (full_read(sv[1], buf, 64))
			full_write(sv[1], buf, 64);
		_exit(0);
	}
	close(sv[1]);
	uint8_t buf[64] = { 1 };
	uint32_t *ns = malloc(iters * sizeof *ns);
	for (uint64_t i = 0; i < warm + iters; i++) {
		uint64_t t = now_ns();
		full_write(sv[0], buf, 64);
		if (!full_read(sv[0], buf, 64))
			die("echo closed", EIO);
		if (i >= warm)
			ns[i - warm] = (uint32_t)(now_ns() - t);
	}
	close(sv[0]);
	reap(pid);
	print_rt("c.sock.rt", ns, iters);
}

static void sock_tput(uint32_t size, uint64_t msgs)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair", errno);
	struct shared *sh = shared_new(0, NULL);
	pid_t pid = fork_child();
	if (pid == 0) {
		close(sv[0]);
		uint8_t *buf = malloc(size);
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < msgs; i++)
			if (!full_read(sv[1], buf, size))
				die("short stream", EIO);
		atomic_store(&sh->t1, now_ns());
		_exit(0);
	}
	close(sv[1]);
	uint8_t *buf = malloc(size);
	memset(buf, 0xab, size);
	wait_flag(&sh->ready, 1);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < msgs; i++)
		full_write(sv[0], buf, size);
	if (reap(pid) != 0)
		die("sock consumer", EIO);
	close(sv[0]);
	print_tput("c.sock.tput", size, msgs, atomic_load(&sh->t1) - t0);
}

/* ---- paced request/reply ---------------------------------------------------- */

struct pattern {
	const char *name;
	uint64_t gap_ns;    /* before each request: computed up to 200 us, slept above */
	uint32_t burst;     /* >0: this many back-to-back, then idle_ns asleep */
	uint64_t idle_ns;
};

static const struct pattern PATTERNS[] = {
	{ "b2b", 0, 0, 0 },
	{ "50us", 50000, 0, 0 },
	{ "1ms", 1000000, 0, 0 },
	{ "10ms", 10000000, 0, 0 },
	{ "burst", 0, 16, 10000000 },
};

static const struct pattern *pattern_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof PATTERNS / sizeof PATTERNS[0]; i++)
		if (!strcmp(PATTERNS[i].name, name))
			return &PATTERNS[i];
	fprintf(stderr, "cbench: unknown pattern %s\n", name);
	exit(2);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static uint64_t self_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* On-CPU ns of a single-threaded child (its one thread's schedstat). */
static uint64_t child_cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
	FILE *f = fopen(path, "r");
	unsigned long long ns = 0;
	if (!f || fscanf(f, "%llu", &ns) != 1)
		die("schedstat", errno ? errno : EIO);
	fclose(f);
	return ns;
}

/* The gap before request @i; returns the ns spent computing (not asleep). */
static uint64_t pace(const struct pattern *pt, uint64_t i)
{
	if (pt->burst) {
		if (i % pt->burst == 0)
			sleep_ns(pt->idle_ns);
		return 0;
	}
	if (!pt->gap_ns)
		return 0;
	uint64_t t0 = now_ns();
	if (pt->gap_ns > 200000) {
		sleep_ns(pt->gap_ns);
		return 0;
	}
	while (now_ns() - t0 < pt->gap_ns)
		cpu_relax();
	return now_ns() - t0;
}

struct rr {
	int a, in;        /* shmchan: request channel (owner), reply subscriber */
	int fd;           /* socketpair end */
};

static void rr_request(const struct rr *c, int shm, uint8_t *buf)
{
	if (shm) {
		int r = shmc_send(c->a, buf, 64, 0, 5000000000ll);
		if (r < 0)
			die("shmc_send", r);
		r = shmc_recv(c->in, buf, 64, 5000000000ll);
		if (r != 64)
			die("shmc_recv", r < 0 ? r : -EIO);
	} else {
		full_write(c->fd, buf, 64);
		if (!full_read(c->fd, buf, 64))
			die("echo closed", EIO);
	}
}

static void paced(int shm, const char *pname, uint64_t n)
{
	const struct pattern *pt = pattern_by_name(pname);
	uint64_t warm = n / 10 > 50 ? n / 10 : 50;
	uint64_t ka = random_key(), kb = random_key();
	struct shared *sh = shared_new(0, NULL);
	struct rr c = { -1, -1, -1 };
	int sv[2] = { -1, -1 };
	if (shm) {
		c.a = shmc_create(ka, SHMC_UNICAST, 64, 64, 0600, 0);
		int b = shmc_create(kb, SHMC_UNICAST, 64, 64, 0600, 0);
		if (c.a < 0 || b < 0)
			die("shmc_create", c.a < 0 ? c.a : b);
	} else if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		die("socketpair", errno);
	}
	pid_t pid = fork_child();
	if (pid == 0) {
		uint8_t buf[64];
		if (shm) {
			int in = attach_retry(ka, SHMC_RECV), out = attach_retry(kb, SHMC_SEND);
			if (in < 0 || out < 0)
				die("attach", in < 0 ? in : out);
			atomic_store(&sh->ready, 1);
			for (uint64_t i = 0; i < warm + n; i++) {
				int r = shmc_recv(in, buf, 64, 20000000000ll);
				if (r < 0)
					die("shmc_recv", r);
				r = shmc_send(out, buf, (uint32_t)r, 0, 5000000000ll);
				if (r < 0)
					die("shmc_send", r);
			}
			shmc_detach(in);
			shmc_detach(out);
		} else {
			close(sv[0]);
			atomic_store(&sh->ready, 1);
			while (full_read(sv[1], buf, 64))
				full_write(sv[1], buf, 64);
		}
		_exit(0);
	}
	if (shm) {
		c.in = attach_retry(kb, SHMC_RECV);
		if (c.in < 0)
			die("attach", c.in);
	} else {
		close(sv[1]);
		c.fd = sv[0];
	}
	uint8_t buf[64] = { 1 };
	uint32_t *ns = malloc(n * sizeof *ns);
	wait_flag(&sh->ready, 1);
	uint64_t busy = 0, gaps = 0, cpu0 = 0, ccpu0 = 0, t_start = 0;
	for (uint64_t i = 0; i < warm + n; i++) {
		if (i == warm) {
			cpu0 = self_cpu_ns();
			ccpu0 = child_cpu_ns(pid);
			t_start = now_ns();
		}
		uint64_t g = now_ns();
		uint64_t b = pace(pt, i);
		uint64_t t = now_ns();
		rr_request(&c, shm, buf);
		if (i >= warm) {
			ns[i - warm] = (uint32_t)(now_ns() - t);
			busy += b;
			gaps += t - g;
		}
	}
	uint64_t cpu1 = self_cpu_ns(), ccpu1 = child_cpu_ns(pid), secs_ns = now_ns() - t_start;
	if (shm) {
		int st = reap(pid);
		shmc_detach(c.in);
		shmc_destroy(c.a);
		if (st != 0)
			die("shmc echo", EIO);
	} else {
		close(c.fd);
		reap(pid);
	}
	qsort(ns, n, sizeof *ns, cmp_u32);
	double client = ((double)(cpu1 - cpu0) - (double)busy) / 1000.0 / (double)n;
	double server = (double)(ccpu1 - ccpu0) / 1000.0 / (double)n;
	printf("{\"case\":\"c.paced.%s.%s\",\"kind\":\"paced\",\"transport\":\"%s\",\"pattern\":\"%s\","
	       "\"n\":%llu,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"min_us\":%.3f,"
	       "\"gap_mean_us\":%.1f,\"client_cpu_us\":%.2f,\"server_cpu_us\":%.2f,\"cpu_us\":%.2f,\"secs\":%.3f}\n",
	       shm ? "shmc" : "sock", pname, shm ? "shmc" : "sock", pname, (unsigned long long)n,
	       ns[n / 2] / 1000.0, ns[(size_t)((double)n * 0.9)] / 1000.0,
	       ns[(size_t)((double)n * 0.99)] / 1000.0, ns[0] / 1000.0, (double)gaps / 1000.0 / (double)n,
	       client, server, client + server, (double)secs_ns / 1e9);
	fflush(stdout);
}

/* ---- large messages, filled and checksummed ----------------------------------- */

/* Ring entries for the filled cases: the same for the plain ring and shmchan,
 * so both keep the same bytes in flight (cache residency). */
#define FILL_ENTRIES 8u

/* The producer's work: message @seq as 64-bit words seq, seq + 1, ... */
static void fill_words(void *p, uint32_t size, uint64_t seq)
{
	uint64_t *w = p;
	for (uint32_t i = 0; i < size / 8; i++)
		w[i] = seq + i;
}

/* The consumer's: the sum of the words, which must be that of message seq. */
static void check_words(const void *p, uint32_t size, uint64_t seq)
{
	const uint64_t *w = p;
	uint64_t a = 0, b = 0;
	uint32_t n = size / 8;
	for (uint32_t i = 0; i < n; i += 2) {
		a += w[i];
		b += w[i + 1];
	}
	uint64_t want = (uint64_t)n * seq + (uint64_t)n * (n - 1) / 2;
	if (a + b != want)
		die("checksum", EBADMSG);
}

/* The plain ring of the filled cases has shmchan's slot geometry: a stride
 * of 16 + SIZE rounded up to 64 bytes, the payload 16 bytes into its slot
 * (where shmchan's slot header ends), so both touch the same lines and sets. */
static size_t fill_stride(uint32_t size)
{
	return ((size_t)size + 16 + 63) & ~(size_t)63;
}

/* What the consumer checks of each message: all of it, or with -head only
 * its first HEAD_BYTES (a frame handed on, a header read). */
#define HEAD_BYTES 64u
static uint32_t g_check;

static void fill_ring(uint32_t size, uint64_t msgs, struct shared *sh, uint64_t *t0)
{
	const size_t stride = fill_stride(size);
	struct ring *r = ring_new(FILL_ENTRIES, stride);
	const uint64_t mask = FILL_ENTRIES - 1;
	pid_t pid = fork_child();
	if (pid == 0) {
		pin(1);
		uint64_t pos = 0, cached = 0;
		atomic_store(&sh->ready, 1);
		for (; pos < msgs; pos++) {
			while (pos == cached && (cached = atomic_load_explicit(&r->write, memory_order_acquire)) == pos)
				cpu_relax();
			check_words(&r->slots[(pos & mask) * stride + 16], g_check, pos);
			atomic_store_explicit(&r->read, pos + 1, memory_order_release);
		}
		atomic_store(&sh->t1, now_ns());
		_exit(0);
	}
	pin(0);
	wait_flag(&sh->ready, 1);
	*t0 = now_ns();
	uint64_t cached = 0;
	for (uint64_t pos = 0; pos < msgs; pos++) {
		while (pos - cached == FILL_ENTRIES &&
		       pos - (cached = atomic_load_explicit(&r->read, memory_order_acquire)) == FILL_ENTRIES)
			cpu_relax();
		fill_words(&r->slots[(pos & mask) * stride + 16], size, pos);
		atomic_store_explicit(&r->write, pos + 1, memory_order_release);
	}
	if (reap(pid) != 0)
		die("ring consumer", EIO);
}

static void fill_shmc(uint32_t size, uint64_t msgs, int zc, struct shared *sh, uint64_t *t0)
{
	uint64_t key = random_key();
	int ch = shmc_create(key, SHMC_UNICAST, FILL_ENTRIES, size, 0600, 0);
	if (ch < 0)
		die("shmc_create", ch);
	pid_t pid = fork_child();
	if (pid == 0) {
		pin(1);
		int sub = attach_retry(key, SHMC_RECV);
		if (sub < 0)
			die("attach", sub);
		uint8_t *buf = aligned_alloc(64, size);
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < msgs;) {
			const void *v;
			int r = zc ? shmc_try_recv_view(sub, &v) : shmc_try_recv(sub, buf, size);
			if (r == -EAGAIN) {
				cpu_relax();
				continue;
			}
			if (r != (int)size)
				die("receive", r < 0 ? -r : EBADMSG);
			check_words(zc ? v : buf, g_check, i++);
			if (zc && (r = shmc_release(sub)) < 0)
				die("shmc_release", -r);
		}
		atomic_store(&sh->t1, now_ns());
		shmc_detach(sub);
		_exit(0);
	}
	pin(0);
	uint8_t *buf = aligned_alloc(64, size);
	wait_flag(&sh->ready, 1);
	*t0 = now_ns();
	for (uint64_t i = 0; i < msgs;) {
		void *p;
		int r = zc ? shmc_try_loan(ch, &p) : (fill_words(buf, size, i), shmc_try_send(ch, buf, size, 0));
		if (r == -ENOBUFS) {
			cpu_relax();
			continue;
		}
		if (r < 0)
			die(zc ? "shmc_try_loan" : "shmc_try_send", -r);
		if (zc) {
			fill_words(p, size, i);
			if ((r = shmc_commit(ch, size, 0)) != (int)size)
				die("shmc_commit", -r);
		}
		i++;
	}
	int st = reap(pid);
	shmc_destroy(ch);
	if (st != 0)
		die("shmc consumer", EIO);
}

static void fill_sock(uint32_t size, uint64_t msgs, struct shared *sh, uint64_t *t0)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair", errno);
	pid_t pid = fork_child();
	if (pid == 0) {
		close(sv[0]);
		uint8_t *buf = aligned_alloc(64, size);
		atomic_store(&sh->ready, 1);
		for (uint64_t i = 0; i < msgs; i++) {
			if (!full_read(sv[1], buf, size))
				die("short stream", EIO);
			check_words(buf, g_check, i);
		}
		atomic_store(&sh->t1, now_ns());
		_exit(0);
	}
	close(sv[1]);
	uint8_t *buf = aligned_alloc(64, size);
	wait_flag(&sh->ready, 1);
	*t0 = now_ns();
	for (uint64_t i = 0; i < msgs; i++) {
		fill_words(buf, size, i);
		full_write(sv[0], buf, size);
	}
	if (reap(pid) != 0)
		die("sock consumer", EIO);
	close(sv[0]);
}

static void fill_tput(const char *arg, uint32_t size, uint64_t msgs)
{
	if (size < HEAD_BYTES || size % 16)
		die("fill-tput: SIZE must be a multiple of 16, at least 64", EINVAL);
	char how[16];
	snprintf(how, sizeof how, "%s", arg);
	char *dash = strchr(how, '-');
	g_check = size;
	if (dash && !strcmp(dash, "-head")) {
		*dash = '\0';
		g_check = HEAD_BYTES;
	}
	struct shared *sh = shared_new(0, NULL);
	uint64_t t0 = 0;
	char name[32];
	if (!strcmp(how, "ring"))
		fill_ring(size, msgs, sh, &t0);
	else if (!strcmp(how, "zc") || !strcmp(how, "copy"))
		fill_shmc(size, msgs, !strcmp(how, "zc"), sh, &t0);
	else if (!strcmp(how, "sock"))
		fill_sock(size, msgs, sh, &t0);
	else
		die("fill-tput: HOW is ring, zc, copy or sock, with -head or not", EINVAL);
	snprintf(name, sizeof name, "c.fill.%s", arg);
	print_tput(name, size, msgs, atomic_load(&sh->t1) - t0);
}

int main(int argc, char **argv)
{
	alarm(WATCHDOG_S);
	if (argc < 3) {
		fprintf(stderr, "usage: cbench CASE ARGS (see the comment at the top of cbench.c)\n");
		return 2;
	}
	const char *c = argv[1];
	uint64_t a1 = strtoull(argv[2], NULL, 0);
	uint64_t a2 = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;
	if (!strcmp(c, "pair"))
		shmc_pair(a1);
	else if (!strcmp(c, "ring-tput"))
		ring_tput((uint32_t)a1, a2);
	else if (!strcmp(c, "ring-rt"))
		ring_rt(a1);
	else if (!strcmp(c, "shmc-tput"))
		shmc_tput((uint32_t)a1, a2, 1);
	else if (!strcmp(c, "shmc-tput-batch"))
		shmc_tput((uint32_t)a1, a2, BATCH);
	else if (!strcmp(c, "shmc-rt"))
		shmc_rt(a1, 0);
	else if (!strcmp(c, "shmc-rt-wait"))
		shmc_rt(a1, 1);
	else if (!strcmp(c, "sock-rt"))
		sock_rt(a1);
	else if (!strcmp(c, "sock-tput"))
		sock_tput((uint32_t)a1, a2);
	else if (!strcmp(c, "fill-tput") && argc > 4)
		fill_tput(argv[2], (uint32_t)a2, strtoull(argv[4], NULL, 0));
	else if (!strcmp(c, "paced-shmc") || !strcmp(c, "paced-sock"))
		paced(!strcmp(c, "paced-shmc"), argv[2], a2);
	else {
		fprintf(stderr, "cbench: unknown case %s\n", c);
		return 2;
	}
	return 0;
}
