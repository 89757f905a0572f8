/* SPDX-License-Identifier: MIT */
/*
 * test_crash_zerocopy - kill -9 of a process holding a loan or a view does
 * not wedge the channel (DESIGN.md section 7, "Zero copy", "Crashes"), in
 * every delivery mode:
 *   - a loan holder killed after filling part of its slot: the slot is
 *     skipped (never delivered: no message with its bytes arrives), the
 *     messages sent after the loan by another producer arrive, and sends go
 *     on for three laps of the ring;
 *   - a view holder killed: unicast/multicast lose that one message (the
 *     slot comes back, counted in dropped), broadcast stops gating; three
 *     laps of sends (each with a 1 s timeout) reach a live receiver.
 */
#include "harness.h"

#include <unistd.h>

static const char *dname(uint32_t d)
{
	return d == SHMC_UNICAST ? "unicast" : d == SHMC_BROADCAST ? "broadcast" : "multicast";
}

struct shared {
	uint64_t key;
	atomic_uint ready;
};
static struct shared *sh;

static int loan_holder(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_OK(h);
	void *p;
	REQUIRE_EQ(shmc_try_loan(h, &p), 256);
	memcpy(p, "POISON-never-delivered", 22);
	atomic_store(&sh->ready, 1);
	for (;;)
		pause();
}

static int view_holder(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(h);
	atomic_store(&sh->ready, 1);
	const void *v;
	int r = shmc_recv_view(h, &v, 10000000000ll);
	REQUIRE_EQ(r, 5);
	atomic_store(&sh->ready, 2);
	for (;;)
		pause();
}

static unsigned drain(int rcv, unsigned want, unsigned *poison)
{
	unsigned got = 0;
	uint8_t buf[256];
	uint64_t until = th_now_ns() + 3000000000ull;
	while (got < want && th_now_ns() < until) {
		int r = shmc_recv(rcv, buf, sizeof buf, 100000000);
		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			break;
		if (r >= 6 && memcmp(buf, "POISON", 6) == 0)
			(*poison)++;
		got++;
	}
	return got;
}

static void kill_loan_holder(uint32_t d)
{
	const uint32_t N = 4;
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	int owner = shmc_create(sh->key, d, N, 256, 0600, 0);
	REQUIRE_OK(owner);
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	int rcv = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(snd);
	REQUIRE_OK(rcv);
	pid_t c = th_fork(loan_holder, NULL);
	REQUIRE_EQ(th_await_u32(&sh->ready, 1, 10000), 0);
	EXPECT_EQ(shmc_try_send(snd, "behind", 6, 0), 6);
	uint8_t buf[256];
	EXPECT_EQ(shmc_try_recv(rcv, buf, sizeof buf), -EAGAIN); /* waits behind the loan */
	th_kill(c);
	unsigned poison = 0, got = drain(rcv, 1, &poison);
	EXPECT_EQ(got, 1);
	int failed = 0;
	for (uint32_t i = 0; i < 3 * N; i++) {
		int r = shmc_send(snd, "lap", 3, 0, 1000000000ll);
		if (r != 3) {
			failed++;
			continue;
		}
		got += drain(rcv, 1, &poison);
	}
	EXPECT_EQ(failed, 0);
	EXPECT_EQ(got, 1 + 3 * N);
	EXPECT_EQ(poison, 0);
	EXPECT_GE(th_info(owner, SHMC_INFO_SKIPPED), 1);
	printf("  %s: loan holder killed: its slot skipped (skipped %" PRIu64 "), %u messages after "
	       "it delivered, %d sends failed, %u poisoned\n", dname(d),
	       th_info(owner, SHMC_INFO_SKIPPED), got, failed, poison);
	shmc_detach(rcv);
	shmc_detach(snd);
	shmc_destroy(owner);
}

static void kill_view_holder(uint32_t d)
{
	const uint32_t N = 4;
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	int owner = shmc_create(sh->key, d, N, 256, 0600, 0);
	REQUIRE_OK(owner);
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_OK(snd);
	pid_t c = th_fork(view_holder, NULL);
	REQUIRE_EQ(th_await_u32(&sh->ready, 1, 10000), 0);
	int rcv = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_OK(rcv);
	EXPECT_EQ(shmc_try_send(snd, "first", 5, 0), 5);
	REQUIRE_EQ(th_await_u32(&sh->ready, 2, 10000), 0);
	unsigned poison = 0, got = 0;
	if (d == SHMC_BROADCAST)
		got += drain(rcv, 1, &poison); /* broadcast: the live one has it too */
	th_kill(c);
	int failed = 0;
	for (uint32_t i = 0; i < 3 * N; i++) {
		/* The ring fills first: the dead holder's slot must come back. */
		if (i >= N)
			got += drain(rcv, 1, &poison);
		if (shmc_send(snd, "lap", 3, 0, 1000000000ll) != 3)
			failed++;
	}
	got += drain(rcv, N, &poison);
	EXPECT_EQ(failed, 0);
	EXPECT_EQ(got, 3 * N + (d == SHMC_BROADCAST));
	printf("  %s: view holder killed: %u messages delivered to the live receiver, %d sends "
	       "failed, dropped %" PRIu64 "\n", dname(d), got, failed, th_info(owner, SHMC_INFO_DROPPED));
	if (d != SHMC_BROADCAST)
		EXPECT_EQ(th_info(owner, SHMC_INFO_DROPPED), 1);
	shmc_detach(rcv);
	shmc_detach(snd);
	shmc_destroy(owner);
}

int main(void)
{
	th_init("test_crash_zerocopy", 0);
	sh = th_shared_alloc(sizeof *sh);
	const uint32_t modes[] = { SHMC_UNICAST, SHMC_MULTICAST, SHMC_BROADCAST };
	th_section("kill -9 of a loan holder: its slot is skipped, nothing wedges");
	for (int i = 0; i < 3; i++)
		kill_loan_holder(modes[i]);
	th_section("kill -9 of a view holder: its message is lost (or it stops gating), nothing wedges");
	for (int i = 0; i < 3; i++)
		kill_view_holder(modes[i]);
	return th_finish();
}
