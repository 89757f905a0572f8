/* SPDX-License-Identifier: MIT */
/*
 * lookup.c - names in /dev/shm: a channel's directory and descriptor, the id
 * links, building a channel out of sight and publishing it, creator
 * liveness, stale channels and the sweep (DESIGN.md sections 2 and 3).
 *
 * Whose a name is comes from statx (the kernel's word), never from bytes;
 * every name is opened with O_NOFOLLOW, so a squatter's symlink, FIFO or
 * device is refused, never followed or blocked on; the library changes the
 * mode only of what it has just created.
 *
 * Writes: /dev/shm/shmchan.* names (creates, renames, removes what the
 * caller may), a new channel's `id`, and the handle it is given (directory
 * descriptor, creator lock).
 * Calls: segment.c (validating a descriptor), member.c (counting live
 * members).
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define ID_LINK_PREFIX  "shmchan.id."
#define TEMP_PREFIX     "shmchan.t."
#define GONE_PREFIX     "shmchan.x."
#define ID_TRIES        64

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t random64(void)
{
	uint64_t v;
	if (getrandom(&v, sizeof v, 0) != sizeof v)
		v = now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
	return v;
}

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define STATX_WANT (STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_SIZE | \
		    STATX_MTIME)

static int xstatx(int dfd, const char *name, int flags, struct statx *st)
{
	return statx(dfd, name, flags | AT_STATX_SYNC_AS_STAT, STATX_WANT, st) < 0 ? -errno : 0;
}

static uint64_t mtime_ns(const struct statx *st)
{
	return (uint64_t)st->stx_mtime.tv_sec * 1000000000ull + st->stx_mtime.tv_nsec;
}

static int open_shm(void)
{
	int fd = open(SHMC_SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static bool may_remove(uint32_t uid)
{
	uid_t me = geteuid();
	return me == 0 || me == uid;
}

void shmc__key_name(char *out, size_t n, uint64_t key)
{
	snprintf(out, n, SHMC_PREFIX "%016" PRIx64, key);
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* "shmchan.<16 hex>": a channel's name in lookup. */
static bool is_key_name(const char *s)
{
	return strncmp(s, SHMC_PREFIX, 8) == 0 && strlen(s) == 24 && is_hex(s + 8, 16);
}

uint64_t shmc__key_of_name(const char *s)
{
	if (!is_key_name(s))
		return 0;
	uint64_t key = 0;
	for (const char *p = s + 8; *p; p++)
		key = key << 4 | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
	return key;
}

uint64_t shmc__pidns(void)
{
	static _Atomic uint64_t ns;
	uint64_t v = load_relaxed(&ns);
	if (!v) {
		struct statx st;
		if (statx(AT_FDCWD, "/proc/self/ns/pid", 0, STATX_INO, &st) == 0)
			v = st.stx_ino;
		store_relaxed(&ns, v);
	}
	return v;
}

/* ---- files published complete (DESIGN.md 2) --------------------------------- */

int shmc__tmpfile(int dfd, int flags)
{
	int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC | flags, 0600);
	return fd < 0 ? -errno : fd;
}

/* Give the O_TMPFILE @fd the name @name in @dfd; -EEXIST if taken. */
int shmc__link_tmpfile(int fd, int dfd, const char *name)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, path, dfd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

/* ---- liveness: write locks only a file's owner can take (DESIGN.md 10) ------- */

/* Does somebody hold the liveness lock of the file open at @fd? A read lock
 * (anyone who can read the file may take one) does not count. An error
 * counts as alive: nothing is removed on a doubt. */
bool shmc__lock_held(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)SHMC_LOCK_BYTE, .l_len = 1 };
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return true;
	return fl.l_type == F_WRLCK;
}

/* ---- the descriptor ------------------------------------------------------------ */

/* Open `id` in @dfd, check it is @uid's regular file of the right size, read
 * it once. Returns the open descriptor (O_RDONLY), or -errno (-ENOENT: no
 * descriptor; -EBADMSG: not a valid one). */
static int read_desc(int dfd, uint32_t uid, struct shmc_desc *d)
{
	int fd = openat(dfd, "id", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	struct statx st;
	int err = xstatx(fd, "", AT_EMPTY_PATH, &st);
	if (err == 0 && (!S_ISREG(st.stx_mode) || st.stx_uid != uid ||
			 st.stx_size != sizeof *d))
		err = -EBADMSG;
	if (err == 0 && pread(fd, d, sizeof *d, 0) != (ssize_t)sizeof *d)
		err = -EBADMSG;
	if (err == 0)
		err = shmc__check_desc(d);
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

int shmc__read_desc(int dfd, uint32_t uid, struct shmc_desc *d)
{
	return read_desc(dfd, uid, d);
}

/* ---- removing what the caller may ------------------------------------------------ */

/* Remove everything in the directory @dfd (one level of subdirectories: a
 * doorbell being sealed). */
static void empty_dir(int dfd)
{
	char buf[4096];
	for (int pass = 0; pass < 4; pass++) {
		bool any = false;
		lseek(dfd, 0, SEEK_SET);
		for (;;) {
			long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
			if (n <= 0)
				break;
			for (long off = 0; off < n;) {
				struct shmc_dirent64 *e = (void *)(buf + off);
				off += e->reclen;
				if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
					continue;
				any = true;
				if (unlinkat(dfd, e->name, 0) == 0)
					continue;
				if (errno == EISDIR) {
					int sub = openat(dfd, e->name,
							 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
					if (sub >= 0) {
						empty_dir(sub);
						close(sub);
					}
					unlinkat(dfd, e->name, AT_REMOVEDIR);
				}
			}
		}
		if (!any)
			return;
	}
}

/* What the running sweep removed or renamed (shmc_gc's result); callers
 * hold g_lock. */
static int g_swept;

/* Remove the channel directory @name of /dev/shm (open at @shm). */
static int remove_tree(int shm, const char *name)
{
	int err = 0;
	for (int tries = 0; tries < 3; tries++) {
		int dfd = openat(shm, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		empty_dir(dfd);
		close(dfd);
		if (unlinkat(shm, name, AT_REMOVEDIR) == 0) {
			g_swept++;
			return 0;
		}
		err = -errno;
		if (err != -ENOTEMPTY)
			break;
	}
	return err;
}

/* Take the directory @name of /dev/shm out of lookup under a fresh
 * "shmchan.x.<K>.<R>", the members keep working through their descriptors. */
static int rename_out(int shm, const char *name, uint64_t key)
{
	for (int tries = 0; tries < 8; tries++) {
		char gone[64];
		snprintf(gone, sizeof gone, GONE_PREFIX "%016" PRIx64 ".%016" PRIx64, key,
			 random64());
		if (syscall(SYS_renameat2, shm, name, shm, gone, RENAME_NOREPLACE) == 0) {
			g_swept++;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int read_id_link(int shm, int32_t id, char *target, size_t n, uint32_t *uid);

/* Remove the id link of channel @id if it names @name and has its owner @uid. */
static void unlink_id_link(int shm, int32_t id, const char *name, uint32_t uid)
{
	char link[48], target[64];
	uint32_t link_uid = 0;
	snprintf(link, sizeof link, ID_LINK_PREFIX "%d", (int)id);
	if (read_id_link(shm, id, target, sizeof target, &link_uid) == 0 &&
	    strcmp(target, name) == 0 && link_uid == uid && unlinkat(shm, link, 0) == 0)
		g_swept++;
}

/* The stale channel @name (creator dead, ours to remove; descriptor @d,
 * owner @uid): its id link goes, and it is removed if no member lives, else
 * taken out of lookup. */
static void sweep_stale(int shm, const char *name, const struct shmc_desc *d, uint32_t uid)
{
	unlink_id_link(shm, d->channel_id, name, uid);
	int dfd = openat(shm, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	int live = shmc__members_live(dfd);
	close(dfd);
	if (live == 0)
		remove_tree(shm, name);
	else
		rename_out(shm, name, d->key);
}

/* ---- lookup ------------------------------------------------------------------------ */

static void set_out(uint64_t *out, uint32_t state, uint32_t uid, uint32_t pid, int32_t id)
{
	if (!out)
		return;
	out[SHMC_LOOKUP_STATE] = state;
	out[SHMC_LOOKUP_OWNER_UID] = uid;
	out[SHMC_LOOKUP_CREATOR_PID] = pid;
	out[SHMC_LOOKUP_CHANNEL_ID] = (uint64_t)(int64_t)id;
}

/* The target of the id link for @id: "shmchan.<16 hex>", and the link's
 * owner. -ENOENT when there is no such link (or it is not one of ours). */
static int read_id_link(int shm, int32_t id, char *target, size_t n, uint32_t *uid)
{
	char link[48];
	snprintf(link, sizeof link, ID_LINK_PREFIX "%d", (int)id);
	struct statx st;
	int err = xstatx(shm, link, AT_SYMLINK_NOFOLLOW, &st);
	if (err < 0)
		return err;
	if (!S_ISLNK(st.stx_mode))
		return -ENOENT;
	ssize_t len = readlinkat(shm, link, target, n - 1);
	if (len < 0)
		return -errno;
	target[len] = 0;
	if (!is_key_name(target))
		return -ENOENT;
	*uid = st.stx_uid;
	return 0;
}

/*
 * Find the live channel with @key (or, when @key is 0, with id @id), owned by
 * @want_owner unless that is negative (DESIGN.md 3, "Attach by key"). On
 * success @f holds its open directory, owner and validated descriptor. Fills
 * @lookup_out (if not NULL) whatever the outcome. A stale channel the caller
 * may remove is swept on the way.
 */
int shmc__find(uint64_t key, int32_t id, int64_t want_owner, struct found *f,
	       uint64_t *lookup_out)
{
	int shm = open_shm();
	if (shm < 0)
		return shm;
	char name[64];
	uint32_t link_uid = 0;
	int err;
	set_out(lookup_out, 0, 0, 0, 0);
	if (key) {
		shmc__key_name(name, sizeof name, key);
	} else {
		err = read_id_link(shm, id, name, sizeof name, &link_uid);
		if (err < 0)
			goto out;
	}
	f->dfd = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct statx st, st2;
		err = xstatx(shm, name, AT_SYMLINK_NOFOLLOW, &st);
		if (err < 0)
			goto out;
		set_out(lookup_out, SHMC_LOOKUP_NOT_CHANNEL, st.stx_uid, 0, 0);
		if (!S_ISDIR(st.stx_mode) || (!key && st.stx_uid != link_uid)) {
			err = -ENOENT; /* a name taken by something that is not a channel */
			goto out;
		}
		if (want_owner >= 0 && st.stx_uid != (uint64_t)want_owner) {
			err = -EACCES;
			goto out;
		}
		int dfd = openat(shm, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			err = -errno;
			if (err == -EACCES)
				set_out(lookup_out, SHMC_LOOKUP_UNKNOWN, st.stx_uid, 0, 0);
			if (err == -ENOTDIR || err == -ELOOP)
				err = -ENOENT;
			goto out;
		}
		if (xstatx(dfd, "", AT_EMPTY_PATH, &st2) < 0 || st2.stx_ino != st.stx_ino ||
		    st2.stx_uid != st.stx_uid) {
			close(dfd); /* replaced between the two calls: look again */
			err = -ENOENT;
			continue;
		}
		int idfd = read_desc(dfd, st.stx_uid, &f->desc);
		if (idfd < 0) {
			close(dfd);
			err = idfd == -ENOENT ? -ENOENT : idfd;
			if (idfd == -EACCES)
				set_out(lookup_out, SHMC_LOOKUP_UNKNOWN, st.stx_uid, 0, 0);
			goto out;
		}
		if ((key && f->desc.key != key) || (!key && f->desc.channel_id != id)) {
			close(idfd);
			close(dfd);
			err = key ? -EBADMSG : -ENOENT;
			goto out;
		}
		bool alive = shmc__lock_held(idfd);
		close(idfd);
		set_out(lookup_out, alive ? SHMC_LOOKUP_LIVE : SHMC_LOOKUP_STALE, st.stx_uid,
			f->desc.creator_pid, f->desc.channel_id);
		if (!alive) {
			close(dfd);
			if (may_remove(st.stx_uid))
				sweep_stale(shm, name, &f->desc, st.stx_uid);
			err = -ENOENT;
			goto out;
		}
		f->dfd = dfd;
		f->uid = st.stx_uid;
		f->gid = st.stx_gid;
		f->dev = ((uint64_t)st.stx_dev_major << 32) | st.stx_dev_minor;
		f->ino = st.stx_ino;
		snprintf(f->name, sizeof f->name, "%s", name);
		err = 0;
		break;
	}
out:
	close(shm);
	return err;
}

/* ---- creating: built out of sight, published by one rename (DESIGN.md 3) ---- */

/* The directory's final mode: sticky, rwx for each class with a right. */
static mode_t dir_mode(uint32_t mode, uint32_t flags)
{
	mode_t m = 01700;
	if (!(flags & SHMC_F_PRIVATE)) {
		if ((mode >> 3) & 6u)
			m |= 070;
		if (mode & 6u)
			m |= 07;
	}
	return m;
}

/*
 * Begin a channel for owner handle @h (key, mode, flags and geometry set):
 * check the key, reserve an id (its link), make the directory to build in
 * (its name into @tmpname) and its descriptor, and take the creator lock.
 * The caller then creates ctl and dat, joins, and calls build_publish (or
 * build_abort on failure).
 */
int shmc__build_begin(struct handle *h, char *tmpname, size_t n)
{
	int shm = open_shm();
	if (shm < 0)
		return shm;
	char name[64];
	shmc__key_name(name, sizeof name, h->key);
	int err;
	tmpname[0] = 0;
	h->channel_id = 0;

	/* The key: free, or held by a stale channel of ours (swept by shmc__find). */
	struct found f;
	err = shmc__find(h->key, 0, -1, &f, NULL);
	if (err == 0) {
		close(f.dfd);
		err = -EEXIST;
		goto out;
	}
	struct statx st;
	if (xstatx(shm, name, AT_SYMLINK_NOFOLLOW, &st) == 0) {
		err = -EEXIST; /* live, another uid's stale channel, or not a channel */
		goto out;
	}

	/* Named after its key and its builder, so that a sweep can tell a
	 * builder killed before its descriptor existed (DESIGN.md 3). */
	snprintf(tmpname, n, TEMP_PREFIX "%016" PRIx64 ".%" PRIu64 ".%d.%" PRIu64, h->key,
		 shmc__pidns(), (int)getpid(), shmc__process_start_time(getpid()));
	if (mkdirat(shm, tmpname, 0700) < 0) {
		err = -errno;
		tmpname[0] = 0;
		goto out;
	}
	/* An id: a link that dangles until the directory is renamed into place.
	 * Made after the directory being built, so that a sweep that lists the
	 * link lists that directory too (and leaves the link). */
	for (int tries = 0; tries < ID_TRIES && !h->channel_id; tries++) {
		int32_t id = (int32_t)(random64() % INT32_MAX) + 1;
		char link[48];
		snprintf(link, sizeof link, ID_LINK_PREFIX "%d", (int)id);
		if (symlinkat(name, shm, link) == 0)
			h->channel_id = id;
		else if (errno != EEXIST) {
			err = -errno;
			goto out;
		}
	}
	if (!h->channel_id) {
		err = -EEXIST;
		goto out;
	}

	h->dfd = openat(shm, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (h->dfd < 0) {
		err = -errno;
		goto out;
	}
	if ((err = xstatx(h->dfd, "", AT_EMPTY_PATH, &st)) < 0)
		goto out;
	if (!S_ISDIR(st.stx_mode) || st.stx_uid != geteuid()) {
		err = -EBADMSG;
		goto out;
	}
	h->owner_uid = st.stx_uid;
	h->owner_gid = st.stx_gid;
	h->dir_dev = ((uint64_t)st.stx_dev_major << 32) | st.stx_dev_minor;
	h->dir_ino = st.stx_ino;
	h->nonce = random64();
	h->start = g_start_position;
	store_relaxed(&h->head_seen, h->start); /* every position below is consumed (there is none) */

	/* The descriptor, complete and locked before it has a name. */
	struct shmc_desc d;
	shmc__fill_desc(h, &d);
	int fd = shmc__tmpfile(h->dfd, 0);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	h->id_fd = fd;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)SHMC_LOCK_BYTE, .l_len = 1 };
	if (pwrite(fd, &d, sizeof d, 0) != (ssize_t)sizeof d || fcntl(fd, F_OFD_SETLK, &fl) < 0 ||
	    fchmod(fd, 0444) < 0) {
		err = errno ? -errno : -EIO;
		goto out;
	}
	err = shmc__link_tmpfile(fd, h->dfd, "id");
out:
	close(shm);
	return err;
}

/* Make the built channel visible: its final directory mode, then the rename
 * into lookup (-EEXIST when a racing creator won). */
int shmc__build_publish(struct handle *h, const char *tmpname)
{
	if (fchmod(h->dfd, dir_mode(h->mode, h->flags)) < 0)
		return -errno;
	int shm = open_shm();
	if (shm < 0)
		return shm;
	char name[64];
	shmc__key_name(name, sizeof name, h->key);
	int err = 0;
	if (syscall(SYS_renameat2, shm, tmpname, shm, name, RENAME_NOREPLACE) < 0)
		err = -errno;
	close(shm);
	return err;
}

/* Undo build_begin: the directory being built and the id link. */
void shmc__build_abort(struct handle *h, const char *tmpname)
{
	int shm = open_shm();
	if (shm < 0)
		return;
	if (tmpname[0])
		remove_tree(shm, tmpname);
	if (h->channel_id) {
		char link[48];
		snprintf(link, sizeof link, ID_LINK_PREFIX "%d", (int)h->channel_id);
		unlinkat(shm, link, 0);
	}
	close(shm);
}

/* ---- leaving lookup ------------------------------------------------------------------ */

/* The name in /dev/shm of the directory open at @dfd, if it is still there. */
static bool current_name(int shm, int dfd, char *out, size_t n)
{
	char path[64], target[PATH_MAX];
	snprintf(path, sizeof path, "/proc/self/fd/%d", dfd);
	ssize_t len = readlink(path, target, sizeof target - 1);
	if (len <= 0)
		return false;
	target[len] = 0;
	const char *prefix = SHMC_SHM_DIR "/";
	if (strncmp(target, prefix, strlen(prefix)) != 0)
		return false;
	const char *base = target + strlen(prefix);
	if (strchr(base, '/') || strlen(base) >= n)
		return false;
	struct statx a, b;
	if (xstatx(shm, base, AT_SYMLINK_NOFOLLOW, &a) < 0 || xstatx(dfd, "", AT_EMPTY_PATH, &b) < 0 ||
	    a.stx_ino != b.stx_ino)
		return false;
	snprintf(out, n, "%s", base);
	return true;
}

/* shmc_destroy's part: take the channel of owner handle @h out of lookup
 * (renamed, its id link removed) and release the creator lock. */
void shmc__destroy_channel(struct handle *h)
{
	int shm = open_shm();
	if (shm >= 0) {
		char name[64], cur[64];
		shmc__key_name(name, sizeof name, h->key);
		if (current_name(shm, h->dfd, cur, sizeof cur) && strcmp(cur, name) == 0)
			rename_out(shm, cur, h->key);
		unlink_id_link(shm, h->channel_id, name, geteuid());
		close(shm);
	}
	if (h->id_fd >= 0) {
		close(h->id_fd); /* the creator lock goes with the last descriptor */
		h->id_fd = -1;
	}
}

/*
 * After a member left the channel whose directory is open at @dfd: if the
 * channel is out of lookup (renamed, or its creator gone) and no member lives,
 * remove it, when the caller may (DESIGN.md 3, "Leaving a channel out of
 * lookup").
 */
void shmc__after_leave(int dfd, uint32_t owner_uid, uint64_t key)
{
	if (!may_remove(owner_uid))
		return;
	int shm = open_shm();
	if (shm < 0)
		return;
	char cur[64], name[64];
	shmc__key_name(name, sizeof name, key);
	if (!current_name(shm, dfd, cur, sizeof cur))
		goto out;
	bool in_lookup = strcmp(cur, name) == 0;
	if (in_lookup) {
		int idfd = openat(dfd, "id", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (idfd < 0)
			goto out;
		bool alive = shmc__lock_held(idfd);
		close(idfd);
		if (alive)
			goto out;
	}
	if (shmc__members_live(dfd) == 0)
		remove_tree(shm, cur);
out:
	close(shm);
}

/* ---- the sweep (DESIGN.md 3) ----------------------------------------------------------- */

/* Is the builder named in "shmchan.t.<K>.<pidns>.<pid>.<start>" alive? When
 * its pid namespace is not ours its pid means nothing here: alive until the
 * directory is 1 s old. */
static bool builder_alive(const char *n, bool old)
{
	unsigned long long ns, start;
	int pid;
	if (sscanf(n + strlen(TEMP_PREFIX) + 17, "%llu.%d.%llu", &ns, &pid, &start) != 3)
		return !old;
	if (ns != shmc__pidns())
		return !old;
	return kill(pid, 0) == 0 || errno == EPERM ? shmc__process_start_time(pid) == start : false;
}

/* A directory "shmchan.t.<K>..." being built: remove it if its builder is
 * dead. Returns true if it is still being built. */
static bool sweep_temp(int shm, const char *n, const struct statx *st, bool old)
{
	int dfd = openat(shm, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return false;
	struct shmc_desc d;
	int idfd = read_desc(dfd, st->stx_uid, &d);
	close(dfd);
	bool alive;
	if (idfd >= 0) {
		alive = shmc__lock_held(idfd);
		close(idfd);
	} else {
		alive = idfd == -ENOENT ? builder_alive(n, old) : !old;
	}
	if (!alive)
		remove_tree(shm, n);
	return alive;
}

/* The channel directories "shmchan.<K>" and "shmchan.x..." of the sweep. */
static void sweep_dir(int shm, const char *n, const struct statx *st)
{
	int dfd = openat(shm, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	struct shmc_desc d;
	int idfd = read_desc(dfd, st->stx_uid, &d);
	bool has_desc = idfd >= 0;
	bool alive = has_desc && shmc__lock_held(idfd);
	if (idfd >= 0)
		close(idfd);
	if (strncmp(n, GONE_PREFIX, strlen(GONE_PREFIX)) == 0) {
		bool empty = shmc__members_live(dfd) == 0;
		close(dfd);
		if (empty && !alive)
			remove_tree(shm, n);
	} else {
		close(dfd);
		if (has_desc && !alive)
			sweep_stale(shm, n, &d, st->stx_uid);
	}
}

/* An id link of the sweep: removed unless it names a live channel with its id,
 * or a channel being built (a live builder's directory for its key is in
 * @building). */
static void sweep_link(int shm, const char *n, const struct statx *st, char (*building)[64],
		       size_t nbuilding)
{
	char *end;
	long id = strtol(n + strlen(ID_LINK_PREFIX), &end, 10);
	if (*end || id <= 0 || id > INT32_MAX || !S_ISLNK(st->stx_mode))
		return;
	char target[64];
	uint32_t uid;
	if (read_id_link(shm, (int32_t)id, target, sizeof target, &uid) < 0)
		return;
	struct statx tst;
	if (xstatx(shm, target, AT_SYMLINK_NOFOLLOW, &tst) < 0) {
		/* Dangling: a channel being built, or a builder killed before its
		 * channel appeared. */
		for (size_t i = 0; i < nbuilding; i++)
			if (strncmp(building[i] + strlen(TEMP_PREFIX), target + 8, 16) == 0)
				return;
		if (unlinkat(shm, n, 0) == 0)
			g_swept++;
		return;
	}
	int dfd = openat(shm, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	struct shmc_desc d;
	int idfd = read_desc(dfd, tst.stx_uid, &d);
	close(dfd);
	if (idfd < 0)
		return; /* not ours to judge */
	bool stale = d.channel_id != (int32_t)id || !shmc__lock_held(idfd);
	close(idfd);
	if (stale && unlinkat(shm, n, 0) == 0)
		g_swept++;
}

/* Remove what the dead left and the caller may remove: its uid's names, or
 * any when root. Builders' directories first (the id links of live builders
 * dangle and stay), then channels, then links. Returns how many names it
 * removed or renamed out of lookup, or -errno when /dev/shm cannot be read. */
int shmc__sweep(void)
{
	int shm = open_shm();
	if (shm < 0)
		return shm;
	g_swept = 0;
	int dup_fd = dup(shm);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		int err = -errno;
		if (dup_fd >= 0)
			close(dup_fd);
		close(shm);
		return err;
	}
	/* Collect first: the sweep renames and removes entries. */
	char (*names)[64] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, SHMC_PREFIX, 8) != 0 || strlen(de->d_name) >= 64)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			void *p = realloc(names, ncap * sizeof *names);
			if (!p)
				break;
			names = p;
			cap = ncap;
		}
		snprintf(names[n++], 64, "%s", de->d_name);
	}
	closedir(d);
	char (*building)[64] = n ? malloc(n * sizeof *building) : NULL;
	size_t nbuilding = 0;
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < n; i++) {
			const char *nm = names[i];
			bool temp = strncmp(nm, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0;
			bool link = strncmp(nm, ID_LINK_PREFIX, strlen(ID_LINK_PREFIX)) == 0;
			if ((pass == 0) != temp || (pass == 2) != link)
				continue;
			struct statx st;
			if (xstatx(shm, nm, AT_SYMLINK_NOFOLLOW, &st) < 0 || !may_remove(st.stx_uid))
				continue;
			bool old = real_ns() - mtime_ns(&st) > STALE_AGE_NS;
			if (temp) {
				if (S_ISDIR(st.stx_mode) && sweep_temp(shm, nm, &st, old) && building)
					memcpy(building[nbuilding++], nm, 64); /* still being built */
			} else if (link) {
				sweep_link(shm, nm, &st, building, nbuilding);
			} else if (S_ISDIR(st.stx_mode) &&
				   (is_key_name(nm) || !strncmp(nm, GONE_PREFIX, strlen(GONE_PREFIX)))) {
				sweep_dir(shm, nm, &st);
			}
		}
	}
	free(building);
	free(names);
	close(shm);
	return g_swept;
}

/* shmc_remove_*'s part: take the channel @f found (live) out of lookup, as
 * a destroy does, for its owner uid or root (DESIGN.md 11, "Removal").
 * Caller holds g_lock. */
int shmc__remove_channel(const struct found *f)
{
	if (!may_remove(f->uid))
		return -EACCES;
	int shm = open_shm();
	if (shm < 0)
		return shm;
	struct statx st;
	int err = xstatx(shm, f->name, AT_SYMLINK_NOFOLLOW, &st);
	if (err == 0 && (st.stx_ino != f->ino || !S_ISDIR(st.stx_mode)))
		err = -ENOENT; /* replaced since it was found */
	if (err == 0)
		err = rename_out(shm, f->name, f->desc.key);
	if (err == 0)
		unlink_id_link(shm, f->desc.channel_id, f->name, f->uid);
	close(shm);
	return err;
}
