-- core.seccomp_compile and the sandbox concern's plan: the compiled BPF
-- program itself (its architecture check first), and the spec fields.
local core = require "pflask.core"
local container = require "pflask.container"

-- struct sock_filter: u16 code, u8 jt, u8 jf, u32 k (little endian here).
local function decode(bpf)
  local out = {}
  for i = 1, #bpf, 8 do
    local code, jt, jf, k = string.unpack("<I2I1I1I4", bpf, i)
    out[#out + 1] = { code = code, jt = jt, jf = jf, k = k }
  end
  return out
end

local LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
local AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xc000003e, 0x40000003
local RET_KILL_PROCESS, RET_KILL_THREAD, RET_ERRNO = 0x80000000, 0x00000000, 0x00050000

local function has(prog, code, k)
  for _, i in ipairs(prog) do if i.code == code and i.k == k then return true end end
  return false
end

local x86_64 = core.seccomp_arch_known("x86_64") and io.popen("uname -m"):read("l") == "x86_64"

describe("core.seccomp_compile", function()
  it("checks the architecture first, covers the compat ones and kills any other", function()
    if not x86_64 then return pending("the architecture checks below are x86_64's") end
    local prog = decode(assert(core.seccomp_compile{ rules = { { action = "errno", syscalls = { "keyctl" } } } }))
    -- First: load seccomp_data.arch (offset 4).
    assert.same({ code = LD_W_ABS, k = 4 }, { code = prog[1].code, k = prog[1].k })
    -- The native and the 32-bit architecture are both compared against,
    -- so that int 0x80 meets the same rules instead of passing.
    assert.is_true(has(prog, JEQ_K, AUDIT_ARCH_X86_64))
    assert.is_true(has(prog, JEQ_K, AUDIT_ARCH_I386))
    assert.is_true(core.seccomp_arch_known("x86") and core.seccomp_arch_known("x32"))
    -- An architecture not in the filter: the process is killed.
    assert.is_true(has(prog, RET_K, RET_KILL_PROCESS) or has(prog, RET_K, RET_KILL_THREAD))
    assert.is_true(has(prog, RET_K, RET_ERRNO | 1))
    -- Only x86_64 asked for: no i386 branch, a 32-bit call is killed.
    prog = decode(assert(core.seccomp_compile{ arch = { "SCMP_ARCH_X86_64" },
      rules = { { action = "errno", syscalls = { "keyctl" } } } }))
    assert.is_false(has(prog, JEQ_K, AUDIT_ARCH_I386))
  end)

  it("takes every action, errno and argument operator", function()
    for _, a in ipairs{ "allow", "errno", "kill", "kill_process", "trap", "log" } do
      assert.is_string(core.seccomp_compile{ default = a, rules = { { action = "errno", errno = 38, syscalls = { "keyctl" } } } })
    end
    for _, op in ipairs{ "eq", "ne", "lt", "le", "gt", "ge", "masked_eq" } do
      assert.is_string(core.seccomp_compile{ rules = { { action = "errno", syscalls = { "ioctl" },
        args = { { index = 1, op = op, value = 0xffffffff, value2 = 0x5412 } } } } })
    end
  end)

  it("fails on bad input with a message, never raises", function()
    local cases = {
      { { default = "nope" }, "'nope' is not an action" },
      { { errno = 5000 }, "errno must be" },
      { { rules = { { action = "errno", syscalls = { "no_such_call" } } } }, "'no_such_call' is not a system call" },
      { { rules = { { syscalls = { "keyctl" } } } }, "has no action" },
      { { rules = { { action = "errno", syscalls = { "ioctl" }, args = { { index = 7, op = "eq" } } } } }, "index = 0..5" },
      { { rules = { { action = "errno", syscalls = { "ioctl" }, args = { { index = 1, op = "like" } } } } }, "'like' is not an operator" },
      { { arch = { "vax" } }, "'vax' is not an architecture" },
    }
    for _, c in ipairs(cases) do
      local bpf, msg, errno = core.seccomp_compile(c[1])
      assert.is_nil(bpf)
      assert.truthy(msg:find(c[2], 1, true), msg)
      assert.equal(22, errno)
    end
  end)
end)

describe("spec.seccomp in plan()", function()
  it("compiles the default filter when absent, none with false, a table as given", function()
    local p = container.plan{ command = { "true" } }
    assert.is_string(p.seccomp_bpf)
    p = container.plan{ command = { "true" }, seccomp = false }
    assert.is_nil(p.seccomp_bpf)
    p = container.plan{ command = { "true" }, seccomp = { default = "errno", errno = 1,
      rules = { { action = "allow", syscalls = { "read", "write" } } } } }
    assert.is_string(p.seccomp_bpf)
  end)

  it("refuses bad tables and bad edits by name", function()
    local function err(spec)
      local ok, e = pcall(container.plan, spec)
      assert.is_false(ok)
      return tostring(e.message or e)
    end
    -- Wrong types are the spec schema's (pflask.schema), by field name.
    assert.are.equal("seccomp: must be a boolean or a table, not a string",
                     err{ command = { "true" }, seccomp = "yes" })
    assert.truthy(err{ command = { "true" }, seccomp = { rules = { { action = "x", syscalls = { "read" } } } } }
      :find("--seccomp: 'x' is not an action", 1, true))
    assert.truthy(err{ command = { "true" }, syscalls = { "@nope" } }:find("--syscalls: '@nope' is not a group", 1, true))
    assert.truthy(err{ command = { "true" }, seccomp = false, syscalls = { "-keyctl" } }:find("--syscalls", 1, true))
    assert.truthy(err{ command = { "true" }, timeout = -1 }:find("--timeout", 1, true))
    assert.are.equal("timeout.grace: must be a number, not a string",
                     err{ command = { "true" }, timeout = { seconds = 1, grace = "x" } })
    assert.truthy(err{ command = { "true" }, timeout = { seconds = 1, grace = -1 } }:find("--timeout: grace", 1, true))
  end)

  it("loads the filter before the user switch for a command without CAP_SYS_ADMIN, never adds no_new_privs", function()
    local p = container.plan{ command = { "true" }, caps = { "-sys_admin" } }
    assert.is_true(p.seccomp_early)
    assert.is_false(p.no_new_privs)
    p = container.plan{ command = { "true" }, caps = { "-sys_admin" }, no_new_privs = true }
    assert.is_false(p.seccomp_early)
    -- A root command keeps CAP_SYS_ADMIN, and loads the filter right
    -- before exec, unless the host's bounding set lacks it already (an
    -- unprivileged package build, say): then it is loaded early too.
    local bounding = assert(core.caps_bounding())
    p = container.plan{ command = { "true" } }
    assert.are.equal(bounding & (1 << 21) == 0, p.seccomp_early)
    assert.is_false(container.plan{ command = { "true" }, seccomp = false, caps = { "-sys_admin" } }.seccomp_early)
  end)
end)
