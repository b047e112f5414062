/* pflask.core: registration with systemd-machined (machined.h). */
#include <stdbool.h>

#include "l_util.h"
#include "machined.h"

/* core.machined_register(name, leader, root, create_scope) -> true | fail
 * Blocks on the system bus; the supervisor calls it, never a child. */
static int l_machined_register(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	lua_Integer leader = luaL_checkinteger(L, 2);
	const char *root = luaL_checkstring(L, 3);
	bool create_scope = lua_toboolean(L, 4);
	luaL_argcheck(L, leader > 0 && leader <= 0x7fffffff, 2, "not a process id");
	struct pf_error err = { 0 };
	if (pf_machined_register(name, (pid_t)leader, root, create_scope, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.machined_unregister(name) -> true | fail (errno ENOENT: unknown) */
static int l_machined_unregister(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	if (pf_machined_unregister(name, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_machined(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "machined_register", l_machined_register },
		{ "machined_unregister", l_machined_unregister },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
