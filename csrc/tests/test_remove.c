/* SPDX-License-Identifier: MIT */
/*
 * test_remove - shmc_remove_key / shmc_remove_id take a channel out of
 * lookup, like ipcrm, for its owner uid and root only (DESIGN.md 11).
 *
 *  1. The owner removes its channel: the next attach is -ENOENT, the key is
 *     free; members (the creator included) keep sending and receiving; a
 *     second remove is -ENOENT; the creator's destroy still succeeds; the
 *     channel's names are gone once its members are.
 *  2. By id.
 *  3. As uid 65534: root's 0666 channel (which it may attach) and root's
 *     0600 one are refused with -EACCES and stay attachable; its own channel
 *     it may remove; root may remove uid 65534's.
 *  4. Bad arguments.
 */
#include "harness.h"

#include <signal.h>
#include <unistd.h>

struct shared {
	uint64_t key_open, key_closed, key_theirs;
	atomic_uint stage;
};
static struct shared *sh;

static int nobody_removes(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key_open, SHMC_BOTH);
	EXPECT_OK(h);
	EXPECT_EQ(shmc_remove_key(sh->key_open), -EACCES);
	EXPECT_EQ(shmc_remove_key(sh->key_closed), -EACCES);
	if (h >= 0)
		EXPECT_OK(shmc_detach(h));
	int mine = shmc_create(sh->key_theirs, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_OK(mine);
	uint64_t k = th_key();
	int own = shmc_create(k, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_OK(own);
	EXPECT_EQ(shmc_remove_key(k), 0);
	EXPECT_EQ(shmc_attach_key(k, SHMC_RECV), -ENOENT);
	EXPECT_OK(shmc_destroy(own));
	atomic_store(&sh->stage, 1);
	for (;;)
		pause(); /* keeps key_theirs alive until killed */
}

int main(void)
{
	th_init("test_remove", 0);
	sh = th_shared_alloc(sizeof *sh);

	th_section("the owner removes its channel: attaches fail, members go on");
	uint64_t key = th_key();
	int owner = shmc_create(key, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_OK(owner);
	uint64_t info[SHMC_INFO_COUNT];
	REQUIRE_OK(shmc_info(owner, info));
	int32_t id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	int rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_OK(rx);
	EXPECT_EQ(shmc_remove_key(key), 0);
	EXPECT_EQ(shmc_attach_key(key, SHMC_RECV), -ENOENT);
	EXPECT_EQ(shmc_attach_id(id, SHMC_RECV), -ENOENT);
	EXPECT_EQ(shmc_remove_key(key), -ENOENT);
	EXPECT_EQ(shmc_try_send(owner, "still", 5, 0), 5);
	char buf[16];
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 5);
	int again = shmc_create(key, SHMC_BROADCAST, 8, 64, 0600, 0); /* the key is free */
	EXPECT_OK(again);
	EXPECT_OK(shmc_destroy(again));
	EXPECT_OK(shmc_detach(rx));
	EXPECT_OK(shmc_destroy(owner));
	EXPECT_EQ(th_count_segments_of(key, id), 0);

	th_section("by id");
	key = th_key();
	owner = shmc_create(key, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_OK(owner);
	REQUIRE_OK(shmc_info(owner, info));
	id = (int32_t)info[SHMC_INFO_CHANNEL_ID];
	EXPECT_EQ(shmc_remove_id(id), 0);
	EXPECT_EQ(shmc_attach_key(key, SHMC_SEND), -ENOENT);
	EXPECT_EQ(shmc_remove_id(id), -ENOENT);
	EXPECT_OK(shmc_destroy(owner));
	EXPECT_EQ(th_count_segments_of(key, id), 0);

	th_section("bad arguments");
	EXPECT_EQ(shmc_remove_key(0), -EINVAL);
	EXPECT_EQ(shmc_remove_id(0), -EINVAL);
	EXPECT_EQ(shmc_remove_id(-5), -EINVAL);
	EXPECT_EQ(shmc_remove_key(th_key()), -ENOENT);

	if (geteuid() != 0) {
		th_section("not root: the uid 65534 cases are skipped");
		return th_finish();
	}
	th_section("uid 65534 may not remove root's channels, only its own; root may remove its");
	sh->key_open = th_key();
	sh->key_closed = th_key();
	sh->key_theirs = th_key();
	int open_ch = shmc_create(sh->key_open, SHMC_UNICAST, 8, 64, 0666, 0);
	int closed_ch = shmc_create(sh->key_closed, SHMC_UNICAST, 8, 64, 0600, 0);
	REQUIRE_OK(open_ch);
	REQUIRE_OK(closed_ch);
	pid_t n = th_fork_nobody(nobody_removes, NULL);
	REQUIRE_EQ(th_await_u32(&sh->stage, 1, 10000), 0);
	int h = shmc_attach_key(sh->key_open, SHMC_RECV);
	EXPECT_OK(h);
	EXPECT_OK(shmc_detach(h));
	h = shmc_attach_key(sh->key_closed, SHMC_RECV);
	EXPECT_OK(h);
	EXPECT_OK(shmc_detach(h));
	uint64_t look[SHMC_LOOKUP_COUNT];
	REQUIRE_OK(shmc_lookup_key(sh->key_theirs, look));
	EXPECT_EQ(look[SHMC_LOOKUP_OWNER_UID], TH_NOBODY);
	EXPECT_EQ(shmc_remove_key(sh->key_theirs), 0);
	EXPECT_EQ(shmc_lookup_key(sh->key_theirs, look), -ENOENT);
	th_kill(n);
	EXPECT_OK(shmc_destroy(open_ch));
	EXPECT_OK(shmc_destroy(closed_ch));
	return th_finish();
}
