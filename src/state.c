#define _GNU_SOURCE
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

/* A record's name is one component we made ourselves; refuse anything
 * that could climb out of the directory. */
static int check_name(const char *name, struct pf_error *err)
{
	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strlen(name) > 200)
		return pf_error_set(err, EINVAL, "'%s' is not a record name", name);
	return 0;
}

int pf_state_dir(uid_t owner, bool create, char *buf, size_t size, struct pf_error *err)
{
	char dir[64];
	struct stat st;
	if (owner == 0) {
		snprintf(dir, sizeof(dir), "/run/pflask");
	} else {
		snprintf(dir, sizeof(dir), "/run/user/%u", (unsigned)owner);
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == owner)
			snprintf(dir, sizeof(dir), "/run/user/%u/pflask", (unsigned)owner);
		else
			snprintf(dir, sizeof(dir), "/tmp/pflask-%u", (unsigned)owner);
	}
	if (create) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return pf_error_errno(err, errno, "create %s", dir);
		if (lstat(dir, &st) < 0)
			return pf_error_errno(err, errno, "stat %s", dir);
		if (!S_ISDIR(st.st_mode) || st.st_uid != owner || (st.st_mode & 077))
			return pf_error_set(err, EPERM, "%s: not a private directory of uid %u",
					    dir, (unsigned)owner);
	}
	if ((size_t)snprintf(buf, size, "%s", dir) >= size)
		return pf_error_set(err, ENAMETOOLONG, "runtime directory path too long");
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int pf_state_write(const char *dir, const char *name, const char *data, size_t len,
		   bool exclusive, struct pf_error *err)
{
	if (check_name(name, err) < 0)
		return -1;
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pf_error_errno(err, errno, "open %s", dir);
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	if (exclusive) {
		/* No rename: on a /run that is not a tmpfs, replacing a file
		 * by rename costs a flush; a new record is one small write. */
		_cleanup_close_ int fd = openat(dfd, name, flags, 0600);
		if (fd < 0)
			return pf_error_errno(err, errno, "create %s/%s", dir, name);
		if (write_all(fd, data, len) < 0) {
			int e = errno;
			unlinkat(dfd, name, 0);
			return pf_error_errno(err, e, "write %s/%s", dir, name);
		}
		return 0;
	}
	/* The temporary name starts with a dot: pf_state_list skips it. */
	char tmp[256];
	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid());
	unlinkat(dfd, tmp, 0); /* a leftover of an earlier process with our pid */
	_cleanup_close_ int fd = openat(dfd, tmp, flags, 0600);
	if (fd < 0)
		return pf_error_errno(err, errno, "create %s/%s", dir, tmp);
	if (write_all(fd, data, len) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
		int e = errno;
		unlinkat(dfd, tmp, 0);
		return pf_error_errno(err, e, "write %s/%s", dir, name);
	}
	return 0;
}

int pf_state_read(const char *dir, const char *name, char *buf, size_t size, size_t *ret_len,
		  struct pf_error *err)
{
	if (check_name(name, err) < 0)
		return -1;
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pf_error_errno(err, errno, "open %s", dir);
	/* O_NONBLOCK: a FIFO planted here must not hang us before fstat. */
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s/%s", dir, name);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return pf_error_errno(err, errno, "stat %s/%s", dir, name);
	if (!S_ISREG(st.st_mode))
		return pf_error_set(err, EINVAL, "%s/%s is not a regular file", dir, name);
	size_t len = 0;
	for (;;) {
		if (len + 1 >= size)
			return pf_error_set(err, EFBIG, "%s/%s is larger than a record", dir, name);
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pf_error_errno(err, errno, "read %s/%s", dir, name);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_len = len;
	return 0;
}

int pf_state_remove(const char *dir, const char *name, struct pf_error *err)
{
	if (check_name(name, err) < 0)
		return -1;
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		return pf_error_errno(err, errno, "open %s", dir);
	}
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return pf_error_errno(err, errno, "remove %s/%s", dir, name);
	return 0;
}

int pf_state_start_time(pid_t pid, unsigned long long *ret_ticks, struct pf_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno == ENOENT ? ESRCH : errno, "read %s", path);
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return pf_error_errno(err, n == 0 ? ESRCH : errno, "read %s", path);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields we count start after its last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return pf_error_set(err, EPROTO, "%s: no command field", path);
	p++;
	/* After ')': field 3 (state) ... field 22 (starttime) is the 20th. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return pf_error_set(err, EPROTO, "%s: too few fields", path);
	}
	char *end;
	errno = 0;
	unsigned long long ticks = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return pf_error_set(err, EPROTO, "%s: bad start time", path);
	*ret_ticks = ticks;
	return 0;
}

int pf_state_list(const char *dir, const char *suffix,
		  int (*each)(const char *name, void *ctx), void *ctx, struct pf_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return pf_error_errno(err, errno, "open %s", dir);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return pf_error_errno(err, e, "open %s", dir);
	}
	size_t suffix_len = strlen(suffix);
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= suffix_len ||
		    strcmp(de->d_name + len - suffix_len, suffix) != 0)
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if ((r = each(de->d_name, ctx)) != 0)
			break;
	}
	closedir(d);
	return r;
}
