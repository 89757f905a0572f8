/* SPDX-License-Identifier: MIT */
/*
 * test_attack_doorbell - doorbells only for those who may wake them
 * (csrc/DESIGN.md 8). Root owns the channels and parks event-loop style (a
 * listening socket at the library's path, shmc_park); the attacker is a
 * child running as uid 65534 (nobody).
 *
 *   1. an outsider (a 0600 channel) cannot reach root's doorbell at all; the
 *      alias it was bound through is gone once sealed;
 *   2. a reader (0644) learns the socket's name (the directory and root's
 *      member file are readable) but cannot connect to a receive doorbell
 *      (EACCES: only senders may); it may connect to a send doorbell, by
 *      design (receivers wake senders);
 *   3. a wake that could not be delivered is not counted as delivered: with
 *      root's doorbell backlog filled by a sender's connections, root's send
 *      cannot ring it, the park is restored (the bit and the count), and once
 *      the backlog drains the next send rings it (0.2.0's "Bun stayed
 *      deaf");
 *   4. a member cannot redirect wakes: nobody, a member, names root's token
 *      (or another token, bound by another process of its own) in its member
 *      file: root's waker only ever connects to nobody's own slot's name, and
 *      refuses a listener that is not the member (SO_PEERCRED): the impostor
 *      gets no byte, root's own receiver still gets its wakes.
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct shared {
	uint64_t key;
	int32_t id;
	char dir[96];
	uint32_t root_slot;
	uint64_t root_token;
	atomic_int r[8];
	atomic_uint done, go, step;
	atomic_uint impostor_bytes;
};

static struct shared *sh;

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int r = connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* The sealed doorbell of member @slot, token @token, direction @d. */
static void bell_path(char *out, size_t n, uint32_t slot, uint64_t token, char d)
{
	snprintf(out, n, "%s/b%u.%016" PRIx64 ".%c", sh->dir, slot, token, d);
}

/* Root's member of handle @h: its slot and receive token (from its file). */
static void root_member(int h)
{
	struct th_map m;
	REQUIRE_EQ(th_map_channel(sh->id, sh->key, &m), 0);
	int idx = th_member_of(&m, h);
	REQUIRE_GE(idx, 0);
	sh->root_slot = (uint32_t)idx;
	sh->root_token = atomic_load(&m.members[idx]->token_r);
	th_unmap(&m);
}

/* ---- 1, 2: who may connect ------------------------------------------------------ */

static int prober(void *arg)
{
	uint64_t send_token = (uint64_t)(uintptr_t)arg;
	char path[200];
	bell_path(path, sizeof path, sh->root_slot, sh->root_token, 'r');
	int fd = connect_to(path);
	atomic_store(&sh->r[0], fd < 0 ? fd : 0);
	if (fd >= 0)
		close(fd);
	if (send_token) {
		bell_path(path, sizeof path, sh->root_slot, send_token, 's');
		fd = connect_to(path);
		atomic_store(&sh->r[1], fd < 0 ? fd : 0);
		if (fd >= 0)
			close(fd);
	}
	/* And the member file: may it learn the token at all? */
	snprintf(path, sizeof path, "%s/m%u", sh->dir, sh->root_slot);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	atomic_store(&sh->r[2], fd < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	return 0;
}

static void part_connect(uint32_t mode)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_UNICAST, 8, 64, mode, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int both = shmc_attach_key(sh->key, SHMC_BOTH);
	REQUIRE_GT(both, 0);
	struct th_bell rb, sb;
	REQUIRE_EQ(th_bell_open(&rb, both, SHMC_WAIT_RECV, 16), 0);
	REQUIRE_EQ(th_bell_open(&sb, both, SHMC_WAIT_SEND, 16), 0);
	CHECK_MSG(access(rb.path, F_OK) != 0, "the alias %s outlived the seal", rb.path);
	root_member(both);
	struct th_map m;
	REQUIRE_EQ(th_map_channel(sh->id, sh->key, &m), 0);
	uint64_t send_token = atomic_load(&m.members[sh->root_slot]->token_s);
	th_unmap(&m);
	EXPECT_EQ(shmc_park(both, SHMC_WAIT_RECV), 0);
	EXPECT_CHILD_OK(th_fork_nobody(prober, (void *)(uintptr_t)send_token), 20000);
	int rcv = atomic_load(&sh->r[0]), snd = atomic_load(&sh->r[1]), mem = atomic_load(&sh->r[2]);
	printf("    mode 0%o: nobody reads root's member file: %s; connects to root's receive "
	       "doorbell: %s, send doorbell: %s\n", mode, th_errname(mem), th_errname(rcv),
	       th_errname(snd));
	EXPECT_EQ(rcv, -EACCES);
	if (mode & 4) {
		EXPECT_EQ(mem, 0);
		EXPECT_EQ(snd, 0); /* by design: receivers wake senders */
	} else {
		EXPECT_EQ(mem, -EACCES);
		EXPECT_EQ(snd, -EACCES);
	}
	/* Nothing rang root's receive doorbell. */
	EXPECT_EQ(th_bell_wait(&rb, 50), 0);
	EXPECT_EQ(shmc_unpark(both, SHMC_WAIT_RECV), 0);
	th_bell_close(&rb);
	th_bell_close(&sb);
	EXPECT_EQ(shmc_detach(both), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* ---- 3: an undeliverable wake is restored ------------------------------------------- */

static int backlog_filler(void *arg)
{
	(void)arg;
	char path[200];
	bell_path(path, sizeof path, sh->root_slot, sh->root_token, 'r');
	int fds[64], n = 0, refused = 0;
	for (int i = 0; i < 64; i++) {
		int fd = connect_to(path);
		if (fd >= 0)
			fds[n++] = fd;
		else
			refused += fd == -EAGAIN;
	}
	atomic_store(&sh->r[0], n);
	atomic_store(&sh->r[1], refused);
	atomic_store(&sh->done, 1);
	th_await_u32(&sh->go, 1, 20000);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

static void part_backlog(void)
{
	th_section("3. a wake that could not be delivered is restored, and rings later");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_UNICAST, 8, 64, 0666, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	struct th_bell rb;
	REQUIRE_EQ(th_bell_open(&rb, rx, SHMC_WAIT_RECV, 1), 0); /* a backlog of one */
	root_member(rx);
	EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	/* nobody, a sender by the mode, fills the backlog and holds it. */
	pid_t f = th_fork_nobody(backlog_filler, NULL);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	printf("    nobody holds %d connections in the backlog (%d more refused: EAGAIN)\n",
	       atomic_load(&sh->r[0]), atomic_load(&sh->r[1]));
	EXPECT_GT(atomic_load(&sh->r[1]), 0);
	EXPECT_EQ(shmc_try_send(ch, "one", 3, 0), 3);
	struct th_map m;
	REQUIRE_EQ(th_map_channel(sh->id, sh->key, &m), 0);
	uint32_t parked = atomic_load(&m.waits[sh->root_slot].parked);
	uint32_t count = atomic_load(&m.ctl->recv_parked);
	printf("    root's send could not ring it: root's park bit %s, recv_parked %u\n",
	       parked & SHMC_WAIT_RECV ? "still set (restored)" : "CLEARED (counted as delivered)",
	       count);
	EXPECT_EQ(parked & SHMC_WAIT_RECV, SHMC_WAIT_RECV);
	EXPECT_EQ(count, 1);
	/* nobody leaves; root drains its backlog (closing what it accepts). */
	atomic_store(&sh->go, 1);
	EXPECT_CHILD_OK(f, 20000);
	th_bell_wait(&rb, 100);
	th_bell_drop_conns(&rb);
	EXPECT_EQ(shmc_try_send(ch, "two", 3, 0), 3);
	int bytes = th_bell_wait(&rb, 5000);
	printf("    after nobody left, root's next send rang the doorbell: %s\n", bytes > 0 ? "yes" : "NO");
	EXPECT_GT(bytes, 0);
	char buf[8];
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 3);
	EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 3);
	th_unmap(&m);
	th_bell_close(&rb);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

/* ---- 4: no redirection ------------------------------------------------------------- */

/* A process of nobody's listening at a name it chose in the channel's
 * directory: it counts the bytes it gets. */
static int impostor(void *arg)
{
	char *path = arg;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) < sizeof sa.sun_path ? strlen(path) + 1 : 0);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 16) < 0 ||
	    chmod(path, 0666) < 0) {
		atomic_store(&sh->r[4], -errno);
		return 1;
	}
	atomic_store(&sh->step, 1);
	int conns[16], n = 0;
	while (!atomic_load(&sh->go)) {
		struct pollfd p[17];
		int k = 0;
		p[k++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < n; i++)
			p[k++] = (struct pollfd){ .fd = conns[i], .events = POLLIN };
		if (poll(p, (nfds_t)k, 20) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n < 16) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				conns[n++] = c;
		}
		for (int i = 1; i < k; i++) {
			char b[64];
			ssize_t r;
			if ((p[i].revents & POLLIN) && (r = read(p[i].fd, b, sizeof b)) > 0)
				atomic_fetch_add(&sh->impostor_bytes, (unsigned)r);
		}
	}
	unlink(path);
	return 0;
}

/* nobody as a member: a real doorbell, parked, then its own file rewritten
 * to name another token. */
static int redirecting_member(void *arg)
{
	uint64_t token = (uint64_t)(uintptr_t)arg;
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	struct th_bell b;
	REQUIRE_EQ(th_bell_open(&b, rx, SHMC_WAIT_RECV, 16), 0);
	struct th_map m;
	REQUIRE_EQ(th_map_channel(sh->id, sh->key, &m), 0);
	int idx = th_member_of(&m, rx);
	REQUIRE_GE(idx, 0);
	atomic_store(&sh->r[5], idx);
	REQUIRE_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
	/* Its own file: writable by it. */
	atomic_store(&m.members[idx]->token_r, token);
	atomic_store(&sh->done, 1);
	th_await_u32(&sh->go, 1, 30000);
	th_unmap(&m);
	th_bell_close(&b);
	shmc_detach(rx);
	return 0;
}

static void part_redirect(void)
{
	th_section("4. a member names a token that is not its doorbell's");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	th_channel_path(sh->dir, sizeof sh->dir, sh->key, NULL);
	int ch = shmc_create(sh->key, SHMC_BROADCAST, 64, 64, 0666, 0);
	REQUIRE_GT(ch, 0);
	sh->id = (int32_t)th_info(ch, SHMC_INFO_CHANNEL_ID);
	int rx = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_GT(rx, 0);
	struct th_bell rb;
	REQUIRE_EQ(th_bell_open(&rb, rx, SHMC_WAIT_RECV, 16), 0);
	root_member(rx);
	uint64_t fake = th_key();
	pid_t mem = th_fork_nobody(redirecting_member, (void *)(uintptr_t)fake);
	REQUIRE_EQ(th_await_u32(&sh->done, 1, 20000), 0);
	uint32_t nslot = (uint32_t)atomic_load(&sh->r[5]);
	/* Another process of nobody's listens where the rewritten token points. */
	static char ipath[200];
	bell_path(ipath, sizeof ipath, nslot, fake, 'r');
	pid_t imp = th_fork_nobody(impostor, ipath);
	REQUIRE_EQ(th_await_u32(&sh->step, 1, 20000), 0);
	char buf[8];
	for (int i = 0; i < 20; i++) {
		EXPECT_EQ(shmc_park(rx, SHMC_WAIT_RECV), 0);
		EXPECT_EQ(shmc_try_send(ch, "msg", 3, 0), 3);
		EXPECT_GT(th_bell_wait(&rb, 5000), 0); /* root's own wake arrives */
		EXPECT_EQ(shmc_try_recv(rx, buf, sizeof buf), 3);
	}
	th_sleep_ms(100);
	printf("    20 sends: root's receiver rung each time; the impostor listening at nobody's "
	       "rewritten name got %u bytes (the waker checks the listener is the member)\n",
	       atomic_load(&sh->impostor_bytes));
	EXPECT_EQ(atomic_load(&sh->impostor_bytes), 0);
	atomic_store(&sh->go, 1);
	EXPECT_CHILD_OK(imp, 20000);
	EXPECT_CHILD_OK(mem, 20000);
	th_bell_close(&rb);
	EXPECT_EQ(shmc_detach(rx), 0);
	EXPECT_EQ(shmc_destroy(ch), 0);
}

int main(void)
{
	th_init("test_attack_doorbell", 0);
	if (geteuid() != 0)
		return th_skip("needs root, to play uid 65534 against root's channels");
	sh = th_shared_alloc(sizeof *sh);
	th_section("1. an outsider (mode 0600)");
	part_connect(0600);
	th_section("2. a reader (mode 0644)");
	part_connect(0644);
	part_backlog();
	part_redirect();
	return th_finish();
}
