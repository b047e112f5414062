/* The pflask executable: a Lua host that runs one recipe, shaped like
 * lua.c (pmain runs in protected mode, msghandler shapes errors).
 *
 *   pflask [ARGS...]                  runs the default recipe, the classic CLI
 *   pflask --recipe=NAME|FILE [ARGS]  runs a bundled recipe or a file
 *   pflask-NAME [ARGS...]             (a symlink) runs recipe NAME
 *
 * A recipe gets its arguments as `arg` and `...`. It may return an exit
 * status. Errors print "pflask: MESSAGE" on stderr and exit 125, or the
 * status a pflask.Error carries; PFLASK_DEBUG=1 adds a traceback. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embedded.h"
#include "l_util.h"
#include "lalloc.h"
#include "process.h"

#define EXIT_PFLASK_FAILURE 125
#define DEFAULT_RECIPE "pflask"

LUAMOD_API int luaopen_pflask_core(lua_State *L);

/* Lua's allocator. Start-up makes ~5,000 allocations, nearly all small
 * (strings, tables, closures, prototypes); through glibc's realloc they
 * were 15 % of the instructions of `pflask -- /bin/true`, and a
 * supervisor kept twice the heap its Lua state needs while its containers
 * ran (glibc's per-thread cache keeps freed chunks apart). Small blocks
 * come from src/lalloc.c instead: size classes with a free list each, cut
 * from 64 kB blocks taken from malloc (inside the brk heap, which
 * pflask-init gives back: src/process.c, shed_heap), strings, objects
 * and arrays on pages of their own; Lua passes a block's size when it
 * frees or resizes it, so no header is needed; sup:shed gives the pages
 * no object lives on back to the kernel. */
#ifndef PF_LUA_POOL
/* -DPFLASK_LUA_POOL=OFF (Debug builds): every block from malloc, for
 * valgrind and sanitizers. */
static void *malloc_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, nsize);
}
#endif

/* As luaL_newstate's: a message before Lua aborts. */
static int panic(lua_State *L)
{
	const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
	fprintf(stderr, "pflask: unprotected error in call to Lua API (%s)\n", msg);
	return 0;
}

/* As luaL_newstate's warnings: off until a recipe says warn("@on"); a
 * message may come in pieces (tocont). */
static void warning(void *ud, const char *msg, int tocont)
{
	static bool on, continuing;
	if (!continuing && !tocont && msg[0] == '@') {
		if (strcmp(msg, "@on") == 0)
			on = true;
		else if (strcmp(msg, "@off") == 0)
			on = false;
		return;
	}
	if (on) {
		if (!continuing)
			fputs("Lua warning: ", stderr);
		fputs(msg, stderr);
		if (!tocont)
			fputs("\n", stderr);
		fflush(stderr);
	}
	continuing = tocont;
}

static bool debug_enabled(void)
{
	const char *v = getenv("PFLASK_DEBUG");
	return v && *v && strcmp(v, "0") != 0;
}

/* A pflask.Error (table with status and message) passes through, so main
 * can exit with its status; anything else becomes a string. In debug mode
 * the traceback is printed here, while the stack is still there. */
static int msghandler(lua_State *L)
{
	bool structured = lua_type(L, 1) == LUA_TTABLE;
	if (!structured && !lua_isstring(L, 1))
		luaL_tolstring(L, 1, NULL), lua_replace(L, 1);
	if (debug_enabled()) {
		const char *msg = luaL_tolstring(L, 1, NULL);
		luaL_traceback(L, L, msg, 1);
		fprintf(stderr, "pflask: %s\n", lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	return 1;
}

static const struct pf_embedded_chunk *find_chunk(const struct pf_embedded_chunk *list,
						  const char *name)
{
	for (; list->name; list++)
		if (strcmp(list->name, name) == 0)
			return list;
	return NULL;
}

/* package.searchers entry for modules compiled into the executable. */
static int search_embedded(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const struct pf_embedded_chunk *c = find_chunk(pf_embedded_modules, name);
	if (!c) {
		lua_pushfstring(L, "no embedded module '%s'", name);
		return 1;
	}
	if (luaL_loadbufferx(L, (const char *)c->data, c->size, name, "b") != LUA_OK)
		return lua_error(L);
	lua_pushfstring(L, ":embedded:%s", name);
	return 2;
}

/* Put search_embedded right after the preload searcher, before the file
 * searchers: the bundled library is the one the executable was built with. */
static void install_searcher(lua_State *L)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "searchers");
	lua_Integer n = luaL_len(L, -1);
	for (lua_Integer i = n; i >= 2; i--) {
		lua_geti(L, -1, i);
		lua_seti(L, -2, i + 1);
	}
	lua_pushcfunction(L, search_embedded);
	lua_seti(L, -2, 2);
	lua_pop(L, 2);
}

static bool looks_like_path(const char *recipe)
{
	size_t len = strlen(recipe);
	return strchr(recipe, '/') || (len > 4 && strcmp(recipe + len - 4, ".lua") == 0);
}

static void list_bundled(luaL_Buffer *b)
{
	for (const struct pf_embedded_chunk *c = pf_embedded_recipes; c->name; c++) {
		if (c != pf_embedded_recipes)
			luaL_addstring(b, ", ");
		luaL_addstring(b, c->name);
	}
}

/* core.recipes, in the executable only: the names of the bundled recipes
 * (shell completion lists them; pflask.complete). */
static void push_recipe_names(lua_State *L)
{
	lua_newtable(L);
	lua_Integer i = 0;
	for (const struct pf_embedded_chunk *c = pf_embedded_recipes; c->name; c++) {
		lua_pushstring(L, c->name);
		lua_rawseti(L, -2, ++i);
	}
}

/* core.recipe_descriptions: name -> the first line of its source, for
 * `pflask --recipe=list` (pflask.discover); core.examples_dir: where the
 * example recipes are installed. */
static void push_recipe_descriptions(lua_State *L)
{
	lua_newtable(L);
	for (const struct pf_embedded_chunk *c = pf_embedded_recipes; c->name; c++) {
		lua_pushstring(L, c->description ? c->description : "");
		lua_setfield(L, -2, c->name);
	}
	lua_setfield(L, -2, "recipe_descriptions");
	lua_pushstring(L, PFLASK_EXAMPLES_DIR);
	lua_setfield(L, -2, "examples_dir");
}

/* The collector during start-up. The heap grows from nothing to half a
 * megabyte (the library, the plan), nearly all of it live: at Lua's
 * default pause (200 %: a new cycle once the heap doubled) the incremental
 * collector marks it all again at every doubling, 6.5 % of the
 * instructions of `pflask -- /bin/true` for 30 kB of garbage. A pause of
 * 1000 % lets it grow ten times before a cycle: still bounded for a recipe
 * that never starts a container. core.startup_done (pflask.container
 * calls it once the first command runs) restores the default, for
 * recipes that start thousands. */
#define STARTUP_GC_PAUSE 1000
#define DEFAULT_GC_PAUSE 200 /* LUAI_GCPAUSE */

static bool in_startup = true;

static void end_startup(lua_State *L)
{
	if (in_startup) {
		in_startup = false;
		lua_gc(L, LUA_GCINC, DEFAULT_GC_PAUSE, 0, 0);
	}
}

static int startup_done(lua_State *L)
{
	end_startup(L);
	return 0;
}

/* The global collectgarbage: a recipe that sets the collector's mode or
 * parameters ends the start-up pace first, so that its own settings are
 * applied to Lua's defaults and never undone by core.startup_done. */
static int collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");
	if (strcmp(opt, "incremental") == 0 || strcmp(opt, "generational") == 0 ||
	    strcmp(opt, "setpause") == 0 || strcmp(opt, "setstepmul") == 0)
		end_startup(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* package.preload's pflask.core: the bindings, and what only the
 * executable has. */
static int open_core(lua_State *L)
{
	luaopen_pflask_core(L);
	push_recipe_names(L);
	lua_setfield(L, -2, "recipes");
	push_recipe_descriptions(L);
	lua_pushcfunction(L, startup_done);
	lua_setfield(L, -2, "startup_done");
	return 1;
}

/* Push the recipe's chunk or raise "--recipe: ...". */
static void load_recipe(lua_State *L, const char *recipe)
{
	const struct pf_embedded_chunk *c = NULL;
	if (!looks_like_path(recipe))
		c = find_chunk(pf_embedded_recipes, recipe);
	if (!c && strcmp(recipe, "list") == 0) {
		/* Discovery: the bundled and example recipes, one line each. */
		if (luaL_loadstring(L, "return require('pflask.discover').print()") != LUA_OK)
			lua_error(L);
		return;
	}
	if (c) {
		if (luaL_loadbufferx(L, (const char *)c->data, c->size, recipe, "b") != LUA_OK)
			lua_error(L);
		return;
	}
	if (!looks_like_path(recipe) && access(recipe, F_OK) != 0) {
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		luaL_addstring(&b, "--recipe: no recipe named '");
		luaL_addstring(&b, recipe);
		luaL_addstring(&b, "' (bundled: ");
		list_bundled(&b);
		luaL_addstring(&b, "; a file needs a '/' or a .lua suffix)");
		luaL_pushresult(&b);
		lua_error(L);
	}
	if (luaL_loadfile(L, recipe) != LUA_OK)
		luaL_error(L, "--recipe: %s", lua_tostring(L, -1));
}

/* Which recipe, and where its own arguments start in argv. */
static const char *choose_recipe(lua_State *L, int argc, char **argv, int *ret_first_arg)
{
	const char *progname = argc > 0 ? strrchr(argv[0], '/') : NULL;
	progname = progname ? progname + 1 : (argc > 0 ? argv[0] : "pflask");
	if (strncmp(progname, "pflask-", 7) == 0 && progname[7]) {
		*ret_first_arg = 1;
		return progname + 7;
	}
	if (argc > 1 && strncmp(argv[1], "--recipe=", 9) == 0) {
		if (!argv[1][9])
			luaL_error(L, "--recipe: requires a value");
		*ret_first_arg = 2;
		return argv[1] + 9;
	}
	if (argc > 1 && strcmp(argv[1], "--recipe") == 0) {
		if (argc < 3)
			luaL_error(L, "--recipe: requires a value");
		*ret_first_arg = 3;
		return argv[2];
	}
	*ret_first_arg = 1;
	return DEFAULT_RECIPE;
}

/* The global `arg`, as lua.c builds it: the recipe at index 0, its
 * arguments at 1..n, what came before at negative indices. */
static void create_arg_table(lua_State *L, int argc, char **argv, int first, const char *recipe)
{
	lua_createtable(L, argc - first, first);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - first + 1);
	}
	lua_pushstring(L, recipe);
	lua_rawseti(L, -2, 0);
	lua_setglobal(L, "arg");
}

static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = lua_touserdata(L, 2);

	luaL_checkversion(L);
	luaL_openlibs(L);
	lua_getglobal(L, "collectgarbage");
	lua_pushcclosure(L, collectgarbage, 1);
	lua_setglobal(L, "collectgarbage");
	/* pflask.core on first require: `pflask --help` needs none of it
	 * (a third of the executable's own start-up cost). */
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, open_core);
	lua_setfield(L, -2, "pflask.core");
	lua_pop(L, 1);
	install_searcher(L);

	int first;
	const char *recipe = choose_recipe(L, argc, argv, &first);
	create_arg_table(L, argc, argv, first, recipe);
	load_recipe(L, recipe);
	luaL_checkstack(L, argc, "too many arguments");
	for (int i = first; i < argc; i++)
		lua_pushstring(L, argv[i]);
	lua_call(L, argc > first ? argc - first : 0, 1);
	return 1;
}

static int exit_status_of(lua_State *L, int idx)
{
	if (lua_isinteger(L, idx))
		return (int)lua_tointeger(L, idx);
	if (lua_isboolean(L, idx))
		return lua_toboolean(L, idx) ? EXIT_SUCCESS : EXIT_FAILURE;
	return EXIT_SUCCESS;
}

static int report_error(lua_State *L)
{
	int status = EXIT_PFLASK_FAILURE;
	const char *msg = NULL;
	if (lua_type(L, -1) == LUA_TTABLE) {
		if (lua_getfield(L, -1, "status") == LUA_TNUMBER)
			status = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		if (lua_getfield(L, -1, "message") == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			lua_pop(L, 1);
	}
	if (!msg)
		msg = luaL_tolstring(L, -1, NULL);
	if (!debug_enabled())
		fprintf(stderr, "pflask: %s\n", msg);
	return status;
}

/* However the recipe ended: close the containers it left running and run
 * what it deferred (pflask.container's at_exit, when the recipe loaded
 * that module at all). Its errors are reported, never change the status. */
static void run_at_exit(lua_State *L)
{
	lua_settop(L, 0);
	lua_pushcfunction(L, msghandler);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	if (lua_getfield(L, -1, "pflask.container") != LUA_TTABLE)
		return;
	if (lua_getfield(L, -1, "at_exit") != LUA_TFUNCTION)
		return;
	if (lua_pcall(L, 0, 0, 1) != LUA_OK)
		report_error(L);
}

int main(int argc, char **argv)
{
	pf_process_note_heap_start();
#ifdef PF_LUA_POOL
	struct pf_lalloc *alloc = pf_lalloc_new();
	lua_State *L = alloc ? lua_newstate(pf_lalloc, alloc) : NULL;
#else
	lua_State *L = lua_newstate(malloc_alloc, NULL);
#endif
	if (!L) {
		fputs("pflask: cannot create Lua state: not enough memory\n", stderr);
		return EXIT_PFLASK_FAILURE;
	}
	lua_atpanic(L, panic);
	lua_setwarnf(L, warning, NULL);
	lua_gc(L, LUA_GCINC, STARTUP_GC_PAUSE, 0, 0);
	lua_pushcfunction(L, msghandler);
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	int status;
	if (lua_pcall(L, 2, 1, 1) == LUA_OK)
		status = exit_status_of(L, -1);
	else
		status = report_error(L);
	run_at_exit(L);
	/* Closing the state collects every object, which matters only for a
	 * container still running (its handle kills and reaps it); otherwise
	 * skip the work: exit(3) flushes Lua's files like any stdio stream. */
	if (pf_l_live_processes() > 0)
		lua_close(L);
	return status;
}
