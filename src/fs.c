#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

static int open_in_root(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
}

char *pf_fs_read_in_root(const char *root, const char *path, size_t max,
			 size_t *ret_len, struct pf_error *err)
{
	_cleanup_close_ int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		pf_error_errno(err, errno, "open %s", root);
		return NULL;
	}
	_cleanup_close_ int fd = open_in_root(root_fd, path);
	if (fd < 0) {
		pf_error_errno(err, errno, "open %s in %s", path, root);
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
