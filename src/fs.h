/* Paths inside a root directory that is not ours yet, resolved so that no
 * symlink or ".." in that tree can lead outside it; and temporary trees. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

enum pf_fs_kind {
	PF_FS_DIRECTORY,
	PF_FS_FILE,
};

/* Open root (a directory) as an O_PATH fd. */
int pf_fs_open_root(const char *root, struct pf_error *err);

/* Resolve path inside root_fd as if root_fd were "/": absolute symlinks
 * and ".." stop at root_fd. Uses openat2(RESOLVE_IN_ROOT), or a careful
 * component walk where the kernel lacks it. Returns an O_PATH fd or -1. */
int pf_fs_open_in_root(int root_fd, const char *path, struct pf_error *err);

/* pf_fs_open_in_root for a directory to create things in: an O_RDONLY
 * O_DIRECTORY fd (anything but a directory is refused before it is
 * opened: ENOTDIR). */
int pf_fs_open_dir_in_root(int root_fd, const char *path, struct pf_error *err);

/* The fallback of pf_fs_open_in_root for kernels without openat2,
 * exported for its unit test (tests/c/test_fs.c): returns an O_PATH fd, or
 * -1 with errno set. */
int pf_fs_walk_in_root(int root_fd, const char *path);

/* Like pf_fs_open_in_root, creating what is missing: parent directories
 * (0755) and the last component as kind (a directory 0755 or an empty file
 * 0644). An existing path of the other kind is an error (ENOTDIR/EISDIR).
 * Returns an O_PATH fd or -1. */
int pf_fs_create_in_root(int root_fd, const char *path, enum pf_fs_kind kind,
			 struct pf_error *err);

/* Create a device node (mode includes S_IFCHR/S_IFBLK) at path inside
 * root_fd; its parent must exist. */
int pf_fs_mknod_in_root(int root_fd, const char *path, mode_t mode, dev_t dev,
			struct pf_error *err);

/* Create a symlink at path inside root_fd pointing to target (stored as
 * is; it is resolved later, inside the container). */
int pf_fs_symlink_in_root(int root_fd, const char *target, const char *path,
			  struct pf_error *err);

/* chmod path inside root_fd (resolved there) to mode (permission bits). */
int pf_fs_chmod_in_root(int root_fd, const char *path, mode_t mode, struct pf_error *err);

/* Write data to path inside root_fd (created 0644 if missing, truncated). */
int pf_fs_write_in_root(int root_fd, const char *path, const char *data, size_t len,
			struct pf_error *err);

/* Read at most max bytes of path, resolved inside root. Returns a malloc'd
 * NUL-terminated buffer (the caller frees it) and its length in *ret_len,
 * or NULL with err set. */
char *pf_fs_read_in_root(const char *root, const char *path, size_t max,
			 size_t *ret_len, struct pf_error *err);

/* "/proc/self/fd/N" for fd, to hand a resolved path to calls that take a
 * path (mount(2), overlayfs' lowerdir). */
void pf_fs_fd_path(int fd, char buf[static 32]);

/* Remove path and everything below it, without following symlinks or
 * crossing into other mounts. A missing path is not an error. */
int pf_fs_remove_tree(const char *path, struct pf_error *err);
