/* SPDX-License-Identifier: MIT */
/*
 * test_creator_exit - a channel lives in lookup until its creator process
 * exits or is killed (SIGKILL included): then its key and id no longer
 * attach (-ENOENT), the key can be created again, and subscribers already
 * attached (in other processes) keep exchanging messages. Once every
 * participant is gone nothing of the channel stays in /dev/shm, even when
 * all of them were killed. A forked child of the creator exiting does not
 * end the creator's channel.
 *
 * Runs in a private /dev/shm (own mount namespace, needs root) so entries
 * can be counted exactly while other tests run in parallel.
 */
#include "harness.h"

#include <signal.h>
#include <unistd.h>

enum { END_EXIT, END_KILL };

struct shared {
	uint64_t key;
	int32_t id;
	int how;
	atomic_uint created;
	atomic_uint attached;
	atomic_uint may_exit;
};

static int creator(void *p)
{
	struct shared *s = p;
	uint64_t info[SHMC_INFO_COUNT];
	int ch = shmc_create(s->key, SHMC_UNICAST, 8, 16, 0600, 0);

	REQUIRE_GT(ch, 0);
	REQUIRE_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	s->id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	atomic_store(&s->created, 1);
	/* Wait to be killed, or for leave to exit without destroying. */
	REQUIRE_EQ(th_await_u32(&s->may_exit, 1, 60000), 0);
	return 0;
}

static int subscriber(void *p)
{
	struct shared *s = p;
	char buf[16];
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(rx, 0);
	atomic_fetch_add(&s->attached, 1);
	for (;;) {
		int r = shmc_recv(rx, buf, sizeof(buf), 30 * 1000000000ll);

		if (r < 0) {
			EXPECT_GE(r, 0);
			break;
		}
		if (r == 3 && memcmp(buf, "bye", 3) == 0)
			break;
		EXPECT_EQ(r, 5);
		EXPECT_MEMEQ(buf, "after", 5);
	}
	EXPECT_EQ(shmc_detach(rx), 0);
	return 0;
}

static int sleeper(void *p)
{
	struct shared *s = p;
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	REQUIRE_GT(rx, 0);
	atomic_fetch_add(&s->attached, 1);
	/* Killed while attached (never detaches). */
	th_sleep_ms(60000);
	return 0;
}

static void expect_gone(const struct shared *s)
{
	uint64_t info[SHMC_INFO_COUNT];
	int r;

	EXPECT_EQ(shmc_attach_key(s->key, SHMC_RECV), -ENOENT);
	r = shmc_attach_id(s->id, SHMC_RECV);
	if (r > 0) {
		EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
		CHECK(info[SHMC_INFO_KEY] != s->key);
		shmc_detach(r);
	} else {
		EXPECT_EQ(r, -ENOENT);
	}
}

static void check_shm(int baseline, int exact)
{
	int n = th_count_shm();

	printf("  /dev/shm shmchan entries: %d (baseline %d)%s\n", n, baseline,
	       exact ? "" : " [shared /dev/shm: informational]");
	if (n > baseline)
		th_list_shm("    ");
	if (exact)
		EXPECT_LE(n, baseline);
}

static void creator_ends(int how, int baseline, int exact)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	pid_t cpid, spid;
	int tx, ch2;

	th_section("creator %s while a subscriber process and this one are attached",
		   how == END_EXIT ? "exits normally" : "is killed with SIGKILL");
	s->key = th_key();
	s->how = how;
	cpid = th_fork(creator, s);
	REQUIRE_EQ(th_await_u32(&s->created, 1, 10000), 0);
	spid = th_fork(subscriber, s);
	REQUIRE_EQ(th_await_u32(&s->attached, 1, 10000), 0);
	tx = shmc_attach_key(s->key, SHMC_SEND);
	REQUIRE_GT(tx, 0);
	EXPECT_EQ(shmc_try_send(tx, "after", 5, 0), 5);

	if (how == END_EXIT) {
		atomic_store(&s->may_exit, 1);
		EXPECT_CHILD_OK(cpid, 10000);
	} else {
		th_kill(cpid);
	}

	printf("  the channel is gone from lookup\n");
	expect_gone(s);
	printf("  attached subscribers keep working\n");
	for (int i = 0; i < 20; i++)
		EXPECT_EQ(shmc_send(tx, "after", 5, 0, 10 * 1000000000ll), 5);
	printf("  the key is free: create succeeds, and attaches go to the new channel\n");
	ch2 = shmc_create(s->key, SHMC_BROADCAST, 4, 16, 0600, 0);
	EXPECT_GT(ch2, 0);
	if (ch2 > 0) {
		uint64_t info[SHMC_INFO_COUNT];
		int r = shmc_attach_key(s->key, SHMC_RECV);

		EXPECT_GT(r, 0);
		if (r > 0) {
			EXPECT_EQ(shmc_info(r, info), SHMC_INFO_COUNT);
			EXPECT_EQ(info[SHMC_INFO_DELIVERY], SHMC_BROADCAST);
			CHECK((int32_t)info[SHMC_INFO_CHANNEL_ID] != s->id);
			EXPECT_EQ(shmc_detach(r), 0);
		}
	}
	EXPECT_EQ(shmc_send(tx, "bye", 3, 0, 10 * 1000000000ll), 3);
	EXPECT_CHILD_OK(spid, 40000);
	EXPECT_EQ(shmc_detach(tx), 0);
	if (ch2 > 0)
		EXPECT_EQ(shmc_destroy(ch2), 0);
	printf("  everyone gone: nothing left in /dev/shm\n");
	check_shm(baseline, exact);
}

static void all_killed(int baseline, int exact)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	pid_t cpid, spid[2];

	th_section("creator and both subscribers killed with SIGKILL");
	s->key = th_key();
	cpid = th_fork(creator, s);
	REQUIRE_EQ(th_await_u32(&s->created, 1, 10000), 0);
	spid[0] = th_fork(sleeper, s);
	spid[1] = th_fork(sleeper, s);
	REQUIRE_EQ(th_await_u32(&s->attached, 2, 10000), 0);
	th_kill(spid[0]);
	th_kill(cpid);
	th_kill(spid[1]);
	/* With every participant killed, nobody ran any code: the names stay
	 * until the next create or attach on the machine sweeps them
	 * (csrc/DESIGN.md §5). Reported, then checked after that sweep. */
	printf("  everyone gone (no library call since): names left for the next sweep\n");
	check_shm(baseline, 0);
	expect_gone(s);
	printf("  after one more attach in this process:\n");
	check_shm(baseline, exact);
}

static int forked_child(void *p)
{
	struct shared *s = p;
	int rx = shmc_attach_key(s->key, SHMC_RECV);

	EXPECT_GT(rx, 0);
	if (rx > 0)
		EXPECT_EQ(shmc_detach(rx), 0);
	atomic_store(&s->attached, 1);
	if (s->how == END_KILL)
		th_sleep_ms(60000);
	return 0; /* exit() with the creator's handles inherited */
}

static void forked_child_exits(void)
{
	struct shared *s = th_shared_alloc(sizeof(*s));
	char buf[8];
	int ch, rx;

	th_section("a forked child of the creator exits or is killed: the channel stays");
	s->key = th_key();
	ch = shmc_create(s->key, SHMC_UNICAST, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	s->how = END_EXIT;
	EXPECT_CHILD_OK(th_fork(forked_child, s), 10000);
	s->how = END_KILL;
	atomic_store(&s->attached, 0);
	{
		pid_t pid = th_fork(forked_child, s);

		EXPECT_EQ(th_await_u32(&s->attached, 1, 10000), 0);
		th_kill(pid);
	}
	rx = shmc_attach_key(s->key, SHMC_RECV);
	EXPECT_GT(rx, 0);
	EXPECT_EQ(shmc_create(s->key, SHMC_UNICAST, 4, 8, 0600, 0), -EEXIST);
	EXPECT_EQ(shmc_try_send(ch, "ok", 2, 0), 2);
	if (rx > 0) {
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof(buf)), 2);
		EXPECT_EQ(shmc_detach(rx), 0);
	}
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	int exact = 0, baseline, r;

	th_init("test_creator_exit", 0);
	r = geteuid() == 0 ? th_private_shm() : -EPERM;
	exact = r == 0;
	printf("private /dev/shm: %s\n", r == 0 ? "yes" : strerror(-r));

	/* One create/destroy first: a machine-wide registry, if any, now exists. */
	r = shmc_create(th_key(), SHMC_UNICAST, 1, 1, 0600, 0);
	REQUIRE_GT(r, 0);
	EXPECT_EQ(shmc_destroy(r), 0);
	baseline = th_count_shm();
	printf("baseline: %d shmchan entr%s in /dev/shm\n", baseline, baseline == 1 ? "y" : "ies");
	th_list_shm("  ");

	creator_ends(END_EXIT, baseline, exact);
	creator_ends(END_KILL, baseline, exact);
	all_killed(baseline, exact);
	forked_child_exits();
	th_section("at the end");
	check_shm(baseline, exact);
	return th_finish();
}
