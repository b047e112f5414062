/* pflask.core: cgroup directories (parent side). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cgroup.h"
#include "devices.h"
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

/* Rules argument idx: a sequence of devices.allow lines, parsed into rules
 * (a userdata on the stack). Raises on a bad line. */
static struct pf_device_rule *check_rules(lua_State *L, int idx, size_t *n)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	*n = (size_t)luaL_len(L, idx);
	struct pf_device_rule *rules = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof(*rules), 0);
	for (size_t i = 0; i < *n; i++) {
		lua_geti(L, idx, (lua_Integer)i + 1);
		const char *line = lua_tostring(L, -1);
		struct pf_error err = { 0 };
		if (!line || pf_device_rule_parse(line, &rules[i], &err) < 0)
			luaL_argerror(L, idx, line ? err.message : "rules must be strings");
		lua_pop(L, 1);
	}
	return rules;
}

/* core.device_rule_check(line) -> true | fail: is line a devices.allow
 * rule ("c 1:3 rwm", "b *:* m", "a")? */
static int l_device_rule_check(lua_State *L)
{
	struct pf_device_rule rule;
	struct pf_error err = { 0 };
	if (pf_device_rule_parse(luaL_checkstring(L, 1), &rule, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.devices_attach(path, rules) -> true | fail: a cgroup v2 device
 * program allowing only rules ({"c 1:3 rwm", ...}); raises on a bad rule. */
static int l_devices_attach(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t n;
	struct pf_device_rule *rules = check_rules(L, 2, &n);
	struct pf_error err = { 0 };
	if (pf_devices_attach(path, rules, n, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.device_number(path) -> "char"|"block", major, minor | false | fail:
 * the device a node stands for (following symlinks); false when path is
 * not a device node. */
static int l_device_number(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;
	if (stat(path, &st) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "stat %s", path);
		return pf_l_fail(L, &err);
	}
	if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushstring(L, S_ISCHR(st.st_mode) ? "char" : "block");
	lua_pushinteger(L, major(st.st_rdev));
	lua_pushinteger(L, minor(st.st_rdev));
	return 3;
}

void pf_l_open_cgroup(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "cgroup_children", l_cgroup_children },
		{ "cgroup_create", l_cgroup_create },
		{ "cgroup_write", l_cgroup_write },
		{ "cgroup_attach", l_cgroup_attach },
		{ "cgroup_remove", l_cgroup_remove },
		{ "device_rule_check", l_device_rule_check },
		{ "devices_attach", l_devices_attach },
		{ "device_number", l_device_number },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
