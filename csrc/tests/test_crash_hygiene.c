/* SPDX-License-Identifier: MIT */
/*
 * test_crash_hygiene - kill -9 at random moments leaves nothing behind in
 * /dev/shm, and racing creators agree on one winner.
 *
 * The test runs in a private /dev/shm (a new mount namespace with its own
 * tmpfs: needs root or user namespaces) so that entry counts are exact even
 * when CTest runs other tests in parallel; without one it falls back to
 * checking, under the registry's flock, that every shmchan segment in
 * /dev/shm is named by a registry entry (no orphans; an entry whose creator
 * just died is swept, names included, by the next create or attach). Setting
 * SHMCHAN_CRASH_SHARED_SHM=1 forces that fallback.
 *
 * Part A, R rounds (CI: 50; SHMCHAN_CRASH_ROUNDS=1000 for the long run): a
 * forked child creates a channel, and by a random plan also attaches,
 * sends, detaches, destroys and recreates in a loop, or creates several
 * channels; it is SIGKILLed after a random delay (0 .. 3 ms, sometimes
 * before it even reached the library). Then the parent attaches by the
 * child's key (must be -ENOENT: its creator is dead), or creates with it
 * (must succeed: the key is free), or creates another key. After every
 * round the /dev/shm entries (shmchan.* but the registry) are back to the
 * count before the test.
 *
 * Part B, the creation race: N processes released at once create the same
 * key: exactly one succeeds, the others get -EEXIST, attach by key and send
 * to the winner; nobody dies of a signal (no SIGBUS).
 *
 * Part C, a creator killed during initialisation:
 *   - by hand: the segments a dying creator can leave (mode 0 and empty;
 *     sized but uninitialised; header without version; complete but never
 *     entered in the registry) are not attachable and are unlinked by the
 *     next create or attach anywhere;
 *   - for real: children create a large-ring channel (initialisation takes
 *     a while) and are SIGKILLed at random moments, many of them inside
 *     shmc_create; the key is free afterwards and nothing is left over.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
	uint64_t key;
	int plan;
	atomic_uint stage;        /* child: 1 in the library, 2 created, ... */
	atomic_uint go, ready, results, winners, eexist, others;
	atomic_int result[16];
	atomic_uint received;
};

static struct shared *sh;
static bool g_private;
static int g_before;

/* ---- the fallback check: every segment named by a registry entry ---- */

struct reg_file {
	struct shmc_reg_header hdr;
	struct shmc_reg_entry e[SHMC_REG_CAPACITY];
};

static int count_orphans(bool print)
{
	int fd = open("/dev/shm/shmchan.registry", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return 0;
	}
	struct reg_file *r = mmap(NULL, sizeof *r, PROT_READ, MAP_SHARED, fd, 0);
	int orphans = 0;
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	while (r != MAP_FAILED && d && (de = readdir(d))) {
		int id;
		unsigned long long nonce;
		char kind, end;
		if (sscanf(de->d_name, "shmchan.%d.%16llx.%c%c", &id, &nonce, &kind, &end) != 3)
			continue;
		/* Named by an entry: fine, even if its creator just died (other
		 * tests kill creators too; the next sweep removes entry and names
		 * together). Named by no entry, under the flock: leaked. */
		bool live = false;
		for (uint32_t i = 0; i < SHMC_REG_CAPACITY && !live; i++)
			live = r->e[i].state == 1 && r->e[i].id == id && r->e[i].nonce == nonce;
		if (!live) {
			orphans++;
			if (print)
				printf("  orphan: /dev/shm/%s\n", de->d_name);
		}
	}
	if (d)
		closedir(d);
	if (r != MAP_FAILED)
		munmap(r, sizeof *r);
	flock(fd, LOCK_UN);
	close(fd);
	return orphans;
}

/* After a create/attach (which sweeps): nothing of ours may be left. */
static bool clean_now(const char *when)
{
	if (g_private) {
		int n = th_count_segments();
		if (n != g_before) {
			CHECK_MSG(n == g_before, "%s: %d shmchan entries in /dev/shm, %d before", when, n,
				  g_before);
			th_list_shm("  left: ");
			return false;
		}
		return true;
	}
	int o = count_orphans(false);
	if (o) {
		CHECK_MSG(o == 0, "%s: %d orphan segment(s) in /dev/shm", when, o);
		count_orphans(true);
		return false;
	}
	return true;
}

/* ---- part A --------------------------------------------------------------------- */

static const uint32_t deliveries[] = { SHMC_UNICAST, SHMC_BROADCAST, SHMC_MULTICAST };

static int victim_main(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	atomic_store(&sh->stage, 1);
	uint32_t ring = 1u << th_below(&rng, 8);
	uint32_t max = 1 + (uint32_t)th_below(&rng, 70000);
	uint32_t del = deliveries[th_below(&rng, 3)];
	unsigned char buf[256] = { 0 };
	switch (sh->plan) {
	case 0: { /* create, attach, send forever */
		int o = shmc_create(sh->key, del, ring, max, 0600, 0);
		if (o < 0)
			return 2;
		atomic_store(&sh->stage, 2);
		int h = shmc_attach_key(sh->key, SHMC_BOTH);
		atomic_store(&sh->stage, 3);
		for (;;) {
			shmc_try_send(h > 0 ? h : o, buf, 16, 0);
			shmc_try_recv(h, buf, sizeof buf);
		}
	}
	case 1: /* create / attach / send / detach / destroy, in a loop */
		for (;;) {
			int o = shmc_create(sh->key, del, ring, max, 0600, 0);
			if (o < 0)
				return 2;
			atomic_store(&sh->stage, 2);
			int h = shmc_attach_key(sh->key, SHMC_SEND);
			shmc_try_send(h, buf, 8, 0);
			shmc_detach(h);
			shmc_destroy(o);
			atomic_store(&sh->stage, 1);
		}
	default: /* several channels, then idle */
		for (uint64_t i = 0; i < 4; i++) {
			int o = shmc_create(sh->key + i, deliveries[i % 3], ring, max, 0600, 0);
			if (o < 0)
				return 2;
			atomic_store(&sh->stage, 2);
		}
		for (;;)
			pause();
	}
}

struct figures {
	unsigned rounds, killed_in_library, killed_before, attach_enoent, create_same, create_other;
	unsigned race_rounds, race_procs, init_kills, init_kills_inside, handmade;
};

static void part_a(unsigned rounds, uint64_t seed, struct figures *fig)
{
	uint64_t rng = seed;
	for (unsigned r = 0; r < rounds; r++) {
		sh->key = th_key() & ~3ull; /* plan 2 uses key .. key+3 */
		if (!sh->key)
			sh->key = 4;
		sh->plan = (int)th_below(&rng, 3);
		atomic_store(&sh->stage, 0);
		pid_t c = th_fork(victim_main, (void *)(uintptr_t)th_rand(&rng));
		uint64_t delay = th_below(&rng, 8) == 0 ? 0 : th_below(&rng, 3000);
		th_sleep_us(delay);
		kill(c, SIGKILL);
		int st;
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		th_forget(c);
		unsigned stage = atomic_load(&sh->stage);
		CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			  "round %u: child ended by itself (status 0x%x) before the kill", r, st);
		if (stage == 0)
			fig->killed_before++;
		else
			fig->killed_in_library++;
		int what = (int)th_below(&rng, 3), x;
		switch (what) {
		case 0:
			x = shmc_attach_key(sh->key, SHMC_RECV);
			CHECK_MSG(x == -ENOENT, "round %u: attach to the dead creator's key: %s", r,
				  th_errname(x));
			if (x > 0)
				shmc_detach(x);
			fig->attach_enoent++;
			break;
		case 1:
			x = shmc_create(sh->key, SHMC_UNICAST, 8, 64, 0600, 0);
			CHECK_MSG(x > 0, "round %u: create with the dead creator's key: %s", r, th_errname(x));
			if (x > 0)
				shmc_destroy(x);
			fig->create_same++;
			break;
		default:
			x = shmc_create(th_key(), SHMC_BROADCAST, 4, 64, 0600, 0);
			CHECK_MSG(x > 0, "round %u: create: %s", r, th_errname(x));
			if (x > 0)
				shmc_destroy(x);
			fig->create_other++;
		}
		char when[64];
		snprintf(when, sizeof when, "round %u (plan %d, killed after %" PRIu64 " us)", r,
			 sh->plan, delay);
		clean_now(when);
		fig->rounds++;
	}
}

/* ---- part B: the creation race ------------------------------------------------------ */

#define RACERS 6

static int racer_main(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		;
	int h = shmc_create(sh->key, SHMC_UNICAST, 16, 64, 0600, 0);
	atomic_store(&sh->result[i], h);
	atomic_fetch_add(&sh->results, 1);
	if (h > 0) {
		/* The winner: receive one message from every loser. */
		int r = shmc_attach_key(sh->key, SHMC_RECV);
		REQUIRE_MSG(r > 0, "winner attach: %s", th_errname(r));
		atomic_fetch_add(&sh->winners, 1);
		unsigned char b[64];
		for (unsigned k = 0; k < RACERS - 1; k++) {
			int x = shmc_recv(r, b, sizeof b, 5000000000ll);
			if (x < 0)
				break;
			atomic_fetch_add(&sh->received, 1);
		}
		shmc_detach(r);
		return 0; /* exit() destroys the channel (the library's destructor) */
	}
	if (h != -EEXIST) {
		fprintf(stderr, "racer %u: create returned %s\n", i, th_errname(h));
		return 1;
	}
	/* A loser: the winner's channel is complete as soon as it is visible. */
	REQUIRE_MSG(th_await_u32(&sh->winners, 1, 10000) == 0, "no winner");
	int s = shmc_attach_key(sh->key, SHMC_SEND);
	REQUIRE_MSG(s > 0, "loser attach: %s", th_errname(s));
	CHECK_MSG(shmc_send(s, "hi", 2, 0, 5000000000ll) == 2, "loser send");
	shmc_detach(s);
	return 0;
}

static void part_b(unsigned rounds, struct figures *fig)
{
	for (unsigned r = 0; r < rounds; r++) {
		memset(sh, 0, sizeof *sh);
		sh->key = th_key();
		pid_t p[RACERS];
		for (unsigned i = 0; i < RACERS; i++)
			p[i] = th_fork(racer_main, (void *)(uintptr_t)i);
		REQUIRE_MSG(th_await_u32(&sh->ready, RACERS, 10000) == 0, "racers");
		atomic_store(&sh->go, 1);
		unsigned wins = 0, eexist = 0, bad_exit = 0;
		for (unsigned i = 0; i < RACERS; i++) {
			int rc = th_wait(p[i], 20000);
			if (rc != 0)
				bad_exit++;
			CHECK_MSG(rc == 0, "race round %u: racer %u exit %d%s", r, i, rc,
				  rc > 128 ? " (killed by a signal)" : "");
		}
		for (unsigned i = 0; i < RACERS; i++) {
			int h = atomic_load(&sh->result[i]);
			wins += h > 0;
			eexist += h == -EEXIST;
		}
		CHECK_MSG(wins == 1 && eexist == RACERS - 1,
			  "race round %u: %u creates succeeded, %u got -EEXIST (of %u)", r, wins, eexist,
			  RACERS);
		CHECK_MSG(atomic_load(&sh->received) == RACERS - 1, "race round %u: winner got %u of %u",
			  r, atomic_load(&sh->received), RACERS - 1);
		/* Sweep, then count. */
		int x = shmc_attach_key(sh->key, SHMC_RECV);
		CHECK_MSG(x == -ENOENT, "race round %u: channel still attachable after its creator "
			  "exited: %s", r, th_errname(x));
		if (x > 0)
			shmc_detach(x);
		char when[48];
		snprintf(when, sizeof when, "race round %u", r);
		clean_now(when);
		fig->race_rounds++;
		fig->race_procs += RACERS;
		(void)bad_exit;
	}
}

/* ---- part C: killed during initialisation ----------------------------------------------- */

/* Leave segments as a creator dies at @stage would. Returns their names. */
static void handmade(int stage, int32_t id, uint64_t nonce, char *cname, char *dname, size_t n)
{
	snprintf(cname, n, "/shmchan.%d.%016llx.c", (int)id, (unsigned long long)nonce);
	snprintf(dname, n, "/shmchan.%d.%016llx.d", (int)id, (unsigned long long)nonce);
	const uint32_t ring = 8, max = 64, stride = (max + SHMC_CACHELINE - 1) & ~(SHMC_CACHELINE - 1);
	size_t csize = sizeof(struct shmc_ctl_header) + SHMC_MAX_MEMBERS * sizeof(struct shmc_member) +
		       ring * sizeof(struct shmc_slot);
	size_t dsize = sizeof(struct shmc_dat_header) + ring * stride;
	int cfd = shm_open(cname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	REQUIRE_MSG(cfd >= 0, "shm_open %s: %s", cname, strerror(errno));
	if (stage >= 1)
		REQUIRE_MSG(ftruncate(cfd, (off_t)csize) == 0, "ftruncate");
	int dfd = -1;
	if (stage >= 2) {
		dfd = shm_open(dname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0);
		REQUIRE_MSG(dfd >= 0 && ftruncate(dfd, (off_t)dsize) == 0, "data segment");
		struct shmc_ctl_header *c =
			mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
		REQUIRE_MSG(c != MAP_FAILED, "mmap");
		c->magic = SHMC_CTL_MAGIC;
		c->header_size = sizeof *c;
		c->ring_entries = ring;
		c->max_msg_size = max;
		c->channel_id = id;
		c->nonce = nonce;
		if (stage >= 3) {
			c->slot_stride = stride;
			c->max_members = SHMC_MAX_MEMBERS;
			c->ctl_size = csize;
			c->dat_size = dsize;
			atomic_store(&c->version, SHMC_LAYOUT_VERSION);
			fchmod(cfd, 0600);
			fchmod(dfd, 0600);
		}
		munmap(c, csize);
	}
	close(cfd);
	if (dfd >= 0)
		close(dfd);
}

static int slow_creator_main(void *arg)
{
	(void)arg;
	for (;;) {
		atomic_store(&sh->stage, 1);
		/* A big ring: initialising 32768 slot words takes a while. */
		int o = shmc_create(sh->key, SHMC_UNICAST, SHMC_MAX_RING_ENTRIES, 16384, 0600, 0);
		atomic_store(&sh->stage, 2);
		if (o < 0)
			return 2;
		shmc_destroy(o);
	}
}

static void part_c(unsigned rounds, uint64_t seed, struct figures *fig)
{
	static const char *what[] = { "empty, mode 0", "sized, uninitialised",
				      "header without version", "complete, no registry entry" };
	for (int stage = 0; stage < 4; stage++) {
		char c[96], d[96];
		int32_t id = 2000000000 + (int32_t)(getpid() % 100000) * 4 + stage;
		uint64_t nonce = th_key();
		handmade(stage, id, nonce, c, d, sizeof c);
		int x = shmc_attach_id(id, SHMC_RECV);
		CHECK_MSG(x == -ENOENT, "half-built channel %d (%s) attachable: %s", (int)id, what[stage],
			  th_errname(x));
		if (x > 0)
			shmc_detach(x);
		/* That attach swept: the names must be gone. */
		bool gone = !th_shm_exists(c + 1) && !th_shm_exists(d + 1);
		CHECK_MSG(gone, "half-built segments (%s) not reclaimed by the next attach", what[stage]);
		printf("  left by a creator dying with the segment %s: not attachable, reclaimed: %s\n",
		       what[stage], gone ? "yes" : "NO");
		fig->handmade++;
	}
	uint64_t rng = seed;
	for (unsigned r = 0; r < rounds; r++) {
		memset(sh, 0, sizeof *sh);
		sh->key = th_key();
		pid_t p = th_fork(slow_creator_main, NULL);
		/* Let it get into the library (stage 1), then a random moment. */
		th_await_u32(&sh->stage, 1, 5000);
		th_sleep_us(th_below(&rng, 1500));
		unsigned stage = atomic_load(&sh->stage);
		kill(p, SIGKILL);
		int st;
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		th_forget(p);
		CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "creator ended with 0x%x",
			  st);
		fig->init_kills++;
		fig->init_kills_inside += stage == 1;
		int x = shmc_attach_key(sh->key, SHMC_RECV);
		CHECK_MSG(x == -ENOENT, "init round %u: attach after the creator died: %s", r, th_errname(x));
		if (x > 0)
			shmc_detach(x);
		x = shmc_create(sh->key, SHMC_UNICAST, 8, 64, 0600, 0);
		CHECK_MSG(x > 0, "init round %u: key not free after the creator died: %s", r, th_errname(x));
		if (x > 0)
			shmc_destroy(x);
		char when[48];
		snprintf(when, sizeof when, "init round %u", r);
		clean_now(when);
	}
}

int main(void)
{
	unsigned rounds = th_rounds(50);
	uint64_t seed = th_seed("SHMCHAN_CRASH_SEED");
	th_init("test_crash_hygiene", th_watchdog_for_rounds(110));
	int p = getenv("SHMCHAN_CRASH_SHARED_SHM") ? -EPERM : th_private_shm();
	g_private = p == 0;
	if (g_private)
		printf("# private /dev/shm (own mount namespace): counts are exact\n");
	else
		printf("# no private /dev/shm (%s): checking for orphans under the registry lock "
		       "instead of exact counts\n", strerror(-p));
	sh = th_shared_alloc(sizeof *sh);
	g_before = th_count_segments();
	printf("# shmchan entries in /dev/shm before: %d\n", g_before);
	struct figures fig = { 0 };

	th_section("A: %u rounds of kill -9 at a random moment (seed 0x%" PRIx64
		   ", SHMCHAN_CRASH_SEED to replay)", rounds, seed);
	part_a(rounds, seed, &fig);
	printf("  %u rounds: %u killed inside the library, %u before reaching it; then %u attaches "
	       "(-ENOENT), %u creates with the dead creator's key, %u other creates\n",
	       fig.rounds, fig.killed_in_library, fig.killed_before, fig.attach_enoent,
	       fig.create_same, fig.create_other);

	unsigned race = rounds / 2 > 10 ? rounds / 2 : 10;
	th_section("B: creation race, %u processes x %u rounds: one winner, the rest -EEXIST, "
		   "no SIGBUS", RACERS, race);
	part_b(race, &fig);
	printf("  %u rounds, %u processes: every round exactly one winner\n", fig.race_rounds,
	       fig.race_procs);

	unsigned init = rounds / 2 > 10 ? rounds / 2 : 10;
	th_section("C: a creator killed during initialisation (%u real kills + hand-made leftovers)",
		   init);
	part_c(init, seed ^ 0xc0ffee, &fig);
	printf("  %u creators SIGKILLed while creating a 32768-slot channel, %u of them inside "
	       "shmc_create\n", fig.init_kills, fig.init_kills_inside);

	int x = shmc_attach_key(th_key(), SHMC_RECV); /* one last sweep */
	CHECK_MSG(x == -ENOENT, "final attach: %s", th_errname(x));
	int after = th_count_segments();
	printf("figures: %u kill -9 rounds, %u race rounds, %u kills during creation, %u hand-made "
	       "leftovers; shmchan entries in /dev/shm before %d, after %d%s\n",
	       fig.rounds, fig.race_rounds, fig.init_kills, fig.handmade, g_before, after,
	       g_private ? "" : " (shared /dev/shm: other tests' channels included)");
	if (g_private)
		CHECK_MSG(after <= g_before, "entries after %d > before %d", after, g_before);
	else
		CHECK_MSG(count_orphans(true) == 0, "orphans at the end");
	return th_finish();
}
