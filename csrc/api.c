/* SPDX-License-Identifier: MIT */
/*
 * api.c - the public lifecycle entry points: create, attach, detach,
 * destroy, info, version, strerror, the test hook, and the exit-time
 * destruction of this process's channels; the process's handle table and
 * the access check (DESIGN.md sections 5 "Creation", "Lookup" and 6).
 * The message calls live beside their paths: send.c, recv.c, park.c,
 * doorbell.c.
 *
 * Writes: the handle table and g_start_position (defined here), and through
 * lookup.c, segment.c and member.c what creating, joining and leaving a
 * channel writes.
 * Calls: fork.c (process init), lookup.c, segment.c, member.c, wake.c
 * (through after_consume when a member leaves).
 */
#include "internal.h"
#include "shmchan_test.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
struct handle *_Atomic g_handles[MAX_HANDLES];
uint64_t g_start_position;
static uint32_t g_generation[MAX_HANDLES];

/* ---- handles ------------------------------------------------------------ */

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

/* ---- access ------------------------------------------------------------- */

/* Is @gid the caller's effective group or one of its supplementary groups? */
bool shmc__in_group(gid_t gid)
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
	else if (shmc__in_group(owner_gid))
		bits = mode >> 3;
	else
		bits = mode;
	return (bits & needed) == needed ? 0 : -EACCES;
}

/* ---- public API --------------------------------------------------------- */

SHMC_API int shmc__test_start_position(uint64_t pos)
{
	g_start_position = pos;
	return 0;
}

SHMC_API int shmc_version(void)
{
	return (0 << 16) | (4 << 8) | 0; /* 0.4.0: as package.json and CMakeLists.txt */
}

SHMC_API int shmc_create(uint64_t key, uint32_t delivery, uint32_t ring_entries,
			 uint32_t max_msg_size, uint32_t mode, uint32_t flags)
{
	shmc__process_init();
	if (key == 0 || delivery > SHMC_MULTICAST || !is_power_of_two(ring_entries) ||
	    ring_entries > SHMC_MAX_RING_ENTRIES || max_msg_size == 0 ||
	    max_msg_size > SHMC_MAX_MESSAGE_SIZE || (mode & ~0666u) || (flags & ~SHMC_F_PRIVATE))
		return -EINVAL;
	struct handle *h = shmc__handle_new();
	if (!h)
		return -ENOMEM;
	shmc__handle_geometry(h, delivery, ring_entries, max_msg_size);
	if (h->dat_size > SHMC_MAX_REGION) {
		shmc__handle_unmap(h);
		return -EINVAL;
	}
	h->owner = true;
	h->key = key;
	h->mode = mode;
	h->flags = flags;
	h->access = check_permission(geteuid(), getegid(), mode, flags, SHMC_SEND) == 0 ? SHMC_SEND : 0;

	pthread_mutex_lock(&g_lock);
	shmc__sweep();
	char tmpname[64];
	int err = shmc__build_begin(h, tmpname, sizeof tmpname);
	if (err == 0)
		err = shmc__segments_create(h);
	if (err == 0)
		err = shmc__member_join(h, h->access | MEMBER_OWNER);
	int self = err == 0 ? install(h) : err;
	if (self > 0) {
		err = shmc__build_publish(h, tmpname);
		if (err < 0)
			uninstall(h);
	} else {
		err = self;
	}
	if (err < 0)
		shmc__build_abort(h, tmpname); /* nothing of it was in lookup */
	pthread_mutex_unlock(&g_lock);
	if (err < 0) {
		shmc__handle_unmap(h);
		return err;
	}
	return self;
}

static int attach(uint64_t key, int32_t id, uint32_t access, int64_t want_owner)
{
	shmc__process_init();
	if (access == 0 || (access & ~SHMC_BOTH))
		return -EINVAL;
	struct handle *h = shmc__handle_new();
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&g_lock);
	shmc__sweep();
	struct found f;
	int err = shmc__find(key, id, want_owner, &f, NULL);
	if (err < 0)
		goto out;
	h->dfd = f.dfd;
	h->owner_uid = f.uid;
	h->owner_gid = f.gid;
	h->dir_dev = f.dev;
	h->dir_ino = f.ino;
	err = check_permission(f.uid, f.gid, f.desc.mode, f.desc.flags, access);
	if (err < 0)
		goto out;
	err = shmc__segments_open(h, &f, access);
	if (err < 0)
		goto out;
	h->key = f.desc.key;
	h->channel_id = f.desc.channel_id;
	h->mode = f.desc.mode;
	h->flags = f.desc.flags;
	h->access = access;
	err = shmc__member_join(h, access);
	if (err < 0)
		goto out;
	err = install(h);
	if (err < 0)
		shmc__member_leave(h);
out:
	pthread_mutex_unlock(&g_lock);
	if (err < 0)
		shmc__handle_unmap(h);
	return err;
}

SHMC_API int shmc_attach_key(uint64_t key, uint32_t access)
{
	if (key == 0)
		return -EINVAL;
	return attach(key, 0, access, -1);
}

SHMC_API int shmc_attach_id(int32_t channel_id, uint32_t access)
{
	if (channel_id <= 0)
		return -EINVAL;
	return attach(0, channel_id, access, -1);
}

SHMC_API int shmc_attach_key_owned(uint64_t key, uint32_t access, uint32_t owner_uid)
{
	if (key == 0)
		return -EINVAL;
	return attach(key, 0, access, owner_uid);
}

SHMC_API int shmc_attach_id_owned(int32_t channel_id, uint32_t access, uint32_t owner_uid)
{
	if (channel_id <= 0)
		return -EINVAL;
	return attach(0, channel_id, access, owner_uid);
}

static int lookup_name(uint64_t key, int32_t id, uint64_t *out)
{
	if (!out)
		return -EFAULT;
	shmc__process_init();
	uint64_t res[SHMC_LOOKUP_COUNT];
	struct found f;
	pthread_mutex_lock(&g_lock);
	int err = shmc__find(key, id, -1, &f, res);
	pthread_mutex_unlock(&g_lock);
	if (err == 0)
		close(f.dfd);
	if (!res[SHMC_LOOKUP_STATE])
		return err < 0 ? err : -ENOENT;
	for (int i = 0; i < SHMC_LOOKUP_COUNT; i++)
		out[i] = res[i];
	return SHMC_LOOKUP_COUNT;
}

SHMC_API int shmc_lookup_key(uint64_t key, uint64_t *out)
{
	if (key == 0)
		return -EINVAL;
	return lookup_name(key, 0, out);
}

SHMC_API int shmc_lookup_id(int32_t channel_id, uint64_t *out)
{
	if (channel_id <= 0)
		return -EINVAL;
	return lookup_name(0, channel_id, out);
}

/* Leave the channel and close the handle; remove the channel when it is out
 * of lookup and we were its last member (and may). Caller holds g_lock. */
static void leave(struct handle *h)
{
	uninstall(h);
	/* An outstanding loan is aborted and a held view released; a JS view
	 * region is retired, never unmapped under a live view. */
	shmc__zc_close(h);
	shmc__member_leave(h);
	/* Leaving may free room (broadcast gate) for parked senders. */
	after_consume(h);
	if (h->me_fd >= 0) {
		close(h->me_fd); /* our liveness lock goes with it */
		h->me_fd = -1;
	}
	shmc__after_leave(h->dfd, h->owner_uid, h->key);
	shmc__handle_unmap(h);
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
		leave(h);
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
		shmc__destroy_channel(h);
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
	out[SHMC_INFO_OWNER_UID] = h->owner_uid;
	return SHMC_INFO_COUNT;
}

SHMC_API const char *shmc_strerror(int code)
{
	if (code == INT_MIN)
		return "unknown error";
	switch (-code) {
	case 0: return "success";
	case EINVAL: return "invalid argument";
	case ENOENT: return "no such channel or subscriber";
	case EEXIST: return "the key is held by a channel or by another name";
	case EACCES: return "permission denied";
	case ENOBUFS: return "ring full";
	case EMSGSIZE: return "message longer than the channel's maximum";
	case EAGAIN: return "nothing to receive";
	case ETIMEDOUT: return "timed out";
	case EUSERS: return "too many subscribers";
	case EBADMSG: return "a file of the channel failed validation";
	case EIO: return "a file of the channel was shrunk by a participant: the handle is unusable";
	case ENOTCONN: return "no doorbell: create one with shmc_doorbell_path and shmc_doorbell_seal";
	case EALREADY: return "the doorbell is sealed already";
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
 * create or attach of its uid or root). A forked child does not destroy its
 * parent's channels. */
__attribute__((destructor)) static void cleanup_at_exit(void)
{
	for (uint32_t i = 1; i < MAX_HANDLES; i++) {
		struct handle *h = atomic_load_explicit(&g_handles[i], memory_order_acquire);
		if (h && h->owner && h->opener_pid == getpid())
			shmc_destroy(h->self);
	}
}
