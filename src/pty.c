#define _GNU_SOURCE
#include "pty.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "process.h"
#include "state.h"
#include "supervise.h"

/* Large enough that bulk output moves in few system calls; a pty hands
 * out at most a few KiB per read anyway. */
#define BUF_SIZE 65536

int pf_pty_open(struct pf_pty *ret, int size_from, struct pf_error *err)
{
	_cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return pf_error_errno(err, errno, "open a pty");
	if (grantpt(master) < 0 || unlockpt(master) < 0)
		return pf_error_errno(err, errno, "unlock the pty");
	char name[64];
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return pf_error_errno(err, errno, "name the pty");
	_cleanup_close_ int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return pf_error_errno(err, errno, "open %s", name);
	if (size_from >= 0)
		pf_pty_copy_winsize(size_from, master); /* not a terminal: no size */
	ret->master = take_fd(master);
	ret->slave = take_fd(slave);
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	return 0;
}

int pf_pty_copy_winsize(int from, int to)
{
	struct winsize ws;
	if (ioctl(from, TIOCGWINSZ, &ws) < 0)
		return -1;
	return ioctl(to, TIOCSWINSZ, &ws);
}

int pf_pty_make_controlling(int slave, int master, unsigned fds, struct pf_error *err)
{
	if (master >= 0)
		close(master);
	if (setsid() < 0)
		return pf_error_errno(err, errno, "new session for the terminal");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return pf_error_errno(err, errno, "make the pty the controlling terminal");
	for (int fd = 0; fd <= 2; fd++)
		if ((fds & (1u << fd)) && fd != slave && dup2(slave, fd) < 0)
			return pf_error_errno(err, errno, "pty as standard fd %d", fd);
	if (slave > 2)
		close(slave);
	return 0;
}

int pf_pty_console_connect(const char *path, struct pf_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return pf_error_set(err, ENAMETOOLONG, "console socket %s: path too long", path);
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return pf_error_errno(err, errno, "console socket");
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(s);
		return pf_error_errno(err, e, "console socket %s: connect", path);
	}
	return s;
}

int pf_pty_send_fd_on(int sock, int fd, const char *name, struct pf_error *err)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control = { 0 };
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return pf_error_errno(err, errno, "console socket: send the terminal");
	return 0;
}

int pf_pty_send_fd(const char *path, int fd, const char *name, unsigned short cols,
		   unsigned short rows, struct pf_error *err)
{
	if (cols > 0 && rows > 0) {
		struct winsize ws = { .ws_row = rows, .ws_col = cols };
		if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
			return pf_error_errno(err, errno, "console size");
	}
	int s = pf_pty_console_connect(path, err);
	if (s < 0)
		return -1;
	int r = pf_pty_send_fd_on(s, fd, name, err);
	close(s);
	return r;
}

int pf_pty_console_attach(int sock, unsigned short cols, unsigned short rows, struct pf_error *err)
{
	struct pf_pty p;
	if (pf_pty_open(&p, -1, err) < 0)
		return -1;
	if (cols > 0 && rows > 0) {
		struct winsize ws = { .ws_row = rows, .ws_col = cols };
		ioctl(p.master, TIOCSWINSZ, &ws);
	}
	int r = pf_pty_send_fd_on(sock, p.master, "/dev/ptmx", err);
	close(sock);
	if (r < 0) {
		close(p.master);
		close(p.slave);
		return -1;
	}
	return pf_pty_make_controlling(p.slave, p.master, 7u, err);
}

int pf_pty_new_session(struct pf_error *err)
{
	if (setsid() < 0)
		return pf_error_errno(err, errno, "new session");
	return 0;
}

int pf_pty_null_stdin(struct pf_error *err)
{
	int fd = open("/dev/null", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open /dev/null");
	int r = fd == 0 ? 0 : dup2(fd, 0);
	int e = errno;
	if (fd != 0)
		close(fd);
	if (r < 0)
		return pf_error_errno(err, e, "/dev/null as standard input");
	return 0;
}

int pf_pty_raw(int fd, struct termios *ret_saved, struct pf_error *err)
{
	if (tcgetattr(fd, ret_saved) < 0)
		return pf_error_errno(err, errno, "get terminal settings");
	struct termios raw = *ret_saved;
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &raw) < 0)
		return pf_error_errno(err, errno, "set the terminal raw");
	return 0;
}

int pf_pty_restore(int fd, const struct termios *saved)
{
	/* TCSADRAIN: what the container printed last reaches the screen
	 * with the settings it was written for. */
	while (tcsetattr(fd, TCSADRAIN, saved) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Write all of buf to a blocking fd, or to one someone else made
 * non-blocking (a terminal shared with other programs). */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				poll(&p, 1, -1);
				continue;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}


/* Write what is pending of the user's input (buf + *off, *len bytes) to the
 * non-blocking master; on a hard error the input is dropped rather than
 * retried forever. */
static void pass_input(int master, const char *buf, size_t *off, size_t *len)
{
	ssize_t r = write(master, buf + *off, *len);
	if (r > 0) {
		*off += (size_t)r;
		*len -= (size_t)r;
	} else if (r < 0 && errno != EAGAIN && errno != EINTR) {
		*len = 0;
	}
}

/* The container ended: let go of the supervisor's slave so that draining
 * the master ends with EIO as soon as it is empty. */
static void release_slave(int *slave)
{
	if (slave && *slave >= 0) {
		close(*slave);
		*slave = -1;
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what master still holds after the container ended: until EIO
 * (every slave fd closed and the buffer empty), or within the bounds of
 * PF_PTY_DRAIN_* (a process the container left behind, without a pid
 * namespace, may keep the slave open and write for ever). */
static void drain(int master, int out, void (*sink)(void *, const char *, size_t), void *ctx)
{
	static char buf[BUF_SIZE];
	/* Time spent waiting for output, not writing it: a slow terminal
	 * outside must not cut what the command wrote before it ended. */
	long long waited = 0;
	size_t total = 0;
	for (;;) {
		long long left = PF_PTY_DRAIN_MS - waited;
		if (left <= 0 || total >= PF_PTY_DRAIN_MAX)
			return;
		struct pollfd p = { .fd = master, .events = POLLIN };
		long long t0 = now_ms();
		int r = poll(&p, 1, left < PF_PTY_DRAIN_QUIET_MS ? (int)left : PF_PTY_DRAIN_QUIET_MS);
		waited += now_ms() - t0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		ssize_t n = read(master, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		total += (size_t)n;
		if (sink)
			sink(ctx, buf, (size_t)n);
		else if (out >= 0 && write_all(out, buf, (size_t)n) < 0)
			return;
	}
}

/* Records on the socket of a detached container: a type byte, then the
 * payload. */
enum {
	REC_HELLO = 'H',  /* server: you are attached */
	REC_DATA = 'D',   /* both ways: terminal bytes */
	REC_EXIT = 'X',   /* server: int wait(2) status, the container ended */
	REC_ERROR = 'E',  /* server: refused, the message follows */
	REC_WINSIZE = 'W' /* client: struct winsize */
};
#define REC_MAX (BUF_SIZE + 1)

struct ring {
	char data[PF_PTY_RING];
	size_t start, len;
};

/* A relay (server false) or a detached server (server true). */
struct pf_pty_loop {
	bool server;
	int master;
	int *slave;
	struct pf_watch w_master;
	/* Relay: the user's fds. in_direct: in is read without epoll (a
	 * regular file), in_eof: it ended. */
	int in, out, winsize_from;
	bool out_ok, in_direct, in_eof;
	struct pf_watch w_in;
	/* Input not passed on to master yet: from in (relay) or from the
	 * client (server). */
	char input[BUF_SIZE];
	size_t input_len, input_off;
	/* Server. */
	pid_t pid;
	uid_t owner;
	int client;
	struct pf_watch w_listen, w_client;
	struct ring ring;
	char pending[REC_MAX]; /* a data record the client could not take yet */
	size_t pending_len;
};

static struct pf_pty_loop *loop_new(bool server, int master, int *slave, struct pf_error *err)
{
	struct pf_pty_loop *l = calloc(1, sizeof(*l));
	if (!l) {
		pf_error_errno(err, ENOMEM, "relay the pty");
		return NULL;
	}
	l->server = server;
	l->master = master;
	l->slave = slave;
	l->in = l->out = l->winsize_from = l->client = -1;
	struct pf_watch none = { .fd = -1, .kind = PF_WATCH_PTY, .owner = l };
	l->w_in = l->w_listen = l->w_client = none;
	l->w_master = none;
	l->w_master.fd = master;
	/* Our own file description of the master: non-blocking is ours to
	 * set, so input for a container that does not read it never blocks
	 * its output. in and out are the user's, shared: left as they are. */
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	return l;
}

struct pf_pty_loop *pf_pty_relay_new(int master, int *slave, int in, int out, int winsize_from,
				     struct pf_error *err)
{
	struct pf_pty_loop *l = loop_new(false, master, slave, err);
	if (!l)
		return NULL;
	l->in = in;
	l->w_in.fd = in;
	l->in_eof = in < 0;
	l->out = out;
	l->out_ok = out >= 0;
	l->winsize_from = winsize_from;
	return l;
}

struct pf_pty_loop *pf_pty_serve_new(int master, int *slave, int listen_fd, pid_t pid, uid_t owner,
				     struct pf_error *err)
{
	struct pf_pty_loop *l = loop_new(true, master, slave, err);
	if (!l)
		return NULL;
	l->pid = pid;
	l->owner = owner;
	l->w_listen.fd = listen_fd;
	return l;
}

static int relay_arm(struct pf_pty_loop *l, int ep, struct pf_error *err)
{
	if (l->in_direct && !l->in_eof && l->input_len == 0) {
		/* A regular file is always ready: read it now. */
		ssize_t r;
		do
			r = read(l->in, l->input, sizeof(l->input));
		while (r < 0 && errno == EINTR);
		if (r <= 0 || l->w_master.fd < 0)
			l->in_eof = true;
		else {
			l->input_len = (size_t)r;
			l->input_off = 0;
		}
	}
	/* Read the user's input only when the last piece is passed on. */
	if (!l->in_direct && pf_watch_set(ep, &l->w_in, l->input_len == 0 ? EPOLLIN : 0) < 0) {
		if ((errno == EPERM || errno == EEXIST) && l->w_in.events == 0) {
			/* EPERM: stdin that epoll refuses (a regular file):
			 * read it directly. EEXIST: another relay of this
			 * loop reads the same fd already: no input here. */
			l->w_in.fd = -1;
			if (errno == EPERM)
				l->in_direct = true;
			else
				l->in_eof = true;
			return relay_arm(l, ep, err);
		}
		return pf_error_errno(err, errno, "epoll_ctl");
	}
	if (pf_watch_set(ep, &l->w_master, EPOLLIN | (l->input_len ? EPOLLOUT : 0)) < 0)
		return pf_error_errno(err, errno, "epoll_ctl");
	return 0;
}

static void relay_ready(struct pf_pty_loop *l, int ep, struct pf_watch *w, uint32_t e)
{
	static char obuf[BUF_SIZE];
	if (w == &l->w_in && l->w_in.fd >= 0) {
		ssize_t r = read(l->in, l->input, sizeof(l->input));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (r <= 0) { /* EOF or hang-up: the container goes on */
			pf_watch_drop(ep, &l->w_in);
			l->in_eof = true;
			return;
		}
		l->input_len = (size_t)r;
		l->input_off = 0;
	} else if (w == &l->w_master && l->w_master.fd >= 0) {
		if (e & EPOLLOUT && l->input_len)
			pass_input(l->master, l->input, &l->input_off, &l->input_len);
		if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			ssize_t r = read(l->master, obuf, sizeof(obuf));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				return;
			if (r <= 0) {
				/* EIO: nothing holds the slave any more; wait
				 * for the container's end. */
				pf_watch_drop(ep, &l->w_master);
				l->input_len = 0;
				return;
			}
			if (l->out_ok && write_all(l->out, obuf, (size_t)r) < 0)
				l->out_ok = false; /* keep reading: never block it */
		}
	}
}

/* Detached containers: socket directory and protocol. */

int pf_pty_socket_path(uid_t owner, pid_t pid, bool create, char *buf, size_t size,
		       struct pf_error *err)
{
	/* The registry's directory: a private one, since somebody else's
	 * directory in /tmp would let them replace our socket with theirs. */
	char dir[PATH_MAX];
	if (pf_state_dir(owner, create, dir, sizeof(dir), err) < 0)
		return -1;
	if ((size_t)snprintf(buf, size, "%s/%d.sock", dir, (int)pid) >= size)
		return pf_error_set(err, ENAMETOOLONG, "socket path too long");
	return 0;
}

static int unix_address(const char *path, struct sockaddr_un *sa, struct pf_error *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return pf_error_set(err, ENAMETOOLONG, "socket path too long: %s", path);
	strcpy(sa->sun_path, path);
	return 0;
}

int pf_pty_listen(const char *path, struct pf_error *err)
{
	struct sockaddr_un sa;
	if (unix_address(path, &sa, err) < 0)
		return -1;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return pf_error_errno(err, errno, "socket");
	unlink(path); /* a pid is unique among live processes: a stale one */
	mode_t old = umask(0077);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return pf_error_errno(err, errno, "bind %s", path);
	if (listen(fd, 4) < 0)
		return pf_error_errno(err, errno, "listen on %s", path);
	return take_fd(fd);
}

int pf_pty_daemonize(int *ret_report_fd, pid_t *ret_pid, int *ret_status,
		     struct pf_error *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return pf_error_errno(err, errno, "pipe");
	fflush(NULL);
	pid_t daemon = fork();
	if (daemon < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return pf_error_errno(err, e, "fork the detached supervisor");
	}
	if (daemon == 0) {
		close(fds[0]);
		setsid();
		prctl(PR_SET_NAME, "pflask-detach", 0, 0, 0);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			close(null);
		}
		*ret_report_fd = fds[1];
		return 0;
	}
	close(fds[1]);
	char buf[32];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		/* Up to the newline, not end-of-file: the container's pid 1
		 * inherited the pipe too. */
		if (n <= 0 || (len += (size_t)n) == sizeof(buf) - 1 || memchr(buf, '\n', len))
			break;
	}
	close(fds[0]);
	buf[len] = '\0';
	*ret_pid = (pid_t)atoi(buf);
	*ret_status = 0;
	if (*ret_pid <= 0) {
		/* It failed and said why on the stderr we share. */
		int wstatus;
		while (waitpid(daemon, &wstatus, 0) < 0)
			if (errno != EINTR)
				return pf_error_errno(err, errno, "wait for the detached supervisor");
		*ret_pid = 0;
		*ret_status = pf_process_exit_status(wstatus);
		if (*ret_status == 0)
			*ret_status = 125; /* ended without reporting a container */
	}
	return 1;
}

int pf_pty_detached(int report_fd, pid_t pid, struct pf_error *err)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	int r = write_all(report_fd, buf, (size_t)len);
	int e = errno;
	close(report_fd);
	if (r < 0)
		return pf_error_errno(err, e, "report the container's pid");
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 2);
		close(null);
	}
	return 0;
}


static int send_record(int sock, char type, const void *data, size_t len)
{
	char rec[REC_MAX];
	rec[0] = type;
	memcpy(rec + 1, data, len);
	for (;;) {
		ssize_t n = send(sock, rec, len + 1, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Blocking send for the few control records of a non-blocking socket. */
static int send_record_wait(int sock, char type, const void *data, size_t len)
{
	for (int tries = 0; tries < 50; tries++) {
		if (send_record(sock, type, data, len) == 0)
			return 0;
		if (errno != EAGAIN)
			return -1;
		struct pollfd p = { .fd = sock, .events = POLLOUT };
		poll(&p, 1, 100);
	}
	return -1;
}


static void ring_put(struct ring *r, const char *buf, size_t n)
{
	if (n >= PF_PTY_RING) {
		memcpy(r->data, buf + n - PF_PTY_RING, PF_PTY_RING);
		r->start = 0;
		r->len = PF_PTY_RING;
		return;
	}
	size_t end = (r->start + r->len) % PF_PTY_RING;
	size_t first = n < PF_PTY_RING - end ? n : PF_PTY_RING - end;
	memcpy(r->data + end, buf, first);
	memcpy(r->data, buf + first, n - first);
	r->len += n;
	if (r->len > PF_PTY_RING) {
		r->start = (r->start + r->len - PF_PTY_RING) % PF_PTY_RING;
		r->len = PF_PTY_RING;
	}
}

static void sink_ring(void *ctx, const char *buf, size_t n)
{
	struct pf_pty_loop *s = ctx;
	ring_put(&s->ring, buf, n);
	if (s->client >= 0)
		send_record_wait(s->client, REC_DATA, buf, n);
}

static void drop_client(struct pf_pty_loop *s, int ep)
{
	pf_watch_drop(ep, &s->w_client);
	if (s->client >= 0)
		close(s->client);
	s->client = -1;
	s->pending_len = 0;
	s->input_len = 0;
}

static void refuse(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(int fd, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_record_wait(fd, REC_ERROR, msg, strlen(msg));
	close(fd);
}

/* A new client: check who it is, welcome it, show the ring. */
static void accept_client(struct pf_pty_loop *s)
{
	int fd = accept4(s->w_listen.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return;
	}
	if (cred.uid != s->owner && cred.uid != 0)
		return refuse(fd, "container %d belongs to uid %u, not to uid %u: permission denied",
			      (int)s->pid, (unsigned)s->owner, (unsigned)cred.uid);
	if (s->client >= 0)
		return refuse(fd, "container %d already has a client attached (pid %d); detach it first with Ctrl-@",
			      (int)s->pid, (int)cred.pid);
	if (send_record_wait(fd, REC_HELLO, "", 0) < 0) {
		close(fd);
		return;
	}
	/* The ring, oldest first, in record-sized pieces. */
	size_t done = 0;
	while (done < s->ring.len) {
		size_t at = (s->ring.start + done) % PF_PTY_RING;
		size_t n = s->ring.len - done;
		if (n > PF_PTY_RING - at)
			n = PF_PTY_RING - at;
		if (send_record_wait(fd, REC_DATA, s->ring.data + at, n) < 0) {
			close(fd);
			return;
		}
		done += n;
	}
	s->client = fd;
	s->w_client.fd = fd;
	s->w_client.events = 0;
}

static int serve_arm(struct pf_pty_loop *s, int ep, struct pf_error *err)
{
	/* Back-pressure only towards an attached client, like a terminal;
	 * with nobody attached master is always read. */
	uint32_t me = (s->pending_len ? 0 : EPOLLIN) | (s->input_len ? EPOLLOUT : 0);
	uint32_t ce = (s->input_len ? 0 : EPOLLIN) | (s->pending_len ? EPOLLOUT : 0);
	if (pf_watch_set(ep, &s->w_listen, EPOLLIN) < 0 || pf_watch_set(ep, &s->w_master, me) < 0 ||
	    pf_watch_set(ep, &s->w_client, ce) < 0)
		return pf_error_errno(err, errno, "epoll_ctl");
	return 0;
}

static void serve_ready(struct pf_pty_loop *s, int ep, struct pf_watch *w, uint32_t e)
{
	static char buf[REC_MAX];
	if (w == &s->w_listen && s->w_listen.fd >= 0) {
		accept_client(s);
	} else if (w == &s->w_master && s->w_master.fd >= 0) {
		if (e & EPOLLOUT && s->input_len)
			pass_input(s->master, s->input, &s->input_off, &s->input_len);
		if (!(e & (EPOLLIN | EPOLLHUP | EPOLLERR)) || s->pending_len)
			return;
		ssize_t r = read(s->master, buf + 1, BUF_SIZE);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (r <= 0) {
			pf_watch_drop(ep, &s->w_master);
			s->input_len = 0;
			return;
		}
		ring_put(&s->ring, buf + 1, (size_t)r);
		if (s->client >= 0 && send_record(s->client, REC_DATA, buf + 1, (size_t)r) < 0) {
			if (errno == EAGAIN) {
				buf[0] = REC_DATA;
				memcpy(s->pending, buf, (size_t)r + 1);
				s->pending_len = (size_t)r + 1;
			} else {
				drop_client(s, ep);
			}
		}
	} else if (w == &s->w_client && s->client >= 0) {
		if (e & EPOLLOUT && s->pending_len) {
			ssize_t r = send(s->client, s->pending, s->pending_len, MSG_NOSIGNAL);
			if (r >= 0)
				s->pending_len = 0;
			else if (errno != EAGAIN && errno != EINTR)
				drop_client(s, ep);
		}
		if (s->client < 0 || !(e & (EPOLLIN | EPOLLHUP | EPOLLERR)) || s->input_len)
			return;
		ssize_t r = recv(s->client, buf, sizeof(buf), 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (r <= 0) { /* the client detached */
			drop_client(s, ep);
			return;
		}
		if (buf[0] == REC_DATA && r > 1 && s->w_master.fd >= 0) {
			memcpy(s->input, buf + 1, (size_t)r - 1);
			s->input_len = (size_t)r - 1;
			s->input_off = 0;
		} else if (buf[0] == REC_WINSIZE && r == 1 + sizeof(struct winsize)) {
			ioctl(s->master, TIOCSWINSZ, (struct winsize *)(buf + 1));
		}
	}
}

int pf_pty_loop_arm(struct pf_pty_loop *l, int ep, struct pf_error *err)
{
	return l->server ? serve_arm(l, ep, err) : relay_arm(l, ep, err);
}

void pf_pty_loop_ready(struct pf_pty_loop *l, int ep, struct pf_watch *w, uint32_t events)
{
	if (l->server)
		serve_ready(l, ep, w, events);
	else
		relay_ready(l, ep, w, events);
}

void pf_pty_loop_winch(struct pf_pty_loop *l)
{
	if (!l->server && l->winsize_from >= 0 && l->w_master.fd >= 0)
		pf_pty_copy_winsize(l->winsize_from, l->master);
}

static void leave(struct pf_pty_loop *l, int ep)
{
	pf_watch_drop(ep, &l->w_in);
	pf_watch_drop(ep, &l->w_listen);
	pf_watch_drop(ep, &l->w_client);
}

void pf_pty_loop_end(struct pf_pty_loop *l, int ep, int wstatus)
{
	release_slave(l->slave);
	bool master_open = l->w_master.fd >= 0;
	pf_watch_drop(ep, &l->w_master);
	leave(l, ep);
	if (!l->server) {
		if (master_open)
			drain(l->master, l->out_ok ? l->out : -1, NULL, NULL);
		return;
	}
	if (master_open) {
		if (l->pending_len && l->client >= 0)
			send_record_wait(l->client, REC_DATA, l->pending + 1, l->pending_len - 1);
		drain(l->master, -1, sink_ring, l);
	}
	if (l->client >= 0) {
		int32_t ws = wstatus;
		send_record_wait(l->client, REC_EXIT, &ws, sizeof(ws));
		close(l->client);
		l->client = -1;
	}
}

void pf_pty_loop_free(struct pf_pty_loop *l, int ep)
{
	if (!l)
		return;
	pf_watch_drop(ep, &l->w_master);
	leave(l, ep);
	if (l->client >= 0)
		close(l->client);
	free(l);
}


/* The uid owning the supervisor of container pid (its parent), from /proc. */
static int container_owner(pid_t pid, uid_t *ret_owner)
{
	char path[64], stat_line[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, stat_line, sizeof(stat_line) - 1);
	if (n <= 0)
		return -1;
	stat_line[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
	char *p = strrchr(stat_line, ')');
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1 || ppid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d", ppid);
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	*ret_owner = st.st_uid;
	return 0;
}

int pf_pty_connect(pid_t pid, struct pf_error *err)
{
	uid_t owner;
	char path[108];
	if (container_owner(pid, &owner) < 0 ||
	    pf_pty_socket_path(owner, pid, false, path, sizeof(path), NULL) < 0)
		return pf_error_set(err, ENOENT, "no detached container with pid %d", (int)pid);
	struct sockaddr_un sa;
	if (unix_address(path, &sa, err) < 0)
		return -1;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pf_error_errno(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EACCES || errno == EPERM)
			return pf_error_set(err, EPERM, "container %d belongs to uid %u: permission denied",
					    (int)pid, (unsigned)owner);
		return pf_error_set(err, ENOENT, "no detached container with pid %d", (int)pid);
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) <= 0)
		return pf_error_set(err, ETIMEDOUT, "container %d does not answer", (int)pid);
	char rec[512];
	ssize_t n = recv(fd, rec, sizeof(rec) - 1, 0);
	if (n > 0 && rec[0] == REC_HELLO)
		return take_fd(fd);
	if (n > 0 && rec[0] == REC_ERROR) {
		rec[n] = '\0';
		return pf_error_set(err, strstr(rec, "already") ? EBUSY : EPERM, "%s", rec + 1);
	}
	return pf_error_set(err, ENOENT, "no detached container with pid %d", (int)pid);
}

static void send_winsize(int sock, int from)
{
	struct winsize ws;
	if (from >= 0 && ioctl(from, TIOCGWINSZ, &ws) == 0)
		send_record(sock, REC_WINSIZE, &ws, sizeof(ws));
}

int pf_pty_attach(int sock, int in, int out, int winsize_from, int *ret_wstatus,
		  struct pf_error *err)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
		return pf_error_errno(err, errno, "block signals");
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
	sigaction(SIGPIPE, &ign, &old_pipe);
	int ret = -1;
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct pf_watch w_sig = { sfd, 0, PF_WATCH_SIGNAL, NULL }, w_in = { in, 0, PF_WATCH_PTY, NULL },
			w_sock = { sock, 0, PF_WATCH_PTY, NULL };
	/* in_direct: in is read without epoll (a regular file, always
	 * ready); input waits in buf until the socket takes it, so that a
	 * file as fast as the disk never blocks the output coming back. */
	bool in_direct = false, in_eof = in < 0;
	static char ibuf[REC_MAX];
	size_t ilen = 0;
	if (sfd < 0 || ep < 0 || pf_watch_set(ep, &w_sig, EPOLLIN) < 0) {
		pf_error_errno(err, errno, "set up the relay");
		goto out;
	}
	send_winsize(sock, winsize_from);

	static char buf[REC_MAX];
	for (;;) {
		if (in_direct && !in_eof && ilen == 0) {
			ssize_t r;
			do
				r = read(in, ibuf + 1, BUF_SIZE);
			while (r < 0 && errno == EINTR);
			if (r <= 0) {
				in_eof = true;
			} else {
				char *nul = memchr(ibuf + 1, 0, (size_t)r);
				ilen = nul ? (size_t)(nul - (ibuf + 1)) : (size_t)r;
				if (nul) {
					/* Ctrl-@ in the file: send what precedes it, then detach. */
					if (ilen)
						send_record(sock, REC_DATA, ibuf + 1, ilen);
					ret = PF_ATTACH_DETACHED;
					goto out;
				}
			}
		}
		if (!in_direct && !in_eof && pf_watch_set(ep, &w_in, EPOLLIN) < 0) {
			if (errno != EPERM) {
				pf_error_errno(err, errno, "epoll_ctl");
				goto out;
			}
			w_in.fd = -1;
			in_direct = true; /* a regular file */
			continue;
		}
		if (pf_watch_set(ep, &w_sock, EPOLLIN | (ilen ? EPOLLOUT : 0)) < 0) {
			pf_error_errno(err, errno, "epoll_ctl");
			goto out;
		}
		struct epoll_event evs[3];
		int n = epoll_wait(ep, evs, 3, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pf_error_errno(err, errno, "epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct pf_watch *w = evs[i].data.ptr;
			if (w == &w_sig) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					if (si.ssi_signo == SIGWINCH) {
						send_winsize(sock, winsize_from);
					} else {
						ret = PF_ATTACH_DETACHED;
						goto out;
					}
				}
			} else if (w == &w_in && w_in.fd >= 0) {
				ssize_t r = read(in, buf + 1, BUF_SIZE);
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (r <= 0) {
					pf_watch_drop(ep, &w_in);
					in_eof = true;
					continue;
				}
				char *nul = memchr(buf + 1, 0, (size_t)r);
				size_t len = nul ? (size_t)(nul - (buf + 1)) : (size_t)r;
				/* Blocking socket: a busy container slows typing, as
				 * on a terminal. */
				if (len && send_record(sock, REC_DATA, buf + 1, len) < 0) {
					pf_error_errno(err, errno, "send to the container");
					goto out;
				}
				if (nul) {
					ret = PF_ATTACH_DETACHED;
					goto out;
				}
			} else if (w == &w_sock) {
				if ((evs[i].events & EPOLLOUT) && ilen) {
					ibuf[0] = REC_DATA;
					ssize_t r = send(sock, ibuf, ilen + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
					if (r >= 0)
						ilen = 0;
					else if (errno != EAGAIN && errno != EINTR) {
						pf_error_errno(err, errno, "send to the container");
						goto out;
					}
				}
				if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					continue;
				ssize_t r = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (r <= 0) {
					pf_error_set(err, ECONNRESET, "the detached supervisor went away");
					goto out;
				}
				if (buf[0] == REC_DATA) {
					if (write_all(out, buf + 1, (size_t)r - 1) < 0) {
						pf_error_errno(err, errno, "write output");
						goto out;
					}
				} else if (buf[0] == REC_EXIT && r == 1 + (ssize_t)sizeof(int32_t)) {
					int32_t ws;
					memcpy(&ws, buf + 1, sizeof(ws));
					*ret_wstatus = ws;
					ret = PF_ATTACH_EXITED;
					goto out;
				}
			}
		}
	}
out:
	if (ep >= 0)
		close(ep);
	if (sfd >= 0)
		close(sfd);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}
