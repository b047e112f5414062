#define _GNU_SOURCE
#include "affinity.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

int pf_affinity_set(pid_t pid, const int *cpus, size_t n, struct pf_error *err)
{
	/* Sized for any CPU number the caller checked against the host's. */
	int max = 0;
	for (size_t i = 0; i < n; i++) {
		if (cpus[i] < 0 || cpus[i] >= 65536)
			return pf_error_set(err, EINVAL, "--cpuset: CPU %d is out of range", cpus[i]);
		if (cpus[i] > max)
			max = cpus[i];
	}
	size_t size = CPU_ALLOC_SIZE(max + 1);
	cpu_set_t *set = CPU_ALLOC(max + 1);
	if (!set)
		return pf_error_errno(err, ENOMEM, "--cpuset");
	CPU_ZERO_S(size, set);
	for (size_t i = 0; i < n; i++)
		CPU_SET_S(cpus[i], size, set);
	int r = sched_setaffinity(pid, size, set);
	int e = errno;
	CPU_FREE(set);
	if (r < 0)
		return pf_error_errno(err, e, "--cpuset: sched_setaffinity");
	return 0;
}
