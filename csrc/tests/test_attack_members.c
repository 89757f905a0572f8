/* SPDX-License-Identifier: MIT */
/*
 * test_attack_members - member slots (csrc/DESIGN.md 5). Root owns a 0644
 * channel; the attacker is a child running as uid 65534 (nobody), a reader.
 *
 *   1. nobody holds locks without attaching (read locks on root's member
 *      files and on free-slot names it made itself, junk files in every free
 *      slot): root's attaches succeed (no EUSERS): liveness is a write lock
 *      only a file's owner can take, and junk is reclaimed by the directory's
 *      owner.
 *   2. by design: nobody really attaches until the channel is full (each one
 *      a visible member of uid 65534, holding its own lock): root's next
 *      attach is EUSERS, as anybody's would be; once nobody's members die,
 *      root reclaims their slots.
 *   3. nobody rewinds the member generation in ctl: new members' ids still
 *      name their own slots, so no two live members share an id, and a send
 *      targeted at a live member reaches it alone.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

struct shared {
	uint64_t key;
	int32_t id;
	char dir[96];
	atomic_int r[4];
	atomic_uint done, go, attached;
};

static struct shared *sh;

static int squatter(void *arg)
{
	(void)arg;
	int locks = 0, junk = 0;
	for (unsigned i = 0; i < SHMC_MAX_MEMBERS; i++) {
		char name[160];
		snprintf(name, sizeof name, "%s/m%u", sh->dir, i);
		int fd = open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			/* A free slot: a file of our own there, locked, with junk in it. */
			fd = open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
			if (fd < 0)
				continue;
			if (write(fd, "not a member file", 17) == 17)
				junk++;
		}
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
				    .l_start = (off_t)SHMC_LOCK_BYTE, .l_len = 1 };
		locks += fcntl(fd, F_OFD_SETLK, &fl) == 0;
		/* fd stays open: the lock lives until we exit */
	}
	atomic_store(&sh->r[0], locks);
	atomic_store(&sh->r[1], junk);
	atomic_store(&sh->done, 1);
	th_await_u32(&sh->go, 1, 30000);
	return 0;
}

static void part_locks(void)
{
	th_section("1. nobody holds member locks without attaching");
	int ch = shmc_create(sh->key, SHMC_MULTICAST, 8, 64, 0644, 0);
	REQUIRE_GT(ch, 0);
	int first = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(first, 0);
	pid_t s = th_fork_nobody(squatter, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	printf("    nobody: %d read locks held, junk files in %d free slots\n", atomic_load(&sh->r[0]),
	       atomic_load(&sh->r[1]));
	EXPECT_GE(atomic_load(&sh->r[1]), SHMC_MAX_MEMBERS - 2);
	int subs[10], ok = 0;
	for (int i = 0; i < 10; i++) {
		subs[i] = shmc_attach_key(sh->key, SHMC_RECV);
		ok += subs[i] > 0;
		if (subs[i] < 0)
			printf("    attach %d: %s\n", i, th_errname(subs[i]));
	}
	printf("    root's 10 attaches: %d succeeded\n", ok);
	EXPECT_EQ(ok, 10);
	EXPECT_EQ(shmc_try_send(ch, "hi", 2, (uint32_t)th_info(subs[3], SHMC_INFO_MEMBER_ID)), 2);
	char buf[8];
	EXPECT_EQ(shmc_try_recv(subs[3], buf, sizeof buf), 2);
	atomic_store(&sh->go, 1);
	EXPECT_CHILD_OK(s, 20000);
	for (int i = 0; i < 10; i++)
		if (subs[i] > 0)
			shmc_detach(subs[i]);
	shmc_detach(first);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static int filler(void *arg)
{
	(void)arg;
	unsigned n = 0;
	for (unsigned i = 0; i < SHMC_MAX_MEMBERS; i++) {
		int h = shmc_attach_key(sh->key, SHMC_RECV);
		if (h < 0) {
			atomic_store(&sh->r[0], h);
			break;
		}
		n++;
	}
	atomic_store(&sh->attached, n);
	atomic_store(&sh->done, 1);
	for (;;)
		pause(); /* alive, holding every slot, until killed */
	return 0;
}

static void part_full(void)
{
	th_section("2. by design: nobody attaches until the channel is full");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_BROADCAST, 8, 64, 0644, 0);
	REQUIRE_GT(ch, 0);
	pid_t f = th_fork_nobody(filler, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	int a = shmc_attach_key(sh->key, SHMC_RECV);
	/* Whose the members are: the directory says so (their files' owner). */
	int theirs = 0;
	for (unsigned i = 0; i < SHMC_MAX_MEMBERS; i++) {
		char name[160];
		struct stat st;
		snprintf(name, sizeof name, "%s/m%u", sh->dir, i);
		theirs += stat(name, &st) == 0 && st.st_uid == TH_NOBODY;
	}
	printf("    nobody attached %u times (then %s); root's attach: %s; %d member files are "
	       "nobody's\n", atomic_load(&sh->attached), th_errname(atomic_load(&sh->r[0])),
	       th_errname(a), theirs);
	EXPECT_EQ(atomic_load(&sh->attached), SHMC_MAX_MEMBERS - 1);
	EXPECT_EQ(a, -EUSERS);
	EXPECT_EQ(theirs, SHMC_MAX_MEMBERS - 1);
	/* Root's sends still work; nobody's 63 receivers never read: the ring
	 * fills (holding the sender back is what a reader that never reads
	 * does, by design). */
	int sent = 0;
	while (shmc_try_send(ch, "x", 1, 0) == 1 && sent < 100)
		sent++;
	printf("    root's sends before the ring filled: %d (of 8 slots)\n", sent);
	EXPECT_EQ(sent, 8);
	th_kill(f);
	a = shmc_attach_key(sh->key, SHMC_RECV);
	printf("    after nobody's members died: root's attach %s\n", th_errname(a));
	EXPECT_GT(a, 0);
	/* And the dead stop holding the sender back. */
	uint64_t t0 = th_now_ns();
	int r = shmc_send(ch, "y", 1, 0, 3000000000ll);
	printf("    root's send after they died: %s after %.1f ms\n", th_errname(r),
	       th_ms(th_now_ns() - t0));
	EXPECT_EQ(r, 1);
	if (a > 0)
		shmc_detach(a);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static int rewinder(void *arg)
{
	(void)arg;
	struct th_map m;
	int err = th_map_channel(sh->id, sh->key, &m);
	atomic_store(&sh->r[0], err);
	if (err < 0)
		return 1;
	while (!atomic_load(&sh->go))
		atomic_store(&m.ctl->next_member_gen, 0);
	th_unmap(&m);
	return 0;
}

static void part_ids(void)
{
	th_section("3. nobody rewinds the member generation");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_UNICAST, 64, 64, 0644, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	pid_t w = th_fork_nobody(rewinder, NULL);
	th_sleep_ms(20);
	enum { N = 12 };
	int subs[N];
	uint32_t ids[N];
	for (int i = 0; i < N; i++) {
		subs[i] = shmc_attach_key(sh->key, SHMC_BOTH);
		REQUIRE_GT(subs[i], 0);
		ids[i] = (uint32_t)th_info(subs[i], SHMC_INFO_MEMBER_ID);
	}
	int dup = 0;
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			dup += ids[i] == ids[j];
	printf("    %d live members while ctl's generation is rewound: ids", N);
	for (int i = 0; i < N; i++)
		printf(" %u", ids[i]);
	printf("; duplicates %d\n", dup);
	EXPECT_EQ(dup, 0);
	char buf[8];
	for (int i = 0; i < N; i++) {
		EXPECT_EQ(shmc_try_send(ch, "to you", 6, ids[i]), 6);
		for (int j = 0; j < N; j++)
			if (j != i)
				EXPECT_EQ(shmc_try_recv(subs[j], buf, sizeof buf), -EAGAIN);
		EXPECT_EQ(shmc_try_recv(subs[i], buf, sizeof buf), 6);
	}
	atomic_store(&sh->go, 1);
	EXPECT_CHILD_OK(w, 20000);
	for (int i = 0; i < N; i++)
		shmc_detach(subs[i]);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_attack_members", 0);
	if (geteuid() != 0)
		return th_skip("needs root, to play uid 65534 against root's channels");
	sh = th_shared_alloc(sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	part_locks();
	part_full();
	part_ids();
	return th_finish();
}
