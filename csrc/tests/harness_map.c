/* SPDX-License-Identifier: MIT */
/*
 * harness_map.c - a channel's segments through a writable mapping of the
 * test's own: the crash and fuzz tests play a producer or consumer step by
 * step with it, and dump the ring when a check fails. See harness.h.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void th_unmap(struct th_map *m)
{
	if (m->ctl)
		munmap(m->ctl, m->csize);
	if (m->dat)
		munmap(m->dat, m->dsize);
	if (m->cfd >= 0)
		close(m->cfd);
	if (m->dfd >= 0)
		close(m->dfd);
	memset(m, 0, sizeof *m);
	m->cfd = m->dfd = -1;
}

static int map_file(const char *name, int *fd, void **p, size_t *size)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof path, "/dev/shm/%s", name);
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0 || st.st_size <= 0) {
		close(*fd);
		*fd = -1;
		return -EBADMSG;
	}
	*size = (size_t)st.st_size;
	*p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*p == MAP_FAILED) {
		int err = -errno;

		close(*fd);
		*fd = -1;
		*p = NULL;
		return err;
	}
	return 0;
}

int th_map_channel(int32_t id, uint64_t key, struct th_map *m)
{
	char pfx[32];
	struct dirent *e;
	int err = -ENOENT;
	DIR *d;
	void *dp;

	memset(m, 0, sizeof *m);
	m->cfd = m->dfd = -1;
	snprintf(pfx, sizeof pfx, "shmchan.%d.", (int)id);
	d = opendir("/dev/shm");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		struct shmc_ctl_header *c;
		void *p = NULL;
		size_t sz = 0;
		int fd = -1;

		if (strncmp(e->d_name, pfx, strlen(pfx)) || l < 3 || strcmp(e->d_name + l - 2, ".c"))
			continue;
		if (map_file(e->d_name, &fd, &p, &sz) < 0)
			continue;
		c = p;
		if (sz < sizeof *c || c->magic != SHMC_CTL_MAGIC || c->key != key ||
		    c->channel_id != id || c->ctl_size != sz) {
			munmap(p, sz);
			close(fd);
			continue;
		}
		m->cfd = fd;
		m->ctl = c;
		m->csize = sz;
		snprintf(m->cname, sizeof m->cname, "%s", e->d_name);
		snprintf(m->dname, sizeof m->dname, "%s", e->d_name);
		m->dname[l - 1] = 'd';
		err = 0;
		break;
	}
	closedir(d);
	if (err)
		return err;
	err = map_file(m->dname, &m->dfd, &dp, &m->dsize);
	if (err) {
		th_unmap(m);
		return err;
	}
	m->dat = dp;
	m->n = m->ctl->ring_entries;
	m->mask = m->n - 1;
	m->stride = m->ctl->slot_stride;
	m->max_msg = m->ctl->max_msg_size;
	m->nonce = m->ctl->nonce;
	m->members = (struct shmc_member *)((uint8_t *)m->ctl + sizeof(struct shmc_ctl_header));
	m->slots = (struct shmc_slot *)((uint8_t *)m->members +
					SHMC_MAX_MEMBERS * sizeof(struct shmc_member));
	return 0;
}

uint8_t *th_payload(struct th_map *m, uint64_t pos)
{
	return m->dat + sizeof(struct shmc_dat_header) + (size_t)(pos & m->mask) * m->stride;
}

void th_set_len(struct th_map *m, uint64_t pos, uint32_t len)
{
	atomic_store(&m->slots[pos & m->mask].len, len);
}

void th_record_claim(struct shmc_member *me, uint64_t t, uint32_t n)
{
	atomic_store(&me->claim, t);
	atomic_store(&me->claim_n, n);
}

void th_hand_write(struct th_map *m, uint64_t t, uint32_t member_idx, const void *buf,
		   uint32_t len, bool publish)
{
	struct shmc_slot *s = &m->slots[t & m->mask];

	atomic_store(&s->target, 0);
	atomic_store(&s->writer, member_idx + 1);
	atomic_store(&s->seq, SEQ(t, SLOT_WRITING));
	th_set_len(m, t, len);
	if (len)
		memcpy(th_payload(m, t), buf, len);
	if (publish)
		atomic_store(&s->seq, SEQ(t, SLOT_READY));
}

int th_member_by_id(struct th_map *m, uint32_t id)
{
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
		if (atomic_load(&m->members[i].state) == MEMBER_ACTIVE &&
		    atomic_load(&m->members[i].id) == id)
			return (int)i;
	return -1;
}

int th_member_of(struct th_map *m, int handle)
{
	uint64_t info[SHMC_INFO_COUNT];

	if (shmc_info(handle, info) != SHMC_INFO_COUNT)
		return -1;
	if (info[SHMC_INFO_IS_OWNER]) {
		/* The owner has no subscriber id: the owner member of this pid. */
		for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++)
			if (atomic_load(&m->members[i].state) == MEMBER_ACTIVE &&
			    (atomic_load(&m->members[i].access) & MEMBER_OWNER) &&
			    m->members[i].pid == (uint32_t)getpid())
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
	       why, atomic_load(&m->ctl->tail), atomic_load(&m->ctl->head),
	       atomic_load(&m->ctl->recv_parked), atomic_load(&m->ctl->send_parked),
	       atomic_load(&m->ctl->skipped), atomic_load(&m->ctl->dropped));
	for (uint32_t i = 0; i < m->n && i < 16; i++)
		printf("    slot %u: %s writer %u target %u\n", i,
		       th_seq_str(atomic_load(&m->slots[i].seq), b, sizeof b),
		       atomic_load(&m->slots[i].writer), atomic_load(&m->slots[i].target));
	for (uint32_t i = 0; i < SHMC_MAX_MEMBERS; i++) {
		struct shmc_member *mm = &m->members[i];

		if (atomic_load(&mm->state) == MEMBER_FREE)
			continue;
		printf("    member %u: state %u id %u access 0x%x pid %u parked %u claim %" PRIu64
		       " cursor %" PRIu64 "\n",
		       i, atomic_load(&mm->state), atomic_load(&mm->id), atomic_load(&mm->access),
		       mm->pid, atomic_load(&mm->parked), atomic_load(&mm->claim),
		       atomic_load(&mm->cursor));
	}
	fflush(stdout);
}
