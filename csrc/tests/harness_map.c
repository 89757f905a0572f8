/* SPDX-License-Identifier: MIT */
/*
 * harness_map.c - a channel's files through a writable mapping of the
 * test's own: the crash and fuzz tests play a producer or consumer step by
 * step with it, and dump the ring when a check fails. See harness.h. The
 * layout and encoding are those of csrc/layout.h and csrc/DESIGN.md 6.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

void th_unmap(struct th_map *m)
{
	if (m->ctl)
		munmap(m->ctl, m->csize);
	if (m->dat)
		munmap(m->dat, m->dsize);
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
		if (m->members[i])
			munmap(m->members[i], page_size());
	if (m->dfd >= 0)
		close(m->dfd);
	memset(m, 0, sizeof *m);
	m->dfd = -1;
}

void th_channel_path(char *out, size_t n, uint64_t key, const char *name)
{
	snprintf(out, n, "/dev/shm/shmchan.%016" PRIx64 "%s%s", key, name && *name ? "/" : "",
		 name ? name : "");
}

/* Read-write where the caller may write the file, else read-only (an
 * attacker's view). */
static void *map_at(int dfd, const char *name, size_t *size)
{
	int prot = PROT_READ | PROT_WRITE;
	int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		prot = PROT_READ;
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return NULL;
	struct stat st;
	void *p = NULL;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		size_t sz = *size ? *size : (size_t)st.st_size;
		p = mmap(NULL, sz, prot, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			p = NULL;
		else
			*size = sz;
	}
	close(fd);
	return p;
}

void th_map_members(struct th_map *m)
{
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
		if (m->members[i])
			munmap(m->members[i], page_size());
		m->members[i] = NULL;
		char name[16];
		snprintf(name, sizeof name, "m%u", i);
		size_t sz = page_size();
		m->members[i] = map_at(m->dfd, name, &sz);
	}
}

int th_map_channel(int32_t id, uint64_t key, struct th_map *m)
{
	memset(m, 0, sizeof *m);
	m->dfd = -1;
	th_channel_path(m->dir, sizeof m->dir, key, NULL);
	m->dfd = open(m->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m->dfd < 0)
		return -errno;
	int fd = openat(m->dfd, "id", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || pread(fd, &m->desc, sizeof m->desc, 0) != (ssize_t)sizeof m->desc ||
	    m->desc.key != key || m->desc.channel_id != id) {
		if (fd >= 0)
			close(fd);
		th_unmap(m);
		return -ENOENT;
	}
	close(fd);
	m->ctl = map_at(m->dfd, "ctl", &m->csize);
	m->dat = map_at(m->dfd, "dat", &m->dsize);
	if (!m->ctl || !m->dat) {
		th_unmap(m);
		return -EACCES;
	}
	m->dh = (struct shmc_dat_header *)m->dat;
	m->n = m->desc.ring_entries;
	m->mask = m->n - 1;
	m->stride = m->desc.slot_stride;
	m->max_msg = m->desc.max_msg_size;
	m->delivery = m->desc.delivery;
	m->nonce = m->desc.nonce;
	m->start = m->desc.start;
	m->waits = (struct shmc_wait *)((uint8_t *)m->ctl + sizeof(struct shmc_ctl_header));
	m->qslots = m->delivery == SHMC_BROADCAST
			    ? NULL
			    : (struct shmc_qslot *)((uint8_t *)m->waits +
						    SHMC_MAX_MEMBERS * sizeof(struct shmc_wait));
	th_map_members(m);
	return 0;
}

/* The first position slot of @pos holds, and the encodings relative to it. */
static uint64_t first_of(struct th_map *m, uint64_t pos)
{
	return m->start + ((pos - m->start) & m->mask);
}

struct shmc_slot_header *th_slot(struct th_map *m, uint64_t pos)
{
	return (struct shmc_slot_header *)(m->dat + sizeof(struct shmc_dat_header) +
					   (size_t)(pos & m->mask) * m->stride);
}

uint8_t *th_payload(struct th_map *m, uint64_t pos)
{
	return (uint8_t *)th_slot(m, pos) + sizeof(struct shmc_slot_header);
}

_Atomic uint64_t *th_state_word(struct th_map *m, uint64_t pos)
{
	return m->delivery == SHMC_BROADCAST ? &th_slot(m, pos)->word : &m->qslots[pos & m->mask].seq;
}

uint64_t th_seq(struct th_map *m, uint64_t pos)
{
	return atomic_load(th_state_word(m, pos)) + SEQ(first_of(m, pos), SLOT_FREE);
}

void th_set_seq(struct th_map *m, uint64_t pos, uint64_t q)
{
	atomic_store(th_state_word(m, pos), q - SEQ(first_of(m, pos), SLOT_FREE));
}

bool th_cas_seq(struct th_map *m, uint64_t pos, uint64_t *expected, uint64_t desired)
{
	uint64_t base = SEQ(first_of(m, pos), SLOT_FREE), e = *expected - base;
	bool ok = atomic_compare_exchange_strong(th_state_word(m, pos), &e, desired - base);
	*expected = e + base;
	return ok;
}

bool th_being_written(struct th_map *m, uint64_t k, uint64_t *pos)
{
	if (m->delivery == SHMC_BROADCAST) {
		uint64_t q = th_seq(m, k);
		*pos = q / 4;
		return (q & 3) == SLOT_WRITING;
	}
	uint64_t w = atomic_load(&th_slot(m, k)->word);
	if (!(w >> 63))
		return false;
	*pos = first_of(m, k) + ((w ^ (1ull << 63)) - 1) / 2;
	return th_seq(m, *pos) == SEQ(*pos, SLOT_FREE); /* not skipped since */
}

void th_set_len(struct th_map *m, uint64_t pos, uint32_t len)
{
	atomic_store(&th_slot(m, pos)->len, len);
}

void th_set_stamp(struct th_map *m, uint64_t pos)
{
	if (m->delivery != SHMC_BROADCAST)
		atomic_store(&th_slot(m, pos)->word, (pos - first_of(m, pos)) * 2 + 1);
}

_Atomic uint64_t *th_tail(struct th_map *m)
{
	return &m->dh->tail;
}

void th_record_claim(struct shmc_member *me, uint64_t t, uint32_t n)
{
	atomic_store(&me->claim, t);
	atomic_store(&me->claim_n, n);
}

void th_hand_write(struct th_map *m, uint64_t t, const void *buf, uint32_t len, bool publish)
{
	/* As publish_begin/publish_end: unicast/multicast write only dat (the
	 * stamp "being written", then "complete"), broadcast the state. */
	if (m->delivery == SHMC_BROADCAST)
		th_set_seq(m, t, SEQ(t, SLOT_WRITING));
	else
		atomic_store(&th_slot(m, t)->word, ((t - first_of(m, t)) * 2 + 1) ^ (1ull << 63));
	atomic_store(&th_slot(m, t)->target, 0);
	th_set_len(m, t, len);
	if (len)
		memcpy(th_payload(m, t), buf, len);
	if (publish) {
		if (m->delivery == SHMC_BROADCAST)
			th_set_seq(m, t, SEQ(t, SLOT_READY));
		else
			th_set_stamp(m, t);
	}
}

int th_member_by_id(struct th_map *m, uint32_t id)
{
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
		if (m->members[i] && atomic_load(&m->members[i]->state) == MEMBER_ACTIVE &&
		    m->members[i]->id == id)
			return (int)i;
	return -1;
}

int th_member_of_pid(struct th_map *m, pid_t pid)
{
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
		if (m->members[i] && atomic_load(&m->members[i]->state) == MEMBER_ACTIVE &&
		    m->members[i]->pid == (uint32_t)pid)
			return (int)i;
	return -1;
}

int th_member_of(struct th_map *m, int handle)
{
	uint64_t info[SHMC_INFO_COUNT];

	if (shmc_info(handle, info) != SHMC_INFO_COUNT)
		return -1;
	th_map_members(m);
	if (info[SHMC_INFO_IS_OWNER]) {
		/* The owner has no subscriber id: the owner member of this pid. */
		for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
			if (m->members[i] && atomic_load(&m->members[i]->state) == MEMBER_ACTIVE &&
			    (m->members[i]->access & MEMBER_OWNER) &&
			    m->members[i]->pid == (uint32_t)getpid())
				return (int)i;
		return -1;
	}
	return th_member_by_id(m, (uint32_t)info[SHMC_INFO_MEMBER_ID]);
}

uint64_t th_info(int handle, int field)
{
	uint64_t info[SHMC_INFO_COUNT];

	if (shmc_info(handle, info) != SHMC_INFO_COUNT)
		return UINT64_MAX;
	return info[field];
}

const char *th_seq_str(uint64_t q, char *buf, size_t n)
{
	static const char *st[] = { "FREE", "WRITING", "READY", "TAKEN" };

	snprintf(buf, n, "SEQ(%" PRIu64 ",%s)", q / 4, st[q & 3]);
	return buf;
}

void th_dump_ring(struct th_map *m, const char *why)
{
	char b[64];

	printf("  ring state (%s): tail %" PRIu64 " head %" PRIu64 " recv_parked %u send_parked %u"
	       " skipped %" PRIu64 " dropped %" PRIu64 "\n",
	       why, atomic_load(&m->dh->tail), atomic_load(&m->ctl->head),
	       atomic_load(&m->ctl->recv_parked), atomic_load(&m->ctl->send_parked),
	       atomic_load(&m->ctl->skipped), atomic_load(&m->ctl->dropped));
	uint64_t t = atomic_load(&m->dh->tail);
	for (uint32_t i = 0; i < m->n && i < 16; i++) {
		uint64_t pos = t - m->n + i;
		uint64_t w = atomic_load(&th_slot(m, pos)->word);
		printf("    slot %u: %s target %u len %u word 0x%" PRIx64 "\n", (unsigned)(pos & m->mask),
		       th_seq_str(th_seq(m, pos), b, sizeof b), atomic_load(&th_slot(m, pos)->target),
		       atomic_load(&th_slot(m, pos)->len), w);
	}
	th_map_members(m);
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
		struct shmc_member *mm = m->members[i];

		if (!mm)
			continue;
		printf("    member %u: state %u id %u access 0x%x pid %u parked %u claim %" PRIu64
		       "+%u cursor %" PRIu64 " taking %" PRIu64 "\n",
		       i, atomic_load(&mm->state), mm->id, mm->access, mm->pid,
		       atomic_load(&m->waits[i].parked), atomic_load(&mm->claim),
		       atomic_load(&mm->claim_n), atomic_load(&mm->cursor), atomic_load(&mm->taking));
	}
	fflush(stdout);
}

uintptr_t th_library_mapping(const char *path, int nth, const void *except)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	FILE *fp = fopen("/proc/self/maps", "r");
	if (!fp)
		return 0;
	char line[512];
	uintptr_t found = 0;
	while (fgets(line, sizeof line, fp)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, mnr;
		char perms[8];
		/* The inode, not the path: a file published from O_TMPFILE shows
		 * under its temporary name in the process that created it. */
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &maj, &mnr,
			   &ino) != 7 || ino != (unsigned long long)st.st_ino)
			continue;
		if ((const void *)(uintptr_t)lo == except)
			continue;
		if (nth-- == 0) {
			found = (uintptr_t)lo;
			break;
		}
	}
	fclose(fp);
	return found;
}
