/* pflask.core: network namespaces, interfaces, addresses, routes.
 *
 * Every function takes an optional last argument ns: a NetNS handle from
 * core.netns_open (work in that namespace), or nil (the caller's own). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "l_util.h"
#include "netif.h"

#define NETNS_MT "pflask.NetNS"

struct l_netns {
	int fd; /* -1 once closed */
};

static int netns_close(lua_State *L)
{
	struct l_netns *ns = luaL_checkudata(L, 1, NETNS_MT);
	if (ns->fd >= 0) {
		close(ns->fd);
		ns->fd = -1;
	}
	return 0;
}

static int netns_fileno(lua_State *L)
{
	struct l_netns *ns = luaL_checkudata(L, 1, NETNS_MT);
	if (ns->fd < 0)
		luaL_pushfail(L);
	else
		lua_pushinteger(L, ns->fd);
	return 1;
}

static int netns_tostring(lua_State *L)
{
	struct l_netns *ns = luaL_checkudata(L, 1, NETNS_MT);
	if (ns->fd < 0)
		lua_pushliteral(L, "NetNS (closed)");
	else
		lua_pushfstring(L, "NetNS (fd %d)", ns->fd);
	return 1;
}

/* core.netns_open(pid | path) -> NetNS | fail. Parent. The handle keeps the
 * namespace alive (and the virtual interfaces in it) until closed. */
static int l_netns_open(lua_State *L)
{
	pid_t pid = 0;
	const char *path = NULL;
	if (lua_type(L, 1) == LUA_TNUMBER)
		pid = (pid_t)luaL_checkinteger(L, 1);
	else
		path = luaL_checkstring(L, 1);
	struct l_netns *ns = lua_newuserdatauv(L, sizeof(*ns), 0);
	ns->fd = -1;
	luaL_setmetatable(L, NETNS_MT);
	struct pf_error err = { 0 };
	int fd = pf_netns_open(pid, path, &err);
	if (fd < 0)
		return pf_l_fail(L, &err);
	ns->fd = fd;
	return 1;
}

/* The namespace fd of argument idx: -1 for none/nil. */
static int opt_ns(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return -1;
	struct l_netns *ns = luaL_checkudata(L, idx, NETNS_MT);
	luaL_argcheck(L, ns->fd >= 0, idx, "network namespace handle is closed");
	return ns->fd;
}

/* A field of table idx as a NetNS fd, -1 when absent. */
static int field_ns(lua_State *L, int idx, const char *field)
{
	int fd = -1;
	if (lua_getfield(L, idx, field) != LUA_TNIL) {
		struct l_netns *ns = luaL_testudata(L, -1, NETNS_MT);
		if (!ns || ns->fd < 0)
			luaL_argerror(L, idx, lua_pushfstring(L, "'%s' must be an open NetNS", field));
		fd = ns->fd;
	}
	lua_pop(L, 1);
	return fd;
}

/* A string field (stays valid: the table holds it), NULL when absent. */
static const char *field_string(lua_State *L, int idx, const char *field)
{
	const char *s = NULL;
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TSTRING)
		s = lua_tostring(L, -1);
	else if (t != LUA_TNIL)
		luaL_argerror(L, idx, lua_pushfstring(L, "'%s' must be a string", field));
	lua_pop(L, 1);
	return s;
}

/* An interface argument: a name, or an index. */
static const char *check_dev(lua_State *L, int idx, int *index)
{
	*index = 0;
	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Integer i = luaL_checkinteger(L, idx);
		luaL_argcheck(L, i > 0 && i <= 0x7fffffff, idx, "not an interface index");
		*index = (int)i;
		return NULL;
	}
	size_t len;
	const char *name = luaL_checklstring(L, idx, &len);
	luaL_argcheck(L, len > 0 && len < PF_IFNAME_MAX, idx, "interface names are 1 to 15 characters");
	return name;
}

static void push_info(lua_State *L, const struct pf_link_info *info)
{
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, info->index);
	lua_setfield(L, -2, "index");
	lua_pushstring(L, info->name);
	lua_setfield(L, -2, "name");
	if (info->kind[0]) {
		lua_pushstring(L, info->kind);
		lua_setfield(L, -2, "kind");
	}
	lua_pushinteger(L, info->mtu);
	lua_setfield(L, -2, "mtu");
	if (info->address[0]) {
		lua_pushstring(L, info->address);
		lua_setfield(L, -2, "address");
	}
	lua_pushboolean(L, info->up);
	lua_setfield(L, -2, "up");
	if (info->master) {
		lua_pushinteger(L, info->master);
		lua_setfield(L, -2, "master");
	}
	if (info->link) {
		lua_pushinteger(L, info->link);
		lua_setfield(L, -2, "link");
	}
}

/* core.link_get(dev [, ns]) -> {index=, name=, kind=, mtu=, address=, up=,
 * master=, link=} | fail (errno ENODEV when there is none) */
static int l_link_get(lua_State *L)
{
	int index;
	const char *name = check_dev(L, 1, &index);
	int nsfd = opt_ns(L, 2);
	struct pf_link_info info;
	struct pf_error err = { 0 };
	if (pf_netif_get(nsfd, name, index, &info, &err) < 0)
		return pf_l_fail(L, &err);
	push_info(L, &info);
	return 1;
}

static int append_info(const struct pf_link_info *info, void *data)
{
	lua_State *L = data;
	push_info(L, info);
	lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
	return 0;
}

/* core.link_list([ns]) -> array of link_get tables | fail */
static int l_link_list(lua_State *L)
{
	int nsfd = opt_ns(L, 1);
	luaL_checkstack(L, 4, NULL);
	lua_newtable(L);
	struct pf_error err = { 0 };
	if (pf_netif_list(nsfd, append_info, L, &err) < 0)
		return pf_l_fail(L, &err);
	return 1;
}

/* core.link_add({kind=, name=, peer=, master=, mode=, netns=, peer_netns=} [, ns])
 * -> true | fail */
static int l_link_add(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int nsfd = opt_ns(L, 2);
	struct pf_link_new spec = {
		.kind = field_string(L, 1, "kind"),
		.name = field_string(L, 1, "name"),
		.master = field_string(L, 1, "master"),
		.mode = field_string(L, 1, "mode"),
		.peer = field_string(L, 1, "peer"),
		.target_nsfd = field_ns(L, 1, "netns"),
		.peer_nsfd = field_ns(L, 1, "peer_netns"),
	};
	luaL_argcheck(L, spec.kind != NULL, 1, "'kind' is required");
	luaL_argcheck(L, spec.name && *spec.name && strlen(spec.name) < PF_IFNAME_MAX, 1,
		      "'name' must be 1 to 15 characters");
	luaL_argcheck(L, !spec.peer || (*spec.peer && strlen(spec.peer) < PF_IFNAME_MAX), 1,
		      "'peer' must be 1 to 15 characters");
	struct pf_error err = { 0 };
	if (pf_netif_add(nsfd, &spec, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.link_del(dev [, ns]) -> true | fail */
static int l_link_del(lua_State *L)
{
	int index;
	const char *name = check_dev(L, 1, &index);
	int nsfd = opt_ns(L, 2);
	struct pf_error err = { 0 };
	if (pf_netif_del(nsfd, name, index, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.link_set(dev, {up=, mtu=, address=, name=, master=, netns=} [, ns])
 * -> true | fail. master=false releases from a bridge. */
static int l_link_set(lua_State *L)
{
	int index;
	const char *name = check_dev(L, 1, &index);
	luaL_checktype(L, 2, LUA_TTABLE);
	int nsfd = opt_ns(L, 3);
	struct pf_link_change c = PF_LINK_CHANGE_INIT;
	c.target_nsfd = field_ns(L, 2, "netns");
	c.name = field_string(L, 2, "name");
	luaL_argcheck(L, !c.name || (*c.name && strlen(c.name) < PF_IFNAME_MAX), 2,
		      "'name' must be 1 to 15 characters");
	c.address = field_string(L, 2, "address");
	if (lua_getfield(L, 2, "up") != LUA_TNIL)
		c.up = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (lua_getfield(L, 2, "mtu") != LUA_TNIL) {
		int ok;
		lua_Integer mtu = lua_tointegerx(L, -1, &ok);
		luaL_argcheck(L, ok && mtu > 0 && mtu <= 0x7fffffff, 2, "'mtu' must be a positive integer");
		c.mtu = (unsigned)mtu;
	}
	lua_pop(L, 1);
	int t = lua_getfield(L, 2, "master");
	if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
		c.master = "";
	else if (t == LUA_TSTRING)
		c.master = lua_tostring(L, -1); /* held by the table */
	else if (t != LUA_TNIL)
		luaL_argerror(L, 2, "'master' must be a name or false");
	lua_pop(L, 1);
	struct pf_error err = { 0 };
	if (pf_netif_set(nsfd, name, index, &c, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static int addr(lua_State *L, bool add)
{
	const char *dev = luaL_checkstring(L, 1);
	const char *cidr = luaL_checkstring(L, 2);
	int nsfd = opt_ns(L, 3);
	struct pf_error err = { 0 };
	if (pf_netif_addr(nsfd, add, dev, cidr, true, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.addr_add(dev, "10.0.0.1/24" [, ns]) -> true | fail. IPv6 addresses
 * skip duplicate address detection (usable at once). */
static int l_addr_add(lua_State *L)
{
	return addr(L, true);
}

/* core.addr_del(dev, "10.0.0.1/24" [, ns]) -> true | fail */
static int l_addr_del(lua_State *L)
{
	return addr(L, false);
}

static int route(lua_State *L, bool add)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int nsfd = opt_ns(L, 2);
	struct pf_route rt = {
		.dst = field_string(L, 1, "dst"),
		.gateway = field_string(L, 1, "gateway"),
		.dev = field_string(L, 1, "dev"),
	};
	if (lua_getfield(L, 1, "metric") != LUA_TNIL) {
		int ok;
		lua_Integer m = lua_tointegerx(L, -1, &ok);
		luaL_argcheck(L, ok && m >= 0 && m <= 0xffffffff, 1, "'metric' must be an integer");
		rt.metric = (unsigned)m;
	}
	lua_pop(L, 1);
	luaL_argcheck(L, rt.gateway || rt.dev, 1, "a route needs 'gateway' or 'dev'");
	struct pf_error err = { 0 };
	if (pf_netif_route(nsfd, add, &rt, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.route_add{dst="default"|"CIDR", gateway=, dev=, metric=} [, ns] -> true | fail */
static int l_route_add(lua_State *L)
{
	return route(L, true);
}

/* core.route_del{...} [, ns] -> true | fail */
static int l_route_del(lua_State *L)
{
	return route(L, false);
}

void pf_l_open_netif(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "close", netns_close },
		{ "fileno", netns_fileno },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", netns_close },
		{ "__close", netns_close },
		{ "__tostring", netns_tostring },
		{ NULL, NULL },
	};
	if (luaL_newmetatable(L, NETNS_MT)) {
		luaL_setfuncs(L, meta, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	static const luaL_Reg funcs[] = {
		{ "netns_open", l_netns_open },
		{ "link_get", l_link_get },
		{ "link_list", l_link_list },
		{ "link_add", l_link_add },
		{ "link_del", l_link_del },
		{ "link_set", l_link_set },
		{ "addr_add", l_addr_add },
		{ "addr_del", l_addr_del },
		{ "route_add", l_route_add },
		{ "route_del", l_route_del },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
