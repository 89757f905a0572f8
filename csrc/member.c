/* SPDX-License-Identifier: MIT */
/*
 * member.c - member files (DESIGN.md sections 5 and 10): joining (our own
 * file, published complete), reclaiming a dead member's slot, leaving,
 * liveness, the view of the other members (read-only pages refreshed from the
 * directory listing), finding a receiver by id, park bits, probe rate limits.
 *
 * Writes: our own member file; the directory's m<i> names (our own, and a
 * dead member's when we may reclaim it); the wait lines of ctl (parked bits
 * and counts when clearing a park); the handle's member region and view.
 * Calls: lookup.c (O_TMPFILE publication, lock tests), doorbell.c (removing
 * a member's doorbells).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Generations fit the member id (i + 1 + 64 g) in a positive int32. */
#define MEMBER_GENERATIONS 33554431u

uint64_t shmc__process_start_time(pid_t pid)
{
	char path[64], buf[1024];
	/* The main thread's task: the same start time as the process's, and
	 * never rewritten by an emulator (qemu-user fakes /proc/self/stat and
	 * /proc/<own pid>/stat for its guest, whose start time then differs
	 * from what every other process reads). */
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* Field 22; fields after the ")" of the command name are space separated. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	int field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static void member_name(char *out, size_t n, uint32_t idx)
{
	snprintf(out, n, "m%u", idx);
}

/* m<i> -> i, or -1. */
static int member_slot_of(const char *name)
{
	if (name[0] != 'm' || !name[1])
		return -1;
	int v = 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > 1000)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (name[1] == '0' && name[2])
		return -1;
	return v < (int)SHMC_MAX_MEMBERS ? v : -1;
}

/* One directory listing: the inode of every m<i> (0 when absent). */
int shmc__members_list(int dfd, uint64_t ino[SHMC_MAX_MEMBERS])
{
	char buf[4096];
	memset(ino, 0, SHMC_MAX_MEMBERS * sizeof *ino);
	if (lseek(dfd, 0, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (long off = 0; off < n;) {
			struct shmc_dirent64 *e = (void *)(buf + off);
			off += e->reclen;
			int i = member_slot_of(e->name);
			if (i >= 0)
				ino[i] = e->ino;
		}
	}
}

/* Open m<idx> read-only, and check that it is still inode @ino (0: any).
 * Returns the descriptor or -errno (-ENOENT: gone or replaced). */
static int open_member(int dfd, uint32_t idx, uint64_t ino, struct statx *st)
{
	char name[16];
	member_name(name, sizeof name, idx);
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_UID | STATX_INO | STATX_SIZE, st) < 0 ||
	    !S_ISREG(st->stx_mode) || (ino && st->stx_ino != ino)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* How many members of the directory @dfd hold their liveness lock. */
int shmc__members_live(int dfd)
{
	uint64_t ino[SHMC_MAX_MEMBERS];
	if (shmc__members_list(dfd, ino) < 0)
		return 1; /* on a doubt, somebody lives */
	int live = 0;
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
		if (!ino[i])
			continue;
		struct statx st;
		int fd = open_member(dfd, i, ino[i], &st);
		if (fd == -ENOENT)
			continue;
		if (fd < 0 || shmc__lock_held(fd))
			live++;
		if (fd >= 0)
			close(fd);
	}
	return live;
}

/* ---- the view of the other members (DESIGN.md 5) -------------------------------- */

static uint8_t *member_page(struct handle *h, uint32_t idx)
{
	return h->mregion + (size_t)idx * h->page;
}

/* Put a zero page back at @idx: the member is not in our view. */
static void view_clear(struct handle *h, uint32_t idx)
{
	mmap(member_page(h, idx), h->page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	store_relaxed(&h->view[idx].ino, 0);
	store_relaxed(&h->view[idx].dead, false);
	store_relaxed(&h->view[idx].bad, false);
}

/* Is the mapped member file at @idx one of this channel's, for slot @idx? */
static bool member_valid(const struct handle *h, const struct shmc_member *m, uint32_t idx)
{
	return m->magic == SHMC_MEMBER_MAGIC && m->size == sizeof *m && m->nonce == h->nonce &&
	       m->slot == idx && m->id >= 1 && m->id <= INT32_MAX && (m->id - 1) % SHMC_MAX_MEMBERS == idx;
}

/* Map m<idx> (inode @ino) read-only at its page. Caller holds view_lock. */
static void view_map(struct handle *h, uint32_t idx, uint64_t ino)
{
	struct statx st;
	int fd = open_member(h->dfd, idx, ino, &st);
	if (fd < 0) {
		view_clear(h, idx);
		return;
	}
	bool ok = st.stx_size >= sizeof(struct shmc_member) &&
		  mmap(member_page(h, idx), h->page, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) !=
			  MAP_FAILED;
	close(fd); /* no descriptor kept: the mapping keeps the file */
	if (!ok) {
		view_clear(h, idx);
		return;
	}
	store_relaxed(&h->view[idx].uid, st.stx_uid);
	store_relaxed(&h->view[idx].dead, false);
	store_relaxed(&h->view[idx].bad, !member_valid(h, (struct shmc_member *)member_page(h, idx), idx));
	store_relaxed(&h->view[idx].ino, ino);
}

/* Bring the view up to date with the directory (the kernel's word on who is
 * a member). */
void shmc__view_refresh(struct handle *h)
{
	uint64_t ino[SHMC_MAX_MEMBERS];
	pthread_mutex_lock(&h->view_lock);
	store_relaxed(&h->refresh_ns, now_coarse_ns());
	if (shmc__members_list(h->dfd, ino) == 0) {
		uint64_t hits = shmc__fault_member_hits(h);
		for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
			if (h->me && i == h->member_idx)
				continue;
			if (hits & (1ull << i)) {
				store_relaxed(&h->view[i].bad, true); /* its page faulted */
				continue;
			}
			if (ino[i] != load_relaxed(&h->view[i].ino)) {
				if (ino[i])
					view_map(h, i, ino[i]);
				else
					view_clear(h, i);
			}
		}
	}
	pthread_mutex_unlock(&h->view_lock);
}

/* A refresh on a path that a participant can make frequent (a wake of a
 * member our view does not have): at most once a millisecond. True if it
 * refreshed. */
bool shmc__view_refresh_slow(struct handle *h)
{
	if (now_coarse_ns() - load_relaxed(&h->refresh_ns) < 1000000)
		return false;
	shmc__view_refresh(h);
	return true;
}

/* The member file at @idx as our view has it, or NULL (none, ours excluded
 * from nothing: our own is returned too, read-write). */
struct shmc_member *shmc__view(struct handle *h, uint32_t idx)
{
	if (idx >= SHMC_MAX_MEMBERS)
		return NULL;
	if (h->me && idx == h->member_idx)
		return h->me;
	if (!load_relaxed(&h->view[idx].ino) || load_relaxed(&h->view[idx].dead) ||
	    load_relaxed(&h->view[idx].bad))
		return NULL;
	return (struct shmc_member *)member_page(h, idx);
}

/* This handle stops considering member @idx (probed dead). */
void shmc__view_forget(struct handle *h, uint32_t idx)
{
	if (idx < SHMC_MAX_MEMBERS && !(h->me && idx == h->member_idx))
		store_relaxed(&h->view[idx].dead, true);
}

/* Is member @idx alive: m<idx> still names the file we mapped, and its
 * liveness lock is held as a write lock (DESIGN.md 5, "Liveness")? */
bool shmc__member_alive(struct handle *h, uint32_t idx)
{
	/* Our own lock is held by our own descriptor, which F_OFD_GETLK does
	 * not report as a conflict: we are alive by definition. */
	if (h->me && idx == h->member_idx)
		return true;
	if (idx >= SHMC_MAX_MEMBERS)
		return false;
	uint64_t ino = load_relaxed(&h->view[idx].ino);
	if (!ino)
		return false;
	struct statx st;
	int fd = open_member(h->dfd, idx, ino, &st);
	if (fd == -ENOENT)
		return false;
	if (fd < 0)
		return true; /* on a doubt, alive */
	bool alive = shmc__lock_held(fd);
	close(fd);
	return alive;
}

/* ---- park bits ---------------------------------------------------------------------- */

/* Clear @bits of member @idx's parked word and take each cleared bit off its
 * header count. Returns the bits this call cleared: a park is cleared exactly
 * once, by a waker, by its owner withdrawing it, or by a reclaimer of the dead. */
uint32_t shmc__unpark_bits(struct handle *h, uint32_t idx, uint32_t bits)
{
	struct shmc_wait *w = &h->waits[idx];
	uint32_t p = load_relaxed(&w->parked);
	while (p & bits) {
		/* SYNC: seq_cst, paired with the parker's fetch_or in do_park. */
		if (cas_seq_cst(&w->parked, &p, p & ~bits)) {
			uint32_t cleared = p & bits;
			if (cleared & SHMC_WAIT_RECV)
				fetch_sub_seq_cst(&h->ctl->recv_parked, 1);
			if (cleared & SHMC_WAIT_SEND)
				fetch_sub_seq_cst(&h->ctl->send_parked, 1);
			return cleared;
		}
	}
	return 0;
}

void shmc__member_release_parks(struct handle *h, uint32_t idx)
{
	shmc__unpark_bits(h, idx, SHMC_WAIT_RECV | SHMC_WAIT_SEND);
}

/* ---- joining and leaving (DESIGN.md 5) ---------------------------------------------- */

/* May we remove a file of @uid from the channel's (sticky) directory? */
static bool may_reclaim(const struct handle *h, uint32_t uid)
{
	uid_t me = geteuid();
	return me == 0 || me == uid || me == h->owner_uid;
}

/*
 * Slot @idx holds a dead member (inode @ino) that we may remove: put our
 * file (open at @fd, written for slot @idx) in its place. Joiners race to
 * reclaim the same dead slot, so the reclaimer first takes the dead file's
 * liveness lock itself (its own uid and root can open it for writing): while
 * it holds it, every other joiner sees that member alive and leaves the slot
 * alone, and nobody but the lock holder moves a file away from m<idx> (a
 * member that leaves unlinks its own file before its lock goes). So once
 * m<idx> is seen to name the locked file, the exchange below displaces that
 * file and no other. (When the lock cannot be taken although nobody holds
 * it as a write lock -- the directory's owner reclaiming another uid's
 * member, or read locks of a reader in the way -- the reclaimer re-checks
 * the lock just before the exchange and undoes an exchange that displaced
 * anything else.) Our file is first
 * linked under the spare name @spare (kept when set already: an O_TMPFILE
 * that had a name cannot be linked again once it has none), only when the
 * exchange is about to happen. 0 when the slot is ours; -errno when it is
 * not, our file then still named @spare or still unnamed.
 */
static int reclaim(struct handle *h, uint32_t idx, int fd, uint64_t ino, char *spare, size_t n)
{
	char name[16];
	member_name(name, sizeof name, idx);
	struct statx st;
	bool locked = false;
	int dead = openat(h->dfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (dead < 0 && errno == EACCES)
		dead = openat(h->dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (dead < 0)
		return -errno;
	int err = 0;
	if (statx(dead, "", AT_EMPTY_PATH, STATX_INO, &st) < 0 || st.stx_ino != ino) {
		err = -EBUSY; /* m<idx> names another file by now */
		goto out;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)SHMC_LOCK_BYTE, .l_len = 1 };
	if ((fcntl(dead, F_GETFL) & O_ACCMODE) == O_RDWR && fcntl(dead, F_OFD_SETLK, &fl) == 0)
		locked = true;
	else if (shmc__lock_held(dead)) {
		err = -EBUSY; /* alive after all, or another reclaimer's */
		goto out;
	}
	/* (Not locked, and no write lock held: read locks of anyone who may read
	 * the file keep ours out. Then as the directory's owner.) */
	/* Still the one at m<idx>? (A member that left unlinked it before its
	 * lock went; somebody else may have joined there since.) */
	if (statx(h->dfd, name, AT_SYMLINK_NOFOLLOW, STATX_INO, &st) < 0 || st.stx_ino != ino) {
		err = -EBUSY;
		goto out;
	}
	if (!spare[0]) {
		uint64_t r;
		if (getrandom(&r, sizeof r, 0) != sizeof r)
			r = now_ns();
		snprintf(spare, n, "n%u.%016" PRIx64, idx, r);
		err = shmc__link_tmpfile(fd, h->dfd, spare);
		if (err < 0) {
			spare[0] = 0;
			goto out;
		}
	}
	/* From the exchange until the dead member's counts are folded, neither
	 * its file nor the fold is where readers look: a fold in progress
	 * (DESIGN.md 11, "Folding"). */
	shmc__fold_begin(h->ctl);
	if (syscall(SYS_renameat2, h->dfd, spare, h->dfd, name, RENAME_EXCHANGE) < 0) {
		err = -errno;
		shmc__fold_end(h->ctl);
		goto out;
	}
	/* Now m<idx> is ours and `spare` names what was there: the dead member
	 * (always, when we hold its lock). */
	if (!locked && (statx(h->dfd, spare, AT_SYMLINK_NOFOLLOW, STATX_INO, &st) < 0 ||
			st.stx_ino != ino)) {
		syscall(SYS_renameat2, h->dfd, spare, h->dfd, name, RENAME_EXCHANGE);
		shmc__fold_end(h->ctl);
		err = -EBUSY;
		goto out;
	}
	/* Its doorbells go with it (their names come from its file), its
	 * counts into the channel's: the exchange displaced it for us alone, so
	 * they are folded exactly once. */
	struct shmc_member m;
	if (pread(dead, &m, sizeof m, 0) == (ssize_t)sizeof m) {
		shmc__doorbell_unlink(h, idx, &m);
		if (m.magic == SHMC_MEMBER_MAGIC && m.size == sizeof m && m.nonce == h->nonce &&
		    load_relaxed(&m.state) == MEMBER_ACTIVE)
			shmc__fold_member(h->ctl, &m);
	}
	unlinkat(h->dfd, spare, 0);
	shmc__fold_end(h->ctl);
	spare[0] = 0;
out:
	close(dead); /* the lock we took goes with it: nobody can find that file now */
	return err;
}

/*
 * Take a member slot for this handle: write our file out of sight, lock it,
 * and link it as the first free m<i>, or in the place of a dead member we may
 * remove. -EUSERS when every slot holds somebody else.
 */
int shmc__member_join(struct handle *h, uint32_t access)
{
	int fd = shmc__tmpfile(h->dfd, 0);
	if (fd < 0)
		return fd;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)SHMC_LOCK_BYTE, .l_len = 1 };
	if (ftruncate(fd, sizeof(struct shmc_member)) < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0 ||
	    fchmod(fd, 0644) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	uint32_t gen = fetch_add_relaxed(&h->ctl->next_member_gen, 1) % MEMBER_GENERATIONS;
	struct shmc_member m;
	memset(&m, 0, sizeof m);
	m.magic = SHMC_MEMBER_MAGIC;
	m.size = sizeof m;
	m.nonce = h->nonce;
	m.access = access;
	m.pid = (uint32_t)getpid();
	m.start_time = shmc__process_start_time(getpid());
	m.pidns = shmc__pidns();
	store_relaxed(&m.state, MEMBER_ACTIVE);
	/* SYNC: seq_cst, paired with the producers' tail CAS (DESIGN.md 7,
	 * "Broadcast consume": the directory's lock orders our link after a
	 * producer's listing that missed us). */
	uint64_t t = load_seq_cst(&h->dh->tail);
	store_relaxed(&m.cursor, t);

	int err = -EUSERS;
	uint32_t idx = 0;
	char spare[48] = "";
	unsigned squats = 0;
	for (uint32_t i = 0; i < h->max_members; i++) {
		m.slot = i;
		m.id = i + 1 + SHMC_MAX_MEMBERS * gen;
		if (pwrite(fd, &m, sizeof m, 0) != (ssize_t)sizeof m) {
			err = -errno;
			break;
		}
		char name[16];
		member_name(name, sizeof name, i);
		err = shmc__link_tmpfile(fd, h->dfd, name);
		if (err == 0) {
			idx = i;
			break;
		}
		if (err != -EEXIST)
			break;
		err = -EUSERS;
		/* Taken: by the living, or by the dead, or by something that is not
		 * a member file at all (a symlink, a FIFO: never followed, never
		 * opened), which goes the way of the dead when we may remove it. */
		struct statx st;
		int other = open_member(h->dfd, i, 0, &st);
		if (other < 0) {
			if (statx(h->dfd, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_UID | STATX_INO,
				  &st) == 0 && !S_ISREG(st.stx_mode) && may_reclaim(h, st.stx_uid) &&
			    squats++ < 8 && unlinkat(h->dfd, name, 0) == 0)
				i--; /* that slot again */
			continue;
		}
		bool dead = !shmc__lock_held(other);
		close(other);
		if (!dead || !may_reclaim(h, st.stx_uid))
			continue;
		if (reclaim(h, i, fd, st.stx_ino, spare, sizeof spare) == 0) {
			err = 0;
			idx = i;
			break;
		}
	}
	if (spare[0])
		unlinkat(h->dfd, spare, 0); /* our file under its spare name */
	if (err < 0) {
		close(fd);
		return err;
	}
	/* What an earlier holder left parked would otherwise be counted. */
	shmc__member_release_parks(h, idx);
	void *p = mmap(member_page(h, idx), h->page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		char name[16];
		member_name(name, sizeof name, idx);
		unlinkat(h->dfd, name, 0);
		close(fd);
		view_clear(h, idx);
		return err;
	}
	h->me_fd = fd;
	h->me = p;
	h->member_idx = idx;
	h->member_id = m.id;
	shmc__fault_own(h);
	store_relaxed(&h->view[idx].ino, 1); /* ours: never refreshed */
	struct shmc_wait *w = &h->waits[idx];
	store_relaxed(&w->sleepers, 0);
	store_relaxed(&w->member_id, m.id);
	uint64_t t2 = load_seq_cst(&h->dh->tail);
	if (t2 != t)
		/* Positions in [t, t2) were claimed by producers that may not
		 * have seen us: start at t2, the next message sent after. */
		store_seq_cst(&h->me->cursor, t2);
	h->cursor = t2;
	return 0;
}

/* Leave: LEFT (views ignore us from then on), parks cleared, doorbells and
 * file unlinked; closing our descriptor (in handle_unmap) drops our lock. */
void shmc__member_leave(struct handle *h)
{
	if (!h->me)
		return;
	/* Our counts go into the channel's before readers stop counting our
	 * file (DESIGN.md 11, "Folding"). */
	shmc__fold_begin(h->ctl);
	shmc__fold_member(h->ctl, h->me);
	/* SYNC: release (as part of seq_cst): our last cursor/claim writes
	 * precede LEFT; seq_cst for the caller's after_consume. */
	store_seq_cst(&h->me->state, MEMBER_LEFT);
	shmc__fold_end(h->ctl);
	shmc__member_release_parks(h, h->member_idx);
	shmc__doorbell_unlink(h, h->member_idx, h->me);
	char name[16];
	member_name(name, sizeof name, h->member_idx);
	struct statx a, b;
	if (statx(h->dfd, name, AT_SYMLINK_NOFOLLOW, STATX_INO, &a) == 0 &&
	    statx(h->me_fd, "", AT_EMPTY_PATH, STATX_INO, &b) == 0 && a.stx_ino == b.stx_ino)
		unlinkat(h->dfd, name, 0);
}

/* Find a live receiving subscriber by id; its slot, or -1. The id names its
 * slot (DESIGN.md 5), so one look suffices, after a refresh if the view has
 * nobody there. */
int shmc__find_receiver(struct handle *h, uint32_t id)
{
	if (id == 0 || id > INT32_MAX)
		return -1;
	uint32_t idx = (id - 1) % SHMC_MAX_MEMBERS;
	for (int pass = 0; pass < 2; pass++) {
		struct shmc_member *m = shmc__view(h, idx);
		if (m && m->id == id && load_acquire(&m->state) == MEMBER_ACTIVE &&
		    (m->access & SHMC_RECV) && !(m->access & MEMBER_OWNER))
			return (int)idx;
		if (pass == 0)
			shmc__view_refresh(h);
	}
	return -1;
}

/* Rate limit for liveness probes: true at most once per LIVENESS_PROBE_NS
 * per @last. */
bool shmc__probe_allowed(_Atomic uint64_t *last)
{
	uint64_t now = now_ns();
	if (now - load_relaxed(last) < LIVENESS_PROBE_NS)
		return false;
	store_relaxed(last, now);
	return true;
}
