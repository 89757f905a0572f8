/* SPDX-License-Identifier: MIT */
/*
 * test_crash_broadcast_receiver - a broadcast receiver dies while it is the
 * one holding the ring full.
 *
 * Per round: a broadcast channel, a sender (the parent) and two receivers in
 * child processes: L (live, reads everything) and V (the victim). V stops
 * reading, the parent fills the ring until try_send says -ENOBUFS, checks
 * through its own mapping that V's cursor is the gate (tail - cursor == ring
 * size), and V is SIGKILLed. Then:
 *   - within 1 s the sender regains room: shmc_send with a timeout succeeds;
 *   - the parent sends many more messages, every one with shmc_send and a
 *     1 s timeout (none may time out);
 *   - L receives every message sent since it attached, in order, each one
 *     checksummed: none missing, none duplicated, none corrupt.
 *
 * Variants (rotating):
 *   idle      V attached and never read;
 *   slow      V read part of the stream, slowly, then stopped;
 *   parked    the sender is already blocked in shmc_send (futex) when V dies
 *             (a killer child SIGKILLs V 100 ms later);
 *   forked    V fork()ed a helper (plain fork, no exec, never uses the
 *             library) before it died; the helper outlives V. V is dead, so
 *             its gate must go within 1 s all the same.
 *
 * SHMCHAN_CRASH_ROUNDS=<n> runs n rounds (CI: 16, four of each variant).
 */
#include "harness.h"

#include <signal.h>

/* How soon after the kill the sender must have room: 1 s. A sanitizer's
 * process takes seconds to die under load (the kernel unmaps its shadow
 * memory before it closes its descriptors, and so its locks): there, 5 s. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ROOM_BOUND_NS 5000000000ull
#else
#define ROOM_BOUND_NS 1000000000ull
#endif
#include <sys/wait.h>
#include <unistd.h>

#define MAXMSG 512u

enum variant { V_IDLE, V_SLOW, V_PARKED, V_FORKED, V_COUNT };
static const char *vname[] = { "idle", "slow", "parked", "forked" };

struct shared {
	uint64_t key;
	int variant;
	atomic_uint l_ready, v_ready;
	atomic_uint v_read;          /* messages V read */
	atomic_uint v_stop;          /* V: stop reading */
	atomic_int helper;           /* V's forked helper */
	atomic_uint helper_exit;
	atomic_uint total;           /* messages sent, valid once done == 1 */
	atomic_uint done;
	atomic_uint l_count, l_bad, l_missing, l_dup, l_order;
	atomic_uint l_finished;
	atomic_ullong kill_ns;       /* when V was killed (killer child) */
	atomic_int victim;           /* V's pid, for the killer */
	atomic_uint arm_killer;
};

static struct shared *sh;

static int live_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "L attach: %s", th_errname(h));
	atomic_store(&sh->l_ready, 1);
	unsigned char buf[MAXMSG];
	uint32_t next = 0;
	uint64_t deadline = th_now_ns() + 30000000000ull;
	for (;;) {
		if (atomic_load(&sh->done) && next >= atomic_load(&sh->total))
			break;
		if (th_now_ns() > deadline) {
			CHECK_MSG(0, "L: gave up at message %u of %u", next,
				  atomic_load(&sh->total));
			break;
		}
		int r = shmc_recv(h, buf, sizeof buf, 100000000);
		if (r == -ETIMEDOUT)
			continue;
		uint32_t p, s;
		if (r < 0 || th_msg_verify(buf, r, &p, &s) < 0 || p != 7) {
			atomic_fetch_add(&sh->l_bad, 1);
			continue;
		}
		if (s > next)
			atomic_fetch_add(&sh->l_missing, s - next);
		else if (s < next)
			atomic_fetch_add(&sh->l_dup, 1);
		if (s != next)
			atomic_fetch_add(&sh->l_order, 1);
		if (s >= next)
			next = s + 1;
		atomic_fetch_add(&sh->l_count, 1);
	}
	atomic_store(&sh->l_finished, 1);
	shmc_detach(h);
	return 0;
}

static int victim_main(void *arg)
{
	(void)arg;
	int h = shmc_attach_key(sh->key, SHMC_RECV);
	REQUIRE_MSG(h > 0, "V attach: %s", th_errname(h));
	if (sh->variant == V_FORKED) {
		pid_t g = fork();
		if (g == 0) {
			for (int i = 0; i < 20000 && !atomic_load(&sh->helper_exit); i++)
				th_sleep_ms(1);
			_exit(0);
		}
		atomic_store(&sh->helper, (int)g);
	}
	atomic_store(&sh->v_ready, 1);
	if (sh->variant == V_SLOW) {
		unsigned char buf[MAXMSG];
		while (!atomic_load(&sh->v_stop)) {
			int r = shmc_recv(h, buf, sizeof buf, 50000000);
			if (r >= 0) {
				atomic_fetch_add(&sh->v_read, 1);
				th_sleep_ms(2);
			}
		}
	}
	for (;;) /* until killed */
		pause();
}

static int killer_main(void *arg)
{
	(void)arg;
	REQUIRE_MSG(th_await_u32(&sh->arm_killer, 1, 20000) == 0, "killer not armed");
	th_sleep_ms(100); /* the parent is parked in shmc_send by now */
	atomic_store(&sh->kill_ns, th_now_ns());
	kill((pid_t)atomic_load(&sh->victim), SIGKILL);
	return 0;
}

struct figures {
	unsigned rounds, kills, msgs_checked, missing, dup, bad;
	uint64_t max_room_ns, sum_room_ns;
};

static void one_round(unsigned round, struct figures *fig)
{
	memset(sh, 0, sizeof *sh);
	sh->key = th_key();
	sh->variant = (int)(round % V_COUNT);
	uint32_t ring = (uint32_t[]){ 4, 8, 16, 64 }[(round / V_COUNT) % 4];
	int owner = shmc_create(sh->key, SHMC_BROADCAST, ring, MAXMSG, 0600, 0);
	REQUIRE_MSG(owner > 0, "create: %s", th_errname(owner));
	int snd = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_MSG(snd > 0, "attach sender: %s", th_errname(snd));
	pid_t l = th_fork(live_main, NULL);
	pid_t v = th_fork(victim_main, NULL);
	atomic_store(&sh->victim, (int)v);
	REQUIRE_MSG(th_await_u32(&sh->l_ready, 1, 10000) == 0 && th_await_u32(&sh->v_ready, 1,
									      10000) == 0,
		    "receivers did not attach");
	pid_t killer = sh->variant == V_PARKED ? th_fork(killer_main, NULL) : -1;

	uint64_t room = 0;
	struct th_map m;
	REQUIRE_MSG(th_map_channel((int32_t)th_info(owner, SHMC_INFO_CHANNEL_ID), sh->key, &m) == 0,
		    "map");
	/* V's member: the one with V's pid. */
	int vidx = th_member_of_pid(&m, v);
	REQUIRE_MSG(vidx >= 0, "V's member not found");

	unsigned char buf[MAXMSG];
	uint32_t seq = 0;
	/* Fill: keep sending until the ring is full because of V. In the slow
	 * variant V reads a few first, then is told to stop. */
	uint64_t t0 = th_now_ns();
	bool full = false;
	while (th_now_ns() - t0 < 10000000000ull) {
		if (sh->variant == V_SLOW && atomic_load(&sh->v_read) >= ring + 3)
			atomic_store(&sh->v_stop, 1);
		uint32_t len = th_msg_build(buf, th_msg_len(MAXMSG, 7, seq), 7, seq);
		int r = shmc_try_send(snd, buf, len, 0);
		if (r == (int)len) {
			seq++;
			continue;
		}
		REQUIRE_MSG(r == -ENOBUFS, "fill send: %s", th_errname(r));
		uint64_t tail = atomic_load(th_tail(&m));
		uint64_t cur = atomic_load(&m.members[vidx]->cursor);
		if ((sh->variant != V_SLOW || atomic_load(&sh->v_stop)) && tail - cur == ring) {
			th_sleep_ms(20); /* L catches up; V stays the only gate */
			if (atomic_load(&m.members[vidx]->cursor) == cur &&
			    shmc_try_send(snd, buf, len, 0) == -ENOBUFS) {
				full = true;
				break;
			}
			continue;
		}
		th_sleep_us(500);
	}
	REQUIRE_MSG(full, "round %u: could not fill the ring behind V", round);
	unsigned v_read = atomic_load(&sh->v_read);

	/* Kill V, then the sender must regain room within 1 s (ROOM_BOUND_NS). */
	uint32_t len = th_msg_build(buf, th_msg_len(MAXMSG, 7, seq), 7, seq);
	uint64_t t_kill;
	int r;
	if (sh->variant == V_PARKED) {
		atomic_store(&sh->arm_killer, 1);
		r = shmc_send(snd, buf, len, 0, (int64_t)ROOM_BOUND_NS + 2000000000ll);
		uint64_t t_done = th_now_ns();
		CHECK_MSG(th_wait(killer, 5000) == 0, "killer");
		while (waitpid(v, NULL, 0) < 0 && errno == EINTR)
			;
		th_forget(v);
		t_kill = atomic_load(&sh->kill_ns);
		CHECK_MSG(t_kill != 0 && t_done > t_kill, "the parked send returned before V was killed");
		t_kill = t_kill ? t_kill : t_done;
		room = t_done - t_kill;
		CHECK_MSG(r == (int)len && room <= ROOM_BOUND_NS,
			  "round %u (%s, ring %u): parked send after V died: %s after %.1f ms", round,
			  vname[sh->variant], ring, th_errname(r), th_ms(room));
		if (room > fig->max_room_ns)
			fig->max_room_ns = room;
		fig->sum_room_ns += room;
	} else {
		th_kill(v);
		t_kill = th_now_ns();
		r = shmc_send(snd, buf, len, 0, (int64_t)ROOM_BOUND_NS + 1000000000ll);
		room = th_now_ns() - t_kill;
		CHECK_MSG(r == (int)len && room <= ROOM_BOUND_NS,
			  "round %u (%s, ring %u): send after V died: %s after %.1f ms", round,
			  vname[sh->variant], ring, th_errname(r), th_ms(room));
		if (r != (int)len)
			th_dump_ring(&m, "sender still blocked after the victim died");
		if (room > fig->max_room_ns)
			fig->max_room_ns = room;
		fig->sum_room_ns += room;
	}
	fig->kills++;
	bool ok = r == (int)len;
	if (ok)
		seq++;

	/* Keep sending: every send must find room within its 1 s timeout. */
	unsigned more = 8 * ring + 200;
	for (unsigned i = 0; i < more && ok; i++) {
		len = th_msg_build(buf, th_msg_len(MAXMSG, 7, seq), 7, seq);
		int x = shmc_send(snd, buf, len, 0, 1000000000ll);
		if (x != (int)len) {
			CHECK_MSG(0, "round %u: send %u after the kill: %s", round, seq,
				  th_errname(x));
			break;
		}
		seq++;
	}
	atomic_store(&sh->total, seq);
	atomic_store(&sh->done, 1);
	CHECK_MSG(th_wait(l, 35000) == 0, "round %u: L failed", round);
	CHECK_MSG(atomic_load(&sh->l_count) == seq && atomic_load(&sh->l_missing) == 0 &&
		  atomic_load(&sh->l_dup) == 0 && atomic_load(&sh->l_bad) == 0 &&
		  atomic_load(&sh->l_order) == 0,
		  "round %u: L received %u of %u (missing %u, duplicated %u, corrupt %u, out of order %u)",
		  round, atomic_load(&sh->l_count), seq, atomic_load(&sh->l_missing),
		  atomic_load(&sh->l_dup), atomic_load(&sh->l_bad), atomic_load(&sh->l_order));
	fig->msgs_checked += atomic_load(&sh->l_count);
	fig->missing += atomic_load(&sh->l_missing);
	fig->dup += atomic_load(&sh->l_dup);
	fig->bad += atomic_load(&sh->l_bad);
	printf("round %2u (%-6s ring %2u): V read %u, killed with the ring full; send after the "
	       "kill: %s after %.2f ms; L checked %u/%u messages\n",
	       round, vname[sh->variant], ring, v_read, ok ? "success" : "FAILURE", th_ms(room),
	       atomic_load(&sh->l_count), seq);
	if (sh->variant == V_FORKED) {
		atomic_store(&sh->helper_exit, 1);
		pid_t g = atomic_load(&sh->helper);
		for (int i = 0; i < 2000 && g > 0 && kill(g, 0) == 0; i++)
			th_sleep_ms(1);
	}
	th_unmap(&m);
	shmc_detach(snd);
	shmc_destroy(owner);
	fig->rounds++;
}

int main(void)
{
	unsigned rounds = th_rounds(16);
	th_init("test_crash_broadcast_receiver", th_watchdog_for_rounds(110));
	sh = th_shared_alloc(sizeof *sh);
	th_section("broadcast receiver SIGKILLed while it holds the ring full: room within 1 s, "
		   "the live receiver gets every message in order (%u rounds)", rounds);
	struct figures fig = { 0 };
	for (unsigned r = 0; r < rounds; r++)
		one_round(r, &fig);
	printf("figures: rounds %u, receivers killed %u, room regained after max %.2f ms "
	       "(mean %.2f ms), messages checked %u, missing %u, duplicated %u, corrupt %u\n",
	       fig.rounds, fig.kills, th_ms(fig.max_room_ns),
	       fig.kills ? th_ms(fig.sum_room_ns / fig.kills) : 0.0, fig.msgs_checked, fig.missing,
	       fig.dup, fig.bad);
	return th_finish();
}
