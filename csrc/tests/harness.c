/* SPDX-License-Identifier: MIT */
/*
 * harness.c - checks, keys, fork helpers, watchdog, /dev/shm helpers and the
 * stress driver used by the C tests. See harness.h.
 */
#include "harness.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

atomic_int th_failures;

static const char *test_name = "test";
static unsigned watchdog_seconds = TH_WATCHDOG_S;

/* Children to kill when the watchdog fires (read from a signal handler). */
#define MAX_CHILDREN 64
static volatile sig_atomic_t child_pids[MAX_CHILDREN];

/* ---- lifecycle ------------------------------------------------------------ */

static void write_str(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void on_alarm(int sig)
{
	(void)sig;
	write_str("WATCHDOG: ");
	write_str(test_name);
	write_str(" hung; failing it\n");
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (child_pids[i] > 0)
			kill((pid_t)child_pids[i], SIGKILL);
	_exit(TH_FAIL);
}

static void arm_watchdog(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(watchdog_seconds);
}

void th_init(const char *name, unsigned watchdog_s)
{
	test_name = name;
	watchdog_seconds = watchdog_s ? watchdog_s : TH_WATCHDOG_S;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# %s (pid %d, library version 0x%06x)\n", name, (int)getpid(),
	       (unsigned)shmc_version());
	arm_watchdog();
}

int th_finish(void)
{
	int n = atomic_load(&th_failures);

	alarm(0);
	if (n) {
		printf("FAIL: %s: %d check(s) failed\n", test_name, n);
		return TH_FAIL;
	}
	printf("PASS: %s\n", test_name);
	return TH_PASS;
}

int th_skip(const char *why)
{
	alarm(0);
	printf("SKIP: %s: %s\n", test_name, why);
	return TH_SKIP;
}

void th_section(const char *fmt, ...)
{
	va_list ap;

	printf("== ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

void th_fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&th_failures, 1);
	/* One write, so lines of parallel children do not interleave. */
	fflush(stdout);
	fprintf(stderr, "%s:%d: [pid %d] check failed: %s\n", file, line,
		(int)getpid(), msg);
	fflush(stderr);
}

const char *th_errname(long long v)
{
	switch (v) {
	case -EPERM: return "(-EPERM)";
	case -ENOENT: return "(-ENOENT)";
	case -EINTR: return "(-EINTR)";
	case -EBADF: return "(-EBADF)";
	case -EAGAIN: return "(-EAGAIN)";
	case -ENOMEM: return "(-ENOMEM)";
	case -EACCES: return "(-EACCES)";
	case -EFAULT: return "(-EFAULT)";
	case -EBUSY: return "(-EBUSY)";
	case -EEXIST: return "(-EEXIST)";
	case -EINVAL: return "(-EINVAL)";
	case -ENOSPC: return "(-ENOSPC)";
	case -ENOSYS: return "(-ENOSYS)";
	case -EBADMSG: return "(-EBADMSG)";
	case -EUSERS: return "(-EUSERS)";
	case -EMSGSIZE: return "(-EMSGSIZE)";
	case -ENOBUFS: return "(-ENOBUFS)";
	case -ETIMEDOUT: return "(-ETIMEDOUT)";
	case -ECONNREFUSED: return "(-ECONNREFUSED)";
	case -EPIPE: return "(-EPIPE)";
	default: return "";
	}
}

/* ---- keys, time ---------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t th_key(void)
{
	static atomic_uint_fast64_t counter;
	struct timespec mono, real;
	uint64_t k;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	k = (uint64_t)getpid() << 40;
	k ^= (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
	k = splitmix64(k);
	k ^= (uint64_t)real.tv_sec * 1000000000ull + (uint64_t)real.tv_nsec;
	k = splitmix64(k ^ (atomic_fetch_add(&counter, 1) * 0x2545f4914f6cdd1dull));
	return k ? k : 1;
}

uint64_t th_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void th_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- processes ---------------------------------------------------------------------- */

static void remember_child(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (child_pids[i] == 0) {
			child_pids[i] = pid;
			return;
		}
	}
}

static void forget_child(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (child_pids[i] == pid)
			child_pids[i] = 0;
}

pid_t th_fork(th_child_fn fn, void *arg)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		th_fail_at(__FILE__, __LINE__, "fork: %s", strerror(errno));
		exit(TH_FAIL);
	}
	if (pid == 0) {
		int rc;

		/* Die with the parent, even when it is killed by CTest. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(TH_FAIL);
		for (int i = 0; i < MAX_CHILDREN; i++)
			child_pids[i] = 0;
		atomic_store(&th_failures, 0);
		arm_watchdog();
		rc = fn(arg);
		if (rc == 0 && atomic_load(&th_failures))
			rc = TH_FAIL;
		fflush(stdout);
		fflush(stderr);
		exit(rc);
	}
	remember_child(pid);
	return pid;
}

int th_wait(pid_t pid, int timeout_ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			th_fail_at(__FILE__, __LINE__, "waitpid(%d): %s", (int)pid,
				   strerror(errno));
			forget_child(pid);
			return -1;
		}
		if (th_now_ns() > deadline) {
			fprintf(stderr, "child %d did not finish in %d ms: killing it\n",
				(int)pid, timeout_ms);
			th_kill(pid);
			return -1;
		}
		th_sleep_ms(2);
	}
	forget_child(pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "child %d killed by signal %d\n", (int)pid,
			WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return -1;
}

void th_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	forget_child(pid);
}

/* True when @pid sleeps in a futex wait by the kernel's own account: its
 * wchan names a futex function (futex_wait_queue_me, futex_wait_queue,
 * futex_do_wait, ... depending on the kernel). Unlike /proc/<pid>/syscall,
 * this does not depend on the syscall numbers of the test's architecture:
 * under qemu-user the numbers there are the host's. */
static bool sleeps_in_futex(pid_t pid)
{
	char path[64], wchan[128] = "";

	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(wchan, sizeof(wchan), f))
		wchan[0] = '\0';
	fclose(f);
	return strstr(wchan, "futex") != NULL;
}

int th_wait_futex_blocked(pid_t pid, int timeout_ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (;;) {
		FILE *f = fopen(path, "r");
		long nr = -1;

		if (f) {
			if (fscanf(f, "%ld", &nr) != 1)
				nr = -1;
			fclose(f);
		}
		if (nr == SYS_futex)
			return 0;
#ifdef SYS_futex_waitv
		if (nr == SYS_futex_waitv)
			return 0;
#endif
		if (sleeps_in_futex(pid))
			return 0;
		if (th_now_ns() > deadline)
			return -ETIMEDOUT;
		th_sleep_ms(1);
	}
}

void *th_shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		th_fail_at(__FILE__, __LINE__, "mmap(%zu): %s", size, strerror(errno));
		exit(TH_FAIL);
	}
	return p;
}

int th_await_u32(atomic_uint *flag, unsigned value, int timeout_ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (atomic_load(flag) < value) {
		if (th_now_ns() > deadline)
			return -ETIMEDOUT;
		th_sleep_ms(1);
	}
	return 0;
}

/* ---- /dev/shm -------------------------------------------------------------------- */

int th_count_shm(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "shmchan", 7) == 0)
			n++;
	closedir(d);
	return n;
}

void th_list_shm(const char *prefix)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "shmchan", 7) == 0)
			printf("%s/dev/shm/%s\n", prefix, e->d_name);
	closedir(d);
}

int th_private_shm(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	/* Keep our mounts from propagating back to the host namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		return -errno;
	return 0;
}

/* ---- self-checking messages ----------------------------------------------------- */

static uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t payload_len(uint32_t cap, uint32_t producer, uint32_t seq)
{
	uint32_t room = cap - TH_MSG_HDR;

	return room ? (uint32_t)(splitmix64(((uint64_t)producer << 32) | seq) % (room + 1)) : 0;
}

static void payload_fill(unsigned char *p, uint32_t n, uint32_t producer, uint32_t seq)
{
	uint64_t x = splitmix64(((uint64_t)seq << 32) | producer | 0x80000000u);

	for (uint32_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = splitmix64(x);
		p[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

uint32_t th_msg_build(void *buf, uint32_t cap, uint32_t producer, uint32_t seq)
{
	unsigned char *b = buf;
	uint32_t plen = payload_len(cap, producer, seq);
	uint32_t hdr[4] = { producer, seq, TH_MSG_HDR + plen, 0 };

	payload_fill(b + TH_MSG_HDR, plen, producer, seq);
	hdr[3] = fnv1a(fnv1a(2166136261u, hdr, 12), b + TH_MSG_HDR, plen);
	memcpy(b, hdr, sizeof(hdr));
	return TH_MSG_HDR + plen;
}

int th_msg_verify(const void *buf, uint32_t len, uint32_t *producer, uint32_t *seq)
{
	const unsigned char *b = buf;
	unsigned char expect[SHMC_MAX_MESSAGE_SIZE > 65536 ? 65536 : SHMC_MAX_MESSAGE_SIZE];
	uint32_t hdr[4];

	if (len < TH_MSG_HDR)
		return -1;
	memcpy(hdr, b, sizeof(hdr));
	if (hdr[2] != len || len - TH_MSG_HDR > sizeof(expect))
		return -1;
	if (fnv1a(fnv1a(2166136261u, hdr, 12), b + TH_MSG_HDR, len - TH_MSG_HDR) != hdr[3])
		return -1;
	payload_fill(expect, len - TH_MSG_HDR, hdr[0], hdr[1]);
	if (memcmp(expect, b + TH_MSG_HDR, len - TH_MSG_HDR) != 0)
		return -1;
	*producer = hdr[0];
	*seq = hdr[1];
	return 0;
}

/* ---- stress driver ---------------------------------------------------------------- */

#define STRESS_MAX_PROCS 8
#define STRESS_DEADLINE_MS 90000

struct stress {
	uint64_t key;
	uint32_t delivery, max_msg;
	unsigned producers, consumers, msgs;
	atomic_uint ready;            /* consumers attached */
	atomic_uint received;         /* messages taken, all consumers */
	atomic_uint producers_done;
	uint64_t order_hash[STRESS_MAX_PROCS];
	uint32_t count[STRESS_MAX_PROCS];
	uint32_t torn[STRESS_MAX_PROCS];
	uint32_t disorder[STRESS_MAX_PROCS];
	uint32_t bad_ids[STRESS_MAX_PROCS];
	/* seen[(c * producers + p) * msgs + seq]: times consumer c got it */
	unsigned char seen[];
};

struct stress_arg {
	struct stress *s;
	unsigned index;
};

static int stress_producer(void *p)
{
	struct stress_arg *a = p;
	struct stress *s = a->s;
	uint64_t deadline = th_now_ns() + STRESS_DEADLINE_MS * 1000000ull;
	unsigned char *buf = malloc(s->max_msg);
	int h;

	REQUIRE(buf != NULL);
	h = shmc_attach_key(s->key, SHMC_SEND);
	REQUIRE_GT(h, 0);
	/* Every consumer must be attached first (broadcast late joiners miss). */
	REQUIRE_EQ(th_await_u32(&s->ready, s->consumers, 30000), 0);
	for (uint32_t seq = 0; seq < s->msgs; seq++) {
		uint32_t len = th_msg_build(buf, s->max_msg, a->index, seq);
		int r;

		for (;;) {
			/* Producer 0 polls with the try variant; the others block. */
			if (a->index == 0) {
				r = shmc_try_send(h, buf, len, 0);
				if (r == -ENOBUFS)
					sched_yield();
			} else {
				r = shmc_send(h, buf, len, 0, 200 * 1000000ll);
			}
			if (r != -ENOBUFS && r != -ETIMEDOUT)
				break;
			if (th_now_ns() > deadline) {
				th_fail_at(__FILE__, __LINE__,
					   "producer %u stuck at seq %u", a->index, seq);
				exit(TH_FAIL);
			}
		}
		if (r != (int)len) {
			th_fail_at(__FILE__, __LINE__, "producer %u seq %u: send returned %d%s",
				   a->index, seq, r, th_errname(r));
			exit(TH_FAIL);
		}
	}
	atomic_fetch_add(&s->producers_done, 1);
	EXPECT_EQ(shmc_detach(h), 0);
	free(buf);
	return 0;
}

static int stress_consumer(void *p)
{
	struct stress_arg *a = p;
	struct stress *s = a->s;
	unsigned c = a->index;
	uint64_t deadline = th_now_ns() + STRESS_DEADLINE_MS * 1000000ull;
	uint64_t total = (uint64_t)s->producers * s->msgs;
	int64_t last[STRESS_MAX_PROCS];
	unsigned char *buf = malloc(s->max_msg);
	uint64_t hash = 1469598103934665603ull;
	uint32_t mine = 0;
	int h, idle = 0;

	REQUIRE(buf != NULL);
	for (unsigned i = 0; i < STRESS_MAX_PROCS; i++)
		last[i] = -1;
	h = shmc_attach_key(s->key, SHMC_RECV);
	REQUIRE_GT(h, 0);
	atomic_fetch_add(&s->ready, 1);
	for (;;) {
		uint32_t prod, seq;
		int r;

		/* Mostly blocking receives; every 8th is the try variant. */
		if ((mine & 7) == 7)
			r = shmc_try_recv(h, buf, s->max_msg);
		else
			r = shmc_recv(h, buf, s->max_msg, 100 * 1000000ll);
		if (r == -EAGAIN || r == -ETIMEDOUT) {
			if (s->delivery != SHMC_BROADCAST && atomic_load(&s->received) >= total)
				break;
			/* All sent and nothing came for a while: what is missing is lost. */
			if (r == -ETIMEDOUT && atomic_load(&s->producers_done) == s->producers) {
				if (++idle >= 10)
					break;
				continue;
			}
			if (th_now_ns() > deadline) {
				th_fail_at(__FILE__, __LINE__,
					   "consumer %u: gave up after %u messages", c, mine);
				break;
			}
			continue;
		}
		if (r < 0) {
			th_fail_at(__FILE__, __LINE__, "consumer %u: recv returned %d%s", c, r,
				   th_errname(r));
			break;
		}
		if (th_msg_verify(buf, (uint32_t)r, &prod, &seq) < 0) {
			s->torn[c]++;
		} else if (prod >= s->producers || seq >= s->msgs) {
			s->bad_ids[c]++;
		} else {
			/* Per-producer order; broadcast must also be gap-free. */
			if ((int64_t)seq <= last[prod] ||
			    (s->delivery == SHMC_BROADCAST && (int64_t)seq != last[prod] + 1))
				s->disorder[c]++;
			last[prod] = seq;
			s->seen[((size_t)c * s->producers + prod) * s->msgs + seq]++;
			hash = (hash ^ (((uint64_t)prod << 32) | seq)) * 1099511628211ull;
		}
		mine++;
		if (s->delivery == SHMC_BROADCAST) {
			if (mine == total)
				break;
		} else if (atomic_fetch_add(&s->received, 1) + 1 >= total) {
			break;
		}
	}
	s->count[c] = mine;
	s->order_hash[c] = hash;
	EXPECT_EQ(shmc_detach(h), 0);
	free(buf);
	return 0;
}

int th_stress_run(uint32_t delivery, unsigned producers, unsigned consumers,
		  unsigned msgs, uint32_t ring_entries, uint32_t max_msg)
{
	int before = atomic_load(&th_failures);
	size_t seen_bytes = (size_t)consumers * producers * msgs;
	size_t size = sizeof(struct stress) + seen_bytes;
	struct stress *s;
	struct stress_arg pa[STRESS_MAX_PROCS], ca[STRESS_MAX_PROCS];
	pid_t pp[STRESS_MAX_PROCS], cp[STRESS_MAX_PROCS];
	int owner;

	REQUIRE(producers <= STRESS_MAX_PROCS && consumers <= STRESS_MAX_PROCS);
	REQUIRE(max_msg >= TH_MSG_HDR && max_msg <= 65536);
	s = th_shared_alloc(size);
	s->key = th_key();
	s->delivery = delivery;
	s->max_msg = max_msg;
	s->producers = producers;
	s->consumers = consumers;
	s->msgs = msgs;
	owner = shmc_create(s->key, delivery, ring_entries, max_msg, 0600, 0);
	REQUIRE_GT(owner, 0);
	th_section("%u producers x %u consumers x %u messages, ring %u, up to %u bytes",
		   producers, consumers, msgs, ring_entries, max_msg);

	for (unsigned c = 0; c < consumers; c++) {
		ca[c].s = s;
		ca[c].index = c;
		cp[c] = th_fork(stress_consumer, &ca[c]);
	}
	for (unsigned p = 0; p < producers; p++) {
		pa[p].s = s;
		pa[p].index = p;
		pp[p] = th_fork(stress_producer, &pa[p]);
	}
	for (unsigned p = 0; p < producers; p++)
		EXPECT_CHILD_OK(pp[p], STRESS_DEADLINE_MS + 5000);
	for (unsigned c = 0; c < consumers; c++)
		EXPECT_CHILD_OK(cp[c], STRESS_DEADLINE_MS + 5000);

	th_section("verify: no torn message, no unknown id, per-producer order");
	for (unsigned c = 0; c < consumers; c++) {
		printf("consumer %u received %u messages\n", c, s->count[c]);
		EXPECT_EQ(s->torn[c], 0);
		EXPECT_EQ(s->bad_ids[c], 0);
		EXPECT_EQ(s->disorder[c], 0);
	}
	if (delivery == SHMC_BROADCAST) {
		th_section("verify: every consumer got every message once, same order");
		for (unsigned c = 0; c < consumers; c++) {
			size_t missing = 0, dup = 0;

			for (size_t i = 0; i < (size_t)producers * msgs; i++) {
				unsigned char n = s->seen[(size_t)c * producers * msgs + i];

				missing += n == 0;
				dup += n > 1;
			}
			EXPECT_EQ(missing, 0);
			EXPECT_EQ(dup, 0);
			EXPECT_EQ(s->count[c], (uint64_t)producers * msgs);
			if (c > 0)
				EXPECT_EQ_U64(s->order_hash[c], s->order_hash[0]);
		}
	} else {
		size_t missing = 0, dup = 0;

		th_section("verify: every message received exactly once over all consumers");
		for (size_t i = 0; i < (size_t)producers * msgs; i++) {
			unsigned n = 0;

			for (unsigned c = 0; c < consumers; c++)
				n += s->seen[(size_t)c * producers * msgs + i];
			missing += n == 0;
			dup += n > 1;
		}
		EXPECT_EQ(missing, 0);
		EXPECT_EQ(dup, 0);
		for (unsigned c = 0; c < consumers; c++)
			if (s->count[c] == 0)
				printf("note: consumer %u received nothing\n", c);
	}
	EXPECT_EQ(shmc_destroy(owner), 0);
	munmap(s, size);
	return atomic_load(&th_failures) - before;
}
