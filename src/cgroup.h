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

/* The census of the supervisors that made cgroups: a System V semaphore
 * set per runtime directory (the key is ftok(dir)), so that a start learns
 * in O(1) whether a supervisor died without removing its cgroups, instead
 * of asking /proc about the supervisor of every cgroup on the host. A
 * supervisor joins (live and registered +1, live with SEM_UNDO) before it
 * makes cgroups and leaves after removing them; when it dies, the kernel
 * undoes its live count only, so registered - live counts the unclean
 * deaths nobody has settled yet. A mutex (also SEM_UNDO: released by the
 * kernel if its holder dies) serializes the sweeps that settle them. */
enum { PF_CENSUS_LIVE, PF_CENSUS_REGISTERED, PF_CENSUS_MUTEX, PF_CENSUS_MAGIC, PF_CENSUS_NSEMS };

/* Open (or create, mode 0600) the set of directory dir; returns its id,
 * and in *ret_created whether this call made it (then nothing is known of
 * the supervisors before: the caller reads the journals once). A set that
 * is not ours (another owner, other permissions, a foreign set with the
 * same key) fails with EPERM: the caller falls back to a full sweep. */
int pf_census_open(const char *dir, bool *ret_created, struct pf_error *err);

/* The same for another census of that directory, told apart by proj (the
 * ftok project id): 'c' counts the supervisors that made cgroups (the
 * one above), 'r' those that hold a registry record. */
int pf_census_open_kind(const char *dir, int proj, bool *ret_created, struct pf_error *err);

/* Join (delta 1) or leave (delta -1) the census. Fails with ERANGE past
 * 32767 live registrations. */
int pf_census_join(int id, int delta, struct pf_error *err);

/* Unclean deaths not settled yet (registered - live), in *ret. */
int pf_census_deaths(int id, int *ret, struct pf_error *err);

/* Take (lock true, waiting up to 2 s, then EAGAIN) or give back the sweep
 * mutex. */
int pf_census_lock(int id, bool lock, struct pf_error *err);

/* Settle n deaths (their cgroups are gone). Holding the mutex. */
int pf_census_settle(int id, int n, struct pf_error *err);
