#define _GNU_SOURCE
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "libmount_lazy.h"

int pf_mount_make_private(struct pf_error *err)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return pf_error_errno(err, errno, "make mounts private");
	return 0;
}

/* target inside root as an O_PATH fd. */
static int open_target(const char *root, const char *target, struct pf_error *err)
{
	_cleanup_close_ int root_fd = pf_fs_open_root(root, err);
	if (root_fd < 0)
		return -1;
	return pf_fs_open_in_root(root_fd, target, err);
}

/* The VFS flags of mount(8)'s options that pf_mount_options_fast knows,
 * as libmount's Linux map has them: set, or cleared (the inverse). */
static const struct {
	const char *name;
	unsigned long flag;
	bool clear;
} fast_flags[] = {
	{ "ro", MS_RDONLY, false },         { "rw", MS_RDONLY, true },
	{ "nosuid", MS_NOSUID, false },     { "suid", MS_NOSUID, true },
	{ "nodev", MS_NODEV, false },       { "dev", MS_NODEV, true },
	{ "noexec", MS_NOEXEC, false },     { "exec", MS_NOEXEC, true },
	{ "sync", MS_SYNCHRONOUS, false },  { "async", MS_SYNCHRONOUS, true },
	{ "noatime", MS_NOATIME, false },   { "atime", MS_NOATIME, true },
	{ "nodiratime", MS_NODIRATIME, false }, { "diratime", MS_NODIRATIME, true },
	{ "relatime", MS_RELATIME, false }, { "norelatime", MS_RELATIME, true },
	{ "strictatime", MS_STRICTATIME, false }, { "nostrictatime", MS_STRICTATIME, true },
};

/* Filesystem options (tmpfs, devpts) that libmount passes on as data
 * untouched: "name=value", or the bare name where the value is NULL. */
static const struct {
	const char *name;
	bool value;
} fast_data[] = {
	{ "mode", true },     { "size", true },      { "uid", true },       { "gid", true },
	{ "nr_inodes", true }, { "nr_blocks", true }, { "ptmxmode", true }, { "newinstance", false },
};

int pf_mount_options_fast(const char *options, unsigned long *ret_flags, char **ret_data)
{
	size_t len = strlen(options);
	if (len == 0 || len > 4096)
		return 0;
	char *data = malloc(len + 1);
	if (!data)
		return -1;
	size_t n = 0;
	unsigned long flags = 0;
	for (const char *p = options;;) {
		const char *end = strchrnul(p, ',');
		size_t tlen = (size_t)(end - p);
		const char *eq = memchr(p, '=', tlen);
		size_t nlen = eq ? (size_t)(eq - p) : tlen;
		bool known = false;
		for (size_t i = 0; !known && !eq && i < sizeof(fast_flags) / sizeof(fast_flags[0]); i++) {
			if (strlen(fast_flags[i].name) == tlen && memcmp(fast_flags[i].name, p, tlen) == 0) {
				flags = fast_flags[i].clear ? flags & ~fast_flags[i].flag : flags | fast_flags[i].flag;
				known = true;
			}
		}
		for (size_t i = 0; !known && i < sizeof(fast_data) / sizeof(fast_data[0]); i++) {
			if (strlen(fast_data[i].name) != nlen || memcmp(fast_data[i].name, p, nlen) != 0 ||
			    fast_data[i].value != (eq != NULL))
				continue;
			/* A value plain enough that nobody could read it
			 * otherwise: no quotes, no further "=". */
			for (const char *c = eq ? eq + 1 : end; c < end; c++)
				if (*c == '"' || *c == '\'' || *c == '=' || *c == '\\')
					goto unknown;
			if (eq && eq + 1 == end)
				goto unknown;
			if (n)
				data[n++] = ',';
			memcpy(data + n, p, tlen);
			n += tlen;
			known = true;
		}
		if (!known)
			goto unknown;
		if (!*end)
			break;
		p = end + 1;
	}
	data[n] = '\0';
	*ret_flags = flags;
	if (n == 0) {
		free(data);
		data = NULL;
	}
	*ret_data = data;
	return 1;
unknown:
	/* Empty options (",,"), another flag, another filesystem's option,
	 * a userspace one (x-..., nofail): libmount decides. */
	free(data);
	return 0;
}

int pf_mount_filesystem(const char *root, const char *target, const char *source,
			const char *fstype, const char *options, struct pf_error *err)
{
	unsigned long flags = 0;
	_cleanup_free_ char *data = NULL;
	/* pflask's own options (and most users') without libmount, whose
	 * loading costs more than the rest of a container's start. */
	int fast = options && *options ? pf_mount_options_fast(options, &flags, &data) : 0;
	if (fast < 0)
		return pf_error_errno(err, ENOMEM, "mount %s", target);
	if (!fast && options && *options) {
		const struct pf_libmount *mnt = pf_libmount(err);
		if (!mnt)
			return -1;
		if (mnt->optstr_get_flags(options, &flags, mnt->get_builtin_optmap(MNT_LINUX_MAP)) < 0)
			return pf_error_set(err, EINVAL, "mount %s: bad options '%s'", target, options);
		/* What libmount does not know as a VFS flag is the
		 * filesystem's own (size=, mode=, lowerdir=...). */
		if (mnt->split_optstr(options, NULL, NULL, &data, 1, 0) < 0)
			return pf_error_set(err, EINVAL, "mount %s: bad options '%s'", target, options);
	}
	_cleanup_close_ int fd = open_target(root, target, err);
	if (fd < 0)
		return -1;
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	if (mount(source, fd_path, fstype, flags, data) < 0)
		return pf_error_errno(err, errno, "mount %s on %s", fstype, target);
	return 0;
}

static int mount_setattr_syscall(int fd, const char *path, unsigned flags,
				 struct mount_attr *attr)
{
#ifdef SYS_mount_setattr
	return (int)syscall(SYS_mount_setattr, fd, path, flags, attr, sizeof(*attr));
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Remount one mount by path, read-only (or writable) plus the extra MS_
 * flags in set, keeping the flags the kernel locks in a user namespace
 * (nosuid, nodev, noexec...): leaving one out is EPERM. */
static int remount_bind_flags(const char *path, bool readonly, unsigned long set,
			      struct pf_error *err)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return pf_error_errno(err, errno, "make %s %s", path, readonly ? "read-only" : "writable");
	unsigned long flags = MS_REMOUNT | MS_BIND | (readonly ? MS_RDONLY : 0) | set;
	static const struct { unsigned long st, ms; } keep[] = {
		{ ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
		{ ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
		{ ST_RELATIME, MS_RELATIME },
	};
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (sv.f_flag & keep[i].st)
			flags |= keep[i].ms;
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return pf_error_errno(err, errno, "make %s %s", path, readonly ? "read-only" : "writable");
	return 0;
}

static int remount_bind(const char *path, bool readonly, struct pf_error *err)
{
	return remount_bind_flags(path, readonly, 0, err);
}

/* PF_MOUNT_* attributes as MS_ flags for a remount (read-only apart). */
static unsigned long ms_flags(unsigned attrs)
{
	return (attrs & PF_MOUNT_NOSUID ? MS_NOSUID : 0) | (attrs & PF_MOUNT_NODEV ? MS_NODEV : 0) |
	       (attrs & PF_MOUNT_NOEXEC ? MS_NOEXEC : 0);
}

static int remount_attrs(const char *path, unsigned attrs, struct pf_error *err)
{
	return remount_bind_flags(path, attrs & PF_MOUNT_RDONLY, ms_flags(attrs), err);
}

/* Without mount_setattr (Linux < 5.12): remount the top mount and every
 * mount below it, found in this namespace's mountinfo with libmount. */
static int attrs_by_walk(const char *top, unsigned attrs, struct pf_error *err)
{
	if (remount_attrs(top, attrs, err) < 0)
		return -1;
	const struct pf_libmount *mnt = pf_libmount(err);
	if (!mnt)
		return -1;
	struct libmnt_table *tb = mnt->new_table();
	if (!tb || mnt->table_parse_file(tb, "/proc/self/mountinfo") < 0) {
		mnt->unref_table(tb);
		return pf_error_set(err, EIO, "set mount flags on %s: cannot read mountinfo", top);
	}
	size_t len = strlen(top);
	struct libmnt_iter *it = mnt->new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	int r = 0;
	while (r == 0 && mnt->table_next_fs(tb, it, &fs) == 0) {
		const char *t = mnt->fs_get_target(fs);
		if (t && strncmp(t, top, len) == 0 && t[len] == '/')
			r = remount_attrs(t, attrs, err);
	}
	mnt->free_iter(it);
	mnt->unref_table(tb);
	return r;
}

/* Set attrs (PF_MOUNT_*) on the mount at fd (and, with recursive, its
 * submounts). fd must have been opened after the mount, so it refers to
 * its root. */
static int set_attrs(int fd, bool recursive, unsigned attrs, struct pf_error *err)
{
	struct mount_attr attr = { 0 };
	if (attrs & PF_MOUNT_RDONLY)
		attr.attr_set |= MOUNT_ATTR_RDONLY;
	if (attrs & PF_MOUNT_NOSUID)
		attr.attr_set |= MOUNT_ATTR_NOSUID;
	if (attrs & PF_MOUNT_NODEV)
		attr.attr_set |= MOUNT_ATTR_NODEV;
	if (attrs & PF_MOUNT_NOEXEC)
		attr.attr_set |= MOUNT_ATTR_NOEXEC;
	unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
	if (mount_setattr_syscall(fd, "", flags, &attr) == 0)
		return 0;
	if (errno != ENOSYS)
		return pf_error_errno(err, errno, "set mount flags");
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	/* The walk needs the mount's path as mountinfo shows it. */
	char real[4096];
	ssize_t n = readlink(fd_path, real, sizeof(real) - 1);
	if (n < 0)
		return pf_error_errno(err, errno, "set mount flags");
	real[n] = '\0';
	return recursive ? attrs_by_walk(real, attrs, err) : remount_attrs(real, attrs, err);
}

int pf_mount_bind_attrs(const char *root, const char *target, const char *source,
			bool recursive, unsigned attrs, struct pf_error *err)
{
	_cleanup_close_ int root_fd = pf_fs_open_root(root, err);
	if (root_fd < 0)
		return -1;
	_cleanup_close_ int fd = pf_fs_open_in_root(root_fd, target, err);
	if (fd < 0)
		return -1;
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	if (!source)
		source = fd_path; /* on itself, e.g. to make it read-only */
	if (mount(source, fd_path, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) < 0)
		return pf_error_errno(err, errno, "bind %s on %s", source, target);
	if (!attrs)
		return 0;
	/* Look the target up again: the new lookup crosses into the bind. */
	_cleanup_close_ int mounted = pf_fs_open_in_root(root_fd, target, err);
	if (mounted < 0)
		return -1;
	if (set_attrs(mounted, recursive, attrs, err) < 0)
		return pf_error_errno(err, err->code, "bind %s on %s%s%s%s%s", source, target,
				      attrs & PF_MOUNT_RDONLY ? " read-only" : "",
				      attrs & PF_MOUNT_NOSUID ? " nosuid" : "",
				      attrs & PF_MOUNT_NODEV ? " nodev" : "",
				      attrs & PF_MOUNT_NOEXEC ? " noexec" : "");
	return 0;
}

int pf_mount_bind(const char *root, const char *target, const char *source,
		  bool recursive, bool readonly, struct pf_error *err)
{
	return pf_mount_bind_attrs(root, target, source, recursive, readonly ? PF_MOUNT_RDONLY : 0, err);
}

int pf_mount_bind_in_root(const char *root, const char *target, const char *source,
			  bool recursive, bool readonly, struct pf_error *err)
{
	_cleanup_close_ int root_fd = pf_fs_open_root(root, err);
	if (root_fd < 0)
		return -1;
	/* The source as the container will see it: a symlink in the image
	 * cannot make it a host file. */
	_cleanup_close_ int source_fd = pf_fs_open_in_root(root_fd, source, err);
	if (source_fd < 0)
		return -1;
	char source_path[32];
	pf_fs_fd_path(source_fd, source_path);
	return pf_mount_bind(root, target, source_path, recursive, readonly, err);
}

int pf_mount_overlay(const char *root, const char *target, const char *upper,
		     const char *work, struct pf_error *err)
{
	_cleanup_close_ int fd = open_target(root, target, err);
	if (fd < 0)
		return -1;
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	/* The kernel resolves lowerdir itself; the magic link pins it to the
	 * directory we resolved inside root. */
	char data[PATH_MAX * 3 + 64];
	int n = snprintf(data, sizeof(data), "lowerdir=%s,upperdir=%s,workdir=%s", fd_path, upper, work);
	if (n < 0 || (size_t)n >= sizeof(data))
		return pf_error_errno(err, ENAMETOOLONG, "overlay on %s", target);
	if (mount("overlay", fd_path, "overlay", 0, data) < 0)
		return pf_error_errno(err, errno, "overlay on %s", target);
	return 0;
}

/* The overflow id (/proc/sys/kernel/overflowuid or overflowgid): what
 * stat shows for an id this user namespace does not map. */
static long overflow_id(const char *file)
{
	long id = 65534;
	FILE *f = fopen(file, "re");
	if (f) {
		if (fscanf(f, "%ld", &id) != 1)
			id = 65534;
		fclose(f);
	}
	return id;
}

/* The upper layer takes the root directory's mode and owner, which
 * overlayfs shows as those of "/". An owner this user namespace does not
 * map (stat shows the overflow id) is not copied: giving "/" to the
 * overflow id would hand it to whoever that id is inside (nobody); the
 * layer's creator, root inside, keeps it. */
static int copy_root_attributes(int layer_fd, const char *name, const struct stat *st,
				struct pf_error *err)
{
	if (fchmodat(layer_fd, name, st->st_mode & 07777, 0) < 0)
		return pf_error_errno(err, errno, "ephemeral root: chmod %s", name);
	uid_t uid = (long)st->st_uid == overflow_id("/proc/sys/kernel/overflowuid") ? (uid_t)-1 : st->st_uid;
	gid_t gid = (long)st->st_gid == overflow_id("/proc/sys/kernel/overflowgid") ? (gid_t)-1 : st->st_gid;
	if (fchownat(layer_fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return pf_error_errno(err, errno, "ephemeral root: chown %s", name);
	return 0;
}

int pf_mount_ephemeral(const char *root, const char *upper, const char *work,
		       struct pf_error *err)
{
	/* The root as it is now: the overlay's lower layer, still reachable
	 * through this fd once the tmpfs covers its path. */
	_cleanup_close_ int lower = pf_fs_open_root(root, err);
	if (lower < 0)
		return -1;
	struct stat st;
	if (fstat(lower, &st) < 0)
		return pf_error_errno(err, errno, "ephemeral root: stat %s", root);
	if (upper && work)
		return pf_mount_overlay(root, "/", upper, work, err);
	if (upper || work)
		return pf_error_set(err, EINVAL, "ephemeral root: upper and work go together");
	char lower_path[32];
	pf_fs_fd_path(lower, lower_path);

	/* A tmpfs of this mount namespace on the root's path itself: it, and
	 * every change the container makes, go away with the namespace,
	 * whatever becomes of pflask. Nothing is ever created on the host. */
	/* No nosuid or nodev: the layer holds the root's own files, which
	 * overlayfs opens through it (device nodes included), as on disk. */
	if (mount("tmpfs", lower_path, "tmpfs", 0, "mode=0700") < 0)
		return pf_error_errno(err, errno, "ephemeral root: mount tmpfs on %s", root);
	/* root's path now leads to the tmpfs; make sure it is ours. */
	_cleanup_close_ int layer = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (layer < 0)
		return pf_error_errno(err, errno, "ephemeral root: open %s", root);
	struct statfs sf;
	struct stat lst;
	if (fstatfs(layer, &sf) < 0 || fstat(layer, &lst) < 0)
		return pf_error_errno(err, errno, "ephemeral root: stat %s", root);
	if (sf.f_type != TMPFS_MAGIC || lst.st_dev == st.st_dev)
		return pf_error_set(err, EXDEV, "ephemeral root: %s is not the tmpfs just mounted", root);
	if (mkdirat(layer, "upper", 0700) < 0 || mkdirat(layer, "work", 0700) < 0)
		return pf_error_errno(err, errno, "ephemeral root: mkdir in tmpfs");
	if (copy_root_attributes(layer, "upper", &st, err) < 0)
		return -1;

	char layer_path[32];
	pf_fs_fd_path(layer, layer_path);
	char data[256];
	snprintf(data, sizeof(data), "lowerdir=%s,upperdir=%s/upper,workdir=%s/work",
		 lower_path, layer_path, layer_path);
	/* Stacked on the tmpfs, at the same path: root's path now leads to
	 * the overlay, and the tmpfs under it is out of reach. */
	if (mount("overlay", layer_path, "overlay", 0, data) < 0)
		return pf_error_errno(err, errno, "ephemeral root: overlay on %s", root);
	return 0;
}

int pf_mount_proc(const char *target, struct pf_error *err)
{
	if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return pf_error_errno(err, errno, "mount proc on %s", target);
	return 0;
}

/* Later mounts with options must not load libmount from the new root:
 * load it now, or make sure it is never loaded. */
static void libmount_before_root_change(bool keep_libmount)
{
	if (keep_libmount)
		pf_libmount_preload();
	else
		pf_libmount_seal();
}

int pf_mount_pivot_root(const char *new_root, bool keep_libmount, struct pf_error *err)
{
	libmount_before_root_change(keep_libmount);
	if (mount(new_root, new_root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return pf_error_errno(err, errno, "bind %s", new_root);
	if (chdir(new_root) < 0)
		return pf_error_errno(err, errno, "chdir %s", new_root);
	/* pivot_root(".", ".") stacks the old root under the new one at "/";
	 * detaching "." then leaves only the new root, with no directory
	 * needed for the old one. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return pf_error_errno(err, errno, "pivot_root %s", new_root);
	if (umount2(".", MNT_DETACH) < 0)
		return pf_error_errno(err, errno, "detach old root");
	if (chdir("/") < 0)
		return pf_error_errno(err, errno, "chdir /");
	return 0;
}

int pf_mount_chroot(const char *dir, bool keep_libmount, struct pf_error *err)
{
	libmount_before_root_change(keep_libmount);
	if (chroot(dir) < 0)
		return pf_error_errno(err, errno, "chroot %s", dir);
	if (chdir("/") < 0)
		return pf_error_errno(err, errno, "chdir /");
	return 0;
}

/* The new mount API's calls, which glibc may not wrap. */
static int open_tree_syscall(int dfd, const char *path, unsigned flags)
{
#ifdef SYS_open_tree
	return (int)syscall(SYS_open_tree, dfd, path, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int move_mount_syscall(int from_fd, int to_fd)
{
#ifdef SYS_move_mount
	return (int)syscall(SYS_move_mount, from_fd, "", to_fd, "",
			    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The mount at fd (opened after it was mounted, so on its root) made
 * read-only or writable: mount_setattr, or a remount through the magic
 * link where the kernel lacks it. */
static int set_readonly_fd(int fd, bool readonly, const char *path, struct pf_error *err)
{
	struct mount_attr attr = { 0 };
	if (readonly)
		attr.attr_set = MOUNT_ATTR_RDONLY;
	else
		attr.attr_clr = MOUNT_ATTR_RDONLY;
	if (mount_setattr_syscall(fd, "", AT_EMPTY_PATH, &attr) == 0)
		return 0;
	if (errno != ENOSYS)
		return pf_error_errno(err, errno, "make %s %s", path, readonly ? "read-only" : "writable");
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	return remount_bind(fd_path, readonly, err);
}

/* fd (target, resolved inside root_fd as path) bound on itself, that mount
 * only, read-only or writable. With the new mount API the copy gets its
 * flag while still detached (open_tree, mount_setattr, move_mount): it is
 * never visible with the other flag, and the target is looked up once.
 * legacy, or a kernel without open_tree (Linux < 5.2): mount(2) through
 * the magic link, the target looked up again to reach the new mount,
 * then its flag; the same mount in the end (mounts_masks_spec compares). */
static int bind_self(int root_fd, int fd, const char *path, bool readonly, bool legacy,
		     struct pf_error *err)
{
	const char *what = readonly ? "read-only" : "writable";
	if (!legacy) {
		_cleanup_close_ int tree =
			open_tree_syscall(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		/* Without open_tree (Linux < 5.2), or refused by a seccomp
		 * profile that allows mount(2): the old way, which fails
		 * alike where binding is not allowed at all. */
		if (tree < 0 && errno != ENOSYS && errno != EPERM)
			return pf_error_errno(err, errno, "bind %s on itself %s", path, what);
		if (tree >= 0) {
			struct mount_attr attr = { 0 };
			if (readonly)
				attr.attr_set = MOUNT_ATTR_RDONLY;
			else
				attr.attr_clr = MOUNT_ATTR_RDONLY;
			if (mount_setattr_syscall(tree, "", AT_EMPTY_PATH, &attr) == 0) {
				if (move_mount_syscall(tree, fd) < 0)
					return pf_error_errno(err, errno, "bind %s on itself %s", path, what);
				return 0;
			}
			/* mount_setattr came later than open_tree (5.12): the
			 * detached copy goes with tree, the old way follows. */
			if (errno != ENOSYS)
				return pf_error_errno(err, errno, "bind %s on itself %s", path, what);
		}
	}
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	if (mount(fd_path, fd_path, NULL, MS_BIND, NULL) < 0)
		return pf_error_errno(err, errno, "bind %s on itself", path);
	_cleanup_close_ int mounted = pf_fs_open_in_root(root_fd, path, err);
	if (mounted < 0)
		return -1;
	return set_readonly_fd(mounted, readonly, path, err);
}

/* An empty tmpfs on fd (path inside root_fd), then read-only. No mount
 * options: without a --chroot nothing else needs libmount. */
static int mount_empty(int root_fd, int fd, const char *path, struct pf_error *err)
{
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	if (mount("tmpfs", fd_path, "tmpfs", 0, NULL) < 0)
		return pf_error_errno(err, errno, "mount tmpfs on %s", path);
	_cleanup_close_ int mounted = pf_fs_open_in_root(root_fd, path, err);
	if (mounted < 0)
		return -1;
	return set_readonly_fd(mounted, true, path, err);
}

int pf_mount_masks(const char *root, const struct pf_mount_mask *masks, size_t n, bool legacy,
		   struct pf_error *err)
{
	_cleanup_close_ int root_fd = pf_fs_open_root(root, err);
	if (root_fd < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct pf_mount_mask *m = &masks[i];
		_cleanup_close_ int fd = pf_fs_open_in_root(root_fd, m->path, err);
		if (fd < 0) {
			/* Kernels differ in what /proc and /sys have. */
			if (!m->required && (err->code == ENOENT || err->code == ENOTDIR)) {
				*err = (struct pf_error){ 0 };
				continue;
			}
			return -1;
		}
		enum pf_mount_mask_how how = m->how;
		if (how == PF_MASK_HIDE) {
			struct stat st;
			if (fstat(fd, &st) < 0)
				return pf_error_errno(err, errno, "%s", m->path);
			how = S_ISDIR(st.st_mode) ? PF_MASK_EMPTY : PF_MASK_NULL;
		}
		int r = 0;
		char fd_path[32];
		switch (how) {
		case PF_MASK_READONLY:
		case PF_MASK_WRITABLE:
			r = bind_self(root_fd, fd, m->path, how == PF_MASK_READONLY, legacy, err);
			break;
		case PF_MASK_NULL:
			/* The host's /dev/null (the container's /dev may not
			 * be there yet): a device node ignores its mount's
			 * flags, so the bind stays writable; reads give
			 * nothing, writes go nowhere. */
			pf_fs_fd_path(fd, fd_path);
			if (mount("/dev/null", fd_path, NULL, MS_BIND, NULL) < 0)
				r = pf_error_errno(err, errno, "bind /dev/null on %s", m->path);
			break;
		case PF_MASK_EMPTY:
		case PF_MASK_HIDE:
			r = mount_empty(root_fd, fd, m->path, err);
			break;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

/* The host's /dev/NAME bound on an empty file NAME of dir_fd, for a
 * device mknod may not make here. */
static int bind_host_device(int dir_fd, const char *dir, const char *name, struct pf_error *err)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST) {
		/* As a mount point made by pf_fs_create_in_root: anything
		 * but a directory. */
		fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
			return pf_error_errno(err, EISDIR, "%s/%s", dir, name);
	}
	if (fd < 0)
		return pf_error_errno(err, errno, "create %s/%s", dir, name);
	char source[sizeof("/dev/") + NAME_MAX];
	snprintf(source, sizeof(source), "/dev/%s", name);
	char fd_path[32];
	pf_fs_fd_path(fd, fd_path);
	if (mount(source, fd_path, NULL, MS_BIND, NULL) < 0)
		return pf_error_errno(err, errno, "bind %s on %s/%s", source, dir, name);
	return 0;
}

int pf_mount_populate(const char *root, const char *dir, const struct pf_mount_entry *entries,
		      size_t n, struct pf_error *err)
{
	_cleanup_close_ int root_fd = pf_fs_open_root(root, err);
	if (root_fd < 0)
		return -1;
	_cleanup_close_ int dir_fd = pf_fs_open_dir_in_root(root_fd, dir, err);
	if (dir_fd < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct pf_mount_entry *e = &entries[i];
		if (!*e->name || strchr(e->name, '/') || strcmp(e->name, ".") == 0 ||
		    strcmp(e->name, "..") == 0 || strlen(e->name) > NAME_MAX)
			return pf_error_set(err, EINVAL, "%s: '%s' is not a name", dir, e->name);
		switch (e->kind) {
		case PF_ENTRY_NODE:
			if (mknodat(dir_fd, e->name, S_IFCHR | 0666, makedev(e->major, e->minor)) == 0) {
				/* The mode asked for, not the one the umask leaves. */
				if (fchmodat(dir_fd, e->name, 0666, 0) < 0)
					return pf_error_errno(err, errno, "chmod %s/%s", dir, e->name);
			} else if (bind_host_device(dir_fd, dir, e->name, err) < 0) {
				return -1;
			}
			break;
		case PF_ENTRY_DIR:
			if (mkdirat(dir_fd, e->name, 0755) < 0)
				return pf_error_errno(err, errno, "create %s/%s", dir, e->name);
			break;
		case PF_ENTRY_LINK:
			if (symlinkat(e->target, dir_fd, e->name) < 0)
				return pf_error_errno(err, errno, "symlink %s/%s", dir, e->name);
			break;
		}
	}
	return 0;
}

int pf_mount_set_readonly(const char *root, const char *target, bool readonly,
			  struct pf_error *err)
{
	_cleanup_close_ int fd = open_target(root, target, err);
	if (fd < 0)
		return -1;
	return set_readonly_fd(fd, readonly, target, err);
}
