/* SPDX-License-Identifier: MIT */
/*
 * test_permissions - the attach-time permission check and its OS backing.
 *
 *  1. The library's own check, as the owner (root gets no bypass): owner
 *     bits only, receiving needs read, sending needs write; the owner
 *     handle's own sends are checked too.
 *  2. Other identities (forked children that setuid/setgid): other bits,
 *     group bits when the gid matches (no fall-through to other bits),
 *     SHMC_F_PRIVATE.
 *  3. The OS: a 0600 channel's files cannot be opened by another uid, and
 *     a 0644 channel's message data (dat) cannot be opened for writing by
 *     another uid, who may read it.
 *
 * Runs in a private /dev/shm (own mount namespace) so part 3 can tell this
 * channel's files apart; without root, parts 2 and 3 are skipped.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <unistd.h>

#define NOBODY 65534

struct ident_case {
	uint64_t key;
	uid_t uid;
	gid_t gid;
	int want_recv, want_send, want_both; /* 1 = attach succeeds, else -errno */
	int talk;                            /* 0666 case: exchange messages */
	uint32_t rx_id;                      /* the parent's receiver */
	atomic_uint member_id;
};

#define MAX_NAMES 32
struct names {
	int n;
	char name[MAX_NAMES][300];
	int rdonly_err[MAX_NAMES]; /* child results: 0 opened, else errno */
	int rdwr_err[MAX_NAMES];
};

/* The names in /dev/shm, and the files inside its channel directories. */
static void snapshot(struct names *out)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	out->n = 0;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL && out->n < MAX_NAMES) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(out->name[out->n++], sizeof(out->name[0]), "%s", e->d_name);
		if (e->d_type != DT_DIR || strncmp(e->d_name, "shmchan.", 8))
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		DIR *c = opendir(path);
		struct dirent *f;
		while (c && (f = readdir(c)) != NULL && out->n < MAX_NAMES)
			if (f->d_name[0] != '.')
				snprintf(out->name[out->n++], sizeof(out->name[0]), "%.64s/%.64s",
					 e->d_name, f->d_name);
		if (c)
			closedir(c);
	}
	closedir(d);
}

/* Names in @after that are not in @before. */
static void diff(const struct names *before, const struct names *after, struct names *out)
{
	out->n = 0;
	for (int i = 0; i < after->n; i++) {
		int found = 0;

		for (int j = 0; j < before->n; j++)
			found |= strcmp(after->name[i], before->name[j]) == 0;
		if (!found)
			snprintf(out->name[out->n++], sizeof(out->name[0]), "%s", after->name[i]);
	}
}

static int become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		th_fail_at(__FILE__, __LINE__, "cannot become %d:%d: %s", (int)uid, (int)gid,
			   strerror(errno));
		return -1;
	}
	return 0;
}

static void expect_attach(uint64_t key, uint32_t access, int want, const char *what)
{
	int r = shmc_attach_key(key, access);

	printf("    %-5s -> %d %s (want %s)\n", what, r, th_errname(r),
	       want == 1 ? "success" : th_errname(want));
	if (want == 1) {
		EXPECT_GT(r, 0);
		if (r > 0)
			EXPECT_EQ(shmc_detach(r), 0);
	} else {
		EXPECT_EQ(r, want);
	}
}

static int ident_child(void *p)
{
	struct ident_case *c = p;

	if (become(c->uid, c->gid) < 0)
		return TH_FAIL;
	expect_attach(c->key, SHMC_RECV, c->want_recv, "recv");
	expect_attach(c->key, SHMC_SEND, c->want_send, "send");
	expect_attach(c->key, SHMC_BOTH, c->want_both, "both");
	if (c->talk) {
		uint64_t info[SHMC_INFO_COUNT];
		char buf[32] = { 0 };
		int sub = shmc_attach_key(c->key, SHMC_BOTH);

		REQUIRE_GT(sub, 0);
		REQUIRE_EQ(shmc_info(sub, info), SHMC_INFO_COUNT);
		atomic_store(&c->member_id, (unsigned)info[SHMC_INFO_MEMBER_ID]);
		/* Targeted both ways, so neither side can take its own message. */
		EXPECT_EQ(shmc_try_send(sub, "from nobody", 11, c->rx_id), 11);
		EXPECT_EQ(shmc_recv(sub, buf, sizeof(buf), 10 * 1000000000ll), 9);
		EXPECT_STREQ(buf, "to nobody");
		EXPECT_EQ(shmc_detach(sub), 0);
	}
	return 0;
}

static void run_ident(const char *what, uint32_t mode, uint32_t flags, uid_t uid, gid_t gid,
		      int want_recv, int want_send, int want_both, int talk)
{
	struct ident_case *c = th_shared_alloc(sizeof(*c));
	int ch, rx = 0;
	pid_t pid;

	printf("  %s: mode 0%03o%s, as uid %d gid %d\n", what, mode,
	       flags & SHMC_F_PRIVATE ? " private" : "", (int)uid, (int)gid);
	c->key = th_key();
	c->uid = uid;
	c->gid = gid;
	c->want_recv = want_recv;
	c->want_send = want_send;
	c->want_both = want_both;
	c->talk = talk;
	ch = shmc_create(c->key, SHMC_UNICAST, 8, 32, mode, flags);
	REQUIRE_GT(ch, 0);
	if (talk) {
		uint64_t info[SHMC_INFO_COUNT];

		rx = shmc_attach_key(c->key, SHMC_RECV);
		REQUIRE_GT(rx, 0);
		REQUIRE_EQ(shmc_info(rx, info), SHMC_INFO_COUNT);
		c->rx_id = (uint32_t)info[SHMC_INFO_MEMBER_ID];
	}
	pid = th_fork(ident_child, c);
	if (talk) {
		char buf[32] = { 0 };

		EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), 10 * 1000000000ll), 11);
		EXPECT_STREQ(buf, "from nobody");
		EXPECT_EQ(th_await_u32(&c->member_id, 1, 10000), 0);
		EXPECT_EQ(shmc_try_send(ch, "to nobody", 9, atomic_load(&c->member_id)), 9);
	}
	EXPECT_CHILD_OK(pid, 20000);
	if (rx > 0)
		EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void owner_matrix(void)
{
	static const struct {
		uint32_t mode;
		int recv, send, both, owner_send;
	} m[] = {
		{ 0600, 1, 1, 1, 1 },
		{ 0400, 1, -EACCES, -EACCES, -EACCES },
		{ 0200, -EACCES, 1, -EACCES, 1 },
		{ 0000, -EACCES, -EACCES, -EACCES, -EACCES },
		/* Group and other bits do not help the owner. */
		{ 0066, -EACCES, -EACCES, -EACCES, -EACCES },
		{ 0466, 1, -EACCES, -EACCES, -EACCES },
		{ 0266, -EACCES, 1, -EACCES, 1 },
		{ 0640, 1, 1, 1, 1 },
	};

	th_section("owner's own uid: owner bits only, no root bypass");
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		uint64_t key = th_key();
		int ch = shmc_create(key, SHMC_UNICAST, 4, 16, m[i].mode, 0);
		int r;

		printf("  mode 0%03o\n", m[i].mode);
		EXPECT_GT(ch, 0);
		if (ch <= 0)
			continue;
		expect_attach(key, SHMC_RECV, m[i].recv, "recv");
		expect_attach(key, SHMC_SEND, m[i].send, "send");
		expect_attach(key, SHMC_BOTH, m[i].both, "both");
		r = shmc_try_send(ch, "x", 1, 0);
		printf("    owner handle send -> %d %s\n", r, th_errname(r));
		EXPECT_EQ(r, m[i].owner_send == 1 ? 1 : m[i].owner_send);
		EXPECT_EQ(shmc_destroy(ch), 0);
	}

	th_section("a handle's access is enforced on every call, blocking ones included");
	{
		uint64_t key = th_key();
		int ch = shmc_create(key, SHMC_UNICAST, 1, 16, 0600, 0);
		int tx = shmc_attach_key(key, SHMC_SEND);
		int rx = shmc_attach_key(key, SHMC_RECV);
		char buf[16];

		REQUIRE_GT(ch, 0);
		REQUIRE_GT(tx, 0);
		REQUIRE_GT(rx, 0);
		/* Nothing queued yet: a missing right must not turn into -EAGAIN
		 * or a wait. */
		EXPECT_EQ(shmc_try_recv(tx, buf, sizeof(buf)), -EACCES);
		EXPECT_EQ(shmc_recv(tx, buf, sizeof(buf), -1), -EACCES);
		EXPECT_EQ(shmc_recv(tx, buf, sizeof(buf), 1000000), -EACCES);
		EXPECT_EQ(shmc_try_recv(ch, buf, sizeof(buf)), -EACCES);
		EXPECT_EQ(shmc_recv(ch, buf, sizeof(buf), -1), -EACCES);
		EXPECT_EQ(shmc_try_send(rx, "x", 1, 0), -EACCES);
		EXPECT_EQ(shmc_send(rx, "x", 1, 0, -1), -EACCES);
		/* A full ring: still -EACCES, not -ENOBUFS or a wait. */
		EXPECT_EQ(shmc_try_send(tx, "x", 1, 0), 1);
		EXPECT_EQ(shmc_try_send(rx, "x", 1, 0), -EACCES);
		EXPECT_EQ(shmc_send(rx, "x", 1, 0, -1), -EACCES);
		EXPECT_EQ(shmc_recv(tx, buf, sizeof(buf), -1), -EACCES);
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof(buf)), 1);
		EXPECT_EQ(shmc_detach(tx), 0);
		EXPECT_EQ(shmc_detach(rx), 0);
		EXPECT_EQ(shmc_destroy(ch), 0);
	}

	th_section("SHMC_F_PRIVATE: the creator's uid may still attach");
	{
		uint64_t key = th_key();
		int ch = shmc_create(key, SHMC_BROADCAST, 4, 16, 0666, SHMC_F_PRIVATE);

		REQUIRE_GT(ch, 0);
		expect_attach(key, SHMC_BOTH, 1, "both");
		EXPECT_EQ(shmc_destroy(ch), 0);
	}
}

static int os_child(void *p)
{
	struct names *n = p;

	if (become(NOBODY, NOBODY) < 0)
		return TH_FAIL;
	for (int i = 0; i < n->n; i++) {
		char path[300];
		int fd;

		snprintf(path, sizeof(path), "/dev/shm/%s", n->name[i]);
		fd = open(path, O_RDONLY | O_NOFOLLOW);
		n->rdonly_err[i] = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		fd = open(path, O_RDWR | O_NOFOLLOW);
		n->rdwr_err[i] = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

static void os_check(uint32_t mode, int private_shm)
{
	struct names before, after;
	struct names *mine = th_shared_alloc(sizeof(*mine));
	uint64_t key = th_key();
	int ch, rdonly_denied = 0, rdwr_denied = 0;

	if (!private_shm) {
		printf("  (no private /dev/shm: cannot tell this channel's files apart; skipped)\n");
		return;
	}
	snapshot(&before);
	ch = shmc_create(key, SHMC_BROADCAST, 8, 64, mode, 0);
	REQUIRE_GT(ch, 0);
	snapshot(&after);
	diff(&before, &after, mine);
	printf("  mode 0%03o: %d new file(s) in /dev/shm\n", mode, mine->n);
	EXPECT_GT(mine->n, 0);
	EXPECT_CHILD_OK(th_fork(os_child, mine), 20000);
	int files = 0, dat = -1;
	for (int i = 0; i < mine->n; i++) {
		printf("    %-40s as nobody: O_RDONLY %s, O_RDWR %s\n", mine->name[i],
		       mine->rdonly_err[i] ? strerror(mine->rdonly_err[i]) : "opened",
		       mine->rdwr_err[i] ? strerror(mine->rdwr_err[i]) : "opened");
		if (!strchr(mine->name[i], '/'))
			continue; /* the directory and the id link: names, not contents */
		files++;
		rdonly_denied += mine->rdonly_err[i] == EACCES;
		rdwr_denied += mine->rdwr_err[i] == EACCES;
		if (strlen(mine->name[i]) > 4 && !strcmp(mine->name[i] + strlen(mine->name[i]) - 4, "/dat"))
			dat = i;
	}
	EXPECT_GT(files, 0);
	REQUIRE_GE(dat, 0);
	if ((mode & 0006) == 0) {
		/* No right for others at all: no file of it may be opened. */
		EXPECT_EQ(rdonly_denied, files);
		EXPECT_EQ(rdwr_denied, files);
	} else if ((mode & 0002) == 0) {
		/* Others may read but not write: the message data is read-only to them. */
		EXPECT_EQ(mine->rdonly_err[dat], 0);
		EXPECT_EQ(mine->rdwr_err[dat], EACCES);
	}
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	int root = geteuid() == 0;
	int private_shm = 0;

	th_init("test_permissions", 0);
	if (root) {
		int r = th_private_shm();

		private_shm = r == 0;
		printf("private /dev/shm: %s\n", r == 0 ? "yes" : strerror(-r));
	}

	owner_matrix();

	if (!root) {
		printf("not root: cannot switch identities; parts 2 and 3 skipped\n");
		return th_finish();
	}

	th_section("other uid (nobody): other bits");
	run_ident("0600 denies nobody", 0600, 0, NOBODY, NOBODY, -EACCES, -EACCES, -EACCES, 0);
	run_ident("0666 admits nobody", 0666, 0, NOBODY, NOBODY, 1, 1, 1, 1);
	run_ident("0644: nobody may receive only", 0644, 0, NOBODY, NOBODY, 1, -EACCES, -EACCES, 0);
	run_ident("0622: nobody may send only", 0622, 0, NOBODY, NOBODY, -EACCES, 1, -EACCES, 0);
	run_ident("0660: no other bits", 0660, 0, NOBODY, NOBODY, -EACCES, -EACCES, -EACCES, 0);

	th_section("other uid with the owner's gid: group bits, no fall-through");
	run_ident("0660 group rw", 0660, 0, NOBODY, 0, 1, 1, 1, 0);
	run_ident("0640 group r", 0640, 0, NOBODY, 0, 1, -EACCES, -EACCES, 0);
	run_ident("0606 group none, other rw", 0606, 0, NOBODY, 0, -EACCES, -EACCES, -EACCES, 0);

	th_section("SHMC_F_PRIVATE: other uids denied whatever the mode");
	run_ident("private 0666, nobody", 0666, SHMC_F_PRIVATE, NOBODY, NOBODY, -EACCES, -EACCES,
		  -EACCES, 0);
	run_ident("private 0666, owner's gid", 0666, SHMC_F_PRIVATE, NOBODY, 0, -EACCES, -EACCES,
		  -EACCES, 0);
	run_ident("private 0600, same uid (root) in another process", 0600, SHMC_F_PRIVATE, 0, 0,
		  1, 1, 1, 0);

	th_section("the OS enforces the mode on the shared-memory files");
	os_check(0600, private_shm);
	os_check(0644, private_shm);
	return th_finish();
}
