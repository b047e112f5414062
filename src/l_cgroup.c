/* pflask.core: cgroup directories (parent side). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
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

/* Is process pid gone (no such process, or a zombie: a SIGKILLed pflask
 * whose parent does not reap)? */
static bool gone(long pid)
{
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return true;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* core.cgroup_stale(path, known) -> {name, ...} | fail: the cgroups
 * pflask.PID.N directly below path whose supervisor PID is gone. known
 * (a table, pid string -> alive boolean) is read and filled, so that the
 * parents of one start ask about each supervisor once. In C because every
 * start sweeps every parent: listing a thousand running containers'
 * cgroups into Lua strings cost ~3,000 instructions each. */
static int l_cgroup_stale(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
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
		if (e->d_type != DT_DIR || strncmp(e->d_name, "pflask.", 7) != 0)
			continue;
		char *end;
		const char *digits = e->d_name + 7;
		if (*digits < '0' || *digits > '9')
			continue;
		long pid = strtol(digits, &end, 10);
		if (end == digits || *end != '.' || end[1] < '0' || end[1] > '9')
			continue;
		const char *q = end + 1;
		while (*q >= '0' && *q <= '9')
			q++;
		if (*q != '\0')
			continue;
		lua_pushlstring(L, digits, (size_t)(end - digits));
		int known = lua_rawget(L, 2);
		bool alive;
		if (known == LUA_TNIL) {
			alive = !gone(pid);
			lua_pushlstring(L, digits, (size_t)(end - digits));
			lua_pushboolean(L, alive);
			lua_rawset(L, 2);
		} else {
			alive = lua_toboolean(L, -1);
		}
		lua_pop(L, 1);
		if (!alive) {
			lua_pushstring(L, e->d_name);
			lua_rawseti(L, -2, i++);
		}
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

/* core.census_open(dir [, kind]) -> id, created | fail: the census of the
 * supervisors that made cgroups (kind "cgroups", the default) or that
 * hold a registry record ("records") (pf_census_open_kind); fails (EPERM)
 * on a set that is not pflask's. */
static int l_census_open(lua_State *L)
{
	static const char *const kinds[] = { "cgroups", "records", NULL };
	static const int projs[] = { 'c', 'r' };
	struct pf_error err = { 0 };
	bool created;
	const char *dir = luaL_checkstring(L, 1);
	int kind = luaL_checkoption(L, 2, "cgroups", kinds);
	int id = pf_census_open_kind(dir, projs[kind], &created, &err);
	if (id < 0)
		return pf_l_fail(L, &err);
	lua_pushinteger(L, id);
	lua_pushboolean(L, created);
	return 2;
}

static int census_id(lua_State *L)
{
	lua_Integer id = luaL_checkinteger(L, 1);
	luaL_argcheck(L, id >= 0 && id <= INT_MAX, 1, "not a census id");
	return (int)id;
}

/* core.census_join(id, delta) -> true | fail: delta 1 joins, -1 leaves. */
static int l_census_join(lua_State *L)
{
	int id = census_id(L);
	lua_Integer delta = luaL_checkinteger(L, 2);
	luaL_argcheck(L, delta == 1 || delta == -1, 2, "must be 1 or -1");
	struct pf_error err = { 0 };
	if (pf_census_join(id, (int)delta, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.census_deaths(id) -> n | fail: deaths not settled yet. */
static int l_census_deaths(lua_State *L)
{
	int id = census_id(L), n;
	struct pf_error err = { 0 };
	if (pf_census_deaths(id, &n, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushinteger(L, n);
	return 1;
}

/* core.census_lock(id, lock) -> true | fail: take (waiting up to 2 s) or give back
 * the sweep mutex. */
static int l_census_lock(lua_State *L)
{
	int id = census_id(L);
	struct pf_error err = { 0 };
	if (pf_census_lock(id, lua_toboolean(L, 2), &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.census_settle(id, n) -> true | fail */
static int l_census_settle(lua_State *L)
{
	int id = census_id(L);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_argcheck(L, n >= 0 && n <= 32767, 2, "out of range");
	struct pf_error err = { 0 };
	if (pf_census_settle(id, (int)n, &err) < 0)
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
		{ "cgroup_stale", l_cgroup_stale },
		{ "cgroup_create", l_cgroup_create },
		{ "cgroup_write", l_cgroup_write },
		{ "cgroup_attach", l_cgroup_attach },
		{ "cgroup_remove", l_cgroup_remove },
		{ "census_open", l_census_open },
		{ "census_join", l_census_join },
		{ "census_deaths", l_census_deaths },
		{ "census_lock", l_census_lock },
		{ "census_settle", l_census_settle },
		{ "device_rule_check", l_device_rule_check },
		{ "devices_attach", l_devices_attach },
		{ "device_number", l_device_number },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
