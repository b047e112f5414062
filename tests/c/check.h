/* The C unit tests' one assertion: prints "ok" or "FAIL" and the
 * description, counts the failures; main returns failures != 0. */
#ifndef PFLASK_TEST_CHECK_H
#define PFLASK_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                  \
	do {                              \
		if (cond) {               \
			printf("ok   "); \
		} else {                  \
			printf("FAIL "); \
			failures++;       \
		}                         \
		printf(__VA_ARGS__);      \
		printf("\n");             \
	} while (0)

#endif
