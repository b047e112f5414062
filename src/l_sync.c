/* pflask.core Channel: the sync channel between supervisor and child. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "l_util.h"
#include "sync.h"

#define CHANNEL "pflask.Channel"

struct channel {
	int fd; /* -1 once closed */
};

void pf_l_push_channel(lua_State *L, int fd)
{
	struct channel *ch = lua_newuserdatauv(L, sizeof(*ch), 0);
	ch->fd = fd;
	luaL_setmetatable(L, CHANNEL);
}

static struct channel *check_open(lua_State *L, int idx)
{
	struct channel *ch = luaL_checkudata(L, idx, CHANNEL);
	if (ch->fd < 0)
		luaL_error(L, "attempt to use a closed channel");
	return ch;
}

int pf_l_channel_fd(lua_State *L, int idx)
{
	struct channel *ch = luaL_checkudata(L, idx, CHANNEL);
	return ch->fd;
}

/* chan:release() -- parent: let the child go on. */
static int channel_release(lua_State *L)
{
	struct channel *ch = check_open(L, 1);
	struct pf_error err = { 0 };
	if (pf_sync_release(ch->fd, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* chan:wait() -- child: block until released; fail when the parent is gone. */
static int channel_wait(lua_State *L)
{
	struct channel *ch = check_open(L, 1);
	struct pf_error err = { 0 };
	if (pf_sync_wait(ch->fd, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* chan:report(status, errno, message) -- child: send a failure record. */
static int channel_report(lua_State *L)
{
	struct channel *ch = check_open(L, 1);
	int status = (int)luaL_checkinteger(L, 2);
	struct pf_error failure = { .code = (int)luaL_optinteger(L, 3, 0) };
	const char *message = luaL_checkstring(L, 4);
	strncpy(failure.message, message, sizeof(failure.message) - 1);
	lua_pushboolean(L, pf_sync_report(ch->fd, status, &failure) == 0);
	return 1;
}

/* chan:result() -- parent: true once the child exec'd (channel closed),
 * true, "created" when it waits on its start FIFO, or false, message,
 * errno, status when it reported a failure. */
static int channel_result(lua_State *L)
{
	struct channel *ch = check_open(L, 1);
	struct pf_error err = { 0 };
	struct pf_sync_record rec;
	int r = pf_sync_result(ch->fd, &rec, &err);
	if (r < 0)
		return pf_l_fail(L, &err);
	if (r == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	if (r == 2) {
		lua_pushboolean(L, 1);
		lua_pushliteral(L, "created");
		return 2;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, rec.message);
	lua_pushinteger(L, rec.code);
	lua_pushinteger(L, rec.status);
	return 4;
}

static int channel_fileno(lua_State *L)
{
	lua_pushinteger(L, check_open(L, 1)->fd);
	return 1;
}

/* Shared by close, __close and __gc: idempotent. */
static int channel_close(lua_State *L)
{
	struct channel *ch = luaL_checkudata(L, 1, CHANNEL);
	if (ch->fd >= 0) {
		close(ch->fd);
		ch->fd = -1;
	}
	return 0;
}

static int channel_tostring(lua_State *L)
{
	struct channel *ch = luaL_checkudata(L, 1, CHANNEL);
	if (ch->fd < 0)
		lua_pushliteral(L, "pflask.Channel (closed)");
	else
		lua_pushfstring(L, "pflask.Channel (fd %d)", ch->fd);
	return 1;
}

static const luaL_Reg channel_methods[] = {
	{ "release", channel_release },
	{ "wait", channel_wait },
	{ "report", channel_report },
	{ "result", channel_result },
	{ "fileno", channel_fileno },
	{ "close", channel_close },
	{ NULL, NULL },
};

static const luaL_Reg channel_meta[] = {
	{ "__gc", channel_close },
	{ "__close", channel_close },
	{ "__tostring", channel_tostring },
	{ NULL, NULL },
};

void pf_l_open_sync(lua_State *L)
{
	luaL_newmetatable(L, CHANNEL);
	luaL_setfuncs(L, channel_meta, 0);
	luaL_newlib(L, channel_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
