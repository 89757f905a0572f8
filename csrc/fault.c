/* SPDX-License-Identifier: MIT */
/*
 * fault.c - no process dies of another's ftruncate (DESIGN.md section 9):
 * one process-wide SIGBUS handler, installed with the first mapping, and the
 * table of mappings it consults without locks. A fault inside a registered
 * mapping gets an anonymous zero page mapped over the faulting page and is
 * recorded (ctl, dat or our own member page: the handle is poisoned and
 * reports -EIO; another member's page: that member is ignored); the faulting
 * instruction then completes on the new page. Any other SIGBUS goes to the
 * handler installed before ours.
 *
 * Writes: its own table and the signal disposition of SIGBUS; from the
 * handler, the faulting page's mapping.
 * Calls: nothing of the library's.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { R_CTL, R_DAT, R_MEMBERS, R_COUNT };

/* One handle's mappings. `used` is claimed with a CAS; the ranges are
 * published (release) after the handle's mappings exist and cleared before
 * they go. */
struct fault_entry {
	_Atomic uint32_t used;
	_Atomic uintptr_t lo[R_COUNT], hi[R_COUNT];
	_Atomic uint32_t own_slot;      /* our own member page, or UINT32_MAX */
	_Atomic uint32_t poison;        /* ctl, dat or our own page faulted */
	_Atomic uint64_t member_hits;   /* bit i: member page i faulted */
};

static struct fault_entry g_faults[MAX_HANDLES];
static struct sigaction g_prev;
static pthread_once_t g_install = PTHREAD_ONCE_INIT;
static size_t g_page;

static void chain(int sig, siginfo_t *si, void *uc)
{
	if ((g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_sigaction) {
		g_prev.sa_sigaction(sig, si, uc);
	} else if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
		g_prev.sa_handler(sig);
	} else {
		/* Nobody else wanted it: the default action, once the faulting
		 * instruction runs again. */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGBUS, &dfl, NULL);
	}
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uintptr_t a = (uintptr_t)si->si_addr;
	for (uint32_t i = 0; i < MAX_HANDLES; i++) {
		struct fault_entry *e = &g_faults[i];
		if (!load_acquire(&e->used))
			continue;
		for (int r = 0; r < R_COUNT; r++) {
			uintptr_t lo = load_acquire(&e->lo[r]), hi = load_relaxed(&e->hi[r]);
			if (a < lo || a >= hi)
				continue;
			uintptr_t pg = a & ~(uintptr_t)(g_page - 1);
			/* mmap is a plain system call: safe in a handler. */
			mmap((void *)pg, g_page, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (r == R_MEMBERS) {
				uint32_t slot = (uint32_t)((pg - lo) / g_page);
				atomic_fetch_or_explicit(&e->member_hits, 1ull << (slot & 63),
							 memory_order_relaxed);
				if (slot == load_relaxed(&e->own_slot))
					store_relaxed(&e->poison, 1);
			} else {
				store_relaxed(&e->poison, 1);
			}
			errno = saved;
			return;
		}
	}
	errno = saved;
	chain(sig, si, uc);
}

static void install(void)
{
	g_page = (size_t)sysconf(_SC_PAGESIZE);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &g_prev);
}

/* Register @h's mappings (ctl, dat, the member region). 0, or -EMFILE when
 * the table is full (the handle then is not protected: refused). */
int shmc__fault_register(struct handle *h)
{
	pthread_once(&g_install, install);
	for (uint32_t i = 0; i < MAX_HANDLES; i++) {
		struct fault_entry *e = &g_faults[i];
		uint32_t expected = 0;
		if (!atomic_compare_exchange_strong(&e->used, &expected, 2))
			continue;
		store_relaxed(&e->poison, 0);
		store_relaxed(&e->member_hits, 0);
		store_relaxed(&e->own_slot, UINT32_MAX);
		uintptr_t lo[R_COUNT] = { (uintptr_t)h->ctl, (uintptr_t)h->dat, (uintptr_t)h->mregion };
		size_t len[R_COUNT] = { h->ctl_size, h->dat_size, SHMC_MAX_MEMBERS * h->page };
		for (int r = 0; r < R_COUNT; r++) {
			store_relaxed(&e->hi[r], lo[r] + len[r]);
			/* SYNC: release, paired with the handler's acquire of lo. */
			store_release(&e->lo[r], lo[r]);
		}
		/* SYNC: release, paired with the handler's acquire of used. */
		store_release(&e->used, 1);
		h->fault = (int)i;
		h->poison = &e->poison;
		return 0;
	}
	return -EMFILE;
}

/* @h has joined: a fault on its own member page poisons it. */
void shmc__fault_own(struct handle *h)
{
	if (h->fault >= 0 && h->me)
		store_relaxed(&g_faults[h->fault].own_slot, h->member_idx);
}

uint64_t shmc__fault_member_hits(const struct handle *h)
{
	if (h->fault < 0)
		return 0;
	return load_relaxed(&g_faults[h->fault].member_hits);
}

void shmc__fault_unregister(struct handle *h)
{
	if (h->fault < 0)
		return;
	struct fault_entry *e = &g_faults[h->fault];
	for (int r = 0; r < R_COUNT; r++) {
		store_relaxed(&e->lo[r], 0);
		store_relaxed(&e->hi[r], 0);
	}
	store_release(&e->used, 0);
	h->fault = -1;
}
