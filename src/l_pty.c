/* pflask.core: terminals. The container's pty (Pty), the user's terminal
 * settings (Termios), and --detach/--attach: the report pipe of a detached
 * supervisor (Report), its socket (Listener) and a client's connection
 * (Attachment). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "l_util.h"
#include "process.h"
#include "pty.h"
#include "supervise.h"

#define PTY "pflask.Pty"
#define TERMIOS "pflask.Termios"
#define REPORT "pflask.Report"
#define LISTENER "pflask.Listener"
#define ATTACHMENT "pflask.Attachment"

struct pty {
	struct pf_pty p; /* fds -1 once closed */
};

struct termios_saved {
	int fd; /* -1 once restored */
	struct termios saved;
};

/* Report, Listener, Attachment: an fd, and for a listener the socket path
 * to remove when it closes (only by the process that made it: a cloned
 * child holds a copy of the handle). */
struct handle {
	int fd;
	pid_t owner;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Pty */

static struct pty *check_pty(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, PTY);
}

static struct pty *check_open_pty(lua_State *L, int idx)
{
	struct pty *p = check_pty(L, idx);
	luaL_argcheck(L, p->p.master >= 0, idx, "pty is closed");
	return p;
}

/* core.open_pty([size_from]) -> Pty | fail: a new pty with the window size
 * of terminal fd size_from when it is one. Parent side. */
static int l_open_pty(lua_State *L)
{
	int size_from = (int)luaL_optinteger(L, 1, -1);
	struct pty *p = lua_newuserdatauv(L, sizeof(*p), 0);
	p->p = (struct pf_pty){ .master = -1, .slave = -1 };
	luaL_setmetatable(L, PTY);
	struct pf_error err = { 0 };
	if (pf_pty_open(&p->p, size_from, &err) < 0)
		return pf_l_fail(L, &err);
	return 1;
}

/* pty:name() -> the slave's path, e.g. /dev/pts/3 */
static int pty_name(lua_State *L)
{
	lua_pushstring(L, check_pty(L, 1)->p.name);
	return 1;
}

/* pty:close_slave(): drop the supervisor's copy of the slave (relay and
 * serve hold it while the container runs and close it at its end). */
static int pty_close_slave(lua_State *L)
{
	close_fd(&check_pty(L, 1)->p.slave);
	return 0;
}

/* pty:make_controlling([fds]) -> true | fail. Child: new session, the
 * slave as controlling terminal and as each of the standard fds listed in
 * fds (default {0, 1, 2}); closes the master. */
static int pty_make_controlling(lua_State *L)
{
	struct pty *p = check_pty(L, 1);
	luaL_argcheck(L, p->p.slave >= 0, 1, "pty slave is closed");
	unsigned fds = 7;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		fds = 0;
		for (lua_Integer i = 1, n = luaL_len(L, 2); i <= n; i++) {
			lua_geti(L, 2, i);
			lua_Integer fd = lua_tointeger(L, -1);
			lua_pop(L, 1);
			luaL_argcheck(L, fd >= 0 && fd <= 2, 2, "standard fds are 0, 1 and 2");
			fds |= 1u << fd;
		}
	}
	struct pf_error err = { 0 };
	int r = pf_pty_make_controlling(p->p.slave, p->p.master, fds, &err);
	p->p.master = -1;
	if (p->p.slave > 2)
		p->p.slave = -1;
	if (r < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static struct handle *check_handle(lua_State *L, int idx, const char *type)
{
	struct handle *h = luaL_checkudata(L, idx, type);
	luaL_argcheck(L, h->fd >= 0, idx, "handle is closed");
	return h;
}

/* pty:start_relay(process, [input], [output]) -> true | fail
 * Supervisor: from now on the supervisor loop (core.supervisor) relays fd
 * input (default 0, -1: none) to the pty and the pty to fd output (default
 * 1) whenever it runs, and drains the pty when process ends; SIGWINCH
 * gives the pty the window size of the first of stdin, stdout, stderr
 * that is a terminal. The terminal is not made raw here: core.tty_raw. */
static int pty_start_relay(lua_State *L)
{
	struct pty *p = check_open_pty(L, 1);
	pid_t pid = pf_l_process_pid(L, 2);
	luaL_argcheck(L, pid > 0, 2, "process already reaped");
	int in = (int)luaL_optinteger(L, 3, 0);
	int out = (int)luaL_optinteger(L, 4, 1);
	int size_from = isatty(0) ? 0 : isatty(1) ? 1 : isatty(2) ? 2 : -1;
	struct pf_error err = { 0 };
	struct pf_pty_loop *relay = pf_pty_relay_new(p->p.master, &p->p.slave, in, out, size_from, &err);
	if (!relay || pf_sup_attach_pty(pf_l_supervisor(L), pid, relay, &err) < 0)
		return pf_l_fail(L, &err);
	pf_l_supervise_hold(L, pid, 1, 0);
	lua_pushboolean(L, 1);
	return 1;
}

/* Wait for the process at idx through the loop, translate at tidx. */
static int wait_in_loop(lua_State *L, int idx, int tidx)
{
	pid_t pid = pf_l_process_pid(L, idx);
	if (!lua_isnoneornil(L, tidx)) {
		int translate[NSIG] = { 0 };
		pf_l_check_translate(L, tidx, translate);
		pf_sup_translate(pf_l_supervisor(L), pid, translate);
	}
	struct pf_error err = { 0 };
	if (pf_l_supervise_until(L, pid, &err) < 0)
		return pf_l_fail(L, &err);
	return pf_l_process_reaped(L, idx, 0);
}

/* pty:relay(process, [translate], [input], [output]) -> status,
 * "exited"|"signaled", code | fail
 * pty:start_relay, then wait for process (Process:wait). */
static int pty_relay(lua_State *L)
{
	check_open_pty(L, 1);
	pid_t pid = pf_l_process_pid(L, 2);
	if (pid < 0)
		return pf_l_process_reaped(L, 2, 0);
	lua_settop(L, 5);
	lua_pushcfunction(L, pty_start_relay);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 4);
	lua_pushvalue(L, 5);
	lua_call(L, 4, 3);
	if (lua_isnil(L, -3))
		return 3;
	lua_settop(L, 5);
	return wait_in_loop(L, 2, 3);
}

/* pty:start_serve(process, listener) -> true | fail
 * Detached supervisor: from now on the supervisor loop serves the pty to
 * clients of listener (see pf_pty_serve_new) whenever it runs, and when
 * process ends drains the pty and tells an attached client. */
static int pty_start_serve(lua_State *L)
{
	struct pty *p = check_open_pty(L, 1);
	pid_t pid = pf_l_process_pid(L, 2);
	luaL_argcheck(L, pid > 0, 2, "process already reaped");
	struct handle *lis = check_handle(L, 3, LISTENER);
	struct pf_error err = { 0 };
	struct pf_pty_loop *server = pf_pty_serve_new(p->p.master, &p->p.slave, lis->fd, pid, geteuid(), &err);
	if (!server || pf_sup_attach_pty(pf_l_supervisor(L), pid, server, &err) < 0)
		return pf_l_fail(L, &err);
	pf_l_supervise_hold(L, pid, 1, 3);
	lua_pushboolean(L, 1);
	return 1;
}

/* pty:serve(process, listener, [translate]) -> status, how, code | fail
 * pty:start_serve, then wait for process. */
static int pty_serve(lua_State *L)
{
	check_open_pty(L, 1);
	pid_t pid = pf_l_process_pid(L, 2);
	if (pid < 0)
		return pf_l_process_reaped(L, 2, 0);
	lua_settop(L, 4);
	lua_pushcfunction(L, pty_start_serve);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_call(L, 3, 3);
	if (lua_isnil(L, -3))
		return 3;
	lua_settop(L, 4);
	return wait_in_loop(L, 2, 4);
}

/* pty:send_master(socket_path [, cols, rows]) -> true | fail: OCI's
 * --console-socket, the master sent with SCM_RIGHTS (see pf_pty_send_fd).
 * The pty keeps its own master: close it with the pty. */
static int pty_send_master(lua_State *L)
{
	struct pty *p = check_open_pty(L, 1);
	const char *path = luaL_checkstring(L, 2);
	lua_Integer cols = luaL_optinteger(L, 3, 0), rows = luaL_optinteger(L, 4, 0);
	luaL_argcheck(L, cols >= 0 && cols <= 65535, 3, "out of range");
	luaL_argcheck(L, rows >= 0 && rows <= 65535, 4, "out of range");
	struct pf_error err = { 0 };
	if (pf_pty_send_fd(path, p->p.master, "/dev/ptmx", (unsigned short)cols, (unsigned short)rows, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.console_connect(path) -> Console | fail: a unix socket connected to
 * path now (OCI --console-socket), so that a child that entered a
 * container (where path is out of sight) can still send on it:
 * console:attach([cols, rows]) there (pf_pty_console_attach).
 * console:close() (also __gc) closes it. */
#define CONSOLE "pflask.Console"
struct console {
	int fd;
};

static int l_console_connect(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct console *c = lua_newuserdatauv(L, sizeof(*c), 0);
	c->fd = -1;
	luaL_setmetatable(L, CONSOLE);
	struct pf_error err = { 0 };
	c->fd = pf_pty_console_connect(path, &err);
	if (c->fd < 0)
		return pf_l_fail(L, &err);
	return 1;
}

static int console_attach(lua_State *L)
{
	struct console *c = luaL_checkudata(L, 1, CONSOLE);
	luaL_argcheck(L, c->fd >= 0, 1, "console is closed");
	lua_Integer cols = luaL_optinteger(L, 2, 0), rows = luaL_optinteger(L, 3, 0);
	luaL_argcheck(L, cols >= 0 && cols <= 65535, 2, "out of range");
	luaL_argcheck(L, rows >= 0 && rows <= 65535, 3, "out of range");
	struct pf_error err = { 0 };
	int fd = c->fd;
	c->fd = -1; /* closed by pf_pty_console_attach */
	if (pf_pty_console_attach(fd, (unsigned short)cols, (unsigned short)rows, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static int console_close(lua_State *L)
{
	struct console *c = luaL_checkudata(L, 1, CONSOLE);
	close_fd(&c->fd);
	return 0;
}

static int pty_close(lua_State *L)
{
	struct pty *p = check_pty(L, 1);
	close_fd(&p->p.master);
	close_fd(&p->p.slave);
	return 0;
}

/* Termios */

/* core.tty_raw(fd) -> Termios | fail: terminal fd made raw; the handle
 * restores its settings on :restore(), __close or __gc. */
static int l_tty_raw(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	struct termios_saved *t = lua_newuserdatauv(L, sizeof(*t), 0);
	t->fd = -1;
	luaL_setmetatable(L, TERMIOS);
	struct pf_error err = { 0 };
	if (pf_pty_raw(fd, &t->saved, &err) < 0)
		return pf_l_fail(L, &err);
	t->fd = fd;
	return 1;
}

/* termios:restore(): put the settings back, exactly. Idempotent. */
static int termios_restore(lua_State *L)
{
	struct termios_saved *t = luaL_checkudata(L, 1, TERMIOS);
	if (t->fd >= 0)
		pf_pty_restore(t->fd, &t->saved);
	t->fd = -1;
	return 0;
}

/* Report */

static struct handle *push_handle(lua_State *L, const char *type, int fd)
{
	struct handle *h = lua_newuserdatauv(L, sizeof(*h), 0);
	memset(h, 0, sizeof(*h));
	h->fd = fd;
	h->owner = getpid();
	luaL_setmetatable(L, type);
	return h;
}

/* core.daemonize() -> "daemon", Report | "detached", pid | "failed", status
 * | fail. For --detach, before the container is cloned: forks. The new
 * process, in its own session with stdin and stdout on /dev/null, gets
 * "daemon" and goes on to start the container, then report:done(pid). The
 * original process waits for that and gets "detached" and the container's
 * pid, or, when the new process ended first (having printed why on the
 * shared stderr), "failed" and its exit status. */
static int l_daemonize(lua_State *L)
{
	int report;
	pid_t pid;
	int status;
	struct pf_error err = { 0 };
	int r = pf_pty_daemonize(&report, &pid, &status, &err);
	if (r < 0)
		return pf_l_fail(L, &err);
	if (r == 0) {
		lua_pushliteral(L, "daemon");
		push_handle(L, REPORT, report);
		return 2;
	}
	if (pid > 0) {
		lua_pushliteral(L, "detached");
		lua_pushinteger(L, pid);
	} else {
		lua_pushliteral(L, "failed");
		lua_pushinteger(L, status);
	}
	return 2;
}

/* report:done(pid) -> true | fail: tell the original process the
 * container's pid; stderr goes to /dev/null from now on. */
static int report_done(lua_State *L)
{
	struct handle *h = check_handle(L, 1, REPORT);
	pid_t pid = (pid_t)luaL_checkinteger(L, 2);
	struct pf_error err = { 0 };
	int fd = h->fd;
	h->fd = -1;
	if (pf_pty_detached(fd, pid, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static int handle_close(lua_State *L)
{
	struct handle *h = lua_touserdata(L, 1);
	if (h->path[0] && h->owner == getpid())
		unlink(h->path);
	h->path[0] = '\0';
	close_fd(&h->fd);
	return 0;
}

/* Listener */

/* core.pty_listen(pid) -> Listener | fail: the socket of detached container
 * pid, in the caller's socket directory (pflask(1), TERMINAL). Closing the
 * listener removes the socket. */
static int l_pty_listen(lua_State *L)
{
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	struct handle *h = push_handle(L, LISTENER, -1);
	struct pf_error err = { 0 };
	if (pf_pty_socket_path(geteuid(), pid, true, h->path, sizeof(h->path), &err) < 0) {
		h->path[0] = '\0';
		return pf_l_fail(L, &err);
	}
	h->fd = pf_pty_listen(h->path, &err);
	if (h->fd < 0) {
		h->path[0] = '\0';
		return pf_l_fail(L, &err);
	}
	return 1;
}

static int listener_path(lua_State *L)
{
	struct handle *h = luaL_checkudata(L, 1, LISTENER);
	lua_pushstring(L, h->path);
	return 1;
}

/* Attachment */

/* core.pty_connect(pid) -> Attachment | fail: connect to detached
 * container pid. The failure's message says why: not a detached container
 * (errno ENOENT), another user's (EPERM), somebody else attached (EBUSY). */
static int l_pty_connect(lua_State *L)
{
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	struct pf_error err = { 0 };
	int fd = pf_pty_connect(pid, &err);
	if (fd < 0)
		return pf_l_fail(L, &err);
	push_handle(L, ATTACHMENT, fd);
	return 1;
}

/* attachment:relay() -> "exited", status, how, code | "detached" | fail
 * Relay stdin and stdout (made raw by the caller) to the container until
 * it ends or the user detaches with Ctrl-@ (or a signal). */
static int attachment_relay(lua_State *L)
{
	struct handle *h = check_handle(L, 1, ATTACHMENT);
	int wstatus;
	struct pf_error err = { 0 };
	int size_from = isatty(0) ? 0 : isatty(1) ? 1 : -1;
	int r = pf_pty_attach(h->fd, 0, 1, size_from, &wstatus, &err);
	if (r < 0)
		return pf_l_fail(L, &err);
	if (r == PF_ATTACH_DETACHED) {
		lua_pushliteral(L, "detached");
		return 1;
	}
	lua_pushliteral(L, "exited");
	lua_pushinteger(L, pf_process_exit_status(wstatus));
	if (WIFSIGNALED(wstatus)) {
		lua_pushliteral(L, "signaled");
		lua_pushinteger(L, WTERMSIG(wstatus));
	} else {
		lua_pushliteral(L, "exited");
		lua_pushinteger(L, WEXITSTATUS(wstatus));
	}
	return 4;
}

/* core.setsid() -> true | fail. Child: a session of its own, without a
 * controlling terminal (when the container gets no pty). */
static int l_setsid(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_pty_new_session(&err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.null_stdin() -> true | fail. Child: /dev/null (opened now) as fd 0,
 * in place of a terminal of the host nobody relays. */
static int l_null_stdin(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_pty_null_stdin(&err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.syslog(message): one line to the system log as pflask[pid], for a
 * detached supervisor that has no terminal to print on. */
static int l_syslog(lua_State *L)
{
	const char *msg = luaL_checkstring(L, 1);
	static bool opened;
	if (!opened) {
		openlog("pflask", LOG_PID, LOG_DAEMON);
		opened = true;
	}
	syslog(LOG_NOTICE, "%s", msg);
	return 0;
}

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
		     lua_CFunction close)
{
	luaL_newmetatable(L, name);
	lua_pushcfunction(L, close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, close);
	lua_setfield(L, -2, "__close");
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_pushcfunction(L, close);
	lua_setfield(L, -2, "close");
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

void pf_l_open_pty(lua_State *L)
{
	static const luaL_Reg pty_methods[] = {
		{ "name", pty_name },
		{ "close_slave", pty_close_slave },
		{ "make_controlling", pty_make_controlling },
		{ "send_master", pty_send_master },
		{ "relay", pty_relay },
		{ "serve", pty_serve },
		{ "start_relay", pty_start_relay },
		{ "start_serve", pty_start_serve },
		{ NULL, NULL },
	};
	new_type(L, PTY, pty_methods, pty_close);
	static const luaL_Reg termios_methods[] = {
		{ "restore", termios_restore },
		{ NULL, NULL },
	};
	new_type(L, TERMIOS, termios_methods, termios_restore);
	static const luaL_Reg report_methods[] = {
		{ "done", report_done },
		{ NULL, NULL },
	};
	new_type(L, REPORT, report_methods, handle_close);
	static const luaL_Reg listener_methods[] = {
		{ "path", listener_path },
		{ NULL, NULL },
	};
	new_type(L, LISTENER, listener_methods, handle_close);
	static const luaL_Reg attachment_methods[] = {
		{ "relay", attachment_relay },
		{ NULL, NULL },
	};
	new_type(L, ATTACHMENT, attachment_methods, handle_close);

	static const luaL_Reg console_methods[] = {
		{ "attach", console_attach },
		{ NULL, NULL },
	};
	new_type(L, CONSOLE, console_methods, console_close);
	static const luaL_Reg funcs[] = {
		{ "console_connect", l_console_connect },
		{ "open_pty", l_open_pty },
		{ "tty_raw", l_tty_raw },
		{ "daemonize", l_daemonize },
		{ "pty_listen", l_pty_listen },
		{ "pty_connect", l_pty_connect },
		{ "syslog", l_syslog },
		{ "setsid", l_setsid },
		{ "null_stdin", l_null_stdin },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
