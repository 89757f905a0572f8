/* SPDX-License-Identifier: MIT */
/*
 * test_attack_lookup - no local user can redirect, remove, stall or poison
 * lookup (csrc/DESIGN.md 1-3). Root owns the channels; the attacker is a
 * child running as uid 65534 (nobody). One case per attack that worked against 0.2.0:
 *
 *   1. redirect root's live 0600 channel: every way to replace, move or
 *      remove its names fails (EEXIST, EPERM, EACCES); root's attaches by key
 *      and by id reach root's own channel. A free key nobody takes with a
 *      channel of its own is nobody's (by design, as with System V keys):
 *      root sees whose it is, and attach with owner 0 is EACCES.
 *   2. junk in lookup: names of every kind, a thousand of them, a file
 *      called shmchan.registry: root's creates and attaches work (no ENOSPC,
 *      no EBADMSG), a key nobody squatted is EEXIST for root with nobody's
 *      uid in shmc_lookup_key.
 *   3. locks: nobody holds every lock it can take on a 0644 channel (read
 *      locks on id and member files, any lock on ctl, flock on all): root's
 *      create, attach, detach and destroy return at once, a live creator is
 *      still alive, and a dead one is still dead (its channel leaves lookup).
 *   4. names pre-created before root's first use: a symlink to a root file, a
 *      FIFO, a regular file, a directory, a hard link of a root file (as an
 *      attacker could make with fs.protected_hardlinks=0; made here by root):
 *      root's create is EEXIST and does not hang, follow, or change any
 *      file's mode; attach is ENOENT or EBADMSG. Inside a 0666 channel,
 *      member names nobody pre-created (symlinks to a root file, FIFOs,
 *      garbage) do not keep root out, and the root file is untouched.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define VICTIM "/dev/shm/shmchan-test-victim"

struct shared {
	uint64_t key, key2;
	int32_t id;
	char dir[96];
	atomic_int r[16];
	atomic_uint go, done;
	int nobody_ch;
};

static struct shared *sh;

static const char *errstr(int e)
{
	return e == 0 ? "done" : strerror(-e);
}

static int rc(int r)
{
	return r < 0 ? -errno : 0;
}

/* ---- 1: redirect ------------------------------------------------------------ */

static int redirector(void *arg)
{
	(void)arg;
	char path[200], link[64], other[64];
	snprintf(link, sizeof link, "/dev/shm/shmchan.id.%d", (int)sh->id);
	snprintf(other, sizeof other, "/dev/shm/shmchan.%016" PRIx64, sh->key2);
	atomic_store(&sh->r[0], rc(mkdir(sh->dir, 0777)));
	atomic_store(&sh->r[1], rc(rename(sh->dir, "/dev/shm/shmchan-stolen")));
	atomic_store(&sh->r[2], rc(rmdir(sh->dir)));
	atomic_store(&sh->r[3], rc(unlink(link)));
	atomic_store(&sh->r[4], rc(symlink(other + 9, link)));
	snprintf(path, sizeof path, "%s/id", sh->dir);
	atomic_store(&sh->r[5], rc(unlink(path)));
	snprintf(path, sizeof path, "%s/evil", sh->dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
	atomic_store(&sh->r[6], fd < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	atomic_store(&sh->r[7], shmc_create(sh->key, SHMC_UNICAST, 8, 64, 0666, 0));
	/* A free key, taken with a channel of nobody's own. */
	int ch = shmc_create(sh->key2, SHMC_UNICAST, 8, 64, 0666, 0);
	atomic_store(&sh->r[8], ch);
	atomic_store(&sh->done, 1);
	th_await_u32(&sh->go, 1, 20000); /* keep it alive while root looks */
	if (ch > 0)
		shmc_destroy(ch);
	return 0;
}

static void denied(const char *what, int e, int want1, int want2)
{
	printf("    %-52s %s\n", what, errstr(e));
	CHECK_MSG(e == want1 || e == want2, "%s: %s", what, th_errname(e));
}

static void part_redirect(void)
{
	th_section("1. redirect root's live 0600 channel");
	sh->key = th_key();
	sh->key2 = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	pid_t a = th_fork_nobody(redirector, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	denied("nobody makes the channel's directory:", atomic_load(&sh->r[0]), -EEXIST, -EEXIST);
	denied("nobody renames root's directory away:", atomic_load(&sh->r[1]), -EPERM, -EACCES);
	denied("nobody removes root's directory:", atomic_load(&sh->r[2]), -EPERM, -ENOTEMPTY);
	denied("nobody removes root's id link:", atomic_load(&sh->r[3]), -EPERM, -EPERM);
	denied("nobody links root's id to another channel:", atomic_load(&sh->r[4]), -EEXIST, -EEXIST);
	denied("nobody removes root's descriptor:", atomic_load(&sh->r[5]), -EACCES, -EACCES);
	denied("nobody adds a file to root's directory:", atomic_load(&sh->r[6]), -EACCES, -EACCES);
	denied("nobody creates a channel with root's key:", atomic_load(&sh->r[7]), -EEXIST, -EEXIST);

	/* Root's lookup reaches root's channel. */
	int by_key = shmc_attach_key(sh->key, SHMC_BOTH);
	int by_id = shmc_attach_id(sh->id, SHMC_BOTH);
	REQUIRE_GT(by_key, 0);
	REQUIRE_GT(by_id, 0);
	EXPECT_EQ(th_info(by_key, SHMC_INFO_OWNER_UID), 0);
	EXPECT_EQ(th_info(by_id, SHMC_INFO_CHANNEL_ID), (uint64_t)sh->id);
	char buf[16];
	EXPECT_EQ(shmc_try_send(ch, "root's", 6, 0), 6);
	EXPECT_EQ(shmc_try_recv(by_key, buf, sizeof buf), 6);
	EXPECT_MEMEQ(buf, "root's", 6);
	printf("    root's attach by key and by id: root's channel (owner uid 0), messages flow\n");

	/* The free key nobody took: nobody's, and root can tell. */
	int theirs = atomic_load(&sh->r[8]);
	EXPECT_GT(theirs, 0);
	uint64_t look[SHMC_LOOKUP_COUNT];
	EXPECT_EQ(shmc_lookup_key(sh->key2, look), SHMC_LOOKUP_COUNT);
	EXPECT_EQ(look[SHMC_LOOKUP_STATE], SHMC_LOOKUP_LIVE);
	EXPECT_EQ(look[SHMC_LOOKUP_OWNER_UID], TH_NOBODY);
	int owned = shmc_attach_key_owned(sh->key2, SHMC_RECV, 0);
	printf("    a free key nobody took: lookup says live, uid %" PRIu64 "; attach with owner 0: %s\n",
	       look[SHMC_LOOKUP_OWNER_UID], th_errname(owned));
	EXPECT_EQ(owned, -EACCES);
	int plain = shmc_attach_key(sh->key2, SHMC_RECV);
	EXPECT_GT(plain, 0); /* by design: nobody's channel, and ownerUid says so */
	EXPECT_EQ(th_info(plain, SHMC_INFO_OWNER_UID), TH_NOBODY);
	EXPECT_EQ(shmc_detach(plain), 0);
	EXPECT_EQ(shmc_attach_key_owned(sh->key, SHMC_RECV, TH_NOBODY), -EACCES);
	atomic_store(&sh->go, 1);
	EXPECT_CHILD_OK(a, 20000);
	EXPECT_EQ(shmc_detach(by_key), 0);
	EXPECT_EQ(shmc_detach(by_id), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* ---- 2: junk ---------------------------------------------------------------- */

#define JUNK 1000

static int junker(void *arg)
{
	(void)arg;
	int made = 0;
	/* O_EXCL: a registry an older version of the library keeps on this machine
	 * belongs to its users; only a file of nobody's own is junk (removed below). */
	int fd = open("/dev/shm/shmchan.registry", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666);
	if (fd >= 0) {
		if (write(fd, "garbage, not a registry", 23) == 23)
			made++;
		close(fd);
	}
	for (int i = 0; i < JUNK; i++) {
		char name[80];
		uint64_t k = th_key();
		switch (i % 4) {
		case 0: /* a directory in a channel's place, with a descriptor of garbage */
			snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, k);
			if (mkdir(name, 0777) == 0) {
				char id[100];
				snprintf(id, sizeof id, "%s/id", name);
				int f = open(id, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
				if (f >= 0) {
					if (write(f, &k, sizeof k) < 0)
						break;
					close(f);
				}
				made++;
			}
			break;
		case 1: /* an id link to it */
			snprintf(name, sizeof name, "/dev/shm/shmchan.id.%d", 1 + (int)(k % 2000000000));
			if (symlink("shmchan.0000000000000001", name) == 0)
				made++;
			break;
		case 2: /* a file named like a channel */
			snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, k);
			fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
			if (fd >= 0) {
				close(fd);
				made++;
			}
			break;
		default: /* names of the other kinds */
			snprintf(name, sizeof name, "/dev/shm/shmchan.%s.%016" PRIx64, i & 4 ? "x" : "t", k);
			if (mkdir(name, 0777) == 0)
				made++;
			break;
		}
	}
	/* A free key squatted for root's next create. */
	char name[80];
	snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, sh->key2);
	atomic_store(&sh->r[1], rc(mkdir(name, 0777)));
	atomic_store(&sh->r[0], made);
	return 0;
}

static void part_junk(void)
{
	th_section("2. junk in lookup: a thousand names of nobody's, a file called shmchan.registry");
	memset(sh, 0, sizeof *sh);
	sh->key2 = th_key();
	/* A channel of root's from before, and one after. */
	uint64_t before = th_key();
	int old = shmc_create(before, SHMC_BROADCAST, 8, 64, 0644, 0);
	REQUIRE_GT(old, 0);
	EXPECT_CHILD_OK(th_fork_nobody(junker, NULL), 60000);
	printf("    nobody made %d names\n", atomic_load(&sh->r[0]));
	EXPECT_GE(atomic_load(&sh->r[0]), JUNK);
	int a = shmc_attach_key(before, SHMC_RECV);
	EXPECT_GT(a, 0);
	EXPECT_EQ(shmc_try_send(old, "ok", 2, 0), 2);
	char buf[8];
	EXPECT_EQ(shmc_try_recv(a, buf, sizeof buf), 2);
	int made = 0, failed = 0;
	for (int i = 0; i < 20; i++) {
		int c = shmc_create(th_key(), i % 3, 8, 64, 0600, 0);
		if (c > 0) {
			made++;
			int s = shmc_attach_id((int32_t)th_info(c, SHMC_INFO_CHANNEL_ID), SHMC_RECV);
			EXPECT_GT(s, 0);
			if (s > 0)
				shmc_detach(s);
			shmc_destroy(c);
		} else {
			failed++;
			printf("    create: %s\n", th_errname(c));
		}
	}
	printf("    root's channel from before still attachable; 20 new ones: %d created, %d failed\n",
	       made, failed);
	EXPECT_EQ(made, 20);
	int sq = shmc_create(sh->key2, SHMC_UNICAST, 8, 64, 0600, 0);
	uint64_t look[SHMC_LOOKUP_COUNT];
	int lr = shmc_lookup_key(sh->key2, look);
	printf("    the key nobody squatted (mkdir %s): create %s, lookup: state %" PRIu64
	       " (not a channel: %u), uid %" PRIu64 "\n",
	       errstr(atomic_load(&sh->r[1])), th_errname(sq), look[SHMC_LOOKUP_STATE],
	       SHMC_LOOKUP_NOT_CHANNEL, look[SHMC_LOOKUP_OWNER_UID]);
	EXPECT_EQ(sq, -EEXIST);
	EXPECT_EQ(lr, SHMC_LOOKUP_COUNT);
	EXPECT_EQ(look[SHMC_LOOKUP_STATE], SHMC_LOOKUP_NOT_CHANNEL);
	EXPECT_EQ(look[SHMC_LOOKUP_OWNER_UID], TH_NOBODY);
	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_destroy(old), 0);
	/* Nobody's junk is nobody's: root's sweep removed none of it (it is not a
	 * channel of anybody's); clean up as the test. */
	if (system("find /dev/shm -maxdepth 1 -user 65534 -name 'shmchan*' -exec rm -rf {} + "
		   "2>/dev/null") != 0)
		printf("    (cleanup of nobody's names failed)\n");
}

/* ---- 3: locks --------------------------------------------------------------- */

static int locker(void *arg)
{
	(void)arg;
	char path[200];
	int fds[80], n = 0;
	static const char *names[] = { "id", "ctl", "dat", "m0", "m1", "m2", "m3" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", sh->dir, names[i]);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		flock(fd, LOCK_EX | LOCK_NB);
		for (short type = F_RDLCK; type <= F_WRLCK; type++) {
			struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
			fcntl(fd, F_OFD_SETLK, &fl); /* whole file, as much as it may */
		}
		fds[n++] = fd;
	}
	atomic_store(&sh->r[0], n);
	atomic_store(&sh->done, 1);
	th_await_u32(&sh->go, 1, 30000);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

static int dead_creator_main(void *arg)
{
	(void)arg;
	int c = shmc_create(sh->key2, SHMC_UNICAST, 8, 64, 0644, 0);
	atomic_store(&sh->r[1], c);
	atomic_store(&sh->done, 2);
	for (;;)
		pause();
	return 0;
}

static void part_locks(void)
{
	th_section("3. nobody holds every lock it can take on root's 0644 channels");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->key2 = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_MULTICAST, 8, 64, 0644, 0);
	REQUIRE_GT(ch, 0);
	int sub = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(sub, 0);
	/* A second channel whose creator will die while nobody holds locks on it. */
	pid_t dc = th_fork(dead_creator_main, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 2, 10000), 0);
	REQUIRE_GT(atomic_load(&sh->r[1]), 0);
	char dead_dir[96];
	th_channel_path(dead_dir, sizeof dead_dir, sh->key2, NULL);
	atomic_store(&sh->done, 0);
	pid_t l = th_fork_nobody(locker, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	printf("    nobody holds locks on %d files of root's channel\n", atomic_load(&sh->r[0]));
	/* The dead creator's channel: once its creator is gone, nobody
	 * read-locks its descriptor (while the creator lived, the creator's
	 * write lock kept nobody's out). */
	th_kill(dc);
	snprintf(sh->dir, sizeof sh->dir, "%s", dead_dir);
	atomic_store(&sh->done, 0);
	pid_t l2 = th_fork_nobody(locker, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	printf("    nobody holds locks on %d files of the channel whose creator died\n",
	       atomic_load(&sh->r[0]));

	uint64_t t0 = th_now_ns();
	int a = shmc_attach_key(sh->key, SHMC_RECV);
	EXPECT_GT(a, 0);
	EXPECT_EQ(shmc_detach(a), 0);
	int c2 = shmc_create(th_key(), SHMC_UNICAST, 8, 64, 0644, 0);
	EXPECT_GT(c2, 0);
	EXPECT_EQ(shmc_destroy(c2), 0);
	int dead = shmc_attach_key(sh->key2, SHMC_RECV);
	uint64_t took = th_now_ns() - t0;
	printf("    root: attach, detach, create, destroy: done in %.2f ms; the channel whose creator "
	       "died (its descriptor read-locked by nobody): %s\n", th_ms(took), th_errname(dead));
	EXPECT_EQ(dead, -ENOENT);
	CHECK_MSG(took < 5000000000ull, "root's calls took %.0f ms: blocked on nobody's locks",
		  th_ms(took));
	atomic_store(&sh->go, 1);
	EXPECT_CHILD_OK(l, 20000);
	EXPECT_CHILD_OK(l2, 20000);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	EXPECT_EQ(shmc_attach_key(sh->key2, SHMC_RECV), -ENOENT);
	EXPECT_EQ(th_count_segments_of(sh->key2, 0), 0); /* swept */
}

/* ---- 4: names before root's first use ----------------------------------------- */

static int precreator(void *arg)
{
	uint64_t *keys = arg;
	char name[80];
	snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, keys[0]);
	atomic_store(&sh->r[0], rc(symlink(VICTIM, name)));
	snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, keys[1]);
	atomic_store(&sh->r[1], rc(mkfifo(name, 0666)));
	snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, keys[2]);
	int fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
	atomic_store(&sh->r[2], fd < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, keys[3]);
	atomic_store(&sh->r[3], rc(mkdir(name, 0777)));
	return 0;
}

static int member_squatter(void *arg)
{
	(void)arg;
	int made = 0;
	for (unsigned i = 1; i < SHMC_MAX_MEMBERS; i++) {
		char name[160];
		snprintf(name, sizeof name, "%s/m%u", sh->dir, i);
		int r;
		if (i % 3 == 0)
			r = symlink(VICTIM, name);
		else if (i % 3 == 1)
			r = mkfifo(name, 0666);
		else {
			int fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
			r = fd < 0 ? -1 : 0;
			if (fd >= 0) {
				if (write(fd, "junk", 4) < 0)
					r = -1;
				close(fd);
			}
		}
		made += r == 0;
	}
	atomic_store(&sh->r[0], made);
	return 0;
}

static void part_precreate(void)
{
	th_section("4. names pre-created before root's first use");
	memset(sh, 0, sizeof *sh);
	int vfd = open(VICTIM, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	REQUIRE_MSG(vfd >= 0, "victim file");
	REQUIRE_EQ(write(vfd, "root's secret", 13), 13);
	close(vfd);
	REQUIRE_EQ(chmod(VICTIM, 0600), 0);
	uint64_t keys[5];
	for (int i = 0; i < 5; i++)
		keys[i] = th_key();
	EXPECT_CHILD_OK(th_fork_nobody(precreator, keys), 20000);
	/* What an attacker can make with fs.protected_hardlinks=0: root makes it. */
	char hard[80];
	snprintf(hard, sizeof hard, "/dev/shm/shmchan.%016" PRIx64, keys[4]);
	REQUIRE_EQ(link(VICTIM, hard), 0);
	static const char *what[] = { "a symlink to a root file", "a FIFO", "a regular file",
				      "an empty directory", "a hard link of a root file" };
	for (int i = 0; i < 5; i++) {
		if (i < 4)
			EXPECT_EQ(atomic_load(&sh->r[i]), 0);
		uint64_t t0 = th_now_ns();
		int c = shmc_create(keys[i], SHMC_UNICAST, 8, 64, 0666, 0);
		int a = shmc_attach_key(keys[i], SHMC_RECV);
		uint64_t look[SHMC_LOOKUP_COUNT] = { 0 };
		shmc_lookup_key(keys[i], look);
		printf("    %-28s create %s, attach %s (%.2f ms); lookup: state %" PRIu64 ", uid %" PRIu64
		       "\n", what[i], th_errname(c), th_errname(a), th_ms(th_now_ns() - t0),
		       look[SHMC_LOOKUP_STATE], look[SHMC_LOOKUP_OWNER_UID]);
		EXPECT_EQ(c, -EEXIST);
		CHECK_MSG(a == -ENOENT || a == -EBADMSG, "%s: attach %s", what[i], th_errname(a));
		EXPECT_EQ(look[SHMC_LOOKUP_STATE], SHMC_LOOKUP_NOT_CHANNEL);
		if (c > 0)
			shmc_destroy(c);
		if (a > 0)
			shmc_detach(a);
	}
	struct stat st;
	REQUIRE_EQ(stat(VICTIM, &st), 0);
	printf("    the root file: mode 0%o, %lld bytes\n", (unsigned)(st.st_mode & 07777),
	       (long long)st.st_size);
	EXPECT_EQ(st.st_mode & 07777, 0600);
	EXPECT_EQ(st.st_size, 13);
	unlink(hard);

	/* Inside a 0666 channel: member names nobody made first. */
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_BROADCAST, 8, 64, 0666, 0);
	REQUIRE_GT(ch, 0);
	EXPECT_CHILD_OK(th_fork_nobody(member_squatter, NULL), 20000);
	int subs[8], ok = 0;
	for (int i = 0; i < 8; i++) {
		subs[i] = shmc_attach_key(sh->key, SHMC_RECV);
		ok += subs[i] > 0;
	}
	printf("    nobody pre-made %d member names (symlinks to a root file, FIFOs, junk): root's "
	       "8 attaches: %d succeeded\n", atomic_load(&sh->r[0]), ok);
	EXPECT_EQ(ok, 8);
	char buf[8];
	EXPECT_EQ(shmc_try_send(ch, "hi", 2, 0), 2);
	for (int i = 0; i < 8; i++) {
		if (subs[i] > 0) {
			EXPECT_EQ(shmc_try_recv(subs[i], buf, sizeof buf), 2);
			shmc_detach(subs[i]);
		}
	}
	REQUIRE_EQ(stat(VICTIM, &st), 0);
	EXPECT_EQ(st.st_mode & 07777, 0600);
	EXPECT_EQ(st.st_size, 13);
	EXPECT_EQ(shmc_destroy(ch), 0);
	for (int i = 0; i < 4; i++) {
		char name[80];
		snprintf(name, sizeof name, "/dev/shm/shmchan.%016" PRIx64, keys[i]);
		if (unlink(name) < 0)
			rmdir(name);
	}
	unlink(VICTIM);
}

int main(void)
{
	th_init("test_attack_lookup", 0);
	if (geteuid() != 0)
		return th_skip("needs root, to play uid 65534 against root's channels");
	sh = th_shared_alloc(sizeof *sh);
	part_redirect();
	part_junk();
	part_locks();
	part_precreate();
	return th_finish();
}
