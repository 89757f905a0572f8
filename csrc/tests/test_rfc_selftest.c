/* SPDX-License-Identifier: MIT */
/*
 * test_rfc_selftest - the 17 cases of the io_uring IPC RFC's selftest,
 * expressed against the shmchan API (same behaviours, our calls; where
 * SPEC.md is stricter than the RFC, the stricter rule is checked).
 */
#include "harness.h"

#include <sys/wait.h>
#include <unistd.h>

#define TEST_MSG "Hello from io_uring IPC!"

static int make(uint64_t key, uint32_t delivery, uint32_t ring, uint32_t max)
{
	int ch = shmc_create(key, delivery, ring, max, 0600, 0);

	EXPECT_GT(ch, 0);
	return ch;
}

static void nonbroadcast(void)
{
	uint64_t key = th_key();
	char buf[256] = { 0 };
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, TEST_MSG, sizeof(TEST_MSG), 0), sizeof(TEST_MSG));
	EXPECT_EQ(shmc_try_recv(sub, buf, sizeof(buf)), sizeof(TEST_MSG));
	EXPECT_STREQ(buf, TEST_MSG);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void broadcast_multi(void)
{
	uint64_t key = th_key();
	char b1[256] = { 0 }, b2[256] = { 0 };
	int ch = make(key, SHMC_BROADCAST, 16, 4096);
	int s1 = shmc_attach_key(key, SHMC_BOTH);
	int s2 = shmc_attach_key(key, SHMC_RECV);

	EXPECT_GT(s1, 0);
	EXPECT_GT(s2, 0);
	EXPECT_EQ(shmc_try_send(s1, TEST_MSG, sizeof(TEST_MSG), 0), sizeof(TEST_MSG));
	/* Both subscribers, the sender included, receive the same message. */
	EXPECT_EQ(shmc_try_recv(s1, b1, sizeof(b1)), sizeof(TEST_MSG));
	EXPECT_STREQ(b1, TEST_MSG);
	EXPECT_EQ(shmc_try_recv(s2, b2, sizeof(b2)), sizeof(TEST_MSG));
	EXPECT_STREQ(b2, TEST_MSG);
	EXPECT_EQ(shmc_detach(s1), 0);
	EXPECT_EQ(shmc_detach(s2), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void detach(void)
{
	uint64_t key = th_key();
	char buf[256];
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_try_recv(sub, buf, sizeof(buf)), -ENOENT);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void recv_only_cannot_send(void)
{
	uint64_t key = th_key();
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_RECV);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, TEST_MSG, sizeof(TEST_MSG), 0), -EACCES);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void send_only_cannot_recv(void)
{
	uint64_t key = th_key();
	char buf[256];
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_SEND);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, TEST_MSG, sizeof(TEST_MSG), 0), sizeof(TEST_MSG));
	EXPECT_EQ(shmc_try_recv(sub, buf, sizeof(buf)), -EACCES);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void ring_full(void)
{
	uint64_t key = th_key();
	int ch = make(key, SHMC_UNICAST, 2, 64);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, "X", 2, 0), 2);
	EXPECT_EQ(shmc_try_send(sub, "X", 2, 0), 2);
	EXPECT_EQ(shmc_try_send(sub, "X", 2, 0), -ENOBUFS);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void msg_too_large(void)
{
	uint64_t key = th_key();
	char big[128];
	int ch = make(key, SHMC_UNICAST, 16, 64);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	memset(big, 'A', sizeof(big));
	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, big, sizeof(big), 0), -EMSGSIZE);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void multiple_messages(void)
{
	uint64_t key = th_key();
	char sbuf[64], rbuf[64];
	int ch = make(key, SHMC_UNICAST, 16, 64);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	for (int i = 0; i < 8; i++) {
		int n = snprintf(sbuf, sizeof(sbuf), "msg-%d", i) + 1;

		EXPECT_EQ(shmc_try_send(sub, sbuf, (uint32_t)n, 0), n);
	}
	for (int i = 0; i < 8; i++) {
		int n = snprintf(sbuf, sizeof(sbuf), "msg-%d", i) + 1;

		memset(rbuf, 0, sizeof(rbuf));
		EXPECT_EQ(shmc_try_recv(sub, rbuf, sizeof(rbuf)), n);
		EXPECT_STREQ(rbuf, sbuf);
	}
	EXPECT_EQ(shmc_try_recv(sub, rbuf, sizeof(rbuf)), -EAGAIN);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void invalid_params(void)
{
	EXPECT_EQ(shmc_create(th_key(), SHMC_UNICAST, 3, 4096, 0600, 0), -EINVAL);
	EXPECT_EQ(shmc_create(th_key(), SHMC_UNICAST, 0, 4096, 0600, 0), -EINVAL);
	EXPECT_EQ(shmc_create(th_key(), SHMC_UNICAST, 16, 0, 0600, 0), -EINVAL);
	/* The RFC's BROADCAST|MULTICAST: in our API, a delivery value that is neither. */
	EXPECT_EQ(shmc_create(th_key(), SHMC_BROADCAST | SHMC_MULTICAST, 16, 4096, 0600, 0),
		  -EINVAL);
	EXPECT_EQ(shmc_create(th_key(), SHMC_UNICAST, 16, 4096, 0600, 0xFF00), -EINVAL);
}

static void attach_by_id(void)
{
	uint64_t key = th_key();
	uint64_t info[SHMC_INFO_COUNT];
	char buf[256] = { 0 };
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub;

	EXPECT_EQ(shmc_info(ch, info), SHMC_INFO_COUNT);
	sub = shmc_attach_id((int32_t)info[SHMC_INFO_CHANNEL_ID], SHMC_BOTH);
	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, TEST_MSG, sizeof(TEST_MSG), 0), sizeof(TEST_MSG));
	EXPECT_EQ(shmc_try_recv(sub, buf, sizeof(buf)), sizeof(TEST_MSG));
	EXPECT_STREQ(buf, TEST_MSG);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void recv_truncation(void)
{
	static const char long_msg[] = "This message is longer than the receive buffer";
	uint64_t key = th_key();
	char small[8];
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, long_msg, sizeof(long_msg), 0), sizeof(long_msg));
	EXPECT_EQ(shmc_try_recv(sub, small, sizeof(small)), sizeof(small));
	EXPECT_MEMEQ(small, long_msg, sizeof(small));
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void broadcast_slot_reuse(void)
{
	uint64_t key = th_key();
	char buf[256] = { 0 };
	int ch = make(key, SHMC_BROADCAST, 2, 256);
	int s1 = shmc_attach_key(key, SHMC_BOTH);
	int s2 = shmc_attach_key(key, SHMC_RECV);

	EXPECT_GT(s1, 0);
	EXPECT_GT(s2, 0);
	EXPECT_EQ(shmc_try_send(s1, "first", 6, 0), 6);
	EXPECT_EQ(shmc_try_send(s1, "second", 7, 0), 7);
	EXPECT_EQ(shmc_try_send(s1, "third", 6, 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_recv(s1, buf, sizeof(buf)), 6);
	EXPECT_EQ(shmc_try_recv(s1, buf, sizeof(buf)), 7);
	/* s2 has not read: the slots are still held. */
	EXPECT_EQ(shmc_try_send(s1, "third", 6, 0), -ENOBUFS);
	EXPECT_EQ(shmc_try_recv(s2, buf, sizeof(buf)), 6);
	EXPECT_EQ(shmc_try_recv(s2, buf, sizeof(buf)), 7);
	EXPECT_EQ(shmc_try_send(s1, "third", 6, 0), 6);
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(shmc_try_recv(s1, buf, sizeof(buf)), 6);
	EXPECT_STREQ(buf, "third");
	EXPECT_EQ(shmc_detach(s1), 0);
	EXPECT_EQ(shmc_detach(s2), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

struct cross {
	uint64_t key;
	atomic_uint attached;
};

static int cross_child(void *p)
{
	struct cross *x = p;
	char buf[256] = { 0 };
	int sub = shmc_attach_key(x->key, SHMC_BOTH);

	REQUIRE_GT(sub, 0);
	atomic_store(&x->attached, 1);
	EXPECT_EQ(shmc_recv(sub, buf, sizeof(buf), 10 * 1000000000ll), sizeof(TEST_MSG));
	EXPECT_STREQ(buf, TEST_MSG);
	EXPECT_EQ(shmc_detach(sub), 0);
	return 0;
}

static void cross_process(void)
{
	struct cross *x = th_shared_alloc(sizeof(*x));
	int ch;
	pid_t pid;

	x->key = th_key();
	ch = make(x->key, SHMC_BROADCAST, 16, 4096);
	pid = th_fork(cross_child, x);
	EXPECT_EQ(th_await_u32(&x->attached, 1, 10000), 0);
	/* The owner sends directly, as the RFC sends by channel id. */
	EXPECT_EQ(shmc_try_send(ch, TEST_MSG, sizeof(TEST_MSG), 0), sizeof(TEST_MSG));
	EXPECT_CHILD_OK(pid, 20000);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void multicast_roundrobin(void)
{
	uint64_t key = th_key();
	char b1[256] = { 0 }, b2[256] = { 0 };
	int ch = make(key, SHMC_MULTICAST, 16, 4096);
	int s1 = shmc_attach_key(key, SHMC_BOTH);
	int s2 = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(s1, 0);
	EXPECT_GT(s2, 0);
	EXPECT_EQ(shmc_try_send(s1, "msg-0", 6, 0), 6);
	EXPECT_EQ(shmc_try_send(s1, "msg-1", 6, 0), 6);
	EXPECT_EQ(shmc_try_recv(s1, b1, sizeof(b1)), 6);
	EXPECT_EQ(shmc_try_recv(s2, b2, sizeof(b2)), 6);
	CHECK(strcmp(b1, "msg-0") == 0 || strcmp(b1, "msg-1") == 0);
	CHECK(strcmp(b2, "msg-0") == 0 || strcmp(b2, "msg-1") == 0);
	CHECK(strcmp(b1, b2) != 0);
	EXPECT_EQ(shmc_detach(s1), 0);
	EXPECT_EQ(shmc_detach(s2), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void channel_destroy(void)
{
	uint64_t key = th_key();
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
	/* SPEC.md: a second destroy is ENOENT (the RFC allowed either). */
	EXPECT_EQ(shmc_destroy(ch), -ENOENT);
	EXPECT_EQ(shmc_detach(sub), 0);
}

static void unicast_targeted(void)
{
	uint64_t key = th_key();
	uint64_t info[SHMC_INFO_COUNT];
	char buf[256] = { 0 };
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int s1 = shmc_attach_key(key, SHMC_BOTH);
	int s2 = shmc_attach_key(key, SHMC_RECV);

	EXPECT_GT(s1, 0);
	EXPECT_GT(s2, 0);
	EXPECT_EQ(shmc_info(s2, info), SHMC_INFO_COUNT);
	EXPECT_EQ(shmc_try_send(s1, TEST_MSG, sizeof(TEST_MSG), (uint32_t)info[SHMC_INFO_MEMBER_ID]),
		  sizeof(TEST_MSG));
	EXPECT_EQ(shmc_try_recv(s2, buf, sizeof(buf)), sizeof(TEST_MSG));
	EXPECT_STREQ(buf, TEST_MSG);
	EXPECT_EQ(shmc_detach(s1), 0);
	EXPECT_EQ(shmc_detach(s2), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static void unicast_targeted_invalid(void)
{
	uint64_t key = th_key();
	int ch = make(key, SHMC_UNICAST, 16, 4096);
	int sub = shmc_attach_key(key, SHMC_BOTH);

	EXPECT_GT(sub, 0);
	EXPECT_EQ(shmc_try_send(sub, TEST_MSG, sizeof(TEST_MSG), 9999), -ENOENT);
	EXPECT_EQ(shmc_detach(sub), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "Non-broadcast send/recv", nonbroadcast },
	{ "Broadcast multi-receiver", broadcast_multi },
	{ "Channel detach", detach },
	{ "Recv-only cannot send", recv_only_cannot_send },
	{ "Send-only cannot recv", send_only_cannot_recv },
	{ "Ring full", ring_full },
	{ "Message too large", msg_too_large },
	{ "Multiple messages", multiple_messages },
	{ "Invalid parameters", invalid_params },
	{ "Attach by channel ID", attach_by_id },
	{ "Recv truncation", recv_truncation },
	{ "Broadcast slot reuse", broadcast_slot_reuse },
	{ "Cross-process send/recv", cross_process },
	{ "Multicast round-robin", multicast_roundrobin },
	{ "Channel destroy", channel_destroy },
	{ "Unicast targeted delivery", unicast_targeted },
	{ "Unicast targeted invalid", unicast_targeted_invalid },
};

int main(void)
{
	int total = (int)(sizeof(cases) / sizeof(cases[0]));
	int passed = 0;

	th_init("test_rfc_selftest", 0);
	for (int i = 0; i < total; i++) {
		int before = atomic_load(&th_failures);

		cases[i].fn();
		if (atomic_load(&th_failures) == before) {
			printf("  [%2d/%d] %-30s PASS\n", i + 1, total, cases[i].name);
			passed++;
		} else {
			printf("  [%2d/%d] %-30s FAIL\n", i + 1, total, cases[i].name);
		}
	}
	printf("=== Results: %d passed, %d failed (of %d) ===\n", passed, total - passed, total);
	return th_finish();
}
