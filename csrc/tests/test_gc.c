/* SPDX-License-Identifier: MIT */
/*
 * test_gc - shmc_gc sweeps what dead processes left, now (DESIGN.md 11).
 *
 *  1. Nothing to sweep: 0, and live channels stay.
 *  2. A creator killed with kill -9 leaves its channel's names; shmc_gc
 *     removes them (its directory and id link: 2) and they are gone.
 *  3. As uid 65534: root's leftovers are not its to remove (0, they stay);
 *     root's shmc_gc then removes them.
 *
 * Runs in a private /dev/shm (root): the counts are exact. Without root it
 * is skipped.
 */
#include "harness.h"

#include <signal.h>
#include <unistd.h>

struct shared {
	uint64_t key;
	atomic_uint stage;
	atomic_int nobody_gc;
};
static struct shared *sh;

static int creator(void *arg)
{
	(void)arg;
	REQUIRE_OK(shmc_create(sh->key, SHMC_BROADCAST, 8, 64, 0644, 0));
	atomic_fetch_add(&sh->stage, 1);
	for (;;)
		pause();
}

static int nobody_gc(void *arg)
{
	(void)arg;
	atomic_store(&sh->nobody_gc, shmc_gc());
	return 0;
}

int main(void)
{
	th_init("test_gc", 0);
	if (geteuid() != 0 || th_private_shm() < 0)
		return th_skip("needs root for a private /dev/shm");
	sh = th_shared_alloc(sizeof *sh);

	th_section("nothing to sweep");
	uint64_t live = th_key();
	int keep = shmc_create(live, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_OK(keep);
	EXPECT_EQ(shmc_gc(), 0);
	EXPECT_EQ(th_count_segments(), 2);

	th_section("a killed creator's names are swept");
	sh->key = th_key();
	pid_t c = th_fork(creator, NULL);
	REQUIRE_EQ(th_await_u32(&sh->stage, 1, 10000), 0);
	th_kill(c);
	EXPECT_EQ(th_count_segments(), 4);
	EXPECT_EQ(shmc_gc(), 2);
	EXPECT_EQ(th_count_segments(), 2);
	EXPECT_EQ(shmc_gc(), 0);

	th_section("uid 65534 may not sweep root's leftovers; root may");
	sh->key = th_key();
	c = th_fork(creator, NULL);
	REQUIRE_EQ(th_await_u32(&sh->stage, 2, 10000), 0);
	th_kill(c);
	EXPECT_CHILD_OK(th_fork_nobody(nobody_gc, NULL), 10000);
	EXPECT_EQ(atomic_load(&sh->nobody_gc), 0);
	EXPECT_EQ(th_count_segments(), 4);
	EXPECT_EQ(shmc_gc(), 2);
	EXPECT_EQ(th_count_segments(), 2);
	int h = shmc_attach_key(live, SHMC_RECV);
	EXPECT_OK(h);
	EXPECT_OK(shmc_detach(h));
	EXPECT_OK(shmc_destroy(keep));
	EXPECT_EQ(th_count_segments(), 0);
	return th_finish();
}
