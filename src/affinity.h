/* CPU affinity (sched_setaffinity), for --cpuset where the host gives
 * pflask no cpuset cgroup: set in the container's pid 1 before anything
 * else runs there, inherited by every process it starts. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Pin pid (0: the caller) to the n CPUs in cpus. EINVAL for a CPU
 * number out of range (the kernel's own EINVAL: none of them online). */
int pf_affinity_set(pid_t pid, const int *cpus, size_t n, struct pf_error *err);
