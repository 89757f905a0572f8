/* SPDX-License-Identifier: MIT */
/*
 * test_fuzz_segment - a hostile or buggy peer rewrites the shared segments.
 *
 * SPEC section 6: "Everything read from shared memory is validated before
 * use: a corrupt or hostile segment yields an error, never a crash or an
 * out-of-bounds access." A worker process creates a channel, attaches a
 * sender, a receiver and a both-ways subscriber, maps the control and data
 * segments read-write through its own mapping, and then, iteration after
 * iteration, between API calls:
 *   - rewrites arbitrary bytes at random offsets of either segment, and
 *     targeted fields: tail, head, slot seq words (random, or plausible:
 *     SEQ(p, state) near tail/head), slot stamps and targets, message
 *     lengths (0, max, max+1, 2^31, 2^32-1, ...), member state, id,
 *     access, pid, claim, cursor and doorbell tokens, the wait lines
 *     (parked bits, futex word, sleepers), the parked counters, rr_next,
 *     next_member_gen, skip_mark, the headers' "immutable" geometry; or
 *     forges a whole published message (a stamp, or a READY state); now and
 *     then it heals the ring (empty and
 *     consistent at tail) so that the normal paths run again between
 *     corruptions;
 *   - calls try_send, send (timeout 0..20 ms), try_recv (into a heap buffer
 *     of exactly the capacity, so ASan sees any overflow), recv (timeout
 *     0..20 ms), pending, park/unpark, info, detach and re-attach, and sends
 *     from the owner handle.
 * The worker must never crash (run it under the ASan+UBSan build too: any
 * sanitizer report ends the worker and fails the test), a call must never
 * return impossible values (more bytes than the buffer or the channel's
 * maximum), and no call may block past its timeout (+0.5 s slack, not
 * counting time spent waiting for a CPU under load, from schedstat; the parent
 * declares a hang at timeout + 1.5 s of the worker's own time, prints the
 * seed, iteration, operation, the last mutations and a gdb backtrace, and
 * kills the worker). Errors are fine.
 *
 * The channel's files are ctl (what receivers share), dat (what senders
 * write) and one member file per member (csrc/DESIGN.md 6); the worker, as
 * their owner, writes all of them, so it plays the most capable peer: a
 * writer that also rewrites the other members' files.
 *
 * Seeded: SHMCHAN_FUZZ_SEED=<n> replays, SHMCHAN_FUZZ_ITERS=<n> sets the
 * total iterations (CI: 8 campaigns x 600 = 4800). Each campaign is one
 * worker process with seed = mix(seed, campaign), and a fresh channel every
 * 200 iterations.
 *
 * SHMCHAN_FUZZ_CAMPAIGN=<c> runs only campaign c (to replay a failure).
 * SHMCHAN_FUZZ_NO_SEND_WAIT=1 (a diagnostic knob, not for CI) makes the
 * blocking send use timeout 0, to explore past a known hang of shmc_send.
 *
 * A peer that shrinks a file is the SIGBUS tests' (test_attack_sigbus).
 */
#include "harness.h"

#include <poll.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAMPAIGNS 8u
#define PER_CHANNEL 200u
#define SLACK_NS 500000000ull     /* a call may overrun its timeout by this */
#define HANG_NS 1500000000ull     /* the parent declares a hang past this */
#define LOGN 16

enum op {
	OP_TRY_SEND, OP_SEND, OP_TRY_RECV, OP_RECV, OP_PENDING, OP_PARK, OP_UNPARK, OP_INFO,
	OP_REATTACH, OP_OWNER_SEND, OP_COUNT
};
static const char *opname[] = { "try_send", "send", "try_recv", "recv", "pending", "park",
				"unpark", "info", "detach+attach", "owner try_send" };

struct progress {
	uint64_t seed;
	atomic_uint iter;
	atomic_int op;                 /* -1 when not inside a call */
	atomic_ullong op_start, op_timeout;
	atomic_ullong op_wait0;        /* worker's run-queue wait at op start */
	atomic_ullong mutations, calls, errors, overruns;
	atomic_ullong max_overrun_ns;
	atomic_ullong ops[OP_COUNT];
	atomic_ullong ok[OP_COUNT];
	uint64_t key;
	atomic_int chan_id;
	atomic_uint delivery, ring, max;
	char log[LOGN][120];           /* the last mutations, a ring */
	atomic_uint logpos;
	char last_call[160];
};

static struct progress *pg;

static void logm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logm(const char *fmt, ...)
{
	unsigned i = atomic_fetch_add(&pg->logpos, 1) % LOGN;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pg->log[i], sizeof pg->log[i], fmt, ap);
	va_end(ap);
}

/* ---- the worker -------------------------------------------------------------- */

struct fz {
	uint64_t rng;
	uint64_t key;
	int owner, h[3];               /* send, recv, both */
	uint32_t access[3];
	struct th_map m;
	uint8_t pristine[2 * SHMC_CACHELINE];
	uint8_t dat_pristine[SHMC_CACHELINE];
	uint32_t max, n, delivery;
	struct th_bell bells[3][2];     /* per handle: recv, send (lfd < 0: none) */
};

static void bells_close(struct fz *f, int i)
{
	for (int d = 0; d < 2; d++)
		if (f->bells[i][d].lfd >= 0)
			th_bell_close(&f->bells[i][d]);
}

/* Doorbells of our own, so that rung doorbells reach real listeners. */
static void bells_open(struct fz *f, int i)
{
	for (int d = 0; d < 2; d++) {
		f->bells[i][d].lfd = -1;
		uint32_t what = d == 0 ? SHMC_WAIT_RECV : SHMC_WAIT_SEND;
		if (f->h[i] > 0 && (f->access[i] & (d == 0 ? SHMC_RECV : SHMC_SEND)) &&
		    th_bell_open(&f->bells[i][d], f->h[i], what, 64) < 0)
			th_bell_close(&f->bells[i][d]);
	}
}

static uint64_t pick64(struct fz *f, uint64_t cur)
{
	uint64_t n = f->n;
	switch (th_below(&f->rng, 12)) {
	case 0: return cur + 1;
	case 1: return cur - 1;
	case 2: return cur + n;
	case 3: return cur - n;
	case 4: return cur + th_below(&f->rng, 4 * n + 1);
	case 5: return cur - th_below(&f->rng, 4 * n + 1);
	case 6: return 0;
	case 7: return UINT64_MAX - th_below(&f->rng, 4);
	case 8: return 1ull << 63;
	case 9: return cur + (1ull << 62);
	case 10: return cur;
	default: return th_rand(&f->rng);
	}
}

static uint32_t pick32(struct fz *f, uint32_t max)
{
	switch (th_below(&f->rng, 10)) {
	case 0: return 0;
	case 1: return max;
	case 2: return max + 1;
	case 3: return UINT32_MAX;
	case 4: return 0x80000000u;
	case 5: return max * 2 + 7;
	case 6: return (uint32_t)th_below(&f->rng, max + 1);
	case 7: return 1;
	case 8: return 65;
	default: return (uint32_t)th_rand(&f->rng);
	}
}

static void close_channel(struct fz *f)
{
	for (int i = 0; i < 3; i++) {
		bells_close(f, i);
		if (f->h[i] > 0)
			shmc_detach(f->h[i]);
	}
	if (f->owner > 0)
		shmc_destroy(f->owner);
	th_unmap(&f->m);
	f->owner = f->h[0] = f->h[1] = f->h[2] = -1;
}

static void open_channel(struct fz *f)
{
	static const uint32_t dels[] = { SHMC_UNICAST, SHMC_BROADCAST, SHMC_MULTICAST };
	f->delivery = dels[th_below(&f->rng, 3)];
	f->n = 1u << th_below(&f->rng, 7);
	f->max = 1 + (uint32_t)th_below(&f->rng, 600);
	f->key = th_key();
	f->owner = shmc_create(f->key, f->delivery, f->n, f->max, 0600, 0);
	REQUIRE_MSG(f->owner > 0, "create: %s", th_errname(f->owner));
	f->access[0] = SHMC_SEND;
	f->access[1] = SHMC_RECV;
	f->access[2] = SHMC_BOTH;
	for (int i = 0; i < 3; i++) {
		f->h[i] = shmc_attach_key(f->key, f->access[i]);
		REQUIRE_MSG(f->h[i] > 0, "attach: %s", th_errname(f->h[i]));
		bells_open(f, i);
	}
	int32_t id = (int32_t)th_info(f->owner, SHMC_INFO_CHANNEL_ID);
	REQUIRE_MSG(th_map_channel(id, f->key, &f->m) == 0, "map");
	memcpy(f->pristine, f->m.ctl, sizeof f->pristine);
	memcpy(f->dat_pristine, f->m.dat, sizeof f->dat_pristine);
	pg->key = f->key;
	atomic_store(&pg->chan_id, id);
	atomic_store(&pg->delivery, f->delivery);
	atomic_store(&pg->ring, f->n);
	atomic_store(&pg->max, f->max);
	logm("new channel %d: delivery %u ring %u max %u", (int)id, f->delivery, f->n, f->max);
}

static void mutate(struct fz *f)
{
	struct th_map *m = &f->m;
	struct shmc_ctl_header *c = m->ctl;
	uint64_t tail = atomic_load(th_tail(m)), head = atomic_load(&c->head);
	uint32_t k = (uint32_t)th_below(&f->rng, 16);
	atomic_fetch_add(&pg->mutations, 1);
	switch (k) {
	case 0: { /* random bytes, ctl */
		size_t off = (size_t)th_below(&f->rng, m->csize);
		size_t len = 1 + (size_t)th_below(&f->rng, 8);
		for (size_t i = 0; i < len && off + i < m->csize; i++)
			((volatile uint8_t *)c)[off + i] = (uint8_t)th_rand(&f->rng);
		logm("ctl bytes [%zu, +%zu) random", off, len);
		break;
	}
	case 1: { /* random bytes, dat */
		size_t off = (size_t)th_below(&f->rng, m->dsize);
		size_t len = 1 + (size_t)th_below(&f->rng, 8);
		for (size_t i = 0; i < len && off + i < m->dsize; i++)
			((volatile uint8_t *)m->dat)[off + i] = (uint8_t)th_rand(&f->rng);
		logm("dat bytes [%zu, +%zu) random", off, len);
		break;
	}
	case 2: {
		uint64_t v = pick64(f, tail);
		atomic_store(th_tail(m), v);
		logm("tail %" PRIu64 " -> %" PRIu64, tail, v);
		break;
	}
	case 3: {
		uint64_t v = pick64(f, th_below(&f->rng, 2) ? head : tail);
		atomic_store(&c->head, v);
		logm("head %" PRIu64 " -> %" PRIu64, head, v);
		break;
	}
	case 4: { /* a slot's state word, decoded or raw */
		uint64_t p = pick64(f, th_below(&f->rng, 2) ? tail : head);
		uint32_t st = (uint32_t)th_below(&f->rng, 4);
		if (th_below(&f->rng, 5)) {
			th_set_seq(m, p, SEQ(p, st));
			logm("slot of %" PRIu64 " -> state %u", p, st);
		} else {
			uint64_t v = th_rand(&f->rng);
			atomic_store(th_state_word(m, th_below(&f->rng, m->n)), v);
			logm("a slot's state word -> 0x%" PRIx64, v);
		}
		break;
	}
	case 5: { /* a slot's target and stamp */
		uint64_t p = pick64(f, tail);
		uint32_t t = pick32(f, 70);
		atomic_store(&th_slot(m, p)->target, t);
		if (th_below(&f->rng, 2))
			th_set_stamp(m, pick64(f, p));
		else if (m->delivery != SHMC_BROADCAST)
			atomic_store(&th_slot(m, p)->word, th_rand(&f->rng));
		logm("slot of %" PRIu64 " target %u, stamp rewritten", p, t);
		break;
	}
	case 6: { /* a message length */
		uint64_t slot = th_below(&f->rng, m->n);
		uint32_t v = pick32(f, m->max_msg);
		th_set_len(m, slot, v);
		logm("slot %" PRIu64 " len -> %u (max %u)", slot, v, m->max_msg);
		break;
	}
	case 7:
	case 8: { /* a member's file or wait line */
		uint32_t i = th_below(&f->rng, 2) ? (uint32_t)th_below(&f->rng, 6)
						  : (uint32_t)th_below(&f->rng, SHMC_MAX_MEMBERS);
		struct shmc_member *mm = m->members[i];
		struct shmc_wait *w = &m->waits[i];
		uint32_t fld = (uint32_t)th_below(&f->rng, 12);
		if (fld < 8 && !mm)
			fld = 8 + fld % 4;
		switch (fld) {
		case 0: atomic_store(&mm->state, pick32(f, 2)); break;
		case 1: mm->id = pick32(f, 70); break;
		case 2: mm->access = pick32(f, 0x103); break;
		case 3:
			atomic_store(&mm->claim, pick64(f, tail));
			atomic_store(&mm->claim_n, pick32(f, m->n));
			break;
		case 4: atomic_store(&mm->cursor, pick64(f, tail)); break;
		case 5: /* doorbells: random tokens and bits */
			atomic_store(&mm->token_r, th_rand(&f->rng));
			atomic_store(&mm->token_s, th_rand(&f->rng));
			atomic_store(&mm->bells, pick32(f, 3));
			break;
		case 6: mm->pid = (uint32_t)th_rand(&f->rng); break;
		case 7: mm->start_time = th_rand(&f->rng); break;
		case 8: atomic_store(&w->parked, pick32(f, 3)); break;
		case 9: atomic_store(&w->wake, (uint32_t)th_rand(&f->rng)); break;
		case 10: atomic_store(&w->sleepers, pick32(f, 3)); break;
		default: atomic_store(&w->member_id, pick32(f, 70)); break;
		}
		logm("member %u field %u rewritten", i, fld);
		break;
	}
	case 9: { /* counters */
		uint32_t which = (uint32_t)th_below(&f->rng, 7);
		uint32_t v = pick32(f, 64);
		switch (which) {
		case 0: atomic_store(&c->recv_parked, v); break;
		case 1: atomic_store(&c->send_parked, v); break;
		case 2: atomic_store(&c->rr_next, v); break;
		case 3: atomic_store(&c->next_member_gen, v); break;
		case 4: atomic_store(&c->dropped, pick64(f, 0)); break;
		case 5: atomic_store(&c->skip_mark, pick64(f, tail)); break;
		default: atomic_store(&c->skipped, pick64(f, 0)); break;
		}
		logm("counter %u -> %u", which, v);
		break;
	}
	case 10: { /* the headers' geometry (private copies must win) */
		uint32_t which = (uint32_t)th_below(&f->rng, 6), v = pick32(f, m->n);
		struct shmc_dat_header *dh = m->dh;
		switch (which) {
		case 0: c->ring_entries = v; break;
		case 1: c->ctl_size = pick64(f, m->csize); break;
		case 2: c->magic = v; break;
		case 3: dh->ring_entries = v; break;
		case 4: dh->slot_stride = pick32(f, m->stride); break;
		default: dh->nonce = th_rand(&f->rng); break;
		}
		logm("header field %u -> %u", which, v);
		break;
	}
	case 11:
	case 12: { /* forge a READY message at a plausible position */
		uint64_t p = head + th_below(&f->rng, (uint64_t)m->n + 2);
		uint32_t len = pick32(f, m->max_msg);
		th_set_len(m, p, len);
		atomic_store(&th_slot(m, p)->target, th_below(&f->rng, 3) ? 0 : pick32(f, 8));
		if (th_below(&f->rng, 2))
			th_set_stamp(m, p);
		/* Unicast/multicast publish by the stamp alone (the state stays
		 * FREE for p); an old-style READY there is a forged state. */
		bool by_stamp = m->delivery != SHMC_BROADCAST && th_below(&f->rng, 2);
		th_set_seq(m, p, SEQ(p, by_stamp ? SLOT_FREE : SLOT_READY));
		if (th_below(&f->rng, 2))
			atomic_store(th_tail(m), p + 1 + th_below(&f->rng, 3));
		logm("forged publish at %" PRIu64 " len %u", p, len);
		break;
	}
	case 13:
	case 14: { /* heal: a consistent empty ring at tail, so that the normal
		    * protocol paths run again between corruptions */
		uint64_t t = tail;
		atomic_store(&c->head, t);
		for (uint32_t i = 0; i < m->n; i++) {
			th_set_seq(m, t + i, SEQ(t + i, SLOT_FREE));
			if (m->delivery != SHMC_BROADCAST) /* no stamp says published */
				atomic_store(&th_slot(m, t + i)->word, 0);
		}
		for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
			if (m->members[i])
				atomic_store(&m->members[i]->cursor, t);
			atomic_store(&m->waits[i].parked, 0);
		}
		atomic_store(&c->recv_parked, 0);
		atomic_store(&c->send_parked, 0);
		logm("healed: empty ring at %" PRIu64, t);
		break;
	}
	default: /* repair the headers, so attach can work again */
		memcpy(m->ctl, f->pristine, SHMC_CACHELINE);
		memcpy(m->dat, f->dat_pristine, sizeof f->dat_pristine);
		logm("headers restored");
		break;
	}
}

/* Time this thread spent runnable but waiting for a CPU (ns), from
 * /proc/thread-self/schedstat: "run_ns wait_ns timeslices". */
static uint64_t runqueue_wait_ns(void)
{
	FILE *fp = fopen("/proc/thread-self/schedstat", "r");
	unsigned long long run = 0, wait = 0;
	if (fp) {
		if (fscanf(fp, "%llu %llu", &run, &wait) != 2)
			wait = 0;
		fclose(fp);
	}
	return wait;
}

/* A handle with @need access if one of a few random picks has it. Always
 * draws the same number of random values, so that a replay with the same
 * seed makes the same choices whatever the calls returned. */
static int pick_handle(struct fz *f, uint32_t need)
{
	int pick[5];
	for (int k = 0; k < 5; k++)
		pick[k] = (int)th_below(&f->rng, 3);
	for (int k = 0; k < 4; k++) {
		int i = pick[k];
		if (f->h[i] > 0 && (!need || (f->access[i] & need)))
			return f->h[i];
	}
	return f->h[pick[4]] > 0 ? f->h[pick[4]] : f->owner;
}

static void drain_bells(struct fz *f)
{
	for (int i = 0; i < 3; i++)
		for (int d = 0; d < 2; d++)
			if (f->bells[i][d].lfd >= 0) {
				th_bell_wait(&f->bells[i][d], 1);
				th_bell_drop_conns(&f->bells[i][d]); /* wakers reconnect */
			}
}

static void call(struct fz *f, unsigned iter)
{
	int o = (int)th_below(&f->rng, OP_COUNT);
	uint64_t timeout = 0;
	if (o == OP_SEND || o == OP_RECV) {
		static const uint64_t t[] = { 0, 1000000, 2000000, 5000000, 20000000 };
		timeout = t[th_below(&f->rng, 5)];
		if (o == OP_SEND && getenv("SHMCHAN_FUZZ_NO_SEND_WAIT"))
			timeout = 0;
	}
	uint32_t cap = (uint32_t)th_below(&f->rng, (uint64_t)f->max + 17);
	uint8_t *buf = malloc(cap ? cap : 1);
	uint32_t len = (uint32_t)th_below(&f->rng, (uint64_t)f->max + 3);
	uint8_t *src = malloc(len ? len : 1);
	REQUIRE_MSG(buf && src, "malloc");
	memset(src, 0x5a, len ? len : 1);
	uint32_t target = 0;
	uint64_t tkind = th_below(&f->rng, 8);
	uint32_t trand = pick32(f, 70);
	if (tkind == 0)
		target = (uint32_t)th_info(f->h[1] > 0 ? f->h[1] : f->owner, SHMC_INFO_MEMBER_ID);
	else if (tkind == 1)
		target = trand;
	int h = 0, r = 0;
	snprintf(pg->last_call, sizeof pg->last_call, "%s len %u cap %u target %u timeout %.0f ms",
		 opname[o], len, cap, target, th_ms(timeout));
	struct rusage ru0, ru1;
	struct timespec c0, c1;
	getrusage(RUSAGE_THREAD, &ru0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	uint64_t q0 = runqueue_wait_ns();
	uint64_t t0 = th_now_ns();
	atomic_store(&pg->op_wait0, q0);
	atomic_store(&pg->op_timeout, timeout);
	atomic_store(&pg->op_start, t0);
	atomic_store(&pg->op, o);
	switch (o) {
	case OP_TRY_SEND:
		h = pick_handle(f, SHMC_SEND);
		r = shmc_try_send(h, src, len, target);
		CHECK_MSG(r < 0 || r == (int)len, "try_send returned %d for %u bytes", r, len);
		break;
	case OP_SEND:
		h = pick_handle(f, SHMC_SEND);
		r = shmc_send(h, src, len, target, (int64_t)timeout);
		CHECK_MSG(r < 0 || r == (int)len, "send returned %d for %u bytes", r, len);
		break;
	case OP_TRY_RECV:
		h = pick_handle(f, SHMC_RECV);
		r = shmc_try_recv(h, cap ? buf : NULL, cap);
		CHECK_MSG(r < 0 || ((uint32_t)r <= cap && (uint64_t)r <= th_info(h, SHMC_INFO_MAX_MESSAGE_SIZE)),
			  "try_recv returned %d (cap %u, handle's max %" PRIu64 ")", r, cap,
			  th_info(h, SHMC_INFO_MAX_MESSAGE_SIZE));
		break;
	case OP_RECV:
		h = pick_handle(f, SHMC_RECV);
		r = shmc_recv(h, cap ? buf : NULL, cap, (int64_t)timeout);
		CHECK_MSG(r < 0 || ((uint32_t)r <= cap && (uint64_t)r <= th_info(h, SHMC_INFO_MAX_MESSAGE_SIZE)),
			  "recv returned %d (cap %u, handle's max %" PRIu64 ")", r, cap,
			  th_info(h, SHMC_INFO_MAX_MESSAGE_SIZE));
		break;
	case OP_PENDING:
		r = shmc_pending(pick_handle(f, SHMC_RECV));
		CHECK_MSG(r == 0 || r == 1 || r < 0, "pending returned %d", r);
		break;
	case OP_PARK:
	case OP_UNPARK: {
		uint32_t what = th_below(&f->rng, 2) ? SHMC_WAIT_RECV : SHMC_WAIT_SEND;
		h = pick_handle(f, what == SHMC_WAIT_RECV ? SHMC_RECV : SHMC_SEND);
		bool then_unpark = th_below(&f->rng, 2);
		r = o == OP_PARK ? shmc_park(h, what) : shmc_unpark(h, what);
		CHECK_MSG(r == 0 || r == 1 || r < 0, "park/unpark returned %d", r);
		if (o == OP_PARK && r == 0 && then_unpark)
			shmc_unpark(h, what);
		break;
	}
	case OP_INFO: {
		uint64_t info[SHMC_INFO_COUNT];
		r = shmc_info(pick_handle(f, 0), info);
		CHECK_MSG(r == SHMC_INFO_COUNT, "info returned %d", r);
		/* The owner's geometry is its own; a handle attached after the
		 * header was rewritten may have read other (consistent) values. */
		r = shmc_info(f->owner, info);
		CHECK_MSG(r == SHMC_INFO_COUNT && info[SHMC_INFO_RING_ENTRIES] == f->n &&
			  info[SHMC_INFO_MAX_MESSAGE_SIZE] == f->max,
			  "the owner's geometry changed by the segment: ring %" PRIu64 " max %" PRIu64,
			  info[SHMC_INFO_RING_ENTRIES], info[SHMC_INFO_MAX_MESSAGE_SIZE]);
		break;
	}
	case OP_REATTACH: {
		int i = (int)th_below(&f->rng, 3);
		bells_close(f, i);
		if (f->h[i] > 0)
			shmc_detach(f->h[i]);
		f->h[i] = shmc_attach_key(f->key, f->access[i]);
		r = f->h[i];
		bells_open(f, i);
		th_map_members(&f->m);
		CHECK_MSG(r > 0 || r == -EBADMSG || r == -EUSERS || r == -ENOENT,
			  "attach returned %s (%d)", th_errname(r), r);
		break;
	}
	default:
		r = shmc_try_send(f->owner, src, len, target);
		CHECK_MSG(r < 0 || r == (int)len, "owner try_send returned %d for %u bytes", r,
			  len);
		break;
	}
	uint64_t took = th_now_ns() - t0;
	uint64_t queued = runqueue_wait_ns() - q0;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	getrusage(RUSAGE_THREAD, &ru1);
	double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
	long sleeps = ru1.ru_nvcsw - ru0.ru_nvcsw, preempted = ru1.ru_nivcsw - ru0.ru_nivcsw;
	atomic_store(&pg->op, -1);
	atomic_fetch_add(&pg->calls, 1);
	atomic_fetch_add(&pg->ops[o], 1);
	if (r >= 0)
		atomic_fetch_add(&pg->ok[o], 1);
	else
		atomic_fetch_add(&pg->errors, 1);
	/* Time waiting for a CPU (other processes' load) is not the call's. */
	uint64_t own = took > queued ? took - queued : 0;
	if (own > timeout) {
		uint64_t over = own - timeout;
		if (over > atomic_load(&pg->max_overrun_ns))
			atomic_store(&pg->max_overrun_ns, over);
		if (over > SLACK_NS) {
			atomic_fetch_add(&pg->overruns, 1);
			CHECK_MSG(0, "iteration %u: %s returned %.1f ms past its timeout of %.0f ms (wall "
				  "%.1f ms, of which %.1f ms waiting for a CPU; cpu %.1f ms, %ld sleeps, %ld "
				  "preemptions)", iter, pg->last_call, th_ms(over), th_ms(timeout),
				  th_ms(took), th_ms(queued), cpu_ms, sleeps, preempted);
		}
	}
	free(buf);
	free(src);
	(void)h;
}

static int worker_main(void *arg)
{
	unsigned iters = (unsigned)(uintptr_t)arg;
	struct fz f;
	memset(&f, 0, sizeof f);
	f.rng = pg->seed;
	f.owner = f.h[0] = f.h[1] = f.h[2] = -1;
	f.m.dfd = -1;
	for (int i = 0; i < 3; i++)
		for (int d = 0; d < 2; d++)
			f.bells[i][d].lfd = -1;
	for (unsigned it = 0; it < iters; it++) {
		atomic_store(&pg->iter, it);
		if (it % PER_CHANNEL == 0) {
			if (it)
				close_channel(&f);
			open_channel(&f);
		}
		unsigned nm = (unsigned)th_below(&f.rng, 4);
		for (unsigned k = 0; k < nm; k++)
			mutate(&f);
		unsigned nc = 1 + (unsigned)th_below(&f.rng, 3);
		for (unsigned k = 0; k < nc; k++)
			call(&f, it);
		if ((it & 15) == 0)
			drain_bells(&f);
	}
	close_channel(&f);
	return 0;
}

/* ---- the parent: run campaigns, watch for crashes and hangs ---------------------- */

static uint64_t pid_runqueue_wait_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
	FILE *fp = fopen(path, "r");
	unsigned long long run = 0, wait = 0;
	if (fp) {
		if (fscanf(fp, "%llu %llu", &run, &wait) != 2)
			wait = 0;
		fclose(fp);
	}
	return wait;
}

static void print_log(void)
{
	unsigned pos = atomic_load(&pg->logpos);
	printf("  last mutations (oldest first):\n");
	for (unsigned i = 0; i < LOGN; i++) {
		unsigned k = (pos + i) % LOGN;
		if (pg->log[k][0])
			printf("    %s\n", pg->log[k]);
	}
}

int main(void)
{
	uint64_t seed = th_seed("SHMCHAN_FUZZ_SEED");
	unsigned total = CAMPAIGNS * 600u;
	const char *e = getenv("SHMCHAN_FUZZ_ITERS");
	if (e && *e)
		total = (unsigned)strtoul(e, NULL, 0);
	unsigned per = (total + CAMPAIGNS - 1) / CAMPAIGNS;
	th_init("test_fuzz_segment", (e && *e) ? TH_NO_WATCHDOG : 110);
	pg = th_shared_alloc(sizeof *pg);
	th_section("fuzz: %u campaigns x %u iterations, seed 0x%" PRIx64
		   " (SHMCHAN_FUZZ_SEED=0x%" PRIx64 " to replay)", CAMPAIGNS, per, seed, seed);
	unsigned long long mutations = 0, calls = 0, errors = 0, iters_done = 0;
	unsigned crashes = 0, hangs = 0, failed = 0;
	uint64_t max_over = 0;
	unsigned long long ops[OP_COUNT] = { 0 }, oks[OP_COUNT] = { 0 };
	const char *only = getenv("SHMCHAN_FUZZ_CAMPAIGN"); /* replay one campaign */
	for (unsigned c = 0; c < CAMPAIGNS; c++) {
		if (only && *only && strtoul(only, NULL, 0) != c)
			continue;
		memset(pg, 0, sizeof *pg);
		pg->seed = th_mix64(seed + c);
		atomic_store(&pg->op, -1);
		pid_t w = th_fork(worker_main, (void *)(uintptr_t)per);
		int status = -1;
		bool hung = false;
		for (;;) {
			pid_t r = waitpid(w, &status, WNOHANG);
			if (r == w)
				break;
			int o = atomic_load(&pg->op);
			uint64_t st = atomic_load(&pg->op_start);
			if (o >= 0 && st && th_now_ns() - st > atomic_load(&pg->op_timeout) + HANG_NS) {
				/* Not counting time the worker waited for a CPU (load). */
				uint64_t wall = th_now_ns() - st;
				uint64_t waited = pid_runqueue_wait_ns(w) - atomic_load(&pg->op_wait0);
				uint64_t own = wall > waited ? wall - waited : 0;
				if (atomic_load(&pg->op) == o && atomic_load(&pg->op_start) == st &&
				    own > atomic_load(&pg->op_timeout) + HANG_NS) {
					hung = true;
					break;
				}
			}
			th_sleep_ms(5);
		}
		if (hung) {
			hangs++;
			CHECK_MSG(0, "campaign %u (seed 0x%" PRIx64 "): iteration %u: %s has not returned "
				  "%.1f s after its timeout: hung", c, pg->seed, atomic_load(&pg->iter),
				  pg->last_call, th_ms(HANG_NS) / 1000.0);
			printf("  channel %d: delivery %u ring %u max %u\n", atomic_load(&pg->chan_id),
			       atomic_load(&pg->delivery), atomic_load(&pg->ring), atomic_load(&pg->max));
			struct th_map m;
			if (th_map_channel(atomic_load(&pg->chan_id), pg->key, &m) == 0) {
				th_dump_ring(&m, "while hung");
				th_unmap(&m);
			}
			print_log();
			char path[64], line[128];
			snprintf(path, sizeof path, "/proc/%d/stat", (int)w);
			FILE *fp = fopen(path, "r");
			if (fp && fgets(line, sizeof line, fp)) {
				char *p = strrchr(line, ')');
				printf("  worker state: %c (R = spinning on a CPU, S = asleep)\n",
				       p && p[1] ? p[2] : '?');
			}
			if (fp)
				fclose(fp);
			if (access("/usr/bin/gdb", X_OK) == 0 && !getenv("SHMCHAN_FUZZ_NO_GDB")) {
				char cmd[160];
				snprintf(cmd, sizeof cmd, "gdb -p %d -batch -ex bt 2>/dev/null | "
					 "grep -E '^#' | head -20", (int)w);
				printf("  backtrace of the hung worker:\n");
				fflush(stdout);
				if (system(cmd) != 0)
					printf("  (gdb failed)\n");
			}
			th_kill(w);
		} else {
			th_forget(w);
			if (WIFSIGNALED(status)) {
				crashes++;
				CHECK_MSG(0, "campaign %u (seed 0x%" PRIx64 "): worker killed by signal %d at "
					  "iteration %u during %s", c, pg->seed, WTERMSIG(status),
					  atomic_load(&pg->iter), pg->last_call);
				print_log();
			} else if (WEXITSTATUS(status) != 0) {
				failed++;
				CHECK_MSG(0, "campaign %u (seed 0x%" PRIx64 "): worker exit %d at iteration %u "
					  "(a failed check, or a sanitizer report above)", c, pg->seed,
					  WEXITSTATUS(status), atomic_load(&pg->iter));
				print_log();
			}
		}
		unsigned done = atomic_load(&pg->iter) + (hung || WIFSIGNALED(status) ? 0 : 1);
		iters_done += done;
		mutations += atomic_load(&pg->mutations);
		calls += atomic_load(&pg->calls);
		errors += atomic_load(&pg->errors);
		if (atomic_load(&pg->max_overrun_ns) > max_over)
			max_over = atomic_load(&pg->max_overrun_ns);
		for (int o = 0; o < OP_COUNT; o++) {
			ops[o] += atomic_load(&pg->ops[o]);
			oks[o] += atomic_load(&pg->ok[o]);
		}
		printf("  campaign %u seed 0x%016" PRIx64 ": %u iterations, %llu mutations, %llu calls "
		       "(%llu errors)%s\n",
		       c, pg->seed, done, (unsigned long long)atomic_load(&pg->mutations),
		       (unsigned long long)atomic_load(&pg->calls),
		       (unsigned long long)atomic_load(&pg->errors), hung ? " HUNG" : "");
	}
	printf("  calls (ok/total):");
	for (int o = 0; o < OP_COUNT; o++)
		printf(" %s %llu/%llu%s", opname[o], oks[o], ops[o], o + 1 < OP_COUNT ? "," : "\n");
	printf("figures: seed 0x%" PRIx64 ", %llu iterations, %llu faults injected, %llu API calls "
	       "(%llu returned errors), crashes %u, hangs %u, failed workers %u, worst overrun of a "
	       "timeout %.2f ms\n",
	       seed, iters_done, mutations, calls, errors, crashes, hangs, failed, th_ms(max_over));
	return th_finish();
}
