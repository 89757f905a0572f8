/* SPDX-License-Identifier: MIT */
/*
 * test_doorbell - event-loop wakeups without a helper thread. A handle gets
 * a doorbell per direction: shmc_doorbell_path() says where to listen (a
 * Unix socket path inside the channel's directory), this process binds and
 * listens there, shmc_doorbell_seal() publishes it. A handle parked with
 * shmc_park() then gets one byte on that socket when another process sends
 * (or frees a slot for a parked sender). Also:
 *   - the API's errors: a bad direction, a direction the handle has no right
 *     for, a buffer too small, sealing before binding, parking without a
 *     doorbell;
 *   - shmc_park returns 1 when the condition already holds, shmc_unpark;
 *   - a waker survives a doorbell whose connection was closed (it
 *     reconnects, the wake arrives) or whose listener is gone (no SIGPIPE, no
 *     hang), and a wake it could not deliver is not counted as delivered:
 *     the park is restored, so the next send rings again;
 *   - a member that waits only on its doorbell costs its waker no
 *     FUTEX_WAKE system call, a member sleeping in shmc_recv gets one.
 */
#include "harness.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* FUTEX_WAKE system calls made through syscall(2) by this process and its
 * children (the library's futex calls go through it): counted by an
 * interposed syscall(). */
static atomic_uint *g_futex_wakes;

long syscall(long number, ...)
{
	static long (*real)(long, ...);
	va_list ap;
	long a[6];

	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	if (number == SYS_futex && (a[1] & FUTEX_CMD_MASK) == FUTEX_WAKE && g_futex_wakes)
		atomic_fetch_add(g_futex_wakes, 1);
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

struct shared {
	uint64_t key;
	atomic_uint go;      /* commands for the waker: send message number go */
	atomic_uint done;    /* last command completed */
	atomic_uint take;    /* commands to receive one message */
	atomic_uint taken;
	atomic_uint wakes_before, wakes_after;
};

/* The parent's doorbells (a forked child closes its copies: a listening
 * socket lives while any process holds it). */
static struct th_bell rbell, sbell;

/* The waking process: on each command, send (or receive) one message. */
static int waker(void *p)
{
	struct shared *s = p;
	th_bell_close(&rbell);
	th_bell_close(&sbell);
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

static void command(atomic_uint *cmd, atomic_uint *ack, unsigned n)
{
	atomic_store(cmd, n);
	EXPECT_EQ(th_await_u32(ack, n, 10000), 0);
}

/* A receiver sleeping in shmc_recv (its waker must FUTEX_WAKE it). */
static int sleeper(void *p)
{
	struct shared *s = p;
	th_bell_close(&sbell);
	int rx = shmc_attach_key(s->key, SHMC_RECV);
	unsigned v = 0;

	REQUIRE_GT(rx, 0);
	EXPECT_EQ(shmc_recv(rx, &v, sizeof(v), 10000000000ll), sizeof(v));
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

int main(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	char small[8];
	unsigned v;
	int ch, rx, tx, bytes;
	pid_t pid;

	th_init("test_doorbell", 0);
	g_futex_wakes = th_shared_alloc(sizeof(*g_futex_wakes));
	s->key = th_key();
	ch = shmc_create(s->key, SHMC_UNICAST, 2, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	rx = shmc_attach_key(s->key, SHMC_RECV);
	tx = shmc_attach_key(s->key, SHMC_SEND);
	REQUIRE_GT(rx, 0);
	REQUIRE_GT(tx, 0);

	th_section("errors");
	EXPECT_EQ(shmc_doorbell_path(rx, 0, small, sizeof(small)), -EINVAL);
	EXPECT_EQ(shmc_doorbell_path(rx, 3, small, sizeof(small)), -EINVAL);
	EXPECT_EQ(shmc_doorbell_path(rx, SHMC_WAIT_SEND, small, sizeof(small)), -EACCES);
	EXPECT_EQ(shmc_doorbell_path(tx, SHMC_WAIT_RECV, small, sizeof(small)), -EACCES);
	EXPECT_EQ(shmc_doorbell_path(rx, SHMC_WAIT_RECV, NULL, 0), -EFAULT);
	EXPECT_EQ(shmc_doorbell_path(rx, SHMC_WAIT_RECV, small, sizeof(small)), -ERANGE);
	EXPECT_EQ(shmc_doorbell_seal(tx, SHMC_WAIT_SEND), -EINVAL); /* no path asked for */
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), -ENOTCONN);        /* nothing would ring it */
	{
		char path[SHMC_DOORBELL_PATH_MAX], parent[SHMC_DOORBELL_PATH_MAX], real[4096];
		int n = shmc_doorbell_path(tx, SHMC_WAIT_SEND, path, sizeof(path));
		char dir[96];

		th_channel_path(dir, sizeof(dir), s->key, NULL);
		EXPECT_GT(n, 0);
		/* The path may go through an alias outside /dev (for runtimes that
		 * refuse /dev paths): it leads into the channel's directory. */
		snprintf(parent, sizeof(parent), "%s", path);
		*strrchr(parent, '/') = 0;
		REQUIRE_MSG(realpath(parent, real) != NULL, "realpath %s: %s", parent, strerror(errno));
		printf("  the doorbell path: %s, in %s\n", path, real);
		CHECK_MSG(strncmp(real, dir, strlen(dir)) == 0, "not in the channel's directory");
		EXPECT_EQ(shmc_doorbell_seal(tx, SHMC_WAIT_SEND), -ENOENT); /* nobody listens */
	}

	th_section("listen where the library says, and seal");
	REQUIRE_EQ(th_bell_open(&rbell, rx, SHMC_WAIT_RECV, 16), 0);
	REQUIRE_EQ(th_bell_open(&sbell, tx, SHMC_WAIT_SEND, 16), 0);
	EXPECT_EQ(shmc_doorbell_path(rx, SHMC_WAIT_RECV, small, sizeof(small)), -EALREADY);
	pid = th_fork(waker, s);

	th_section("parked receiver: a send from another process rings the doorbell");
	atomic_store(g_futex_wakes, 0);
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	command(&s->go, &s->done, 1);
	bytes = th_bell_wait(&rbell, 10000);
	printf("  %d byte(s) arrived; FUTEX_WAKE calls by the waker: %u\n", bytes,
	       atomic_load(g_futex_wakes));
	EXPECT_GT(bytes, 0);
	EXPECT_EQ(atomic_load(g_futex_wakes), 0); /* a doorbell-only member: no futex call */
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
	th_bell_drop_conns(&rbell);
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	command(&s->go, &s->done, 2);
	bytes = th_bell_wait(&rbell, 10000);
	printf("  %d byte(s) arrived\n", bytes);
	EXPECT_GT(bytes, 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 2);

	th_section("parked sender on a full ring: a receive elsewhere rings its doorbell");
	v = 100;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_park(tx, SHMC_WAIT_SEND), 0);
	command(&s->take, &s->taken, 1);
	bytes = th_bell_wait(&sbell, 10000);
	printf("  %d byte(s) arrived\n", bytes);
	EXPECT_GT(bytes, 0);
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	th_section("park for send returns 1 when there is room");
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(shmc_park(tx, SHMC_WAIT_SEND), 1);
	EXPECT_EQ(shmc_unpark(tx, SHMC_WAIT_SEND), 0);
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);

	th_section("the listener is gone: the waker neither dies nor hangs, and the park stays");
	th_bell_close(&rbell);
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	command(&s->go, &s->done, 3);
	{
		struct th_map m;
		REQUIRE_EQ(th_map_channel((int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID), s->key, &m), 0);
		int idx = th_member_of(&m, rx);
		REQUIRE_GE(idx, 0);
		/* The wake could not be delivered: it was restored, not counted. */
		EXPECT_EQ(atomic_load(&m.waits[idx].parked) & SHMC_WAIT_RECV, SHMC_WAIT_RECV);
		EXPECT_GE(atomic_load(&m.ctl->recv_parked), 1);
		th_unmap(&m);
	}
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 3);
	EXPECT_EQ(shmc_unpark(rx, SHMC_WAIT_RECV), 0);

	th_section("a receiver asleep in shmc_recv gets its FUTEX_WAKE");
	{
		pid_t sl = th_fork(sleeper, s);

		EXPECT_EQ(th_wait_futex_blocked(sl, 10000), 0);
		atomic_store(g_futex_wakes, 0);
		command(&s->go, &s->done, 4);
		EXPECT_CHILD_OK(sl, 10000);
		printf("  FUTEX_WAKE calls by the waker: %u\n", atomic_load(g_futex_wakes));
		EXPECT_GE(atomic_load(g_futex_wakes), 1);
	}

	atomic_store(&s->go, UINT32_MAX);
	EXPECT_CHILD_OK(pid, 10000);
	th_bell_close(&sbell);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
