/* From l_exec.c: the ExecPlan at idx, or NULL when it is nil or none. */
#pragma once

#include <lua.h>

struct pf_exec_plan;
const struct pf_exec_plan *pf_l_opt_exec_plan(lua_State *L, int idx);
