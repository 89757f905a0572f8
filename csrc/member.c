/* SPDX-License-Identifier: MIT */
/*
 * member.c - members and liveness: joining the member table, the OFD lock
 * byte that proves a member alive, park bits, finding a receiver by id
 * (DESIGN.md sections 2 "members" and 5 "Liveness").
 *
 * Writes: the member table of the control segment (a joiner's own slot; a
 * dead member's slot when reclaiming it; any member's parked bits and the
 * header's parked counts when clearing a park) and the liveness lock bytes
 * of the control segment.
 * Calls: nothing of the library's but the helpers in internal.h.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMBER_LOCK_BASE (1ull << 30)

uint64_t shmc__process_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
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

/* OFD locks: held by an open file description, released by the kernel when
 * the last fd to it closes (a kill -9 included), unaffected by SIGSTOP and by
 * closing other fds to the same file. */
static int lock_byte(int fd, uint64_t offset)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)offset, .l_len = 1 };
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 if some other open file description holds the lock byte, 0 if nobody
 * does (its holder is gone), <0 on error (treated as alive by callers). */
int shmc__byte_locked(int fd, uint64_t offset)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)offset, .l_len = 1 };
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

bool shmc__member_alive(struct handle *h, uint32_t idx)
{
	/* Our own lock is held by our own descriptor, which F_OFD_GETLK does
	 * not report as a conflict: we are alive by definition. */
	if (h->me && idx == h->member_idx)
		return true;
	return shmc__byte_locked(h->ctl_fd, MEMBER_LOCK_BASE + idx) != 0;
}

/* Clear @bits of @m's parked word and take each cleared bit off its header
 * count. Returns the bits this call cleared: a park is cleared exactly once,
 * by a waker, by its owner withdrawing it, or by a reclaimer of the dead. */
uint32_t shmc__unpark_bits(struct handle *h, struct shmc_member *m, uint32_t bits)
{
	uint32_t p = load_relaxed(&m->parked);
	while (p & bits) {
		/* SYNC: seq_cst, paired with the parker's fetch_or in do_park. */
		if (cas_seq_cst(&m->parked, &p, p & ~bits)) {
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

void shmc__member_release_parks(struct handle *h, struct shmc_member *m)
{
	shmc__unpark_bits(h, m, SHMC_WAIT_RECV | SHMC_WAIT_SEND);
}

/* Take a member slot for this handle: a free one, or one whose holder died.
 * Caller holds the registry lock, so attachers do not race each other. */
int shmc__member_join(struct handle *h, uint32_t access)
{
	for (uint32_t i = 0; i < h->max_members; i++) {
		struct shmc_member *m = &h->members[i];
		uint32_t st = load_acquire(&m->state);
		if (st == MEMBER_ACTIVE) {
			if (shmc__member_alive(h, i))
				continue;
			/* The holder died: clear what it left parked, then reuse. */
			shmc__member_release_parks(h, m);
			store_release(&m->state, MEMBER_FREE);
		} else if (st != MEMBER_FREE) {
			continue;
		}
		int err = lock_byte(h->ctl_fd, MEMBER_LOCK_BASE + i);
		if (err == -EAGAIN || err == -EACCES)
			continue; /* a detacher between FREE and closing its fd */
		if (err < 0)
			return err;
		uint32_t id = fetch_add_relaxed(&h->ctl->next_member_id, 1);
		if (id == 0 || id > INT32_MAX) {
			store_relaxed(&h->ctl->next_member_id, 2);
			id = 1;
		}
		store_relaxed(&m->id, id);
		store_relaxed(&m->access, access);
		m->pid = (uint32_t)getpid();
		m->start_time = shmc__process_start_time(getpid());
		store_relaxed(&m->parked, 0);
		store_relaxed(&m->claim, 0);
		store_relaxed(&m->claim_n, 0);
		store_relaxed(&m->taking, 0);
		memset(m->doorbell, 0, sizeof m->doorbell);
		uint64_t t = load_seq_cst(&h->ctl->tail);
		store_relaxed(&m->cursor, t);
		/* SYNC: seq_cst, paired with the producers' seq_cst tail CAS and
		 * cursor loads: a producer that claims a position after this
		 * store counts this receiver in its gate. */
		store_seq_cst(&m->state, MEMBER_ACTIVE);
		uint64_t t2 = load_seq_cst(&h->ctl->tail);
		if (t2 != t)
			/* Positions in [t, t2) were claimed by producers that may not
			 * have seen us: start at t2, the next message sent after. */
			store_release(&m->cursor, t2);
		h->member_idx = i;
		h->member_id = id;
		h->me = m;
		return 0;
	}
	return -EUSERS;
}

/* Find an active receiving subscriber by id; its index, or -1. */
int shmc__find_receiver(struct handle *h, uint32_t id)
{
	for (uint32_t i = 0; i < h->max_members; i++) {
		struct shmc_member *m = &h->members[i];
		if (load_acquire(&m->state) != MEMBER_ACTIVE || load_relaxed(&m->id) != id)
			continue;
		uint32_t a = load_relaxed(&m->access);
		if ((a & SHMC_RECV) && !(a & MEMBER_OWNER))
			return (int)i;
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
