#define _GNU_SOURCE
#include "mount.h"

#include <errno.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

int pf_mount_make_private(struct pf_error *err)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return pf_error_errno(err, errno, "make mounts private");
	return 0;
}

int pf_mount_proc(const char *target, struct pf_error *err)
{
	if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return pf_error_errno(err, errno, "mount proc on %s", target);
	return 0;
}

int pf_mount_pivot_root(const char *new_root, struct pf_error *err)
{
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

int pf_mount_chroot(const char *dir, struct pf_error *err)
{
	if (chroot(dir) < 0)
		return pf_error_errno(err, errno, "chroot %s", dir);
	if (chdir("/") < 0)
		return pf_error_errno(err, errno, "chdir /");
	return 0;
}
