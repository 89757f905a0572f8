/* SPDX-License-Identifier: MIT */
/*
 * test_targeted - a targeted send reaches its target only, in unicast,
 * multicast and broadcast; a target that is not a receiving subscriber of
 * the channel (unknown, send-only, detached, the owner, another channel's)
 * is -ENOENT; request/reply across processes by subscriber id.
 */
#include "harness.h"

#include <unistd.h>

static const char *mode_name(uint32_t d)
{
	return d == SHMC_UNICAST ? "unicast" : d == SHMC_BROADCAST ? "broadcast" : "multicast";
}

static uint32_t member_id(int h)
{
	uint64_t info[SHMC_INFO_COUNT];

	REQUIRE_EQ(shmc_info(h, info), SHMC_INFO_COUNT);
	return (uint32_t)info[SHMC_INFO_MEMBER_ID];
}

/* Receive everything @h can get now into @out (values), return the count. */
static int drain(int h, uint32_t *out, int max)
{
	int n = 0;
	uint32_t v;

	for (;;) {
		int r = shmc_try_recv(h, &v, sizeof(v));

		if (r == -EAGAIN)
			return n;
		EXPECT_EQ(r, sizeof(v));
		if (r != (int)sizeof(v) || n == max)
			return n;
		out[n++] = v;
	}
}

static void send_u32(int h, uint32_t v, uint32_t target)
{
	EXPECT_EQ(shmc_try_send(h, &v, sizeof(v), target), sizeof(v));
}

static void only_target(uint32_t delivery)
{
	uint64_t key = th_key(), key2 = th_key();
	uint32_t got[16], v;
	int ch, ch2, a, b, c, s, other, n;
	uint32_t bid, cid, sid, aid, other_id;

	th_section("%s: targeted messages reach the target only", mode_name(delivery));
	ch = shmc_create(key, delivery, 16, 16, 0600, 0);
	REQUIRE_GT(ch, 0);
	a = shmc_attach_key(key, SHMC_BOTH); /* sender, also a receiver */
	b = shmc_attach_key(key, SHMC_RECV);
	c = shmc_attach_key(key, SHMC_RECV);
	s = shmc_attach_key(key, SHMC_SEND);
	REQUIRE_GT(a, 0);
	REQUIRE_GT(b, 0);
	REQUIRE_GT(c, 0);
	REQUIRE_GT(s, 0);
	aid = member_id(a);
	bid = member_id(b);
	cid = member_id(c);
	sid = member_id(s);

	/* Only a targeted message queued: nobody but b may see it. */
	send_u32(a, 1, bid);
	EXPECT_EQ(shmc_try_recv(c, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_pending(c), 0);
	EXPECT_EQ(shmc_pending(b), 1);
	EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 1);
	EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), -EAGAIN);

	/* From the owner handle, and to the sender itself. */
	send_u32(ch, 2, cid);
	send_u32(s, 3, aid);
	EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), -EAGAIN);
	EXPECT_EQ(shmc_try_recv(c, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 2);
	EXPECT_EQ(shmc_try_recv(a, &v, sizeof(v)), sizeof(v));
	EXPECT_EQ(v, 3);

	if (delivery != SHMC_BROADCAST) {
		/* Mixed with normal traffic: c drains first, b takes its own later. */
		int blocked;

		send_u32(s, 10, 0);
		send_u32(s, 11, bid);
		send_u32(s, 12, 0);
		n = drain(c, got, 16);
		blocked = n == 1;
		if (blocked)
			printf("  note: the message after one targeted at b waited for b (head-of-line)\n");
		EXPECT_EQ(shmc_try_recv(b, &v, sizeof(v)), sizeof(v));
		EXPECT_EQ(v, 11);
		n += drain(c, got + n, 16 - n);
		EXPECT_EQ(n, 2);
		if (n == 2) {
			EXPECT_EQ(got[0], 10);
			EXPECT_EQ(got[1], 12);
		}
		EXPECT_EQ(drain(a, got, 16), 0);
		EXPECT_EQ(drain(b, got, 16), 0);
	} else {
		/* Broadcast: untargeted to all, targeted to b only; order kept. */
		send_u32(s, 10, 0);
		send_u32(s, 11, bid);
		send_u32(s, 12, 0);
		n = drain(a, got, 16);
		EXPECT_EQ(n, 2);
		if (n == 2) {
			EXPECT_EQ(got[0], 10);
			EXPECT_EQ(got[1], 12);
		}
		n = drain(c, got, 16);
		EXPECT_EQ(n, 2);
		if (n == 2) {
			EXPECT_EQ(got[0], 10);
			EXPECT_EQ(got[1], 12);
		}
		n = drain(b, got, 16);
		EXPECT_EQ(n, 3);
		if (n == 3) {
			EXPECT_EQ(got[0], 10);
			EXPECT_EQ(got[1], 11);
			EXPECT_EQ(got[2], 12);
		}
	}

	th_section("%s: invalid targets -> -ENOENT, nothing queued", mode_name(delivery));
	ch2 = shmc_create(key2, delivery, 4, 16, 0600, 0);
	REQUIRE_GT(ch2, 0);
	other = shmc_attach_key(key2, SHMC_RECV);
	REQUIRE_GT(other, 0);
	other_id = member_id(other);
	v = 99;
	EXPECT_EQ(shmc_try_send(a, &v, sizeof(v), 9999), -ENOENT);
	EXPECT_EQ(shmc_try_send(a, &v, sizeof(v), UINT32_MAX), -ENOENT);
	EXPECT_EQ(shmc_try_send(a, &v, sizeof(v), 0x80000000u), -ENOENT);
	EXPECT_EQ(shmc_send(a, &v, sizeof(v), 9999, 1000000), -ENOENT);
	/* A send-only subscriber is not a receiving subscriber. */
	EXPECT_EQ(shmc_try_send(a, &v, sizeof(v), sid), -ENOENT);
	EXPECT_EQ(shmc_try_send(ch, &v, sizeof(v), sid), -ENOENT);
	/* A subscriber of another channel (if its id is not also used here). */
	if (other_id != aid && other_id != bid && other_id != cid && other_id != sid)
		EXPECT_EQ(shmc_try_send(a, &v, sizeof(v), other_id), -ENOENT);
	/* A receiver that has detached. */
	EXPECT_EQ(shmc_detach(c), 0);
	EXPECT_EQ(shmc_try_send(a, &v, sizeof(v), cid), -ENOENT);
	EXPECT_EQ(drain(a, got, 16), 0);
	EXPECT_EQ(drain(b, got, 16), 0);
	EXPECT_EQ(shmc_detach(other), 0);
	EXPECT_EQ(shmc_destroy(ch2), 0);

	EXPECT_EQ(shmc_detach(a), 0);
	EXPECT_EQ(shmc_detach(b), 0);
	EXPECT_EQ(shmc_detach(s), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* ---- request/reply across processes ------------------------------------------ */

#define CLIENTS 3
#define REQUESTS 50

struct rr {
	uint64_t key;
	uint32_t server_id;
	atomic_uint ready;
};

struct rr_arg {
	struct rr *rr;
	uint32_t index;
};

static int client(void *p)
{
	struct rr_arg *a = p;
	int h = shmc_attach_key(a->rr->key, SHMC_BOTH);
	uint32_t me;

	REQUIRE_GT(h, 0);
	me = member_id(h);
	for (uint32_t i = 0; i < REQUESTS; i++) {
		uint32_t req[3] = { me, a->index, i }, rep[3] = { 0, 0, 0 };

		/* Ask the server; it replies to our subscriber id. */
		REQUIRE_EQ(shmc_send(h, req, sizeof(req), a->rr->server_id, 20 * 1000000000ll),
			   sizeof(req));
		REQUIRE_EQ(shmc_recv(h, rep, sizeof(rep), 20 * 1000000000ll), sizeof(rep));
		EXPECT_EQ(rep[0], me);
		EXPECT_EQ(rep[1], a->index);
		EXPECT_EQ(rep[2], i + 1000);
	}
	EXPECT_EQ(shmc_detach(h), 0);
	return 0;
}

static void request_reply(uint32_t delivery)
{
	struct rr *rr = th_shared_alloc(sizeof(*rr));
	struct rr_arg args[CLIENTS];
	pid_t pids[CLIENTS];
	int ch, server;
	/*
	 * Broadcast: one client. With several, a client blocked in send while
	 * it is the slowest reader of the others' traffic could wait on itself.
	 */
	int clients = delivery == SHMC_BROADCAST ? 1 : CLIENTS;

	th_section("%s: request/reply, %d client process(es) x %d requests",
		   mode_name(delivery), clients, REQUESTS);
	rr->key = th_key();
	ch = shmc_create(rr->key, delivery, 8, 16, 0600, 0);
	REQUIRE_GT(ch, 0);
	server = shmc_attach_key(rr->key, SHMC_BOTH);
	REQUIRE_GT(server, 0);
	rr->server_id = member_id(server);
	for (int i = 0; i < clients; i++) {
		args[i].rr = rr;
		args[i].index = (uint32_t)i;
		pids[i] = th_fork(client, &args[i]);
	}
	for (int i = 0; i < clients * REQUESTS; i++) {
		uint32_t req[3];

		if (shmc_recv(server, req, sizeof(req), 20 * 1000000000ll) != sizeof(req)) {
			th_fail_at(__FILE__, __LINE__, "server: request %d missing", i);
			break;
		}
		req[2] += 1000;
		EXPECT_EQ(shmc_send(server, req, sizeof(req), req[0], 20 * 1000000000ll),
			  sizeof(req));
	}
	for (int i = 0; i < clients; i++)
		EXPECT_CHILD_OK(pids[i], 30000);
	EXPECT_EQ(shmc_detach(server), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	static const uint32_t modes[] = { SHMC_UNICAST, SHMC_MULTICAST, SHMC_BROADCAST };

	th_init("test_targeted", 0);
	for (int i = 0; i < 3; i++)
		only_target(modes[i]);
	for (int i = 0; i < 3; i++)
		request_reply(modes[i]);
	return th_finish();
}
