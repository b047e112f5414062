/* Mounts and the root directory, from inside the container's mount
 * namespace (child side). Targets are paths inside a root directory,
 * resolved there with fs.h so that nothing in that tree can redirect a
 * mount outside it. */
#pragma once

#include <stdbool.h>

#include "error.h"

/* Make every mount private, recursively, so that nothing the container
 * mounts propagates back to the host (and host events do not race us). */
int pf_mount_make_private(struct pf_error *err);

/* Mount a filesystem on target, resolved inside root (which must exist).
 * options is a mount(8)-style string ("ro,nosuid,size=64M,mode=0755"):
 * libmount splits it into mount flags and the filesystem's own data. */
int pf_mount_filesystem(const char *root, const char *target, const char *source,
			const char *fstype, const char *options, struct pf_error *err);

/* options as pf_mount_filesystem takes them, split into MS_ flags and the
 * filesystem's data (malloc'd, NULL when empty) without libmount, with
 * the result libmount gives, when every option is a common VFS flag (ro,
 * nosuid, nodev, noexec, the atime ones, sync and their inverses) or a
 * plain tmpfs or devpts option (mode=, size=, uid=, gid=, nr_inodes=,
 * nr_blocks=, ptmxmode=, newinstance). Returns 1 when done, 0 when
 * libmount must decide, -1 out of memory. Exported for its unit test. */
int pf_mount_options_fast(const char *options, unsigned long *ret_flags, char **ret_data);

/* Bind source (a host path, any file type; NULL: target itself) on target
 * inside root,
 * recursively when recursive; readonly makes the new mount and all its
 * submounts read-only. */
int pf_mount_bind(const char *root, const char *target, const char *source,
		  bool recursive, bool readonly, struct pf_error *err);

/* Mount attributes for pf_mount_bind_attrs. */
enum {
	PF_MOUNT_RDONLY = 1 << 0,
	PF_MOUNT_NOSUID = 1 << 1,
	PF_MOUNT_NODEV = 1 << 2,
	PF_MOUNT_NOEXEC = 1 << 3,
};

/* pf_mount_bind with any of PF_MOUNT_* set on the new mount (and, when
 * recursive, on all its submounts): mount_setattr(2), or remounts where
 * the kernel lacks it. */
int pf_mount_bind_attrs(const char *root, const char *target, const char *source,
			bool recursive, unsigned attrs, struct pf_error *err);

/* Like pf_mount_bind, with source too a path inside root, resolved there
 * (never on the host). */
int pf_mount_bind_in_root(const char *root, const char *target, const char *source,
			  bool recursive, bool readonly, struct pf_error *err);

/* An overlay on target inside root: the target directory itself is the
 * lower layer, upper and work are host directories on one filesystem. */
int pf_mount_overlay(const char *root, const char *target, const char *upper,
		     const char *work, struct pf_error *err);

/* Child, in its own mount namespace: make root an overlay whose lower
 * layer is root as it is. With upper and work NULL the writable layer is
 * a tmpfs mounted on root's path in this mount namespace (under the
 * overlay, unreachable), so it vanishes with the namespace; else upper and
 * work are host directories on one filesystem (a disk-backed layer the
 * caller removes). Either way the upper layer takes root's mode and
 * owner. */
int pf_mount_ephemeral(const char *root, const char *upper, const char *work,
		       struct pf_error *err);

/* Mount a fresh proc filesystem on target (nosuid, nodev, noexec), showing
 * the caller's pid namespace. */
int pf_mount_proc(const char *target, struct pf_error *err);

/* Make new_root the root with pivot_root(2) and detach the old root, so it
 * is unreachable from inside; the working directory becomes "/". new_root is
 * first bind-mounted on itself because pivot_root needs a mount point.
 * keep_libmount loads libmount first, for mount options after the change
 * that pf_mount_options_fast does not know; without it libmount is never
 * loaded afterwards (either way never from new_root). */
int pf_mount_pivot_root(const char *new_root, bool keep_libmount, struct pf_error *err);

/* chroot(2) to dir and chdir to "/", for when there is no mount namespace
 * to pivot in; keep_libmount as for pf_mount_pivot_root. */
int pf_mount_chroot(const char *dir, bool keep_libmount, struct pf_error *err);

/* Make the mount whose root is target (inside root) read-only or writable
 * again, that mount only (not its submounts). A bind inherits the
 * read-only flag of the mount it copies: this is how a part of a
 * read-only tree (the container's own /proc/sys/net) is made writable. */
int pf_mount_set_readonly(const char *root, const char *target, bool readonly,
			  struct pf_error *err);

/* What pf_mount_masks does to one path. */
enum pf_mount_mask_how {
	PF_MASK_READONLY, /* bound on itself read-only (that mount only) */
	PF_MASK_WRITABLE, /* bound on itself writable: a part of a read-only tree */
	PF_MASK_NULL,     /* the host's /dev/null bound on it (a file) */
	PF_MASK_EMPTY,    /* an empty tmpfs on it, read-only (a directory) */
	PF_MASK_HIDE,     /* PF_MASK_EMPTY for a directory, else PF_MASK_NULL */
};

struct pf_mount_mask {
	const char *path; /* inside root */
	enum pf_mount_mask_how how;
	bool required;    /* else a path that does not exist is skipped */
};

/* Child: apply masks in order, each path resolved inside root once (root
 * opened once for all). A path that does not exist (ENOENT, ENOTDIR) is
 * skipped unless required: kernels differ in what /proc and /sys have.
 * legacy uses mount(2) and a second lookup for every bind, as on kernels
 * without open_tree (Linux < 5.2), which is what happens there anyway:
 * for tests, which compare the two. Stops at the first failure, err
 * naming the path. */
int pf_mount_masks(const char *root, const struct pf_mount_mask *masks, size_t n, bool legacy,
		   struct pf_error *err);

/* What pf_mount_populate creates in a directory. */
struct pf_mount_entry {
	enum { PF_ENTRY_NODE, PF_ENTRY_DIR, PF_ENTRY_LINK } kind;
	const char *name;       /* one component */
	unsigned major, minor;  /* NODE: a character device, 0666 */
	const char *target;     /* LINK: stored as is */
};

/* Child: create entries in the directory dir (resolved inside root once,
 * opened once), in order: character devices (mode 0666 whatever the
 * umask; where mknod is refused, as in a user namespace, an empty file
 * with the host's /dev/NAME bound on it), directories (0755) and
 * symlinks. Stops at the first failure, err naming the entry. */
int pf_mount_populate(const char *root, const char *dir, const struct pf_mount_entry *entries,
		      size_t n, struct pf_error *err);
