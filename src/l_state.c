/* pflask.core: state on disk (the runtime directory and its records) and
 * process start times, for the container registry (lua/pflask/registry.lua). */
#define _GNU_SOURCE
#include <limits.h>
#include <unistd.h>

#include "l_util.h"
#include "state.h"

/* core.state_dir([create]) -> path | fail: the runtime directory of the
 * caller's containers (see pf_state_dir), made private when create. */
static int l_state_dir(lua_State *L)
{
	bool create = lua_toboolean(L, 1);
	struct pf_error err;
	char buf[PATH_MAX];
	if (pf_state_dir(geteuid(), create, buf, sizeof(buf), &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushstring(L, buf);
	return 1;
}

/* core.state_write(dir, name, data[, exclusive]) -> true | fail */
static int l_state_write(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	const char *name = luaL_checkstring(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	bool exclusive = lua_toboolean(L, 4);
	struct pf_error err;
	if (pf_state_write(dir, name, data, len, exclusive, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.state_read(dir, name) -> data | fail */
static int l_state_read(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	const char *name = luaL_checkstring(L, 2);
	/* The buffer is Lua's: nothing of ours to free if pushing raises. */
	luaL_Buffer b;
	char *buf = luaL_buffinitsize(L, &b, PF_STATE_RECORD_MAX + 1);
	struct pf_error err;
	size_t len;
	if (pf_state_read(dir, name, buf, PF_STATE_RECORD_MAX + 1, &len, &err) < 0)
		return pf_l_fail(L, &err);
	luaL_pushresultsize(&b, len);
	return 1;
}

/* core.state_remove(dir, name) -> true | fail */
static int l_state_remove(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	const char *name = luaL_checkstring(L, 2);
	struct pf_error err;
	if (pf_state_remove(dir, name, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

struct list_ctx {
	lua_State *L;
	lua_Integer n;
};

static int add_name(const char *name, void *p)
{
	struct list_ctx *ctx = p;
	lua_pushstring(ctx->L, name);
	lua_rawseti(ctx->L, -2, ++ctx->n);
	return 0;
}

/* core.state_list(dir, suffix) -> {name...} | fail: the records of dir
 * whose names end in suffix, in directory order. */
static int l_state_list(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	const char *suffix = luaL_checkstring(L, 2);
	lua_newtable(L);
	struct list_ctx ctx = { L, 0 };
	struct pf_error err;
	if (pf_state_list(dir, suffix, add_name, &ctx, &err) < 0)
		return pf_l_fail(L, &err);
	return 1;
}

/* core.start_time(pid) -> ticks | fail (errno ESRCH: no such process) */
static int l_start_time(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "not a process id");
	struct pf_error err;
	unsigned long long ticks;
	if (pf_state_start_time((pid_t)pid, &ticks, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)ticks);
	return 1;
}

void pf_l_open_state(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "state_dir", l_state_dir },
		{ "state_write", l_state_write },
		{ "state_read", l_state_read },
		{ "state_remove", l_state_remove },
		{ "state_list", l_state_list },
		{ "start_time", l_start_time },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
