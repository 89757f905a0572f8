/* SPDX-License-Identifier: MIT */
/*
 * harness.c - checks, keys, randomness, fork helpers, watchdog, /dev/shm
 * helpers and the self-checking message format used by the C tests. The
 * stress driver is in harness_stress.c, the segment mapping in
 * harness_map.c. See harness.h.
 */
#include "harness.h"

#include <dirent.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

atomic_int th_failures;

static const char *test_name = "test";
static unsigned watchdog_seconds = TH_WATCHDOG_S; /* 0: none */

/* Children to kill when the watchdog fires (read from a signal handler). */
#define MAX_CHILDREN 256
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
	write_str(" hung; killing its children and failing it\n");
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
	alarm(watchdog_seconds); /* 0 cancels */
}

void th_init(const char *name, unsigned watchdog_s)
{
	test_name = name;
	if (watchdog_s == TH_NO_WATCHDOG)
		watchdog_seconds = 0;
	else
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
	char msg[768];
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

static const char *errno_name(long long v)
{
	switch (v) {
	case -EPERM: return "-EPERM";
	case -ENOENT: return "-ENOENT";
	case -EINTR: return "-EINTR";
	case -EBADF: return "-EBADF";
	case -EAGAIN: return "-EAGAIN";
	case -ENOMEM: return "-ENOMEM";
	case -EACCES: return "-EACCES";
	case -EFAULT: return "-EFAULT";
	case -EBUSY: return "-EBUSY";
	case -EEXIST: return "-EEXIST";
	case -EINVAL: return "-EINVAL";
	case -EMFILE: return "-EMFILE";
	case -ENOSPC: return "-ENOSPC";
	case -ENOSYS: return "-ENOSYS";
	case -EBADMSG: return "-EBADMSG";
	case -EUSERS: return "-EUSERS";
	case -EMSGSIZE: return "-EMSGSIZE";
	case -ENOBUFS: return "-ENOBUFS";
	case -ETIMEDOUT: return "-ETIMEDOUT";
	case -ECONNREFUSED: return "-ECONNREFUSED";
	case -EPIPE: return "-EPIPE";
	case -EIO: return "-EIO";
	case -ENOTCONN: return "-ENOTCONN";
	case -EALREADY: return "-EALREADY";
	case -ERANGE: return "-ERANGE";
	case -ELOOP: return "-ELOOP";
	case -ENOTDIR: return "-ENOTDIR";
	default: return NULL;
	}
}

const char *th_errname(long long v)
{
	const char *s = errno_name(v);

	return v >= 0 ? "ok" : s ? s : "-E?";
}

void th_cmp_failed(const char *file, int line, const char *expr, long long a, long long b)
{
	const char *na = errno_name(a), *nb = errno_name(b);

	th_fail_at(file, line, "%s: %lld%s%s%s vs %lld%s%s%s", expr, a, na ? " (" : "",
		   na ? na : "", na ? ")" : "", b, nb ? " (" : "", nb ? nb : "",
		   nb ? ")" : "");
}

unsigned th_rounds(unsigned ci)
{
	const char *s = getenv("SHMCHAN_CRASH_ROUNDS");

	if (s && *s) {
		unsigned long v = strtoul(s, NULL, 0);

		if (v > 0 && v < 10000000ul)
			return (unsigned)v;
	}
	return ci;
}

unsigned th_watchdog_for_rounds(unsigned ci_seconds)
{
	const char *s = getenv("SHMCHAN_CRASH_ROUNDS");

	return (s && *s) ? TH_NO_WATCHDOG : ci_seconds;
}

/* ---- keys, time, randomness -------------------------------------------------------- */

uint64_t th_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t th_rand(uint64_t *state)
{
	uint64_t x;

	*state += 0x9e3779b97f4a7c15ull;
	x = *state;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t th_below(uint64_t *state, uint64_t n)
{
	return n ? th_rand(state) % n : 0;
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
	k = th_mix64(k);
	k ^= (uint64_t)real.tv_sec * 1000000000ull + (uint64_t)real.tv_nsec;
	k = th_mix64(k ^ (atomic_fetch_add(&counter, 1) * 0x2545f4914f6cdd1dull));
	return k ? k : 1;
}

uint64_t th_seed(const char *env)
{
	const char *s = getenv(env);

	if (s && *s)
		return strtoull(s, NULL, 0);
	return th_key();
}

uint64_t th_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void th_sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000u),
			       .tv_nsec = (long)(us % 1000000u) * 1000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void th_sleep_ms(unsigned ms)
{
	th_sleep_us((uint64_t)ms * 1000u);
}

double th_ms(uint64_t ns)
{
	return (double)ns / 1e6;
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

void th_forget(pid_t pid)
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
			th_forget(pid);
			return -1;
		}
		if (th_now_ns() > deadline) {
			fprintf(stderr, "child %d did not finish in %d ms: killing it\n",
				(int)pid, timeout_ms);
			th_kill(pid);
			return -1;
		}
		th_sleep_us(500);
	}
	th_forget(pid);
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
	th_forget(pid);
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

int th_become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return -errno;
	/* A set-uid transition makes a process undumpable, and then its own
	 * /proc/self/fd links belong to root; an exec'd process would not be. */
	prctl(PR_SET_DUMPABLE, 1);
	return 0;
}

struct as_nobody {
	th_child_fn fn;
	void *arg;
};

static int nobody_main(void *p)
{
	struct as_nobody *a = p;
	int err = th_become(TH_NOBODY, TH_NOBODY);
	if (err < 0) {
		th_fail_at(__FILE__, __LINE__, "cannot become uid %d: %s", TH_NOBODY, strerror(-err));
		return TH_FAIL;
	}
	return a->fn(a->arg);
}

pid_t th_fork_nobody(th_child_fn fn, void *arg)
{
	struct as_nobody a = { fn, arg };
	return th_fork(nobody_main, &a);
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
		th_sleep_us(200);
	}
	return 0;
}

/* ---- /dev/shm -------------------------------------------------------------------- */

/* Entries of /dev/shm whose name starts with @prefix. */
static int count_shm(const char *prefix)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

int th_count_shm(void)
{
	return count_shm("shmchan");
}

int th_count_segments(void)
{
	return count_shm("shmchan.");
}

int th_count_segments_of(uint64_t key, int32_t id)
{
	char prefix[64];
	int n = 0;

	snprintf(prefix, sizeof(prefix), "shmchan.%016" PRIx64, key);
	n += count_shm(prefix);
	snprintf(prefix, sizeof(prefix), "shmchan.x.%016" PRIx64 ".", key);
	n += count_shm(prefix);
	snprintf(prefix, sizeof(prefix), "shmchan.id.%d", (int)id);
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, prefix) == 0)
			n++;
	if (d)
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

bool th_shm_exists(const char *name)
{
	char path[300];

	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	return access(path, F_OK) == 0;
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

/* The payload of message (producer, seq): a cheap per-message LCG stream;
 * payload_byte() is its k-th byte, given the state for k's 8-byte step. */
static uint64_t payload_seed(uint32_t producer, uint32_t seq)
{
	return th_mix64(((uint64_t)producer << 32) | seq);
}

static uint64_t payload_step(uint64_t x)
{
	return x * 6364136223846793005ull + 1442695040888963407ull;
}

uint32_t th_msg_len(uint32_t max, uint32_t producer, uint32_t seq)
{
	if (max <= TH_MSG_HDR)
		return TH_MSG_HDR;
	return TH_MSG_HDR + (uint32_t)(th_mix64(((uint64_t)producer << 32) | seq) %
				       (max - TH_MSG_HDR + 1));
}

uint32_t th_msg_build(void *buf, uint32_t len, uint32_t producer, uint32_t seq)
{
	unsigned char *b = buf;
	uint32_t h[5] = { TH_MSG_MAGIC, producer, seq, len, 0 };
	uint64_t x = payload_seed(producer, seq);

	for (uint32_t k = 0; k < len - TH_MSG_HDR; k++) {
		if ((k & 7) == 0)
			x = payload_step(x);
		b[TH_MSG_HDR + k] = (unsigned char)(x >> ((k & 7) * 8));
	}
	h[4] = fnv1a(fnv1a(2166136261u, h, 16), b + TH_MSG_HDR, len - TH_MSG_HDR);
	memcpy(b, h, sizeof(h));
	return len;
}

int th_msg_verify(const void *buf, uint32_t len, uint32_t *producer, uint32_t *seq)
{
	const unsigned char *b = buf;
	uint32_t h[5];
	uint64_t x;

	if (len < TH_MSG_HDR)
		return -1;
	memcpy(h, b, sizeof(h));
	if (h[0] != TH_MSG_MAGIC || h[3] != len)
		return -1;
	if (fnv1a(fnv1a(2166136261u, h, 16), b + TH_MSG_HDR, len - TH_MSG_HDR) != h[4])
		return -1;
	/* A torn copy could match the checksum only by chance; the payload
	 * stream is checked too. */
	x = payload_seed(h[1], h[2]);
	for (uint32_t k = 0; k < len - TH_MSG_HDR; k++) {
		if ((k & 7) == 0)
			x = payload_step(x);
		if (b[TH_MSG_HDR + k] != (unsigned char)(x >> ((k & 7) * 8)))
			return -1;
	}
	*producer = h[1];
	*seq = h[2];
	return 0;
}

/* ---- doorbells --------------------------------------------------------------------- */

int th_bell_open(struct th_bell *b, int handle, uint32_t what, int backlog)
{
	memset(b, 0, sizeof(*b));
	b->lfd = -1;
	int n = shmc_doorbell_path(handle, what, b->path, sizeof(b->path));
	if (n < 0)
		return n;
	b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->lfd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", b->path);
	if (bind(b->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(b->lfd, backlog) < 0)
		return -errno;
	return shmc_doorbell_seal(handle, what);
}

int th_bell_wait(struct th_bell *b, int ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		struct pollfd p[17];
		int n = 0, got = 0;

		p[n++] = (struct pollfd){ .fd = b->lfd, .events = POLLIN };
		for (int i = 0; i < b->ncfd; i++)
			p[n++] = (struct pollfd){ .fd = b->cfd[i], .events = POLLIN };
		int64_t left = (int64_t)(deadline - th_now_ns());
		if (left <= 0)
			return 0;
		if (poll(p, (nfds_t)n, (int)(left / 1000000 + 1)) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int c = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (c >= 0 && b->ncfd < 16)
				b->cfd[b->ncfd++] = c;
			else if (c >= 0)
				close(c);
		}
		for (int i = 1; i < n; i++) {
			char buf[256];
			ssize_t r;

			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r > 0)
				got += (int)r;
		}
		if (got)
			return got;
	}
}

void th_bell_drop_conns(struct th_bell *b)
{
	for (int i = 0; i < b->ncfd; i++)
		close(b->cfd[i]);
	b->ncfd = 0;
}

void th_bell_close(struct th_bell *b)
{
	th_bell_drop_conns(b);
	if (b->lfd >= 0)
		close(b->lfd);
	b->lfd = -1;
}
