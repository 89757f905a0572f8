/* SPDX-License-Identifier: MIT */
/*
 * doorbell.c - event-loop doorbells: this process's doorbell address, the
 * copy of it a parked member carries, and ringing another process's
 * doorbell over a cached non-blocking connection (DESIGN.md section 4,
 * "Doorbells").
 *
 * Writes: its own process-local state (this process's address, the
 * connection cache) and a parking member's doorbell field.
 * Calls: nothing of the library's.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DOORBELL_PREFIX "shmchan."
#define DOORBELL_CACHE  16

static char g_doorbell[SHMC_DOORBELL_MAX + 1];
static _Atomic uint32_t g_doorbell_len;

struct doorbell_conn { char addr[SHMC_DOORBELL_MAX + 1]; int fd; };
static pthread_mutex_t g_doorbell_lock = PTHREAD_MUTEX_INITIALIZER;
static struct doorbell_conn g_doorbell_conns[DOORBELL_CACHE];
static unsigned g_doorbell_next;

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
int shmc__doorbell_ring(const char *addr)
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

/* Parking: copy this process's doorbell address (if it set one) into @m,
 * where a waker finds it. */
void shmc__doorbell_record(struct shmc_member *m)
{
	uint32_t len = load_acquire(&g_doorbell_len);
	if (len) {
		char addr[SHMC_DOORBELL_MAX] = { 0 };
		memcpy(addr, g_doorbell, len);
		if (memcmp(m->doorbell, addr, sizeof addr) != 0)
			memcpy(m->doorbell, addr, sizeof addr);
	}
}

/* Once per process (shmc__process_init): no cached connection yet. */
void shmc__doorbell_init(void)
{
	for (unsigned i = 0; i < DOORBELL_CACHE; i++)
		g_doorbell_conns[i].fd = -1;
}

/* In a forked child: a fresh lock (another thread may have held the
 * parent's at the fork) and an empty connection cache. */
void shmc__doorbell_after_fork(void)
{
	pthread_mutex_init(&g_doorbell_lock, NULL);
	for (unsigned i = 0; i < DOORBELL_CACHE; i++)
		g_doorbell_conns[i].fd = -1, g_doorbell_conns[i].addr[0] = 0;
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
