/* pf_fs_remove_tree and pf_fs_read_in_root against hostile trees (issue
 * 11, item 9): a tree 10000 directories deep is removed with a fixed
 * number of fds; symlinks (to a directory, a file, "..") are removed, never
 * followed, including those to an unreadable directory whose mode must not
 * change; directories with mode 000 are emptied; another filesystem or a
 * bind mount inside is left alone; read_in_root refuses device nodes and
 * FIFOs without opening them. Mounts need root: skipped without it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"
#include "check.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void test_deep(const char *base)
{
	char top[512];
	snprintf(top, sizeof(top), "%s/deep", base);
	mkdir(top, 0755);
	int fd = open(top, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < 10000 && fd >= 0; i++) {
		mkdirat(fd, "d", 0755);
		if (i % 1000 == 0) {
			int f = openat(fd, "file", O_WRONLY | O_CREAT, 0644);
			close(f);
		}
		int next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = next;
	}
	if (fd >= 0)
		close(fd);
	int before = count_fds();
	struct pf_error err = { 0 };
	int r = pf_fs_remove_tree(top, &err);
	CHECK(r == 0, "a tree 10000 deep is removed (%s)", r == 0 ? "" : err.message);
	CHECK(!exists(top), "nothing is left of it");
	CHECK(count_fds() == before, "no fd is left open");
}

static void test_symlinks(const char *base)
{
	char top[512], victim[512];
	snprintf(top, sizeof(top), "%s/links", base);
	snprintf(victim, sizeof(victim), "%s/victim", base);
	char cmd[16384];
	snprintf(cmd, sizeof(cmd),
		 "set -e; mkdir -p %s/a/b %s/locked; echo precious > %s/file;"
		 "echo locked > %s/locked/file; chmod 0500 %s/locked;"
		 "ln -s %s %s/dir; ln -s %s/file %s/file; ln -s %s/locked %s/a/locked;"
		 "ln -s ../../.. %s/a/b/up; ln -s / %s/root;"
		 "mkdir -p %s/closed/inner; echo x > %s/closed/inner/f; chmod 000 %s/closed/inner %s/closed",
		 top, victim, victim, victim, victim, victim, top, victim, top, victim, top, top, top, top,
		 top, top, top);
	if (system(cmd) != 0) {
		CHECK(0, "build the symlink tree");
		return;
	}
	struct pf_error err = { 0 };
	int r = pf_fs_remove_tree(top, &err);
	CHECK(r == 0, "a tree of symlinks and mode 000 directories is removed (%s)", r == 0 ? "" : err.message);
	CHECK(!exists(top), "nothing is left of it");
	char path[600];
	snprintf(path, sizeof(path), "%s/file", victim);
	CHECK(exists(path), "a symlinked file is not followed");
	snprintf(path, sizeof(path), "%s/locked/file", victim);
	CHECK(exists(path), "a symlinked directory is not followed");
	struct stat st;
	snprintf(path, sizeof(path), "%s/locked", victim);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0500, "a symlinked directory's mode is untouched");
	CHECK(exists("/etc/passwd"), "the host's root is untouched");
}

static void test_mounts(const char *base)
{
	if (geteuid() != 0) {
		printf("skip mounts inside the tree: needs root\n");
		return;
	}
	char top[512], sub[600], bound[600], src[512];
	snprintf(top, sizeof(top), "%s/mnt", base);
	snprintf(sub, sizeof(sub), "%s/tmpfs", top);
	snprintf(bound, sizeof(bound), "%s/bound", top);
	snprintf(src, sizeof(src), "%s/src", base);
	mkdir(top, 0755);
	mkdir(sub, 0755);
	mkdir(bound, 0755);
	mkdir(src, 0755);
	char f[700];
	snprintf(f, sizeof(f), "%s/keep", src);
	close(open(f, O_WRONLY | O_CREAT, 0644));
	if (mount("pftest", sub, "tmpfs", 0, NULL) < 0 || mount(src, bound, NULL, MS_BIND, NULL) < 0) {
		printf("skip mounts inside the tree: %s\n", strerror(errno));
		umount2(sub, MNT_DETACH);
		return;
	}
	snprintf(f, sizeof(f), "%s/keep", sub);
	close(open(f, O_WRONLY | O_CREAT, 0644));
	struct pf_error err = { 0 };
	int r = pf_fs_remove_tree(top, &err);
	CHECK(r < 0, "a tree holding mounts is not removed whole (%s)", err.message);
	CHECK(exists(f), "another filesystem inside is left alone");
	snprintf(f, sizeof(f), "%s/keep", src);
	CHECK(exists(f), "a bind mount of the same filesystem is left alone");
	umount2(sub, MNT_DETACH);
	umount2(bound, MNT_DETACH);
	r = pf_fs_remove_tree(top, &err);
	CHECK(r == 0, "once unmounted, the tree is removed");
}

static void test_read_in_root(const char *base)
{
	char root[512];
	snprintf(root, sizeof(root), "%s/root", base);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "set -e; mkdir -p %s/etc; echo 'root:x:0:0::/:/bin/sh' > %s/etc/passwd;"
		 "mkfifo %s/etc/fifo; ln -s /etc/fifo %s/etc/link_fifo", root, root, root, root);
	if (system(cmd) != 0) {
		CHECK(0, "build the root");
		return;
	}
	struct pf_error err = { 0 };
	size_t len = 0;
	char *data = pf_fs_read_in_root(root, "/etc/passwd", 4096, &len, &err);
	CHECK(data && strcmp(data, "root:x:0:0::/:/bin/sh\n") == 0, "a regular file is read");
	free(data);
	data = pf_fs_read_in_root(root, "/etc/fifo", 4096, &len, &err);
	CHECK(!data && err.code == EINVAL, "a FIFO is refused (%s)", err.message);
	free(data);
	data = pf_fs_read_in_root(root, "/etc/link_fifo", 4096, &len, &err);
	CHECK(!data && err.code == EINVAL, "a symlink to a FIFO is refused");
	free(data);
	char node[600];
	snprintf(node, sizeof(node), "%s/etc/tty", root);
	if (mknod(node, S_IFCHR | 0666, makedev(5, 0)) == 0) {
		/* /dev/tty: opening it would make a terminal ours. */
		data = pf_fs_read_in_root(root, "/etc/tty", 4096, &len, &err);
		CHECK(!data && err.code == EINVAL, "a device node is refused (%s)", err.message);
		free(data);
	} else {
		printf("skip device node: %s\n", strerror(errno));
	}
}

int main(void)
{
	char base[] = "/tmp/pftest-rmtree.XXXXXX";
	if (!mkdtemp(base))
		return 2;
	test_deep(base);
	test_symlinks(base);
	test_mounts(base);
	test_read_in_root(base);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s 2>/dev/null; rm -rf %s", base, base);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
	return failures ? 1 : 0;
}
