/* pflask.core: processes (handle, wait, kill), exec and the pid 1 reaper. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "l_exec.h"
#include "l_util.h"
#include "process.h"
#include "supervise.h"

#define PROCESS "pflask.Process"

struct process {
	pid_t pid;
	pid_t owner;  /* the process that may wait for it: a cloned child has a
		       * copy of this handle and must not kill its sibling */
	bool reaped;
	int wstatus;
};

/* Processes started and not yet reaped by this process. */
static unsigned live_processes;

unsigned pf_l_live_processes(void)
{
	return live_processes;
}

void pf_l_push_process(lua_State *L, pid_t pid)
{
	live_processes++;
	struct process *p = lua_newuserdatauv(L, sizeof(*p), 0);
	*p = (struct process){ .pid = pid, .owner = getpid() };
	luaL_setmetatable(L, PROCESS);
	pf_l_supervise_add(L, -1, pid);
}

static struct process *check_process(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, PROCESS);
}

static void mark_reaped(lua_State *L, struct process *p, int wstatus)
{
	pf_l_supervise_release(L, p->pid);
	p->reaped = true;
	p->wstatus = wstatus;
	live_processes--;
	pf_process_unblock_signals();
}

/* Push exit status, "exited"|"signaled", exit code or signal number. */
static int push_wait_result(lua_State *L, int wstatus)
{
	lua_pushinteger(L, pf_process_exit_status(wstatus));
	if (WIFSIGNALED(wstatus)) {
		lua_pushliteral(L, "signaled");
		lua_pushinteger(L, WTERMSIG(wstatus));
	} else {
		lua_pushliteral(L, "exited");
		lua_pushinteger(L, WEXITSTATUS(wstatus));
	}
	return 3;
}

void pf_l_check_translate(lua_State *L, int idx, int translate[])
{
	if (lua_isnoneornil(L, idx))
		return;
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_Integer from = luaL_checkinteger(L, -2);
		lua_Integer to = luaL_checkinteger(L, -1);
		luaL_argcheck(L, from > 0 && from < NSIG && to > 0 && to < NSIG, idx,
			      "signal numbers out of range");
		translate[from] = (int)to;
		lua_pop(L, 1);
	}
}

pid_t pf_l_process_pid(lua_State *L, int idx)
{
	struct process *p = check_process(L, idx);
	return p->reaped ? -1 : p->pid;
}

int pf_l_process_reaped(lua_State *L, int idx, int wstatus)
{
	struct process *p = check_process(L, idx);
	if (!p->reaped)
		mark_reaped(L, p, wstatus);
	return push_wait_result(L, p->wstatus);
}

/* proc:wait([translate]) -> status, "exited"|"signaled", code | fail
 * Waits for the process through the supervisor loop (core.supervisor),
 * which passes the signals pflask receives on to every process it
 * watches, this one through translate: a received signal number to the
 * one to send instead ({[SIGTERM] = SIGRTMIN+3} for systemd; kept for
 * later signals). status is the exit code or 128+N. Waiting again
 * returns the same result. */
static int process_wait(lua_State *L)
{
	struct process *p = check_process(L, 1);
	if (p->reaped)
		return push_wait_result(L, p->wstatus);
	if (!lua_isnoneornil(L, 2)) {
		int translate[NSIG] = { 0 };
		pf_l_check_translate(L, 2, translate);
		pf_sup_translate(pf_l_supervisor(L), p->pid, translate);
	}
	struct pf_error err = { 0 };
	if (pf_l_supervise_until(L, p->pid, &err) < 0)
		return pf_l_fail(L, &err);
	return push_wait_result(L, p->wstatus);
}

/* proc:kill([sig]) -> true | fail. SIGTERM by default. */
static int process_kill(lua_State *L)
{
	struct process *p = check_process(L, 1);
	int sig = (int)luaL_optinteger(L, 2, SIGTERM);
	if (p->reaped) {
		struct pf_error err;
		pf_error_errno(&err, ESRCH, "kill %d", (int)p->pid);
		return pf_l_fail(L, &err);
	}
	if (kill(p->pid, sig) < 0) {
		struct pf_error err;
		pf_error_errno(&err, errno, "kill %d", (int)p->pid);
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int process_pid(lua_State *L)
{
	lua_pushinteger(L, check_process(L, 1)->pid);
	return 1;
}

/* __close and __gc: a process nobody waited for is killed and reaped, so a
 * recipe that fails half-way leaves no container behind. */
static int process_close(lua_State *L)
{
	struct process *p = check_process(L, 1);
	if (p->reaped || p->owner != getpid())
		return 0;
	int wstatus = 0;
	if (!pf_l_supervise_forget(p->pid, &wstatus)) {
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &wstatus, 0) < 0 && errno == EINTR)
			;
	}
	mark_reaped(L, p, wstatus);
	return 0;
}

static int process_tostring(lua_State *L)
{
	struct process *p = check_process(L, 1);
	lua_pushfstring(L, "pflask.Process (pid %d%s)", (int)p->pid, p->reaped ? ", reaped" : "");
	return 1;
}

/* Environment for exec: an array of "NAME=value" strings, or a map
 * {NAME = "value"}. Lives in a userdata pushed on the stack, like argv. */
static char **check_environment(lua_State *L, int idx)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	if (luaL_len(L, idx) > 0)
		return pf_l_check_string_array(L, idx);

	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		n++;
		lua_pop(L, 1);
	}
	char **envp = lua_newuserdatauv(L, sizeof(char *) * (n + 1), 1);
	/* Keep the formatted strings alive in a table tied to the userdata. */
	lua_createtable(L, (int)n, 0);
	size_t i = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, idx, "environment must map strings to strings");
		lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
		envp[i] = (char *)lua_tostring(L, -1);
		lua_rawseti(L, -4, (lua_Integer)++i);
		lua_pop(L, 1);
	}
	envp[n] = NULL;
	lua_setiuservalue(L, -2, 1);
	return envp;
}

/* core.exec(file, argv, env [, exec_plan [, channel]]) -> fail, plus the
 * exit status to report (127 not found, 126 cannot execute, 125 the exec
 * plan failed). Does not return on success. Runs exec_plan (core.exec_plan)
 * first; channel is where it reports "created" before a start FIFO. file
 * without '/' is searched in env's PATH. argv[1] is the command's
 * argv[0]. Unblocks all signals before exec. */
static int l_exec(lua_State *L)
{
	/* Before argv and env, which push their arrays on the stack. */
	const struct pf_exec_plan *plan = pf_l_opt_exec_plan(L, 4);
	int fd = lua_isnoneornil(L, 5) ? -1 : pf_l_channel_fd(L, 5);
	lua_settop(L, 5); /* the plan stays referenced at 4 */
	const char *file = luaL_checkstring(L, 1);
	char **argv = pf_l_check_string_array(L, 2);
	char **envp = check_environment(L, 3);
	struct pf_error err = { 0 };
	int status;
	pf_process_exec(file, argv, envp, plan, fd, &status, &err);
	pf_l_fail(L, &err);
	lua_pushinteger(L, status);
	return 4;
}

/* core.fork_reaper([channel]) -> true | fail
 * For pid 1 of a pid namespace: forks; returns true in the new child, which
 * goes on to exec the command. The calling process never returns: it stays
 * as init, forwarding signals to the command and reaping zombies, and exits
 * with the command's status. It closes channel first so the supervisor sees
 * end-of-file when the command execs. */
static int l_fork_reaper(lua_State *L)
{
	int fd = lua_isnoneornil(L, 1) ? -1 : pf_l_channel_fd(L, 1);
	struct pf_error err = { 0 };
	if (pf_process_fork_reaper(fd, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.exec_reaped(channel|nil, file, argv, env [, exec_plan]) -> fail
 * For pid 1 of a pid namespace, after every other step: starts the command
 * (file, argv, env as for core.exec), which runs exec_plan in its own
 * process (never in init), and stays behind as its init; never
 * returns unless the command cannot be started. An exec failure is sent on
 * channel by the command (status 127 or 126), which init exits with. */
static int l_exec_reaped(lua_State *L)
{
	int fd = lua_isnoneornil(L, 1) ? -1 : pf_l_channel_fd(L, 1);
	const struct pf_exec_plan *plan = pf_l_opt_exec_plan(L, 5);
	const char *file = luaL_checkstring(L, 2);
	char **argv = pf_l_check_string_array(L, 3);
	char **envp = check_environment(L, 4);
	struct pf_error err = { 0 };
	pf_process_exec_reaped(file, argv, envp, plan, fd, &err);
	return pf_l_fail(L, &err);
}

/* core.close_fds(pass, [channel]) -> true | fail
 * Child, right before exec: close every fd from 3 up except those listed
 * in pass (made inheritable: the command gets them at their numbers) and
 * channel's (which stays close-on-exec). */
static int l_close_fds(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 1);
	luaL_argcheck(L, n >= 0 && n <= 65536, 1, "too many fds");
	int *pass = lua_newuserdatauv(L, sizeof(int) * (size_t)(n ? n : 1), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 1, i);
		int isnum;
		lua_Integer fd = lua_tointegerx(L, -1, &isnum);
		lua_pop(L, 1);
		luaL_argcheck(L, isnum && fd >= 3 && fd <= INT_MAX, 1, "fds to pass are integers from 3");
		pass[i - 1] = (int)fd;
	}
	int keep = lua_isnoneornil(L, 2) ? -1 : pf_l_channel_fd(L, 2);
	struct pf_error err = { 0 };
	if (pf_process_close_fds(pass, (size_t)n, keep, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.fd_is_open(fd) -> boolean, [type]: whether this process has fd
 * open, and then what it is: "directory", "file", "char", "block", "fifo",
 * "socket" or "other". */
static int l_fd_is_open(lua_State *L)
{
	lua_Integer fd = luaL_checkinteger(L, 1);
	struct stat st;
	if (fd < 0 || fd > INT_MAX || fstat((int)fd, &st) < 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushboolean(L, 1);
	lua_pushstring(L, S_ISDIR(st.st_mode) ? "directory" : S_ISREG(st.st_mode) ? "file"
			  : S_ISCHR(st.st_mode) ? "char" : S_ISBLK(st.st_mode) ? "block"
			  : S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket" : "other");
	return 2;
}

/* core.exit(status): flush stdio and _exit, skipping atexit handlers and
 * Lua's own closing (a cloned child must not run the parent's cleanup). */
static int l_exit(lua_State *L)
{
	int status = (int)luaL_optinteger(L, 1, 0);
	fflush(NULL);
	_exit(status);
}

static const struct {
	const char *name;
	int number;
} signal_names[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "WINCH", SIGWINCH }, { "SEGV", SIGSEGV }, { "ABRT", SIGABRT },
	{ NULL, 0 },
};

/* Interrupting a recipe, as lua.c interrupts a script on SIGINT: the
 * handler only sets a hook, and the hook raises the error at the next Lua
 * instruction, where unwinding is safe. While containers run, the
 * supervisor's own handlers take these signals (process.c saves this one
 * and puts it back after the last reap, raising a signal that arrived in
 * between again); this one serves the time no container is alive, so that
 * what a recipe deferred (pflask.defer) still runs when pflask is told to
 * stop during os.execute, io.popen or plain Lua. */
static const int interrupting[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static lua_State *interrupt_state;       /* the main thread */
static pid_t interrupt_owner;            /* a forked child has its own copy */
static volatile sig_atomic_t interrupt_signal;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	int sig = interrupt_signal;
	interrupt_signal = 0;
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, 128 + sig);
	lua_setfield(L, -2, "status");
	lua_pushfstring(L, "interrupted by SIG%s", sig == SIGINT ? "INT" : sig == SIGTERM ? "TERM"
			: sig == SIGHUP ? "HUP" : "QUIT");
	lua_setfield(L, -2, "message");
	lua_error(L);
}

static void on_interrupt(int sig)
{
	if (getpid() != interrupt_owner || !interrupt_state) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	interrupt_signal = sig;
	lua_sethook(interrupt_state, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* core.interrupt_on_signals(on): with on, SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT raise a pflask.Error-shaped error {status = 128+N, message =
 * "interrupted by SIGTERM"} in the running Lua code (blocking calls are
 * interrupted, not restarted); without, they act by default again. */
static int l_interrupt_on_signals(lua_State *L)
{
	bool on = lua_toboolean(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	interrupt_state = on ? lua_tothread(L, -1) : NULL;
	lua_pop(L, 1);
	interrupt_owner = getpid();
	struct sigaction sa = { .sa_handler = on ? on_interrupt : SIG_DFL };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(interrupting) / sizeof(interrupting[0]); i++)
		pf_process_set_idle_action(interrupting[i], &sa);
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_process(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "wait", process_wait },
		{ "kill", process_kill },
		{ "pid", process_pid },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", process_close },
		{ "__close", process_close },
		{ "__tostring", process_tostring },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, PROCESS);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	static const luaL_Reg funcs[] = {
		{ "exec", l_exec },
		{ "fork_reaper", l_fork_reaper },
		{ "exec_reaped", l_exec_reaped },
		{ "exit", l_exit },
		{ "close_fds", l_close_fds },
		{ "fd_is_open", l_fd_is_open },
		{ "interrupt_on_signals", l_interrupt_on_signals },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);

	/* core.signals: {TERM = 15, ..., RTMIN = n}; numbers are what
	 * Process:kill and Process:wait's translate table take. */
	lua_newtable(L);
	for (int i = 0; signal_names[i].name; i++) {
		lua_pushinteger(L, signal_names[i].number);
		lua_setfield(L, -2, signal_names[i].name);
	}
	lua_pushinteger(L, SIGRTMIN);
	lua_setfield(L, -2, "RTMIN");
	lua_pushinteger(L, SIGRTMAX);
	lua_setfield(L, -2, "RTMAX");
	lua_setfield(L, -2, "signals");
}
