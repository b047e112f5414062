#define _GNU_SOURCE
#include "ns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

const struct pf_namespace pf_namespaces[] = {
	{ "user", "user", CLONE_NEWUSER },
	{ "mount", "mnt", CLONE_NEWNS },
	{ "pid", "pid", CLONE_NEWPID },
	{ "ipc", "ipc", CLONE_NEWIPC },
	{ "uts", "uts", CLONE_NEWUTS },
	{ "net", "net", CLONE_NEWNET },
	{ "cgroup", "cgroup", CLONE_NEWCGROUP },
	{ "time", "time", CLONE_NEWTIME },
	{ NULL, NULL, 0 },
};

const struct pf_namespace *pf_ns_by_name(const char *name)
{
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++)
		if (strcmp(ns->name, name) == 0)
			return ns;
	return NULL;
}

static const char *describe_flags(unsigned long flags, char *buf, size_t size)
{
	buf[0] = '\0';
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++) {
		if (!(flags & ns->flag))
			continue;
		size_t used = strlen(buf);
		snprintf(buf + used, size - used, "%s%s", used ? "," : "", ns->name);
	}
	return buf;
}

pid_t pf_ns_clone(unsigned long flags, int cgroup_fd, bool *placed, struct pf_error *err)
{
	fflush(NULL);

	/* clone3 is the only way to ask for a time namespace at clone time
	 * (CLONE_NEWTIME collides with the exit signal bits of clone(2)). */
	struct clone_args args = {
		.flags = flags,
		.exit_signal = SIGCHLD,
	};
	*placed = false;
	pid_t pid = -1;
	if (cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0) {
			*placed = true;
			return pid;
		}
		/* Unknown flag or short struct (before 5.7): without it. */
		if (errno != EINVAL && errno != E2BIG && errno != ENOSYS)
			return pf_error_errno(err, errno, "clone into cgroup");
		args.flags = flags;
		args.cgroup = 0;
	}
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0 && errno == ENOSYS && !(flags & CLONE_NEWTIME))
		pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		char names[128];
		return pf_error_errno(err, errno, "clone into namespaces (%s)",
				      describe_flags(flags, names, sizeof(names)));
	}
	return pid;
}

int pf_ns_join(pid_t pid, unsigned long flags, struct pf_error *err)
{
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++) {
		if (!(flags & ns->flag))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns->proc_name);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return pf_error_errno(err, errno, "open %s", path);
		if (setns(fd, (int)ns->flag) < 0)
			return pf_error_errno(err, errno, "join %s namespace of %d",
					      ns->name, (int)pid);
	}
	return 0;
}
