/* SPDX-License-Identifier: MIT */
/*
 * consumer - print the messages of a shmchan channel until an empty one.
 *
 *   consumer KEY
 *
 * Attaches to the channel with that key as a receiver (retrying for up to
 * 10 s while it does not exist yet), prints each message, and exits on the
 * empty sentinel message the producer sends last.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shmchan.h"

int main(int argc, char **argv)
{
	static char buf[SHMC_MAX_MESSAGE_SIZE];
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	uint64_t key;
	int h = -ENOENT, n;

	if (argc < 2) {
		fprintf(stderr, "usage: %s KEY\n", argv[0]);
		return 2;
	}
	key = strtoull(argv[1], NULL, 0);

	/* The producer may not have created the channel yet: retry a while. */
	for (int tries = 0; tries < 1000 && h == -ENOENT; tries++) {
		h = shmc_attach_key(key, SHMC_RECV);
		if (h == -ENOENT)
			nanosleep(&pause, NULL);
	}
	if (h < 0) {
		fprintf(stderr, "consumer: attach 0x%" PRIx64 ": %s\n", key, shmc_strerror(h));
		return 1;
	}

	/* Blocking receive: sleeps (no timeout, no CPU) until a message comes. */
	while ((n = shmc_recv(h, buf, sizeof(buf), -1)) > 0)
		printf("consumer: %.*s\n", n, buf);
	if (n < 0) {
		fprintf(stderr, "consumer: recv: %s\n", shmc_strerror(n));
		return 1;
	}
	printf("consumer: sentinel received, done\n");
	shmc_detach(h);
	return 0;
}
