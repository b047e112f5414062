/* Namespaces: names, clone into a set of them, join those of a process. */
#pragma once

#include <stdbool.h>

#include <sys/types.h>

#include "error.h"

struct pf_namespace {
	const char *name;      /* as users spell it: "mount", "net", ... */
	const char *proc_name; /* entry in /proc/PID/ns */
	unsigned long flag;    /* CLONE_NEW* */
};

/* All namespaces Linux has, user first (it must be joined first). The array
 * ends with a zeroed entry. */
extern const struct pf_namespace pf_namespaces[];

/* The namespace called name ("mount", "pid", ...), or NULL. */
const struct pf_namespace *pf_ns_by_name(const char *name);

/* Fork into new namespaces, like fork(2): returns the child's pid in the
 * parent and 0 in the child, -1 on failure (err set). No CLONE_VM: the child
 * has its own copy of memory, so it may keep running arbitrary code. Stdio
 * buffers are flushed first so the child does not write them again.
 * Parent side; the caller must not have other threads.
 * cgroup_fd >= 0, a v2 cgroup directory: the child starts in that cgroup
 * (CLONE_INTO_CGROUP), which spares moving it later, a write that waits
 * for an RCU grace period (milliseconds on a busy host). *placed says
 * whether it did: kernels before 5.7 clone without it. */
pid_t pf_ns_clone(unsigned long flags, int cgroup_fd, bool *placed, struct pf_error *err);

/* The namespace whose CLONE_NEW* is flag, or NULL. */
const struct pf_namespace *pf_ns_by_flag(unsigned long flag);

/* Join those of the namespaces in flags that process pid has of its own
 * (a namespace it shares with the caller is skipped), and its root. Every
 * /proc/PID/ns entry is opened before the first setns; user goes first,
 * mount last, after which the caller's root and cwd are pid's root. On
 * failure the caller may be half-joined: call it in a child made for it
 * (c:exec forks one). *ret_joined, if not NULL, gets the flags joined.
 * start, if not 0, is pid's start time (pf_state_start_time): another
 * process that reuses the pid is refused (ESRCH), as is pid ending before
 * everything is open (a pidfd tells). 
 * The pid namespace applies to the caller's children only. */
int pf_ns_join(pid_t pid, unsigned long long start, unsigned long flags, unsigned long *ret_joined,
	       struct pf_error *err);

/* Open the namespace file path (/run/netns/NAME, /proc/PID/ns/net) and
 * check that it is a namespace of kind flag. Returns the fd
 * (O_CLOEXEC), or -1. */
int pf_ns_open_path(const char *path, unsigned long flag, struct pf_error *err);
