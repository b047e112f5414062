/* Processes: exec with an explicit environment, waiting with signal
 * forwarding, and the minimal init that is pid 1 of a container. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct pf_exec_plan;

/* The signals a supervisor passes on to the container: SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH. */
void pf_process_forwarded_signals(sigset_t *set);

/* Before clone: catch the forwarded signals (a handler notes each, see
 * pf_process_take_signal) for as long as this process has children to
 * pass them on to, and block them and SIGCHLD until
 * pf_process_signals_cloned, so that the child starts with them blocked
 * and the parent's own steps run undisturbed.
 * Counted per process: pf_process_unblock_signals, once it is reaped (or
 * the clone failed), and after the last one the signals act as before.
 * Parent side. */
int pf_process_block_signals(struct pf_error *err);
/* Parent, once the child runs (its parent steps done): the mask as it
 * was (what arrived meanwhile reaches the handler). Idempotent. */
void pf_process_signals_cloned(void);
void pf_process_unblock_signals(void);

/* How a forwarded signal came: sent by a process (kill, sigqueue), or by
 * the kernel (the terminal's Ctrl-C); both when it came twice. */
#define PF_SIGNAL_FROM_PROCESS 1u
#define PF_SIGNAL_FROM_KERNEL 2u

/* The read end of the pipe the handler writes a byte to for each signal it
 * notes (non-blocking, close-on-exec), for epoll; -1 when no handler is
 * installed. */
int pf_process_signal_fd(void);

/* Take one noted signal: returns its number and stores how it came in
 * *ret_from, or returns 0 when none is noted. */
int pf_process_take_signal(unsigned *ret_from);
/* Empty the pipe (once epoll says it is readable; then take the signals). */
void pf_process_drain_signal_fd(void);

/* Parent, before forking a child that must die with it: a pidfd of the
 * calling process (close-on-exec), for pf_process_die_with_parent. */
int pf_process_open_self(struct pf_error *err);

/* Child: have the kernel SIGKILL us when the parent dies, so a supervisor
 * killed with SIGKILL takes its container down. parent_fd is the pidfd
 * pf_process_open_self made in the parent before the fork (or -1); the
 * child keeps it to detect a parent that died before the signal was armed
 * (then it fails with ESRCH). */
int pf_process_die_with_parent(int parent_fd, struct pf_error *err);

/* Child: arm the parent death signal again, unconditionally, and fail with
 * ESRCH if the parent is already gone. Every credential change (setresuid,
 * setresgid, capability sets) must be followed by it: the kernel clears
 * the signal when the effective or filesystem ids change. */
int pf_process_rearm_parent_death(struct pf_error *err);

/* Child, right before exec: close every fd from 3 up except the n fds of
 * pass, which lose FD_CLOEXEC so that the command inherits them at their
 * numbers, and keep_fd (-1: none; the sync channel, which stays
 * close-on-exec). The supervisor's pidfd (pf_process_die_with_parent) is
 * let go of too: no credential change, so no re-arming, comes after this.
 * close_range(2), or /proc/self/fd where the kernel lacks it. */
int pf_process_close_fds(const int *pass, size_t n, int keep_fd, struct pf_error *err);

/* pf_process_close_fds with n_keep fds kept close-on-exec (-1 entries
 * ignored). */
int pf_process_close_fds_keep(const int *pass, size_t n, const int *keep, size_t n_keep,
			      struct pf_error *err);

/* Child: run plan (the exec plan, see exec.h; NULL: none; sync_fd is
 * where it reports "created" before a start FIFO, or -1), then execute
 * file with argv and envp. A file without '/' is searched in
 * the PATH of envp (not of the current environment), defaulting to
 * /usr/local/bin:/usr/bin:/bin. Clears the signal mask first, so the
 * command does not inherit the supervisor's blocked signals. Returns only on
 * failure, with err set and *ret_status set to 127 (not found) or 126
 * (cannot execute). An entry of envp that is exactly "LISTEN_PID=" is
 * given the pid of the process that execs (socket activation: the pid the
 * command has in its own pid namespace, known only there). */
int pf_process_exec(const char *file, char *const argv[], char *const envp[],
		    const struct pf_exec_plan *plan, int sync_fd, int *ret_status, struct pf_error *err);

/* Exit status of a wait(2) status, as shells report it: the exit code, or
 * 128+N for a process killed by signal N. */
int pf_process_exit_status(int wstatus);

/* Child, as pid 1 of a pid namespace: fork. The new child returns 0 and goes
 * on to exec the command. The caller stays behind as a minimal init: it
 * closes keep_fd_to_close (its copy of the sync channel, so the parent sees
 * end-of-file when the command execs), forwards signals to the command,
 * reaps every zombie, and when the command ends _exits with its status
 * (128+N if it was killed by signal N). Init keeps no fd from 3 up but its
 * own signalfd. Returns -1 only if fork fails. */
pid_t pf_process_fork_reaper(int fd_to_close, struct pf_error *err);

/* Note where the heap ends when main() starts: init (the two functions
 * around this one) then gives back the heap pages malloc took later, the
 * Lua state it will never use. Without it (pflask.core loaded by another
 * program) init keeps them. */
void pf_process_note_heap_start(void);

/* Child, as pid 1 of a pid namespace, once everything else is set up (user,
 * capabilities, working directory): start the command, which runs plan
 * (the exec plan: in the command only, never in init) and execs file as
 * pf_process_exec does, and stay behind as its init, as
 * pf_process_fork_reaper does. Cheaper than that fork: the command is
 * started with CLONE_VM|CLONE_VFORK, so no page of the caller is copied. An
 * exec failure is reported by the command itself on sync_fd (status 126 or
 * 127), and init then exits with that status. Once the command started,
 * init closes every fd from 3 up but its own signalfd (what the command
 * inherits on purpose is not init's to hold). Returns -1 only if the
 * command cannot be started at all; never returns otherwise. */
int pf_process_exec_reaped(const char *file, char *const argv[], char *const envp[],
			   const struct pf_exec_plan *plan, int sync_fd, struct pf_error *err);

/* Supervisor: how sig acts while no process of ours runs. Set now when
 * none runs; otherwise kept for when the last one is reaped (the
 * supervisor's own handlers serve sig until then). */
void pf_process_set_idle_action(int sig, const struct sigaction *sa);
