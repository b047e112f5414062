#include "l_util.h"

#include <string.h>

int pf_l_fail(lua_State *L, const struct pf_error *err)
{
	luaL_pushfail(L);
	lua_pushstring(L, err->message);
	lua_pushinteger(L, err->code);
	return 3;
}

char **pf_l_check_string_array(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_Integer n = luaL_len(L, idx);
	luaL_argcheck(L, n >= 1, idx, "empty array");
	char **array = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, idx, i) != LUA_TSTRING)
			luaL_argerror(L, idx, lua_pushfstring(L, "item %d is not a string", (int)i));
		array[i - 1] = (char *)lua_tostring(L, -1);
		lua_pop(L, 1); /* still referenced by the table */
	}
	array[n] = NULL;
	return array;
}

void pf_l_register(lua_State *L, const luaL_Reg *funcs)
{
	luaL_setfuncs(L, funcs, 0);
}
