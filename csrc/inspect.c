/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - looking inside channels without joining them: counters and
 * members (shmc_stats*), the list of live channels (shmc_list), folding a
 * departed member's counts into the channel's, removal from lookup
 * (shmc_remove_*) and the sweep on demand (shmc_gc) (DESIGN.md section 11).
 *
 * An inspector reads with pread only, never mmap: a participant that shrinks
 * a file cannot make it fault. Everything read is a private copy, validated
 * before use, as for an attach.
 *
 * Writes: nothing shared, except `folded` and its seqlock words in ctl
 * (shmc__fold_*: called by a member leaving and by a reclaimer, member.c).
 * Calls: lookup.c (finding a channel, its descriptor, removal, the sweep),
 * member.c (the directory's member files), lookup.c's lock test.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATS_TRIES 8              /* reads of a channel while folds run */

/* ---- folding (DESIGN.md 11, "Folding") ---------------------------------------- */

void shmc__fold_begin(struct shmc_ctl_header *c)
{
	/* SYNC: seq_cst RMW, paired with the reader's acquire loads of
	 * fold_busy before and after it reads: a fold that starts while it
	 * reads is seen by its second load. */
	fetch_add_seq_cst(&c->fold_busy, 1);
}

void shmc__fold_end(struct shmc_ctl_header *c)
{
	/* SYNC: seq_cst RMWs, paired with the reader's acquire loads: the
	 * folded counts and the member's LEFT (or its file's removal) are
	 * visible before the generation moves and the busy count drops. */
	fetch_add_seq_cst(&c->fold_gen, 1);
	fetch_sub_seq_cst(&c->fold_busy, 1);
}

/* Add member @m's counts (a departed member's: its own file, or a private
 * copy of a dead one's) to the channel's. Inside fold_begin/fold_end. */
void shmc__fold_member(struct shmc_ctl_header *c, const struct shmc_member *m)
{
	fetch_add_relaxed(&c->folded_sent, load_relaxed(&m->sent));
	fetch_add_relaxed(&c->folded_sent_bytes, load_relaxed(&m->sent_bytes));
	fetch_add_relaxed(&c->folded_received, load_relaxed(&m->received));
	fetch_add_relaxed(&c->folded_received_bytes, load_relaxed(&m->received_bytes));
	fetch_add_relaxed(&c->folded_full, load_relaxed(&m->full));
	fetch_add_relaxed(&c->folded_parks, load_relaxed(&m->parks));
	fetch_add_relaxed(&c->folded_wakes, load_relaxed(&m->wakes));
}

/* ---- reading a channel with pread --------------------------------------------- */

/* What an inspector reads of one channel, private copies. */
struct view_of {
	int dfd;
	uint32_t uid;
	struct shmc_desc d;
	struct handle g;            /* geometry only: for the slot encoding */
	struct shmc_ctl_header ctl;
	struct shmc_wait waits[SHMC_MAX_MEMBERS];
	uint64_t tail;
	uint32_t nmembers;
	struct member_row {
		struct shmc_member m;
		uint32_t slot, uid;
		bool alive;
	} rows[SHMC_MAX_MEMBERS];
};

/* Open @name of the channel's directory for reading: @uid's regular file of
 * exactly @size bytes. */
static int open_exact(int dfd, const char *name, uint32_t uid, uint64_t size)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	struct statx st;
	int err = statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_UID | STATX_SIZE, &st) < 0 ? -errno
											      : 0;
	if (err == 0 && (!S_ISREG(st.stx_mode) || st.stx_uid != uid || st.stx_size != size))
		err = -EBADMSG;
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

static int pread_all(int fd, void *buf, size_t n, off_t off)
{
	ssize_t r = pread(fd, buf, n, off);
	if (r < 0)
		return -errno;
	return (size_t)r == n ? 0 : -EBADMSG; /* shrunk: not what the descriptor says */
}

/* The ctl header and the wait lines. */
static int read_ctl(struct view_of *v, int fd)
{
	int err = pread_all(fd, &v->ctl, sizeof v->ctl, 0);
	if (err == 0)
		err = pread_all(fd, v->waits, sizeof v->waits, sizeof v->ctl);
	if (err < 0)
		return err;
	if (v->ctl.magic != SHMC_CTL_MAGIC || v->ctl.header_size != sizeof v->ctl ||
	    v->ctl.nonce != v->d.nonce || v->ctl.ring_entries != v->d.ring_entries)
		return -EBADMSG;
	return 0;
}

/* The member files of the directory, validated, with their liveness. */
static void read_members(struct view_of *v)
{
	uint64_t ino[SHMC_MAX_MEMBERS];
	v->nmembers = 0;
	if (shmc__members_list(v->dfd, ino) < 0)
		return;
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
		if (!ino[i])
			continue;
		char name[16];
		snprintf(name, sizeof name, "m%u", i);
		int fd = openat(v->dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct statx st;
		struct member_row *r = &v->rows[v->nmembers];
		bool ok = statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_UID | STATX_SIZE, &st) == 0 &&
			  S_ISREG(st.stx_mode) && st.stx_size >= sizeof r->m &&
			  pread_all(fd, &r->m, sizeof r->m, 0) == 0;
		const struct shmc_member *m = &r->m;
		ok = ok && m->magic == SHMC_MEMBER_MAGIC && m->size == sizeof *m && m->nonce == v->d.nonce &&
		     m->slot == i && m->id >= 1 && m->id <= INT32_MAX &&
		     (m->id - 1) % SHMC_MAX_MEMBERS == i && load_relaxed(&m->state) == MEMBER_ACTIVE;
		if (ok) {
			r->slot = i;
			r->uid = st.stx_uid;
			r->alive = shmc__lock_held(fd);
			v->nmembers++;
		}
		close(fd);
	}
}

static bool is_receiver(const struct shmc_member *m)
{
	return (m->access & SHMC_RECV) && !(m->access & MEMBER_OWNER);
}

/* Unicast/multicast: positions in [head, tail) not yet consumed. */
static uint64_t queue_waiting(struct view_of *v, int ctl_fd)
{
	const uint64_t n = v->d.ring_entries;
	uint64_t head = load_relaxed(&v->ctl.head), tail = v->tail;
	uint64_t span = tail - head;
	if ((int64_t)span <= 0)
		return 0;
	if (span > n)
		span = n; /* a forged head: never scan past the ring */
	size_t bytes = (size_t)n * sizeof(struct shmc_qslot);
	struct shmc_qslot *q = malloc(bytes);
	if (!q)
		return span;
	off_t off = (off_t)(sizeof(struct shmc_ctl_header) + SHMC_MAX_MEMBERS * sizeof(struct shmc_wait));
	uint64_t waiting = 0;
	if (pread_all(ctl_fd, q, bytes, off) == 0) {
		for (uint64_t p = tail - span; p != tail; p++) {
			uint64_t first = v->d.start + ((p - v->d.start) & (n - 1));
			uint64_t s = load_relaxed(&q[p & (n - 1)].seq) + SEQ(first, SLOT_FREE);
			if ((int64_t)(s - SEQ(p + n, SLOT_FREE)) < 0)
				waiting++;
		}
	} else {
		waiting = span;
	}
	free(q);
	return waiting;
}

/* Broadcast: how far a receiver is behind tail (0 when ahead or corrupt). */
static uint64_t cursor_lag(const struct view_of *v, const struct shmc_member *m)
{
	uint64_t lag = v->tail - load_relaxed(&m->cursor);
	return (int64_t)lag <= 0 || lag > v->d.ring_entries ? 0 : lag;
}

/* Read the channel whose directory is open at @dfd (owner @uid, validated
 * descriptor @d) into @v, consistently with the folds (DESIGN.md 11). */
static int read_channel(struct view_of *v, int dfd, uint32_t uid, const struct shmc_desc *d,
			uint64_t *waiting)
{
	memset(v, 0, sizeof *v);
	v->dfd = dfd;
	v->uid = uid;
	v->d = *d;
	int cfd = open_exact(dfd, "ctl", uid, d->ctl_size);
	if (cfd < 0)
		return cfd;
	int dat = open_exact(dfd, "dat", uid, d->dat_size);
	if (dat < 0) {
		close(cfd);
		return dat;
	}
	int err = 0;
	for (int tries = 0; tries < STATS_TRIES; tries++) {
		struct shmc_ctl_header before;
		if ((err = pread_all(cfd, &before, sizeof before, 0)) < 0)
			break;
		struct shmc_dat_header dh;
		if ((err = pread_all(dat, &dh, sizeof dh, 0)) < 0)
			break;
		if (dh.magic != SHMC_DAT_MAGIC || dh.nonce != d->nonce) {
			err = -EBADMSG;
			break;
		}
		v->tail = load_relaxed(&dh.tail);
		read_members(v);
		/* SYNC: the member files before the second read of the header
		 * (pread: a system call orders them), paired with the folders'
		 * seq_cst RMWs of fold_busy and fold_gen. */
		if ((err = read_ctl(v, cfd)) < 0)
			break;
		if (load_relaxed(&before.fold_busy) == 0 && load_relaxed(&v->ctl.fold_busy) == 0 &&
		    load_relaxed(&before.fold_gen) == load_relaxed(&v->ctl.fold_gen))
			break; /* no fold started or ended while we read */
	}
	if (err == 0) {
		if (d->delivery == SHMC_BROADCAST) {
			uint64_t w = 0;
			for (uint32_t i = 0; i < v->nmembers; i++) {
				const struct shmc_member *m = &v->rows[i].m;
				uint64_t lag = cursor_lag(v, m);
				if (v->rows[i].alive && is_receiver(m) && lag > w)
					w = lag;
			}
			*waiting = w;
		} else {
			*waiting = queue_waiting(v, cfd);
		}
	}
	close(dat);
	close(cfd);
	return err;
}

static uint32_t live_members(const struct view_of *v)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < v->nmembers; i++)
		n += v->rows[i].alive;
	return n;
}

/* Fill shmc_stats' header and rows from @v. Returns the rows written. */
static int fill_stats(const struct view_of *v, uint64_t waiting, uint64_t *out, uint32_t cap)
{
	const struct shmc_desc *d = &v->d;
	const struct shmc_ctl_header *c = &v->ctl;
	memset(out, 0, SHMC_STATS_COUNT * sizeof *out);
	out[SHMC_STATS_KEY] = d->key;
	out[SHMC_STATS_CHANNEL_ID] = (uint64_t)d->channel_id;
	out[SHMC_STATS_DELIVERY] = d->delivery;
	out[SHMC_STATS_RING_ENTRIES] = d->ring_entries;
	out[SHMC_STATS_MAX_MESSAGE_SIZE] = d->max_msg_size;
	out[SHMC_STATS_MODE] = d->mode;
	out[SHMC_STATS_FLAGS] = d->flags;
	out[SHMC_STATS_OWNER_UID] = v->uid;
	out[SHMC_STATS_CREATOR_PID] = d->creator_pid;
	out[SHMC_STATS_MEMBERS] = live_members(v);
	out[SHMC_STATS_WAITING] = waiting;
	out[SHMC_STATS_TAIL] = v->tail;
	out[SHMC_STATS_SENT] = load_relaxed(&c->folded_sent);
	out[SHMC_STATS_SENT_BYTES] = load_relaxed(&c->folded_sent_bytes);
	out[SHMC_STATS_RECEIVED] = load_relaxed(&c->folded_received);
	out[SHMC_STATS_RECEIVED_BYTES] = load_relaxed(&c->folded_received_bytes);
	out[SHMC_STATS_FULL] = load_relaxed(&c->folded_full);
	out[SHMC_STATS_DROPPED] = load_relaxed(&c->dropped);
	out[SHMC_STATS_SKIPPED] = load_relaxed(&c->skipped);
	out[SHMC_STATS_PARKS] = load_relaxed(&c->folded_parks);
	out[SHMC_STATS_WAKES] = load_relaxed(&c->folded_wakes);
	out[SHMC_STATS_ROWS] = v->nmembers;
	uint32_t room = (cap - SHMC_STATS_COUNT) / SHMC_MSTATS_COUNT;
	int written = 0;
	for (uint32_t i = 0; i < v->nmembers; i++) {
		const struct member_row *r = &v->rows[i];
		const struct shmc_member *m = &r->m;
		out[SHMC_STATS_SENT] += load_relaxed(&m->sent);
		out[SHMC_STATS_SENT_BYTES] += load_relaxed(&m->sent_bytes);
		out[SHMC_STATS_RECEIVED] += load_relaxed(&m->received);
		out[SHMC_STATS_RECEIVED_BYTES] += load_relaxed(&m->received_bytes);
		out[SHMC_STATS_FULL] += load_relaxed(&m->full);
		out[SHMC_STATS_PARKS] += load_relaxed(&m->parks);
		out[SHMC_STATS_WAKES] += load_relaxed(&m->wakes);
		if (i >= room)
			continue;
		uint64_t *row = out + SHMC_STATS_COUNT + (size_t)i * SHMC_MSTATS_COUNT;
		uint64_t behind = 0;
		if (is_receiver(m))
			behind = d->delivery == SHMC_BROADCAST ? cursor_lag(v, m) : waiting;
		row[SHMC_MSTATS_ID] = m->id;
		row[SHMC_MSTATS_SLOT] = r->slot;
		row[SHMC_MSTATS_PID] = m->pid;
		row[SHMC_MSTATS_UID] = r->uid;
		row[SHMC_MSTATS_ACCESS] = m->access & SHMC_BOTH;
		row[SHMC_MSTATS_IS_OWNER] = (m->access & MEMBER_OWNER) != 0;
		row[SHMC_MSTATS_ALIVE] = r->alive;
		row[SHMC_MSTATS_PARKED] = load_relaxed(&v->waits[r->slot].parked) &
					  (SHMC_WAIT_RECV | SHMC_WAIT_SEND);
		row[SHMC_MSTATS_BEHIND] = behind;
		row[SHMC_MSTATS_SENT] = load_relaxed(&m->sent);
		row[SHMC_MSTATS_SENT_BYTES] = load_relaxed(&m->sent_bytes);
		row[SHMC_MSTATS_RECEIVED] = load_relaxed(&m->received);
		row[SHMC_MSTATS_RECEIVED_BYTES] = load_relaxed(&m->received_bytes);
		row[SHMC_MSTATS_FULL] = load_relaxed(&m->full);
		row[SHMC_MSTATS_DROPPED] = load_relaxed(&m->dropped);
		row[SHMC_MSTATS_SKIPPED] = load_relaxed(&m->skipped);
		row[SHMC_MSTATS_PARKS] = load_relaxed(&m->parks);
		row[SHMC_MSTATS_WAKES] = load_relaxed(&m->wakes);
		written++;
	}
	return written;
}

static int stats_of(int dfd, uint32_t uid, const struct shmc_desc *d, uint64_t *out, uint32_t cap)
{
	struct view_of *v = malloc(sizeof *v);
	if (!v)
		return -ENOMEM;
	uint64_t waiting = 0;
	int err = read_channel(v, dfd, uid, d, &waiting);
	if (err == 0)
		err = fill_stats(v, waiting, out, cap);
	free(v);
	return err;
}

/* ---- the API ---------------------------------------------------------------------- */

SHMC_API int shmc_stats(int handle, uint64_t *out, uint32_t cap)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!out)
		return -EFAULT;
	if (cap < SHMC_STATS_COUNT)
		return -ERANGE;
	struct shmc_desc d;
	int fd = shmc__read_desc(h->dfd, h->owner_uid, &d);
	if (fd < 0)
		return fd;
	close(fd);
	if (d.nonce != h->nonce)
		return -EBADMSG;
	return stats_of(h->dfd, h->owner_uid, &d, out, cap);
}

static int stats_find(uint64_t key, int32_t id, uint64_t *out, uint32_t cap)
{
	if (!out)
		return -EFAULT;
	if (cap < SHMC_STATS_COUNT)
		return -ERANGE;
	shmc__process_init();
	struct found f;
	pthread_mutex_lock(&g_lock);
	int err = shmc__find(key, id, -1, &f, NULL);
	pthread_mutex_unlock(&g_lock);
	if (err < 0)
		return err;
	err = stats_of(f.dfd, f.uid, &f.desc, out, cap);
	close(f.dfd);
	return err;
}

SHMC_API int shmc_stats_key(uint64_t key, uint64_t *out, uint32_t cap)
{
	if (key == 0)
		return -EINVAL;
	return stats_find(key, 0, out, cap);
}

SHMC_API int shmc_stats_id(int32_t channel_id, uint64_t *out, uint32_t cap)
{
	if (channel_id <= 0)
		return -EINVAL;
	return stats_find(0, channel_id, out, cap);
}

SHMC_API int shmc_list(uint64_t *out, uint32_t cap)
{
	if (!out && cap)
		return -EFAULT;
	shmc__process_init();
	DIR *dir = opendir(SHMC_SHM_DIR);
	if (!dir)
		return -errno;
	/* Collect the keys first: looking a channel up may sweep names. */
	uint64_t *keys = NULL;
	size_t nkeys = 0, kcap = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		uint64_t key = shmc__key_of_name(de->d_name);
		if (!key)
			continue;
		if (nkeys == kcap) {
			size_t ncap = kcap ? kcap * 2 : 64;
			void *p = realloc(keys, ncap * sizeof *keys);
			if (!p)
				break;
			keys = p;
			kcap = ncap;
		}
		keys[nkeys++] = key;
	}
	closedir(dir);
	struct view_of *v = malloc(sizeof *v);
	if (!v) {
		free(keys);
		return -ENOMEM;
	}
	uint32_t rows = cap / SHMC_LIST_COUNT;
	int found = 0;
	for (size_t i = 0; i < nkeys && found < INT32_MAX; i++) {
		struct found f;
		pthread_mutex_lock(&g_lock);
		int err = shmc__find(keys[i], 0, -1, &f, NULL);
		pthread_mutex_unlock(&g_lock);
		if (err < 0)
			continue; /* gone, stale, not ours to look into, or not a channel */
		uint64_t waiting = 0;
		err = read_channel(v, f.dfd, f.uid, &f.desc, &waiting);
		close(f.dfd);
		if (err < 0)
			continue;
		if ((uint32_t)found < rows) {
			uint64_t *row = out + (size_t)found * SHMC_LIST_COUNT;
			row[SHMC_LIST_KEY] = f.desc.key;
			row[SHMC_LIST_CHANNEL_ID] = (uint64_t)f.desc.channel_id;
			row[SHMC_LIST_DELIVERY] = f.desc.delivery;
			row[SHMC_LIST_MODE] = f.desc.mode;
			row[SHMC_LIST_FLAGS] = f.desc.flags;
			row[SHMC_LIST_OWNER_UID] = f.uid;
			row[SHMC_LIST_CREATOR_PID] = f.desc.creator_pid;
			row[SHMC_LIST_MEMBERS] = live_members(v);
			row[SHMC_LIST_RING_ENTRIES] = f.desc.ring_entries;
			row[SHMC_LIST_MAX_MESSAGE_SIZE] = f.desc.max_msg_size;
			row[SHMC_LIST_WAITING] = waiting;
		}
		found++;
	}
	free(v);
	free(keys);
	return found;
}

static int remove_found(uint64_t key, int32_t id)
{
	shmc__process_init();
	struct found f;
	pthread_mutex_lock(&g_lock);
	int err = shmc__find(key, id, -1, &f, NULL);
	if (err == 0) {
		err = shmc__remove_channel(&f);
		close(f.dfd);
	}
	pthread_mutex_unlock(&g_lock);
	return err;
}

SHMC_API int shmc_remove_key(uint64_t key)
{
	if (key == 0)
		return -EINVAL;
	return remove_found(key, 0);
}

SHMC_API int shmc_remove_id(int32_t channel_id)
{
	if (channel_id <= 0)
		return -EINVAL;
	return remove_found(0, channel_id);
}

SHMC_API int shmc_gc(void)
{
	shmc__process_init();
	pthread_mutex_lock(&g_lock);
	int r = shmc__sweep();
	pthread_mutex_unlock(&g_lock);
	return r;
}
