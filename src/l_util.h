/* Shared helpers of the Lua bindings (l_*.c, the only files that include
 * lua.h). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <lauxlib.h>
#include <lua.h>

#include "error.h"

/* Push the failure triple `nil, message, errno` (luaL_fileresult's shape)
 * and return 3, for `return pf_l_fail(L, &err);`. */
int pf_l_fail(lua_State *L, const struct pf_error *err);

/* Argument idx as a NULL-terminated array of C strings. The array lives in
 * a userdata pushed on the stack, so nothing leaks if a later check raises;
 * the strings belong to the table at idx, which must stay on the stack. */
char **pf_l_check_string_array(lua_State *L, int idx);

/* Register funcs into the table on top of the stack. */
void pf_l_register(lua_State *L, const luaL_Reg *funcs);

/* Each l_*.c adds its functions to the module table on top of the stack. */
void pf_l_open_ns(lua_State *L);
void pf_l_open_sync(lua_State *L);
void pf_l_open_process(lua_State *L);
void pf_l_open_userns(lua_State *L);
void pf_l_open_mount(lua_State *L);
void pf_l_open_system(lua_State *L);
void pf_l_open_netif(lua_State *L);
void pf_l_open_caps(lua_State *L);
void pf_l_open_cgroup(lua_State *L);
void pf_l_open_pty(lua_State *L);
void pf_l_open_state(lua_State *L);
void pf_l_open_machined(lua_State *L);
void pf_l_open_supervise(lua_State *L);
void pf_l_open_exec(lua_State *L);
void pf_l_open_sandbox(lua_State *L);

/* From l_sync.c: a Channel userdata owning fd (pushed on the stack), and
 * the fd of the Channel at idx (-1 once closed). */
void pf_l_push_channel(lua_State *L, int fd);
int pf_l_channel_fd(lua_State *L, int idx);

/* From l_process.c: a Process userdata for a child we must reap, and how
 * many such children are still unreaped. */
void pf_l_push_process(lua_State *L, pid_t pid);
unsigned pf_l_live_processes(void);

/* From l_process.c, for waits done elsewhere (the terminal relay): the pid
 * of the Process at idx (-1 once reaped); record that it was reaped with
 * wstatus and push what Process:wait returns (3 values); the translate
 * table at idx (nil or {[from] = to}) into translate, raising on bad
 * numbers. */
pid_t pf_l_process_pid(lua_State *L, int idx);
int pf_l_process_reaped(lua_State *L, int idx, int wstatus);
void pf_l_check_translate(lua_State *L, int idx, int translate[]);

/* From l_supervise.c: this process's supervisor loop (created on first
 * use); watch the child pid whose Process is at proc_idx; hold the values
 * at idx1 and idx2 (0: none) while the loop handles pid's pty; let go of
 * them; stop watching pid (reaped outside the loop: true and its status
 * if the loop reaped it already); step the loop until pid ended (its
 * Process is then marked reaped), failing with err set. */
struct pf_sup;
struct pf_sup *pf_l_supervisor(lua_State *L);
void pf_l_supervise_add(lua_State *L, int proc_idx, pid_t pid);
void pf_l_supervise_hold(lua_State *L, pid_t pid, int idx1, int idx2);
void pf_l_supervise_release(lua_State *L, pid_t pid);
bool pf_l_supervise_forget(pid_t pid, int *ret_wstatus);
int pf_l_supervise_until(lua_State *L, pid_t pid, struct pf_error *err);
