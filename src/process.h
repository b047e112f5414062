/* Processes: exec with an explicit environment, waiting with signal
 * forwarding, and the minimal init that is pid 1 of a container. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* The signals a supervisor passes on to the container: SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH. */
void pf_process_forwarded_signals(sigset_t *set);

/* Block the forwarded signals and SIGCHLD, so that none is lost or kills the
 * supervisor between clone and wait; they are read with signalfd. Counted:
 * pf_process_unblock_signals restores the original mask after the last
 * matching call. Parent side. */
int pf_process_block_signals(struct pf_error *err);
void pf_process_unblock_signals(void);

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

/* Child: execute file with argv and envp. A file without '/' is searched in
 * the PATH of envp (not of the current environment), defaulting to
 * /usr/local/bin:/usr/bin:/bin. Clears the signal mask first, so the
 * command does not inherit the supervisor's blocked signals. Returns only on
 * failure, with err set and *ret_status set to 127 (not found) or 126
 * (cannot execute). An entry of envp that is exactly "LISTEN_PID=" is
 * given the pid of the process that execs (socket activation: the pid the
 * command has in its own pid namespace, known only there). */
int pf_process_exec(const char *file, char *const argv[], char *const envp[],
		    int *ret_status, struct pf_error *err);

/* Exit status of a wait(2) status, as shells report it: the exit code, or
 * 128+N for a process killed by signal N. */
int pf_process_exit_status(int wstatus);

/* Parent: wait for child pid to end while passing the forwarded signals
 * on to it: those sent to us by other processes, and those the terminal
 * sent (Ctrl-C) when pid is in a session of its own, as every container
 * is (in our session they already reached the whole foreground process
 * group, so they are not sent twice). translate, if not NULL, maps a received signal to the one sent
 * (index by signal number, 0 = unchanged). Requires
 * pf_process_block_signals. Stores the wait(2) status. */
int pf_process_wait(pid_t pid, const int *translate, int *ret_wstatus,
		    struct pf_error *err);

/* Child, as pid 1 of a pid namespace: fork. The new child returns 0 and goes
 * on to exec the command. The caller stays behind as a minimal init: it
 * closes keep_fd_to_close (its copy of the sync channel, so the parent sees
 * end-of-file when the command execs), forwards signals to the command,
 * reaps every zombie, and when the command ends _exits with its status
 * (128+N if it was killed by signal N). Init keeps no fd from 3 up but its
 * own signalfd. Returns -1 only if fork fails. */
pid_t pf_process_fork_reaper(int fd_to_close, struct pf_error *err);

/* Child, as pid 1 of a pid namespace, once everything else is set up (user,
 * capabilities, working directory): start the command, which execs file as
 * pf_process_exec does, and stay behind as its init, as
 * pf_process_fork_reaper does. Cheaper than that fork: the command is
 * started with CLONE_VM|CLONE_VFORK, so no page of the caller is copied. An
 * exec failure is reported by the command itself on sync_fd (status 126 or
 * 127), and init then exits with that status. Once the command started,
 * init closes every fd from 3 up but its own signalfd (what the command
 * inherits on purpose is not init's to hold). Returns -1 only if the
 * command cannot be started at all; never returns otherwise. */
int pf_process_exec_reaped(const char *file, char *const argv[], char *const envp[],
			   int sync_fd, struct pf_error *err);
