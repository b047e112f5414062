/* pflask.core: the command's confinement: seccomp filters compiled with
 * libseccomp (syscall_filter.h) and CPU affinity (affinity.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"
#include "affinity.h"
#include "syscall_filter.h"

struct compile_state {
	struct pf_seccomp *f;
	struct pf_error err;
};

/* Failures of the table's shape are reported as any other (nil, message,
 * EINVAL): plan() turns them into one line naming the field. */
#define BAD(...) (pf_error_set(&st->err, EINVAL, __VA_ARGS__), -1)

static int opt_errno(lua_State *L, int idx, const char *field, int dflt, struct compile_state *st, int *out)
{
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		*out = dflt;
		return 0;
	}
	int isnum;
	lua_Integer v = lua_tointegerx(L, -1, &isnum);
	lua_pop(L, 1);
	if (!isnum || v < 0 || v > 4095)
		return BAD("seccomp: %s must be an integer from 0 to 4095", field);
	*out = (int)v;
	return 0;
}

static int opt_string(lua_State *L, int idx, const char *field, const char *dflt, struct compile_state *st,
		      const char **out)
{
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		*out = dflt;
		return 0;
	}
	if (t != LUA_TSTRING) {
		lua_pop(L, 1);
		return BAD("seccomp: %s must be a string", field);
	}
	/* Referenced from the table at idx, which stays on the stack. */
	*out = lua_tostring(L, -1);
	lua_pop(L, 1);
	return 0;
}

static int get_u64(lua_State *L, int idx, const char *field, uint64_t *out)
{
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		*out = 0;
		return 0;
	}
	int isnum;
	lua_Integer v = lua_tointegerx(L, -1, &isnum);
	lua_pop(L, 1);
	if (!isnum)
		return -1;
	/* Lua integers are 64-bit two's complement: -1 is all ones. */
	*out = (uint64_t)v;
	return 0;
}

static int add_rule(lua_State *L, int rule, lua_Integer n, int default_errno, struct compile_state *st)
{
	if (!lua_istable(L, rule))
		return BAD("seccomp: rules[%d] must be a table", (int)n);
	const char *action;
	int errnum;
	if (opt_string(L, rule, "action", NULL, st, &action) < 0 ||
	    opt_errno(L, rule, "errno", default_errno, st, &errnum) < 0)
		return -1;
	if (!action)
		return BAD("seccomp: rules[%d] has no action", (int)n);
	struct pf_seccomp_arg args[6];
	size_t n_args = 0;
	if (lua_getfield(L, rule, "args") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			return BAD("seccomp: rules[%d].args must be a list", (int)n);
		lua_Integer na = luaL_len(L, -1);
		if (na > 6)
			return BAD("seccomp: rules[%d].args: at most 6 conditions", (int)n);
		for (lua_Integer i = 1; i <= na; i++) {
			lua_geti(L, -1, i);
			int a = lua_gettop(L);
			uint64_t index;
			const char *op;
			if (!lua_istable(L, a) || get_u64(L, a, "index", &index) < 0 || index > 5 ||
			    opt_string(L, a, "op", NULL, st, &op) < 0 || !op ||
			    get_u64(L, a, "value", &args[n_args].value) < 0 ||
			    get_u64(L, a, "value2", &args[n_args].value2) < 0)
				return BAD("seccomp: rules[%d].args[%d] must be {index = 0..5, op =, value =, value2 =}",
					   (int)n, (int)i);
			args[n_args].index = (unsigned)index;
			args[n_args].op = op;
			n_args++;
			lua_pop(L, 1); /* op stays referenced by the rule's table */
		}
	}
	lua_pop(L, 1);
	if (lua_getfield(L, rule, "syscalls") != LUA_TTABLE)
		return BAD("seccomp: rules[%d].syscalls must be a list of names", (int)n);
	int sys = lua_gettop(L);
	lua_Integer ns = luaL_len(L, sys);
	for (lua_Integer i = 1; i <= ns; i++) {
		if (lua_geti(L, sys, i) != LUA_TSTRING)
			return BAD("seccomp: rules[%d].syscalls[%d] must be a name", (int)n, (int)i);
		int r = pf_seccomp_add(st->f, action, errnum, lua_tostring(L, -1), args, n_args, &st->err);
		lua_pop(L, 1);
		if (r < 0)
			return -1;
	}
	lua_pop(L, 1);
	return 0;
}

static int compile(lua_State *L, unsigned flags, struct compile_state *st)
{
	const char *action;
	int errnum;
	if (opt_string(L, 1, "default", "allow", st, &action) < 0 ||
	    opt_errno(L, 1, "errno", EPERM, st, &errnum) < 0)
		return -1;
	const char *arches[16];
	size_t n_arches = 0;
	if (lua_getfield(L, 1, "arch") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			return BAD("seccomp: arch must be a list of architecture names");
		lua_Integer na = luaL_len(L, -1);
		if (na < 1 || na > 16)
			return BAD("seccomp: arch must name 1 to 16 architectures");
		for (lua_Integer i = 1; i <= na; i++) {
			if (lua_geti(L, -1, i) != LUA_TSTRING)
				return BAD("seccomp: arch[%d] must be a name", (int)i);
			arches[n_arches++] = lua_tostring(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	st->f = pf_seccomp_new(action, errnum, arches, n_arches, flags, &st->err);
	if (!st->f)
		return -1;
	if (lua_getfield(L, 1, "rules") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			return BAD("seccomp: rules must be a list");
		int rules = lua_gettop(L);
		lua_Integer nr = luaL_len(L, rules);
		for (lua_Integer i = 1; i <= nr; i++) {
			lua_geti(L, rules, i);
			if (add_rule(L, lua_gettop(L), i, errnum, st) < 0)
				return -1;
			lua_settop(L, rules);
		}
	}
	lua_pop(L, 1);
	return 0;
}

/* core.seccomp_compile({ default =, errno =, arch = {...}, rules = {{
 * action =, errno =, syscalls = {...}, args = {{index =, op =, value =,
 * value2 =}} }} } [, { builtin =, kill_thread = }]) -> bytes, source, key
 * | fail: the BPF program (struct sock_filter[] as a string) for
 * core.exec_plan's seccomp. A rule's errno defaults to the filter's
 * (EPERM). Nothing is loaded. source: "builtin" when the program was
 * compiled at build time from the same inputs (the filter's key, the
 * third result, is one the executable carries; builtin = false: never),
 * else "compiled". kill_thread: as on a kernel that cannot kill a whole
 * process (what tools/gen_seccomp.c compiles too). */
static int l_seccomp_compile(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	unsigned new_flags = 0, export_flags = 0;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		if (lua_getfield(L, 2, "builtin") != LUA_TNIL && !lua_toboolean(L, -1))
			export_flags |= PF_SECCOMP_NO_BUILTIN;
		if (lua_getfield(L, 2, "kill_thread") != LUA_TNIL && lua_toboolean(L, -1))
			new_flags |= PF_SECCOMP_KILL_THREAD;
	}
	lua_settop(L, 1);
	struct compile_state st = { 0 };
	void *buf = NULL;
	const void *key = NULL;
	size_t len = 0, key_len = 0;
	enum pf_seccomp_source source;
	if (compile(L, new_flags, &st) < 0 || pf_seccomp_key(st.f, &key, &key_len, &st.err) < 0 ||
	    pf_seccomp_export(st.f, export_flags, &buf, &len, &source, &st.err) < 0) {
		pf_seccomp_free(st.f);
		return pf_l_fail(L, &st.err);
	}
	/* A push that raises (out of memory) leaks buf and f, as the
	 * single push before did buf. */
	lua_pushlstring(L, buf, len);
	free(buf);
	lua_pushstring(L, source == PF_SECCOMP_BUILTIN ? "builtin" : "compiled");
	lua_pushlstring(L, key, key_len);
	pf_seccomp_free(st.f);
	return 3;
}

/* core.seccomp_syscall_known(name) -> boolean: whether libseccomp knows
 * the system call (a profile written for a newer kernel may name calls
 * this one does not: OCI runtimes skip those). */
static int l_seccomp_syscall_known(lua_State *L)
{
	lua_pushboolean(L, pf_seccomp_syscall_known(luaL_checkstring(L, 1)));
	return 1;
}

/* core.seccomp_arch_known(name) -> boolean. */
static int l_seccomp_arch_known(lua_State *L)
{
	lua_pushboolean(L, pf_seccomp_arch_known(luaL_checkstring(L, 1)));
	return 1;
}

/* core.sched_setaffinity(pid, {cpu, ...}) -> true | fail: pin pid (0:
 * the caller) to those CPUs. */
static int l_sched_setaffinity(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	luaL_argcheck(L, n >= 1 && n <= 65536, 2, "1 to 65536 CPUs");
	int *cpus = lua_newuserdatauv(L, (size_t)n * sizeof(int), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 2, i);
		int isnum;
		lua_Integer c = lua_tointegerx(L, -1, &isnum);
		luaL_argcheck(L, isnum && c >= 0 && c < 65536, 2, "CPU numbers are integers from 0");
		cpus[i - 1] = (int)c;
		lua_pop(L, 1);
	}
	struct pf_error err = { 0 };
	if (pf_affinity_set((pid_t)pid, cpus, (size_t)n, &err) < 0)
		return pf_l_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.seccomp_load(bpf) -> true | fail: load a compiled filter into the
 * calling process now (needs no_new_privs or CAP_SYS_ADMIN). For a
 * command that will not hold CAP_SYS_ADMIN and must not get no_new_privs
 * (setuid programs work on): loaded before the user switch, as runc does
 * without noNewPrivileges. */
static int l_seccomp_load(lua_State *L)
{
	size_t len;
	const char *bpf = luaL_checklstring(L, 1, &len);
	luaL_argcheck(L, len > 0 && len % sizeof(struct sock_filter) == 0 && len / sizeof(struct sock_filter) <= 4096,
		      1, "a BPF program: 1 to 4096 struct sock_filter");
	struct sock_fprog prog = { .len = (unsigned short)(len / sizeof(struct sock_filter)),
				   .filter = (struct sock_filter *)bpf };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "seccomp: load the filter");
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* core.setdomainname(name) -> true | fail: the NIS domain name of the
 * caller's UTS namespace (kernel.domainname): the system call works in a
 * user namespace's own UTS namespace where /proc/sys of the host's
 * procfs does not. */
static int l_setdomainname(lua_State *L)
{
	size_t len;
	const char *name = luaL_checklstring(L, 1, &len);
	if (setdomainname(name, len) < 0) {
		struct pf_error err = { 0 };
		pf_error_errno(&err, errno, "setdomainname");
		return pf_l_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

void pf_l_open_sandbox(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "seccomp_compile", l_seccomp_compile },
		{ "seccomp_arch_known", l_seccomp_arch_known },
		{ "seccomp_syscall_known", l_seccomp_syscall_known },
		{ "sched_setaffinity", l_sched_setaffinity },
		{ "seccomp_load", l_seccomp_load },
		{ "setdomainname", l_setdomainname },
		{ NULL, NULL },
	};
	pf_l_register(L, funcs);
}
