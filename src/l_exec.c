/* pflask.core: the exec plan (see exec.h), built in Lua before the fork
 * or exec that runs it, so that running it allocates nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <linux/filter.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>
#include <lualib.h>

#include "exec.h"
#include "l_exec.h"
#include "l_util.h"

#define EXEC_PLAN "pflask.ExecPlan"

/* One block: the header, then the arrays it points into (a full userdata
 * never moves). */
struct exec_plan_ud {
	struct pf_exec_plan plan;
	bool closed;
	/* followed by int pass[], struct pf_exec_rlimit rlimits[], filter bytes */
};

static rlim_t check_limit(lua_State *L, int idx, const char *what)
{
	if (lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), "infinity") == 0)
		return RLIM_INFINITY;
	int isnum;
	lua_Integer v = lua_tointegerx(L, idx, &isnum);
	if (!isnum || v < 0)
		luaL_error(L, "exec_plan: rlimits: %s must be an integer >= 0 or \"infinity\"", what);
	return (rlim_t)v;
}

static size_t array_len(lua_State *L, int tbl, const char *field)
{
	if (lua_getfield(L, tbl, field) == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	luaL_argcheck(L, lua_istable(L, -1), 1, lua_pushfstring(L, "'%s' must be a table", field));
	lua_Integer n = luaL_len(L, -1);
	lua_pop(L, 1);
	luaL_argcheck(L, n >= 0 && n <= 65536, 1, lua_pushfstring(L, "'%s' is too long", field));
	return (size_t)n;
}

/* core.exec_plan{ pass_fds = {fd...}, rlimits = {{resource, soft, hard}...},
 * no_new_privs = bool, seccomp = bytes, start_fifo = path } -> ExecPlan | fail.
 * resource is a name ("nofile", see core.rlimit_names) or a number; soft
 * and hard are integers or "infinity"; seccomp is a BPF program, an array
 * of struct sock_filter (8 bytes each) as a string; start_fifo is opened
 * here (O_PATH), so build the plan before pivot_root. Wrong arguments
 * raise; a start_fifo that cannot be opened or is no FIFO fails. */
static int l_exec_plan(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	size_t n_pass = array_len(L, 1, "pass_fds");
	size_t n_rl = array_len(L, 1, "rlimits");
	size_t filter_len = 0;
	const char *filter = NULL;
	if (lua_getfield(L, 1, "seccomp") != LUA_TNIL) {
		filter = luaL_checklstring(L, -1, &filter_len);
		luaL_argcheck(L, filter_len > 0 && filter_len % sizeof(struct sock_filter) == 0 &&
				 filter_len / sizeof(struct sock_filter) <= PF_EXEC_MAX_FILTER,
			      1, "seccomp must be 1 to 4096 struct sock_filter (8 bytes each)");
	}
	/* The string stays referenced from the table at 1; its bytes are
	 * copied into the block below anyway. */
	lua_pop(L, 1);

	size_t size = sizeof(struct exec_plan_ud) + n_pass * sizeof(int) +
		      n_rl * sizeof(struct pf_exec_rlimit) + filter_len + 16;
	struct exec_plan_ud *ud = lua_newuserdatauv(L, size, 0);
	memset(ud, 0, size);
	ud->closed = true; /* nothing owned until the FIFO is open */
	ud->plan.start_fifo = -1;
	luaL_setmetatable(L, EXEC_PLAN);
	char *p = (char *)(ud + 1);
	int *pass = (int *)p;
	p += n_pass * sizeof(int);
	/* rlimit_t is 8 bytes: align the array. */
	p = (char *)(((uintptr_t)p + 7) & ~(uintptr_t)7);
	struct pf_exec_rlimit *rl = (struct pf_exec_rlimit *)p;
	p += n_rl * sizeof(struct pf_exec_rlimit);

	lua_getfield(L, 1, "pass_fds");
	for (size_t i = 0; i < n_pass; i++) {
		lua_geti(L, -1, (lua_Integer)i + 1);
		int isnum;
		lua_Integer fd = lua_tointegerx(L, -1, &isnum);
		luaL_argcheck(L, isnum && fd >= 3 && fd <= INT_MAX, 1, "pass_fds are integers from 3");
		pass[i] = (int)fd;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);

	lua_getfield(L, 1, "rlimits");
	for (size_t i = 0; i < n_rl; i++) {
		lua_geti(L, -1, (lua_Integer)i + 1);
		luaL_argcheck(L, lua_istable(L, -1), 1, "rlimits are {resource, soft, hard}");
		lua_geti(L, -1, 1);
		int resource = -1;
		if (lua_type(L, -1) == LUA_TSTRING)
			resource = pf_exec_rlimit_by_name(lua_tostring(L, -1));
		else if (lua_isinteger(L, -1))
			resource = (int)lua_tointeger(L, -1);
		if (resource < 0 || resource >= RLIM_NLIMITS)
			luaL_error(L, "exec_plan: rlimits: '%s' is not a resource", luaL_tolstring(L, -1, NULL));
		lua_geti(L, -2, 2);
		lua_geti(L, -3, 3);
		rl[i].resource = resource;
		rl[i].limit.rlim_cur = check_limit(L, -2, "soft");
		rl[i].limit.rlim_max = check_limit(L, -1, "hard");
		if (rl[i].limit.rlim_cur > rl[i].limit.rlim_max)
			luaL_error(L, "exec_plan: rlimits: soft limit above the hard one");
		lua_pop(L, 4);
	}
	lua_pop(L, 1);

	if (filter) {
		memcpy(p, filter, filter_len);
		ud->plan.filter = p;
		ud->plan.n_filter = filter_len / sizeof(struct sock_filter);
	}
	ud->plan.pass = pass;
	ud->plan.n_pass = n_pass;
	ud->plan.rlimits = rl;
	ud->plan.n_rlimits = n_rl;
	lua_getfield(L, 1, "no_new_privs");
	ud->plan.no_new_privs = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "orphan");
	ud->plan.orphan = lua_toboolean(L, -1);
	lua_pop(L, 1);

	if (lua_getfield(L, 1, "start_fifo") != LUA_TNIL) {
		const char *path = luaL_checkstring(L, -1);
		int fd = open(path, O_PATH | O_CLOEXEC);
		struct pf_error err = { 0 };
		struct stat st;
		if (fd < 0)
			return pf_l_fail(L, (pf_error_errno(&err, errno, "start FIFO %s", path), &err));
		if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
			close(fd);
			pf_error_set(&err, EINVAL, "start FIFO %s: not a FIFO", path);
			return pf_l_fail(L, &err);
		}
		ud->plan.start_fifo = fd;
		ud->closed = false;
	}
	lua_pop(L, 1);
	return 1;
}

const struct pf_exec_plan *pf_l_opt_exec_plan(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return NULL;
	struct exec_plan_ud *ud = luaL_checkudata(L, idx, EXEC_PLAN);
	return &ud->plan;
}

/* __gc, __close and :close(): the FIFO's fd, if the plan was not run. */
static int exec_plan_close(lua_State *L)
{
	struct exec_plan_ud *ud = luaL_checkudata(L, 1, EXEC_PLAN);
	if (!ud->closed && ud->plan.start_fifo >= 0)
		close(ud->plan.start_fifo);
	ud->plan.start_fifo = -1;
	ud->closed = true;
	return 0;
}

/* core.start_fifo(path [, timeout_ms]) -> true | fail: let the container
 * blocked on its start FIFO at path run (OCI `start`): open it for
 * reading, wait for the byte the container writes once it sees us, close.
 * Refuses anything but a FIFO; with timeout_ms, fails with ETIMEDOUT when
 * no container answers in time (none waits, or it died). */
static int l_start_fifo(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int timeout = (int)luaL_optinteger(L, 2, -1);
	struct pf_error err = { 0 };
	if (pf_exec_start_fifo(path, timeout, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.mkfifo(path) -> true | fail: a new FIFO for core.exec_plan's
 * start_fifo, mode 0622: the command may run as another user than the
 * one who made it (it reopens it through /proc/self/fd, not by path); only
 * its owner may read it (start). Fails if path exists. */
static int l_mkfifo(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	if (mkfifo(path, 0600) < 0)
		return pf_l_fail(L, (pf_error_errno(&err, errno, "create %s", path), &err));
	/* Not through mkfifo's mode: the umask would take the write bits. */
	if (chmod(path, 0622) < 0) {
		pf_error_errno(&err, errno, "chmod %s", path);
		unlink(path);
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* core.dup2(from, to) -> true | fail: from (an fd number or an io file)
 * onto fd to, inheritable (a child's stdio before exec). */
/* The __close of the io files made here: what io.open's do. */
static int stream_close(lua_State *L)
{
	luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
	errno = 0;
	return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

/* Push fd as a Lua io file (closing fd if that fails). */
static int push_stream(lua_State *L, int fd, const char *mode)
{
	luaL_Stream *p = lua_newuserdatauv(L, sizeof(*p), 0);
	p->closef = NULL;
	luaL_setmetatable(L, LUA_FILEHANDLE);
	p->f = fdopen(fd, mode);
	if (!p->f) {
		int e = errno;
		close(fd);
		return -e;
	}
	p->closef = stream_close;
	return 0;
}

/* core.pipe() -> read_end, write_end | fail: a pipe as two Lua io files,
 * close-on-exec: a spec's stdin, stdout or stderr makes one end the
 * container command's fd 0, 1 or 2 (and only there). */
static int l_pipe(lua_State *L)
{
	int fds[2];
	struct pf_error err = { 0 };
	if (pipe2(fds, O_CLOEXEC) < 0) {
		pf_error_errno(&err, errno, "pipe");
		return pf_l_fail(L, &err);
	}
	int e = push_stream(L, fds[0], "r"); /* closes fds[0] on failure */
	if (e < 0) {
		close(fds[1]);
	} else if ((e = push_stream(L, fds[1], "w")) < 0) {
		lua_pop(L, 2); /* the read end's file closes with the collector */
	}
	if (e < 0) {
		pf_error_errno(&err, -e, "pipe");
		return pf_l_fail(L, &err);
	}
	return 2;
}

/* core.memfd(name) -> file | fail: an anonymous file in memory (memfd,
 * close-on-exec), read and write, as a Lua io file: what a container's
 * captured output goes to (pflask.capture), which never blocks the
 * command the way a full pipe would. */
static int l_memfd(lua_State *L)
{
	const char *name = luaL_optstring(L, 1, "pflask");
	struct pf_error err = { 0 };
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		pf_error_errno(&err, errno, "memfd_create");
		return pf_l_fail(L, &err);
	}
	int e = push_stream(L, fd, "w+");
	if (e < 0) {
		pf_error_errno(&err, -e, "memfd_create");
		return pf_l_fail(L, &err);
	}
	return 1;
}

/* core.fileno(file) -> fd: the fd of an open Lua io file. */
static int l_fileno(lua_State *L)
{
	luaL_Stream *stream = luaL_checkudata(L, 1, LUA_FILEHANDLE);
	luaL_argcheck(L, stream->f != NULL && stream->closef != NULL, 1, "closed file");
	lua_pushinteger(L, fileno(stream->f));
	return 1;
}

static int l_dup2(lua_State *L)
{
	int from;
	luaL_Stream *stream = luaL_testudata(L, 1, LUA_FILEHANDLE);
	if (stream) {
		luaL_argcheck(L, stream->f != NULL && stream->closef != NULL, 1, "closed file");
		from = fileno(stream->f);
	} else {
		lua_Integer v = luaL_checkinteger(L, 1);
		luaL_argcheck(L, v >= 0 && v <= INT_MAX, 1, "not an fd");
		from = (int)v;
	}
	lua_Integer to = luaL_checkinteger(L, 2);
	luaL_argcheck(L, to >= 0 && to <= INT_MAX, 2, "not an fd");
	if (dup2(from, (int)to) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "dup2 %d to %d", from, (int)to);
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* core.set_dumpable(on) -> true | fail: prctl(PR_SET_DUMPABLE). A process
 * that joins a container is made non-dumpable first, so that the
 * container's processes (root in their user namespace, with
 * CAP_SYS_PTRACE there) cannot ptrace it or read its /proc/PID/mem and
 * environ before it execs (execve makes it dumpable again). */
static int l_set_dumpable(lua_State *L)
{
	int on = lua_toboolean(L, 1);
	if (prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "set dumpable");
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* core.keep_after_parent() -> true | fail: child, clears the parent death
 * signal core.clone armed, so that this process outlives the one that
 * cloned it (OCI exec --detach: its adopter, conmon or a shim, waits for
 * it). A later credential change arms it again. */
static int l_keep_after_parent(lua_State *L)
{
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "clear the parent death signal");
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_exec(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", exec_plan_close },
		{ "__close", exec_plan_close },
		{ NULL, NULL },
	};
	static const luaL_Reg methods[] = {
		{ "close", exec_plan_close },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, EXEC_PLAN);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	static const luaL_Reg funcs[] = {
		{ "exec_plan", l_exec_plan },
		{ "start_fifo", l_start_fifo },
		{ "mkfifo", l_mkfifo },
		{ "dup2", l_dup2 },
		{ "keep_after_parent", l_keep_after_parent },
		{ "pipe", l_pipe },
		{ "memfd", l_memfd },
		{ "fileno", l_fileno },
		{ "set_dumpable", l_set_dumpable },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
	lua_newtable(L);
	for (int i = 0; pf_exec_rlimit_names[i]; i++) {
		lua_pushstring(L, pf_exec_rlimit_names[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "rlimit_names");
}
