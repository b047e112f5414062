/* Terminals: the container's pty, the supervisor's relay between the
 * user's terminal and it, the detached server that keeps a pty on a unix
 * socket, and the client that attaches to one. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "error.h"

/* A pseudo-terminal: both ends O_CLOEXEC, name is the slave's path. */
struct pf_pty {
	int master;
	int slave;
	char name[64];
};

/* Parent: open a new pty (posix_openpt, grantpt, unlockpt, open the slave)
 * and give it the window size of size_from when that is a terminal (-1:
 * none). The caller owns both fds. */
int pf_pty_open(struct pf_pty *ret, int size_from, struct pf_error *err);

/* Copy the window size of terminal from to pty to (the kernel signals the
 * foreground group of to). Returns -1 with errno set, e.g. ENOTTY. */
int pf_pty_copy_winsize(int from, int to);

/* OCI --console-socket: connect to the unix socket at path and send fd
 * (a pty master) with SCM_RIGHTS, the message being name (runc's
 * utils.SendFd: the client takes the fd, the text is informative). The
 * window size is set first when cols and rows are > 0 (consoleSize). */
int pf_pty_send_fd(const char *path, int fd, const char *name, unsigned short cols,
		   unsigned short rows, struct pf_error *err);

/* A unix stream socket connected to path (O_CLOEXEC), or -1: what
 * pf_pty_send_fd_on sends on (OCI --console-socket). */
int pf_pty_console_connect(const char *path, struct pf_error *err);

/* Send fd on the connected socket sock with SCM_RIGHTS, the message text
 * being name. */
int pf_pty_send_fd_on(int sock, int fd, const char *name, struct pf_error *err);

/* Child, before exec (OCI exec --tty): a new pty from the /dev/ptmx this
 * process sees now (inside the container: its own devpts, so the command's
 * tty has a name there), a new session whose controlling terminal is its
 * slave, the slave as fds 0, 1, 2, and the master sent on sock (then
 * closed, as is sock). */
int pf_pty_console_attach(int sock, unsigned short cols, unsigned short rows, struct pf_error *err);

/* Child, before exec: start a new session whose controlling terminal is
 * slave, and make it each standard fd n (0, 1, 2) whose bit (1 << n) is set
 * in fds; the others are left as they are (not terminals: they pass
 * through). Closes slave (when not 0-2) and master (when >= 0). */
int pf_pty_make_controlling(int slave, int master, unsigned fds, struct pf_error *err);

/* Child: a session of its own without a controlling terminal (setsid), so
 * that the command cannot reach the caller's terminal through /dev/tty or
 * signal the caller's process groups through it. */
int pf_pty_new_session(struct pf_error *err);

/* Child: standard input on /dev/null (opened now, so before pivot_root it
 * is the host's node whatever the root holds). For a stdin that is a
 * terminal of the host when no input is relayed. */
int pf_pty_null_stdin(struct pf_error *err);

/* Put terminal fd in raw mode, keeping its settings in *ret_saved for
 * pf_pty_restore. */
int pf_pty_raw(int fd, struct termios *ret_saved, struct pf_error *err);
int pf_pty_restore(int fd, const struct termios *saved);

/* A pty handled inside the supervisor loop (src/supervise.c): a relay to
 * the user's terminal or a detached server. */
struct pf_pty_loop;
struct pf_watch;

/* Supervisor: relay in -> master (in -1: no input) and master -> out while
 * the container runs, then (pf_pty_loop_end) drain master, bounded, see
 * PF_PTY_DRAIN_*. SIGWINCH (pf_pty_loop_winch) copies the window size of
 * winsize_from to master. End-of-file on in stops reading it only. An in
 * that epoll refuses (a regular file, /dev/null) is read directly: it is
 * always ready. */
/* (*slave: the supervisor's copy of the slave, or -1. Held while the
 * container runs, so that the master does not read EIO, and lose the
 * output that follows, when every process inside closes its terminal for
 * a moment, as an init does when it reopens /dev/console; closed, and set
 * to -1, once the container ended, before the master is drained.) */
/* After the container's first process ended, the drain of the master stops
 * at end of output (EIO: nobody holds the slave any more), after
 * PF_PTY_DRAIN_QUIET_MS without output, after PF_PTY_DRAIN_MAX bytes or
 * after waiting PF_PTY_DRAIN_MS in all for output (time spent writing it
 * out does not count), whichever comes first: without a pid
 * namespace a background process of the container may outlive it and keep
 * writing, and must not keep the supervisor relaying forever. What the
 * command wrote before it ended is at most a pty buffer (some KiB), far
 * below those bounds. */
#define PF_PTY_DRAIN_QUIET_MS 200
#define PF_PTY_DRAIN_MS 2000
#define PF_PTY_DRAIN_MAX (1024 * 1024)
struct pf_pty_loop *pf_pty_relay_new(int master, int *slave, int in, int out, int winsize_from,
				     struct pf_error *err);

/* The socket of detached container pid of user owner: DIR/PID.sock, DIR
 * the user's runtime directory (pf_state_dir, with create made private and
 * refused when another user owns it or others may enter). Fills buf. */
int pf_pty_socket_path(uid_t owner, pid_t pid, bool create, char *buf, size_t size,
		       struct pf_error *err);

/* Detached supervisor: a listening SOCK_SEQPACKET socket at path (an old
 * socket there is replaced), O_CLOEXEC. */
int pf_pty_listen(const char *path, struct pf_error *err);

/* Original process side of --detach: fork. Returns 0 in the new process
 * (the detached supervisor, in a new session, stdin and stdout on
 * /dev/null, stderr kept until pf_pty_detached), with *ret_report_fd the
 * pipe to report the container's pid on. Returns 1 in the original
 * process once the supervisor reported (*ret_pid is the container's pid)
 * or ended (*ret_pid is 0 and *ret_status its exit status). */
int pf_pty_daemonize(int *ret_report_fd, pid_t *ret_pid, int *ret_status,
		     struct pf_error *err);

/* Detached supervisor: tell the original process the container's pid,
 * close report_fd and point stderr at /dev/null (the terminal is the
 * user's, not ours any more). */
int pf_pty_detached(int report_fd, pid_t pid, struct pf_error *err);

/* Detached supervisor: serve master on listen_fd while the container pid
 * runs. Always reads master (the last PF_PTY_RING bytes are kept and shown
 * to the next client), one client at a time (a second one, or one of
 * another user than owner or root, is refused with a message). When it
 * ended (pf_pty_loop_end) the master is drained and an attached client
 * told the exit status. */
#define PF_PTY_RING 65536
struct pf_pty_loop *pf_pty_serve_new(int master, int *slave, int listen_fd, pid_t pid, uid_t owner,
				     struct pf_error *err);

/* The loop's side of a struct pf_pty_loop. arm: before each epoll_wait,
 * register the interest of its fds in ep (and read an input that epoll
 * cannot watch). ready: one of its watches is ready. winch: SIGWINCH
 * arrived. end: the container ended with wstatus: drain, tell a client,
 * leave ep. free: leave ep (without draining) and free. */
int pf_pty_loop_arm(struct pf_pty_loop *l, int ep, struct pf_error *err);
void pf_pty_loop_ready(struct pf_pty_loop *l, int ep, struct pf_watch *w, uint32_t events);
void pf_pty_loop_winch(struct pf_pty_loop *l);
void pf_pty_loop_end(struct pf_pty_loop *l, int ep, int wstatus);
void pf_pty_loop_free(struct pf_pty_loop *l, int ep);

/* Client: connect to the detached container pid and wait for its welcome.
 * Returns the connected socket; on refusal err holds the server's message
 * (code EPERM, EBUSY), for a pid that is not a detached container ENOENT.
 */
int pf_pty_connect(pid_t pid, struct pf_error *err);

enum pf_attach_end { PF_ATTACH_EXITED, PF_ATTACH_DETACHED };

/* Client: relay in -> sock and sock -> out, the window size of
 * winsize_from (-1: none) at start and on SIGWINCH. An in that epoll
 * refuses (a regular file) is read directly, as fast as the container
 * takes it. A NUL byte (Ctrl-@)
 * on in detaches; so does SIGINT, SIGTERM, SIGHUP or SIGQUIT to the
 * client. Returns PF_ATTACH_EXITED with *ret_wstatus when the container
 * ended. */
int pf_pty_attach(int sock, int in, int out, int winsize_from, int *ret_wstatus,
		  struct pf_error *err);
