/* Error records of the C engine.
 *
 * Engine functions never log and never exit: they fill a struct pf_error and
 * return a negative value. The record has a fixed size so that a child can
 * send it to its parent over the sync channel as-is (see sync.h). */
#pragma once

#include <stddef.h>

#define PF_ERROR_MESSAGE_MAX 400

struct pf_error {
	int code;                          /* errno, 0 when not a system error */
	char message[PF_ERROR_MESSAGE_MAX]; /* one line, NUL-terminated */
};

/* Set err from errnum: message is "FORMAT: strerror(errnum)". Returns -1 so
 * callers can `return pf_error_errno(err, errno, "...")`. err may be NULL. */
int pf_error_errno(struct pf_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set err to a message without strerror. Returns -1. err may be NULL. */
int pf_error_set(struct pf_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
