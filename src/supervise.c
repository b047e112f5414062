#define _GNU_SOURCE
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process.h"
#include "pty.h"

/* Without pidfd_open (Linux before 5.3), a child is polled this often. */
#define POLL_CHILD_MS 50

int pf_watch_set(int ep, struct pf_watch *w, uint32_t events)
{
	if (w->fd < 0 || w->events == events)
		return 0;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	int op = w->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(ep, op, w->fd, &ev) < 0)
		return -1;
	w->events = events;
	return 0;
}

void pf_watch_drop(int ep, struct pf_watch *w)
{
	pf_watch_set(ep, w, 0);
	w->fd = -1;
}

struct proc {
	pid_t pid;
	struct pf_watch w; /* the pidfd; fd -1 without pidfd_open */
	bool dead;         /* reaped: freed once the events at hand are handled */
	bool translated;
	int translate[NSIG];
	struct pf_pty_loop *pty;
	struct proc *next;
};

struct exit_event {
	pid_t pid;
	int wstatus;
};

struct pf_sup {
	int ep;
	struct pf_watch w_sig;
	struct proc *procs;
	/* Processes reaped, not reported yet (one event per step). */
	struct exit_event *exits;
	size_t n_exits, cap_exits;
};

int pf_sup_new(struct pf_sup **ret, struct pf_error *err)
{
	struct pf_sup *sup = calloc(1, sizeof(*sup));
	if (!sup)
		return pf_error_errno(err, ENOMEM, "supervisor");
	sup->ep = epoll_create1(EPOLL_CLOEXEC);
	if (sup->ep < 0) {
		int e = errno;
		free(sup);
		return pf_error_errno(err, e, "epoll");
	}
	sup->w_sig = (struct pf_watch){ .fd = -1, .kind = PF_WATCH_SIGNAL };
	*ret = sup;
	return 0;
}

static void free_proc(struct pf_sup *sup, struct proc *p)
{
	pf_pty_loop_free(p->pty, sup->ep);
	if (p->w.fd >= 0) {
		int fd = p->w.fd;
		pf_watch_drop(sup->ep, &p->w);
		close(fd);
	}
	free(p);
}

void pf_sup_free(struct pf_sup *sup)
{
	if (!sup)
		return;
	while (sup->procs) {
		struct proc *p = sup->procs;
		sup->procs = p->next;
		free_proc(sup, p);
	}
	close(sup->ep);
	free(sup->exits);
	free(sup);
}

void pf_sup_abandon(struct pf_sup *sup)
{
	if (!sup)
		return;
	while (sup->procs) {
		struct proc *p = sup->procs;
		sup->procs = p->next;
		/* ep -1: no epoll_ctl on the epoll we share with the parent. */
		pf_pty_loop_free(p->pty, -1);
		if (p->w.fd >= 0)
			close(p->w.fd);
		free(p);
	}
	close(sup->ep);
	free(sup->exits);
	free(sup);
}

static struct proc *find(struct pf_sup *sup, pid_t pid)
{
	for (struct proc *p = sup->procs; p; p = p->next)
		if (p->pid == pid && !p->dead)
			return p;
	return NULL;
}

bool pf_sup_has(struct pf_sup *sup, pid_t pid)
{
	if (find(sup, pid))
		return true;
	/* Reaped with others in one go, its exit event not returned yet. */
	for (size_t i = 0; i < sup->n_exits; i++)
		if (sup->exits[i].pid == pid)
			return true;
	return false;
}

int pf_sup_add(struct pf_sup *sup, pid_t pid, struct pf_error *err)
{
	if (find(sup, pid))
		return 0;
	struct proc *p = calloc(1, sizeof(*p));
	if (!p)
		return pf_error_errno(err, ENOMEM, "watch process %d", (int)pid);
	p->pid = pid;
	p->w = (struct pf_watch){ .fd = -1, .kind = PF_WATCH_PROCESS, .owner = p };
	/* Our child, not reaped: its pid cannot name another process yet, so
	 * the pidfd is the child's. */
	int fd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec, always */
	if (fd >= 0) {
		p->w.fd = fd;
		if (pf_watch_set(sup->ep, &p->w, EPOLLIN) < 0) {
			int e = errno;
			close(fd);
			free(p);
			return pf_error_errno(err, e, "watch process %d", (int)pid);
		}
	} else if (errno != ENOSYS) {
		int e = errno;
		free(p);
		return pf_error_errno(err, e, "pidfd_open %d", (int)pid);
	}
	p->next = sup->procs;
	sup->procs = p;
	return 0;
}

static void unlink_proc(struct pf_sup *sup, struct proc *p)
{
	for (struct proc **pp = &sup->procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

bool pf_sup_forget(struct pf_sup *sup, pid_t pid, int *ret_wstatus)
{
	struct proc *p = find(sup, pid);
	if (p) {
		unlink_proc(sup, p);
		free_proc(sup, p);
	}
	for (size_t i = 0; i < sup->n_exits; i++) {
		if (sup->exits[i].pid != pid)
			continue;
		*ret_wstatus = sup->exits[i].wstatus;
		memmove(sup->exits + i, sup->exits + i + 1, (sup->n_exits - i - 1) * sizeof(*sup->exits));
		sup->n_exits--;
		return true;
	}
	return false;
}

int pf_sup_translate(struct pf_sup *sup, pid_t pid, const int *translate)
{
	struct proc *p = find(sup, pid);
	if (!p)
		return -1;
	p->translated = translate != NULL;
	if (translate)
		memcpy(p->translate, translate, sizeof(p->translate));
	return 0;
}

int pf_sup_attach_pty(struct pf_sup *sup, pid_t pid, struct pf_pty_loop *pty, struct pf_error *err)
{
	struct proc *p = find(sup, pid);
	if (!p) {
		pf_pty_loop_free(pty, sup->ep);
		return pf_error_set(err, ESRCH, "process %d is not watched", (int)pid);
	}
	pf_pty_loop_free(p->pty, sup->ep);
	p->pty = pty;
	return 0;
}

static int send_signal(struct proc *p, int sig, bool translate)
{
	if (translate && p->translated && p->translate[sig])
		sig = p->translate[sig];
	return kill(p->pid, sig);
}

int pf_sup_signal_all(struct pf_sup *sup, int sig, bool translate)
{
	int n = 0;
	for (struct proc *p = sup->procs; p; p = p->next)
		if (!p->dead && send_signal(p, sig, translate) == 0)
			n++;
	return n;
}

/* A forwarded signal, to every process: those another process sent us
 * always; the terminal's own (Ctrl-C) only to a process in a session of
 * its own, as every container is (in ours they already reached the whole
 * foreground process group, so they are not sent twice). SIGWINCH resizes
 * a relayed pty instead: the kernel signals the container's foreground
 * group then. */
static void pass_on(struct pf_sup *sup, int sig, unsigned from)
{
	pid_t our_sid = getsid(0);
	for (struct proc *p = sup->procs; p; p = p->next) {
		if (p->dead)
			continue;
		if (p->pty) {
			/* Its own terminal: nothing else signals it. */
			if (sig == SIGWINCH)
				pf_pty_loop_winch(p->pty);
			else
				send_signal(p, sig, true);
			continue;
		}
		if (!(from & PF_SIGNAL_FROM_PROCESS) && getsid(p->pid) == our_sid)
			continue;
		send_signal(p, sig, true);
	}
}

static int queue_exit(struct pf_sup *sup, pid_t pid, int wstatus)
{
	if (sup->n_exits == sup->cap_exits) {
		size_t cap = sup->cap_exits ? sup->cap_exits * 2 : 4;
		struct exit_event *e = realloc(sup->exits, cap * sizeof(*e));
		if (!e)
			return -1;
		sup->exits = e;
		sup->cap_exits = cap;
	}
	sup->exits[sup->n_exits++] = (struct exit_event){ pid, wstatus };
	return 0;
}

/* Reap p if it ended: drain its pty, queue its exit event. */
static int reap(struct pf_sup *sup, struct proc *p, struct pf_error *err)
{
	int wstatus;
	pid_t r;
	do
		r = waitpid(p->pid, &wstatus, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r < 0)
		return pf_error_errno(err, errno, "wait for %d", (int)p->pid);
	p->dead = true;
	if (p->pty)
		pf_pty_loop_end(p->pty, sup->ep, wstatus);
	if (queue_exit(sup, p->pid, wstatus) < 0)
		return pf_error_errno(err, ENOMEM, "wait for %d", (int)p->pid);
	return 0;
}

static void free_dead(struct pf_sup *sup)
{
	for (struct proc **pp = &sup->procs; *pp;) {
		struct proc *p = *pp;
		if (p->dead) {
			*pp = p->next;
			free_proc(sup, p);
		} else {
			pp = &p->next;
		}
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The pipe of the signal handler (process.c) in the epoll. It is made anew
 * when the handlers are installed again: a stale registration went with
 * the old pipe's close, so adding again is right, and EEXIST means it is
 * the same pipe. */
static int watch_signals(struct pf_sup *sup, struct pf_error *err)
{
	int fd = pf_process_signal_fd();
	if (fd < 0)
		return 0;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &sup->w_sig };
	if (epoll_ctl(sup->ep, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
		return pf_error_errno(err, errno, "epoll_ctl");
	sup->w_sig.fd = fd;
	return 0;
}

static int step(struct pf_sup *sup, int timeout_ms, struct pf_sup_event *ev, struct pf_error *err)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	if (watch_signals(sup, err) < 0)
		return -1;
	bool waited = false;
	for (;;) {
		/* Signals first: a SIGTERM reaches the others before the
		 * recipe hears that one of them ended. */
		unsigned from;
		int sig = pf_process_take_signal(&from);
		if (sig) {
			pass_on(sup, sig, from);
			*ev = (struct pf_sup_event){ .type = PF_SUP_SIGNAL, .signo = sig };
			return 0;
		}
		if (sup->n_exits) {
			*ev = (struct pf_sup_event){ .type = PF_SUP_EXIT, .pid = sup->exits[0].pid,
						     .wstatus = sup->exits[0].wstatus };
			memmove(sup->exits, sup->exits + 1, (sup->n_exits - 1) * sizeof(*sup->exits));
			sup->n_exits--;
			return 0;
		}
		if (waited && deadline >= 0 && now_ms() >= deadline) {
			*ev = (struct pf_sup_event){ .type = PF_SUP_TIMEOUT };
			return 0;
		}
		int wait_ms = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			wait_ms = left > 0 ? (int)(left < 0x7fffffff ? left : 0x7fffffff) : 0;
		}
		for (struct proc *p = sup->procs; p; p = p->next) {
			if (p->w.fd < 0 && (wait_ms < 0 || wait_ms > POLL_CHILD_MS))
				wait_ms = POLL_CHILD_MS;
			if (p->pty && pf_pty_loop_arm(p->pty, sup->ep, err) < 0)
				return -1;
		}
		struct epoll_event evs[16];
		int n = epoll_wait(sup->ep, evs, 16, wait_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return pf_error_errno(err, errno, "epoll_wait");
		}
		waited = true;
		int r = 0;
		for (int i = 0; i < n && r == 0; i++) {
			struct pf_watch *w = evs[i].data.ptr;
			if (w->kind == PF_WATCH_PROCESS) {
				struct proc *p = w->owner;
				if (!p->dead)
					r = reap(sup, p, err);
			} else if (w->kind == PF_WATCH_PTY) {
				pf_pty_loop_ready(w->owner, sup->ep, w, evs[i].events);
			} else {
				pf_process_drain_signal_fd(); /* taken at the top of the loop */
			}
		}
		for (struct proc *p = sup->procs; p && r == 0; p = p->next)
			if (p->w.fd < 0 && !p->dead)
				r = reap(sup, p, err);
		free_dead(sup);
		if (r < 0)
			return -1;
	}
}

int pf_sup_step(struct pf_sup *sup, int timeout_ms, struct pf_sup_event *ev,
		struct pf_error *err)
{
	/* A closed stdout must not kill the supervisor before it restored
	 * the terminal and reaped the container. */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
	sigaction(SIGPIPE, &ign, &old_pipe);
	int r = step(sup, timeout_ms, ev, err);
	sigaction(SIGPIPE, &old_pipe, NULL);
	return r;
}
