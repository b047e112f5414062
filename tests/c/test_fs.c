/* The careful walk that stands in for openat2(RESOLVE_IN_ROOT) on older
 * kernels must resolve every path of a hostile tree to the same file as
 * openat2 does (this kernel has both), and never to anything outside. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"

static int failures;

static void build_tree(const char *root)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; mkdir -p etc a/b/c home/u; echo in > etc/passwd;"
		 "ln -s / evil_root; ln -s /etc abs_etc; ln -s ../../../../../../etc dotdot_etc;"
		 "ln -s a/b rel; ln -s ../.. a/b/c/up2; ln -s /a/b/c/up2/../etc a/b/loop_back;"
		 "ln -s self1 self2; ln -s self2 self1; ln -s /nonexistent dangling;"
		 "ln -s ../../../../tmp/../etc home/u/escape",
		 root);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot build the tree\n");
		exit(2);
	}
}

static int by_openat2(int root_fd, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
}

static void same_result(int root_fd, const char *path)
{
	int a = by_openat2(root_fd, path);
	int a_errno = errno;
	int b = pf_fs_walk_in_root(root_fd, path);
	int b_errno = errno;
	if ((a < 0) != (b < 0)) {
		printf("FAIL %s: openat2 %s, walk %s\n", path, a < 0 ? strerror(a_errno) : "ok",
		       b < 0 ? strerror(b_errno) : "ok");
		failures++;
	} else if (a >= 0) {
		struct stat sa, sb;
		fstat(a, &sa);
		fstat(b, &sb);
		if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino) {
			printf("FAIL %s: resolved to different files\n", path);
			failures++;
		} else {
			printf("ok   %s\n", path);
		}
	} else {
		printf("ok   %s (both fail: %s / %s)\n", path, strerror(a_errno), strerror(b_errno));
	}
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
}

/* Through "..", openat2(RESOLVE_IN_ROOT) fails with EAGAIN whenever a
 * rename or mount happened anywhere meanwhile; pf_fs_open_in_root must try
 * again rather than fail a container on a busy host. A child renames a
 * file back and forth while we resolve. */
static void retries_on_eagain(int root_fd, const char *root)
{
	char a[4096], b[4096];
	snprintf(a, sizeof(a), "%s/r1", root);
	snprintf(b, sizeof(b), "%s/r2", root);
	int fd = open(a, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		for (;;) {
			rename(a, b);
			rename(b, a);
		}
	}
	int raw = 0, ours = 0;
	char last[sizeof(((struct pf_error *)0)->message)] = "";
	for (int i = 0; i < 20000; i++) {
		fd = by_openat2(root_fd, "a/b/c/../../../etc/passwd");
		if (fd >= 0)
			close(fd);
		else if (errno == EAGAIN)
			raw++;
		struct pf_error err = { 0 };
		fd = pf_fs_open_in_root(root_fd, "a/b/c/../../../etc/passwd", &err);
		if (fd >= 0) {
			close(fd);
		} else {
			ours++;
			snprintf(last, sizeof(last), "%s", err.message);
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(a);
	unlink(b);
	printf("%s 20000 opens through .. during renames: openat2 said EAGAIN %d times, "
	       "pf_fs_open_in_root failed %d times %s\n", ours ? "FAIL" : "ok  ", raw, ours, last);
	if (ours)
		failures++;
}

int main(void)
{
	char root[] = "/tmp/pftest-walk.XXXXXX";
	if (!mkdtemp(root))
		return 2;
	build_tree(root);
	int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	static const char *const paths[] = {
		"/", "etc/passwd", "/etc/passwd", "evil_root/etc/passwd", "abs_etc/passwd",
		"dotdot_etc/passwd", "../../etc/passwd", "/../../../etc", "rel/c",
		"a/b/c/up2/etc/passwd", "a/b/loop_back/passwd", "self1", "dangling",
		"home/u/escape/passwd", "a/./b/../b/c", "evil_root/evil_root/abs_etc",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		same_result(root_fd, paths[i]);
	retries_on_eagain(root_fd, root);
	close(root_fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		failures++;
	printf("%d passed, %d failed\n", (int)(sizeof(paths) / sizeof(paths[0])) + 1 - failures, failures);
	return failures ? 1 : 0;
}
