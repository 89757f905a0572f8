/* SPDX-License-Identifier: MIT */
/*
 * shmchan: keyed message channels in POSIX shared memory.
 * The layout is in layout.h, the protocols and invariants in DESIGN.md.
 */
#include "shmchan.h"
#include "shmchan_test.h"
#include "atomics.h"
#include "layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REGISTRY_NAME   "/shmchan.registry"
#define SHM_DIR         "/dev/shm"
#define DOORBELL_PREFIX "shmchan."
#define MAX_HANDLES     1024u      /* open handles per process */
#define HANDLE_INDEX_BITS 10
#define SPIN_ITERATIONS 2000       /* bounded spin before parking (~10-20 us) */
#define LIVENESS_PROBE_NS 10000000 /* re-probe a stuck peer at most every 10 ms */
#define DOORBELL_CACHE  16
#define HEAD_LAG        16         /* consumed slots scanned before head moves */

/* ---- process-local state ------------------------------------------------ */

struct handle {
	int self;                 /* the public handle number */
	bool owner;
	uint32_t access;          /* SHMC_SEND | SHMC_RECV */
	pid_t opener_pid;         /* for the exit-time cleanup of owned channels */
	int ctl_fd, dat_fd;       /* ctl_fd holds this member's liveness lock */
	bool creator_locked;      /* owner: holds the creator lock of reg_index */
	uint32_t reg_index;       /* the channel's registry entry */

	struct shmc_ctl_header *ctl;
	size_t ctl_size;
	uint8_t *dat;
	size_t dat_size;
	struct shmc_member *members;
	struct shmc_slot *slots;
	struct shmc_member *me;

	/* Private copies of the immutable header, validated once at open: every
	 * bound used below comes from here, never from shared memory. */
	uint64_t key;
	int32_t channel_id;
	uint32_t delivery, ring_entries, mask, max_msg, stride, max_members;
	uint32_t mode, flags;
	uint64_t nonce;
	uint32_t member_idx, member_id;

	/* Per-handle caches; atomic (relaxed) only because threads may share a
	 * handle: a stale value is always safe. */
	_Atomic uint64_t gate;            /* broadcast: cached slowest cursor */
	_Atomic uint64_t stall_pos;       /* recovery: last unpublished position seen */
	_Atomic uint64_t stall_probe_ns;
	_Atomic uint64_t gate_probe_ns;
	_Atomic uint64_t target_probe_ns;
	/* A member's receive state is one record (broadcast: its cursor;
	 * unicast/multicast: `taking`, which tells producers whether a TAKEN
	 * slot's taker lives): threads sharing the handle take turns. */
	atomic_flag recv_busy;
	/* One claim in flight per member: recover_stalled identifies a live
	 * claimer by its member's one claim record, so threads sharing the
	 * handle take turns from claim to publish. */
	atomic_flag send_busy;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle *_Atomic g_handles[MAX_HANDLES];
static uint32_t g_generation[MAX_HANDLES];
static int g_reg_fd = -1;
static pid_t g_reg_pid;
static uint64_t g_start_position;
static char g_doorbell[SHMC_DOORBELL_MAX + 1];
static _Atomic uint32_t g_doorbell_len;

struct doorbell_conn { char addr[SHMC_DOORBELL_MAX + 1]; int fd; };
static pthread_mutex_t g_doorbell_lock = PTHREAD_MUTEX_INITIALIZER;
static struct doorbell_conn g_doorbell_conns[DOORBELL_CACHE];
static unsigned g_doorbell_next;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A clock for rate limits: a few ns through the vDSO, ms resolution. */
static uint64_t now_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	/* Shared (not PRIVATE) futex: waiters and wakers are different processes. */
	long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
	return r < 0 ? -errno : 0;
}

static int futex_wake(_Atomic uint32_t *word)
{
	long r = syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	return r < 0 ? -errno : (int)r;
}

static uint64_t process_start_time(pid_t pid)
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

static bool is_power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

static bool in_group(gid_t gid)
{
	if (getegid() == gid)
		return true;
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* The RFC's check: owner bits for the owner uid, else group bits for a
 * matching gid, else other bits; root gets no bypass. */
static int check_permission(uint32_t owner_uid, uint32_t owner_gid, uint32_t mode,
			    uint32_t flags, uint32_t access)
{
	uint32_t needed = ((access & SHMC_RECV) ? 4u : 0u) | ((access & SHMC_SEND) ? 2u : 0u);
	uint32_t bits;
	if (geteuid() == owner_uid)
		bits = mode >> 6;
	else if (flags & SHMC_F_PRIVATE)
		return -EACCES;
	else if (in_group(owner_gid))
		bits = mode >> 3;
	else
		bits = mode;
	return (bits & needed) == needed ? 0 : -EACCES;
}

/* File modes that let the OS enforce the channel mode: the control segment is
 * read-write for every class with any right (receivers record progress in it),
 * the data segment read-write for writers (mmap needs read) and read-only for
 * readers. A private channel opens only to its owner class. */
static mode_t ctl_file_mode(uint32_t mode, uint32_t flags)
{
	mode_t m = 0;
	for (int shift = 0; shift <= 6; shift += 3)
		if ((mode >> shift) & 6u)
			m |= (mode_t)6u << shift;
	return (flags & SHMC_F_PRIVATE) ? (m & 0600) : m;
}

static mode_t dat_file_mode(uint32_t mode, uint32_t flags)
{
	mode_t m = 0;
	for (int shift = 0; shift <= 6; shift += 3) {
		uint32_t bits = (mode >> shift) & 6u;
		if (bits & 2u)
			m |= (mode_t)6u << shift;
		else if (bits & 4u)
			m |= (mode_t)4u << shift;
	}
	return (flags & SHMC_F_PRIVATE) ? (m & 0600) : m;
}

static void segment_name(char *out, size_t n, int32_t id, uint64_t nonce, char kind)
{
	snprintf(out, n, "/shmchan.%d.%016llx.%c", (int)id, (unsigned long long)nonce, kind);
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
static int byte_locked(int fd, uint64_t offset)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)offset, .l_len = 1 };
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* The creator lock is a traditional (process-associated) record lock:
 * unlike an OFD lock it is not inherited by a child forked without exec, so
 * a channel dies with its creating process, not with the last of its
 * children. It is taken on g_reg_fd, which is never closed (closing any fd
 * of a file drops all of the process's traditional locks on it). */
static int lock_byte_process(int fd, uint64_t offset, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = (off_t)offset, .l_len = 1 };
	return fcntl(fd, F_SETLK, &fl) < 0 ? -errno : 0;
}

#define MEMBER_LOCK_BASE (1ull << 30)

/* ---- handles ------------------------------------------------------------ */

static struct handle *lookup(int h)
{
	if (h <= 0)
		return NULL;
	uint32_t idx = (uint32_t)h & (MAX_HANDLES - 1);
	struct handle *p = atomic_load_explicit(&g_handles[idx], memory_order_acquire);
	if (!p || p->self != h)
		return NULL;
	return p;
}

/* Caller holds g_lock. */
static int install(struct handle *p)
{
	for (uint32_t i = 1; i < MAX_HANDLES; i++) {
		if (atomic_load_explicit(&g_handles[i], memory_order_relaxed))
			continue;
		uint32_t gen = (g_generation[i] + 1) & 0xfffffu;
		if (!gen)
			gen = 1;
		g_generation[i] = gen;
		p->self = (int)((gen << HANDLE_INDEX_BITS) | i);
		atomic_store_explicit(&g_handles[i], p, memory_order_release);
		return p->self;
	}
	return -EMFILE;
}

static void uninstall(struct handle *p)
{
	uint32_t idx = (uint32_t)p->self & (MAX_HANDLES - 1);
	atomic_store_explicit(&g_handles[idx], NULL, memory_order_release);
}

/* ---- the registry ------------------------------------------------------- */

struct registry {
	struct shmc_reg_header hdr;
	struct shmc_reg_entry entries[SHMC_REG_CAPACITY];
};
#define REGISTRY_SIZE sizeof(struct registry)

static void reset_after_fork(void)
{
	/* Inherited handles share the parent's open file descriptions, and an
	 * OFD lock lives as long as any fd or mapping references its
	 * description: re-open each control segment and map the same pages
	 * through the new description, so the parent's members die with it. */
	for (uint32_t i = 1; i < MAX_HANDLES; i++) {
		struct handle *h = atomic_load_explicit(&g_handles[i], memory_order_relaxed);
		if (!h || h->ctl_fd < 0)
			continue;
		atomic_flag_clear(&h->send_busy);
		atomic_flag_clear(&h->recv_busy);
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", h->ctl_fd);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (mmap(h->ctl, h->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			 0) != MAP_FAILED)
			dup3(fd, h->ctl_fd, O_CLOEXEC);
		close(fd);
	}
	/* The child shares the parent's open file description, and flock()
	 * would not exclude the two: the child opens its own. */
	g_reg_fd = -1;
	pthread_mutex_init(&g_lock, NULL);
	pthread_mutex_init(&g_doorbell_lock, NULL);
	for (unsigned i = 0; i < DOORBELL_CACHE; i++)
		g_doorbell_conns[i].fd = -1, g_doorbell_conns[i].addr[0] = 0;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, reset_after_fork);
	for (unsigned i = 0; i < DOORBELL_CACHE; i++)
		g_doorbell_conns[i].fd = -1;
}
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int open_registry_fd(void)
{
	int fd = shm_open(REGISTRY_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	(void)fchmod(fd, 0666); /* undo the umask; fails harmlessly if not ours */
	return fd;
}

/* Lock the registry (caller holds g_lock), map it, validate or initialise. */
static int registry_lock(struct registry **out)
{
	if (g_reg_fd < 0 || g_reg_pid != getpid()) {
		int fd = open_registry_fd();
		if (fd < 0)
			return fd;
		g_reg_fd = fd;
		g_reg_pid = getpid();
	}
	if (flock(g_reg_fd, LOCK_EX) < 0)
		return -errno;
	/* The size by lseek, not fstat: fstat is a glibc 2.33 symbol. */
	off_t reg_size = lseek(g_reg_fd, 0, SEEK_END);
	int err;
	if (reg_size < 0) {
		err = -errno;
		goto fail;
	}
	if (reg_size == 0) {
		if (ftruncate(g_reg_fd, REGISTRY_SIZE) < 0) {
			err = -errno;
			goto fail;
		}
	} else if ((size_t)reg_size != REGISTRY_SIZE) {
		err = -EBADMSG;
		goto fail;
	}
	struct registry *r = mmap(NULL, REGISTRY_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
				  g_reg_fd, 0);
	if (r == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	if (r->hdr.magic == 0) {
		r->hdr.version = SHMC_LAYOUT_VERSION;
		r->hdr.capacity = SHMC_REG_CAPACITY;
		r->hdr.next_id = 1;
		r->hdr.magic = SHMC_REG_MAGIC;
	}
	if (r->hdr.magic != SHMC_REG_MAGIC || r->hdr.version != SHMC_LAYOUT_VERSION ||
	    r->hdr.capacity != SHMC_REG_CAPACITY) {
		munmap(r, REGISTRY_SIZE);
		err = -EBADMSG;
		goto fail;
	}
	*out = r;
	return 0;
fail:
	flock(g_reg_fd, LOCK_UN);
	return err;
}

static void registry_unlock(struct registry *r)
{
	munmap(r, REGISTRY_SIZE);
	flock(g_reg_fd, LOCK_UN);
}

static void unlink_segments(int32_t id, uint64_t nonce)
{
	char name[96];
	segment_name(name, sizeof name, id, nonce, 'c');
	shm_unlink(name);
	segment_name(name, sizeof name, id, nonce, 'd');
	shm_unlink(name);
}

/* Drop entries whose creator is gone, then unlink any shmchan segment in
 * /dev/shm that no live entry names (left by a creator that died mid-create
 * or before a sweep). Caller holds the registry lock. */
static void registry_sweep(struct registry *r)
{
	for (uint32_t i = 0; i < SHMC_REG_CAPACITY; i++) {
		struct shmc_reg_entry *e = &r->entries[i];
		if (e->state != 1)
			continue;
		if (byte_locked(g_reg_fd, SHMC_REG_LOCK_BASE + i) == 0) {
			unlink_segments(e->id, e->nonce);
			memset(e, 0, sizeof *e);
		}
	}
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		int id;
		unsigned long long nonce;
		char kind, end;
		if (sscanf(de->d_name, "shmchan.%d.%16llx.%c%c", &id, &nonce, &kind, &end) != 3)
			continue;
		bool live = false;
		for (uint32_t i = 0; i < SHMC_REG_CAPACITY && !live; i++)
			live = r->entries[i].state == 1 && r->entries[i].id == id &&
			       r->entries[i].nonce == nonce;
		if (!live) {
			char name[300];
			snprintf(name, sizeof name, "/%s", de->d_name);
			shm_unlink(name);
		}
	}
	closedir(d);
}

static struct shmc_reg_entry *registry_find(struct registry *r, uint64_t key, int32_t id,
					    uint32_t *index)
{
	for (uint32_t i = 0; i < SHMC_REG_CAPACITY; i++) {
		struct shmc_reg_entry *e = &r->entries[i];
		if (e->state != 1)
			continue;
		if ((key && e->key == key) || (!key && e->id == id)) {
			*index = i;
			return e;
		}
	}
	return NULL;
}

/* ---- segments ----------------------------------------------------------- */

static void handle_unmap(struct handle *h)
{
	if (h->ctl && h->ctl != MAP_FAILED)
		munmap(h->ctl, h->ctl_size);
	if (h->dat && h->dat != MAP_FAILED)
		munmap(h->dat, h->dat_size);
	if (h->ctl_fd >= 0)
		close(h->ctl_fd);
	if (h->dat_fd >= 0)
		close(h->dat_fd);
	free(h);
}

static struct handle *handle_new(void)
{
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->ctl_fd = h->dat_fd = -1;
	h->opener_pid = getpid();
	return h;
}

static uint64_t ctl_size_for(uint32_t entries)
{
	return sizeof(struct shmc_ctl_header) +
	       (uint64_t)SHMC_MAX_MEMBERS * sizeof(struct shmc_member) +
	       (uint64_t)entries * sizeof(struct shmc_slot);
}

/* Set the private geometry and the pointers from validated values. */
static void handle_geometry(struct handle *h, uint32_t delivery, uint32_t entries,
			    uint32_t max_msg)
{
	h->delivery = delivery;
	h->ring_entries = entries;
	h->mask = entries - 1;
	h->max_msg = max_msg;
	h->stride = (uint32_t)(((uint64_t)max_msg + SHMC_CACHELINE - 1) &
			       ~(uint64_t)(SHMC_CACHELINE - 1));
	h->max_members = SHMC_MAX_MEMBERS;
	h->ctl_size = ctl_size_for(entries);
	h->dat_size = sizeof(struct shmc_dat_header) + (uint64_t)entries * h->stride;
}

static void handle_pointers(struct handle *h)
{
	h->members = (struct shmc_member *)((uint8_t *)h->ctl + sizeof(struct shmc_ctl_header));
	h->slots = (struct shmc_slot *)((uint8_t *)h->members +
					SHMC_MAX_MEMBERS * sizeof(struct shmc_member));
}

static inline uint8_t *dat_slot(struct handle *h, uint64_t pos)
{
	return (h->dat + sizeof(struct shmc_dat_header) +
					(size_t)(pos & h->mask) * h->stride);
}

/* Create one segment O_EXCL with no access bits, size and map it; the caller
 * initialises it, publishes the version, then fchmods it. */
static int segment_create(const char *name, size_t size, int *fd_out, void **map_out)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		close(fd);
		shm_unlink(name);
		return err;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(fd);
		shm_unlink(name);
		return err;
	}
	*fd_out = fd;
	*map_out = p;
	return 0;
}

/* Open an existing segment; check its real size before mapping. */
static int segment_open(const char *name, bool writable, size_t size, int *fd_out,
			void **map_out)
{
	int fd = shm_open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	off_t real_size = lseek(fd, 0, SEEK_END);
	if (real_size < 0 || (uint64_t)real_size != size) {
		close(fd);
		return -EBADMSG;
	}
	void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err;
	}
	*fd_out = fd;
	*map_out = p;
	return 0;
}

/* ---- members ------------------------------------------------------------ */

static bool member_alive(struct handle *h, uint32_t idx)
{
	/* Our own lock is held by our own descriptor, which F_OFD_GETLK does
	 * not report as a conflict: we are alive by definition. */
	if (h->me && idx == h->member_idx)
		return true;
	return byte_locked(h->ctl_fd, MEMBER_LOCK_BASE + idx) != 0;
}

/* Clear @bits of @m's parked word and take each cleared bit off its header
 * count. Returns the bits this call cleared: a park is cleared exactly once,
 * by a waker, by its owner withdrawing it, or by a reclaimer of the dead. */
static uint32_t unpark_bits(struct handle *h, struct shmc_member *m, uint32_t bits)
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

static void member_release_parks(struct handle *h, struct shmc_member *m)
{
	unpark_bits(h, m, SHMC_WAIT_RECV | SHMC_WAIT_SEND);
}

/* Take a member slot for this handle: a free one, or one whose holder died.
 * Caller holds the registry lock, so attachers do not race each other. */
static int member_join(struct handle *h, uint32_t access)
{
	for (uint32_t i = 0; i < h->max_members; i++) {
		struct shmc_member *m = &h->members[i];
		uint32_t st = load_acquire(&m->state);
		if (st == MEMBER_ACTIVE) {
			if (member_alive(h, i))
				continue;
			/* The holder died: clear what it left parked, then reuse. */
			member_release_parks(h, m);
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
		m->start_time = process_start_time(getpid());
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
static int find_receiver(struct handle *h, uint32_t id)
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

static bool probe_allowed(_Atomic uint64_t *last)
{
	uint64_t now = now_ns();
	if (now - load_relaxed(last) < LIVENESS_PROBE_NS)
		return false;
	store_relaxed(last, now);
	return true;
}

/* Has the receiver a targeted message waits for left the channel? A member
 * still marked ACTIVE is probed (rate-limited); if its process died it is
 * released, so its messages are dropped instead of holding the ring. */
static bool target_gone(struct handle *h, uint32_t target)
{
	int idx = find_receiver(h, target);
	if (idx < 0)
		return true;
	if (!probe_allowed(&h->target_probe_ns) || member_alive(h, (uint32_t)idx))
		return false;
	struct shmc_member *m = &h->members[idx];
	uint32_t st = MEMBER_ACTIVE;
	member_release_parks(h, m);
	cas_seq_cst(&m->state, &st, MEMBER_FREE);
	return true;
}

/* ---- doorbells ---------------------------------------------------------- */

static int doorbell_connect(const char *addr, size_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sa.sun_path[0] = 0; /* abstract namespace: vanishes with its listener */
	memcpy(sa.sun_path + 1, addr, len);
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
	if (connect(fd, (struct sockaddr *)&sa, sl) < 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Write one byte to a process's doorbell. Returns 0 when rung (or already
 * pending), -ECONNREFUSED when nobody listens there any more. */
static int doorbell_ring(const char *addr)
{
	size_t len = strnlen(addr, SHMC_DOORBELL_MAX + 1);
	if (len == 0 || len > SHMC_DOORBELL_MAX || strncmp(addr, DOORBELL_PREFIX, 8) != 0)
		return -EINVAL;
	pthread_mutex_lock(&g_doorbell_lock);
	int ret = -ECONNREFUSED;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct doorbell_conn *c = NULL;
		for (unsigned i = 0; i < DOORBELL_CACHE; i++)
			if (g_doorbell_conns[i].fd >= 0 && strcmp(g_doorbell_conns[i].addr, addr) == 0)
				c = &g_doorbell_conns[i];
		if (!c) {
			int fd = doorbell_connect(addr, len);
			if (fd < 0) {
				ret = fd;
				break;
			}
			c = &g_doorbell_conns[g_doorbell_next++ % DOORBELL_CACHE];
			if (c->fd >= 0)
				close(c->fd);
			c->fd = fd;
			memcpy(c->addr, addr, len + 1);
		}
		ssize_t n = send(c->fd, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == 1 || errno == EAGAIN || errno == EWOULDBLOCK) {
			ret = 0;
			break;
		}
		/* The listener went away (or restarted): reconnect once. */
		close(c->fd);
		c->fd = -1;
		c->addr[0] = 0;
	}
	pthread_mutex_unlock(&g_doorbell_lock);
	return ret;
}

/* ---- wake protocol (see DESIGN.md, "Waiting") --------------------------- */

/* Clear @bit in a parked member and wake it. Returns true if this call
 * cleared the bit (the member now owns a wake), false if it was not parked. */
static bool wake_member(struct handle *h, struct shmc_member *m, uint32_t bit,
			char rung[][SHMC_DOORBELL_MAX + 1], unsigned *nrung, bool *delivered)
{
	if (!unpark_bits(h, m, bit))
		return false;
	/* SYNC: release, paired with the waiter's futex_wait value check. */
	atomic_fetch_add_explicit(&m->wake, 1, memory_order_release);
	int woken = futex_wake(&m->wake);
	char addr[SHMC_DOORBELL_MAX + 1];
	memcpy(addr, m->doorbell, SHMC_DOORBELL_MAX);
	addr[SHMC_DOORBELL_MAX] = 0;
	bool rung_ok = false;
	if (addr[0]) {
		bool seen = false;
		for (unsigned i = 0; i < *nrung && !seen; i++)
			seen = strcmp(rung[i], addr) == 0;
		if (seen) {
			rung_ok = true;
		} else {
			rung_ok = doorbell_ring(addr) == 0;
			if (rung_ok && *nrung < 8)
				memcpy(rung[(*nrung)++], addr, sizeof addr);
		}
	}
	/* A futex sleeper or a listening doorbell took the wake. Otherwise the
	 * member is between park() and its sleep (it will see the bumped word)
	 * or dead: ask the kernel which. */
	*delivered = woken > 0 || rung_ok || member_alive(h, (uint32_t)(m - h->members));
	return true;
}

/* After publishing a message: wake the receivers it concerns. */
static void wake_receivers(struct handle *h, uint32_t target, int target_idx)
{
	char rung[8][SHMC_DOORBELL_MAX + 1];
	unsigned nrung = 0;
	bool delivered;
	if (target) {
		wake_member(h, &h->members[target_idx], SHMC_WAIT_RECV, rung, &nrung, &delivered);
		return;
	}
	if (h->delivery == SHMC_BROADCAST) {
		for (uint32_t i = 0; i < h->max_members; i++)
			if (load_relaxed(&h->members[i].parked) & SHMC_WAIT_RECV)
				wake_member(h, &h->members[i], SHMC_WAIT_RECV, rung, &nrung, &delivered);
		return;
	}
	/* Unicast and multicast: one wake, rotating over the parked receivers so
	 * work spreads; a wake that reached a dead member is passed on. */
	uint32_t start = atomic_fetch_add_explicit(&h->ctl->rr_next, 1, memory_order_relaxed);
	for (uint32_t k = 0; k < h->max_members; k++) {
		uint32_t i = (start + k) % h->max_members;
		struct shmc_member *m = &h->members[i];
		if (!(load_relaxed(&m->parked) & SHMC_WAIT_RECV))
			continue;
		if (wake_member(h, m, SHMC_WAIT_RECV, rung, &nrung, &delivered) && delivered) {
			store_relaxed(&h->ctl->rr_next, i + 1);
			return;
		}
	}
}

/* After freeing room: wake every parked sender (they race for the room). */
static void wake_senders(struct handle *h)
{
	char rung[8][SHMC_DOORBELL_MAX + 1];
	unsigned nrung = 0;
	bool delivered;
	for (uint32_t i = 0; i < h->max_members; i++)
		if (load_relaxed(&h->members[i].parked) & SHMC_WAIT_SEND)
			wake_member(h, &h->members[i], SHMC_WAIT_SEND, rung, &nrung, &delivered);
}

/* Callers have just made their change visible with a seq_cst store (the
 * READY publish, a freed slot, a moved cursor, a member leaving). */
static inline void after_publish(struct handle *h, uint32_t target, int target_idx)
{
	/* SYNC: seq_cst load after the caller's seq_cst store, paired with
	 * do_park's seq_cst RMWs and full barrier before its re-check of the
	 * ring (Dekker): either the parker sees the message or we see it parked. */
	if (load_seq_cst(&h->ctl->recv_parked))
		wake_receivers(h, target, target_idx);
}

static inline void after_consume(struct handle *h)
{
	/* SYNC: as after_publish, for room and send_parked. */
	if (load_seq_cst(&h->ctl->send_parked))
		wake_senders(h);
}

/* ---- sending ------------------------------------------------------------ */

/* Gate for broadcast: the slowest live receiver's cursor (wrap-safe min),
 * or @t when there is none. Dead receivers found gating are released. */
static uint64_t broadcast_gate(struct handle *h, uint64_t t, bool probe)
{
	uint64_t gate = t;
	for (uint32_t i = 0; i < h->max_members; i++) {
		struct shmc_member *m = &h->members[i];
		/* SYNC: seq_cst, paired with member_join's seq_cst state store. */
		if (load_seq_cst(&m->state) != MEMBER_ACTIVE)
			continue;
		uint32_t a = load_relaxed(&m->access);
		if (!(a & SHMC_RECV) || (a & MEMBER_OWNER))
			continue;
		/* SYNC: acquire, paired with the receiver's release cursor store
		 * after it copied the message out. */
		uint64_t c = load_acquire(&m->cursor);
		uint64_t lag = t - c;
		if ((int64_t)lag <= 0 || lag > h->ring_entries)
			continue; /* ahead of t (racing join) or corrupt: not a gate */
		if (probe && lag == h->ring_entries && !member_alive(h, i)) {
			/* The slowest receiver is dead: it stops gating. */
			uint32_t st = MEMBER_ACTIVE;
			member_release_parks(h, m);
			cas_seq_cst(&m->state, &st, MEMBER_FREE);
			continue;
		}
		if (t - c > t - gate)
			gate = c;
	}
	return gate;
}

static void advance_head(struct handle *h);

/* Unicast/multicast, ring full: the oldest message waits for a target that
 * has left. The producer drops it itself (no receiver may be scanning). */
static bool drop_if_target_gone(struct handle *h, uint64_t pos, uint64_t q)
{
	struct shmc_slot *s = &h->slots[pos & h->mask];
	uint32_t tg = load_relaxed(&s->target);
	if (!tg || !target_gone(h, tg))
		return false;
	/* SYNC: acq_rel CAS, as a consumer's take in queue_take. */
	if (!cas_acq_rel(&s->seq, &q, SEQ(pos, SLOT_TAKEN)))
		return true; /* somebody else took it: retry anyway */
	store_seq_cst(&s->seq, SEQ(pos + h->ring_entries, SLOT_FREE));
	fetch_add_relaxed(&h->ctl->dropped, 1);
	advance_head(h);
	return true;
}

/* Is slot @t free for a producer at position t? Broadcast also needs the
 * gate (checked by the caller). */
static inline bool slot_free_for(struct handle *h, uint64_t t, uint64_t q)
{
	const uint64_t n = h->ring_entries;
	if (h->delivery == SHMC_BROADCAST)
		return q == SEQ(t, SLOT_FREE) || q == SEQ(t - n, SLOT_READY) ||
		       q == SEQ(t - n, SLOT_TAKEN);
	return q == SEQ(t, SLOT_FREE);
}

/* Broadcast: how many positions from @t the gate allows (0 when full). */
static uint64_t broadcast_room(struct handle *h, uint64_t t, uint64_t want)
{
	const uint64_t n = h->ring_entries;
	uint64_t gate = load_relaxed(&h->gate);
	if (t + want - 1 - gate < n)
		return want;
	gate = broadcast_gate(h, t, false);
	if (t - gate >= n && probe_allowed(&h->gate_probe_ns))
		gate = broadcast_gate(h, t, true);
	store_relaxed(&h->gate, gate);
	if (t - gate >= n)
		return 0;
	uint64_t room = n - (t - gate);
	return room < want ? room : want;
}

/* Claim up to @want consecutive positions with one CAS of tail. On success
 * *pos_out is the first and the count is returned (>= 1). */
static bool recover_stalled(struct handle *h, uint64_t pos, uint64_t q);

/* Unicast/multicast, ring full: the oldest slot was taken (READY -> TAKEN)
 * by a consumer that died before freeing it. Its message is lost (it had
 * been taken); the slot comes back. Rate-limited probe. */
static bool free_if_taker_gone(struct handle *h, uint64_t pos, uint64_t q)
{
	if (!probe_allowed(&h->target_probe_ns))
		return false;
	for (uint32_t i = 0; i < h->max_members; i++)
		if (load_acquire(&h->members[i].state) == MEMBER_ACTIVE &&
		    load_relaxed(&h->members[i].taking) == pos + 1 && member_alive(h, i))
			return false;
	if (!cas_acq_rel(&h->slots[pos & h->mask].seq, &q, SEQ(pos + h->ring_entries, SLOT_FREE)))
		return true;
	fetch_add_relaxed(&h->ctl->dropped, 1);
	advance_head(h);
	return true;
}

static int claim_positions(struct handle *h, uint32_t want, uint64_t *pos_out)
{
	struct shmc_ctl_header *c = h->ctl;
	const uint64_t n = h->ring_entries;
	if (want > n)
		want = (uint32_t)n;
	uint64_t t = load_relaxed(&c->tail);
	for (uint32_t attempt = 0; attempt < (1u << 20); attempt++) {
		struct shmc_slot *s = &h->slots[t & h->mask];
		/* SYNC: acquire, paired with the consumer's release that freed the
		 * slot (unicast) or the producer's READY publish (broadcast). */
		uint64_t q = load_acquire(&s->seq);
		if (slot_free_for(h, t, q)) {
			uint64_t got = 1;
			while (got < want &&
			       slot_free_for(h, t + got, load_acquire(&h->slots[(t + got) & h->mask].seq)))
				got++;
			if (h->delivery == SHMC_BROADCAST && !(got = broadcast_room(h, t, got)))
				return -ENOBUFS;
			uint64_t prev = load_relaxed(&h->me->claim);
			uint32_t prev_n = load_relaxed(&h->me->claim_n);
			store_relaxed(&h->me->claim, t);
			store_relaxed(&h->me->claim_n, (uint32_t)got);
			/* SYNC: seq_cst, paired with member_join (gate) and with other
			 * producers' CAS. */
			if (cas_seq_cst(&c->tail, &t, t + got)) {
				*pos_out = t;
				return (int)got;
			}
			/* Lost: do not go on naming positions another producer owns. */
			store_relaxed(&h->me->claim_n, prev_n);
			store_relaxed(&h->me->claim, prev);
			continue; /* t reloaded by the failed CAS */
		}
		if ((int64_t)(q - SEQ(t, SLOT_FREE)) < 0) {
			/* The slot still holds the previous lap: full, unless tail moved,
			 * or unless that message waits for a target that is gone. */
			uint64_t t2 = load_relaxed(&c->tail);
			if (t2 == t && h->delivery != SHMC_BROADCAST && q == SEQ(t - n, SLOT_READY) &&
			    drop_if_target_gone(h, t - n, q))
				continue;
			if (t2 == t && h->delivery != SHMC_BROADCAST && q == SEQ(t - n, SLOT_TAKEN) &&
			    free_if_taker_gone(h, t - n, q))
				continue;
			if (t2 == t && h->delivery == SHMC_BROADCAST &&
			    (q == SEQ(t - n, SLOT_WRITING) || q == SEQ(t - n, SLOT_FREE)) &&
			    recover_stalled(h, t - n, q))
				continue;
			if (t2 == t)
				return -ENOBUFS;
			t = t2;
			continue;
		}
		t = load_relaxed(&c->tail); /* another producer got ahead */
	}
	return -ENOBUFS;
}

static int check_send(struct handle *h, uint32_t target, int *tidx)
{
	if (!(h->access & SHMC_SEND))
		return -EACCES;
	*tidx = -1;
	if (target) {
		*tidx = find_receiver(h, target);
		if (*tidx < 0)
			return -ENOENT;
	}
	return 0;
}

/* SYNC: acquire/release on the flag: one thread's claim record and publish
 * come before the next thread's claim. */
static inline void send_lock(struct handle *h)
{
	while (atomic_flag_test_and_set_explicit(&h->send_busy, memory_order_acquire))
		sched_yield();
}

static inline void send_unlock(struct handle *h)
{
	atomic_flag_clear_explicit(&h->send_busy, memory_order_release);
}

/* Fill a claimed slot and publish it. */
/* @batched: more publishes follow, and the caller issues one full barrier
 * after the last (instead of a seq_cst store each). */
static inline void publish(struct handle *h, uint64_t t, const void *buf, uint32_t len,
			   uint32_t target, bool batched)
{
	struct shmc_slot *s = &h->slots[t & h->mask];
	store_relaxed(&s->target, target);
	store_relaxed(&s->writer, h->member_idx + 1);
	store_relaxed(&s->seq, SEQ(t, SLOT_WRITING));
	store_relaxed(&s->len, len);
	if (len)
		memcpy(dat_slot(h, t), buf, len);
	/* SYNC: release (as part of seq_cst), paired with the consumers'
	 * acquire load of seq: length, payload and target are visible before
	 * READY is. seq_cst for after_publish's Dekker (a batch fences once). */
	if (batched)
		store_release(&s->seq, SEQ(t, SLOT_READY));
	else
		store_seq_cst(&s->seq, SEQ(t, SLOT_READY));
}

static int do_try_send(struct handle *h, const void *buf, uint32_t len, uint32_t target)
{
	int tidx;
	int err = check_send(h, target, &tidx);
	if (err < 0)
		return err;
	if (len > h->max_msg)
		return -EMSGSIZE;
	if (len && !buf)
		return -EFAULT;
	uint64_t t;
	send_lock(h);
	err = claim_positions(h, 1, &t);
	if (err < 0) {
		send_unlock(h);
		return err;
	}
	publish(h, t, buf, len, target, false);
	send_unlock(h);
	after_publish(h, target, tidx);
	return (int)len;
}

/* Send up to @count messages packed in @buf: one tail CAS and one wake check
 * per run of consecutive free slots. */
static int do_try_send_many(struct handle *h, const uint8_t *buf, const uint32_t *lens,
			    uint32_t count, uint32_t target)
{
	int tidx;
	int err = check_send(h, target, &tidx);
	if (err < 0)
		return err;
	/* Validate every length first: nothing is sent past a bad one. */
	uint32_t valid = 0;
	for (; valid < count && valid < INT32_MAX; valid++)
		if (lens[valid] > h->max_msg)
			break;
	if (valid == 0)
		return count ? -EMSGSIZE : 0;
	uint32_t sent = 0;
	send_lock(h);
	while (sent < valid) {
		uint64_t t;
		int got = claim_positions(h, valid - sent, &t);
		if (got < 0) {
			if (sent)
				break;
			send_unlock(h);
			return got;
		}
		for (int i = 0; i < got; i++) {
			publish(h, t + (uint64_t)i, buf, lens[sent], target, true);
			buf += lens[sent++];
		}
	}
	send_unlock(h);
	/* SYNC: full barrier after the batch's release publishes, for
	 * after_publish's Dekker (in place of a seq_cst store each). */
	smp_mb();
	after_publish(h, target, tidx);
	return (int)sent;
}

/* ---- receiving ---------------------------------------------------------- */

static uint32_t copy_out(struct handle *h, uint64_t pos, void *buf, uint32_t cap)
{
	struct shmc_slot *s = &h->slots[pos & h->mask];
	/* Read the length once and bound it by our private max_msg. */
	uint32_t len = load_relaxed(&s->len);
	if (len > h->max_msg)
		len = h->max_msg;
	uint32_t n = len < cap ? len : cap;
	if (n)
		memcpy(buf, dat_slot(h, pos), n);
	return n;
}

/* A writer claimed @pos but has not published it. If that writer is dead,
 * turn the slot into a skipped one (never delivered as data). Rate-limited.
 * Returns true if the slot was skipped. */
static bool recover_stalled(struct handle *h, uint64_t pos, uint64_t q)
{
	uint64_t now = now_coarse_ns();
	if (load_relaxed(&h->stall_pos) != pos) {
		store_relaxed(&h->stall_pos, pos);
		store_relaxed(&h->stall_probe_ns, now);
		return false;
	}
	if (now - load_relaxed(&h->stall_probe_ns) < LIVENESS_PROBE_NS)
		return false;
	store_relaxed(&h->stall_probe_ns, now);
	uint64_t tail = load_acquire(&h->ctl->tail);
	if ((int64_t)(tail - pos) <= 0)
		return false; /* not claimed yet: simply empty */
	bool writer_alive = false;
	if (q == SEQ(pos, SLOT_WRITING)) {
		uint32_t w = load_relaxed(&h->slots[pos & h->mask].writer);
		/* The index alone is not an identity (the slot of a dead writer
		 * is reused by the next attacher): its claim must cover pos. */
		writer_alive = w >= 1 && w <= h->max_members &&
			       load_acquire(&h->members[w - 1].state) == MEMBER_ACTIVE &&
			       pos - load_relaxed(&h->members[w - 1].claim) <
				       load_relaxed(&h->members[w - 1].claim_n) &&
			       member_alive(h, w - 1);
	} else {
		/* Claimed (tail moved past) but WRITING not yet stored: the claimer
		 * recorded its claimed range in its member first. */
		for (uint32_t i = 0; i < h->max_members && !writer_alive; i++)
			writer_alive = load_acquire(&h->members[i].state) == MEMBER_ACTIVE &&
				       pos - load_relaxed(&h->members[i].claim) <
					       load_relaxed(&h->members[i].claim_n) &&
				       member_alive(h, i);
	}
	if (writer_alive)
		return false;
	uint64_t dead = h->delivery == SHMC_BROADCAST ? SEQ(pos, SLOT_TAKEN)
						      : SEQ(pos + h->ring_entries, SLOT_FREE);
	if (!cas_seq_cst(&h->slots[pos & h->mask].seq, &q, dead))
		return false;
	fetch_add_relaxed(&h->ctl->skipped, 1);
	return true;
}

/* Move head over the consumed prefix. head is only where scans start:
 * every position below it is consumed (a consumed slot stays consumed), and
 * a lagging head costs scanning, never correctness, as long as it lags by
 * less than ring_entries (queue_take keeps it so). */
static void advance_head(struct handle *h)
{
	const uint64_t n = h->ring_entries;
	uint64_t hd = load_acquire(&h->ctl->head);
	uint64_t e = hd;
	/* SYNC: acquire, paired with the consumers' release of FREE. */
	while (e - hd < n && (int64_t)(load_acquire(&h->slots[e & h->mask].seq) -
				       SEQ(e + n, SLOT_FREE)) >= 0)
		e++;
	if (e != hd)
		cas_seq_cst(&h->ctl->head, &hd, e); /* lost the race: another moved it */
}

static inline uint64_t head_lag(struct handle *h)
{
	return h->ring_entries < HEAD_LAG ? h->ring_entries : HEAD_LAG;
}

/* How a take runs: a real take, a peek (report whether a message is there;
 * may drop messages whose target left), or a take whose head advance and
 * wake check the caller does once for a batch. */
enum take_mode { TAKE_NOW, TAKE_PEEK, TAKE_DEFER };

/* Unicast and multicast: scan from head for the first published message this
 * member may take (untargeted or targeted at it); claim it with a CAS. The
 * scan does not read tail (the producers' hot line): each slot's seq says
 * whether it is published, and the scan stops at the first that is not. */
static int queue_take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode,
		      uint64_t *resume)
{
	struct shmc_ctl_header *c = h->ctl;
	const uint64_t n = h->ring_entries;
	const bool peek = mode == TAKE_PEEK;
	bool head_moved = false;
again:;
	const uint64_t head = load_acquire(&c->head);
	uint64_t hd = head;
	/* A batch (TAKE_DEFER) resumes after its previous take instead of
	 * rescanning from head. */
	if (resume && *resume - hd < n)
		hd = *resume;
	bool prefix_consumed = hd == head; /* every slot in [head, p) consumed */
	for (uint64_t i = 0; i < n; i++) { /* bounded, whatever shared memory says */
		uint64_t p = hd + i;
		struct shmc_slot *s = &h->slots[p & h->mask];
		/* SYNC: acquire, paired with the producer's release of READY. */
		uint64_t q = load_acquire(&s->seq);
		if (q == SEQ(p, SLOT_READY)) {
			uint32_t tg = load_relaxed(&s->target);
			bool drop = false;
			if (tg && tg != h->member_id) {
				if (!target_gone(h, tg)) {
					prefix_consumed = false;
					continue; /* waits for its target */
				}
				drop = true;      /* its target left: nobody may have it */
			}
			if (peek && !drop)
				return 1;
			/* Record what we take first (pos + 1; 0: nothing): a producer
			 * finding the slot TAKEN by nobody alive frees it.
			 * SYNC: relaxed; the CAS below releases it with TAKEN, which
			 * free_if_taker_gone acquires before reading it. */
			store_relaxed(&h->me->taking, p + 1);
			/* SYNC: acq_rel CAS: exactly one consumer takes the slot. */
			if (!cas_acq_rel(&s->seq, &q, SEQ(p, SLOT_TAKEN))) {
				prefix_consumed = false;
				continue;
			}
			uint32_t got = drop ? 0 : copy_out(h, p, buf, cap);
			/* SYNC: release (as part of seq_cst), paired with the producers'
			 * acquire of seq: the copy is done before the slot is reused.
			 * seq_cst for after_consume's Dekker (a batch fences once). */
			if (mode == TAKE_DEFER && !drop)
				store_release(&s->seq, SEQ(p + n, SLOT_FREE));
			else
				store_seq_cst(&s->seq, SEQ(p + n, SLOT_FREE));
			store_relaxed(&h->me->taking, 0);
			/* head is a hint: move it only once it lags by HEAD_LAG (or
			 * the whole ring, if smaller), so a take usually costs no
			 * write to the shared head line. */
			if (prefix_consumed && p + 1 - head >= head_lag(h))
				advance_head(h);
			if (drop) {
				fetch_add_relaxed(&c->dropped, 1);
				after_consume(h);
				continue;
			}
			if (mode != TAKE_DEFER)
				after_consume(h);
			if (resume)
				*resume = p + 1;
			return (int)got;
		}
		if (q == SEQ(p, SLOT_TAKEN)) {
			prefix_consumed = false; /* being copied out: not free yet */
			continue;
		}
		if ((int64_t)(q - SEQ(p + n, SLOT_FREE)) >= 0) {
			/* Consumed. A head lagging this far is moved now, and the
			 * scan restarts from it: messages may lie past our bound. */
			if (prefix_consumed && p + 1 - head >= head_lag(h) && !head_moved) {
				advance_head(h);
				head_moved = true;
				goto again;
			}
			continue;
		}
		/* Not yet published (FREE or WRITING for p): order stops here,
		 * unless its writer died. A FREE slot is usually just the end of
		 * the queue: only the slow paths (peek, used before sleeping) look
		 * whether a producer claimed it and died before marking it. */
		if ((q == SEQ(p, SLOT_WRITING) || peek) && recover_stalled(h, p, q))
			continue;
		break;
	}
	return peek ? 0 : -EAGAIN;
}

/* Broadcast: read at this member's own cursor; slots are never changed by
 * receivers, the cursor is what the producers' gate reads. */
static int broadcast_take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode)
{
	const bool peek = mode == TAKE_PEEK;
	struct shmc_member *m = h->me;
	const uint64_t n = h->ring_entries;
	uint64_t cur = load_relaxed(&m->cursor);
	for (uint64_t i = 0; i < n; i++) {
		struct shmc_slot *s = &h->slots[cur & h->mask];
		/* SYNC: acquire, paired with the producer's release of READY. */
		uint64_t q = load_acquire(&s->seq);
		if (q == SEQ(cur, SLOT_READY)) {
			uint32_t tg = load_relaxed(&s->target);
			bool mine = !tg || tg == h->member_id;
			if (peek && mine)
				return 1;
			uint32_t got = mine ? copy_out(h, cur, buf, cap) : 0;
			/* SYNC: release (as part of seq_cst), paired with
			 * broadcast_gate's acquire: the copy is finished before the
			 * producer may reuse the slot. seq_cst for after_consume. */
			store_seq_cst(&m->cursor, cur + 1);
			if (mode != TAKE_DEFER || !mine)
				after_consume(h);
			if (mine)
				return (int)got;
			cur++;
			continue;
		}
		if (q == SEQ(cur, SLOT_TAKEN) || (int64_t)(q - SEQ(cur + 1, SLOT_FREE)) >= 0) {
			/* Skipped slot, or overwritten (only a corrupt peer or a
			 * receiver wrongly released can see this): move on. */
			store_seq_cst(&m->cursor, cur + 1);
			cur++;
			continue;
		}
		if ((q == SEQ(cur, SLOT_WRITING) || peek) && recover_stalled(h, cur, q))
			continue;
		break;
	}
	return peek ? 0 : -EAGAIN;
}

/* SYNC: acquire/release on the flag orders one thread's cursor or `taking`
 * store before the next thread's load. */
static inline void recv_lock(struct handle *h)
{
	while (atomic_flag_test_and_set_explicit(&h->recv_busy, memory_order_acquire))
		sched_yield();
}

static inline void recv_unlock(struct handle *h)
{
	atomic_flag_clear_explicit(&h->recv_busy, memory_order_release);
}

/* One take (or peek) under this handle's receive turn. */
static int take(struct handle *h, void *buf, uint32_t cap, enum take_mode mode)
{
	recv_lock(h);
	int r = h->delivery == SHMC_BROADCAST ? broadcast_take(h, buf, cap, mode)
					      : queue_take(h, buf, cap, mode, NULL);
	recv_unlock(h);
	return r;
}

static int do_try_recv(struct handle *h, void *buf, uint32_t cap)
{
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	if (cap && !buf)
		return -EFAULT;
	return take(h, buf, cap, TAKE_NOW);
}

static int has_message(struct handle *h)
{
	return take(h, NULL, 0, TAKE_PEEK);
}

static int has_room(struct handle *h)
{
	uint64_t t = load_acquire(&h->ctl->tail);
	uint64_t q = load_acquire(&h->slots[t & h->mask].seq);
	uint64_t n = h->ring_entries;
	if (!slot_free_for(h, t, q))
		return 0; /* the same test as claim_positions */
	if (h->delivery != SHMC_BROADCAST)
		return 1;
	return t - broadcast_gate(h, t, false) < n;
}

/* ---- parking ------------------------------------------------------------ */

static bool clear_park(struct handle *h, uint32_t what);

static int do_park(struct handle *h, uint32_t what)
{
	struct shmc_member *m = h->me;
	uint32_t len = load_acquire(&g_doorbell_len);
	if (len) {
		char addr[SHMC_DOORBELL_MAX] = { 0 };
		memcpy(addr, g_doorbell, len);
		if (memcmp(m->doorbell, addr, sizeof addr) != 0)
			memcpy(m->doorbell, addr, sizeof addr);
	}
	/* SYNC: seq_cst RMWs, paired with after_publish/after_consume's full
	 * barrier: set the bit, then count it, then re-check the ring. */
	uint32_t old = fetch_or_seq_cst(&m->parked, what);
	if (!(old & what))
		fetch_add_seq_cst(what == SHMC_WAIT_RECV ? &h->ctl->recv_parked
							 : &h->ctl->send_parked, 1);
	/* SYNC: full barrier: the re-check's loads come after the count is
	 * visible (the loads below are acquire, not seq_cst). */
	smp_mb();
	int ready = what == SHMC_WAIT_RECV ? has_message(h) : has_room(h);
	if (!ready)
		return 0;
	clear_park(h, what);
	return 1;
}

/* Clear this member's @what bit if still set; true if this call cleared it,
 * false if a waker already had (and so delivered a wake). */
static bool clear_park(struct handle *h, uint32_t what)
{
	return unpark_bits(h, h->me, what) != 0;
}

static void do_unpark(struct handle *h, uint32_t what)
{
	if (clear_park(h, what))
		return;
	/* A waker cleared the bit: this member was handed a wake it will not
	 * use. A wake-one (unicast/multicast) must be passed on. */
	if (what == SHMC_WAIT_RECV && h->delivery != SHMC_BROADCAST && has_message(h)) {
		smp_mb();
		if (load_relaxed(&h->ctl->recv_parked))
			wake_receivers(h, 0, -1);
	}
}

/* Wait until @what may succeed, or until the deadline. Spin first (bounded),
 * then sleep on this member's futex word. Returns 0 to retry, or -ETIMEDOUT. */
static int wait_for(struct handle *h, uint32_t what, uint64_t deadline)
{
	if (deadline != UINT64_MAX && now_ns() >= deadline)
		return -ETIMEDOUT; /* even if the spin below would say "ready" */
	for (int i = 0; i < SPIN_ITERATIONS; i++) {
		if ((what == SHMC_WAIT_RECV ? has_message(h) : has_room(h)))
			return 0;
		cpu_relax();
	}
	/* SYNC: acquire, paired with wake_member's release increment. Read
	 * before parking, so a wake between park and sleep is not lost. */
	uint32_t w = load_acquire(&h->me->wake);
	if (do_park(h, what))
		return 0;
	int64_t left = -1;
	if (deadline != UINT64_MAX) {
		uint64_t now = now_ns();
		if (now >= deadline) {
			do_unpark(h, what);
			return -ETIMEDOUT;
		}
		left = (int64_t)(deadline - now);
	}
	/* A dead writer or receiver is only noticed by probing: sleep in
	 * bounded steps so recovery runs even with no further sends. */
	if (left < 0 || left > 100000000)
		left = 100000000;
	futex_wait(&h->me->wake, w, left);
	/* Woken, timed out or spurious: withdraw the park if still there. No
	 * wake is passed on: the caller retries at once, and a message it then
	 * misses was taken by another receiver. */
	clear_park(h, what);
	return 0;
}

static uint64_t deadline_from(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return UINT64_MAX;
	return now_ns() + (uint64_t)timeout_ns;
}

/* ---- public API --------------------------------------------------------- */

SHMC_API int shmc__test_start_position(uint64_t pos)
{
	g_start_position = pos;
	return 0;
}

SHMC_API int shmc_version(void)
{
	return (0 << 16) | (2 << 8) | 0;
}

SHMC_API int shmc_create(uint64_t key, uint32_t delivery, uint32_t ring_entries,
			 uint32_t max_msg_size, uint32_t mode, uint32_t flags)
{
	pthread_once(&g_once, register_atfork);
	if (key == 0 || delivery > SHMC_MULTICAST || !is_power_of_two(ring_entries) ||
	    ring_entries > SHMC_MAX_RING_ENTRIES || max_msg_size == 0 ||
	    max_msg_size > SHMC_MAX_MESSAGE_SIZE || (mode & ~0666u) || (flags & ~SHMC_F_PRIVATE))
		return -EINVAL;
	struct handle *h = handle_new();
	if (!h)
		return -ENOMEM;
	handle_geometry(h, delivery, ring_entries, max_msg_size);
	if (h->dat_size > SHMC_MAX_REGION) {
		free(h);
		return -EINVAL;
	}
	h->owner = true;
	h->key = key;
	h->mode = mode;
	h->flags = flags;
	h->access = check_permission(geteuid(), getegid(), mode, flags, SHMC_SEND) == 0 ? SHMC_SEND : 0;

	pthread_mutex_lock(&g_lock);
	struct registry *r;
	int err = registry_lock(&r);
	if (err < 0) {
		pthread_mutex_unlock(&g_lock);
		free(h);
		return err;
	}
	registry_sweep(r);
	uint32_t idx;
	char cname[96], dname[96];
	bool created = false;
	if (registry_find(r, key, 0, &idx)) {
		err = -EEXIST;
		goto out;
	}
	for (idx = 0; idx < SHMC_REG_CAPACITY && r->entries[idx].state; idx++)
		;
	if (idx == SHMC_REG_CAPACITY) {
		err = -ENOSPC;
		goto out;
	}
	/* A channel id unique among live channels. */
	int32_t id = 0;
	for (uint32_t tries = 0; tries <= SHMC_REG_CAPACITY && !id; tries++) {
		uint32_t cand = r->hdr.next_id;
		if (cand == 0 || cand > INT32_MAX)
			cand = 1;
		r->hdr.next_id = cand + 1;
		uint32_t dummy;
		if (!registry_find(r, 0, (int32_t)cand, &dummy))
			id = (int32_t)cand;
	}
	uint64_t nonce;
	if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
		nonce = now_ns() ^ ((uint64_t)getpid() << 32);
	h->channel_id = id;
	h->nonce = nonce;
	segment_name(cname, sizeof cname, id, nonce, 'c');
	segment_name(dname, sizeof dname, id, nonce, 'd');

	/* Create both segments O_EXCL with mode 0, initialise, publish the
	 * version last, then set the final modes. */
	void *cmap, *dmap;
	err = segment_create(cname, h->ctl_size, &h->ctl_fd, &cmap);
	if (err < 0)
		goto out;
	h->ctl = cmap;
	err = segment_create(dname, h->dat_size, &h->dat_fd, &dmap);
	if (err < 0) {
		shm_unlink(cname);
		goto out;
	}
	h->dat = dmap;
	created = true;
	handle_pointers(h);

	struct shmc_ctl_header *c = h->ctl;
	c->magic = SHMC_CTL_MAGIC;
	c->header_size = sizeof *c;
	c->delivery = delivery;
	c->ring_entries = ring_entries;
	c->max_msg_size = max_msg_size;
	c->slot_stride = h->stride;
	c->flags = flags;
	c->mode = mode;
	c->owner_uid = geteuid();
	c->owner_gid = getegid();
	c->channel_id = id;
	c->key = key;
	c->nonce = nonce;
	c->max_members = SHMC_MAX_MEMBERS;
	c->members_offset = sizeof *c;
	c->slots_offset = (uint32_t)(sizeof *c + SHMC_MAX_MEMBERS * sizeof(struct shmc_member));
	c->ctl_size = h->ctl_size;
	c->dat_size = h->dat_size;
	uint64_t start = g_start_position;
	store_relaxed(&c->tail, start);
	store_relaxed(&c->head, start);
	store_relaxed(&c->next_member_id, 1);
	for (uint64_t i = 0; i < ring_entries; i++)
		store_relaxed(&h->slots[(start + i) & h->mask].seq, SEQ(start + i, SLOT_FREE));

	struct shmc_dat_header *dh = (struct shmc_dat_header *)h->dat;
	dh->magic = SHMC_DAT_MAGIC;
	dh->ring_entries = ring_entries;
	dh->slot_stride = h->stride;
	dh->nonce = nonce;
	dh->dat_size = h->dat_size;
	/* SYNC: release, paired with the opener's acquire of version. */
	store_release(&dh->version, SHMC_LAYOUT_VERSION);
	store_release(&c->version, SHMC_LAYOUT_VERSION);
	if (fchmod(h->ctl_fd, ctl_file_mode(mode, flags)) < 0 ||
	    fchmod(h->dat_fd, dat_file_mode(mode, flags)) < 0) {
		err = -errno;
		goto out;
	}
	err = member_join(h, h->access | MEMBER_OWNER);
	if (err < 0)
		goto out;

	/* Liveness of the creator: a lock byte of the registry. */
	err = lock_byte_process(g_reg_fd, SHMC_REG_LOCK_BASE + idx, F_WRLCK);
	if (err < 0)
		goto out;
	h->creator_locked = true;
	struct shmc_reg_entry *e = &r->entries[idx];
	e->id = id;
	e->key = key;
	e->nonce = nonce;
	e->uid = geteuid();
	e->gid = getegid();
	e->mode = mode;
	e->flags = flags;
	e->delivery = delivery;
	e->creator_pid = (uint32_t)getpid();
	e->creator_start = process_start_time(getpid());
	e->state = 1; /* published last; readers hold the flock */
	h->reg_index = idx;
	err = install(h);
	if (err < 0) {
		memset(e, 0, sizeof *e);
		goto out;
	}
out:
	if (err < 0 && created) {
		shm_unlink(cname);
		shm_unlink(dname);
	}
	registry_unlock(r);
	pthread_mutex_unlock(&g_lock);
	if (err < 0)
		handle_unmap(h);
	return err;
}

static int attach(uint64_t key, int32_t id, uint32_t access)
{
	pthread_once(&g_once, register_atfork);
	if (access == 0 || (access & ~SHMC_BOTH))
		return -EINVAL;
	struct handle *h = handle_new();
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&g_lock);
	struct registry *r;
	int err = registry_lock(&r);
	if (err < 0) {
		pthread_mutex_unlock(&g_lock);
		free(h);
		return err;
	}
	registry_sweep(r);
	uint32_t idx;
	struct shmc_reg_entry *e = registry_find(r, key, id, &idx);
	if (!e) {
		err = -ENOENT;
		goto out;
	}
	/* Copy the entry once; validate what we use. */
	struct shmc_reg_entry ent = *e;
	err = check_permission(ent.uid, ent.gid, ent.mode & 0666u, ent.flags, access);
	if (err < 0)
		goto out;
	char name[96];
	void *cmap, *dmap;
	segment_name(name, sizeof name, ent.id, ent.nonce, 'c');
	/* The control header first: its geometry tells the sizes to expect. */
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		err = errno == ENOENT ? -ENOENT : -errno;
		goto out;
	}
	struct shmc_ctl_header hdr;
	ssize_t got = pread(fd, &hdr, sizeof hdr, 0);
	close(fd);
	if (got != (ssize_t)sizeof hdr || hdr.magic != SHMC_CTL_MAGIC ||
	    hdr.version != SHMC_LAYOUT_VERSION || hdr.header_size != sizeof hdr ||
	    hdr.delivery > SHMC_MULTICAST || !is_power_of_two(hdr.ring_entries) ||
	    hdr.ring_entries > SHMC_MAX_RING_ENTRIES || hdr.max_msg_size == 0 ||
	    hdr.max_msg_size > SHMC_MAX_MESSAGE_SIZE || hdr.nonce != ent.nonce ||
	    hdr.channel_id != ent.id || hdr.key != ent.key || hdr.delivery != ent.delivery ||
	    hdr.max_members != SHMC_MAX_MEMBERS) {
		err = -EBADMSG;
		goto out;
	}
	handle_geometry(h, hdr.delivery, hdr.ring_entries, hdr.max_msg_size);
	if (hdr.slot_stride != h->stride || hdr.ctl_size != h->ctl_size ||
	    hdr.dat_size != h->dat_size || h->dat_size > SHMC_MAX_REGION) {
		err = -EBADMSG;
		goto out;
	}
	err = segment_open(name, true, h->ctl_size, &h->ctl_fd, &cmap);
	if (err < 0)
		goto out;
	h->ctl = cmap;
	segment_name(name, sizeof name, ent.id, ent.nonce, 'd');
	err = segment_open(name, access & SHMC_SEND, h->dat_size, &h->dat_fd, &dmap);
	if (err < 0)
		goto out;
	h->dat = dmap;
	struct shmc_dat_header *dh = (struct shmc_dat_header *)h->dat;
	if (dh->magic != SHMC_DAT_MAGIC || load_acquire(&dh->version) != SHMC_LAYOUT_VERSION ||
	    dh->nonce != ent.nonce || dh->slot_stride != h->stride ||
	    dh->ring_entries != h->ring_entries) {
		err = -EBADMSG;
		goto out;
	}
	handle_pointers(h);
	h->key = ent.key;
	h->channel_id = ent.id;
	h->nonce = ent.nonce;
	h->reg_index = idx;
	h->mode = ent.mode & 0666u;
	h->flags = ent.flags;
	h->access = access;
	err = member_join(h, access);
	if (err < 0)
		goto out;
	err = install(h);
	if (err < 0)
		store_release(&h->me->state, MEMBER_FREE);
out:
	registry_unlock(r);
	pthread_mutex_unlock(&g_lock);
	if (err < 0)
		handle_unmap(h);
	return err;
}

SHMC_API int shmc_attach_key(uint64_t key, uint32_t access)
{
	if (key == 0)
		return -EINVAL;
	return attach(key, 0, access);
}

SHMC_API int shmc_attach_id(int32_t channel_id, uint32_t access)
{
	if (channel_id <= 0)
		return -EINVAL;
	return attach(0, channel_id, access);
}

/* Leave the member table and close the handle. Caller holds g_lock. */
static void leave(struct handle *h)
{
	uninstall(h);
	member_release_parks(h, h->me);
	/* SYNC: release (as part of seq_cst): our last cursor/claim writes
	 * precede the FREE state; seq_cst for after_consume. */
	store_seq_cst(&h->me->state, MEMBER_FREE);
	/* Leaving may free room (broadcast gate) for parked senders. */
	after_consume(h);
	handle_unmap(h); /* closing ctl_fd drops our liveness lock */
}

/* Detach; if the channel's creator has died, sweep now, so that when the last
 * participant of a channel whose creator was killed detaches, its names
 * leave /dev/shm at once. Caller holds g_lock. */
static void leave_and_sweep(struct handle *h)
{
	uint32_t idx = h->reg_index;
	int32_t id = h->channel_id;
	uint64_t nonce = h->nonce;
	leave(h);
	if (g_reg_fd < 0 || g_reg_pid != getpid())
		return;
	struct registry *r;
	if (registry_lock(&r) < 0)
		return;
	struct shmc_reg_entry *e = &r->entries[idx];
	if (e->state != 1 || e->id != id || e->nonce != nonce ||
	    byte_locked(g_reg_fd, SHMC_REG_LOCK_BASE + idx) == 0)
		registry_sweep(r);
	registry_unlock(r);
}

SHMC_API int shmc_detach(int sub)
{
	pthread_mutex_lock(&g_lock);
	struct handle *h = lookup(sub);
	int err = 0;
	if (!h)
		err = -ENOENT;
	else if (h->owner)
		err = -EINVAL;
	else
		leave_and_sweep(h);
	pthread_mutex_unlock(&g_lock);
	return err;
}

SHMC_API int shmc_destroy(int owner)
{
	pthread_mutex_lock(&g_lock);
	struct handle *h = lookup(owner);
	int err = 0;
	if (!h) {
		err = -ENOENT;
	} else if (!h->owner) {
		err = -EINVAL;
	} else {
		struct registry *r;
		err = registry_lock(&r);
		if (err == 0) {
			struct shmc_reg_entry *e = &r->entries[h->reg_index];
			if (e->state == 1 && e->id == h->channel_id && e->key == h->key)
				memset(e, 0, sizeof *e);
			unlink_segments(h->channel_id, h->nonce);
			if (h->creator_locked)
				lock_byte_process(g_reg_fd, SHMC_REG_LOCK_BASE + h->reg_index, F_UNLCK);
			registry_unlock(r);
		}
		err = 0; /* the handle closes even if the registry is unusable */
		leave(h);
	}
	pthread_mutex_unlock(&g_lock);
	return err;
}

SHMC_API int shmc_info(int handle, uint64_t *out)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!out)
		return -EFAULT;
	out[SHMC_INFO_KEY] = h->key;
	out[SHMC_INFO_CHANNEL_ID] = (uint64_t)h->channel_id;
	out[SHMC_INFO_DELIVERY] = h->delivery;
	out[SHMC_INFO_RING_ENTRIES] = h->ring_entries;
	out[SHMC_INFO_MAX_MESSAGE_SIZE] = h->max_msg;
	out[SHMC_INFO_MEMBER_ID] = h->owner ? 0 : h->member_id;
	out[SHMC_INFO_ACCESS] = h->access;
	out[SHMC_INFO_IS_OWNER] = h->owner;
	out[SHMC_INFO_MODE] = h->mode;
	out[SHMC_INFO_FLAGS] = h->flags;
	out[SHMC_INFO_DROPPED] = load_relaxed(&h->ctl->dropped);
	out[SHMC_INFO_SKIPPED] = load_relaxed(&h->ctl->skipped);
	return SHMC_INFO_COUNT;
}

SHMC_API int shmc_try_send(int handle, const void *buf, uint32_t len, uint32_t target)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	return do_try_send(h, buf, len, target);
}

SHMC_API int shmc_try_recv(int handle, void *buf, uint32_t cap)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	return do_try_recv(h, buf, cap);
}

SHMC_API int shmc_try_send_many(int handle, const void *buf, const uint32_t *lens,
				uint32_t count, uint32_t target)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (count && (!lens || !buf))
		return -EFAULT;
	return do_try_send_many(h, buf, lens, count, target);
}

SHMC_API int shmc_try_recv_many(int handle, void *buf, uint32_t cap, uint32_t *lens,
				uint32_t max_count)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	if (cap < h->max_msg)
		return -EINVAL;
	if (!buf || (max_count && !lens))
		return -EFAULT;
	bool broadcast = h->delivery == SHMC_BROADCAST;
	recv_lock(h);
	uint8_t *p = buf;
	uint32_t i, left = cap;
	int r = 0;
	uint64_t resume = load_acquire(&h->ctl->head);
	for (i = 0; i < max_count && i < INT32_MAX && left >= h->max_msg; i++) {
		r = broadcast ? broadcast_take(h, p, h->max_msg, TAKE_DEFER)
			      : queue_take(h, p, h->max_msg, TAKE_DEFER, &resume);
		if (r < 0)
			break;
		lens[i] = (uint32_t)r;
		p += r;
		left -= (uint32_t)r;
	}
	recv_unlock(h);
	if (i) {
		/* The deferred work of the takes above, once for the batch. */
		if (!broadcast)
			advance_head(h);
		/* SYNC: full barrier after the batch's release frees, for
		 * after_consume's Dekker. */
		smp_mb();
		after_consume(h);
	}
	return i ? (int)i : r;
}

SHMC_API int shmc_send(int handle, const void *buf, uint32_t len, uint32_t target,
		       int64_t timeout_ns)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	uint64_t deadline = deadline_from(timeout_ns);
	for (;;) {
		int r = do_try_send(h, buf, len, target);
		if (r != -ENOBUFS || timeout_ns == 0)
			return r;
		r = wait_for(h, SHMC_WAIT_SEND, deadline);
		if (r < 0)
			return r;
	}
}

SHMC_API int shmc_recv(int handle, void *buf, uint32_t cap, int64_t timeout_ns)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	uint64_t deadline = deadline_from(timeout_ns);
	for (;;) {
		int r = do_try_recv(h, buf, cap);
		if (r != -EAGAIN || timeout_ns == 0)
			return r;
		r = wait_for(h, SHMC_WAIT_RECV, deadline);
		if (r < 0) {
			r = do_try_recv(h, buf, cap); /* a last look at the deadline */
			return r == -EAGAIN ? -ETIMEDOUT : r;
		}
	}
}

SHMC_API int shmc_pending(int handle)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (!(h->access & SHMC_RECV))
		return -EACCES;
	return has_message(h);
}

SHMC_API int shmc_set_doorbell(const char *addr, uint32_t len)
{
	if (!addr || len == 0 || len > SHMC_DOORBELL_MAX || len < 8 ||
	    memcmp(addr, DOORBELL_PREFIX, 8) != 0 || memchr(addr, 0, len))
		return -EINVAL;
	pthread_mutex_lock(&g_doorbell_lock);
	memset(g_doorbell, 0, sizeof g_doorbell);
	memcpy(g_doorbell, addr, len);
	store_release(&g_doorbell_len, len);
	pthread_mutex_unlock(&g_doorbell_lock);
	return 0;
}

SHMC_API int shmc_park(int handle, uint32_t what)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (what != SHMC_WAIT_RECV && what != SHMC_WAIT_SEND)
		return -EINVAL;
	if (what == SHMC_WAIT_RECV && !(h->access & SHMC_RECV))
		return -EACCES;
	if (what == SHMC_WAIT_SEND && !(h->access & SHMC_SEND))
		return -EACCES;
	return do_park(h, what);
}

SHMC_API int shmc_unpark(int handle, uint32_t what)
{
	struct handle *h = lookup(handle);
	if (!h)
		return -ENOENT;
	if (what != SHMC_WAIT_RECV && what != SHMC_WAIT_SEND)
		return -EINVAL;
	do_unpark(h, what);
	return 0;
}

SHMC_API const char *shmc_strerror(int code)
{
	if (code == INT_MIN)
		return "unknown error";
	switch (-code) {
	case 0: return "success";
	case EINVAL: return "invalid argument";
	case ENOENT: return "no such channel or subscriber";
	case EEXIST: return "a live channel already uses this key";
	case EACCES: return "permission denied";
	case ENOBUFS: return "ring full";
	case EMSGSIZE: return "message longer than the channel's maximum";
	case EAGAIN: return "nothing to receive";
	case ETIMEDOUT: return "timed out";
	case EUSERS: return "too many subscribers";
	case EBADMSG: return "shared segment failed validation";
	case ENOSPC: return "channel registry full";
	case EMFILE: return "too many open handles in this process";
	case EFAULT: return "bad buffer";
	default: {
		/* Other errno values: glibc's static description, if any. The
		 * GNU strerror_r returns it, or fills buf for an unknown code
		 * (strerrordesc_np would need glibc 2.32). */
		const char *d = NULL;
#ifdef __GLIBC__
		char buf[64];
		if (code < 0 && code > -4096) {
			d = strerror_r(-code, buf, sizeof(buf));
			if (d == buf)
				d = NULL;
		}
#endif
		return d ? d : "unknown error";
	}
	}
}

/* At normal process exit, destroy the channels this process created, so no
 * name outlives its creator in /dev/shm (a kill -9 is swept by the next
 * create or attach on the machine). A forked child does not destroy its
 * parent's channels. */
__attribute__((destructor)) static void cleanup_at_exit(void)
{
	for (uint32_t i = 1; i < MAX_HANDLES; i++) {
		struct handle *h = atomic_load_explicit(&g_handles[i], memory_order_acquire);
		if (h && h->owner && h->opener_pid == getpid())
			shmc_destroy(h->self);
	}
}
