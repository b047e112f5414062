/* pflask.core: small system calls recipes need around a container:
 * identity, users, files, the environment, the hostname. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdbool.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "l_util.h"

extern char **environ;

static int fail_errno(lua_State *L, int errnum, const char *what, const char *arg)
{
	struct pf_error err;
	pf_error_errno(&err, errnum, "%s %s", what, arg);
	return pf_l_fail(L, &err);
}

/* core.sethostname(name) -> true | fail */
static int l_sethostname(lua_State *L)
{
	size_t len;
	const char *name = luaL_checklstring(L, 1, &len);
	if (sethostname(name, len) < 0)
		return fail_errno(L, errno, "set hostname", name);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.chdir(dir) -> true | fail */
static int l_chdir(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	if (chdir(dir) < 0)
		return fail_errno(L, errno, "chdir", dir);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.getcwd() -> path | fail */
static int l_getcwd(lua_State *L)
{
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof(buf)))
		return fail_errno(L, errno, "getcwd", "");
	lua_pushstring(L, buf);
	return 1;
}

static const char *file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "directory";
	case S_IFREG: return "file";
	case S_IFLNK: return "link";
	case S_IFCHR: return "char";
	case S_IFBLK: return "block";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

static int push_stat(lua_State *L, const char *path, bool follow)
{
	struct stat st;
	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return fail_errno(L, errno, "stat", path);
	lua_createtable(L, 0, 7);
	lua_pushstring(L, file_type(st.st_mode));
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, st.st_mode & 07777);
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, st.st_uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, st.st_gid);
	lua_setfield(L, -2, "gid");
	lua_pushinteger(L, st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)st.st_dev);
	lua_setfield(L, -2, "dev");
	lua_pushinteger(L, (lua_Integer)st.st_ino);
	lua_setfield(L, -2, "ino");
	return 1;
}

/* core.stat(path) / core.lstat(path) -> {type=, mode=, uid=, gid=, size=,
 * dev=, ino=} | fail; type is "directory", "file", "link", "char", "block",
 * "fifo" or "socket". */
static int l_stat(lua_State *L)
{
	return push_stat(L, luaL_checkstring(L, 1), true);
}

static int l_lstat(lua_State *L)
{
	return push_stat(L, luaL_checkstring(L, 1), false);
}

/* core.read_in_root(root, path [, max]) -> contents | fail
 * path is resolved as if root were "/": no symlink or ".." leaves it. */
static int l_read_in_root(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	lua_Integer max = luaL_optinteger(L, 3, 1 << 20);
	luaL_argcheck(L, max > 0, 3, "must be positive");
	struct pf_error err = { 0 };
	size_t len;
	char *data = pf_fs_read_in_root(root, path, (size_t)max, &len, &err);
	if (!data)
		return pf_l_fail(L, &err);
	lua_pushlstring(L, data, len);
	free(data);
	return 1;
}

static int l_getuid(lua_State *L) { lua_pushinteger(L, getuid()); return 1; }
static int l_geteuid(lua_State *L) { lua_pushinteger(L, geteuid()); return 1; }
static int l_getgid(lua_State *L) { lua_pushinteger(L, getgid()); return 1; }
static int l_getegid(lua_State *L) { lua_pushinteger(L, getegid()); return 1; }
static int l_getpid(lua_State *L) { lua_pushinteger(L, getpid()); return 1; }

/* core.getpwnam(name or uid) -> {name=, uid=, gid=, home=, shell=} | nil
 * From the host's user database (NSS): never call it inside a container
 * root, whose NSS modules are not ours to load. */
static int l_getpwnam(lua_State *L)
{
	errno = 0;
	struct passwd *pw = lua_isinteger(L, 1) ? getpwuid((uid_t)lua_tointeger(L, 1))
						: getpwnam(luaL_checkstring(L, 1));
	if (!pw) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH)
			return fail_errno(L, errno, "look up user", luaL_tolstring(L, 1, NULL));
		luaL_pushfail(L);
		return 1;
	}
	lua_createtable(L, 0, 5);
	lua_pushstring(L, pw->pw_name);
	lua_setfield(L, -2, "name");
	lua_pushinteger(L, pw->pw_uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, pw->pw_gid);
	lua_setfield(L, -2, "gid");
	lua_pushstring(L, pw->pw_dir);
	lua_setfield(L, -2, "home");
	lua_pushstring(L, pw->pw_shell);
	lua_setfield(L, -2, "shell");
	return 1;
}

/* core.getgrouplist(name, gid) -> {gid, ...}: the host's groups of user
 * name, including gid. */
static int l_getgrouplist(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	gid_t gid = (gid_t)luaL_checkinteger(L, 2);
	int n = 64;
	_cleanup_free_ gid_t *groups = NULL;
	for (;;) {
		free(groups);
		groups = malloc(sizeof(gid_t) * (size_t)n);
		if (!groups)
			return fail_errno(L, ENOMEM, "group list of", name);
		int want = n;
		if (getgrouplist(name, gid, groups, &want) >= 0) {
			n = want;
			break;
		}
		n = want > n ? want : n * 2;
	}
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, groups[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* core.environ() -> {NAME = value}: the whole current environment, which
 * os.getenv cannot list. */
static int l_environ(lua_State *L)
{
	lua_newtable(L);
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		lua_pushlstring(L, *e, (size_t)(eq - *e));
		lua_pushstring(L, eq + 1);
		lua_rawset(L, -3);
	}
	return 1;
}

/* core.ttyname(fd) -> path | fail: the terminal on fd. */
static int l_ttyname(lua_State *L)
{
	char buf[PATH_MAX];
	int r = ttyname_r((int)luaL_checkinteger(L, 1), buf, sizeof(buf));
	if (r != 0)
		return fail_errno(L, r, "ttyname", "");
	lua_pushstring(L, buf);
	return 1;
}

/* core.mkdtemp(template) -> path | fail: template ends in XXXXXX; the new
 * directory is mode 0700. */
static int l_mkdtemp(lua_State *L)
{
	size_t len;
	const char *template = luaL_checklstring(L, 1, &len);
	luaL_Buffer b;
	char *buf = luaL_buffinitsize(L, &b, len + 1);
	memcpy(buf, template, len + 1);
	if (!mkdtemp(buf))
		return fail_errno(L, errno, "mkdtemp", template);
	luaL_pushresultsize(&b, len);
	return 1;
}

/* core.chmod(path, mode) -> true | fail */
static int l_chmod(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (chmod(path, (mode_t)luaL_checkinteger(L, 2)) < 0)
		return fail_errno(L, errno, "chmod", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.mkdir(path, mode) -> true | fail (errno EEXIST when it exists: a
 * reservation, as OCI create's state directory per container id) */
static int l_mkdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (mkdir(path, (mode_t)luaL_checkinteger(L, 2)) < 0)
		return fail_errno(L, errno, "mkdir", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.umask(mask) -> the previous mask: what the container's processes
 * inherit through clone (OCI process.user.umask). */
static int l_umask(lua_State *L)
{
	lua_Integer m = luaL_checkinteger(L, 1);
	luaL_argcheck(L, m >= 0 && m <= 0777, 1, "must be a mode mask (0 to 0777)");
	lua_pushinteger(L, (lua_Integer)umask((mode_t)m));
	return 1;
}

/* core.kill(pid, sig) -> true | fail: kill(2) of a process this one did not
 * start (OCI kill of a container whose creator is gone). pid must be > 0:
 * never a process group or every process. */
static int l_kill(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	lua_Integer sig = luaL_checkinteger(L, 2);
	luaL_argcheck(L, pid > 0 && pid <= 0x3fffffff, 1, "must be a pid");
	luaL_argcheck(L, sig >= 0 && sig < 65, 2, "must be a signal number");
	if (kill((pid_t)pid, (int)sig) < 0)
		return fail_errno(L, errno, "kill", lua_tostring(L, 1));
	lua_pushboolean(L, 1);
	return 1;
}

/* core.chown(path, uid, gid) -> true | fail (does not follow a symlink) */
static int l_chown(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (lchown(path, (uid_t)luaL_checkinteger(L, 2), (gid_t)luaL_checkinteger(L, 3)) < 0)
		return fail_errno(L, errno, "chown", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.isatty(fd) -> boolean */
static int l_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

void pf_l_open_system(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "sethostname", l_sethostname },
		{ "chdir", l_chdir },
		{ "getcwd", l_getcwd },
		{ "stat", l_stat },
		{ "lstat", l_lstat },
		{ "read_in_root", l_read_in_root },
		{ "getuid", l_getuid },
		{ "geteuid", l_geteuid },
		{ "getgid", l_getgid },
		{ "getegid", l_getegid },
		{ "getpid", l_getpid },
		{ "getpwnam", l_getpwnam },
		{ "getgrouplist", l_getgrouplist },
		{ "environ", l_environ },
		{ "isatty", l_isatty },
		{ "ttyname", l_ttyname },
		{ "mkdtemp", l_mkdtemp },
		{ "chmod", l_chmod },
		{ "chown", l_chown },
		{ "mkdir", l_mkdir },
		{ "kill", l_kill },
		{ "umask", l_umask },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
