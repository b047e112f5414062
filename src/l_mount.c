/* pflask.core: mounts and the root directory (child side). */
#include "l_util.h"
#include "mount.h"

static int push_result(lua_State *L, int r, const struct pf_error *err)
{
	if (r < 0)
		return pf_l_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.make_private() -> true | fail: no mount propagates to the host. */
static int l_make_private(lua_State *L)
{
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_make_private(&err), &err);
}

/* core.mount_proc(target) -> true | fail */
static int l_mount_proc(lua_State *L)
{
	const char *target = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_proc(target, &err), &err);
}

/* core.pivot_root(dir) -> true | fail: dir becomes "/", the old root is
 * detached, the working directory is "/". */
static int l_pivot_root(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_pivot_root(dir, &err), &err);
}

/* core.chroot(dir) -> true | fail: chroot(2) and chdir("/"). */
static int l_chroot(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_chroot(dir, &err), &err);
}

void pf_l_open_mount(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "make_private", l_make_private },
		{ "mount_proc", l_mount_proc },
		{ "pivot_root", l_pivot_root },
		{ "chroot", l_chroot },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
