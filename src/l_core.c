/* luaopen_pflask_core: the module table, assembled from the binding files.
 * Linked into the pflask executable and built as pflask/core.so for stock
 * lua5.4 and busted. */
#include "l_util.h"
#include "machined.h"

#ifndef PFLASK_VERSION
#define PFLASK_VERSION "0.0.0"
#endif

/* core.features: what this build can do, in the order `pflask --version`
 * prints them, as systemd tools do: "+name" built in, "-name" not. netlink
 * (libnl), caps (libcap), libmount and seccomp (libseccomp) are required
 * by the build; machined needs sd-bus headers at
 * build time (libsystemd itself is loaded only when a container registers). */
static void push_features(lua_State *L)
{
	const char *features[] = {
		"+netlink",
		"+libmount",
		"+caps",
		"+seccomp",
		pf_machined_supported() ? "+machined" : "-machined",
	};
	size_t n = sizeof(features) / sizeof(features[0]);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, features[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

LUAMOD_API int luaopen_pflask_core(lua_State *L)
{
	luaL_checkversion(L);
	/* Sized once for its ~130 entries: growing it from empty rehashed it
	 * eight times at every start. */
	lua_createtable(L, 0, 160);
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
	pf_l_open_supervise(L);
	pf_l_open_state(L);
	pf_l_open_machined(L);
	pf_l_open_exec(L);
	pf_l_open_sandbox(L);
	lua_pushliteral(L, PFLASK_VERSION);
	lua_setfield(L, -2, "version");
	push_features(L);
	lua_setfield(L, -2, "features");
	return 1;
}
