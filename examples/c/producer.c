/* SPDX-License-Identifier: MIT */
/*
 * producer - send N messages on a shmchan channel, then an empty sentinel.
 *
 *   producer KEY [COUNT]
 *
 * KEY is the channel key (decimal or 0x-hex). If no channel has that key yet
 * the producer creates one (unicast, 256 slots of up to 4 KiB, mode 0600);
 * otherwise it attaches to it as a sender. Run `consumer KEY` alongside.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmchan.h"

#define RING 256u

static int die(const char *what, int err)
{
	fprintf(stderr, "producer: %s: %s\n", what, shmc_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	uint64_t key;
	unsigned long count = 10;
	int h, r, created = 0;
	char msg[64];

	if (argc < 2) {
		fprintf(stderr, "usage: %s KEY [COUNT]\n", argv[0]);
		return 2;
	}
	key = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		count = strtoul(argv[2], NULL, 0);

	/* Attach as a sender; if the key is unknown, create the channel. */
	h = shmc_attach_key(key, SHMC_SEND);
	if (h == -ENOENT) {
		h = shmc_create(key, SHMC_UNICAST, RING, 4096, 0600, 0);
		created = h > 0;
	}
	if (h < 0)
		return die("open channel", h);
	printf("producer: %s channel 0x%" PRIx64 ", sending %lu messages\n",
	       created ? "created" : "attached to", key, count);

	for (unsigned long i = 0; i < count; i++) {
		int n = snprintf(msg, sizeof(msg), "message %lu", i);

		/* Blocking send: waits (no timeout) while the ring is full. */
		r = shmc_send(h, msg, (uint32_t)n, 0, -1);
		if (r < 0)
			return die("send", r);
	}
	/* An empty message tells the consumer to stop. */
	r = shmc_send(h, msg, 0, 0, -1);
	if (r < 0)
		return die("send sentinel", r);

	if (created) {
		/*
		 * The channel disappears from lookup when its creator exits, so a
		 * consumer must have attached by now; wait until it has read
		 * everything. RING more messages fit only once the ring is empty,
		 * i.e. once the sentinel and all before it were consumed; the
		 * consumer stops at the sentinel and never sees these fillers.
		 */
		for (unsigned i = 0; i < RING; i++) {
			r = shmc_send(h, msg, 0, 0, -1);
			if (r < 0)
				return die("wait for the consumer", r);
		}
		shmc_destroy(h);
	} else {
		shmc_detach(h);
	}
	printf("producer: done\n");
	return 0;
}
