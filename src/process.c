#define _GNU_SOURCE
#include "process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "sync.h"

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

void pf_process_forwarded_signals(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(set, forwarded[i]);
}

static void supervised_signals(sigset_t *set)
{
	pf_process_forwarded_signals(set);
	sigaddset(set, SIGCHLD);
}

/* The supervisor's side of the forwarded signals. While it has processes
 * (block_depth > 0), each forwarded signal is caught by on_signal, which
 * notes it in received[] and wakes the supervisor loop through a pipe
 * (src/supervise.c reads both). The mask is left as it was: a program a
 * recipe runs with os.execute or io.popen inherits no blocked signal. The
 * mask is blocked only from clone until the child runs
 * (pf_process_signals_cloned), so that the child starts with them blocked
 * (it unblocks them right before exec) and the parent's steps are not
 * interrupted. */
static unsigned block_depth;
static pid_t handler_owner;             /* the process the handlers serve */
static bool mask_blocked;               /* blocked for a clone in progress */
static sigset_t mask_before_block;
static struct sigaction action_before[NSIG];
static int signal_pipe[2] = { -1, -1 };
/* Per signal: PF_SIGNAL_FROM_PROCESS and/or PF_SIGNAL_FROM_KERNEL, set by
 * the handler, taken by pf_process_take_signal. */
static unsigned received[NSIG];

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	int saved_errno = errno;
	if (getpid() != handler_owner) {
		/* A child of the supervisor (a container before its exec,
		 * which inherits the handler with the signals blocked, or the
		 * command pid 1 starts) is not ours to serve: act as the
		 * default would, as before the handler existed. */
		signal(sig, SIG_DFL);
		raise(sig);
		errno = saved_errno;
		return;
	}
	__atomic_fetch_or(&received[sig], si->si_code <= 0 ? PF_SIGNAL_FROM_PROCESS : PF_SIGNAL_FROM_KERNEL,
			  __ATOMIC_SEQ_CST);
	if (signal_pipe[1] >= 0) {
		ssize_t r = write(signal_pipe[1], "", 1);
		(void)r; /* full: a wake-up is pending anyway */
	}
	errno = saved_errno;
}

static int install_handlers(struct pf_error *err)
{
	if (signal_pipe[0] >= 0) {
		/* Inherited from the process we were forked from: its pipe is
		 * shared with it, ours must not be. */
		close(signal_pipe[0]);
		close(signal_pipe[1]);
		signal_pipe[0] = signal_pipe[1] = -1;
	}
	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		signal_pipe[0] = signal_pipe[1] = -1;
		return pf_error_errno(err, errno, "signal pipe");
	}
	memset(received, 0, sizeof(received));
	handler_owner = getpid();
	struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, &action_before[forwarded[i]]);
	return 0;
}

/* The last process is reaped: the signals act as they did before. One that
 * arrived and was never passed on (nobody ran the loop since) is raised
 * again, so it is not lost: as a signal left pending in a blocked mask
 * would have been delivered. */
static void remove_handlers(void)
{
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &action_before[forwarded[i]], NULL);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	signal_pipe[0] = signal_pipe[1] = -1;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		if (__atomic_exchange_n(&received[forwarded[i]], 0, __ATOMIC_SEQ_CST))
			raise(forwarded[i]);
}

void pf_process_set_idle_action(int sig, const struct sigaction *sa)
{
	if (block_depth > 0 && handler_owner == getpid())
		action_before[sig] = *sa; /* put back after the last reap */
	else
		sigaction(sig, sa, NULL);
}

int pf_process_block_signals(struct pf_error *err)
{
	if (block_depth > 0 && handler_owner != getpid())
		block_depth = 0; /* forked since (--detach): start afresh */
	/* Inherited SIG_IGN for SIGCHLD would make the kernel reap our
	 * children itself, and waitpid would never see the container end. */
	signal(SIGCHLD, SIG_DFL);
	if (block_depth == 0 && install_handlers(err) < 0)
		return -1;
	block_depth++;
	sigset_t set;
	supervised_signals(&set);
	if (!mask_blocked) {
		if (sigprocmask(SIG_BLOCK, &set, &mask_before_block) < 0) {
			pf_process_unblock_signals();
			return pf_error_errno(err, errno, "block signals");
		}
		mask_blocked = true;
	}
	return 0;
}

void pf_process_signals_cloned(void)
{
	if (!mask_blocked)
		return;
	mask_blocked = false;
	/* What arrived during the clone goes to the handler now. */
	sigprocmask(SIG_SETMASK, &mask_before_block, NULL);
}

void pf_process_unblock_signals(void)
{
	pf_process_signals_cloned();
	if (block_depth == 0 || --block_depth > 0)
		return;
	remove_handlers();
}

int pf_process_signal_fd(void)
{
	return block_depth > 0 && handler_owner == getpid() ? signal_pipe[0] : -1;
}

void pf_process_drain_signal_fd(void)
{
	if (signal_pipe[0] < 0)
		return;
	char buf[64];
	while (read(signal_pipe[0], buf, sizeof(buf)) > 0)
		;
}

int pf_process_take_signal(unsigned *ret_from)
{
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		unsigned from = __atomic_exchange_n(&received[forwarded[i]], 0, __ATOMIC_SEQ_CST);
		if (from) {
			*ret_from = from;
			return forwarded[i];
		}
	}
	return 0;
}

int pf_process_open_self(struct pf_error *err)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return pf_error_errno(err, errno, "pidfd_open");
	/* Close-on-exec already: pidfd_open sets it on every pidfd it makes
	 * (pidfd_open(2)), so no fcntl. */
	return fd;
}

/* The supervisor, as a pidfd the child inherited from core.clone: the one
 * way to tell, from inside a new pid namespace (where getppid() is 0
 * whoever the parent is), that the parent is already gone. */
static int parent_pidfd = -1;
/* The parent as getppid() saw it at the start: 0 in a new pid namespace,
 * where it tells nothing. */
static pid_t parent_pid;

/* Is the parent that cloned us gone? A pidfd polls readable once its
 * process has exited. Without one (the fd was closed since, or we were
 * not started by core.clone), fall back on getppid(): outside a pid
 * namespace an orphan is adopted by another process. */
static bool parent_gone(void)
{
	if (parent_pidfd >= 0) {
		struct pollfd p = { .fd = parent_pidfd, .events = POLLIN };
		int r;
		do
			r = poll(&p, 1, 0);
		while (r < 0 && errno == EINTR);
		if (r >= 0 && !(p.revents & POLLNVAL))
			return r > 0 && (p.revents & (POLLIN | POLLHUP));
		parent_pidfd = -1; /* closed under us: never trust the number again */
	}
	return parent_pid > 0 && getppid() != parent_pid;
}

/* pid 1, once the command runs: its credentials no longer change, and a
 * handle on the supervisor has no business inside the container. */
static void forget_parent(void)
{
	if (parent_pidfd >= 0)
		close(parent_pidfd);
	parent_pidfd = -1;
}

int pf_process_die_with_parent(int parent_fd, struct pf_error *err)
{
	if (parent_fd >= 0)
		parent_pidfd = parent_fd;
	parent_pid = getppid();
	return pf_process_rearm_parent_death(err);
}

int pf_process_rearm_parent_death(struct pf_error *err)
{
	/* Unconditionally: a change of euid, egid, fsuid or fsgid (setresuid,
	 * setresgid) resets the signal to 0, so "re-arm if still set" would
	 * never re-arm. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return pf_error_errno(err, errno, "set parent death signal");
	/* The parent may have died before the signal was armed: then the
	 * kernel never sends it, and we must not go on as an orphan. */
	if (parent_gone())
		return pf_error_set(err, ESRCH, "the supervisor is gone");
	return 0;
}

/* Close fds from 3 up but those of keep (unsorted, any order) and the
 * n_extra fds of extra (-1 entries ignored), in ranges between them. */
static int close_fds_except(const int *keep, size_t n, const int *extra, size_t n_extra)
{
	int from = 3;
	for (;;) {
		/* The lowest kept fd at or above from. */
		int next = -1;
		for (size_t i = 0; i < n + n_extra; i++) {
			int k = i < n ? keep[i] : extra[i - n];
			if (k >= from && (next < 0 || k < next))
				next = k;
		}
		unsigned int last = next < 0 ? ~0u : (unsigned int)next - 1;
		if (next < 0 || next > from) {
			if (close_range((unsigned int)from, last, 0) < 0) {
				if (errno != ENOSYS && errno != EINVAL)
					return -1;
				/* A kernel before 5.9: walk /proc/self/fd. */
				DIR *d = opendir("/proc/self/fd");
				if (!d)
					return -1;
				int self = dirfd(d);
				struct dirent *de;
				while ((de = readdir(d))) {
					char *end;
					long fd = strtol(de->d_name, &end, 10);
					if (*end || fd < from || fd == self || (next >= 0 && fd >= next))
						continue;
					close((int)fd);
				}
				closedir(d);
			}
		}
		if (next < 0)
			return 0;
		from = next + 1;
	}
}

int pf_process_close_fds_keep(const int *pass, size_t n, const int *keep, size_t n_keep,
			      struct pf_error *err)
{
	/* The command comes next, the credentials changed for the last time:
	 * the supervisor's pidfd goes too, and is forgotten, so that no one
	 * closes its number again once it is reused. close_fds_except closes
	 * it with the rest (one call fewer), unless its number is kept. */
	bool pidfd_kept = false;
	for (size_t i = 0; i < n + n_keep; i++)
		if ((i < n ? pass[i] : keep[i - n]) == parent_pidfd)
			pidfd_kept = true;
	if (pidfd_kept)
		forget_parent();
	else
		parent_pidfd = -1;
	if (close_fds_except(pass, n, keep, n_keep) < 0)
		return pf_error_errno(err, errno, "close inherited file descriptors");
	for (size_t i = 0; i < n; i++) {
		int flags = fcntl(pass[i], F_GETFD);
		if (flags < 0 || fcntl(pass[i], F_SETFD, flags & ~FD_CLOEXEC) < 0)
			return pf_error_errno(err, errno, "pass fd %d", pass[i]);
	}
	return 0;
}

int pf_process_close_fds(const int *pass, size_t n, int keep_fd, struct pf_error *err)
{
	return pf_process_close_fds_keep(pass, n, &keep_fd, 1, err);
}

static const char *env_lookup(char *const envp[], const char *name)
{
	size_t len = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

static int exec_status_for(int errnum)
{
	return (errnum == ENOENT || errnum == ENOTDIR) ? 127 : 126;
}

/* execvpe(3) searches the PATH of the current environment; the container's
 * PATH is the one in envp, so search it ourselves, with execvp's rules:
 * keep looking after ENOENT/ENOTDIR/EACCES, report EACCES if an existing
 * file was all we found, stop at any other error. */
static int exec_search(const char *file, char *const argv[], char *const envp[])
{
	const char *path = env_lookup(envp, "PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";

	bool saw_eacces = false;
	size_t file_len = strlen(file);
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dir_len = (size_t)(end - p);
		char candidate[PATH_MAX];
		if (dir_len + 1 + file_len + 1 <= sizeof(candidate)) {
			/* An empty PATH entry means the current directory. */
			if (dir_len == 0)
				snprintf(candidate, sizeof(candidate), "%s", file);
			else
				snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)dir_len, p, file);
			execve(candidate, argv, envp);
			/* EACCES also comes from a directory we may not
			 * search: that is "not found here", not "cannot
			 * execute", unless the file is really there. */
			if (errno == EACCES && access(candidate, F_OK) == 0)
				saw_eacces = true;
			else if (errno == EACCES)
				errno = ENOENT;
			else if (errno != ENOENT && errno != ENOTDIR)
				return -1;
		}
		if (*end == '\0')
			break;
		p = end;
	}
	errno = saw_eacces ? EACCES : ENOENT;
	return -1;
}

/* "LISTEN_PID=" + the caller's pid, for pf_process_exec. A static buffer
 * and no allocation: the command of pf_process_exec_reaped runs this
 * sharing its parent's memory. */
static char listen_pid[32];

static void set_listen_pid(char *const envp[])
{
	for (char *const *e = envp; e && *e; e++) {
		if (strcmp(*e, "LISTEN_PID=") != 0)
			continue;
		char digits[16];
		int n = 0;
		for (unsigned long v = (unsigned long)getpid(); v || n == 0; v /= 10)
			digits[n++] = (char)('0' + v % 10);
		char *p = stpcpy(listen_pid, "LISTEN_PID=");
		while (n > 0)
			*p++ = digits[--n];
		*p = '\0';
		/* envp's array is ours to change (built for this exec). */
		*(char **)e = listen_pid;
	}
}

int pf_process_exec(const char *file, char *const argv[], char *const envp[],
		    const struct pf_exec_plan *plan, int sync_fd, int *ret_status, struct pf_error *err)
{
	if (pf_exec_plan_run(plan, sync_fd, err) < 0) {
		*ret_status = 125;
		return -1;
	}
	set_listen_pid(envp);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fflush(NULL);

	if (strchr(file, '/'))
		execve(file, argv, envp);
	else
		exec_search(file, argv, envp);

	int errnum = errno;
	*ret_status = exec_status_for(errnum);
	return pf_error_errno(err, errnum, "cannot run '%s'", file);
}

int pf_process_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 125;
}

/* A signal that another process sent us (kill, sigqueue, tgkill), as
 * opposed to one the kernel generated, e.g. the terminal's Ctrl-C, which
 * already went to every process of the foreground process group. */
static bool sent_by_a_process(const struct signalfd_siginfo *si)
{
	return (int)si->ssi_code <= 0;
}

static char *heap_start;

void pf_process_note_heap_start(void)
{
	/* Not sbrk(0): malloc's first extension of the heap may predate
	 * main() and hold what it allocates next. Where the next allocation
	 * lands is the start of what is ours. */
	void *p = malloc(1);
	heap_start = p;
	free(p);
}

/* Init never goes back to Lua and never calls malloc again: the heap it
 * inherited from the supervisor (the whole Lua state) is dead weight in
 * every running container, copied page by page as the supervisor writes
 * its own. Give those pages back. Only what malloc took after main()
 * started: anything allocated before (the loader's, libc's) stays. */
/* Give back the whole pages of [p, p + len): they read as zeros again. */
static void shed_range(void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(page - 1);
	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
}

static void shed_heap(void)
{
	char *end = sbrk(0);
	if (heap_start && end > heap_start)
		shed_range(heap_start, (size_t)(end - heap_start));
}

static void __attribute__((noreturn)) reap_until_exit(pid_t command, int sfd)
{
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			_exit(125);
		if (si.ssi_signo != SIGCHLD) {
			if (sent_by_a_process(&si))
				kill(command, (int)si.ssi_signo);
			continue;
		}
		int wstatus;
		pid_t r;
		while ((r = waitpid(-1, &wstatus, WNOHANG)) > 0)
			/* Leaving pid 1 kills whatever else still runs in
			 * the namespace, as when init dies on a real system. */
			if (r == command)
				_exit(pf_process_exit_status(wstatus));
		if (r < 0 && errno == ECHILD)
			_exit(125);
	}
}

pid_t pf_process_fork_reaper(int fd_to_close, struct pf_error *err)
{
	sigset_t set;
	supervised_signals(&set);
	/* Block before fork so the init side cannot miss an early SIGCHLD. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return pf_error_errno(err, errno, "block signals");
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return pf_error_errno(err, errno, "signalfd");

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int errnum = errno;
		close(sfd);
		return pf_error_errno(err, errnum, "fork the command");
	}
	if (pid == 0) {
		close(sfd);
		return 0;
	}
	if (fd_to_close >= 0)
		close(fd_to_close);
	forget_parent();
	close_fds_except(&sfd, 1, NULL, 0);
	prctl(PR_SET_NAME, "pflask-init", 0, 0, 0);
	shed_heap();
	reap_until_exit(pid, sfd);
}

struct spawn_args {
	const char *file;
	char *const *argv;
	char *const *envp;
	const struct pf_exec_plan *plan;
	int sync_fd;
};

/* The command's side of pf_process_exec_reaped: it shares the caller's
 * memory until it execs, so it only execs or reports and exits. */
static int __attribute__((noreturn)) exec_or_report(void *p)
{
	const struct spawn_args *a = p;
	struct pf_error err = { 0 };
	int status;
	pf_process_exec(a->file, a->argv, a->envp, a->plan, a->sync_fd, &status, &err);
	if (a->sync_fd < 0 || pf_sync_report(a->sync_fd, status, &err) < 0) {
		/* Nobody listens any more (a container started through its
		 * start FIFO, whose supervisor left): say it where the
		 * command's own errors go. Static buffer: we share init's
		 * memory. */
		static char line[sizeof(err.message) + 16];
		int len = snprintf(line, sizeof(line), "pflask: %s\n", err.message);
		if (len > 0)
			(void)!write(2, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
	}
	_exit(status);
}

int pf_process_exec_reaped(const char *file, char *const argv[], char *const envp[],
			   const struct pf_exec_plan *plan, int sync_fd, struct pf_error *err)
{
	sigset_t set;
	supervised_signals(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return pf_error_errno(err, errno, "block signals");
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return pf_error_errno(err, errno, "signalfd");

	/* Named before the command starts, which may look at it at once. */
	prctl(PR_SET_NAME, "pflask-init", 0, 0, 0);
	fflush(NULL);
	/* As posix_spawn does: CLONE_VM|CLONE_VFORK copies no page table and
	 * suspends us until the command has exec'd (or failed and exited), so
	 * the stack below is free again when clone returns. */
	static char stack[64 * 1024] __attribute__((aligned(16)));
	struct spawn_args args = { file, argv, envp, plan, sync_fd };
	pid_t pid;
	if (plan && plan->start_fifo >= 0) {
		/* The command will block on its start FIFO for as long as
		 * nobody starts it: init must not be suspended meanwhile, but
		 * pass signals on (a created container can be stopped) and
		 * reap. A copy, then: vfork's sharing is only for a child that
		 * execs at once. */
		pid = fork();
		if (pid == 0)
			exec_or_report(&args);
	} else {
		pid = clone(exec_or_report, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
	}
	if (pid < 0) {
		int errnum = errno;
		close(sfd);
		return pf_error_errno(err, errnum, "start the command");
	}
	if (sync_fd >= 0)
		close(sync_fd);
	forget_parent();
	/* The command has its copy of what it inherits on purpose (passed
	 * fds): init holds nothing of it. */
	close_fds_except(&sfd, 1, NULL, 0);
	shed_heap();
	/* The command has exec'd (or exited): the pages of the stack it ran
	 * on are init's private copies, and never read again. */
	shed_range(stack, sizeof(stack));
	reap_until_exit(pid, sfd);
}
