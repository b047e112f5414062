/* pflask.core: user namespace id maps and user switching. */
#define _GNU_SOURCE
#include <grp.h>
#include <stdint.h>

#include "l_util.h"
#include "userns.h"

#define MAX_RANGES 340 /* the kernel's limit on lines in an id map */

static uint32_t check_id_field(lua_State *L, int idx, const char *field)
{
	lua_getfield(L, -1, field);
	int ok;
	lua_Integer v = lua_tointegerx(L, -1, &ok);
	if (!ok || v < 0 || v > UINT32_MAX)
		luaL_argerror(L, idx, lua_pushfstring(L, "range field '%s' must be an id", field));
	lua_pop(L, 1);
	return (uint32_t)v;
}

/* core.write_id_map(pid, "uid"|"gid", {{inside=, outside=, count=}, ...})
 * -> true | fail. Parent side, once per map. */
static int l_write_id_map(lua_State *L)
{
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	static const char *const kinds[] = { "uid", "gid", NULL };
	enum pf_id_kind kind = luaL_checkoption(L, 2, NULL, kinds) == 0 ? PF_UID : PF_GID;
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 3);
	luaL_argcheck(L, n >= 1 && n <= MAX_RANGES, 3, "between 1 and 340 ranges");

	struct pf_id_range ranges[MAX_RANGES];
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 3, i);
		luaL_argcheck(L, lua_istable(L, -1), 3, "ranges must be tables");
		ranges[i - 1] = (struct pf_id_range){
			.inside = check_id_field(L, 3, "inside"),
			.outside = check_id_field(L, 3, "outside"),
			.count = check_id_field(L, 3, "count"),
		};
		lua_pop(L, 1);
	}
	struct pf_error err = { 0 };
	if (pf_userns_write_map(pid, kind, ranges, (size_t)n, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.deny_setgroups(pid) -> true | fail */
static int l_deny_setgroups(lua_State *L)
{
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	struct pf_error err = { 0 };
	if (pf_userns_deny_setgroups(pid, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* An id argument: 0 to 4294967294. A larger integer would wrap in the
 * cast to uid_t (4294967296 is 0, root), and (uid_t)-1 means "unchanged"
 * to setresuid(2). */
static uint32_t check_id(lua_State *L, int idx)
{
	lua_Integer v = luaL_checkinteger(L, idx);
	luaL_argcheck(L, v >= 0 && v < (lua_Integer)UINT32_MAX, idx, "ids go from 0 to 4294967294");
	return (uint32_t)v;
}

/* core.switch_user(uid, gid [, groups]) -> true | fail. Child side. */
static int l_switch_user(lua_State *L)
{
	uid_t uid = (uid_t)check_id(L, 1);
	gid_t gid = (gid_t)check_id(L, 2);
	gid_t groups[NGROUPS_MAX > 65536 ? 65536 : NGROUPS_MAX];
	size_t ngroups = 0;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_Integer n = luaL_len(L, 3);
		luaL_argcheck(L, n >= 0 && (size_t)n <= sizeof(groups) / sizeof(groups[0]), 3,
			      "too many groups");
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, 3, i);
			groups[ngroups++] = (gid_t)check_id(L, -1);
			lua_pop(L, 1);
		}
	}
	struct pf_error err = { 0 };
	if (pf_user_switch(uid, gid, groups, ngroups, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_userns(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "write_id_map", l_write_id_map },
		{ "deny_setgroups", l_deny_setgroups },
		{ "switch_user", l_switch_user },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
