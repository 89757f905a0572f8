/* SPDX-License-Identifier: MIT */
/*
 * fork.c - a child forked without exec must not keep its parent's members
 * (and channels) alive, nor share its parent's locks (DESIGN.md section 10,
 * "fork()").
 *
 * Writes: in the child, each open handle's own member mapping and
 * descriptor (the same file through a description of its own), the owner's
 * descriptor of `id`, the busy flags and view locks, g_lock, and through its
 * hook the doorbells' process-local state.
 * Calls: doorbell.c (its after-fork and init hooks).
 */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replace descriptor @fd by a new open file description of the same file
 * (@flags), so that no lock of the old one is kept through it. Returns the
 * new description's descriptor number (@fd) or -1. */
static int reopen(int fd, int flags)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int nfd = open(path, flags | O_CLOEXEC);
	if (nfd < 0)
		return -1;
	int r = dup3(nfd, fd, O_CLOEXEC);
	close(nfd);
	return r;
}

static void reset_after_fork(void)
{
	/* Inherited handles share the parent's open file descriptions, and an
	 * OFD lock lives as long as any descriptor or mapping references its
	 * description: re-open our own member files and map the same page
	 * through the new description, so the parent's members die with it;
	 * the owner's `id` likewise (the creator lock). */
	for (uint32_t i = 1; i < MAX_HANDLES; i++) {
		struct handle *h = atomic_load_explicit(&g_handles[i], memory_order_relaxed);
		if (!h)
			continue;
		atomic_flag_clear(&h->send_busy);
		atomic_flag_clear(&h->recv_busy);
		pthread_mutex_init(&h->view_lock, NULL);
		if (h->me_fd >= 0 && reopen(h->me_fd, O_RDWR) >= 0)
			mmap(h->me, h->page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, h->me_fd, 0);
		if (h->id_fd >= 0)
			reopen(h->id_fd, O_RDONLY);
	}
	pthread_mutex_init(&g_lock, NULL);
	shmc__doorbell_after_fork();
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, reset_after_fork);
	shmc__doorbell_init();
}
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Once per process, before its first channel: install the fork handler. */
void shmc__process_init(void)
{
	pthread_once(&g_once, register_atfork);
}
