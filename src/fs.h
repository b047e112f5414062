/* Files seen from a root directory that is not ours yet. */
#pragma once

#include <stddef.h>

#include "error.h"

/* Read at most max bytes of path, resolved inside root as if root were "/"
 * (symlinks and ".." cannot leave it: openat2 RESOLVE_IN_ROOT). Returns a
 * malloc'd NUL-terminated buffer (the caller frees it) and its length in
 * *ret_len, or NULL with err set. */
char *pf_fs_read_in_root(const char *root, const char *path, size_t max,
			 size_t *ret_len, struct pf_error *err);
