/* The supervisor loop: one epoll over everything a supervisor waits on
 * (its children's pidfds, the forwarded signals, the ptys it relays or
 * serves and their clients), driven one event at a time. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* An fd in the loop's epoll: data.ptr is the watch, kind says whose. */
enum pf_watch_kind { PF_WATCH_SIGNAL, PF_WATCH_PROCESS, PF_WATCH_PTY };
struct pf_watch {
	int fd;          /* -1: none */
	uint32_t events; /* registered interest, 0: not registered */
	enum pf_watch_kind kind;
	void *owner;
};

/* Register, change or (events 0) remove the interest of w in epoll ep;
 * calls epoll_ctl only when it changes. -1 with errno set on failure. */
int pf_watch_set(int ep, struct pf_watch *w, uint32_t events);
/* Remove w from ep and forget its fd. */
void pf_watch_drop(int ep, struct pf_watch *w);

struct pf_sup;
struct pf_pty_loop;

enum pf_sup_event_type { PF_SUP_EXIT, PF_SUP_SIGNAL, PF_SUP_TIMEOUT };
struct pf_sup_event {
	enum pf_sup_event_type type;
	pid_t pid;   /* PF_SUP_EXIT: the process that ended, now reaped */
	int wstatus; /* PF_SUP_EXIT: its wait(2) status */
	int signo;   /* PF_SUP_SIGNAL: the signal received (already passed on) */
};

/* A new loop (one per process is enough: it holds every child). */
int pf_sup_new(struct pf_sup **ret, struct pf_error *err);
/* Close its fds and free it; the children are left as they are. */
void pf_sup_free(struct pf_sup *sup);
/* In a process forked since: free the copy without touching the epoll,
 * which the fork shares with the process that made it (removing a watch
 * there would remove the other process's). */
void pf_sup_abandon(struct pf_sup *sup);

/* Watch child pid (of this process, not reaped yet): its pidfd in the
 * loop; the signals pflask receives are passed on to it from now on. */
int pf_sup_add(struct pf_sup *sup, pid_t pid, struct pf_error *err);
/* Stop watching pid (reaped outside the loop): its pty relay or server is
 * freed without draining. If the loop had already reaped it, returns
 * true with its status in *ret_wstatus (and drops that exit event). */
bool pf_sup_forget(struct pf_sup *sup, pid_t pid, int *ret_wstatus);
/* The signals to send pid instead of those received (index by signal
 * number, 0 = unchanged); NULL: none. */
int pf_sup_translate(struct pf_sup *sup, pid_t pid, const int *translate);
/* Relay or serve (struct pf_pty_loop from pf_pty_relay_new or
 * pf_pty_serve_new, which the loop then owns) the pty of pid: its fds join
 * the loop; when pid ends the pty is drained before its exit event. */
int pf_sup_attach_pty(struct pf_sup *sup, pid_t pid, struct pf_pty_loop *pty, struct pf_error *err);
/* Is pid watched, and its exit not reported yet by pf_sup_step? */
bool pf_sup_has(struct pf_sup *sup, pid_t pid);

/* Run the loop until one event: a watched process ended (it is reaped,
 * after its pty was drained), a forwarded signal arrived (it was passed on
 * to every watched process first: those sent by a process always, the
 * terminal's own to a process in another session; SIGWINCH resizes a
 * relayed pty instead), or timeout_ms passed (-1: never). Meanwhile the
 * ptys are relayed and served. */
int pf_sup_step(struct pf_sup *sup, int timeout_ms, struct pf_sup_event *ev,
		struct pf_error *err);

/* Send sig to every watched process, through its translate table when
 * translate is set. Returns how many it was sent to. */
int pf_sup_signal_all(struct pf_sup *sup, int sig, bool translate);
