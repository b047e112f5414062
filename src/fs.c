#define _GNU_SOURCE
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

#define MAX_SYMLINKS 40 /* as the kernel's path walk */

void pf_fs_fd_path(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

int pf_fs_open_root(const char *root, struct pf_error *err)
{
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s", root);
	return fd;
}

static bool same_inode(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* The fallback for kernels without openat2: walk one component at a time
 * with O_NOFOLLOW, expanding symlinks ourselves, so that an absolute target
 * restarts at root_fd and ".." never climbs above it. Not immune to a tree
 * being renamed under us while we walk, which openat2 is. */
int pf_fs_walk_in_root(int root_fd, const char *path)
{
	char rest[PATH_MAX * 2];
	if (snprintf(rest, sizeof(rest), "%s", path) >= (int)sizeof(rest)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	_cleanup_close_ int cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -1;
	int links = 0;
	char *p = rest;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *end = strchrnul(p, '/');
		char name[NAME_MAX + 1];
		size_t len = (size_t)(end - p);
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p = end;

		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			if (same_inode(cur, root_fd))
				continue;
			int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (up < 0)
				return -1;
			close(cur);
			cur = up;
			continue;
		}
		int next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return -1;
		struct stat st;
		if (fstat(next, &st) < 0) {
			close(next);
			return -1;
		}
		if (!S_ISLNK(st.st_mode)) {
			close(cur);
			cur = next;
			continue;
		}
		char target[PATH_MAX];
		ssize_t n = readlinkat(next, "", target, sizeof(target) - 1);
		close(next);
		if (n < 0)
			return -1;
		target[n] = '\0';
		if (++links > MAX_SYMLINKS) {
			errno = ELOOP;
			return -1;
		}
		/* Splice the link's target in front of what is left. */
		char spliced[PATH_MAX * 2];
		if (snprintf(spliced, sizeof(spliced), "%s/%s", target, p) >= (int)sizeof(spliced)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(rest, spliced);
		p = rest;
		if (target[0] == '/') {
			int top = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (top < 0)
				return -1;
			close(cur);
			cur = top;
		}
	}
	return take_fd(cur);
}

static int open_beneath(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = pf_fs_walk_in_root(root_fd, path);
	return fd;
}

int pf_fs_open_in_root(int root_fd, const char *path, struct pf_error *err)
{
	int fd = open_beneath(root_fd, path);
	if (fd < 0)
		return pf_error_errno(err, errno, "%s", path);
	return fd;
}

/* Split path into its parent ("/" at least) and last component. */
static int split_last(const char *path, char *parent, size_t size, const char **ret_last)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(parent, path, len);
	parent[len] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash) {
		*ret_last = path; /* relative: its parent is the root */
		strcpy(parent, "/");
	} else {
		*ret_last = path + (slash - parent) + 1;
		if (slash == parent)
			parent[1] = '\0';
		else
			*slash = '\0';
	}
	/* ret_last points into path, which may still end with slashes. */
	return 0;
}

static int check_kind(int fd, enum pf_fs_kind kind, const char *path, struct pf_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return pf_error_errno(err, errno, "%s", path);
	if (kind == PF_FS_DIRECTORY && !S_ISDIR(st.st_mode))
		return pf_error_errno(err, ENOTDIR, "%s", path);
	if (kind == PF_FS_FILE && S_ISDIR(st.st_mode))
		return pf_error_errno(err, EISDIR, "%s", path);
	return 0;
}

int pf_fs_create_in_root(int root_fd, const char *path, enum pf_fs_kind kind,
			 struct pf_error *err)
{
	_cleanup_close_ int fd = open_beneath(root_fd, path);
	if (fd >= 0) {
		if (check_kind(fd, kind, path, err) < 0)
			return -1;
		return take_fd(fd);
	}
	if (errno != ENOENT)
		return pf_error_errno(err, errno, "%s", path);

	char parent[PATH_MAX];
	const char *last;
	if (split_last(path, parent, sizeof(parent), &last) < 0)
		return pf_error_errno(err, ENAMETOOLONG, "%s", path);
	char name[NAME_MAX + 1];
	size_t name_len = strcspn(last, "/");
	if (name_len == 0 || name_len > NAME_MAX)
		return pf_error_errno(err, EINVAL, "%s", path);
	memcpy(name, last, name_len);
	name[name_len] = '\0';
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return pf_error_errno(err, EINVAL, "%s", path);

	_cleanup_close_ int parent_fd = pf_fs_create_in_root(root_fd, parent, PF_FS_DIRECTORY, err);
	if (parent_fd < 0)
		return -1;
	/* An O_PATH fd cannot be a directory fd for mkdirat: reopen it. */
	_cleanup_close_ int dir_fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return pf_error_errno(err, errno, "%s", parent);
	int r;
	if (kind == PF_FS_DIRECTORY) {
		r = mkdirat(dir_fd, name, 0755);
	} else {
		r = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (r >= 0)
			close(r);
	}
	/* EEXIST: a dangling symlink is there (mkdir never follows one); the
	 * open below refuses it. */
	if (r < 0 && errno != EEXIST)
		return pf_error_errno(err, errno, "create %s", path);
	int created = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (created < 0)
		return pf_error_errno(err, errno, "%s", path);
	if (check_kind(created, kind, path, err) < 0) {
		close(created);
		return -1;
	}
	return created;
}

static int open_parent_dir(int root_fd, const char *path, const char **ret_name,
			   struct pf_error *err)
{
	char parent[PATH_MAX];
	if (split_last(path, parent, sizeof(parent), ret_name) < 0)
		return pf_error_errno(err, ENAMETOOLONG, "%s", path);
	_cleanup_close_ int parent_fd = pf_fs_open_in_root(root_fd, parent, err);
	if (parent_fd < 0)
		return -1;
	int dir_fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return pf_error_errno(err, errno, "%s", parent);
	return dir_fd;
}

int pf_fs_mknod_in_root(int root_fd, const char *path, mode_t mode, dev_t dev,
			struct pf_error *err)
{
	const char *name;
	_cleanup_close_ int dir_fd = open_parent_dir(root_fd, path, &name, err);
	if (dir_fd < 0)
		return -1;
	if (mknodat(dir_fd, name, mode, dev) < 0)
		return pf_error_errno(err, errno, "mknod %s", path);
	/* The mode asked for, not the one the umask leaves. */
	if (fchmodat(dir_fd, name, mode & 07777, 0) < 0)
		return pf_error_errno(err, errno, "chmod %s", path);
	return 0;
}

int pf_fs_symlink_in_root(int root_fd, const char *target, const char *path,
			  struct pf_error *err)
{
	const char *name;
	_cleanup_close_ int dir_fd = open_parent_dir(root_fd, path, &name, err);
	if (dir_fd < 0)
		return -1;
	if (symlinkat(target, dir_fd, name) < 0)
		return pf_error_errno(err, errno, "symlink %s", path);
	return 0;
}

char *pf_fs_read_in_root(const char *root, const char *path, size_t max,
			 size_t *ret_len, struct pf_error *err)
{
	_cleanup_close_ int root_fd = pf_fs_open_root(root, err);
	if (root_fd < 0)
		return NULL;
	_cleanup_close_ int path_fd = open_beneath(root_fd, path);
	if (path_fd < 0) {
		pf_error_errno(err, errno, "open %s in %s", path, root);
		return NULL;
	}
	char fd_path[32];
	pf_fs_fd_path(path_fd, fd_path);
	/* O_NONBLOCK: a FIFO planted in a hostile tree must not hang us. */
	_cleanup_close_ int fd = open(fd_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		pf_error_errno(err, errno, "open %s in %s", path, root);
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		pf_error_set(err, EINVAL, "%s in %s is not a regular file", path, root);
		return NULL;
	}
	_cleanup_free_ char *buf = malloc(max + 1);
	if (!buf) {
		pf_error_errno(err, ENOMEM, "read %s", path);
		return NULL;
	}
	size_t len = 0;
	while (len < max) {
		ssize_t n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pf_error_errno(err, errno, "read %s in %s", path, root);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_len = len;
	return take_ptr(buf);
}

int pf_fs_write_in_root(int root_fd, const char *path, const char *data, size_t len,
			struct pf_error *err)
{
	_cleanup_close_ int path_fd = pf_fs_create_in_root(root_fd, path, PF_FS_FILE, err);
	if (path_fd < 0)
		return -1;
	char fd_path[32];
	pf_fs_fd_path(path_fd, fd_path);
	_cleanup_close_ int fd = open(fd_path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s", path);
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pf_error_errno(err, errno, "write %s", path);
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Empty the directory dir_fd (dev: its filesystem), then nothing else: the
 * caller removes the directory itself. */
static int empty_dir(int dir_fd, dev_t dev, const char *path, struct pf_error *err)
{
	int dup_fd = dup(dir_fd);
	if (dup_fd < 0)
		return pf_error_errno(err, errno, "remove %s", path);
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return pf_error_errno(err, errno, "remove %s", path);
	}
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				r = pf_error_errno(err, EBUSY, "remove %s/%s", path, e->d_name);
				continue;
			}
			int sub = openat(dir_fd, e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			/* overlayfs leaves its work/work with mode 000: an owner
			 * may still open it once it gives itself the right. */
			if (sub < 0 && errno == EACCES && fchmodat(dir_fd, e->d_name, 0700, 0) == 0)
				sub = openat(dir_fd, e->d_name,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || empty_dir(sub, dev, path, err) < 0)
				r = -1;
			if (sub >= 0)
				close(sub);
			if (unlinkat(dir_fd, e->d_name, AT_REMOVEDIR) < 0)
				r = pf_error_errno(err, errno, "remove %s/%s", path, e->d_name);
		} else if (unlinkat(dir_fd, e->d_name, 0) < 0) {
			r = pf_error_errno(err, errno, "remove %s/%s", path, e->d_name);
		}
	}
	closedir(d);
	return r;
}

int pf_fs_remove_tree(const char *path, struct pf_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ENOTDIR || errno == ELOOP)
			return unlink(path) < 0 ? pf_error_errno(err, errno, "remove %s", path) : 0;
		return pf_error_errno(err, errno, "remove %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return pf_error_errno(err, errno, "remove %s", path);
	if (empty_dir(fd, st.st_dev, path, err) < 0)
		return -1;
	if (rmdir(path) < 0)
		return pf_error_errno(err, errno, "remove %s", path);
	return 0;
}
