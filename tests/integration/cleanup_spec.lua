-- Cleanup that survives recipe errors: a recipe that fails after start(),
-- a Container closed with <close>, and a SIGTERM to pflask while a recipe
-- waits all end the containers and undo what was made for them (process,
-- cgroups, ephemeral directory, registry record); pflask.defer'd functions
-- run (last first) on a normal end, an error and a signal.
local pft = require "pftest"

local function pflask_link(name)
  return pft.sh("ip link show " .. pft.quote(name) .. " >/dev/null 2>&1") == 0 and name or nil
end

local recipe = pft.recipe

local function alive(pid)
  return pft.sh("test -d /proc/" .. pid) == 0
end

local function listed(name, opts)
  local r = pft.pflask({ "--list" }, opts)
  return r.stdout:find("\n" .. name .. " ", 1, true) ~= nil
end

describe("cleanup", function()
  local dir, root
  setup(function()
    dir = pft.tempdir("cleanup")
    root = pft.make_rootfs(dir .. "/root")
    pft.sh("mkdir " .. dir .. "/eph && chmod 0777 " .. dir)
  end)
  teardown(function() pft.rm_rf(dir) end)

  it("an error after start() leaves no process, cgroup, ephemeral directory nor record", function()
    local name = "pftclean" .. math.random(100000)
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local c = pflask.container{ root = %q, ephemeral = true, ephemeral_dir = %q, name = %q,
  limits = { pids = 20 }, command = { "sleep", "1000" } }:start()
local out = io.open(%q, "w")
out:write(c:pid(), "\n")
for _, cg in ipairs(c.plan.cgroups) do out:write(cg.dir, "\n") end
out:close()
error("the recipe fails here")
]], root, dir .. "/eph", name, dir .. "/facts"))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.equal(125, r.status)
    assert.matches("the recipe fails here", r.stderr)
    local facts = {}
    for l in pft.read_file(dir .. "/facts"):gmatch("[^\n]+") do facts[#facts + 1] = l end
    assert.is_true(#facts >= 2, "no cgroup recorded")
    assert.is_false(alive(facts[1]))
    for i = 2, #facts do assert.is_nil(pft.read_file(facts[i] .. "/cgroup.procs"), facts[i] .. " left") end
    assert.equal("", pft.capture("ls " .. dir .. "/eph"))
    assert.is_false(listed(name))
  end)

  it("closes a <close> container at the end of its block", function()
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local pid
do
  local c <close> = pflask.container{ command = { "sleep", "1000" }, limits = { pids = 20 } }:start()
  pid = c:pid()
  assert(c.plan.cgroups[1].dir)
  CG = c.plan.cgroups[1].dir
end
local f = io.open("/proc/" .. pid .. "/status")
io.write(f and "alive" or "gone", " ", io.open(CG .. "/cgroup.procs") and "cgroup" or "nocgroup", "\n")
]]))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.equal(0, r.status, r.stderr)
    assert.equal("gone nocgroup\n", r.stdout)
  end)

  it("runs deferred functions last first, on a normal end and on an error", function()
    for _, fail in ipairs({ false, true }) do
      local br = "pftcl" .. math.random(10000, 99999)
      local file = recipe(dir, string.format([[
local pflask = require "pflask"
local core = pflask.core
assert(core.link_add{ kind = "bridge", name = %q })
pflask.defer(function() io.write("second\n") end)
pflask.defer(function() assert(core.link_del(%q)); io.write("first\n") end)
assert(pflask.run{ command = { "true" } } == 0)
if %s then error("failed") end
]], br, br, tostring(fail)))
      local r = pft.pflask({ "--recipe=" .. file })
      assert.equal(fail and 125 or 0, r.status, r.stderr)
      assert.equal("first\nsecond\n", r.stdout)
      assert.is_nil(pflask_link(br))
    end
  end)

  it("on SIGTERM: the containers get it, deferred functions run, pflask exits 143", function()
    local br = "pftcl" .. math.random(10000, 99999)
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local core = pflask.core
assert(core.link_add{ kind = "bridge", name = %q })
pflask.defer(function() assert(core.link_del(%q)); io.write("bridge removed\n") end)
local a = pflask.container{ command = { "sleep", "1000" } }:start()
local b = pflask.container{ command = { "sh", "-c", "trap 'echo b got TERM >&2; exit 3' TERM; while :; do sleep 0.1; done" } }:start()
local f = io.open(%q, "w"); f:write(a:pid(), "\n", b:pid(), "\n"); f:close()
a:wait()
io.write("not reached\n")
]], br, br, dir .. "/pids"))
    os.remove(dir .. "/pids")
    local r = pft.run({ "sh", "-c", string.format(
      "%s --recipe=%s & p=$!; while [ ! -s %s ]; do sleep 0.1; done; sleep 0.5; kill -TERM $p; wait $p",
      pft.quote(pft.PFLASK), pft.quote(file), dir .. "/pids") })
    assert.equal(143, r.status, r.stderr)
    assert.equal("bridge removed\n", r.stdout)
    assert.matches("b got TERM", r.stderr)
    assert.matches("pflask: interrupted by SIGTERM", r.stderr)
    for pid in pft.read_file(dir .. "/pids"):gmatch("%d+") do assert.is_false(alive(pid)) end
    assert.is_nil(pflask_link(br))
  end)

  for _, case in ipairs({
    -- (A program os.execute runs does not get pflask's signal: the recipe
    -- is interrupted as soon as it returns.)
    { "while the recipe runs os.execute", [[os.execute("sleep 2")]] },
    { "while the recipe runs plain Lua", [[while true do end]] },
    { "between containers, after the last one ended", [[
pflask.container{ command = { "true" } }:run()
os.execute("sleep 2")]] },
  }) do
    it("on SIGTERM with no container running, " .. case[1] .. ": deferred functions run, 143", function()
      local file = recipe(dir, string.format([[
local pflask = require "pflask"
pflask.defer(function() io.write("deferred ran\n") end)
local f = io.open(%q, "w"); f:write("ready\n"); f:close()
%s
io.write("not reached\n")
]], dir .. "/ready", case[2]))
      os.remove(dir .. "/ready")
      local r = pft.run({ "sh", "-c", string.format(
        "%s --recipe=%s & p=$!; while [ ! -s %s ]; do sleep 0.1; done; sleep 0.3; kill -TERM $p; wait $p",
        pft.quote(pft.PFLASK), pft.quote(file), dir .. "/ready") }, { timeout = 20 })
      assert.equal(143, r.status, r.stderr)
      assert.equal("deferred ran\n", r.stdout)
      assert.matches("pflask: interrupted by SIGTERM", r.stderr)
    end)
  end

  it("rootless: an error after start() leaves no process behind", function()
    local u = pft.rootless_user()
    finally(function() u:remove() end)
    local user, uid, gid, exe = u.name, u.uid, u.gid, u.exe
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local c = pflask.container{ command = { "sleep", "1000" } }:start()
local f = io.open(%q, "w"); f:write(c:pid()); f:close()
pflask.defer(function() io.write("deferred\n") end)
error("failed")
]], dir .. "/upid"))
    pft.sh("chmod 0777 " .. dir)
    local r = pft.pflask({ "--recipe=" .. file }, { user = user, pflask = exe })
    if r.status ~= 125 and r.stderr:find("user namespace") then pending("no user namespaces: " .. r.stderr) return end
    assert.equal(125, r.status, r.stderr)
    assert.equal("deferred\n", r.stdout)
    assert.is_false(alive(pft.read_file(dir .. "/upid")))
    assert.equal("", pft.capture("pgrep -u " .. uid))
    local _ = gid
  end)
end)
