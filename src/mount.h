/* Mounts and the root directory, from inside the container's mount
 * namespace (child side). Issue 3 extends this with libmount. */
#pragma once

#include "error.h"

/* Make every mount private, recursively, so that nothing the container
 * mounts propagates back to the host (and host events do not race us). */
int pf_mount_make_private(struct pf_error *err);

/* Mount a fresh proc filesystem on target (nosuid, nodev, noexec), showing
 * the caller's pid namespace. */
int pf_mount_proc(const char *target, struct pf_error *err);

/* Make new_root the root with pivot_root(2) and detach the old root, so it
 * is unreachable from inside; the working directory becomes "/". new_root is
 * first bind-mounted on itself because pivot_root needs a mount point. */
int pf_mount_pivot_root(const char *new_root, struct pf_error *err);

/* chroot(2) to dir and chdir to "/", for when there is no mount namespace
 * to pivot in. */
int pf_mount_chroot(const char *dir, struct pf_error *err);
