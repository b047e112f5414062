/* Cgroups (v2 and v1 alike): a cgroup is a directory of a mounted
 * hierarchy; these are the file operations on it. Where to create one and
 * which files to write are decided in Lua (pflask.cgroups). Parent side. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* Create the cgroup directory path (mode 0755). An existing one is an
 * error (EEXIST): pflask never adopts a cgroup it did not make. */
int pf_cgroup_create(const char *path, struct pf_error *err);

/* Write value to path/file in one write(2), as the kernel expects. */
int pf_cgroup_write(const char *path, const char *file, const char *value,
		    struct pf_error *err);

/* Move process pid (all its threads) into the cgroup. */
int pf_cgroup_attach(const char *path, pid_t pid, struct pf_error *err);

/* Remove the cgroup and any cgroups made below it, deepest first. With
 * kill, processes still in them are SIGKILLed (cgroup.kill on v2, else
 * each pid of cgroup.procs) and removal is retried for up to about two
 * seconds while they die; without kill, a busy cgroup fails with EBUSY.
 * A cgroup already gone is not an error. */
int pf_cgroup_remove(const char *path, bool kill, struct pf_error *err);
