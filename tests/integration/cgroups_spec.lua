-- --cgroup and the limits --memory, --pids-max, --cpus (as root). Works
-- on v1 and v2 hierarchies alike: the specs find where the container's
-- cgroup is from the host's mounts, and check that every pflask cgroup is
-- gone afterwards.
local pft = require "pftest"

local PY = "/usr/bin/python3"

local cgroups = require "pflask.cgroups"

--- Every pflask cgroup directory on the host, sorted, one per line.
local function pflask_cgroups()
  return (pft.capture("find /sys/fs/cgroup -type d -name 'pflask.*' 2>/dev/null | sort"))
end

--- pflask cgroups whose pflask is gone: leaks, but those in `before`
--- (other runs at the same time may leave theirs, swept later; pass
--- pflask_cgroups() from before the test to see only those made since).
-- pflasks this spec started in the background (start()), by pid.
local started = {}

local function leaked(before)
  local out = {}
  -- Other runs at the same time (boots, root containers with --chroot)
  -- make and leave v2 cgroups; this spec's tests make none but through
  -- start(), so there only those of its own pflasks count.
  local v2 = pft.capture("findmnt -rno TARGET -t cgroup2 | head -1")
  for dir in pflask_cgroups():gmatch("[^\n]+") do
    local pid = dir:match("pflask%.(%d+)%.%d+$")
    if pid and v2 ~= "" and dir:sub(1, #v2 + 1) == v2 .. "/" and not started[tonumber(pid)] then pid = nil end
    local f = pid and io.open("/proc/" .. pid .. "/stat")
    local stat = f and f:read("a")
    if f then f:close() end
    if pid and (not stat or stat:match("^%d+ %(.*%) (%a)") == "Z") and not (before or ""):find(dir, 1, true) then
      out[#out + 1] = dir
    end
  end
  return table.concat(out, "\n")
end

local one_line = pft.one_line

local wait_until = pft.wait_until

--- The host's cgroup mounts (pflask's own reading of mountinfo).
local function hierarchies()
  local known = {}
  for line in (pft.read_file("/proc/cgroups") or ""):gmatch("[^\n]+") do
    local name = line:match("^([%w_]+)%s")
    if name then known[name] = true end
  end
  return cgroups.parse_mountinfo(pft.read_file("/proc/self/mountinfo"), known)
end

--- The directories of process pid's cgroups on the host, from
--- /proc/PID/cgroup: { v2 = dir, [controller] = dir (v1) }.
local function cgroup_dirs(pid)
  local h = hierarchies()
  local own = cgroups.parse_proc_cgroup(pft.read_file("/proc/" .. pid .. "/cgroup"))
  local function dir(mount, path)
    if mount.root ~= "/" and path:sub(1, #mount.root) == mount.root then path = path:sub(#mount.root + 1) end
    return (mount.dir .. path):gsub("/+$", "")
  end
  local dirs = {}
  if h.v2 and own.v2 then dirs.v2 = dir(h.v2, own.v2) end
  for c, p in pairs(own.v1) do
    if h.v1[c] then dirs[c] = dir(h.v1[c], p) end
  end
  return dirs
end

local function trim(s) return (s or ""):gsub("%s+$", "") end

--- Sorted pids in a cgroup.procs file.
local function procs(dir)
  local t = {}
  for p in (pft.read_file(dir .. "/cgroup.procs") or ""):gmatch("%d+") do t[#t + 1] = tonumber(p) end
  table.sort(t)
  return t
end

--- The container's cgroup for a controller (the pflask.PID.N above its
--- payload), v1 or v2, from the dirs of one of its processes.
local function container_cgroup(dirs, controller)
  local d = dirs[controller]
  if d and d:match("/pflask%.%d+%.%d+/payload$") then return d:match("^(.*)/payload$"), 1 end
  d = dirs.v2
  if d and d:match("/pflask%.%d+%.%d+/payload$") then return d:match("^(.*)/payload$"), 2 end
  return nil
end

--- Start pflask in the background with a command that ends in
--- `sleep MARK`; returns pflask's pid and the sleep's pid once it runs.
local function gone(pid)
  local stat = pft.read_file("/proc/" .. pid .. "/stat")
  return not stat or stat:match("^%d+ %(.*%) (%a)") == "Z"
end

--- Start pflask in the background with a command that ends in
--- `sleep MARK`; returns pflask's pid and the sleep's pid once it runs.
--- If pflask fails instead, the test fails with its message, or is
--- pending when the host does not delegate the controller to pflask.
local function start(args, mark)
  local argv = { pft.quote(pft.PFLASK) }
  for _, a in ipairs(args) do argv[#argv + 1] = pft.quote(a) end
  local errfile = os.tmpname()
  local pid = tonumber((pft.capture(table.concat(argv, " ") .. " >/dev/null 2>" .. errfile .. " & echo $!")))
  started[pid] = true
  local inner
  wait_until("the container's sleep " .. mark, function()
    inner = tonumber((pft.capture("pgrep -f -x 'sleep " .. mark .. "' | head -1")))
    if not inner and gone(pid) then
      local msg = pft.read_file(errfile) or ""
      os.remove(errfile)
      if msg:match("is not delegated to pflask's cgroup") then
        pending("this host does not delegate the controller to pflask's cgroup: " .. msg)
      end
      error("pflask failed: " .. msg)
    end
    return inner ~= nil
  end)
  os.remove(errfile)
  return pid, inner
end

describe("cgroups", function()
  local cgroups_before
  before_each(function()
    pft.pflask({ "--pids-max=9", "--", "true" }) -- sweeps stale ones
    cgroups_before = pflask_cgroups()
  end)
  after_each(function() assert.equal("", leaked(cgroups_before), "cgroups left behind") end)

  it("puts the container in new cgroups below pflask's, shown as its cgroup namespace's root", function()
    local mark = "7001." .. os.time()
    local pid, inner = start({ "--cgroup=memory", "--cgroup=pids", "--", "sh", "-c",
      "cat /proc/self/cgroup > /tmp/pftest-cg-inside." .. mark .. "; exec sleep " .. mark }, mark)
    local dirs = cgroup_dirs(inner)
    local host_dirs = cgroup_dirs(pid)
    local inside = pft.capture("cat /tmp/pftest-cg-inside." .. mark .. "; rm -f /tmp/pftest-cg-inside." .. mark)
    pft.sh("kill " .. inner)
    wait_until("pflask to end", function() return gone(pid) end)
    for _, c in ipairs({ "memory", "pids" }) do
      local cg, version = container_cgroup(dirs, c)
      assert.is_not_nil(cg, c .. ": " .. pft.read_file("/proc/self/cgroup"))
      -- Directly below pflask's own cgroup in that hierarchy.
      assert.equal((version == 1 and host_dirs[c] or host_dirs.v2) .. "/pflask." .. pid .. ".1", cg)
      assert.is_false(pft.sh("test -d " .. cg) == 0, "removed afterwards")
    end
    -- Inside, each of its cgroups is the root of its cgroup namespace.
    for line in inside:gmatch("[^\n]+") do assert.matches(":/$", line) end
    assert.matches("memory:/", inside)
  end)

  it("holds every process of the container, and only those", function()
    local mark = "7002." .. os.time()
    local pid, inner = start({ "--pids-max=50", "--", "sh", "-c", "sleep 1000 & sleep 1001 & exec sleep " .. mark },
      mark)
    local cg = container_cgroup(cgroup_dirs(inner), "pids")
    assert.is_not_nil(cg)
    -- Every process in the container's pid namespace, seen from the host.
    local ns = pft.capture("readlink /proc/" .. inner .. "/ns/pid")
    local members = {}
    for p in pft.capture("ls /proc | grep -E '^[0-9]+$'"):gmatch("%d+") do
      if pft.capture("readlink /proc/" .. p .. "/ns/pid 2>/dev/null") == ns then members[#members + 1] = tonumber(p) end
    end
    table.sort(members)
    local held = procs(cg .. "/payload")
    pft.sh("kill " .. inner)
    wait_until("pflask to end", function() return gone(pid) end)
    assert.is_true(#members >= 4, "reaper, two sleeps and the command: " .. #members)
    assert.same(members, held)
    assert.same({}, procs(cg), "no process above payload")
  end)

  it("keeps a cgroup namespace without --cgroup", function()
    local host = pft.capture("readlink /proc/self/ns/cgroup")
    for _, args in ipairs({ { "--", "readlink", "/proc/self/ns/cgroup" },
                            { "--cgroup=pids", "--", "readlink", "/proc/self/ns/cgroup" } }) do
      local r = pft.pflask(args)
      assert.equal(0, r.status, r.stderr)
      assert.matches("^cgroup:%[%d+%]\n$", r.stdout)
      assert.are_not.equal(host .. "\n", r.stdout)
    end
  end)

  it("stops a fork bomb at --pids-max and the host stays healthy", function()
    local r = pft.pflask({ "--pids-max=20", "--", PY, "-c", [[
import os, signal, sys
n = 0
try:
    while n < 1000:
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        n += 1
except OSError as e:
    print("fork failed after", n)
    sys.exit(0)
print("forked", n)
sys.exit(1)
]] })
    assert.equal(0, r.status, r.stderr)
    local n = tonumber(r.stdout:match("fork failed after (%d+)"))
    assert.is_true(n ~= nil and n >= 15 and n < 20, r.stdout) -- 20 minus reaper, sh...
    assert.equal(0, pft.sh("true")) -- the host can still fork
  end)

  it("kills an allocation past --memory", function()
    local r = pft.pflask({ "--memory=50M", "--", "sh", "-c",
      "head -c 200M /dev/zero | tail >/dev/null; echo tail=$?" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("tail=137\n", r.stdout) -- SIGKILLed by the OOM killer
    local ok = pft.pflask({ "--memory=50M", "--", "sh", "-c", "head -c 20M /dev/zero | tail | wc -c" })
    assert.equal("20971520\n", ok.stdout)
  end)

  it("limits CPU time with --cpus", function()
    -- Two busy loops for 1 s under 0.5 CPU use about 0.5 s of CPU time.
    local r = pft.pflask({ "--cpus=0.5", "--", PY, "-c", [[
import os, time
for _ in range(2):
    if os.fork() == 0:
        end = time.time() + 1
        while time.time() < end: pass
        os._exit(0)
for _ in range(2): os.wait()
t = os.times()
print(t.children_user + t.children_system)
]] })
    assert.equal(0, r.status, r.stderr)
    local used = tonumber(r.stdout)
    assert.is_true(used > 0.2 and used < 0.8, r.stdout)
  end)

  it("writes the limits where the container's hierarchy expects them", function()
    local mark = "7003." .. os.time()
    local pid, inner = start({ "--memory=64M", "--pids-max=33", "--cpus=1.5", "--", "sh", "-c",
      "for c in memory pids cpu; do grep -E \"^[0-9]+:([^:]*,)?$c(,[^:]*)?:\" /proc/1/cgroup; done"
      .. " > /tmp/pftest-cg-inside." .. mark .. "; exec sleep " .. mark }, mark)
    local dirs = cgroup_dirs(inner)
    local files = {}
    for _, c in ipairs({ "memory", "pids", "cpu" }) do
      local cg, version = container_cgroup(dirs, c)
      assert.is_not_nil(cg, c)
      if version == 2 then
        files[c] = ({ memory = { "memory.max" }, pids = { "pids.max" }, cpu = { "cpu.max" } })[c]
      else
        files[c] = ({ memory = { "memory.limit_in_bytes" }, pids = { "pids.max" },
                      cpu = { "cpu.cfs_quota_us", "cpu.cfs_period_us" } })[c]
      end
      for i, f in ipairs(files[c]) do files[c][i] = trim(pft.read_file(cg .. "/" .. f)) end
    end
    local inside = pft.capture("cat /tmp/pftest-cg-inside." .. mark .. "; rm -f /tmp/pftest-cg-inside." .. mark)
    pft.sh("kill " .. inner)
    wait_until("pflask to end", function() return gone(pid) end)
    assert.equal("67108864", files.memory[1])
    assert.equal("33", files.pids[1])
    if #files.cpu == 1 then
      assert.equal("150000 100000", files.cpu[1])
    else
      assert.same({ "150000", "100000" }, files.cpu)
    end
    -- Inside, each is the root of the container's cgroup namespace.
    assert.equal(3, select(2, inside:gsub("\n", "")) + 1, inside)
    for line in inside:gmatch("[^\n]+") do assert.matches(":/$", line) end
  end)

  it("kills the processes left in its cgroups when the container is killed, and removes them", function()
    -- Without a pid namespace, a background process outlives the command.
    local mark = "7004." .. os.time()
    local pid, inner = start({ "--no-pidns", "--pids-max=5", "--", "sh", "-c",
      "sleep 1" .. mark .. " & exec sleep " .. mark }, mark)
    local left
    wait_until("the background sleep", function()
      left = tonumber((pft.capture("pgrep -f -x 'sleep 1" .. mark .. "' | head -1")))
      return left ~= nil
    end)
    local cg = container_cgroup(cgroup_dirs(inner), "pids")
    assert.is_not_nil(cg)
    local held = procs(cg .. "/payload")
    pft.sh("kill -KILL " .. inner) -- the container's command is killed
    wait_until("pflask to end", function() return gone(pid) end)
    local found = false
    for _, p in ipairs(held) do found = found or p == left end
    assert.is_true(found, "the background sleep was in the container's cgroup")
    assert.is_true(gone(left), "the background sleep was killed")
    assert.is_false(pft.sh("test -d " .. cg) == 0, "its cgroup was removed")
  end)

  it("undoes a +controller it wrote to its parent's subtree_control", function()
    -- On this kind of host (a v2 hierarchy whose root holds a controller
    -- it does not enable, pflask in the root cgroup), pflask enables it.
    local h = hierarchies()
    local own = cgroups.parse_proc_cgroup(pft.read_file("/proc/self/cgroup"))
    if not (h.v2 and own.v2 == "/") then pending("pflask does not run in the v2 root cgroup here") return end
    local root = h.v2.dir
    local ctrl
    local enabled = " " .. trim(pft.read_file(root .. "/cgroup.subtree_control")) .. " "
    for c in (pft.read_file(root .. "/cgroup.controllers") or ""):gmatch("%S+") do
      if not enabled:find(" " .. c .. " ", 1, true) and not h.v1[c] then ctrl = c end
    end
    if not ctrl then pending("every controller of the v2 root is enabled already") return end
    local mark = "7005." .. os.time()
    local pid, inner = start({ "--cgroup=" .. ctrl, "--", "sleep", mark }, mark)
    local during = " " .. trim(pft.read_file(root .. "/cgroup.subtree_control")) .. " "
    local files = trim(pft.capture("ls " .. container_cgroup(cgroup_dirs(inner), ctrl)))
    pft.sh("kill " .. inner)
    wait_until("pflask to end", function() return gone(pid) end)
    assert.truthy(during:find(" " .. ctrl .. " ", 1, true), "enabled while the container runs")
    assert.matches("\n" .. ctrl .. "%.", "\n" .. files) -- the controller's files in the container's cgroup
    local after = " " .. trim(pft.read_file(root .. "/cgroup.subtree_control")) .. " "
    if after:find(" " .. ctrl .. " ", 1, true) then
      -- Only while another cgroup (another run's container) is there: the
      -- mark stays for the last pflask to leave, or the next run's sweep.
      local others = pft.capture("ls " .. root .. " | grep -v '^pflask\\.subtree\\.' | wc -l")
      assert.are_not.equal("0", others, "+" .. ctrl .. " left in " .. root .. "/cgroup.subtree_control")
      assert.equal(0, pft.sh("test -d " .. root .. "/pflask.subtree." .. ctrl))
    else
      assert.is_false(pft.sh("test -d " .. root .. "/pflask.subtree." .. ctrl) == 0, "the mark is removed")
    end
  end)

  it("steps aside into a leaf of its own v2 cgroup to hand a controller down, and back", function()
    -- pflask alone in a v2 cgroup that has a controller available but not
    -- enabled (as under systemd-run --scope -p Delegate=yes).
    local h = hierarchies()
    if not h.v2 then pending("no cgroup v2 hierarchy here") return end
    local root = h.v2.dir
    local own = cgroups.parse_proc_cgroup(pft.read_file("/proc/self/cgroup"))
    if own.v2 ~= "/" then pending("the tests do not run in the v2 root cgroup here") return end
    local ctrl
    for c in (pft.read_file(root .. "/cgroup.controllers") or ""):gmatch("%S+") do
      if not h.v1[c] then ctrl = c end
    end
    if not ctrl then pending("no v2 controller free of v1 here") return end
    local enabled = (" " .. trim(pft.read_file(root .. "/cgroup.subtree_control")) .. " "):find(" " .. ctrl .. " ", 1, true)
    local dir = root .. "/pftest-aside." .. os.time() .. "." .. math.random(0, 9999)
    if not enabled then assert.equal(0, pft.sh("echo +" .. ctrl .. " > " .. root .. "/cgroup.subtree_control")) end
    assert.equal(0, pft.sh("mkdir " .. dir))
    finally(function()
      pft.sh("rmdir " .. dir .. " 2>/dev/null")
      if not enabled then pft.sh("echo -" .. ctrl .. " > " .. root .. "/cgroup.subtree_control 2>/dev/null") end
    end)
    local mark = "7006." .. os.time()
    local pid = tonumber((pft.capture("sh -c 'echo $$ > " .. dir .. "/cgroup.procs && exec " .. pft.quote(pft.PFLASK)
      .. " --cgroup=" .. ctrl .. " -- sleep " .. mark .. "' >/dev/null 2>/tmp/pftest-aside.err & echo $!")))
    started[pid] = true
    local inner
    wait_until("the container", function()
      inner = tonumber((pft.capture("pgrep -f -x 'sleep " .. mark .. "' | head -1")))
      assert.is_false(inner == nil and gone(pid), pft.read_file("/tmp/pftest-aside.err"))
      return inner ~= nil
    end)
    local rel = dir:sub(#root + 1)
    local supervisor = cgroups.parse_proc_cgroup(pft.read_file("/proc/" .. pid .. "/cgroup")).v2
    local container = cgroups.parse_proc_cgroup(pft.read_file("/proc/" .. inner .. "/cgroup")).v2
    local during = trim(pft.read_file(dir .. "/cgroup.subtree_control"))
    local limits_file = pft.sh("test -e " .. dir .. "/pflask." .. pid .. ".1/" .. ctrl .. ".max 2>/dev/null || ls "
      .. dir .. "/pflask." .. pid .. ".1 | grep -q '^" .. ctrl .. "\\.'")
    pft.sh("kill " .. inner)
    wait_until("pflask to end", function() return gone(pid) end)
    os.remove("/tmp/pftest-aside.err")
    assert.equal(rel .. "/pflask." .. pid .. ".0", supervisor)
    assert.equal(rel .. "/pflask." .. pid .. ".1/payload", container)
    assert.equal(ctrl, during)
    assert.equal(0, limits_file, "the controller's files in the container's cgroup")
    -- Afterwards: the controller handed down no more, every pflask cgroup gone.
    assert.equal("", trim(pft.read_file(dir .. "/cgroup.subtree_control")))
    assert.equal("", trim(pft.capture("ls -d " .. dir .. "/*/ 2>/dev/null")))
  end)

  it("removes empty cgroups of a pflask that was SIGKILLed, on the next run", function()
    local mark = "7007." .. os.time()
    local pid, inner = start({ "--pids-max=5", "--", "sleep", mark }, mark)
    pft.sh("kill -KILL " .. pid)
    -- The container dies with its supervisor (the parent-death signal).
    wait_until("the container to die with pflask", function() return gone(inner) end)
    -- Left behind, unless another spec's pflask, starting beside this
    -- one, already swept it (the census counts the death for every start).
    local stale = pflask_cgroups()
    if stale:find("pflask." .. pid .. ".1", 1, true) then
      assert.matches("pflask%." .. pid .. "%.1", leaked())
    end
    local r2 = pft.pflask({ "--pids-max=5", "--", "true" })
    assert.equal(0, r2.status, r2.stderr)
    assert.not_matches("pflask%." .. pid .. "%.", pflask_cgroups())
  end)

  describe("bad input", function()
    local function refused(args, pattern)
      local r = pft.pflask(args)
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches(pattern, r.stderr)
    end

    it("refuses an unknown controller", function()
      refused({ "--cgroup=nosuchctl", "--", "true" }, "^pflask: %-%-cgroup: 'nosuchctl' is not a cgroup controller on this host")
    end)

    it("refuses limits that do not parse", function()
      refused({ "--memory=lots", "--", "true" }, "^pflask: %-%-memory: 'lots' is not a size")
      refused({ "--pids-max=0", "--", "true" }, "^pflask: %-%-pids%-max: '0'")
      refused({ "--cpus=fast", "--", "true" }, "^pflask: %-%-cpus: 'fast'")
    end)

    it("leaves no cgroup after a container that fails to start", function()
      local r = pft.pflask({ "--cgroup=memory", "--memory=64M", "--", "pftest-no-such-command" })
      assert.equal(127, r.status)
      local r2 = pft.pflask({ "--cgroup=memory", "--chdir=/pftest-nowhere", "--", "true" })
      assert.equal(125, r2.status)
      local r3 = pft.pflask({ "--cgroup=pids", "--caps=+nosuchcap", "--", "true" })
      assert.equal(125, r3.status)
    end)

    it("refuses --cgroup as a user without a delegated cgroup", function()
      local user = pft.rootless_user()
      finally(function() user:remove() end)
      -- (The caller's PATH, as it always was here.)
      local r = user:pflask({ "--cgroup=pids", "--", "true" }, { env = { PATH = false } })
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("needs root or a delegated cgroup", r.stderr)
    end)
  end)
end)
