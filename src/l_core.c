/* luaopen_pflask_core: the module table, assembled from the binding files.
 * Linked into the pflask executable and built as pflask/core.so for stock
 * lua5.4 and busted. */
#include "l_util.h"

#ifndef PFLASK_VERSION
#define PFLASK_VERSION "0.0.0"
#endif

LUAMOD_API int luaopen_pflask_core(lua_State *L)
{
	luaL_checkversion(L);
	lua_newtable(L);
	pf_l_open_sync(L);
	pf_l_open_process(L);
	pf_l_open_ns(L);
	pf_l_open_userns(L);
	pf_l_open_mount(L);
	pf_l_open_system(L);
	pf_l_open_netif(L);
	pf_l_open_caps(L);
	pf_l_open_cgroup(L);
	pf_l_open_pty(L);
	pf_l_open_state(L);
	lua_pushliteral(L, PFLASK_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
