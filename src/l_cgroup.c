/* pflask.core: cgroup directories (parent side). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "cgroup.h"
#include "l_util.h"

/* core.cgroup_children(path) -> {name, ...} | fail: the cgroups directly
 * below path, unsorted. */
static int l_cgroup_children(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	DIR *d = opendir(path);
	if (!d) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "open %s", path);
		return pf_l_fail(L, &err);
	}
	lua_newtable(L);
	int i = 1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* lua_pushstring cannot fail softly; a memory error would leak
		 * d, which is acceptable for an out-of-memory abort. */
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, i++);
	}
	closedir(d);
	return 1;
}

/* core.cgroup_create(path) -> true | fail */
static int l_cgroup_create(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_cgroup_create(luaL_checkstring(L, 1), &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.cgroup_write(path, file, value) -> true | fail */
static int l_cgroup_write(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_cgroup_write(luaL_checkstring(L, 1), luaL_checkstring(L, 2),
			    luaL_checkstring(L, 3), &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.cgroup_attach(path, pid) -> true | fail */
static int l_cgroup_attach(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_cgroup_attach(luaL_checkstring(L, 1), (pid_t)luaL_checkinteger(L, 2), &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.cgroup_remove(path [, kill]) -> true | fail */
static int l_cgroup_remove(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_cgroup_remove(luaL_checkstring(L, 1), lua_toboolean(L, 2), &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_cgroup(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "cgroup_children", l_cgroup_children },
		{ "cgroup_create", l_cgroup_create },
		{ "cgroup_write", l_cgroup_write },
		{ "cgroup_attach", l_cgroup_attach },
		{ "cgroup_remove", l_cgroup_remove },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
