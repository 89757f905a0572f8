/* SPDX-License-Identifier: MIT */
/*
 * segment.c - a channel's shared files `ctl` and `dat`: sizes and file
 * modes, creation by the creator (published complete), opening and
 * validation by an attacher; the descriptor's contents; a handle's private
 * geometry and its mappings (DESIGN.md sections 2, 6 and 9).
 *
 * Writes: a new channel's ctl and dat (created, sized, given their headers
 * and modes, linked), and the handle it is given (mappings, geometry, the
 * reserved region of member pages).
 * Calls: lookup.c (O_TMPFILE publication), fault.c (registering mappings).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* File modes that let the OS enforce the channel mode: ctl is read-write for
 * every class with any right (receivers record progress in it), dat
 * read-write for writers (mmap needs read) and read-only for readers. A
 * private channel opens only to its owner class. The owner class keeps rw on
 * both whatever the mode (it created them; the library's check decides what
 * its handles may do). */
static mode_t ctl_file_mode(uint32_t mode, uint32_t flags)
{
	mode_t m = 0600;
	for (int shift = 0; shift <= 3; shift += 3)
		if ((mode >> shift) & 6u)
			m |= (mode_t)6u << shift;
	return (flags & SHMC_F_PRIVATE) ? (m & 0600) : m;
}

static mode_t dat_file_mode(uint32_t mode, uint32_t flags)
{
	mode_t m = 0600;
	for (int shift = 0; shift <= 3; shift += 3) {
		uint32_t bits = (mode >> shift) & 6u;
		if (bits & 2u)
			m |= (mode_t)6u << shift;
		else if (bits & 4u)
			m |= (mode_t)4u << shift;
	}
	return (flags & SHMC_F_PRIVATE) ? (m & 0600) : m;
}

static _Atomic uint32_t g_no_poison;

struct handle *shmc__handle_new(void)
{
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->dfd = h->id_fd = h->me_fd = h->fault = h->region = -1;
	h->poison = &g_no_poison;
	h->opener_pid = getpid();
	h->page = (size_t)sysconf(_SC_PAGESIZE);
	pthread_mutex_init(&h->view_lock, NULL);
	return h;
}

void shmc__handle_unmap(struct handle *h)
{
	shmc__zc_retire(h); /* a JS view region is replaced, never unmapped under a view */
	shmc__fault_unregister(h);
	if (h->ctl && h->ctl != MAP_FAILED)
		munmap(h->ctl, h->ctl_size);
	if (h->dat && h->dat != MAP_FAILED)
		munmap(h->dat, h->dat_size);
	if (h->mregion && h->mregion != MAP_FAILED)
		munmap(h->mregion, SHMC_MAX_MEMBERS * h->page);
	if (h->dfd >= 0)
		close(h->dfd);
	if (h->id_fd >= 0)
		close(h->id_fd);
	if (h->me_fd >= 0)
		close(h->me_fd);
	pthread_mutex_destroy(&h->view_lock);
	free(h);
}

static uint64_t ctl_size_for(uint32_t delivery, uint32_t entries)
{
	return sizeof(struct shmc_ctl_header) +
	       (uint64_t)SHMC_MAX_MEMBERS * sizeof(struct shmc_wait) +
	       (delivery == SHMC_BROADCAST ? 0 : (uint64_t)entries * sizeof(struct shmc_qslot));
}

/* Set the private geometry from validated values. */
void shmc__handle_geometry(struct handle *h, uint32_t delivery, uint32_t entries,
			   uint32_t max_msg)
{
	h->delivery = delivery;
	h->ring_entries = entries;
	h->mask = entries - 1;
	h->max_msg = max_msg;
	h->stride = (uint32_t)(((uint64_t)max_msg + sizeof(struct shmc_slot_header) +
				SHMC_CACHELINE - 1) & ~(uint64_t)(SHMC_CACHELINE - 1));
	h->max_members = SHMC_MAX_MEMBERS;
	h->ctl_size = ctl_size_for(delivery, entries);
	h->dat_size = sizeof(struct shmc_dat_header) + (uint64_t)entries * h->stride;
}

void shmc__fill_desc(const struct handle *h, struct shmc_desc *d)
{
	memset(d, 0, sizeof *d);
	d->magic = SHMC_DESC_MAGIC;
	d->version = SHMC_LAYOUT_VERSION;
	d->desc_size = sizeof *d;
	d->delivery = h->delivery;
	d->ring_entries = h->ring_entries;
	d->max_msg_size = h->max_msg;
	d->slot_stride = h->stride;
	d->flags = h->flags;
	d->mode = h->mode;
	d->channel_id = h->channel_id;
	d->key = h->key;
	d->nonce = h->nonce;
	d->start = h->start;
	d->ctl_size = h->ctl_size;
	d->dat_size = h->dat_size;
	d->member_size = sizeof(struct shmc_member);
	d->creator_pid = (uint32_t)getpid();
	d->creator_start = shmc__process_start_time(getpid());
	d->pidns = shmc__pidns();
}

/* Is @d (a private copy) a descriptor this library can use? 0 or -EBADMSG. */
int shmc__check_desc(const struct shmc_desc *d)
{
	if (d->magic != SHMC_DESC_MAGIC || d->version != SHMC_LAYOUT_VERSION ||
	    d->desc_size != sizeof *d || d->delivery > SHMC_MULTICAST ||
	    !is_power_of_two(d->ring_entries) || d->ring_entries > SHMC_MAX_RING_ENTRIES ||
	    d->max_msg_size == 0 || d->max_msg_size > SHMC_MAX_MESSAGE_SIZE || d->channel_id <= 0 ||
	    d->key == 0 || (d->mode & ~0666u) || (d->flags & ~SHMC_F_PRIVATE) ||
	    d->member_size != sizeof(struct shmc_member))
		return -EBADMSG;
	struct handle g = { 0 };
	shmc__handle_geometry(&g, d->delivery, d->ring_entries, d->max_msg_size);
	if (d->slot_stride != g.stride || d->ctl_size != g.ctl_size || d->dat_size != g.dat_size ||
	    g.dat_size > SHMC_MAX_REGION)
		return -EBADMSG;
	return 0;
}

/* The pointers into the mappings, and the reserved region of member pages
 * (zero pages until a member file is mapped there). */
static int handle_pointers(struct handle *h)
{
	h->waits = (struct shmc_wait *)((uint8_t *)h->ctl + sizeof(struct shmc_ctl_header));
	h->qslots = h->delivery == SHMC_BROADCAST
			    ? NULL
			    : (struct shmc_qslot *)((uint8_t *)h->waits +
						    SHMC_MAX_MEMBERS * sizeof(struct shmc_wait));
	h->dh = (struct shmc_dat_header *)h->dat;
	h->mregion = mmap(NULL, SHMC_MAX_MEMBERS * h->page, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (h->mregion == MAP_FAILED) {
		h->mregion = NULL;
		return -errno;
	}
	return shmc__fault_register(h);
}

/* Create one file of the channel out of sight: sized and mapped; the caller
 * fills it, then publish_file gives it its mode and its name. */
static int create_file(struct handle *h, size_t size, void **map_out)
{
	int fd = shmc__tmpfile(h->dfd, 0);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err;
	}
	*map_out = p;
	return fd;
}

static int publish_file(struct handle *h, int fd, mode_t mode, const char *name)
{
	int err = fchmod(fd, mode) < 0 ? -errno : shmc__link_tmpfile(fd, h->dfd, name);
	close(fd); /* the mapping keeps the file */
	return err;
}

/*
 * The creator's half, for owner handle @h (its directory being built, key,
 * id, nonce, mode, flags and geometry set): ctl and dat, complete before they
 * have names. A zero-filled file is the valid initial state of every slot
 * (DESIGN.md 6, "Encoding"): only the headers are written. The handle's
 * mappings are the caller's to release (shmc__handle_unmap).
 */
int shmc__segments_create(struct handle *h)
{
	void *cmap, *dmap;
	int fd = create_file(h, h->ctl_size, &cmap);
	if (fd < 0)
		return fd;
	h->ctl = cmap;
	struct shmc_ctl_header *c = h->ctl;
	c->magic = SHMC_CTL_MAGIC;
	c->header_size = sizeof *c;
	c->nonce = h->nonce;
	c->ring_entries = h->ring_entries;
	c->ctl_size = h->ctl_size;
	store_relaxed(&c->head, h->start);
	store_relaxed(&c->skip_mark, h->start);
	int err = publish_file(h, fd, ctl_file_mode(h->mode, h->flags), "ctl");
	if (err < 0)
		return err;

	fd = create_file(h, h->dat_size, &dmap);
	if (fd < 0)
		return fd;
	h->dat = dmap;
	struct shmc_dat_header *dh = (struct shmc_dat_header *)h->dat;
	dh->magic = SHMC_DAT_MAGIC;
	dh->header_size = sizeof *dh;
	dh->nonce = h->nonce;
	dh->ring_entries = h->ring_entries;
	dh->slot_stride = h->stride;
	dh->dat_size = h->dat_size;
	store_relaxed(&dh->tail, h->start);
	err = publish_file(h, fd, dat_file_mode(h->mode, h->flags), "dat");
	if (err < 0)
		return err;
	return handle_pointers(h);
}

/* Open `name` in the channel's directory: the owner's regular file of
 * exactly @size bytes; map it. */
static int open_file(struct handle *h, const struct found *f, const char *name, bool writable,
		     size_t size, void **map_out)
{
	int fd = openat(h->dfd, name, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK |
				      O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	struct statx st;
	int err = statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_UID | STATX_SIZE, &st) < 0 ? -errno
											      : 0;
	if (err == 0 && (!S_ISREG(st.stx_mode) || st.stx_uid != f->uid || st.stx_size != size))
		err = -EBADMSG;
	void *p = MAP_FAILED;
	if (err == 0) {
		p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			err = -errno;
	}
	close(fd);
	if (err == 0)
		*map_out = p;
	return err;
}

/*
 * The attacher's half: open and map ctl and dat of the channel @f found (its
 * directory descriptor already in @h) for @access, validating every value
 * read from them against the descriptor, and set @h's geometry from the
 * descriptor. -EBADMSG when they fail validation. The handle's mappings are
 * the caller's to release.
 */
int shmc__segments_open(struct handle *h, const struct found *f, uint32_t access)
{
	const struct shmc_desc *d = &f->desc;
	shmc__handle_geometry(h, d->delivery, d->ring_entries, d->max_msg_size);
	h->nonce = d->nonce;
	h->start = d->start;
	store_relaxed(&h->head_seen, h->start); /* every position below is consumed (there is none) */
	void *cmap, *dmap;
	int err = open_file(h, f, "ctl", true, h->ctl_size, &cmap);
	if (err < 0)
		return err;
	h->ctl = cmap;
	const struct shmc_ctl_header *c = h->ctl;
	if (c->magic != SHMC_CTL_MAGIC || c->header_size != sizeof *c || c->nonce != h->nonce ||
	    c->ring_entries != h->ring_entries || c->ctl_size != h->ctl_size)
		return -EBADMSG;
	err = open_file(h, f, "dat", access & SHMC_SEND, h->dat_size, &dmap);
	if (err < 0)
		return err;
	h->dat = dmap;
	const struct shmc_dat_header *dh = (const struct shmc_dat_header *)h->dat;
	if (dh->magic != SHMC_DAT_MAGIC || dh->header_size != sizeof *dh || dh->nonce != h->nonce ||
	    dh->slot_stride != h->stride || dh->ring_entries != h->ring_entries ||
	    dh->dat_size != h->dat_size)
		return -EBADMSG;
	return handle_pointers(h);
}
