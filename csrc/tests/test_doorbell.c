/* SPDX-License-Identifier: MIT */
/*
 * test_doorbell - event-loop wakeups without a helper thread. This process
 * listens on an abstract Unix stream socket "\0shmchan.test.<pid>" and
 * registers it with shmc_set_doorbell(); a handle parked with shmc_park()
 * then gets one byte on that socket when another process sends (or frees a
 * slot for a parked sender). Also: invalid doorbell addresses are -EINVAL,
 * shmc_park returns 1 when the condition already holds, shmc_unpark, and a
 * waker survives a doorbell whose connection was closed or whose listener
 * is gone (no SIGPIPE), reconnecting so the wake is not lost.
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct shared {
	uint64_t key;
	atomic_uint go;      /* commands for the waker: send message number go */
	atomic_uint done;    /* last command completed */
	atomic_uint take;    /* commands to receive one message */
	atomic_uint taken;
};

/* The waking process: on each command, send (or receive) one message. */
static int waker(void *p)
{
	struct shared *s = p;
	int tx = shmc_attach_key(s->key, SHMC_SEND);
	int rx = shmc_attach_key(s->key, SHMC_RECV);
	unsigned seen = 0, seen_take = 0;

	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);
	for (;;) {
		unsigned go = atomic_load(&s->go), take = atomic_load(&s->take);

		if (go == UINT32_MAX)
			break;
		if (go > seen) {
			seen = go;
			EXPECT_EQ(shmc_try_send(tx, &go, sizeof(go), 0), sizeof(go));
			atomic_store(&s->done, go);
		}
		if (take > seen_take) {
			unsigned v;

			seen_take = take;
			EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
			atomic_store(&s->taken, take);
		}
		th_sleep_ms(1);
	}
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

static int conns[16];
static int nconns;

/* Wait up to @ms for one byte on the doorbell (accepting connections). */
static int ring_seen(int lfd, int ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)ms * 1000000ull;

	while (th_now_ns() < deadline) {
		struct pollfd pfd[17];
		int n = 0;

		pfd[n].fd = lfd;
		pfd[n++].events = POLLIN;
		for (int i = 0; i < nconns; i++) {
			pfd[n].fd = conns[i];
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, 50) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (c >= 0 && nconns < 16)
				conns[nconns++] = c;
		}
		for (int i = 0; i < nconns; i++) {
			char b[64];
			ssize_t r;

			if (!(pfd[i + 1].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(conns[i], b, sizeof(b));
			if (r > 0)
				return (int)r;
			if (r == 0) { /* the waker closed it */
				close(conns[i]);
				conns[i--] = conns[--nconns];
			}
		}
	}
	return 0;
}

static void close_conns(void)
{
	for (int i = 0; i < nconns; i++)
		close(conns[i]);
	nconns = 0;
}

static void command(atomic_uint *cmd, atomic_uint *ack, unsigned n)
{
	atomic_store(cmd, n);
	EXPECT_EQ(th_await_u32(ack, n, 10000), 0);
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	struct sockaddr_un sa;
	char name[64];
	socklen_t alen;
	unsigned v;
	int lfd, ch, rx, tx, bytes;
	pid_t pid;

	th_init("test_doorbell", 0);
	snprintf(name, sizeof(name), "shmchan.test.%d", (int)getpid());

	th_section("invalid doorbell addresses -> -EINVAL");
	EXPECT_EQ(shmc_set_doorbell(name, 0), -EINVAL);
	EXPECT_EQ(shmc_set_doorbell("shmchan.0123456789012345678901234567890123", SHMC_DOORBELL_MAX + 1),
		  -EINVAL);
	EXPECT_EQ(shmc_set_doorbell("notshmchan.x", 12), -EINVAL);
	EXPECT_EQ(shmc_set_doorbell("shmchan", 7), -EINVAL);

	th_section("listen on \\0%s and register it", name);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	REQUIRE_GE(lfd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, strlen(name));
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	REQUIRE_EQ(bind(lfd, (struct sockaddr *)&sa, alen), 0);
	REQUIRE_EQ(listen(lfd, 16), 0);
	EXPECT_EQ(shmc_set_doorbell(name, (uint32_t)strlen(name)), 0);

	s->key = th_key();
	ch = shmc_create(s->key, SHMC_UNICAST, 2, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	rx = shmc_attach_key(s->key, SHMC_RECV);
	tx = shmc_attach_key(s->key, SHMC_SEND);
	REQUIRE_GT(rx, 0);
	REQUIRE_GT(tx, 0);
	pid = th_fork(waker, s);

	th_section("parked receiver: a send from another process rings the doorbell");
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	command(&s->go, &s->done, 1);
	bytes = ring_seen(lfd, 10000);
	printf("  %d byte(s) arrived\n", bytes);
	EXPECT_GT(bytes, 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 1);

	th_section("park returns 1 when a message is already there");
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 1);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(shmc_unpark(rx, SHMC_WAIT_RECV), 0);

	th_section("park then unpark (a withdrawn wait)");
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	EXPECT_EQ(shmc_unpark(rx, SHMC_WAIT_RECV), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);

	th_section("the receiver closed its connection: the next wake still arrives");
	close_conns();
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	command(&s->go, &s->done, 2);
	bytes = ring_seen(lfd, 10000);
	printf("  %d byte(s) arrived\n", bytes);
	EXPECT_GT(bytes, 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 2);

	th_section("parked sender on a full ring: a receive elsewhere rings the doorbell");
	v = 100;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_park(tx, SHMC_WAIT_SEND), 0);
	command(&s->take, &s->taken, 1);
	bytes = ring_seen(lfd, 10000);
	printf("  %d byte(s) arrived\n", bytes);
	EXPECT_GT(bytes, 0);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	th_section("park for send returns 1 when there is room");
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(shmc_park(tx, SHMC_WAIT_SEND), 1);
	EXPECT_EQ(shmc_unpark(tx, SHMC_WAIT_SEND), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);

	th_section("the listener is gone: the waker neither dies nor hangs");
	close_conns();
	close(lfd);
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	command(&s->go, &s->done, 3);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 3);
	EXPECT_EQ(shmc_unpark(rx, SHMC_WAIT_RECV), 0);

	atomic_store(&s->go, UINT32_MAX);
	EXPECT_CHILD_OK(pid, 10000);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
