#define _GNU_SOURCE
#include "libmount_lazy.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>

#ifndef PF_LIBMOUNT_SONAME
#define PF_LIBMOUNT_SONAME "libmount.so.1"
#endif

static struct pf_libmount api;
static bool loaded, sealed;

static bool load(struct pf_error *err)
{
	if (sealed) {
		pf_error_set(err, ELIBACC, "load %s: not loaded before the root changed, and never "
			     "from the container's root (mount options beyond the common flags, "
			     "mode=, size=, uid=, gid=: before pivot_root)", PF_LIBMOUNT_SONAME);
		return false;
	}
	void *h = dlopen(PF_LIBMOUNT_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		pf_error_set(err, ELIBACC, "load %s: %s", PF_LIBMOUNT_SONAME, dlerror());
		return false;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{ "mnt_optstr_get_flags", (void **)&api.optstr_get_flags },
		{ "mnt_split_optstr", (void **)&api.split_optstr },
		{ "mnt_get_builtin_optmap", (void **)&api.get_builtin_optmap },
		{ "mnt_new_table", (void **)&api.new_table },
		{ "mnt_table_parse_file", (void **)&api.table_parse_file },
		{ "mnt_unref_table", (void **)&api.unref_table },
		{ "mnt_new_iter", (void **)&api.new_iter },
		{ "mnt_free_iter", (void **)&api.free_iter },
		{ "mnt_table_next_fs", (void **)&api.table_next_fs },
		{ "mnt_fs_get_target", (void **)&api.fs_get_target },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			pf_error_set(err, ELIBBAD, "%s has no %s", PF_LIBMOUNT_SONAME, syms[i].name);
			dlclose(h);
			return false;
		}
	}
	/* Never closed: the functions stay valid for the process' life. */
	loaded = true;
	return true;
}

const struct pf_libmount *pf_libmount(struct pf_error *err)
{
	if (!loaded && !load(err))
		return NULL;
	return &api;
}

void pf_libmount_preload(void)
{
	struct pf_error ignored;
	if (!loaded)
		load(&ignored);
}

void pf_libmount_seal(void)
{
	if (!loaded)
		sealed = true;
}
