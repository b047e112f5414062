#define _GNU_SOURCE
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
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

/* path inside root_fd, opened with flags (O_PATH, or O_RDONLY|O_DIRECTORY
 * for a directory to create things in: O_DIRECTORY refuses anything else
 * before opening it, so a device is never opened). */
static int open_beneath_flags(int root_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	/* With RESOLVE_IN_ROOT, a ".." in the path makes openat2 fail with
	 * EAGAIN whenever any rename or mount happened anywhere on the host
	 * meanwhile (openat2(2)): on a busy host that is not rare (seen
	 * under `ctest -j4`). The answer is to try again; a bounded number of
	 * times, so that a host mounting without pause gets the error. */
	int fd = -1;
	for (int tries = 0; tries < 128; tries++) {
		fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd < 0 && errno == ENOSYS) {
		fd = pf_fs_walk_in_root(root_fd, path);
		if (fd >= 0 && !(flags & O_PATH)) {
			int opened = openat(fd, ".", flags | O_CLOEXEC);
			int e = errno;
			close(fd);
			errno = e;
			fd = opened;
		}
	}
	return fd;
}

static int open_beneath(int root_fd, const char *path)
{
	return open_beneath_flags(root_fd, path, O_PATH);
}

/* A directory inside root_fd, opened to create things in. */
static int open_dir_beneath(int root_fd, const char *path)
{
	return open_beneath_flags(root_fd, path, O_RDONLY | O_DIRECTORY);
}

int pf_fs_open_in_root(int root_fd, const char *path, struct pf_error *err)
{
	int fd = open_beneath(root_fd, path);
	if (fd < 0)
		return pf_error_errno(err, errno, "%s", path);
	return fd;
}

int pf_fs_open_dir_in_root(int root_fd, const char *path, struct pf_error *err)
{
	int fd = open_dir_beneath(root_fd, path);
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

/* The directory path inside root_fd, created with its missing parents,
 * opened to create things in. */
static int create_dir_in_root(int root_fd, const char *path, struct pf_error *err)
{
	int fd = open_dir_beneath(root_fd, path);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return pf_error_errno(err, errno, "%s", path);
	_cleanup_close_ int created = pf_fs_create_in_root(root_fd, path, PF_FS_DIRECTORY, err);
	if (created < 0)
		return -1;
	fd = openat(created, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "%s", path);
	return fd;
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

	/* Opened as a directory straight away (no O_PATH fd to reopen): an
	 * O_PATH fd cannot be a directory fd for mkdirat. */
	_cleanup_close_ int dir_fd = create_dir_in_root(root_fd, parent, err);
	if (dir_fd < 0)
		return -1;
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
	int dir_fd = open_dir_beneath(root_fd, parent);
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

int pf_fs_chmod_in_root(int root_fd, const char *path, mode_t mode, struct pf_error *err)
{
	_cleanup_close_ int fd = open_beneath(root_fd, path);
	if (fd < 0)
		return pf_error_errno(err, errno, "%s", path);
	/* fchmod refuses an O_PATH fd; its magic link names the same inode. */
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	if (chmod(fd_path, mode & 07777) < 0)
		return pf_error_errno(err, errno, "chmod %s", path);
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
	/* Look before opening for real: opening a device node, even with
	 * O_NONBLOCK, can have effects of its own (a tape rewinds, a modem
	 * hangs up); an O_PATH fd opens nothing. */
	struct stat st;
	if (fstat(path_fd, &st) < 0) {
		pf_error_errno(err, errno, "stat %s in %s", path, root);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		pf_error_set(err, EINVAL, "%s in %s is not a regular file", path, root);
		return NULL;
	}
	char fd_path[32];
	pf_fs_fd_path(path_fd, fd_path);
	/* The same inode, through the magic link: O_NONBLOCK and O_NOCTTY
	 * all the same, should it have been swapped for something else. */
	_cleanup_close_ int fd = open(fd_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		pf_error_errno(err, errno, "open %s in %s", path, root);
		return NULL;
	}
	struct stat ost;
	if (fstat(fd, &ost) < 0 || !S_ISREG(ost.st_mode) || ost.st_ino != st.st_ino ||
	    ost.st_dev != st.st_dev) {
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

/* What identifies a directory while we walk: a rename cannot give another
 * directory the same pair, so ".." is checked against it on the way up. */
struct dir_id {
	dev_t dev;
	ino_t ino;
};

/* One level of the walk down: the directory's name in its parent, its
 * identity, and where to resume reading the parent afterwards. */
struct level {
	char name[NAME_MAX + 1];
	struct dir_id id;
	long resume;
};

struct walk {
	struct level *levels;
	size_t depth, cap;
	struct dir_id *failed; /* directories we could not empty: not again */
	size_t nfailed, failed_cap;
	int mnt_id_ok;
	uint64_t mnt_id; /* the top's mount, when statx tells it */
};

static int mount_id_of(int fd, uint64_t *ret)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return -1;
	*ret = stx.stx_mnt_id;
	return 0;
}

static bool has_failed(const struct walk *w, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < w->nfailed; i++)
		if (w->failed[i].dev == dev && w->failed[i].ino == ino)
			return true;
	return false;
}

static int mark_failed(struct walk *w, dev_t dev, ino_t ino)
{
	if (w->nfailed == w->failed_cap) {
		size_t cap = w->failed_cap ? w->failed_cap * 2 : 16;
		struct dir_id *f = realloc(w->failed, cap * sizeof(*f));
		if (!f)
			return -1;
		w->failed = f;
		w->failed_cap = cap;
	}
	w->failed[w->nfailed++] = (struct dir_id){ dev, ino };
	return 0;
}

static struct level *push_level(struct walk *w)
{
	if (w->depth == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct level *l = realloc(w->levels, cap * sizeof(*l));
		if (!l)
			return NULL;
		w->levels = l;
		w->cap = cap;
	}
	return &w->levels[w->depth++];
}

/* Open the subdirectory name of dir_fd for reading, never through a
 * symlink and never onto another mount. overlayfs leaves its work/work
 * with mode 000: the owner may still give itself the right, on the inode
 * an O_PATH fd holds (chmod by name could follow a symlink swapped in). */
static int open_subdir(int dir_fd, const char *name, const struct stat *expect,
		       const struct walk *w)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		_cleanup_close_ int p = openat(dir_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (p < 0 || fstat(p, &st) < 0)
			return -1;
		if (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino) {
			errno = ESTALE;
			return -1;
		}
		char fd_path[32];
		pf_fs_fd_path(p, fd_path);
		if (chmod(fd_path, 0700) < 0)
			return -1;
		fd = openat(p, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	/* The directory we looked at, on the top's own mount (a bind mount
	 * of the same filesystem has the same st_dev). */
	struct stat st;
	uint64_t mnt;
	if (fstat(fd, &st) < 0 || st.st_dev != expect->st_dev || st.st_ino != expect->st_ino ||
	    (w->mnt_id_ok && (mount_id_of(fd, &mnt) < 0 || mnt != w->mnt_id))) {
		close(fd);
		errno = EXDEV;
		return -1;
	}
	return fd;
}

int pf_fs_remove_tree(const char *path, struct pf_error *err)
{
	int cur = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cur < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ENOTDIR || errno == ELOOP)
			return unlink(path) < 0 ? pf_error_errno(err, errno, "remove %s", path) : 0;
		return pf_error_errno(err, errno, "remove %s", path);
	}
	struct stat top;
	if (fstat(cur, &top) < 0) {
		int e = errno;
		close(cur);
		return pf_error_errno(err, e, "remove %s", path);
	}
	struct walk w = { 0 };
	w.mnt_id_ok = mount_id_of(cur, &w.mnt_id) == 0;

	/* Depth first, without recursion and with a fixed number of fds
	 * (the tree may be as deep as its creator liked): go down into one
	 * subdirectory at a time, come back up through "..", checked against
	 * the identity noted on the way down, and remove the emptied
	 * directory from its parent. */
	int r = 0;
	long resume = 0;
	bool full_pass = true; /* this pass started at the beginning */
	for (;;) {
		int dup_fd = fcntl(cur, F_DUPFD_CLOEXEC, 0);
		DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
		if (!d) {
			if (dup_fd >= 0)
				close(dup_fd);
			r = pf_error_errno(err, errno, "remove %s", path);
			break;
		}
		if (resume)
			seekdir(d, resume);
		bool descended = false, abort_walk = false;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			struct stat st;
			if (fstatat(cur, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (!S_ISDIR(st.st_mode)) {
				if (unlinkat(cur, e->d_name, 0) < 0)
					r = pf_error_errno(err, errno, "remove %s: %s", path, e->d_name);
				continue;
			}
			if (has_failed(&w, st.st_dev, st.st_ino))
				continue;
			if (st.st_dev != top.st_dev) {
				r = pf_error_errno(err, EBUSY, "remove %s: %s is another filesystem", path,
						   e->d_name);
				if (mark_failed(&w, st.st_dev, st.st_ino) < 0) {
					abort_walk = true;
					break;
				}
				continue;
			}
			int sub = open_subdir(cur, e->d_name, &st, &w);
			if (sub < 0) {
				r = pf_error_errno(err, errno, "remove %s: %s", path, e->d_name);
				if (mark_failed(&w, st.st_dev, st.st_ino) < 0) {
					abort_walk = true;
					break;
				}
				continue;
			}
			struct level *l = push_level(&w);
			if (!l) {
				close(sub);
				abort_walk = true;
				break;
			}
			snprintf(l->name, sizeof(l->name), "%s", e->d_name);
			l->id = (struct dir_id){ st.st_dev, st.st_ino };
			l->resume = telldir(d);
			close(cur);
			cur = sub;
			descended = true;
			break;
		}
		closedir(d);
		if (abort_walk) {
			/* Out of memory for the bookkeeping that makes the walk
			 * end: stop rather than loop. */
			r = pf_error_errno(err, ENOMEM, "remove %s", path);
			break;
		}
		if (descended) {
			resume = 0;
			full_pass = true;
			continue;
		}
		if (!full_pass) {
			/* Resumed mid-directory: one more pass from the start,
			 * in case the resumed position skipped an entry. */
			resume = 0;
			full_pass = true;
			continue;
		}
		if (w.depth == 0)
			break;
		/* Up: ".." must be the directory we came down from. */
		struct level *l = &w.levels[--w.depth];
		struct dir_id parent_id = w.depth ? w.levels[w.depth - 1].id
						  : (struct dir_id){ top.st_dev, top.st_ino };
		int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat ust;
		if (up < 0 || fstat(up, &ust) < 0 || ust.st_dev != parent_id.dev ||
		    ust.st_ino != parent_id.ino) {
			if (up >= 0)
				close(up);
			r = pf_error_errno(err, ESTALE, "remove %s: the tree moved while it was removed",
					   path);
			break;
		}
		close(cur);
		cur = up;
		if (unlinkat(cur, l->name, AT_REMOVEDIR) < 0) {
			r = pf_error_errno(err, errno, "remove %s: %s", path, l->name);
			if (mark_failed(&w, l->id.dev, l->id.ino) < 0) {
				r = pf_error_errno(err, ENOMEM, "remove %s", path);
				break;
			}
		}
		resume = l->resume;
		full_pass = resume == 0;
	}
	close(cur);
	free(w.levels);
	free(w.failed);
	if (r < 0)
		return -1;
	if (rmdir(path) < 0)
		return pf_error_errno(err, errno, "remove %s", path);
	return 0;
}
