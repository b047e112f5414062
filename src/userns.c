#define _GNU_SOURCE
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "process.h"

static int write_proc_file(pid_t pid, const char *name, const char *data,
			   size_t len, struct pf_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s", path);
	/* The kernel takes a map in one write(2) or not at all. */
	ssize_t n = write(fd, data, len);
	if (n < 0)
		return pf_error_errno(err, errno, "write %s", path);
	if ((size_t)n != len)
		return pf_error_set(err, EIO, "write %s: short write", path);
	return 0;
}

int pf_userns_write_map(pid_t pid, enum pf_id_kind kind,
			const struct pf_id_range *ranges, size_t n,
			struct pf_error *err)
{
	const char *name = kind == PF_UID ? "uid_map" : "gid_map";
	char buf[4096];
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + used, sizeof(buf) - used, "%u %u %u\n",
				 ranges[i].inside, ranges[i].outside, ranges[i].count);
		if (w < 0 || (size_t)w >= sizeof(buf) - used)
			return pf_error_set(err, E2BIG, "%s: too many ranges", name);
		used += (size_t)w;
	}
	return write_proc_file(pid, name, buf, used, err);
}

int pf_userns_deny_setgroups(pid_t pid, struct pf_error *err)
{
	return write_proc_file(pid, "setgroups", "deny", 4, err);
}

int pf_user_switch(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		   struct pf_error *err)
{
	if (setgroups(ngroups, groups) < 0 && !(errno == EPERM && ngroups == 0))
		return pf_error_errno(err, errno, "set supplementary groups");
	if (setresgid(gid, gid, gid) < 0)
		return pf_error_errno(err, errno, "set gid %u", (unsigned)gid);
	if (setresuid(uid, uid, uid) < 0)
		return pf_error_errno(err, errno, "set uid %u", (unsigned)uid);
	return pf_process_rearm_parent_death(err);
}
