/* SPDX-License-Identifier: MIT */
/*
 * test_attack_sigbus - no process is killed by another's ftruncate
 * (csrc/DESIGN.md 9). Root owns the channels; the attacker is a child running
 * as uid 65534.
 *
 *   1. A reader of a 0644 channel shrinks ctl (readers may write it): it can,
 *      and root's sender, receiver and a receiver blocked in shmc_recv are
 *      not killed: every call on their handles returns -EIO from then on; a
 *      new attach is -EBADMSG; detach and destroy work.
 *   2. The same reader cannot shrink dat, id or another member's file
 *      (EACCES, or EINVAL on a read-only descriptor); root's channel keeps
 *      working.
 *   3. A participant shrinks its own member file: root's handles ignore that
 *      member and keep working (a broadcast sender computing its gate over
 *      it, a targeted send to it: -ENOENT, not a crash).
 *   4. The handler is chained: a SIGBUS outside shmchan's mappings still
 *      reaches the handler installed before the library's, and with none
 *      installed still kills.
 * Each attack fails with a clear error for the attacker, or (ctl) is what the
 * threat table names: the channel then fails with EIO, and nobody dies.
 */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
	uint64_t key;
	char dir[96];
	atomic_int err_ctl, err_dat_rw, err_dat_trunc, err_id, err_member;
	atomic_uint done, go;
	atomic_int blocked_rc;
	atomic_uint member_slot;
};

static struct shared *sh;

static int open_err(const char *name, int flags)
{
	char path[160];
	snprintf(path, sizeof path, "%s/%s", sh->dir, name);
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* The attacker of parts 1 and 2: a reader by the mode, bypassing the library. */
static int shrinker(void *arg)
{
	bool ctl_too = arg != NULL;
	char path[160];
	/* dat: not writable by readers. */
	atomic_store(&sh->err_dat_rw, open_err("dat", O_RDWR));
	snprintf(path, sizeof path, "%s/dat", sh->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	atomic_store(&sh->err_dat_trunc, fd < 0 ? -errno : ftruncate(fd, 0) < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof path, "%s/id", sh->dir);
	atomic_store(&sh->err_id, truncate(path, 0) < 0 ? -errno : 0);
	snprintf(path, sizeof path, "%s/m0", sh->dir);
	atomic_store(&sh->err_member, truncate(path, 0) < 0 ? -errno : 0);
	if (ctl_too) {
		snprintf(path, sizeof path, "%s/ctl", sh->dir);
		atomic_store(&sh->err_ctl, truncate(path, 0) < 0 ? -errno : 0);
	}
	return 0;
}

static void expect_denied(const char *what, int err)
{
	printf("    %-44s %s\n", what, err ? strerror(-err) : "done");
	CHECK_MSG(err == -EACCES || err == -EINVAL || err == -EPERM, "%s: %s", what, th_errname(err));
}

static int blocked_receiver(void *arg)
{
	(void)arg;
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	atomic_store(&sh->go, 1);
	unsigned char buf[64];
	atomic_store(&sh->blocked_rc, shmc_recv(rx, buf, sizeof buf, 10000000000ll));
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

static void part_ctl(void)
{
	th_section("1. a reader shrinks ctl: root's processes get EIO, none dies");
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_UNICAST, 64, 256, 0644, 0);
	REQUIRE_GT(ch, 0);
	int tx = shmc_attach_key(sh->key, SHMC_SEND);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);
	char buf[64];
	EXPECT_EQ(shmc_try_send(tx, "before", 6, 0), 6);
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 6);
	pid_t blocked = th_fork(blocked_receiver, NULL);
	REQUIRE_EQ(th_await_u32(&sh->go, 1, 10000), 0);
	EXPECT_EQ(th_wait_futex_blocked(blocked, 5000), 0);

	EXPECT_CHILD_OK(th_fork_nobody(shrinker, (void *)1), 20000);
	expect_denied("nobody opens dat for writing:", atomic_load(&sh->err_dat_rw));
	expect_denied("nobody truncates dat through a read-only fd:", atomic_load(&sh->err_dat_trunc));
	expect_denied("nobody truncates id:", atomic_load(&sh->err_id));
	expect_denied("nobody truncates root's member file:", atomic_load(&sh->err_member));
	printf("    %-44s %s (by design: every participant may write ctl)\n",
	       "nobody truncates ctl:", atomic_load(&sh->err_ctl) ? strerror(-atomic_load(&sh->err_ctl))
								  : "done");
	EXPECT_EQ(atomic_load(&sh->err_ctl), 0);

	/* Root's handles: alive, and failing clearly. */
	int r = shmc_try_send(tx, "after", 5, 0);
	printf("    root's try_send: %s; ", th_errname(r));
	EXPECT_EQ(r, -EIO);
	r = shmc_try_recv(rx, buf, sizeof buf);
	printf("try_recv: %s; ", th_errname(r));
	EXPECT_EQ(r, -EIO);
	r = shmc_send(tx, "after", 5, 0, 20000000);
	printf("send: %s; ", th_errname(r));
	EXPECT_EQ(r, -EIO);
	r = shmc_recv(rx, buf, sizeof buf, 20000000);
	printf("recv: %s; ", th_errname(r));
	EXPECT_EQ(r, -EIO);
	r = shmc_try_send(ch, "x", 1, 0);
	printf("owner's try_send: %s\n", th_errname(r));
	EXPECT_EQ(r, -EIO);
	EXPECT_EQ(shmc_pending(rx), -EIO);
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), -EIO);
	uint64_t info[SHMC_INFO_COUNT];
	EXPECT_EQ(shmc_info(rx, info), SHMC_INFO_COUNT);
	/* The receiver blocked in shmc_recv when it happened: its next look at
	 * ctl (it sleeps in steps of at most 100 ms) faults, and it returns. */
	int rc = th_wait(blocked, 15000);
	printf("    root's receiver blocked in shmc_recv: exit %d, recv returned %s\n", rc,
	       th_errname(atomic_load(&sh->blocked_rc)));
	EXPECT_EQ(rc, 0);
	EXPECT_EQ(atomic_load(&sh->blocked_rc), -EIO);
	int a = shmc_attach_key(sh->key, SHMC_RECV);
	printf("    a new attach: %s\n", th_errname(a));
	EXPECT_EQ(a, -EBADMSG);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void part_dat(void)
{
	th_section("2. a reader cannot shrink what senders write: root's channel keeps working");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_BROADCAST, 16, 128, 0644, 0);
	REQUIRE_GT(ch, 0);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	EXPECT_CHILD_OK(th_fork_nobody(shrinker, NULL), 20000);
	expect_denied("nobody opens dat for writing:", atomic_load(&sh->err_dat_rw));
	expect_denied("nobody truncates dat through a read-only fd:", atomic_load(&sh->err_dat_trunc));
	expect_denied("nobody truncates id:", atomic_load(&sh->err_id));
	expect_denied("nobody truncates root's member file:", atomic_load(&sh->err_member));
	char buf[32];
	for (int i = 0; i < 40; i++) {
		EXPECT_EQ(shmc_try_send(ch, "still here", 10, 0), 10);
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 10);
	}
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* Part 3's attacker: attaches (mode 0666) and shrinks its own member file. */
static int own_member_shrinker(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "nobody attach: %s", th_errname(h));
	atomic_store(&sh->member_slot, (unsigned)th_info(h, SHMC_INFO_MEMBER_ID));
	char path[160];
	unsigned id = atomic_load(&sh->member_slot);
	snprintf(path, sizeof path, "%s/m%u", sh->dir, (id - 1) % SHMC_MAX_MEMBERS);
	atomic_store(&sh->err_member, truncate(path, 0) < 0 ? -errno : 0);
	atomic_store(&sh->done, 1);
	/* Stay attached (alive, holding its lock) until told to go. */
	th_await_u32(&sh->go, 2, 20000);
	_exit(0);
}

static void part_member(void)
{
	th_section("3. a participant shrinks its own member file: root ignores it");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_BROADCAST, 4, 64, 0666, 0);
	REQUIRE_GT(ch, 0);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	pid_t att = th_fork_nobody(own_member_shrinker, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 10000), 0);
	printf("    nobody truncates its own member file: %s\n",
	       atomic_load(&sh->err_member) ? strerror(-atomic_load(&sh->err_member)) : "done");
	EXPECT_EQ(atomic_load(&sh->err_member), 0);
	/* A 4-slot ring: the gate is recomputed (reading every member file)
	 * many times over. */
	char buf[32];
	for (int i = 0; i < 64; i++) {
		int r = shmc_try_send(ch, "gate", 4, 0);
		CHECK_MSG(r == 4, "root's broadcast send %d: %s", i, th_errname(r));
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 4);
	}
	int r = shmc_try_send(ch, "to it", 5, atomic_load(&sh->member_slot));
	printf("    root's targeted send to that member: %s\n", th_errname(r));
	EXPECT_EQ(r, -ENOENT);
	atomic_store(&sh->go, 2);
	EXPECT_CHILD_OK(att, 10000);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* ---- 4: the handler chains ------------------------------------------------------- */

static sigjmp_buf g_jump;
static atomic_uint g_theirs;

static void their_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&g_theirs, 1);
	siglongjmp(g_jump, 1);
}

/* A mapping of a file of our own, shrunk: touching it faults. */
static volatile uint8_t *shrunk_mapping(void)
{
	char path[] = "/dev/shm/shmchan-test-sigbus-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE_MSG(fd >= 0, "mkstemp");
	unlink(path);
	REQUIRE_EQ(ftruncate(fd, 8192), 0);
	volatile uint8_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE_MSG(p != MAP_FAILED, "mmap");
	REQUIRE_EQ(ftruncate(fd, 0), 0);
	close(fd);
	return p;
}

static int chained_main(void *arg)
{
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = their_handler;
	sigemptyset(&sa.sa_mask);
	REQUIRE_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	/* The library installs its handler with its first mapping. */
	uint64_t key = th_key();
	int ch = shmc_create(key, SHMC_UNICAST, 4, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	volatile uint8_t *p = shrunk_mapping();
	if (sigsetjmp(g_jump, 1) == 0)
		(void)p[100];
	EXPECT_EQ(atomic_load(&g_theirs), 1);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return 0;
}

static int unhandled_main(void *arg)
{
	(void)arg;
	uint64_t key = th_key();
	int ch = shmc_create(key, SHMC_UNICAST, 4, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	volatile uint8_t *p = shrunk_mapping();
	(void)p[100]; /* dies here */
	return 0;
}

static void part_chain(void)
{
	th_section("4. other faults: to the handler installed before, or fatal as without the library");
	int rc = th_wait(th_fork(chained_main, NULL), 10000);
	printf("    a fault in the process's own mapping reached its own handler: %s\n",
	       rc == 0 ? "yes" : "no");
	EXPECT_EQ(rc, 0);
	rc = th_wait(th_fork(unhandled_main, NULL), 10000);
	/* Killed by SIGBUS; under a sanitizer, whose handler came first, its
	 * report ends the process instead. */
	printf("    with no handler of its own, the process dies of it: %s\n",
	       rc == 128 + SIGBUS ? "yes (SIGBUS)" : rc != 0 ? "yes (reported by the handler before)" : "no");
	CHECK_MSG(rc != 0 && rc != -1, "the process survived a fault outside shmchan's mappings: %d", rc);
}

int main(void)
{
	th_init("test_attack_sigbus", 0);
	if (geteuid() != 0)
		return th_skip("needs root, to play uid 65534 against root's channels");
	sh = th_shared_alloc(sizeof *sh);
	part_ctl();
	part_dat();
	part_member();
	part_chain();
	return th_finish();
}
