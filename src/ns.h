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

/* Join the namespaces in flags of process pid (user first). Returns 0 or -1. */
int pf_ns_join(pid_t pid, unsigned long flags, struct pf_error *err);
