/* SPDX-License-Identifier: MIT */
/*
 * test_crash_creator - the creator of a channel dies by SIGKILL.
 *
 * Per round (the delivery mode rotates unicast / broadcast / multicast):
 *   1. a forked creator creates the channel and idles (a heartbeat counter);
 *      the parent and a second child ("S") attach before anything happens;
 *   2. the creator is SIGSTOPped: it is NOT dead. Attach by key and by id
 *      still work, create of the key is -EEXIST, also after waiting past the
 *      library's probe intervals; then SIGCONT and the heartbeat resumes;
 *   3. the creator is SIGKILLed: attach by key and by id give -ENOENT, the
 *      key is free within 1 s (create succeeds), the old channel has left
 *      lookup (its directory renamed out while members remain, its id link
 *      gone), and a new attach by key reaches the new channel, which shares
 *      nothing with the old one;
 *   4. the parent and S, attached before the kill, keep sending and
 *      receiving on the old channel in both directions (checksummed,
 *      in order, none missing).
 *
 * Then one more case: a creator that fork()ed a child (plain fork, no exec;
 * the child never calls the library) before it is SIGKILLed. The spec ties
 * the channel's lifetime to the process that created it, so the key must be
 * free within 1 s although the forked child still lives.
 *
 * SHMCHAN_CRASH_ROUNDS=<n> runs n rounds (CI: 12).
 */
#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RING 16u
#define MAXMSG 256u
#define MSGS 200u   /* per direction per round */

struct shared {
	uint64_t key;
	uint32_t delivery;
	atomic_uint created;
	atomic_int chan_id;
	atomic_uint heartbeat;
	atomic_uint s_ready;       /* S attached; its subscriber id below */
	atomic_uint s_id;
	atomic_uint p_id;          /* the parent's subscriber id */
	atomic_uint go;            /* S: start the exchange */
	atomic_uint s_received, s_bad, s_order;
	atomic_uint s_sent;
	atomic_int grandchild;     /* forked-creator case */
	atomic_uint gc_exit;
};

static struct shared *sh;

static int creator_main(void *arg)
{
	(void)arg;
	int h = shmc_create(sh->key, sh->delivery, RING, MAXMSG, 0600, 0);
	if (h < 0) {
		fprintf(stderr, "creator: shmc_create: %s\n", th_errname(h));
		return 1;
	}
	atomic_store(&sh->chan_id, (int)th_info(h, SHMC_INFO_CHANNEL_ID));
	atomic_store(&sh->created, 1);
	for (;;) { /* until killed */
		atomic_fetch_add(&sh->heartbeat, 1);
		th_sleep_ms(1);
	}
}

/* S: attached before the creator dies; afterwards receives MSGS messages
 * targeted at it from the parent, then sends MSGS targeted at the parent. */
static int s_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_BOTH);
	REQUIRE_MSG(h > 0, "S attach: %s", th_errname(h));
	atomic_store(&sh->s_id, (unsigned)th_info(h, SHMC_INFO_MEMBER_ID));
	atomic_store(&sh->s_ready, 1);
	REQUIRE_MSG(th_await_u32(&sh->go, 1, 20000) == 0, "S: no go");
	unsigned char buf[MAXMSG];
	uint32_t next = 0;
	uint64_t deadline = th_now_ns() + 10000000000ull;
	while (next < MSGS && th_now_ns() < deadline) {
		int r = shmc_recv(h, buf, sizeof buf, 200000000);
		if (r == -ETIMEDOUT)
			continue;
		uint32_t p, s;
		if (r < 0 || th_msg_verify(buf, r, &p, &s) < 0 || p != 1) {
			atomic_fetch_add(&sh->s_bad, 1);
			continue;
		}
		if (s != next)
			atomic_fetch_add(&sh->s_order, 1);
		next = s + 1;
		atomic_fetch_add(&sh->s_received, 1);
	}
	uint32_t target = atomic_load(&sh->p_id);
	for (uint32_t i = 0; i < MSGS; i++) {
		uint32_t len = th_msg_build(buf, th_msg_len(MAXMSG, 2, i), 2, i);
		int r = shmc_send(h, buf, len, target, 1000000000);
		CHECK_MSG(r == (int)len, "S send %u: %s", i, th_errname(r));
		if (r != (int)len)
			break;
		atomic_fetch_add(&sh->s_sent, 1);
		/* Broadcast: our own cursor must pass the messages we sent to the
		 * parent, or we gate the ring ourselves (nothing is for us). */
		int x = shmc_try_recv(h, buf, sizeof buf);
		CHECK_MSG(x == -EAGAIN, "S: unexpected message while sending: %s", th_errname(x));
	}
	/* Stay attached until the parent has read everything. */
	CHECK_MSG(th_await_u32(&sh->go, 2, 20000) == 0, "S: no end");
	CHECK_MSG(shmc_detach(h) == 0, "S detach");
	return 0;
}

/* A creator that forks a child (which only sleeps) after creating. */
static int forking_creator_main(void *arg)
{
	(void)arg;
	int h = shmc_create(sh->key, SHMC_UNICAST, RING, MAXMSG, 0600, 0);
	if (h < 0)
		return 1;
	atomic_store(&sh->chan_id, (int)th_info(h, SHMC_INFO_CHANNEL_ID));
	pid_t g = fork();
	if (g == 0) {
		/* Never touches the library; exits when told (or after 20 s). */
		for (int i = 0; i < 20000 && !atomic_load(&sh->gc_exit); i++)
			th_sleep_ms(1);
		_exit(0);
	}
	atomic_store(&sh->grandchild, (int)g);
	atomic_store(&sh->created, 1);
	for (;;)
		th_sleep_ms(1);
}

static void forked_creator_case(void)
{
	th_section("creator that fork()ed a child (no exec) is SIGKILLed: key free within 1 s");
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	pid_t creator = th_fork(forking_creator_main, NULL);
	if (th_await_u32(&sh->created, 1, 10000) < 0) {
		CHECK_MSG(0, "forking creator did not create");
		th_kill(creator);
		return;
	}
	int32_t id = atomic_load(&sh->chan_id);
	pid_t g = atomic_load(&sh->grandchild);
	th_kill(creator);
	uint64_t t_dead = th_now_ns();
	int a, c = -1;
	for (;;) {
		a = shmc_attach_key(sh->key, SHMC_RECV);
		if (a > 0)
			shmc_detach(a);
		if (a == -ENOENT)
			c = shmc_create(sh->key, SHMC_UNICAST, RING, MAXMSG, 0600, 0);
		if (c > 0 || th_now_ns() - t_dead > 1000000000ull)
			break;
		th_sleep_ms(5);
	}
	CHECK_MSG(c > 0, "the key of a SIGKILLed creator is still taken after %.0f ms (attach by "
		  "key: %s, channel %d names in /dev/shm: %d) while the child it forked (pid %d, "
		  "never used the library) lives: the child inherited the creator's OFD lock fd",
		  th_ms(th_now_ns() - t_dead), th_errname(a), (int)id,
		  th_count_segments_of(sh->key, id),
		  (int)g);
	if (c > 0) {
		printf("key free %.2f ms after SIGKILL with a forked child alive\n",
		       th_ms(th_now_ns() - t_dead));
		shmc_destroy(c);
	}
	atomic_store(&sh->gc_exit, 1);
	/* The grandchild is not ours to reap: wait until it is gone. */
	for (int i = 0; i < 2000 && kill(g, 0) == 0; i++)
		th_sleep_ms(1);
	if (c <= 0) {
		/* Once the forked child exits the key must be free. */
		c = shmc_create(sh->key, SHMC_UNICAST, RING, MAXMSG, 0600, 0);
		printf("after the forked child exited: create %s\n", th_errname(c));
		if (c > 0)
			shmc_destroy(c);
	}
}

static const char *dname(uint32_t d)
{
	return d == SHMC_UNICAST ? "unicast" : d == SHMC_BROADCAST ? "broadcast" : "multicast";
}

struct figures {
	uint64_t max_free_ns, sum_free_ns;
	unsigned rounds, stops, msgs;
};

static void one_round(unsigned round, struct figures *fig)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->delivery = (uint32_t[]){ SHMC_UNICAST, SHMC_BROADCAST, SHMC_MULTICAST }[round % 3];
	bool long_stop = round < 3;

	pid_t creator = th_fork(creator_main, NULL);
	if (th_await_u32(&sh->created, 1, 10000) < 0) {
		CHECK_MSG(0, "round %u: creator did not create", round);
		th_kill(creator);
		return;
	}
	int32_t id = atomic_load(&sh->chan_id);

	/* The parent's subscriber and S attach while the creator lives. */
	int p = shmc_attach_key(sh->key, SHMC_BOTH);
	REQUIRE_MSG(p > 0, "round %u: attach: %s", round, th_errname(p));
	atomic_store(&sh->p_id, (unsigned)th_info(p, SHMC_INFO_MEMBER_ID));
	char dir[96], link[48];
	th_channel_path(dir, sizeof dir, sh->key, NULL);
	snprintf(link, sizeof link, "shmchan.id.%d", (int)id);
	struct stat old_dir;
	REQUIRE_MSG(stat(dir, &old_dir) == 0, "channel %d has no directory %s", (int)id, dir);
	pid_t s = th_fork(s_main, NULL);
	REQUIRE_MSG(th_await_u32(&sh->s_ready, 1, 10000) == 0, "S did not attach");

	/* ---- SIGSTOP: stopped is not dead ---- */
	kill(creator, SIGSTOP);
	int st;
	while (waitpid(creator, &st, WUNTRACED) < 0 && errno == EINTR)
		;
	CHECK_MSG(WIFSTOPPED(st), "round %u: creator not stopped", round);
	unsigned hb = atomic_load(&sh->heartbeat);
	for (int pass = 0; pass < (long_stop ? 3 : 1); pass++) {
		if (pass)
			th_sleep_ms(150); /* past the 10 ms probe and 100 ms sleep steps */
		int a = shmc_attach_key(sh->key, SHMC_RECV);
		CHECK_MSG(a > 0, "round %u: attach by key while creator stopped: %s", round, th_errname(a));
		if (a > 0)
			CHECK_MSG(shmc_detach(a) == 0, "detach");
		a = shmc_attach_id(id, SHMC_SEND);
		CHECK_MSG(a > 0, "round %u: attach by id while creator stopped: %s", round, th_errname(a));
		if (a > 0)
			CHECK_MSG(shmc_detach(a) == 0, "detach");
		int c = shmc_create(sh->key, SHMC_UNICAST, RING, MAXMSG, 0600, 0);
		CHECK_MSG(c == -EEXIST, "round %u: create while creator stopped: %s", round, th_errname(c));
		if (c > 0)
			shmc_destroy(c);
		CHECK_MSG(th_count_segments_of(sh->key, id) == 2, "round %u: names of a stopped "
			  "creator's channel gone (%d names)", round, th_count_segments_of(sh->key, id));
	}
	CHECK_MSG(atomic_load(&sh->heartbeat) == hb, "creator ran while stopped");
	fig->stops++;
	kill(creator, SIGCONT);
	uint64_t t_cont = th_now_ns();
	while (atomic_load(&sh->heartbeat) == hb && th_now_ns() - t_cont < 2000000000ull)
		th_sleep_us(200);
	CHECK_MSG(atomic_load(&sh->heartbeat) != hb, "round %u: creator did not resume", round);

	/* ---- SIGKILL ---- */
	th_kill(creator);
	uint64_t t_dead = th_now_ns();
	int a = shmc_attach_key(sh->key, SHMC_RECV);
	CHECK_MSG(a == -ENOENT, "round %u: attach by key after creator died: %s", round,
		  th_errname(a));
	if (a > 0)
		shmc_detach(a);
	a = shmc_attach_id(id, SHMC_RECV);
	CHECK_MSG(a == -ENOENT, "round %u: attach by id after creator died: %s", round,
		  th_errname(a));
	if (a > 0)
		shmc_detach(a);
	int owner2;
	for (;;) {
		owner2 = shmc_create(sh->key, sh->delivery, RING, MAXMSG, 0600, 0);
		if (owner2 > 0 || th_now_ns() - t_dead > 1000000000ull)
			break;
		th_sleep_ms(1);
	}
	uint64_t free_ns = th_now_ns() - t_dead;
	CHECK_MSG(owner2 > 0, "round %u: key not free %.1f ms after the creator died: %s", round,
		  th_ms(free_ns), th_errname(owner2));
	if (free_ns > fig->max_free_ns)
		fig->max_free_ns = free_ns;
	fig->sum_free_ns += free_ns;
	struct stat now_dir;
	CHECK_MSG(stat(dir, &now_dir) != 0 || now_dir.st_ino != old_dir.st_ino,
		  "round %u: the dead creator's directory is still %s", round, dir);
	CHECK_MSG(!th_shm_exists(link) || (owner2 > 0 && (int32_t)th_info(owner2, SHMC_INFO_CHANNEL_ID) == id),
		  "round %u: the dead creator's id link %s is still in /dev/shm", round, link);

	/* The new channel is a different one. */
	if (owner2 > 0) {
		int32_t id2 = (int32_t)th_info(owner2, SHMC_INFO_CHANNEL_ID);
		int n = shmc_attach_key(sh->key, SHMC_BOTH);
		CHECK_MSG(n > 0, "round %u: attach to the recreated channel: %s", round,
			  th_errname(n));
		if (n > 0) {
			CHECK_MSG((int32_t)th_info(n, SHMC_INFO_CHANNEL_ID) == id2, "attach reached id %d",
				  (int)th_info(n, SHMC_INFO_CHANNEL_ID));
			unsigned char b[8] = "oldchan";
			CHECK_MSG(shmc_try_send(p, b, 7, atomic_load(&sh->p_id)) == 7, "old send");
			CHECK_MSG(shmc_try_recv(n, b, sizeof b) == -EAGAIN,
				  "round %u: a message of the old channel reached the new one", round);
			CHECK_MSG(shmc_try_recv(p, b, sizeof b) == 7,
				  "old channel lost its message");
			shmc_detach(n);
		}
	}

	/* ---- the survivors keep working on the old channel ---- */
	atomic_store(&sh->go, 1);
	unsigned char buf[MAXMSG];
	uint32_t target = atomic_load(&sh->s_id);
	uint32_t next = 0, bad = 0, order = 0;
	for (uint32_t i = 0; i < MSGS; i++) {
		uint32_t len = th_msg_build(buf, th_msg_len(MAXMSG, 1, i), 1, i);
		int r = shmc_send(p, buf, len, target, 1000000000);
		CHECK_MSG(r == (int)len, "round %u: send %u on the old channel: %s", round, i, th_errname(r));
		if (r != (int)len)
			break;
		/* Broadcast: move our own cursor past what we sent to S. After our
		 * last send, S may already have started replying: count it. */
		int x = shmc_try_recv(p, buf, sizeof buf);
		if (x == -EAGAIN)
			continue;
		uint32_t pr, sq;
		if (x < 0 || th_msg_verify(buf, x, &pr, &sq) < 0 || pr != 2) {
			bad++;
			continue;
		}
		order += sq != next;
		next = sq + 1;
	}
	uint64_t deadline = th_now_ns() + 10000000000ull;
	while (next < MSGS && th_now_ns() < deadline) {
		int r = shmc_recv(p, buf, sizeof buf, 200000000);
		if (r == -ETIMEDOUT)
			continue;
		uint32_t pr, sq;
		if (r < 0 || th_msg_verify(buf, r, &pr, &sq) < 0 || pr != 2) {
			bad++;
			continue;
		}
		order += sq != next;
		next = sq + 1;
	}
	atomic_store(&sh->go, 2);
	CHECK_MSG(th_wait(s, 15000) == 0, "round %u: S failed", round);
	CHECK_MSG(atomic_load(&sh->s_received) == MSGS && atomic_load(&sh->s_bad) == 0 &&
		  atomic_load(&sh->s_order) == 0,
		  "round %u: S got %u/%u (bad %u, out of order %u)", round,
		  atomic_load(&sh->s_received), MSGS, atomic_load(&sh->s_bad), atomic_load(&sh->s_order));
	CHECK_MSG(next == MSGS && bad == 0 && order == 0,
		  "round %u: parent got %u/%u from S (bad %u, out of order %u)", round, next, MSGS, bad,
		  order);
	fig->msgs += atomic_load(&sh->s_received) + next;
	CHECK_MSG(shmc_detach(p) == 0, "detach old");
	if (owner2 > 0)
		CHECK_MSG(shmc_destroy(owner2) == 0, "destroy new");
	printf("round %u (%s): key free %.2f ms after SIGKILL; %u+%u messages after the kill\n",
	       round, dname(sh->delivery), th_ms(free_ns), atomic_load(&sh->s_received), next);
	fig->rounds++;
}

int main(void)
{
	unsigned rounds = th_rounds(12);
	th_init("test_crash_creator", th_watchdog_for_rounds(100));
	sh = th_shared_alloc(sizeof *sh);
	th_section("creator SIGSTOPped is alive, SIGKILLed frees its key within 1 s; "
		   "subscribers attached before keep working (%u rounds)", rounds);
	struct figures fig = { 0 };
	for (unsigned r = 0; r < rounds; r++)
		one_round(r, &fig);
	forked_creator_case();
	printf("figures: rounds %u, SIGSTOP checks %u, key free after SIGKILL: max %.2f ms, "
	       "mean %.2f ms; %u messages exchanged after the creator died\n",
	       fig.rounds, fig.stops, th_ms(fig.max_free_ns),
	       fig.rounds ? th_ms(fig.sum_free_ns / fig.rounds) : 0.0, fig.msgs);
	return th_finish();
}
