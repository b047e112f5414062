/* pflask.core: capabilities and no_new_privs (child side, but for
 * caps_bounding and caps_last). Capability sets are integers, bit n being
 * capability n. */
#include "caps.h"
#include "l_util.h"

static uint64_t check_set(lua_State *L, int idx)
{
	return (uint64_t)luaL_checkinteger(L, idx);
}

/* core.caps_last() -> integer: highest capability the kernel knows. */
static int l_caps_last(lua_State *L)
{
	lua_pushinteger(L, pf_caps_last());
	return 1;
}

/* core.caps_bounding([which]) -> set | fail: this process's bounding set,
 * or its part in which (a prctl per capability read). */
static int l_caps_bounding(lua_State *L)
{
	uint64_t which = (uint64_t)luaL_optinteger(L, 1, -1);
	struct pf_error err = { 0 };
	uint64_t set;
	if (pf_caps_get_bounding(which, &set, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)set);
	return 1;
}

/* core.caps_drop_bounding(keep [, keep_on_user_switch]) -> true | fail.
 * Child, before the user switch. */
static int l_caps_drop_bounding(lua_State *L)
{
	uint64_t keep = check_set(L, 1);
	int keepcaps = lua_toboolean(L, 2);
	struct pf_error err = { 0 };
	if (pf_caps_drop_bounding(keep, keepcaps, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.caps_apply(keep [, ambient]) -> true | fail. Child, after the user
 * switch, right before exec. */
static int l_caps_apply(lua_State *L)
{
	uint64_t keep = check_set(L, 1);
	uint64_t ambient = (uint64_t)luaL_optinteger(L, 2, 0);
	struct pf_error err = { 0 };
	if (pf_caps_apply(keep, ambient, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.no_new_privs() -> true | fail. Child. */
static int l_no_new_privs(lua_State *L)
{
	struct pf_error err = { 0 };
	if (pf_caps_no_new_privs(&err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_caps(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "caps_last", l_caps_last },
		{ "caps_bounding", l_caps_bounding },
		{ "caps_drop_bounding", l_caps_drop_bounding },
		{ "caps_apply", l_caps_apply },
		{ "no_new_privs", l_no_new_privs },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
