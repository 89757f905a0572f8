/* SPDX-License-Identifier: MIT */
/*
 * registry.c - lookup: the machine-wide registry that maps a key or an id to
 * a live channel, its sweep of the dead, and the creator's liveness lock
 * (DESIGN.md sections 1 and 5: "registry", "Creation", "Sweep", "Lookup").
 *
 * Writes: /dev/shm/shmchan.registry (under its flock), the creator lock
 * bytes of the registry, and its own process-local state (the registry fd).
 * Calls: member.c (liveness probes, start times), segment.c (unlinking a
 * dead channel's segments).
 * Everything that knows the registry's format is here, so that a different
 * lookup scheme replaces this file alone.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REGISTRY_NAME   "/shmchan.registry"
#define SHM_DIR         "/dev/shm"

struct registry {
	struct shmc_reg_header hdr;
	struct shmc_reg_entry entries[SHMC_REG_CAPACITY];
};
#define REGISTRY_SIZE sizeof(struct registry)

static int g_reg_fd = -1;
static pid_t g_reg_pid;

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

static int open_registry_fd(void)
{
	int fd = shm_open(REGISTRY_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	(void)fchmod(fd, 0666); /* undo the umask; fails harmlessly if not ours */
	return fd;
}

/* Lock the registry (caller holds g_lock), map it, validate or initialise. */
int shmc__registry_lock(struct registry **out)
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

void shmc__registry_unlock(struct registry *r)
{
	munmap(r, REGISTRY_SIZE);
	flock(g_reg_fd, LOCK_UN);
}

/* Drop entries whose creator is gone, then unlink any shmchan segment in
 * /dev/shm that no live entry names (left by a creator that died mid-create
 * or before a sweep). Caller holds the registry lock. */
void shmc__registry_sweep(struct registry *r)
{
	for (uint32_t i = 0; i < SHMC_REG_CAPACITY; i++) {
		struct shmc_reg_entry *e = &r->entries[i];
		if (e->state != 1)
			continue;
		if (shmc__byte_locked(g_reg_fd, SHMC_REG_LOCK_BASE + i) == 0) {
			shmc__unlink_segments(e->id, e->nonce);
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

/* The live entry with @key (or, when @key is 0, with @id); its index. */
struct shmc_reg_entry *shmc__registry_find(struct registry *r, uint64_t key, int32_t id,
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

/* For a new channel with @key: a free entry and a channel id unique among
 * live channels. -EEXIST when a live channel has the key, -ENOSPC when the
 * registry is full. Nothing is published yet. */
int shmc__registry_reserve(struct registry *r, uint64_t key, uint32_t *index, int32_t *id_out)
{
	uint32_t idx;
	if (shmc__registry_find(r, key, 0, &idx))
		return -EEXIST;
	for (idx = 0; idx < SHMC_REG_CAPACITY && r->entries[idx].state; idx++)
		;
	if (idx == SHMC_REG_CAPACITY)
		return -ENOSPC;
	/* A channel id unique among live channels. */
	int32_t id = 0;
	for (uint32_t tries = 0; tries <= SHMC_REG_CAPACITY && !id; tries++) {
		uint32_t cand = r->hdr.next_id;
		if (cand == 0 || cand > INT32_MAX)
			cand = 1;
		r->hdr.next_id = cand + 1;
		uint32_t dummy;
		if (!shmc__registry_find(r, 0, (int32_t)cand, &dummy))
			id = (int32_t)cand;
	}
	*index = idx;
	*id_out = id;
	return 0;
}

/* Fill entry @index for the owner handle @h (its segments exist, its
 * creator lock is held) and make it visible. */
void shmc__registry_publish(struct registry *r, uint32_t index, const struct handle *h)
{
	struct shmc_reg_entry *e = &r->entries[index];
	e->id = h->channel_id;
	e->key = h->key;
	e->nonce = h->nonce;
	e->uid = geteuid();
	e->gid = getegid();
	e->mode = h->mode;
	e->flags = h->flags;
	e->delivery = h->delivery;
	e->creator_pid = (uint32_t)getpid();
	e->creator_start = shmc__process_start_time(getpid());
	e->state = 1; /* published last; readers hold the flock */
}

void shmc__registry_clear(struct registry *r, uint32_t index)
{
	memset(&r->entries[index], 0, sizeof r->entries[index]);
}

/* Remove the entry of @h's channel, if it is still the one there. */
void shmc__registry_drop(struct registry *r, const struct handle *h)
{
	struct shmc_reg_entry *e = &r->entries[h->reg_index];
	if (e->state == 1 && e->id == h->channel_id && e->key == h->key)
		memset(e, 0, sizeof *e);
}

/* Liveness of the creator: a lock byte of the registry. */
int shmc__registry_hold_creator(uint32_t index)
{
	return lock_byte_process(g_reg_fd, SHMC_REG_LOCK_BASE + index, F_WRLCK);
}

void shmc__registry_release_creator(uint32_t index)
{
	lock_byte_process(g_reg_fd, SHMC_REG_LOCK_BASE + index, F_UNLCK);
}

/* After a detach: if the channel (@index, @id, @nonce) has left the
 * registry or its creator has died, sweep now, so that when the last
 * participant of a channel whose creator was killed detaches, its names
 * leave /dev/shm at once. Caller holds g_lock. */
void shmc__registry_sweep_if_gone(uint32_t index, int32_t id, uint64_t nonce)
{
	if (g_reg_fd < 0 || g_reg_pid != getpid())
		return;
	struct registry *r;
	if (shmc__registry_lock(&r) < 0)
		return;
	struct shmc_reg_entry *e = &r->entries[index];
	if (e->state != 1 || e->id != id || e->nonce != nonce ||
	    shmc__byte_locked(g_reg_fd, SHMC_REG_LOCK_BASE + index) == 0)
		shmc__registry_sweep(r);
	shmc__registry_unlock(r);
}

/* In a forked child: open a description of its own at the next lock. */
void shmc__registry_after_fork(void)
{
	g_reg_fd = -1;
}
