/* SPDX-License-Identifier: MIT */
/*
 * test_wraparound - the 64-bit positions cross 2^64 without a hiccup. With
 * the test hook shmc__test_start_position(), channels start their positions
 * just below the wrap; then order, -ENOBUFS at exactly ring_entries, the
 * broadcast gate of the slowest receiver, late joiners, targeted sends and
 * a multi-process stress run all behave as far from the wrap.
 */
#include "harness.h"
#include "shmchan_test.h"

static uint64_t start_below(uint32_t n)
{
	return UINT64_MAX - n + 1; /* n positions before the wrap */
}

static void queue_across(uint32_t delivery, uint32_t ring, uint32_t before_wrap)
{
	uint64_t key = th_key();
	uint32_t sent = 0, next = 0, v;
	int ch, tx, rx;

	th_section("delivery %u, ring %u, %u positions before the wrap: 10 laps in order",
		   delivery, ring, before_wrap);
	EXPECT_EQ(shmc__test_start_position(start_below(before_wrap)), 0);
	ch = shmc_create(key, delivery, ring, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	rx = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(rx, 0);
	while (next < 10 * ring + before_wrap) {
		/* Fill completely (-ENOBUFS exactly at ring), then drain half. */
		int r;

		while ((r = shmc_try_send(tx, &sent, sizeof(sent), 0)) == sizeof(sent))
			sent++;
		EXPECT_EQ(r, -ENOBUFS);
		EXPECT_EQ(sent - next, ring);
		for (uint32_t i = 0; i < (ring + 1) / 2; i++) {
			v = UINT32_MAX;
			EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
			if (v != next) {
				EXPECT_EQ(v, next);
				goto out;
			}
			next++;
		}
	}
	while (next < sent) {
		EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), sizeof(v));
		EXPECT_EQ(v, next);
		next++;
	}
	EXPECT_EQ(shmc_try_recv(rx, &v, sizeof(v)), -EAGAIN);
out:
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void broadcast_across(void)
{
	uint64_t key = th_key();
	uint64_t info[SHMC_INFO_COUNT];
	int ch, tx, a, b, late;
	uint32_t v;

	th_section("broadcast across the wrap: gate, late joiner, targeted");
	EXPECT_EQ(shmc__test_start_position(start_below(3)), 0);
	ch = shmc_create(key, SHMC_BROADCAST, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	tx = shmc_attach_key(key, SHMC_SEND);
	a = shmc_attach_key(key, SHMC_RECV);
	b = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(tx, 0);
	REQUIRE_GT(a, 0);
	REQUIRE_GT(b, 0);
	/* Positions 2^64-3 .. 2^64: four messages straddle the wrap. */
	for (v = 0; v < 4; v++)
		EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	for (uint32_t i = 0; i < 4; i++) {
		EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), sizeof(v));
		EXPECT_EQ(v, i);
	}
	/* b, the slowest, still holds every slot. */
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 0);
	v = 4;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), -ENOBUFS);
	late = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(late, 0);
	EXPECT_EQ(shmc_try_recv(late, &v, sizeof(v)), -EAGAIN);
	for (uint32_t i = 1; i < 5; i++) {
		EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), sizeof(v));
		EXPECT_EQ(v, i);
	}
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 4);
	EXPECT_EQ(shmc_info(late, info), SHMC_INFO_COUNT);
	v = 5;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), (uint32_t)info[SHMC_INFO_MEMBER_ID]),
		  sizeof(v));
	v = 6;
	EXPECT_EQ(shmc_try_send(tx, &v, sizeof(v), 0), sizeof(v));
	EXPECT_EQ(shmc_try_recv(late, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 5);
	EXPECT_EQ(shmc_try_recv(late, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 6);
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 6);
	EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 6);
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_detach(tx), 0);
	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_detach(b), 0);
	EXPECT_EQ(shmc_detach(late), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void targeted_across(uint32_t delivery)
{
	uint64_t key = th_key();
	uint64_t info[SHMC_INFO_COUNT];
	int ch, a, b;
	uint32_t v, bid;

	th_section("delivery %u: targeted and untargeted messages across the wrap", delivery);
	EXPECT_EQ(shmc__test_start_position(start_below(2)), 0);
	ch = shmc_create(key, delivery, 4, 8, 0600, 0);
	REQUIRE_GT(ch, 0);
	a = shmc_attach_key(key, SHMC_RECV);
	b = shmc_attach_key(key, SHMC_RECV);
	REQUIRE_GT(a, 0);
	REQUIRE_GT(b, 0);
	REQUIRE_EQ(shmc_info(b, info), SHMC_INFO_COUNT);
	bid = (uint32_t)info[SHMC_INFO_MEMBER_ID];
	for (v = 0; v < 12; v++) {
		EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), v % 2 ? bid : 0), sizeof(v));
		if (v % 2) {
			uint32_t got = UINT32_MAX;

			/* a takes the untargeted one, b its own. */
			EXPECT_EQ(shmc_try_recv(a, &got, sizeof(got)), sizeof(got));
			EXPECT_EQ(got, v - 1);
			EXPECT_EQ(shmc_try_recv(b, &got, sizeof(got)), sizeof(got));
			EXPECT_EQ(got, v);
			EXPECT_EQ(shmc_try_recv(a, &got, sizeof(got)), -EAGAIN);
		}
	}
	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_detach(b), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	static const uint32_t modes[] = { SHMC_UNICAST, SHMC_MULTICAST, SHMC_BROADCAST };

	th_init("test_wraparound", 0);
	for (int m = 0; m < 3; m++) {
		queue_across(modes[m], 1, 1);
		queue_across(modes[m], 4, 2);
		queue_across(modes[m], 8, 5);
		queue_across(modes[m], 64, 100);
	}
	broadcast_across();
	targeted_across(SHMC_UNICAST);
	targeted_across(SHMC_MULTICAST);

	th_section("multi-process stress across the wrap");
	for (int m = 0; m < 3; m++) {
		EXPECT_EQ(shmc__test_start_position(start_below(3000)), 0);
		th_stress_run(modes[m], 2, 2, 5000, 16, 128);
	}
	EXPECT_EQ(shmc__test_start_position(0), 0);
	return th_finish();
}
