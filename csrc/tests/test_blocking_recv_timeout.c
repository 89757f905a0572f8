/* SPDX-License-Identifier: MIT */
/*
 * test_blocking_recv_timeout - a blocking receive on an empty channel (and a
 * blocking send on a full one) returns -ETIMEDOUT, never before its timeout
 * has passed; timeout 0 behaves as the try variant; a message arriving
 * during the wait is returned instead. Only lower bounds are checked.
 */
#include "harness.h"

#include <pthread.h>
#include <signal.h>

static void recv_timeout(int rx, int64_t ns)
{
	char buf[8];
	uint64_t t0 = th_now_ns();
	int r = shmc_recv(rx, buf, sizeof(buf), ns);
	uint64_t dt = th_now_ns() - t0;

	printf("  recv timeout %10lld ns -> %d %s after %llu ns\n", (long long)ns, r,
	       th_errname(r), (unsigned long long)dt);
	EXPECT_EQ(r, -ETIMEDOUT);
	EXPECT_GE(dt, (uint64_t)ns);
}

static void send_timeout(int tx, int64_t ns)
{
	uint64_t t0 = th_now_ns();
	int r = shmc_send(tx, "x", 1, 0, ns);
	uint64_t dt = th_now_ns() - t0;

	printf("  send timeout %10lld ns -> %d %s after %llu ns\n", (long long)ns, r,
	       th_errname(r), (unsigned long long)dt);
	EXPECT_EQ(r, -ETIMEDOUT);
	EXPECT_GE(dt, (uint64_t)ns);
}

struct late {
	int tx;
	unsigned delay_ms;
};

static void *late_sender(void *p)
{
	struct late *l = p;

	th_sleep_ms(l->delay_ms);
	EXPECT_EQ(shmc_try_send(l->tx, "late", 4, 0), 4);
	return NULL;
}

/* ---- signals during a wait: -EINTR is retried, the deadline kept ---------- */

static atomic_uint interrupts, stop_interrupting;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&interrupts, 1);
}

static void *interrupter(void *p)
{
	pthread_t target = *(pthread_t *)p;

	while (!atomic_load(&stop_interrupting)) {
		pthread_kill(target, SIGUSR1);
		th_sleep_ms(5);
	}
	return NULL;
}

static void waits_under_signals(int tx, int rx)
{
	struct sigaction sa;
	pthread_t self = pthread_self(), t;
	char buf[8];

	th_section("SIGUSR1 every 5 ms (no SA_RESTART) during waits: no -EINTR, no early return");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	REQUIRE_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	atomic_store(&stop_interrupting, 0);
	REQUIRE_EQ(pthread_create(&t, NULL, interrupter, &self), 0);

	recv_timeout(rx, 200000000);
	EXPECT_EQ(shmc_try_send(tx, "a", 1, 0), 1);
	EXPECT_EQ(shmc_try_send(tx, "b", 1, 0), 1);
	send_timeout(tx, 200000000);
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof(buf)), 1);
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof(buf)), 1);
	{
		struct late l = { tx, 100 };
		pthread_t lt;

		REQUIRE_EQ(pthread_create(&lt, NULL, late_sender, &l), 0);
		EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), -1), 4);
		EXPECT_MEMEQ(buf, "late", 4);
		pthread_join(lt, NULL);
	}
	atomic_store(&stop_interrupting, 1);
	pthread_join(t, NULL);
	printf("  %u signals delivered during the waits\n", atomic_load(&interrupts));
	EXPECT_GT(atomic_load(&interrupts), 0);
	signal(SIGUSR1, SIG_IGN);
}

int main(void)
{
	static const int64_t waits[] = { 1, 1000, 1000000, 20000000, 100000000, 300000000 };
	uint64_t key = th_key();
	char buf[8];
	int ch, tx, rx;

	th_init("test_blocking_recv_timeout", 0);
	ch = shmc_create(key, SHMC_UNICAST, 2, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);

	th_section("timeout 0 behaves as the try variant");
	EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), 0), -EAGAIN);

	th_section("empty channel: -ETIMEDOUT, no early return");
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++)
		recv_timeout(rx, waits[i]);

	th_section("full ring: blocking send -ETIMEDOUT, no early return");
	EXPECT_EQ(shmc_try_send(tx, "a", 1, 0), 1);
	EXPECT_EQ(shmc_try_send(tx, "b", 1, 0), 1);
	EXPECT_EQ(shmc_send(tx, "c", 1, 0, 0), -ENOBUFS);
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++)
		send_timeout(tx, waits[i]);
	EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), 0), 1);
	EXPECT_EQ(buf[0], 'a');
	EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), 1000), 1);
	EXPECT_EQ(buf[0], 'b');
	EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), 0), -EAGAIN);

	th_section("a message arriving during a 10 s wait is returned");
	{
		struct late l = { tx, 50 };
		pthread_t t;
		int r;

		REQUIRE_EQ(pthread_create(&t, NULL, late_sender, &l), 0);
		r = shmc_recv(rx, buf, sizeof(buf), 10 * 1000000000ll);
		EXPECT_EQ(r, 4);
		EXPECT_MEMEQ(buf, "late", 4);
		pthread_join(t, NULL);
	}

	th_section("a message already there is returned at once, even with timeout 0");
	EXPECT_EQ(shmc_try_send(tx, "now", 3, 0), 3);
	EXPECT_EQ(shmc_recv(rx, buf, sizeof(buf), 0), 3);

	waits_under_signals(tx, rx);

	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	return th_finish();
}
