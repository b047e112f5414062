/* pflask.core: mounts and the root directory (child side). Targets are
 * paths inside a root directory (default "/"), resolved without leaving it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "l_util.h"
#include "mount.h"

static int push_result(lua_State *L, int r, const struct pf_error *err)
{
	if (r < 0)
		return pf_l_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* Field of the options table at idx: a string (def when absent). */
static const char *opt_string(lua_State *L, int idx, const char *field, const char *def)
{
	const char *v = def;
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TSTRING)
		v = lua_tostring(L, -1);
	else if (t != LUA_TNIL)
		luaL_argerror(L, idx, lua_pushfstring(L, "field '%s' must be a string", field));
	else if (!def)
		luaL_argerror(L, idx, lua_pushfstring(L, "field '%s' is required", field));
	lua_pop(L, 1); /* the string stays referenced by the table */
	return v;
}

static bool opt_boolean(lua_State *L, int idx, const char *field, bool def)
{
	int t = lua_getfield(L, idx, field);
	bool v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* core.make_private() -> true | fail: no mount propagates to the host. */
static int l_make_private(lua_State *L)
{
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_make_private(&err), &err);
}

/* core.mount{root=, target=, source=, fstype=, options=} -> true | fail
 * options: mount(8) style, "ro,nosuid,size=64M". */
static int l_mount(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *root = opt_string(L, 1, "root", "/");
	const char *target = opt_string(L, 1, "target", NULL);
	const char *fstype = opt_string(L, 1, "fstype", NULL);
	const char *source = opt_string(L, 1, "source", fstype);
	const char *options = opt_string(L, 1, "options", "");
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_filesystem(root, target, source, fstype, options, &err), &err);
}

/* core.bind{root=, target=, source=, readonly=false, recursive=true,
 * source_in_root=false, nosuid=false, nodev=false, noexec=false}
 * Without source, target is bound on itself (to make it read-only). With
 * source_in_root, source is a path inside root, resolved there too. The
 * flags apply to the new mount and, when recursive, its submounts. */
static int l_bind(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *root = opt_string(L, 1, "root", "/");
	const char *target = opt_string(L, 1, "target", NULL);
	const char *source = opt_string(L, 1, "source", "");
	if (!*source)
		source = NULL;
	bool readonly = opt_boolean(L, 1, "readonly", false);
	bool recursive = opt_boolean(L, 1, "recursive", true);
	bool in_root = opt_boolean(L, 1, "source_in_root", false);
	unsigned attrs = (readonly ? PF_MOUNT_RDONLY : 0) |
			 (opt_boolean(L, 1, "nosuid", false) ? PF_MOUNT_NOSUID : 0) |
			 (opt_boolean(L, 1, "nodev", false) ? PF_MOUNT_NODEV : 0) |
			 (opt_boolean(L, 1, "noexec", false) ? PF_MOUNT_NOEXEC : 0);
	luaL_argcheck(L, source || !in_root, 1, "source_in_root needs a source");
	luaL_argcheck(L, !in_root || attrs == (readonly ? PF_MOUNT_RDONLY : 0), 1,
		      "source_in_root takes no nosuid, nodev or noexec");
	struct pf_error err = { 0 };
	if (in_root)
		return push_result(L, pf_mount_bind_in_root(root, target, source, recursive, readonly, &err), &err);
	return push_result(L, pf_mount_bind_attrs(root, target, source, recursive, attrs, &err), &err);
}

/* core.overlay{root=, target=, upper=, work=} */
static int l_overlay(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *root = opt_string(L, 1, "root", "/");
	const char *target = opt_string(L, 1, "target", NULL);
	const char *upper = opt_string(L, 1, "upper", NULL);
	const char *work = opt_string(L, 1, "work", NULL);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_overlay(root, target, upper, work, &err), &err);
}

/* core.ephemeral{root=, upper=, work=} -> true | fail: root becomes an
 * overlay on itself; without upper and work, its writable layer is a tmpfs
 * of this mount namespace. Child side. */
static int l_ephemeral(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *root = opt_string(L, 1, "root", NULL);
	const char *upper = opt_string(L, 1, "upper", "");
	const char *work = opt_string(L, 1, "work", "");
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_ephemeral(root, *upper ? upper : NULL, *work ? work : NULL, &err),
			   &err);
}

/* core.mountpoint(root, path, "directory"|"file") -> true | fail
 * Creates what is missing of path inside root. */
static int l_mountpoint(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	static const char *const kinds[] = { "directory", "file", NULL };
	enum pf_fs_kind kind = luaL_checkoption(L, 3, "directory", kinds) == 0 ? PF_FS_DIRECTORY : PF_FS_FILE;
	struct pf_error err = { 0 };
	_cleanup_close_ int root_fd = pf_fs_open_root(root, &err);
	if (root_fd < 0)
		return pf_l_fail(L, &err);
	int fd = pf_fs_create_in_root(root_fd, path, kind, &err);
	if (fd < 0)
		return pf_l_fail(L, &err);
	close(fd);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.lookup(root, path) -> "directory"|"file"|"other" | fail
 * What path is, resolved inside root (nothing is created). */
static int l_lookup(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct pf_error err = { 0 };
	_cleanup_close_ int root_fd = pf_fs_open_root(root, &err);
	if (root_fd < 0)
		return pf_l_fail(L, &err);
	_cleanup_close_ int fd = pf_fs_open_in_root(root_fd, path, &err);
	if (fd < 0)
		return pf_l_fail(L, &err);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		pf_error_errno(&err, errno, "%s", path);
		return pf_l_fail(L, &err);
	}
	lua_pushstring(L, S_ISDIR(st.st_mode) ? "directory" : S_ISREG(st.st_mode) ? "file" : "other");
	return 1;
}

/* core.write_in_root(root, path, data) -> true | fail: path is created
 * (0644) if missing, truncated, and written. */
static int l_write_in_root(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	struct pf_error err = { 0 };
	_cleanup_close_ int root_fd = pf_fs_open_root(root, &err);
	if (root_fd < 0)
		return pf_l_fail(L, &err);
	return push_result(L, pf_fs_write_in_root(root_fd, path, data, len, &err), &err);
}

/* core.chmod_in_root(root, path, mode) -> true | fail: path resolved
 * inside root. */
static int l_chmod_in_root(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	lua_Integer mode = luaL_checkinteger(L, 3);
	luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "not a file mode (0 to 07777)");
	struct pf_error err = { 0 };
	_cleanup_close_ int root_fd = pf_fs_open_root(root, &err);
	if (root_fd < 0)
		return pf_l_fail(L, &err);
	return push_result(L, pf_fs_chmod_in_root(root_fd, path, (mode_t)mode, &err), &err);
}

/* A host path held open (O_PATH): a mount source looked up once, before
 * any mount could hide it. */
#define PATH_HANDLE "pflask.PathHandle"

static int *check_path_handle(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, PATH_HANDLE);
}

static int path_handle_close(lua_State *L)
{
	int *fd = check_path_handle(L, 1);
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return 0;
}

/* handle:path() -> "/proc/self/fd/N": the opened file, for calls that
 * take a path (mount(2) follows the magic link to it). Raises once
 * closed. */
static int path_handle_path(lua_State *L)
{
	int *fd = check_path_handle(L, 1);
	luaL_argcheck(L, *fd >= 0, 1, "path handle is closed");
	char fd_path[32];
	pf_fs_fd_path(*fd, fd_path);
	lua_pushstring(L, fd_path);
	return 1;
}

/* core.open_path(path) -> handle | fail: path (a host path, symlinks
 * followed) opened O_PATH, close-on-exec. The handle is created closed
 * before the open, so a failure leaks nothing. */
static int l_open_path(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int *fd = lua_newuserdatauv(L, sizeof(int), 0);
	*fd = -1;
	luaL_setmetatable(L, PATH_HANDLE);
	*fd = open(path, O_PATH | O_CLOEXEC);
	if (*fd < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "%s", path);
		return pf_l_fail(L, &err);
	}
	return 1;
}

/* core.mknod(root, path, "char"|"block", major, minor [, mode=0666]) */
static int l_mknod(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	static const char *const kinds[] = { "char", "block", NULL };
	mode_t type = luaL_checkoption(L, 3, NULL, kinds) == 0 ? S_IFCHR : S_IFBLK;
	unsigned major_nr = (unsigned)luaL_checkinteger(L, 4);
	unsigned minor_nr = (unsigned)luaL_checkinteger(L, 5);
	mode_t mode = (mode_t)luaL_optinteger(L, 6, 0666);
	struct pf_error err = { 0 };
	_cleanup_close_ int root_fd = pf_fs_open_root(root, &err);
	if (root_fd < 0)
		return pf_l_fail(L, &err);
	int r = pf_fs_mknod_in_root(root_fd, path, type | (mode & 07777), makedev(major_nr, minor_nr), &err);
	return push_result(L, r, &err);
}

/* core.symlink(root, target, path): path (inside root) -> target */
static int l_symlink(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *target = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	struct pf_error err = { 0 };
	_cleanup_close_ int root_fd = pf_fs_open_root(root, &err);
	if (root_fd < 0)
		return pf_l_fail(L, &err);
	return push_result(L, pf_fs_symlink_in_root(root_fd, target, path, &err), &err);
}

/* core.mount_proc(target) -> true | fail */
static int l_mount_proc(lua_State *L)
{
	const char *target = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_proc(target, &err), &err);
}

/* core.pivot_root(dir [, keep_libmount = true]) -> true | fail: dir
 * becomes "/", the old root is detached, the working directory is "/".
 * keep_libmount false: libmount is never loaded afterwards (mount options
 * beyond the common ones fail then) rather than loaded now. */
static int l_pivot_root(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	bool keep = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_pivot_root(dir, keep, &err), &err);
}

/* core.chroot(dir [, keep_libmount = true]) -> true | fail: chroot(2) and
 * chdir("/"); keep_libmount as for core.pivot_root. */
static int l_chroot(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	bool keep = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_chroot(dir, keep, &err), &err);
}

/* core.remove_tree(path) -> true | fail: rm -r without following links or
 * crossing mounts; a missing path is fine. */
static int l_remove_tree(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	return push_result(L, pf_fs_remove_tree(path, &err), &err);
}

/* core.set_readonly{root=, target=, readonly=true} -> true | fail: the
 * mount whose root is target, not its submounts. */
static int l_set_readonly(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *root = opt_string(L, 1, "root", "/");
	const char *target = opt_string(L, 1, "target", NULL);
	bool readonly = opt_boolean(L, 1, "readonly", true);
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_set_readonly(root, target, readonly, &err), &err);
}

/* The option at the top of the stack, one of names, for entry i of the
 * list at argument arg: its index, or a raised argument error. */
static int entry_option(lua_State *L, int arg, lua_Integer i, const char *const names[])
{
	const char *v = lua_tostring(L, -1);
	for (int k = 0; v && names[k]; k++)
		if (strcmp(names[k], v) == 0)
			return k;
	return luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: invalid kind '%s'", (int)i,
						     v ? v : luaL_typename(L, -1)));
}

/* core.masks(root, {{how, path [, required = true]}, ...} [, legacy])
 * -> true | fail. how: "readonly", "writable", "null", "empty", "hide"
 * (see pf_mount_masks). Each path is resolved inside root, once; one that
 * does not exist is skipped unless required. legacy takes the mount(2)
 * path of kernels without open_tree (tests compare the two). Child side. */
static int l_masks(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	bool legacy = lua_toboolean(L, 3);
	lua_Integer n = luaL_len(L, 2);
	luaL_argcheck(L, n >= 0 && n <= 4096, 2, "too many masks");
	struct pf_mount_mask *masks = lua_newuserdatauv(L, sizeof(*masks) * (size_t)(n ? n : 1), 0);
	static const char *const hows[] = { "readonly", "writable", "null", "empty", "hide", NULL };
	static const enum pf_mount_mask_how how_of[] = { PF_MASK_READONLY, PF_MASK_WRITABLE, PF_MASK_NULL,
							 PF_MASK_EMPTY, PF_MASK_HIDE };
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, 2, i) != LUA_TTABLE)
			return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d is not a table", (int)i));
		int entry = lua_gettop(L);
		lua_geti(L, entry, 1);
		int how = entry_option(L, 2, i, hows);
		lua_geti(L, entry, 2);
		/* The string stays referenced by the entry, itself by the list
		 * at argument 2, for the whole call. */
		const char *path = lua_tostring(L, -1);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d has no path", (int)i));
		lua_getfield(L, entry, "required");
		masks[i - 1] = (struct pf_mount_mask){ .path = path, .how = how_of[how],
						       .required = lua_toboolean(L, -1) };
		lua_settop(L, entry - 1);
	}
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_masks(root, masks, (size_t)n, legacy, &err), &err);
}

/* core.populate(root, dir, {{"node", name, major, minor} | {"dir", name}
 * | {"link", name, target}, ...}) -> true | fail: entries created in dir
 * (inside root), opened once (see pf_mount_populate). Child side. */
static int l_populate(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *dir = luaL_checkstring(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 3);
	luaL_argcheck(L, n >= 0 && n <= 4096, 3, "too many entries");
	struct pf_mount_entry *entries = lua_newuserdatauv(L, sizeof(*entries) * (size_t)(n ? n : 1), 0);
	static const char *const kinds[] = { "node", "dir", "link", NULL };
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, 3, i) != LUA_TTABLE)
			return luaL_argerror(L, 3, lua_pushfstring(L, "entry %d is not a table", (int)i));
		int entry = lua_gettop(L);
		lua_geti(L, entry, 1);
		int kind = entry_option(L, 3, i, kinds);
		/* Strings stay referenced by the entry, itself by the list at
		 * argument 3, for the whole call. */
		lua_geti(L, entry, 2);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_argerror(L, 3, lua_pushfstring(L, "entry %d has no name", (int)i));
		struct pf_mount_entry *e = &entries[i - 1];
		*e = (struct pf_mount_entry){ .name = lua_tostring(L, -1) };
		if (kind == 0) {
			e->kind = PF_ENTRY_NODE;
			lua_geti(L, entry, 3);
			lua_geti(L, entry, 4);
			int ok_major, ok_minor;
			lua_Integer major = lua_tointegerx(L, -2, &ok_major), minor = lua_tointegerx(L, -1, &ok_minor);
			if (!ok_major || !ok_minor || major < 0 || major > 0xfff || minor < 0 || minor > 0xfffff)
				return luaL_argerror(L, 3, lua_pushfstring(L, "entry %d: device number out of range",
									   (int)i));
			e->major = (unsigned)major;
			e->minor = (unsigned)minor;
		} else if (kind == 1) {
			e->kind = PF_ENTRY_DIR;
		} else {
			e->kind = PF_ENTRY_LINK;
			lua_geti(L, entry, 3);
			if (lua_type(L, -1) != LUA_TSTRING)
				return luaL_argerror(L, 3, lua_pushfstring(L, "entry %d has no target", (int)i));
			e->target = lua_tostring(L, -1);
		}
		lua_settop(L, entry - 1);
	}
	struct pf_error err = { 0 };
	return push_result(L, pf_mount_populate(root, dir, entries, (size_t)n, &err), &err);
}

/* core.dir_entries(path) -> {name, ...} | fail: the names in directory
 * path (not "." and ".."), unsorted; path itself is not followed if it is
 * a symlink. */
static int l_dir_entries(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct pf_error err = { 0 };
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		pf_error_errno(&err, errno, "open %s", path);
		if (fd >= 0)
			close(fd);
		return pf_l_fail(L, &err);
	}
	lua_newtable(L);
	int i = 1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, i++);
	}
	closedir(d);
	return 1;
}

void pf_l_open_mount(lua_State *L)
{
	static const luaL_Reg handle_methods[] = {
		{ "path", path_handle_path },
		{ "close", path_handle_close },
		{ NULL, NULL },
	};
	if (luaL_newmetatable(L, PATH_HANDLE)) {
		luaL_newlib(L, handle_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, path_handle_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, path_handle_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	static const luaL_Reg funcs[] = {
		{ "make_private", l_make_private },
		{ "mount", l_mount },
		{ "bind", l_bind },
		{ "overlay", l_overlay },
		{ "ephemeral", l_ephemeral },
		{ "mountpoint", l_mountpoint },
		{ "lookup", l_lookup },
		{ "write_in_root", l_write_in_root },
		{ "mknod", l_mknod },
		{ "chmod_in_root", l_chmod_in_root },
		{ "open_path", l_open_path },
		{ "symlink", l_symlink },
		{ "mount_proc", l_mount_proc },
		{ "pivot_root", l_pivot_root },
		{ "chroot", l_chroot },
		{ "remove_tree", l_remove_tree },
		{ "set_readonly", l_set_readonly },
		{ "masks", l_masks },
		{ "populate", l_populate },
		{ "dir_entries", l_dir_entries },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
