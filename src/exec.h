/* The exec plan: what must happen in the command's own process, right
 * before execve, and nowhere else (not in pid 1, not in the supervisor):
 * closing every inherited fd but the passed ones, rlimits, no_new_privs,
 * waiting for a "go" on a start FIFO, and a seccomp filter, loaded last.
 *
 * The plan is built beforehand (in the child, in Lua) as one block of
 * memory, so that running it allocates nothing: with pid 1 as a reaper the
 * command starts with CLONE_VM|CLONE_VFORK and shares pid 1's memory until
 * it execs. Everything pf_exec_plan_run does is async-signal-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>

#include "error.h"

/* Linux's BPF_MAXINSNS: the longest filter the kernel loads. */
#define PF_EXEC_MAX_FILTER 4096

struct pf_exec_rlimit {
	int resource; /* RLIMIT_* */
	struct rlimit limit;
};

struct pf_exec_plan {
	const int *pass;       /* fds from 3 up the command inherits, at their numbers */
	size_t n_pass;
	const struct pf_exec_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privs;
	const void *filter;    /* struct sock_filter[n_filter], or NULL */
	size_t n_filter;
	int start_fifo;        /* O_PATH fd of the start FIFO, or -1 */
	bool orphan;           /* with start_fifo: outlive the supervisor once created (OCI create) */
};

/* RLIMIT_* of a name as prlimit(1) spells it ("nofile", "as", "core"...),
 * or -1. */
int pf_exec_rlimit_by_name(const char *name);

/* The names pf_exec_rlimit_by_name knows, NULL-terminated. */
extern const char *const pf_exec_rlimit_names[];

/* In the command's process, after every other stage, right before execve:
 *   1. close every fd from 3 up but plan->pass (made inheritable),
 *      sync_fd and the start FIFO's fd (both close-on-exec);
 *   2. set the rlimits;
 *   3. no_new_privs;
 *   4. with a start FIFO: tell the supervisor on sync_fd that the
 *      container is created (a PF_SYNC_READY record), then block opening
 *      the FIFO for writing (through /proc/self/fd, so the path outside
 *      the root is never looked up again) until a reader opens it (OCI
 *      `start`), write one byte, close it;
 *   5. load the seccomp filter (needs no_new_privs or CAP_SYS_ADMIN).
 * plan may be NULL (nothing to do). sync_fd may be -1. Returns 0, or -1
 * with err set: the caller reports and exits. Child side; never allocates. */
int pf_exec_plan_run(const struct pf_exec_plan *plan, int sync_fd, struct pf_error *err);

/* The other side of a start FIFO (OCI `start`, from any process): open
 * path for reading, which lets the command blocked in pf_exec_plan_run go
 * on, and wait (timeout_ms, -1: for ever) for the byte it writes then.
 * Refuses anything but a FIFO and a symlink. */
int pf_exec_start_fifo(const char *path, int timeout_ms, struct pf_error *err);
