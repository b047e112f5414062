#define _GNU_SOURCE
#include "ns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "state.h"

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

int pf_ns_open_path(const char *path, unsigned long flag, struct pf_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s", path);
	int type = ioctl(fd, NS_GET_NSTYPE);
	if (type < 0) {
		int errnum = errno;
		close(fd);
		return pf_error_errno(err, errnum == ENOTTY ? EINVAL : errnum,
				      "%s is not a namespace", path);
	}
	if ((unsigned long)type != flag) {
		close(fd);
		const struct pf_namespace *ns = pf_ns_by_flag(flag);
		return pf_error_set(err, EINVAL, "%s is not a %s namespace", path, ns ? ns->name : "?");
	}
	return fd;
}

const struct pf_namespace *pf_ns_by_flag(unsigned long flag)
{
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++)
		if (ns->flag == flag)
			return ns;
	return NULL;
}

/* Is /proc/PID/ns/X (opened as fd) the namespace we are in already? */
static int same_as_ours(int fd, const struct pf_namespace *ns, bool *ret_same, struct pf_error *err)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/ns/%s", ns->proc_name);
	struct stat a, b;
	if (fstat(fd, &a) < 0)
		return pf_error_errno(err, errno, "stat the %s namespace", ns->name);
	if (stat(self, &b) < 0)
		return pf_error_errno(err, errno, "stat %s", self);
	*ret_same = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	return 0;
}

int pf_ns_join(pid_t pid, unsigned long long start, unsigned long flags, unsigned long *ret_joined,
	       struct pf_error *err)
{
	/* Everything is opened first, while /proc/PID still names pid: once
	 * in its pid or mount namespace, our /proc may not show it. */
	int fds[16];
	size_t n = 0;
	int ret = -1;
	unsigned long joined = 0;
	_cleanup_close_ int root = -1;
	/* A pidfd pins the process: if it has not exited once everything is
	 * open, /proc/PID named it all along (a pid is reused only once its
	 * process is gone). With start, the process is also the one that
	 * started then, not a later one with a reused pid. */
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return pf_error_errno(err, errno, "no process %d", (int)pid);
	if (start) {
		unsigned long long now;
		if (pf_state_start_time(pid, &now, err) < 0)
			return -1;
		if (now != start)
			return pf_error_set(err, ESRCH, "process %d is not the container any more", (int)pid);
	}
	for (const struct pf_namespace *ns = pf_namespaces; ns->name && n < 16; ns++) {
		if (!(flags & ns->flag))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns->proc_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			/* A kernel without that namespace kind: nothing to join. */
			if (errno == ENOENT && kill(pid, 0) == 0)
				continue;
			pf_error_errno(err, errno == ENOENT ? ESRCH : errno, "open %s", path);
			goto out;
		}
		bool same = false;
		if (same_as_ours(fd, ns, &same, err) < 0) {
			close(fd);
			goto out;
		}
		/* Shared with us: joining it again fails for a user
		 * namespace (EINVAL) and changes nothing for the others. */
		if (same) {
			close(fd);
			continue;
		}
		fds[n++] = fd;
		joined |= ns->flag;
	}
	if (joined & CLONE_NEWNS) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
		root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root < 0) {
			pf_error_errno(err, errno, "open %s", path);
			goto out;
		}
	}
	{
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		if (poll(&p, 1, 0) != 0) {
			pf_error_set(err, ESRCH, "process %d ended", (int)pid);
			goto out;
		}
	}
	/* pf_namespaces lists user first: its capabilities allow the rest.
	 * The mount namespace goes last: after it, paths are the container's. */
	size_t i = 0;
	int mnt_fd = -1;
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++) {
		if (!(joined & ns->flag))
			continue;
		int fd = fds[i++];
		if (ns->flag == CLONE_NEWNS) {
			mnt_fd = fd;
			continue;
		}
		if (setns(fd, (int)ns->flag) < 0) {
			pf_error_errno(err, errno, "join the %s namespace of %d", ns->name, (int)pid);
			goto out;
		}
	}
	if (mnt_fd >= 0) {
		if (setns(mnt_fd, CLONE_NEWNS) < 0) {
			pf_error_errno(err, errno, "join the mount namespace of %d", (int)pid);
			goto out;
		}
		/* setns leaves us at the namespace's root mount; the process's
		 * root may be below it (a chroot): take its own. */
		if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0) {
			pf_error_errno(err, errno, "enter the root of %d", (int)pid);
			goto out;
		}
	}
	if (ret_joined)
		*ret_joined = joined;
	ret = 0;
out:
	for (size_t k = 0; k < n; k++)
		close(fds[k]);
	return ret;
}
