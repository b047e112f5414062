#define _GNU_SOURCE
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

int pf_cgroup_create(const char *path, struct pf_error *err)
{
	if (mkdir(path, 0755) < 0)
		return pf_error_errno(err, errno, "create cgroup %s", path);
	return 0;
}

int pf_cgroup_write(const char *path, const char *file, const char *value,
		    struct pf_error *err)
{
	char name[PATH_MAX];
	if (snprintf(name, sizeof(name), "%s/%s", path, file) >= (int)sizeof(name))
		return pf_error_set(err, ENAMETOOLONG, "%s/%s: path too long", path, file);
	_cleanup_close_ int fd = open(name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s", name);
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0)
		return pf_error_errno(err, errno, "write '%s' to %s", value, name);
	if ((size_t)n != len)
		return pf_error_set(err, EIO, "write '%s' to %s: short write", value, name);
	return 0;
}

int pf_cgroup_attach(const char *path, pid_t pid, struct pf_error *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	return pf_cgroup_write(path, "cgroup.procs", buf, err);
}

/* SIGKILL whatever lives in one cgroup directory (not below it). */
static void kill_members(const char *path)
{
	char name[PATH_MAX];
	snprintf(name, sizeof(name), "%s/cgroup.kill", path);
	_cleanup_close_ int kfd = open(name, O_WRONLY | O_CLOEXEC);
	if (kfd >= 0 && write(kfd, "1", 1) == 1)
		return;
	snprintf(name, sizeof(name), "%s/cgroup.procs", path);
	FILE *f = fopen(name, "re");
	if (!f)
		return;
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 1 && pid != getpid())
			kill(pid, SIGKILL);
	fclose(f);
}

static int remove_tree(const char *path, bool kill, struct pf_error *err)
{
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return pf_error_errno(err, errno, "open cgroup %s", path);
	}
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char sub[PATH_MAX];
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
			continue;
		if (remove_tree(sub, kill, err) < 0)
			r = -1;
	}
	closedir(d);
	if (r < 0)
		return r;

	/* Killed processes leave the cgroup only once fully gone. */
	for (int attempt = 0;; attempt++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || !kill || attempt >= 200)
			return pf_error_errno(err, errno, "remove cgroup %s", path);
		kill_members(path);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int pf_cgroup_remove(const char *path, bool kill, struct pf_error *err)
{
	return remove_tree(path, kill, err);
}
