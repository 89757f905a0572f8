/* SPDX-License-Identifier: MIT */
/*
 * test_strerror_version - shmc_strerror gives a static, non-empty, distinct
 * description for each error code shmchan.h documents, and a printable one
 * for any other value; shmc_version is 0xMMmmpp.
 */
#include "harness.h"

/* Every error code shmchan.h documents. */
static const int codes[] = {
	-EINVAL, -EEXIST, -ENOENT, -EACCES, -ENOBUFS, -EMSGSIZE, -EAGAIN,
	-ETIMEDOUT, -ENOSPC, -EUSERS, -EBADMSG,
};

int main(void)
{
	size_t n = sizeof(codes) / sizeof(codes[0]);
	int v;

	th_init("test_strerror_version", 0);

	th_section("each API error has its own non-empty description");
	for (size_t i = 0; i < n; i++) {
		const char *s = shmc_strerror(codes[i]);

		REQUIRE(s != NULL);
		printf("  %-12s %s\n", th_errname(codes[i]), s);
		EXPECT_GT(strlen(s), 0);
		/* Stable: the same pointer or at least the same text each time. */
		EXPECT_STREQ(shmc_strerror(codes[i]), s);
		for (size_t j = 0; j < i; j++)
			if (strcmp(s, shmc_strerror(codes[j])) == 0)
				th_fail_at(__FILE__, __LINE__, "%s and %s share \"%s\"",
					   th_errname(codes[i]), th_errname(codes[j]), s);
	}

	th_section("other values still give a printable string");
	{
		/* System-call errnos ("or the errno of a failed system call"),
		 * success, and values that are no errno at all. */
		static const int odd[] = { -ENOMEM, -EMFILE, -EPERM, 0, 1, 12345, -99999,
					   -4095, INT32_MIN, INT32_MAX };

		for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
			const char *s = shmc_strerror(odd[i]);

			REQUIRE(s != NULL);
			printf("  %11d %s\n", odd[i], s);
			EXPECT_GT(strlen(s), 0);
		}
	}

	th_section("shmc_version is 0xMMmmpp");
	v = shmc_version();
	printf("  version 0x%06x = %d.%d.%d\n", (unsigned)v, (v >> 16) & 0xff, (v >> 8) & 0xff,
	       v & 0xff);
	EXPECT_GT(v, 0);
	EXPECT_LE(v, 0xffffff);
	EXPECT_EQ(shmc_version(), v);
	return th_finish();
}
