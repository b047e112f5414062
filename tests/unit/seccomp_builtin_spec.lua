-- The default seccomp filter's programs compiled at build time
-- (tools/gen_seccomp.c, src/syscall_filter.h pf_seccomp_builtin): the
-- executable takes one only for a filter whose key equals one it
-- carries, and that program is byte for byte what libseccomp compiles at
-- run time from the same table. The executable's own core runs the
-- checks (pflask --recipe=FILE: core.so carries no programs); busted's
-- core.so compiles the same tables as a third opinion.
local core = require "pflask.core"
local sandbox = require "pflask.sandbox"
local pft = require "pftest"

-- Whether this build put programs into the executable (CMake option
-- PFLASK_SECCOMP_BUILTIN, off with shared libraries; the generator does
-- not run when cross-compiling, so there is no build/seccomp_builtin.c).
local function builtin_enabled()
  local cache = pft.read_file(pft.BUILD_DIR .. "/CMakeCache.txt") or ""
  return cache:match("\nPFLASK_SECCOMP_BUILTIN:BOOL=ON\n") ~= nil
    and pft.read_file(pft.BUILD_DIR .. "/seccomp_builtin.c") ~= nil
end

-- Run a recipe in the pflask executable; it prints lines "name source
-- hex(bpf)"; returns { [name] = { source =, bpf = } }.
local function in_executable(body)
  local dir = pft.tempdir("scbuiltin")
  local file = dir .. "/check.lua"
  pft.write_file(file, [[
local core = require "pflask.core"
local sandbox = require "pflask.sandbox"
local container = require "pflask.container"
local cli = require "pflask.cli"
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function out(name, bpf, source) io.write(name, " ", source, " ", hex(bpf), "\n") end
local function host(euid)
  local h = container.host_facts()
  h.euid, h.egid, h.uid, h.pid = euid, euid, euid, 4242
  h.isatty = function() return false end
  h.fd_is_open = function(fd) return fd <= 2, fd <= 2 and "char" or nil end
  h.environ = function() return { HOME = "/caller", USER = "caller", PATH = "/bin" } end
  return h
end
]] .. body)
  local r = pft.pflask({ "--recipe=" .. file })
  pft.rm_rf(dir)
  assert.equal(0, r.status, r.stderr)
  local res = {}
  for name, source, hexbpf in r.stdout:gmatch("(%S+) (%S+) (%x+)\n") do
    res[name] = { source = source, bpf = (hexbpf:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) }
  end
  return res
end

describe("the key of a filter", function()
  it("is the same for the same table, and tells apart what changes the program", function()
    local t = sandbox.default_table(nil, sandbox.BUILTIN_PLANS[1])
    local _, _, k1 = assert(core.seccomp_compile(t))
    local _, _, k2 = assert(core.seccomp_compile(sandbox.default_table(nil, sandbox.BUILTIN_PLANS[1])))
    assert.equal(k1, k2)
    local _, _, k3 = assert(core.seccomp_compile(t, { kill_thread = true }))
    assert.not_equal(k1, k3)
    local _, _, k4 = assert(core.seccomp_compile(sandbox.default_table({ "-getpid" }, sandbox.BUILTIN_PLANS[1])))
    assert.not_equal(k1, k4)
    local _, _, k5 = assert(core.seccomp_compile(sandbox.default_table(nil, sandbox.BUILTIN_PLANS[2])))
    assert.not_equal(k1, k5)
    -- An errno or an argument of a rule is in it too.
    local a = { rules = { { action = "errno", errno = 1, syscalls = { "ioctl" },
      args = { { index = 1, op = "masked_eq", value = 0xffffffff, value2 = 0x5412 } } } } }
    local b = { rules = { { action = "errno", errno = 1, syscalls = { "ioctl" },
      args = { { index = 1, op = "masked_eq", value = 0xffffffff, value2 = 0x5413 } } } } }
    local c = { rules = { { action = "errno", errno = 2, syscalls = { "ioctl" },
      args = { { index = 1, op = "masked_eq", value = 0xffffffff, value2 = 0x5412 } } } } }
    local ka = select(3, assert(core.seccomp_compile(a)))
    assert.not_equal(ka, select(3, assert(core.seccomp_compile(b))))
    assert.not_equal(ka, select(3, assert(core.seccomp_compile(c))))
    -- Spellings libseccomp reads the same way give the same key.
    local x = select(3, assert(core.seccomp_compile{ arch = { "x86_64" }, rules = a.rules }))
    local y = select(3, assert(core.seccomp_compile{ arch = { "SCMP_ARCH_X86_64" }, rules = a.rules }))
    if core.seccomp_arch_known("x86_64") then assert.equal(x, y) end
  end)

  it("comes from a default table that is the same on every run (the ioctl rules in order)", function()
    local t = sandbox.default_table(nil, sandbox.BUILTIN_PLANS[1])
    local reqs = {}
    for _, r in ipairs(t.rules) do
      if r.args then reqs[#reqs + 1] = r.args[1].value2 end
    end
    assert.same({ sandbox.IOCTLS.TIOCSTI, sandbox.IOCTLS.TIOCLINUX }, reqs)
  end)

  it("core.so carries no built-in programs: it always compiles", function()
    local t = sandbox.default_table(nil, sandbox.BUILTIN_PLANS[1])
    assert.equal("compiled", select(2, assert(core.seccomp_compile(t))))
  end)
end)

local NO_BUILTIN = "this build compiles every filter at run time (PFLASK_SECCOMP_BUILTIN off)"

describe("the pflask executable's built-in programs", function()
  it("are byte for byte what libseccomp compiles at run time from the same table, for every variant", function()
    if not builtin_enabled() then return pending(NO_BUILTIN) end
    local res = in_executable([[
for i, plan in ipairs(sandbox.BUILTIN_PLANS) do
  local t = sandbox.default_table(nil, plan)
  for _, kt in ipairs{ false, true } do
    local name = i .. (kt and "thread" or "process")
    local bpf, source = assert(core.seccomp_compile(t, { kill_thread = kt }))
    out(name, bpf, source)
    bpf, source = assert(core.seccomp_compile(t, { kill_thread = kt, builtin = false }))
    out(name .. "-compiled", bpf, source)
  end
end
]])
    local n = 0
    for i, plan in ipairs(sandbox.BUILTIN_PLANS) do
      local t = sandbox.default_table(nil, plan)
      for _, kt in ipairs{ false, true } do
        local name = i .. (kt and "thread" or "process")
        local b, c = res[name], res[name .. "-compiled"]
        assert.truthy(b and c, name)
        assert.equal("builtin", b.source, name)
        assert.equal("compiled", c.source, name)
        assert.equal(c.bpf, b.bpf, name)
        -- And what core.so (the shared libseccomp) compiles here.
        assert.equal(assert(core.seccomp_compile(t, { kill_thread = kt })), b.bpf, name)
        n = n + 1
      end
    end
    assert.equal(2 * #sandbox.BUILTIN_PLANS, n)
  end)

  it("serve the default runs: root, rootless, --netif, --no-pidns; --syscalls and --caps edits compile", function()
    if not builtin_enabled() then return pending(NO_BUILTIN) end
    local res = in_executable([[
local cases = {
  { "root", { "--", "true" }, 0 },
  { "rootless", { "--", "true" }, 1000 },
  { "netif", { "--netif", "--", "true" }, 0 },
  { "nopidns", { "--no-pidns", "--", "true" }, 0 },
  { "user", { "--user=nobody", "--", "true" }, 0 },
  { "syscalls", { "--syscalls=-getpid", "--", "true" }, 0 },
  { "syscalls-rootless", { "--syscalls=+@keyring", "--", "true" }, 1000 },
  { "caps", { "--caps=+syslog", "--", "true" }, 0 },
}
for _, c in ipairs(cases) do
  local spec = assert(cli.parse(c[2]))
  local p = container.plan(spec, host(c[3]))
  -- plan() keeps only the program: compile its table again to learn
  -- where the program came from, and check it is the plan's.
  local bpf, source = assert(core.seccomp_compile(sandbox.default_table(spec.syscalls, p)))
  assert(bpf == p.seccomp_bpf, c[1] .. ": not the plan's program")
  out(c[1], bpf, source)
  out(c[1] .. "-compiled", assert(core.seccomp_compile(sandbox.default_table(spec.syscalls, p), { builtin = false })), "compiled")
end
]])
    for _, name in ipairs{ "root", "rootless", "netif", "nopidns", "user" } do
      assert.truthy(res[name], name)
      assert.equal("builtin", res[name].source, name)
      assert.equal(res[name .. "-compiled"].bpf, res[name].bpf, name)
    end
    for _, name in ipairs{ "syscalls", "syscalls-rootless", "caps" } do
      assert.truthy(res[name], name)
      assert.equal("compiled", res[name].source, name)
    end
    -- The edits are in the programs: none equals the default's.
    assert.not_equal(res.root.bpf, res.syscalls.bpf)
    assert.not_equal(res.root.bpf, res.caps.bpf)
    assert.not_equal(res.rootless.bpf, res["syscalls-rootless"].bpf)
  end)
end)
