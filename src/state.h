/* State on disk: the runtime directory of a user's containers and small
 * records in it, written atomically, so that another pflask process can
 * find, list, join and clean a container its supervisor no longer holds
 * (doc/architecture.md, "Where the process model goes next"). The records'
 * content is the caller's (lua/pflask/registry.lua); this file only makes
 * sure that writes are atomic, reads are bounded, and nothing follows a
 * symlink or trusts a directory another user could write to. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Records are small: a read refuses anything larger. */
#define PF_STATE_RECORD_MAX 65536

/* The runtime directory of owner's containers: /run/pflask for root,
 * /run/user/UID/pflask when /run/user/UID belongs to the user, else
 * /tmp/pflask-UID. With create, makes it (mode 0700) and refuses one that
 * is not a private directory of owner (another user's directory in /tmp
 * would let them forge our records). Fills buf. */
int pf_state_dir(uid_t owner, bool create, char *buf, size_t size, struct pf_error *err);

/* Write data as file name in dir. With exclusive, name is created
 * (O_EXCL, O_NOFOLLOW, mode 0600) and written in one write(2), failing
 * with EEXIST when it exists: a name is reserved by one writer only.
 * Otherwise name is replaced atomically: a temporary file in dir renamed
 * over it, so a reader sees the old record or the new one, never a part.
 * name is one path component. */
int pf_state_write(const char *dir, const char *name, const char *data, size_t len,
		   bool exclusive, struct pf_error *err);

/* Read file name of dir (a regular file, not followed if a symlink, at
 * most size - 1 bytes) into buf, NUL-terminated; *ret_len is its length.
 * Fails with ENOENT when there is none, EFBIG when it is larger. */
int pf_state_read(const char *dir, const char *name, char *buf, size_t size, size_t *ret_len,
		  struct pf_error *err);

/* Remove file name of dir; a missing one is not an error. */
int pf_state_remove(const char *dir, const char *name, struct pf_error *err);

/* When process pid started, in clock ticks since boot (field 22 of
 * /proc/PID/stat). With the pid it names one process for good: a pid
 * reused by a later process has another start time. Fails with ESRCH when
 * there is no such process. */
int pf_state_start_time(pid_t pid, unsigned long long *ret_ticks, struct pf_error *err);

/* Call each(name, ctx) for every record of dir (regular files whose name
 * ends in suffix; temporary files are skipped). A missing dir has none.
 * each returns 0 to go on, anything else to stop (returned). */
int pf_state_list(const char *dir, const char *suffix,
		  int (*each)(const char *name, void *ctx), void *ctx, struct pf_error *err);
