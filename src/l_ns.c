/* pflask.core: clone into namespaces, join them, and their names. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "l_util.h"
#include "ns.h"
#include "process.h"
#include "sync.h"

/* Namespaces from a Lua table: either an array of names {"mount", "pid"}
 * or a set {mount=true, net=false}. Unknown names raise. */
static unsigned long check_namespaces(lua_State *L, int idx)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	unsigned long flags = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *name;
		bool wanted;
		if (lua_type(L, -2) == LUA_TSTRING) {
			name = lua_tostring(L, -2);
			wanted = lua_toboolean(L, -1);
		} else {
			name = lua_tostring(L, -1);
			wanted = true;
			if (!name)
				luaL_argerror(L, idx, "namespace names must be strings");
		}
		const struct pf_namespace *ns = pf_ns_by_name(name);
		if (!ns)
			luaL_argerror(L, idx, lua_pushfstring(L, "'%s' is not a namespace", name));
		if (wanted)
			flags |= ns->flag;
		lua_pop(L, 1);
	}
	return flags;
}

/* Error value of a failed child function, turned into a sync record: a
 * pflask.Error-like table {status=, message=, errno=} or anything else
 * (status 125, its tostring as message). */
static int failure_from_error(lua_State *L, int idx, struct pf_error *failure)
{
	int status = 125;
	const char *message = NULL;
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TTABLE) {
		if (lua_getfield(L, idx, "status") == LUA_TNUMBER)
			status = (int)lua_tointeger(L, -1);
		if (lua_getfield(L, idx, "errno") == LUA_TNUMBER)
			failure->code = (int)lua_tointeger(L, -1);
		if (lua_getfield(L, idx, "message") == LUA_TSTRING)
			message = lua_tostring(L, -1);
	}
	if (!message)
		message = luaL_tolstring(L, idx, NULL);
	snprintf(failure->message, sizeof(failure->message), "%s", message);
	return status;
}

/* In the child, print a traceback when PFLASK_DEBUG asks for one: the record
 * sent to the parent has room for one line only. */
static int child_msghandler(lua_State *L)
{
	const char *debug = getenv("PFLASK_DEBUG");
	if (debug && *debug && strcmp(debug, "0") != 0) {
		const char *msg = luaL_tolstring(L, 1, NULL);
		luaL_traceback(L, L, msg, 1);
		fprintf(stderr, "pflask (child): %s\n", lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	return 1; /* the error value itself */
}

static void __attribute__((noreturn)) run_child(lua_State *L, int fn_idx, int fd, int parent_fd)
{
	struct pf_error err = { 0 };
	int status = 0;

	if (pf_process_die_with_parent(parent_fd, &err) < 0) {
		pf_sync_report(fd, 125, &err);
		_exit(125);
	}
	/* The child lives briefly and shares its pages with the parent until
	 * it writes them: a collection would copy most of the heap for
	 * nothing. */
	lua_gc(L, LUA_GCSTOP);
	lua_pushcfunction(L, child_msghandler);
	int handler = lua_gettop(L);
	lua_pushvalue(L, fn_idx);
	pf_l_push_channel(L, fd);
	if (lua_pcall(L, 1, 1, handler) != LUA_OK) {
		status = failure_from_error(L, -1, &err);
		/* Nobody listens once a created container's supervisor left
		 * (start FIFO): say it where the command's errors go. */
		if (pf_sync_report(fd, status, &err) < 0)
			fprintf(stderr, "pflask: %s\n", err.message);
	} else if (lua_isinteger(L, -1)) {
		status = (int)lua_tointeger(L, -1);
	}
	fflush(NULL);
	_exit(status);
}

/* core.clone(namespaces, fn [, cgroup]) -> process, channel, placed | fail
 * Forks into the namespaces. The child runs fn(channel) and then exits: it
 * never returns into the caller's Lua frames. A Lua error in fn reaches the
 * parent as a failure record on the channel (see Channel:result), with the
 * status of a pflask.Error, else 125. The child is SIGKILLed when the
 * parent dies. Blocks the supervised signals in the parent until the
 * process is reaped (Process:wait). With cgroup, a v2 cgroup directory, the
 * child starts in it where the kernel can (placed: true). */
static int l_clone(lua_State *L)
{
	unsigned long flags = check_namespaces(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	const char *cgroup = luaL_optstring(L, 3, NULL);

	struct pf_error err = { 0 };
	int cgroup_fd = -1;
	if (cgroup) {
		cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgroup_fd < 0) {
			pf_error_errno(&err, errno, "open cgroup %s", cgroup);
			return pf_l_fail(L, &err);
		}
	}
	int fds[2];
	if (pf_sync_pair(fds, &err) < 0) {
		if (cgroup_fd >= 0)
			close(cgroup_fd);
		return pf_l_fail(L, &err);
	}
	if (pf_process_block_signals(&err) < 0) {
		close(fds[0]);
		close(fds[1]);
		if (cgroup_fd >= 0)
			close(cgroup_fd);
		return pf_l_fail(L, &err);
	}
	/* Our pidfd, for the child to see whether we died before it armed
	 * its parent death signal. Kernels before 5.3 have none: the child
	 * then only has the signal. */
	struct pf_error ignored = { 0 };
	int self_fd = pf_process_open_self(&ignored);
	bool placed;
	pid_t pid = pf_ns_clone(flags, cgroup_fd, &placed, &err);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		if (self_fd >= 0)
			close(self_fd);
		pf_process_unblock_signals();
		return pf_l_fail(L, &err);
	}
	if (pid == 0) {
		close(fds[0]);
		run_child(L, 2, fds[1], self_fd);
	}
	close(fds[1]);
	if (self_fd >= 0)
		close(self_fd);
	pf_l_push_process(L, pid);
	pf_l_push_channel(L, fds[0]);
	lua_pushboolean(L, placed);
	return 3;
}

/* core.join(pid [, namespaces [, start]]) -> joined | fail: join the
 * namespaces (all by default) that process pid has of its own, user first
 * and mount last, then its root; joined is the list of names joined.
 * Everything is opened before the first setns; a namespace shared with the
 * caller is skipped. start (core.start_time) refuses a reused pid.
 * Half-joined on failure: call it in a child (core.clone). */
static int l_join(lua_State *L)
{
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	lua_Integer start = luaL_optinteger(L, 3, 0);
	unsigned long flags = 0;
	if (lua_isnoneornil(L, 2)) {
		for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++)
			flags |= ns->flag;
	} else {
		flags = check_namespaces(L, 2);
	}
	struct pf_error err = { 0 };
	unsigned long joined = 0;
	if (pf_ns_join(pid, (unsigned long long)start, flags, &joined, &err) < 0)
		return pf_l_fail(L, &err);
	lua_newtable(L);
	int i = 1;
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++) {
		if (joined & ns->flag) {
			lua_pushstring(L, ns->name);
			lua_rawseti(L, -2, i++);
		}
	}
	return 1;
}

static unsigned long check_one_namespace(lua_State *L, int idx)
{
	const char *name = luaL_checkstring(L, idx);
	const struct pf_namespace *ns = pf_ns_by_name(name);
	if (!ns)
		luaL_argerror(L, idx, lua_pushfstring(L, "'%s' is not a namespace", name));
	return ns->flag;
}

/* core.ns_check(path, name) -> true | fail: is path a namespace of kind
 * name ("net", ...)? For plan() checks. */
static int l_ns_check(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	unsigned long flag = check_one_namespace(L, 2);
	struct pf_error err = { 0 };
	int fd = pf_ns_open_path(path, flag, &err);
	if (fd < 0)
		return pf_l_fail(L, &err);
	close(fd);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.ns_enter(path, name) -> true | fail: setns(2) into the namespace
 * of kind name that path is (OCI's namespaces[].path). Child side. */
static int l_ns_enter(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	unsigned long flag = check_one_namespace(L, 2);
	struct pf_error err = { 0 };
	int fd = pf_ns_open_path(path, flag, &err);
	if (fd < 0)
		return pf_l_fail(L, &err);
	if (setns(fd, (int)flag) < 0) {
		pf_error_errno(&err, errno, "join %s", path);
		close(fd);
		return pf_l_fail(L, &err);
	}
	close(fd);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.ns_inodes(pid [, names]) -> {name = inode}: the inode of each
 * namespace of pid (/proc/PID/ns/X; those of names only, an array or a
 * set as clone takes), for the registry. A namespace that cannot be
 * looked at is left out. */
static int l_ns_inodes(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	unsigned long flags = ~0ul;
	if (!lua_isnoneornil(L, 2))
		flags = check_namespaces(L, 2);
	lua_newtable(L);
	/* One lookup of /proc/PID, then each entry relative to it. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns", (int)pid);
	int dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 1;
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++) {
		if (!(flags & ns->flag))
			continue;
		struct stat st;
		if (fstatat(dfd, ns->proc_name, &st, 0) < 0)
			continue;
		lua_pushinteger(L, (lua_Integer)st.st_ino);
		lua_setfield(L, -2, ns->name);
	}
	close(dfd);
	return 1;
}

/* core.unshare(namespaces) -> true | fail: unshare(2) the calling process
 * into new namespaces. Child side: a cgroup namespace unshared after the
 * parent placed the child in its cgroups has them as its root. */
static int l_unshare(lua_State *L)
{
	unsigned long flags = check_namespaces(L, 1);
	if (unshare((int)flags) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "unshare namespaces");
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_ns(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "clone", l_clone },
		{ "join", l_join },
		{ "ns_check", l_ns_check },
		{ "ns_enter", l_ns_enter },
		{ "ns_inodes", l_ns_inodes },
		{ "unshare", l_unshare },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);

	/* core.namespaces: the names clone accepts, in joining order. */
	lua_newtable(L);
	int i = 1;
	for (const struct pf_namespace *ns = pf_namespaces; ns->name; ns++) {
		lua_pushstring(L, ns->name);
		lua_rawseti(L, -2, i++);
	}
	lua_setfield(L, -2, "namespaces");
}
