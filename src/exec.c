#define _GNU_SOURCE
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "process.h"
#include "sync.h"

static const struct {
	const char *name;
	int resource;
} rlimit_table[] = {
	{ "as", RLIMIT_AS },           { "core", RLIMIT_CORE },
	{ "cpu", RLIMIT_CPU },         { "data", RLIMIT_DATA },
	{ "fsize", RLIMIT_FSIZE },     { "locks", RLIMIT_LOCKS },
	{ "memlock", RLIMIT_MEMLOCK }, { "msgqueue", RLIMIT_MSGQUEUE },
	{ "nice", RLIMIT_NICE },       { "nofile", RLIMIT_NOFILE },
	{ "nproc", RLIMIT_NPROC },     { "rss", RLIMIT_RSS },
	{ "rtprio", RLIMIT_RTPRIO },   { "rttime", RLIMIT_RTTIME },
	{ "sigpending", RLIMIT_SIGPENDING }, { "stack", RLIMIT_STACK },
};

const char *const pf_exec_rlimit_names[] = {
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", NULL,
};

int pf_exec_rlimit_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(rlimit_table) / sizeof(rlimit_table[0]); i++)
		if (strcmp(rlimit_table[i].name, name) == 0)
			return rlimit_table[i].resource;
	return -1;
}

static const char *rlimit_name(int resource)
{
	for (size_t i = 0; i < sizeof(rlimit_table) / sizeof(rlimit_table[0]); i++)
		if (rlimit_table[i].resource == resource)
			return rlimit_table[i].name;
	return "?";
}

/* Block until `start` opens the FIFO for reading. The fd was opened O_PATH
 * before pivot_root; reopening it through /proc/self/fd reaches the same
 * inode whatever the root is now. */
static int wait_for_start(int fifo, struct pf_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fifo);
	int fd;
	do
		fd = open(path, O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return pf_error_errno(err, errno, "start FIFO: open for writing");
	/* One byte: the reader knows a container, not a stray writer, let it go. */
	ssize_t n;
	do
		n = write(fd, "0", 1);
	while (n < 0 && errno == EINTR);
	int errnum = errno;
	close(fd);
	close(fifo);
	if (n != 1)
		return pf_error_errno(err, errnum, "start FIFO: write");
	return 0;
}

int pf_exec_plan_run(const struct pf_exec_plan *plan, int sync_fd, struct pf_error *err)
{
	if (!plan)
		return 0;
	/* sync_fd and the FIFO stay open but close-on-exec: one keep_fd slot
	 * in pf_process_close_fds, so the FIFO's goes first here. */
	int keep[2] = { sync_fd, plan->start_fifo };
	if (pf_process_close_fds_keep(plan->pass, plan->n_pass, keep, 2, err) < 0)
		return -1;
	for (size_t i = 0; i < plan->n_rlimits; i++) {
		const struct pf_exec_rlimit *r = &plan->rlimits[i];
		if (setrlimit(r->resource, &r->limit) < 0)
			return pf_error_errno(err, errno, "rlimits: %s", rlimit_name(r->resource));
	}
	if (plan->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return pf_error_errno(err, errno, "--no-new-privs");
	if (plan->start_fifo >= 0) {
		/* A created container may wait long: a signal init passes on
		 * (or anyone sends) must end it, as it would end the command;
		 * execve clears the mask anyway. */
		sigset_t forwarded, none;
		pf_process_forwarded_signals(&forwarded);
		/* The supervisor's handlers came along with the fork: those
		 * signals act as they will on the command, by default. */
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		for (int sig = 1; sig < NSIG; sig++)
			if (sigismember(&forwarded, sig) == 1)
				sigaction(sig, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* OCI create: the supervisor exits once it heard "created" and
		 * whoever started it (conmon, a containerd shim: a subreaper)
		 * adopts the command; so the parent death signal goes first. */
		if (plan->orphan && prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
			return pf_error_errno(err, errno, "start FIFO: clear the parent death signal");
		if (sync_fd >= 0 && pf_sync_ready(sync_fd) < 0)
			return pf_error_errno(err, errno, "start FIFO: tell the supervisor");
		if (wait_for_start(plan->start_fifo, err) < 0)
			return -1;
	}
	if (plan->filter) {
		struct sock_fprog prog = {
			.len = (unsigned short)plan->n_filter,
			.filter = (struct sock_filter *)plan->filter,
		};
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			return pf_error_errno(err, errno, "seccomp: load the filter%s",
					      errno == EACCES ? " (needs no_new_privs or CAP_SYS_ADMIN)" : "");
	}
	return 0;
}

int pf_exec_start_fifo(const char *path, int timeout_ms, struct pf_error *err)
{
	/* Non-blocking: the open itself must not hang on a FIFO nobody
	 * writes; the container's blocking open for writing returns as soon
	 * as we hold it open for reading. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "start %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		return pf_error_set(err, EINVAL, "start %s: not a FIFO", path);
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int errnum = r == 0 ? ETIMEDOUT : errno;
			close(fd);
			return pf_error_errno(err, errnum, "start %s: no container answered", path);
		}
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		close(fd);
		if (n == 1)
			return 0;
		/* End of file: a writer came and went without the byte. */
		return pf_error_set(err, EPROTO, "start %s: no container answered", path);
	}
}
