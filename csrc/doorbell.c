/* SPDX-License-Identifier: MIT */
/*
 * doorbell.c - event-loop doorbells (DESIGN.md section 8): a handle's own
 * (where to listen, sealing the socket the runtime bound: its ACL, its name,
 * its token in the member file; removing them on leave), and ringing another
 * member's over a cached non-blocking connection whose listener's
 * credentials were checked.
 *
 * Writes: a handle's doorbell sockets and their private directories in the
 * channel's directory, its member file's tokens and doorbell bits, and its
 * own process-local state (pending tokens, the connection cache).
 * Calls: lookup.c (names), member.c (the view of other members).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define DOORBELL_CACHE 32

/* POSIX ACLs as Linux stores them (system.posix_acl_access). */
#define ACL_XATTR_VERSION 2u
enum { ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_GROUP = 0x08,
       ACL_MASK = 0x10, ACL_OTHER = 0x20 };
struct acl_entry { uint16_t tag, perm; uint32_t id; };
struct acl { uint32_t version; struct acl_entry e[6]; };

static char dir_char(uint32_t what)
{
	return what == SHMC_WAIT_RECV ? 'r' : 's';
}

static uint32_t bell_bit(uint32_t what)
{
	return what == SHMC_WAIT_RECV ? MEMBER_BELL_RECV : MEMBER_BELL_SEND;
}

/* "b<slot>.<token>.<r|s>": a sealed doorbell in the channel's directory. */
static void bell_name(char *out, size_t n, uint32_t idx, uint64_t token, uint32_t what)
{
	snprintf(out, n, "b%u.%016" PRIx64 ".%c", idx, token, dir_char(what));
}

/* "t<slot>.<token>.<r|s>": the private directory it is bound in first. */
static void stage_name(char *out, size_t n, uint32_t idx, uint64_t token, uint32_t what)
{
	snprintf(out, n, "t%u.%016" PRIx64 ".%c", idx, token, dir_char(what));
}

/* Doorbells handed out by shmc_doorbell_path and not sealed yet, per handle
 * slot and direction (token 0: none): the token, and the alias the runtime
 * binds through. Under g_doorbell_lock. */
struct pending {
	uint64_t token;
	char alias[PATH_MAX];
};
static struct pending g_pending[MAX_HANDLES][2];

/* The directory for aliases: $TMPDIR when it is an absolute path, else /tmp.
 * Some runtimes refuse to bind sockets under /dev without their broadest
 * permission (Deno asks for --allow-all); a symlink outside /dev, owned by
 * us in a sticky directory, takes the bind to the same place. */
static const char *alias_dir(void)
{
	const char *t = getenv("TMPDIR");
	return t && t[0] == '/' && strlen(t) < 200 ? t : "/tmp";
}

/* Remove our alias symlink @path (only if it is ours and a symlink). */
static void alias_unlink(const char *path)
{
	struct statx st;
	if (path[0] && statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_UID, &st) == 0 &&
	    S_ISLNK(st.stx_mode) && st.stx_uid == geteuid())
		unlink(path);
}

struct doorbell_conn {
	uint64_t dev, ino, token;
	uint32_t idx, what;
	int fd;
};
static pthread_mutex_t g_doorbell_lock = PTHREAD_MUTEX_INITIALIZER;
static struct doorbell_conn g_conns[DOORBELL_CACHE];
static unsigned g_conn_next;

static int handle_slot(const struct handle *h)
{
	return h->self & (int)(MAX_HANDLES - 1);
}

/* ---- a handle's own doorbells ------------------------------------------------------ */

/* The ACL of a doorbell for @what: write (which connect needs) for the
 * classes of the channel's mode that may wake it, with the channel's owner
 * and group as named entries; returns its size in bytes. */
static size_t doorbell_acl(const struct handle *h, uint32_t what, struct acl *a)
{
	uint32_t want = what == SHMC_WAIT_RECV ? 2u : 4u; /* senders wake receivers */
	bool priv = h->flags & SHMC_F_PRIVATE;
	uint16_t owner = (h->mode >> 6) & want ? 2 : 0;
	uint16_t group = !priv && ((h->mode >> 3) & want) ? 2 : 0;
	uint16_t other = !priv && (h->mode & want) ? 2 : 0;
	uid_t me = geteuid();
	gid_t my_group = getegid();
	uint16_t mine = me == h->owner_uid ? owner : shmc__in_group(h->owner_gid) ? group : other;
	size_t n = 0;
	a->version = ACL_XATTR_VERSION;
	a->e[n++] = (struct acl_entry){ ACL_USER_OBJ, mine, UINT32_MAX };
	if (me != h->owner_uid)
		a->e[n++] = (struct acl_entry){ ACL_USER, owner, h->owner_uid };
	a->e[n++] = (struct acl_entry){ ACL_GROUP_OBJ, my_group == h->owner_gid ? group : other,
					UINT32_MAX };
	if (my_group != h->owner_gid)
		a->e[n++] = (struct acl_entry){ ACL_GROUP, group, h->owner_gid };
	a->e[n++] = (struct acl_entry){ ACL_MASK, 2, UINT32_MAX };
	a->e[n++] = (struct acl_entry){ ACL_OTHER, other, UINT32_MAX };
	return sizeof a->version + n * sizeof a->e[0];
}

static int check_what(const struct handle *h, uint32_t what)
{
	if (what != SHMC_WAIT_RECV && what != SHMC_WAIT_SEND)
		return -EINVAL;
	if (!(h->access & (what == SHMC_WAIT_RECV ? SHMC_RECV : SHMC_SEND)))
		return -EACCES;
	return h->me ? 0 : -EINVAL;
}

SHMC_API int shmc_doorbell_path(int handle, uint32_t what, char *buf, uint32_t cap)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (poisoned(h))
		return -EIO;
	int err = check_what(h, what);
	if (err < 0)
		return err;
	if (!buf)
		return -EFAULT;
	if (load_acquire(&h->me->bells) & bell_bit(what))
		return -EALREADY;
	int slot = handle_slot(h), d = what == SHMC_WAIT_RECV ? 0 : 1;
	char stage[48];
	pthread_mutex_lock(&g_doorbell_lock);
	struct pending *pd = &g_pending[slot][d];
	uint64_t token = pd->token;
	err = -EEXIST;
	if (!token) {
		for (int tries = 0; tries < 8 && !token; tries++) {
			uint64_t t;
			if (getrandom(&t, sizeof t, 0) != sizeof t)
				t = now_ns() ^ (uint64_t)getpid();
			if (!t)
				continue;
			stage_name(stage, sizeof stage, h->member_idx, t, what);
			if (mkdirat(h->dfd, stage, 0700) == 0)
				token = t;
			else if ((err = -errno) != -EEXIST)
				break;
		}
		pd->token = token;
		pd->alias[0] = 0;
	}
	if (!token) {
		pthread_mutex_unlock(&g_doorbell_lock);
		return err;
	}
	/* The directory's current name (it may have left lookup), and an alias
	 * to it outside /dev. */
	char link[64], dir[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", h->dfd);
	ssize_t len = readlink(link, dir, sizeof dir - 1);
	if (len <= 0) {
		pthread_mutex_unlock(&g_doorbell_lock);
		return len < 0 ? -errno : -ENOENT;
	}
	dir[len] = 0;
	stage_name(stage, sizeof stage, h->member_idx, token, what);
	char target[PATH_MAX + 64];
	snprintf(target, sizeof target, "%s/%s", dir, stage);
	alias_unlink(pd->alias);
	snprintf(pd->alias, sizeof pd->alias, "%s/shmchan-bell.%016" PRIx64 ".%c", alias_dir(), token,
		 dir_char(what));
	if (symlink(target, pd->alias) < 0) {
		err = -errno;
		pd->alias[0] = 0;
		pthread_mutex_unlock(&g_doorbell_lock);
		return err;
	}
	char path[PATH_MAX + 8];
	int n = snprintf(path, sizeof path, "%s/sock", pd->alias);
	pthread_mutex_unlock(&g_doorbell_lock);
	if (n < 0 || (size_t)n >= SHMC_DOORBELL_PATH_MAX)
		return -ENAMETOOLONG;
	if ((uint32_t)n >= cap)
		return -ERANGE;
	memcpy(buf, path, (size_t)n + 1);
	return n;
}

SHMC_API int shmc_doorbell_seal(int handle, uint32_t what)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (poisoned(h))
		return -EIO;
	int err = check_what(h, what);
	if (err < 0)
		return err;
	int slot = handle_slot(h), d = what == SHMC_WAIT_RECV ? 0 : 1;
	pthread_mutex_lock(&g_doorbell_lock);
	uint64_t token = g_pending[slot][d].token;
	pthread_mutex_unlock(&g_doorbell_lock);
	if (!token)
		return -EINVAL; /* no shmc_doorbell_path first */
	char stage[48], name[48];
	stage_name(stage, sizeof stage, h->member_idx, token, what);
	bell_name(name, sizeof name, h->member_idx, token, what);
	/* Only our uid can change what is in our 0700 directory: the socket
	 * found there is the one our runtime bound. */
	int sfd = openat(h->dfd, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	struct statx st;
	if (statx(sfd, "sock", AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_UID, &st) < 0 ||
	    !S_ISSOCK(st.stx_mode) || st.stx_uid != geteuid()) {
		close(sfd);
		return -ENOENT;
	}
	struct acl a;
	size_t alen = doorbell_acl(h, what, &a);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d/sock", sfd);
	if (lsetxattr(path, "system.posix_acl_access", &a, alen, 0) < 0) {
		/* No ACLs on this file system: the directory still keeps
		 * outsiders out (DESIGN.md 8). */
		if (errno != EOPNOTSUPP || fchmodat(sfd, "sock", 0666, 0) < 0) {
			err = -errno;
			close(sfd);
			return err;
		}
	}
	if (syscall(SYS_renameat2, sfd, "sock", h->dfd, name, RENAME_NOREPLACE) < 0) {
		err = -errno;
		close(sfd);
		return err;
	}
	close(sfd);
	unlinkat(h->dfd, stage, AT_REMOVEDIR);
	pthread_mutex_lock(&g_doorbell_lock);
	alias_unlink(g_pending[slot][d].alias);
	g_pending[slot][d].token = 0;
	g_pending[slot][d].alias[0] = 0;
	pthread_mutex_unlock(&g_doorbell_lock);
	/* SYNC: release (the token) then seq_cst (the bit), paired with the
	 * waker's acquire of bells before it reads the token. */
	store_release(what == SHMC_WAIT_RECV ? &h->me->token_r : &h->me->token_s, token);
	atomic_fetch_or_explicit(&h->me->bells, bell_bit(what), memory_order_seq_cst);
	return 0;
}

/* Remove member @idx's doorbells (its file's tokens: @m), and, when it is one
 * of our own handles, any still being sealed. */
void shmc__doorbell_unlink(struct handle *h, uint32_t idx, const struct shmc_member *m)
{
	static const uint32_t whats[2] = { SHMC_WAIT_RECV, SHMC_WAIT_SEND };
	uint32_t bells = load_acquire(&m->bells);
	for (int d = 0; d < 2; d++) {
		char name[48];
		if (bells & bell_bit(whats[d])) {
			uint64_t token = load_relaxed(d == 0 ? &m->token_r : &m->token_s);
			bell_name(name, sizeof name, idx, token, whats[d]);
			unlinkat(h->dfd, name, 0);
		}
		if (m != h->me || h->self <= 0)
			continue;
		int slot = handle_slot(h);
		pthread_mutex_lock(&g_doorbell_lock);
		uint64_t token = g_pending[slot][d].token;
		alias_unlink(g_pending[slot][d].alias);
		g_pending[slot][d].token = 0;
		g_pending[slot][d].alias[0] = 0;
		pthread_mutex_unlock(&g_doorbell_lock);
		if (token) {
			stage_name(name, sizeof name, idx, token, whats[d]);
			int sfd = openat(h->dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd >= 0) {
				unlinkat(sfd, "sock", 0);
				close(sfd);
			}
			unlinkat(h->dfd, name, AT_REMOVEDIR);
		}
	}
}

/* ---- ringing another member's ------------------------------------------------------- */

static void conn_drop(struct doorbell_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->token = 0;
}

/* Connect to member @idx's doorbell for @what (token @token) and check who
 * listens there. */
static int doorbell_connect(struct handle *h, uint32_t idx, const struct shmc_member *m,
			    uint64_t token, uint32_t what)
{
	char name[48];
	bell_name(name, sizeof name, idx, token, what);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", h->dfd, name);
	if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
		close(fd);
		return -ENAMETOOLONG;
	}
	/* A full backlog is EAGAIN: not connected, not delivered. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	struct ucred cred;
	socklen_t cl = sizeof cred;
	uint32_t uid = idx == h->member_idx && h->me ? (uint32_t)geteuid()
						      : load_relaxed(&h->view[idx].uid);
	bool ours = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.uid == uid &&
		    (m->pidns != shmc__pidns() || cred.pid == (pid_t)m->pid);
	if (!ours) {
		close(fd);
		return -EPERM; /* somebody else listens there: never rung */
	}
	return fd;
}

/*
 * Write one byte to member @idx's doorbell for @what. 0 when rung (or a byte
 * is pending), -ENOTCONN when it has none, another -errno when it could not
 * be rung (not a delivery).
 */
int shmc__doorbell_ring(struct handle *h, uint32_t idx, uint32_t what)
{
	const struct shmc_member *m = shmc__view(h, idx);
	if (!m)
		return -ENOTCONN;
	/* SYNC: acquire, paired with shmc_doorbell_seal's release of the token. */
	if (!(load_acquire(&m->bells) & bell_bit(what)))
		return -ENOTCONN;
	uint64_t token = load_relaxed(what == SHMC_WAIT_RECV ? &m->token_r : &m->token_s);
	pthread_mutex_lock(&g_doorbell_lock);
	int ret = -ECONNREFUSED;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct doorbell_conn *c = NULL;
		for (unsigned i = 0; i < DOORBELL_CACHE && !c; i++) {
			struct doorbell_conn *x = &g_conns[i];
			if (x->fd >= 0 && x->token == token && x->idx == idx && x->what == what &&
			    x->ino == h->dir_ino && x->dev == h->dir_dev)
				c = x;
		}
		if (!c) {
			int fd = doorbell_connect(h, idx, m, token, what);
			if (fd < 0) {
				ret = fd;
				break;
			}
			c = &g_conns[g_conn_next++ % DOORBELL_CACHE];
			conn_drop(c);
			*c = (struct doorbell_conn){ h->dir_dev, h->dir_ino, token, idx, what, fd };
		}
		ssize_t n = send(c->fd, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == 1 || errno == EAGAIN || errno == EWOULDBLOCK) {
			ret = 0;
			break;
		}
		/* The listener went away or closed us: reconnect once. */
		conn_drop(c);
	}
	pthread_mutex_unlock(&g_doorbell_lock);
	return ret;
}

/* Once per process (shmc__process_init): no cached connection yet. */
void shmc__doorbell_init(void)
{
	for (unsigned i = 0; i < DOORBELL_CACHE; i++)
		g_conns[i].fd = -1;
}

/* In a forked child: a fresh lock (another thread may have held the
 * parent's at the fork), an empty connection cache, no pending doorbells
 * (they are the parent's). */
void shmc__doorbell_after_fork(void)
{
	pthread_mutex_init(&g_doorbell_lock, NULL);
	for (unsigned i = 0; i < DOORBELL_CACHE; i++)
		conn_drop(&g_conns[i]);
	memset(g_pending, 0, sizeof g_pending);
}
