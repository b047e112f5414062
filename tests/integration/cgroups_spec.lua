-- --cgroup and the limits --memory, --pids-max, --cpus (as root). Works
-- on v1 and v2 hierarchies alike: the specs find where the container's
-- cgroup is from the host's mounts, and check that every pflask cgroup is
-- gone afterwards.
local pft = require "pftest"

local PY = "/usr/bin/python3"

--- Every pflask cgroup directory on the host, sorted, one per line.
local function pflask_cgroups()
  return (pft.capture("find /sys/fs/cgroup -type d -name 'pflask.*' 2>/dev/null | sort"))
end

--- pflask cgroups whose pflask is gone: leaks (other pflasks may run at
--- the same time, from other test runs, and keep theirs meanwhile).
local function leaked()
  local out = {}
  for dir in pflask_cgroups():gmatch("[^\n]+") do
    local pid = dir:match("pflask%.(%d+)%.%d+$")
    local f = pid and io.open("/proc/" .. pid .. "/stat")
    local stat = f and f:read("a")
    if f then f:close() end
    if pid and (not stat or stat:match("^%d+ %(.*%) (%a)") == "Z") then out[#out + 1] = dir end
  end
  return table.concat(out, "\n")
end

local function one_line(s)
  return select(2, s:gsub("\n", "")) == 1 and s:sub(-1) == "\n"
end

describe("cgroups", function()
  before_each(function() pft.pflask({ "--pids-max=9", "--", "true" }) end) -- sweeps stale ones
  after_each(function() assert.equal("", leaked(), "cgroups left behind") end)

  it("puts the container in a new memory cgroup, shown as its cgroup namespace's root", function()
    local r = pft.pflask({ "--cgroup=memory", "--cgroup=pids", "--", "sh", "-c",
      "cat /proc/self/cgroup; sleep 0.3" }, { prefix = "(sleep 0.15; find /sys/fs/cgroup -type d -name 'pflask.*' >" ..
        "/tmp/pftest-cg-seen) &" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("memory:/\n", r.stdout)
    assert.matches("pids:/\n", r.stdout)
    local seen = pft.capture("cat /tmp/pftest-cg-seen; rm -f /tmp/pftest-cg-seen")
    assert.matches("/memory/.*pflask%.%d+%.%d+", seen)
    assert.matches("/pids/.*pflask%.%d+%.%d+", seen)
  end)

  it("holds every process of the container, and only those", function()
    local r = pft.pflask({ "--cgroup=pids", "--", "sh", "-c",
      "cat /sys/fs/cgroup/pids$(grep pids /proc/1/cgroup | cut -d: -f3)/cgroup.procs | wc -l" })
    assert.equal(0, r.status, r.stderr)
  end)

  it("keeps a cgroup namespace without --cgroup", function()
    local host = pft.capture("readlink /proc/self/ns/cgroup")
    local r = pft.pflask({ "--", "readlink", "/proc/self/ns/cgroup" })
    assert.are_not.equal(host .. "\n", r.stdout)
    local r2 = pft.pflask({ "--cgroup=pids", "--", "readlink", "/proc/self/ns/cgroup" })
    assert.are_not.equal(host .. "\n", r2.stdout)
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
    local r = pft.pflask({ "--memory=64M", "--pids-max=33", "--cpus=1.5", "--", "sh", "-c", [[
      for c in memory pids cpu; do
        p=$(grep -E "^[0-9]+:([^:]*,)?$c(,[^:]*)?:" /proc/1/cgroup | head -1 | cut -d: -f3)
        echo $c $p
      done]] })
    assert.equal(0, r.status, r.stderr)
    assert.equal("memory /\npids /\ncpu /\n", r.stdout)
  end)

  it("removes the cgroups when the container is killed, and processes left in them", function()
    -- Without a pid namespace, a background process outlives the command.
    local r = pft.pflask({ "--no-pidns", "--pids-max=5", "--", "sh", "-c", "sleep 137 & echo started" })
    assert.equal(0, r.status, r.stderr)
    pft.sh("sleep 0.2")
    assert.equal(0, pft.count_processes("sleep 137"))
  end)

  it("removes empty cgroups of a pflask that was SIGKILLed, on the next run", function()
    local pid = tonumber((pft.capture(pft.quote(pft.PFLASK) .. " --pids-max=5 -- sleep 30 >/dev/null 2>&1 & echo $!")))
    pft.sh("sleep 0.3; kill -KILL " .. pid .. "; sleep 0.3")
    local stale = pflask_cgroups()
    assert.matches("pflask%." .. pid .. "%.1", stale, "the killed pflask should have left its cgroup")
    assert.matches("pflask%." .. pid .. "%.1", leaked())
    local r2 = pft.pflask({ "--pids-max=5", "--", "true" })
    assert.equal(0, r2.status, r2.stderr)
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
      local name = pft.create_user()
      local exe, bindir = pft.public_pflask()
      finally(function() pft.remove_user(name); pft.rm_rf(bindir) end)
      local r = pft.pflask({ "--cgroup=pids", "--", "true" }, { user = name, pflask = exe, prefix = "cd / &&" })
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("needs root or a delegated cgroup", r.stderr)
    end)
  end)
end)
