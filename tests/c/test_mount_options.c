/* Mount options split without libmount (pf_mount_options_fast) must give
 * exactly the flags and data libmount gives for the same string, and leave
 * to libmount every string it does not know all of. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libmount_lazy.h"
#include "mount.h"

static int failures, passed;

static void same_as_libmount(const struct pf_libmount *mnt, const char *options)
{
	unsigned long fast_flags = 0;
	char *fast_data = NULL;
	int r = pf_mount_options_fast(options, &fast_flags, &fast_data);
	if (r != 1) {
		printf("FAIL '%s': not handled without libmount (%d)\n", options, r);
		failures++;
		return;
	}
	unsigned long flags = 0;
	char *data = NULL;
	if (mnt->optstr_get_flags(options, &flags, mnt->get_builtin_optmap(MNT_LINUX_MAP)) < 0 ||
	    mnt->split_optstr(options, NULL, NULL, &data, 1, 0) < 0) {
		printf("FAIL '%s': libmount refuses it\n", options);
		failures++;
	} else if (flags != fast_flags || (data == NULL) != (fast_data == NULL) ||
		   (data && strcmp(data, fast_data) != 0)) {
		printf("FAIL '%s': libmount %#lx '%s', without %#lx '%s'\n", options, flags,
		       data ? data : "(null)", fast_flags, fast_data ? fast_data : "(null)");
		failures++;
	} else {
		printf("ok   '%s': %#lx '%s'\n", options, flags, data ? data : "(null)");
		passed++;
	}
	free(data);
	free(fast_data);
}

static void left_to_libmount(const char *options)
{
	unsigned long flags = 0;
	char *data = NULL;
	int r = pf_mount_options_fast(options, &flags, &data);
	if (r != 0) {
		printf("FAIL '%s': handled without libmount (%d)\n", options, r);
		failures++;
		free(data);
	} else {
		printf("ok   '%s': left to libmount\n", options);
		passed++;
	}
}

int main(void)
{
	struct pf_error err = { 0 };
	const struct pf_libmount *mnt = pf_libmount(&err);
	if (!mnt) {
		printf("cannot load libmount: %s\n", err.message);
		return 1;
	}
	static const char *const same[] = {
		/* pflask's own (lua/pflask/mounts.lua) */
		"nosuid,nodev,noexec", "ro,nosuid,nodev,noexec", "nosuid,mode=0755,size=65536k",
		"nosuid,noexec,newinstance,ptmxmode=0666,mode=0620", "nosuid,nodev,mode=1777",
		"nosuid,nodev,mode=0755", "mode=1777", "mode=0755", "mode=0755,uid=1000,gid=1000",
		"mode=0700",
		/* flags and their inverses, in any order, repeated */
		"ro", "rw", "ro,rw", "rw,ro", "suid,nosuid", "nosuid,suid", "dev,exec", "noexec,exec",
		"sync", "async", "sync,async", "noatime", "atime", "noatime,atime", "nodiratime",
		"diratime", "relatime", "norelatime", "strictatime", "nostrictatime",
		"ro,nosuid,nodev,noexec,noatime,nodiratime,relatime,strictatime,sync",
		/* filesystem options */
		"size=64M", "size=50%", "nr_inodes=1k", "nr_blocks=100", "uid=0,gid=0",
		"newinstance", "ptmxmode=000", "ro,size=64M,nosuid,mode=0755",
		"mode=0755,mode=0700",
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		same_as_libmount(mnt, same[i]);
	static const char *const left[] = {
		"", ",", "ro,", ",ro", "ro,,nosuid", "defaults", "bind", "rbind", "remount",
		"x-systemd.automount", "nofail", "noauto", "user", "lowerdir=/a,upperdir=/b",
		"mode", "mode=", "newinstance=1", "size=\"64M\"", "mode='0755'", "context=\"a,b\"",
		"uid=a=b", "lazytime", "nosymfollow", "mand", "iversion", "silent", "loud",
		"dirsync", "private", "RO", "nosuid ", " nosuid",
	};
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
		left_to_libmount(left[i]);
	printf("%d passed, %d failed\n", passed, failures);
	return failures ? 1 : 0;
}
