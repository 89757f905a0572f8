/* SPDX-License-Identifier: MIT */
/*
 * test_crash_hygiene - kill -9 at random moments leaves nothing behind in
 * /dev/shm, and racing creators agree on one winner.
 *
 * The test runs in a private /dev/shm (a new mount namespace with its own
 * tmpfs: needs root or user namespaces) so that entry counts are exact even
 * when CTest runs other tests in parallel; without one it falls back to
 * checking that no name a sweep must remove has been left for more than 2 s
 * (a leftover of a creator killed while building, a renamed channel with no
 * live member, a dangling id link). Setting SHMCHAN_CRASH_SHARED_SHM=1 forces
 * that fallback.
 *
 * Part A, R rounds (CI: 50; SHMCHAN_CRASH_ROUNDS=1000 for the long run): a
 * forked child creates a channel, and by a random plan also attaches,
 * sends, detaches, destroys and recreates in a loop, or creates several
 * channels; it is SIGKILLed after a random delay (0 .. 3 ms, sometimes
 * before it even reached the library). Then the parent attaches by the
 * child's key (must be -ENOENT: its creator is dead), or creates with it
 * (must succeed: the key is free), or creates another key. After every
 * round the /dev/shm entries (shmchan.*) are back to the count before the
 * test.
 *
 * Part B, the creation race: N processes released at once create the same
 * key: exactly one succeeds, the others get -EEXIST, attach by key and send
 * to the winner; nobody dies of a signal (no SIGBUS).
 *
 * Part C, a creator killed during initialisation:
 *   - by hand: what a dying creator can leave (a directory being built,
 *     without or with a descriptor; an id link whose channel never appeared;
 *     a complete channel it never destroyed) is not attachable and is removed
 *     by the next create or attach;
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
#include <time.h>
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

/* ---- the fallback check: nothing a sweep must remove is older than 2 s ---- */

static uint64_t age_ns(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t d = (int64_t)(now.tv_sec - st->st_mtim.tv_sec) * 1000000000ll +
		    (now.tv_nsec - st->st_mtim.tv_nsec);
	return d > 0 ? (uint64_t)d : 0;
}

/* Any member file of the directory @path whose liveness lock is held? */
static bool has_live_member(const char *path)
{
	for (unsigned i = 0; i < SHMC_MAX_MEMBERS; i++) {
		char p[400];
		snprintf(p, sizeof p, "%s/m%u", path, i);
		int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = (off_t)SHMC_LOCK_BYTE, .l_len = 1 };
		bool live = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_WRLCK;
		close(fd);
		if (live)
			return true;
	}
	return false;
}

static int count_orphans(bool print)
{
	int orphans = 0;
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char path[300];
		struct stat st;
		snprintf(path, sizeof path, "/dev/shm/%s", de->d_name);
		if (strncmp(de->d_name, "shmchan.", 8) != 0 || lstat(path, &st) != 0 ||
		    age_ns(&st) < 2000000000ull)
			continue;
		bool orphan = false;
		if (!strncmp(de->d_name, "shmchan.t.", 10))
			orphan = true; /* built for more than 2 s */
		else if (!strncmp(de->d_name, "shmchan.x.", 10))
			orphan = !has_live_member(path);
		else if (!strncmp(de->d_name, "shmchan.id.", 11))
			orphan = access(path, F_OK) != 0; /* dangling */
		if (orphan) {
			orphans++;
			if (print)
				printf("  orphan: %s\n", path);
		}
	}
	if (d)
		closedir(d);
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

static int exit_main(void *arg)
{
	(void)arg;
	return 0;
}

/* A child that creates a channel and exits without destroying it (_exit
 * runs no destructor): a complete channel whose creator is gone. */
static int abandon_main(void *arg)
{
	uint64_t key = *(uint64_t *)arg;
	int h = shmc_create(key, SHMC_UNICAST, 8, 64, 0600, 0);
	_exit(h > 0 ? 0 : 1);
}

/* Leave what a creator dying at @stage leaves; its names into @a and @b (or
 * ""); the key or id to attach by into *@key / *@id. */
static void handmade(int stage, char *a, char *b, size_t n, uint64_t *key, int32_t *id)
{
	a[0] = b[0] = 0;
	*key = 0;
	*id = 2000000000 + (int32_t)(getpid() % 100000) * 4 + stage;
	if (stage == 0 || stage == 1) {
		/* A directory being built (named after its key and its builder:
		 * here a process that has exited), no descriptor yet; or one with a
		 * descriptor whose lock died with its creator. */
		*key = th_key();
		pid_t gone = th_fork(exit_main, NULL);
		EXPECT_CHILD_OK(gone, 10000);
		struct stat ns;
		REQUIRE_MSG(stat("/proc/self/ns/pid", &ns) == 0, "pid namespace");
		snprintf(a, n, "shmchan.t.%016" PRIx64 ".%llu.%d.1", *key,
			 (unsigned long long)ns.st_ino, (int)gone);
		char path[160];
		snprintf(path, sizeof path, "/dev/shm/%s", a);
		REQUIRE_MSG(mkdir(path, 0700) == 0, "mkdir %s: %s", path, strerror(errno));
		if (stage == 1) {
			struct shmc_desc d;
			memset(&d, 0, sizeof d);
			d.magic = SHMC_DESC_MAGIC;
			d.version = SHMC_LAYOUT_VERSION;
			d.desc_size = sizeof d;
			d.delivery = SHMC_UNICAST;
			d.ring_entries = 8;
			d.max_msg_size = 64;
			d.slot_stride = 128;
			d.mode = 0600;
			d.channel_id = *id;
			d.key = th_key();
			d.ctl_size = sizeof(struct shmc_ctl_header) + SHMC_MAX_MEMBERS * sizeof(struct shmc_wait) +
				     8 * sizeof(struct shmc_qslot);
			d.dat_size = sizeof(struct shmc_dat_header) + 8 * 128;
			d.member_size = sizeof(struct shmc_member);
			snprintf(path, sizeof path, "/dev/shm/%s/id", a);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
			REQUIRE_MSG(fd >= 0 && write(fd, &d, sizeof d) == (ssize_t)sizeof d, "id");
			close(fd);
		}
	} else if (stage == 2) {
		/* An id link whose channel never appeared. */
		*key = th_key();
		char target[64];
		snprintf(a, n, "shmchan.id.%d", (int)*id);
		snprintf(target, sizeof target, "shmchan.%016" PRIx64, *key);
		char path[160];
		snprintf(path, sizeof path, "/dev/shm/%s", a);
		REQUIRE_MSG(symlink(target, path) == 0, "symlink %s: %s", path, strerror(errno));
	} else {
		/* A complete channel its creator never destroyed. */
		*key = th_key();
		EXPECT_CHILD_OK(th_fork(abandon_main, key), 10000);
		snprintf(a, n, "shmchan.%016" PRIx64, *key);
	}
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
	static const char *what[] = { "a directory being built, no descriptor, its builder gone",
				      "a directory being built, its creator's lock gone",
				      "an id link whose channel never appeared, nobody building it",
				      "a complete channel its creator never destroyed" };
	for (int stage = 0; stage < 4; stage++) {
		char a[64], b[64];
		uint64_t key;
		int32_t id;
		handmade(stage, a, b, sizeof a, &key, &id);
		int x = stage == 2 ? shmc_attach_id(id, SHMC_RECV) : shmc_attach_key(key, SHMC_RECV);
		CHECK_MSG(x == -ENOENT, "%s: attachable: %s", what[stage], th_errname(x));
		if (x > 0)
			shmc_detach(x);
		/* That attach swept: the names must be gone. */
		bool gone = !th_shm_exists(a) && (!b[0] || !th_shm_exists(b));
		if (stage == 3)
			gone = gone && th_count_segments_of(key, 0) == 0;
		CHECK_MSG(gone, "%s (%s) not reclaimed by the next attach", what[stage], a);
		printf("  left by a dying creator: %s: not attachable, reclaimed: %s\n", what[stage],
		       gone ? "yes" : "NO");
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
