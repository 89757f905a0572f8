/* SPDX-License-Identifier: MIT */
/*
 * fork.c - a child forked without exec must not keep its parent's members
 * (and channels) alive, nor share its parent's locks (DESIGN.md section 5,
 * "fork()").
 *
 * Writes: in the child, each open handle's control mapping and ctl_fd (the
 * same pages through a description of its own) and busy flags, g_lock, and
 * through their hooks the registry's and the doorbells' process-local state.
 * Calls: registry.c and doorbell.c (their after-fork and init hooks).
 */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

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
	shmc__registry_after_fork();
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
