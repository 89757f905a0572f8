/* SPDX-License-Identifier: MIT */
/*
 * segment.c - a channel's two shared segments: their names and file modes,
 * creation and initialisation by the creator, opening and validation by an
 * attacher, and a handle's private geometry (DESIGN.md sections 1, 2, 5
 * "Creation" and 6).
 *
 * Writes: /dev/shm/shmchan.<id>.<nonce>.{c,d} (created, initialised,
 * chmod'ed, unlinked) and the handle it is given (fds, mappings, geometry).
 * Reads g_start_position (api.c's test hook) for a new ring's first position.
 * Calls: nothing of the library's but the helpers in internal.h.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

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

void shmc__unlink_segments(int32_t id, uint64_t nonce)
{
	char name[96];
	segment_name(name, sizeof name, id, nonce, 'c');
	shm_unlink(name);
	segment_name(name, sizeof name, id, nonce, 'd');
	shm_unlink(name);
}

void shmc__handle_unmap(struct handle *h)
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

struct handle *shmc__handle_new(void)
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
void shmc__handle_geometry(struct handle *h, uint32_t delivery, uint32_t entries,
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

/*
 * The creator's half, for owner handle @h (its key, id, mode, flags and
 * geometry set): a fresh nonce, then both segments. *@created tells whether
 * both names exist (the caller unlinks them if a later step fails); the
 * handle's fds and mappings are the caller's to release (shmc__handle_unmap).
 */
int shmc__segments_create(struct handle *h, bool *created)
{
	char cname[96], dname[96];
	uint64_t nonce;
	if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
		nonce = now_ns() ^ ((uint64_t)getpid() << 32);
	h->nonce = nonce;
	segment_name(cname, sizeof cname, h->channel_id, nonce, 'c');
	segment_name(dname, sizeof dname, h->channel_id, nonce, 'd');

	/* Create both segments O_EXCL with mode 0, initialise, publish the
	 * version last, then set the final modes. */
	void *cmap, *dmap;
	int err = segment_create(cname, h->ctl_size, &h->ctl_fd, &cmap);
	if (err < 0)
		return err;
	h->ctl = cmap;
	err = segment_create(dname, h->dat_size, &h->dat_fd, &dmap);
	if (err < 0) {
		shm_unlink(cname);
		return err;
	}
	h->dat = dmap;
	*created = true;
	handle_pointers(h);

	struct shmc_ctl_header *c = h->ctl;
	c->magic = SHMC_CTL_MAGIC;
	c->header_size = sizeof *c;
	c->delivery = h->delivery;
	c->ring_entries = h->ring_entries;
	c->max_msg_size = h->max_msg;
	c->slot_stride = h->stride;
	c->flags = h->flags;
	c->mode = h->mode;
	c->owner_uid = geteuid();
	c->owner_gid = getegid();
	c->channel_id = h->channel_id;
	c->key = h->key;
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
	for (uint64_t i = 0; i < h->ring_entries; i++)
		store_relaxed(&h->slots[(start + i) & h->mask].seq, SEQ(start + i, SLOT_FREE));

	struct shmc_dat_header *dh = (struct shmc_dat_header *)h->dat;
	dh->magic = SHMC_DAT_MAGIC;
	dh->ring_entries = h->ring_entries;
	dh->slot_stride = h->stride;
	dh->nonce = nonce;
	dh->dat_size = h->dat_size;
	/* SYNC: release, paired with the opener's acquire of version. */
	store_release(&dh->version, SHMC_LAYOUT_VERSION);
	store_release(&c->version, SHMC_LAYOUT_VERSION);
	if (fchmod(h->ctl_fd, ctl_file_mode(h->mode, h->flags)) < 0 ||
	    fchmod(h->dat_fd, dat_file_mode(h->mode, h->flags)) < 0)
		return -errno;
	return 0;
}

/*
 * The attacher's half: open and map the segments of the registry entry
 * @ent (a private copy) for @access, validating every value read from them
 * against the entry and the limits, and set @h's geometry from them.
 * -ENOENT when the segments are gone, -EBADMSG when they fail validation.
 * The handle's fds and mappings are the caller's to release.
 */
int shmc__segments_open(struct handle *h, const struct shmc_reg_entry *ent, uint32_t access)
{
	char name[96];
	void *cmap, *dmap;
	segment_name(name, sizeof name, ent->id, ent->nonce, 'c');
	/* The control header first: its geometry tells the sizes to expect. */
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	struct shmc_ctl_header hdr;
	ssize_t got = pread(fd, &hdr, sizeof hdr, 0);
	close(fd);
	if (got != (ssize_t)sizeof hdr || hdr.magic != SHMC_CTL_MAGIC ||
	    hdr.version != SHMC_LAYOUT_VERSION || hdr.header_size != sizeof hdr ||
	    hdr.delivery > SHMC_MULTICAST || !is_power_of_two(hdr.ring_entries) ||
	    hdr.ring_entries > SHMC_MAX_RING_ENTRIES || hdr.max_msg_size == 0 ||
	    hdr.max_msg_size > SHMC_MAX_MESSAGE_SIZE || hdr.nonce != ent->nonce ||
	    hdr.channel_id != ent->id || hdr.key != ent->key || hdr.delivery != ent->delivery ||
	    hdr.max_members != SHMC_MAX_MEMBERS)
		return -EBADMSG;
	shmc__handle_geometry(h, hdr.delivery, hdr.ring_entries, hdr.max_msg_size);
	if (hdr.slot_stride != h->stride || hdr.ctl_size != h->ctl_size ||
	    hdr.dat_size != h->dat_size || h->dat_size > SHMC_MAX_REGION)
		return -EBADMSG;
	int err = segment_open(name, true, h->ctl_size, &h->ctl_fd, &cmap);
	if (err < 0)
		return err;
	h->ctl = cmap;
	segment_name(name, sizeof name, ent->id, ent->nonce, 'd');
	err = segment_open(name, access & SHMC_SEND, h->dat_size, &h->dat_fd, &dmap);
	if (err < 0)
		return err;
	h->dat = dmap;
	struct shmc_dat_header *dh = (struct shmc_dat_header *)h->dat;
	if (dh->magic != SHMC_DAT_MAGIC || load_acquire(&dh->version) != SHMC_LAYOUT_VERSION ||
	    dh->nonce != ent->nonce || dh->slot_stride != h->stride ||
	    dh->ring_entries != h->ring_entries)
		return -EBADMSG;
	handle_pointers(h);
	return 0;
}
