/* Scope-bound cleanup, as in systemd: a variable declared with
 * _cleanup_close_ is closed when it goes out of scope. Hand ownership over
 * with take_fd()/take_ptr(), which reset the variable so nothing is freed
 * twice. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static inline void pf_freep(void *p)
{
	free(*(void **)p);
}

static inline void pf_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno; /* close must not clobber the errno we report */
		close(*fd);
		errno = saved;
	}
}

#define _cleanup_free_ __attribute__((cleanup(pf_freep)))
#define _cleanup_close_ __attribute__((cleanup(pf_closep)))

static inline int pf_take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}
#define take_fd(fd) pf_take_fd(&(fd))

static inline void *pf_take_ptr(void **p)
{
	void *r = *p;
	*p = NULL;
	return r;
}
#define take_ptr(p) pf_take_ptr((void **)&(p))
