/* pflask.core: the supervisor loop (src/supervise.h) as the Supervisor
 * userdata, one per process, and core.sleep. Every child core.clone makes
 * is watched from its start; Process:wait, the pty relay and the detached
 * server all wait through the loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "l_util.h"
#include "lalloc.h"
#include "process.h"
#include "pty.h"
#include "supervise.h"

#define SUPERVISOR "pflask.Supervisor"
/* Registry: pid -> Process (weak values), to name the process of an exit
 * event; pid -> what a pty handled in the loop points into (the Pty, the
 * Listener), held while the loop uses it. */
#define PROCESSES "pflask.supervised"
#define HELD "pflask.supervised_held"

/* One loop per process, outside Lua's heap: a Process collected after the
 * Supervisor handle (lua_close collects in any order) still reaches it. */
static struct pf_sup *the_sup;
static pid_t the_sup_owner;

struct pf_sup *pf_l_supervisor(lua_State *L)
{
	if (the_sup && the_sup_owner != getpid()) {
		/* Forked since (--detach): the children, the epoll and the
		 * signal pipe are the other process's. */
		pf_sup_abandon(the_sup);
		the_sup = NULL;
	}
	if (!the_sup) {
		struct pf_error err = { 0 };
		if (pf_sup_new(&the_sup, &err) < 0)
			luaL_error(L, "%s", err.message);
		the_sup_owner = getpid();
	}
	return the_sup;
}

static void registry_table(lua_State *L, const char *name, const char *mode)
{
	if (luaL_getsubtable(L, LUA_REGISTRYINDEX, name) == 0 && mode) {
		lua_createtable(L, 0, 1);
		lua_pushstring(L, mode);
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
	}
}

void pf_l_supervise_add(lua_State *L, int proc_idx, pid_t pid)
{
	proc_idx = lua_absindex(L, proc_idx);
	struct pf_sup *sup = pf_l_supervisor(L);
	struct pf_error err = { 0 };
	if (pf_sup_add(sup, pid, &err) < 0)
		luaL_error(L, "%s", err.message);
	registry_table(L, PROCESSES, "v");
	lua_pushvalue(L, proc_idx);
	lua_rawseti(L, -2, pid);
	lua_pop(L, 1);
}

void pf_l_supervise_hold(lua_State *L, pid_t pid, int idx1, int idx2)
{
	idx1 = lua_absindex(L, idx1);
	idx2 = idx2 ? lua_absindex(L, idx2) : 0;
	registry_table(L, HELD, NULL);
	lua_createtable(L, 2, 0);
	lua_pushvalue(L, idx1);
	lua_rawseti(L, -2, 1);
	if (idx2) {
		lua_pushvalue(L, idx2);
		lua_rawseti(L, -2, 2);
	}
	lua_rawseti(L, -2, pid);
	lua_pop(L, 1);
}

void pf_l_supervise_release(lua_State *L, pid_t pid)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, HELD) == LUA_TTABLE) {
		lua_pushnil(L);
		lua_rawseti(L, -2, pid);
	}
	lua_pop(L, 1);
}

bool pf_l_supervise_forget(pid_t pid, int *ret_wstatus)
{
	if (!the_sup || the_sup_owner != getpid())
		return false;
	return pf_sup_forget(the_sup, pid, ret_wstatus);
}

/* One step; an exit marks its Process reaped. Pushes the event as
 * sup:step returns it and returns how many values, or -1 with err set
 * (nothing pushed). */
static int push_step(lua_State *L, int timeout_ms, struct pf_sup_event *ev, struct pf_error *err)
{
	struct pf_sup *sup = pf_l_supervisor(L);
	pf_process_signals_cloned();
	if (pf_sup_step(sup, timeout_ms, ev, err) < 0)
		return -1;
	switch (ev->type) {
	case PF_SUP_EXIT:
		lua_pushliteral(L, "exit");
		registry_table(L, PROCESSES, "v");
		lua_rawgeti(L, -1, ev->pid);
		lua_remove(L, -2);
		if (lua_isnil(L, -1)) {
			/* Its handle is gone (being collected): nobody to tell. */
			lua_pushnil(L);
			lua_pushnil(L);
			lua_pushnil(L);
			return 5;
		}
		pf_l_process_reaped(L, -1, ev->wstatus);
		return 5;
	case PF_SUP_SIGNAL:
		lua_pushliteral(L, "signal");
		lua_pushinteger(L, ev->signo);
		return 2;
	default:
		lua_pushliteral(L, "timeout");
		return 1;
	}
}

static int check_timeout_ms(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return -1;
	lua_Number s = luaL_checknumber(L, idx);
	luaL_argcheck(L, s >= 0 && s < 2e6, idx, "timeout must be 0 to 2000000 seconds");
	return (int)ceil(s * 1000);
}

int pf_l_supervise_until(lua_State *L, pid_t pid, struct pf_error *err)
{
	struct pf_sup *sup = pf_l_supervisor(L);
	for (;;) {
		if (!pf_sup_has(sup, pid))
			return pf_error_set(err, ECHILD, "process %d is not watched", (int)pid);
		int top = lua_gettop(L);
		struct pf_sup_event ev;
		if (push_step(L, -1, &ev, err) < 0)
			return -1;
		lua_settop(L, top);
		if (ev.type == PF_SUP_EXIT && ev.pid == pid)
			return 0;
	}
}

/* core.supervisor() -> Supervisor: this process's loop. */
static int l_supervisor(lua_State *L)
{
	pf_l_supervisor(L);
	if (lua_getfield(L, LUA_REGISTRYINDEX, "pflask.the_supervisor") == LUA_TNIL) {
		lua_pop(L, 1);
		lua_newuserdatauv(L, 1, 0);
		luaL_setmetatable(L, SUPERVISOR);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, "pflask.the_supervisor");
	}
	return 1;
}

/* sup:step([timeout]) -> "exit", process, status, how, code
 *                      | "signal", signo | "timeout" | fail
 * Run the loop until one event (timeout in seconds, fractional; none:
 * wait for ever). An exit's process is reaped (process:wait() returns the
 * same); a signal was already passed on to every watched process. */
static int sup_step(lua_State *L)
{
	luaL_checkudata(L, 1, SUPERVISOR);
	int timeout_ms = check_timeout_ms(L, 2);
	struct pf_sup_event ev;
	struct pf_error err = { 0 };
	int n = push_step(L, timeout_ms, &ev, &err);
	return n < 0 ? pf_l_fail(L, &err) : n;
}

/* sup:signal(sig, [raw]) -> count: send sig to every watched process, as
 * if pflask had received it (through each one's translate table) unless
 * raw. */
static int sup_signal(lua_State *L)
{
	luaL_checkudata(L, 1, SUPERVISOR);
	lua_Integer sig = luaL_checkinteger(L, 2);
	luaL_argcheck(L, sig > 0 && sig < NSIG, 2, "not a signal number");
	lua_pushinteger(L, pf_sup_signal_all(pf_l_supervisor(L), (int)sig, !lua_toboolean(L, 3)));
	return 1;
}

/* sup:translate(process, [translate]): the signals to send process
 * instead of those received ({[from] = to}; nil: none). */
static int sup_translate(lua_State *L)
{
	luaL_checkudata(L, 1, SUPERVISOR);
	pid_t pid = pf_l_process_pid(L, 2);
	if (pid < 0)
		return 0;
	int translate[NSIG] = { 0 };
	pf_l_check_translate(L, 3, translate);
	pf_sup_translate(pf_l_supervisor(L), pid, lua_isnoneornil(L, 3) ? NULL : translate);
	return 0;
}

/* sup:unblock(): the signals blocked since the last clone (so that the
 * parent's steps of a start run as before, no system call of theirs
 * interrupted) go to the handler from now on, which notes them for the
 * loop. Container:start calls it once the command runs; a step does it
 * too. */
static int sup_unblock(lua_State *L)
{
	luaL_checkudata(L, 1, SUPERVISOR);
	pf_process_signals_cloned();
	return 0;
}

/* sup:watching(process) -> boolean: is process watched and not reaped? */
static int sup_watching(lua_State *L)
{
	luaL_checkudata(L, 1, SUPERVISOR);
	pid_t pid = pf_l_process_pid(L, 2);
	lua_pushboolean(L, pid > 0 && pf_sup_has(pf_l_supervisor(L), pid));
	return 1;
}

/* sup:shed(): a full garbage collection, then the free pages back to the
 * kernel: those of the executable's Lua allocator (src/lalloc.h) and
 * malloc's. What starting a container took (plans, the parsers' garbage)
 * is freed by then but would stay in the supervisor's heap, private to
 * it, in every container that runs: an allocator keeps what is freed for
 * later, and malloc returns only its top on its own. Finalizers run (a
 * Container the recipe dropped is closed). */
static int sup_shed(lua_State *L)
{
	luaL_checkudata(L, 1, SUPERVISOR);
	lua_gc(L, LUA_GCCOLLECT);
	void *ud;
	if (lua_getallocf(L, &ud) == pf_lalloc)
		pf_lalloc_trim(ud); /* the executable's (main.c) */
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	return 0;
}

/* core.sleep(seconds) -> 0 | remaining, signo
 * Sleep while the loop runs (ptys relayed, signals passed on, ended
 * processes reaped). Returns 0 after the whole time; early, with the
 * seconds left and the signal, when pflask receives a forwarded signal
 * other than SIGWINCH (already passed on to the containers). */
static int l_sleep(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0 && s < 2e6, 1, "seconds must be 0 to 2000000");
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double end = (double)t0.tv_sec + t0.tv_nsec / 1e9 + s;
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double left = end - ((double)now.tv_sec + now.tv_nsec / 1e9);
		if (left <= 0)
			break;
		int top = lua_gettop(L);
		struct pf_sup_event ev;
		struct pf_error err = { 0 };
		if (push_step(L, (int)ceil(left * 1000), &ev, &err) < 0)
			return pf_l_fail(L, &err);
		lua_settop(L, top);
		if (ev.type == PF_SUP_TIMEOUT)
			break;
		if (ev.type == PF_SUP_SIGNAL && ev.signo != SIGWINCH) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = end - ((double)now.tv_sec + now.tv_nsec / 1e9);
			lua_pushnumber(L, left > 0 ? left : 0);
			lua_pushinteger(L, ev.signo);
			return 2;
		}
	}
	lua_pushinteger(L, 0);
	return 1;
}

/* core.monotonic() -> seconds (fractional) of CLOCK_MONOTONIC, for
 * deadlines. */
static int l_monotonic(lua_State *L)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
	return 1;
}

void pf_l_open_supervise(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "step", sup_step },
		{ "signal", sup_signal },
		{ "translate", sup_translate },
		{ "watching", sup_watching },
		{ "unblock", sup_unblock },
		{ "shed", sup_shed },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, SUPERVISOR);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	static const luaL_Reg funcs[] = {
		{ "supervisor", l_supervisor },
		{ "sleep", l_sleep },
		{ "monotonic", l_monotonic },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
