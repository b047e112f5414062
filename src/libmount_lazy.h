/* libmount, loaded on first use.
 *
 * Linking libmount pulls in libblkid, libselinux and libpcre2, whose
 * loading and constructors cost more than everything else pflask does
 * before exec in a plain container (measured: 0.7M of 3.5M instructions).
 * Only mount option strings and the mountinfo walk need it, so it is
 * dlopen'ed when one of them is first used. pf_libmount_preload must run
 * before the process changes its root (pf_mount_pivot_root does), so that
 * the library is always the host's, never one planted in a container. */
#pragma once

#include <libmount.h>

#include "error.h"

struct pf_libmount {
	int (*optstr_get_flags)(const char *optstr, unsigned long *flags,
				const struct libmnt_optmap *map);
	int (*split_optstr)(const char *optstr, char **user, char **vfs, char **fs,
			    int ignore_user, int ignore_vfs);
	const struct libmnt_optmap *(*get_builtin_optmap)(int id);
	struct libmnt_table *(*new_table)(void);
	int (*table_parse_file)(struct libmnt_table *tb, const char *filename);
	void (*unref_table)(struct libmnt_table *tb);
	struct libmnt_iter *(*new_iter)(int direction);
	void (*free_iter)(struct libmnt_iter *itr);
	int (*table_next_fs)(struct libmnt_table *tb, struct libmnt_iter *itr,
			     struct libmnt_fs **fs);
	const char *(*fs_get_target)(struct libmnt_fs *fs);
};

/* The library's functions, loading it if needed; NULL with err set if it
 * cannot be loaded. */
const struct pf_libmount *pf_libmount(struct pf_error *err);

/* Load it now (before a change of root). Failure is reported later, by the
 * first call of pf_libmount. */
void pf_libmount_preload(void);

/* The other way to go through a change of root: never load it from now on
 * (pf_libmount fails, naming why) unless it is loaded already. For a
 * process that will not need it after the change (its mount options are
 * all pf_mount_options_fast's): loading it costs more than the rest of a
 * container's start. */
void pf_libmount_seal(void);
