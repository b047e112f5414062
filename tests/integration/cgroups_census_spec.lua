-- The cgroup census (pflask.cgroups, "The census") on the real host, as
-- root: a start looks at none of the cgroups, supervisors or journals of
-- the containers already running (its cost does not grow with them), and
-- a pflask killed with SIGKILL still leaves nothing once the next pflask
-- that makes cgroups has run, wherever that one makes them.
local pft = require "pftest"

local started = {} -- pids of the background pflasks of this spec

local alive = pft.alive

--- Start `pflask ARGS -- sleep MARK` in the background; its pid once the
--- sleep runs.
local function background(args, mark)
  local argv = { pft.PFLASK }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--"
  argv[#argv + 1] = "sleep"
  argv[#argv + 1] = mark
  local q = {}
  for i, a in ipairs(argv) do q[i] = pft.quote(a) end
  local pid = tonumber((pft.capture(table.concat(q, " ") .. " </dev/null >/dev/null 2>&1 & echo $!")))
  started[#started + 1] = pid
  return pid
end

local function cgroups_of(pid)
  return pft.capture("find /sys/fs/cgroup -maxdepth 5 -type d -name 'pflask." .. pid .. ".*' 2>/dev/null")
end

describe("cgroup census", function()
  if pft.capture("id -u") ~= "0" then
    it("needs root", function() pending("cgroups of root containers") end)
    return
  end

  after_each(function()
    for _, pid in ipairs(started) do
      if alive(pid) then pft.sh("kill -TERM " .. pid) end
    end
    for _, pid in ipairs(started) do
      pft.wait_until("pflask " .. pid .. " to end", function() return not alive(pid) end)
    end
    started = {}
  end)

  it("a start reads no other container's cgroup, supervisor or journal", function()
    if pft.sh("command -v strace >/dev/null") ~= 0 then return pending("no strace here") end
    local mark = "8101" .. os.time() % 100000
    local others = {}
    for i = 1, 8 do others[i] = background({ "--pids-max=50" }, mark .. i) end
    pft.wait_until("the containers", function()
      for i = 1, 8 do
        if pft.capture("pgrep -f -x " .. pft.quote("sleep " .. mark .. i)) == "" then return false end
      end
      return true
    end)
    local trace = pft.tempdir("census") .. "/trace"
    -- A start reads the journals when a pflask died without cleaning up
    -- (other specs kill some, as they run beside this one): then it lists
    -- the runtime directory, and the census is settled for the next start.
    local seen
    for _ = 1, 20 do
      local r = pft.run({ "strace", "-f", "-e", "trace=openat,openat2,open", "-o", trace, pft.PFLASK,
                          "--pids-max=50", "--", "true" })
      assert.equal(0, r.status, r.stderr)
      seen = pft.read_file(trace)
      local listed = false
      for line in seen:gmatch("[^\n]+") do
        -- Listing it (reading, writing a record opens it O_PATH).
        if line:find('"/run/pflask"', 1, true) and not line:find("O_PATH", 1, true) then listed = true end
      end
      if not listed then break end
      seen = nil
    end
    if not seen then return pending("other pflasks kept dying: every start swept") end
    for _, pid in ipairs(others) do
      assert.is_nil(seen:find("/proc/" .. pid .. "/", 1, true), "read about supervisor " .. pid)
      assert.is_nil(seen:find("pflask." .. pid .. ".", 1, true), "looked at a cgroup or journal of " .. pid)
    end
    -- Nor listed a parent cgroup (an opendir is O_DIRECTORY): only its
    -- own, to remove them.
    for line in seen:gmatch("[^\n]+") do
      if line:find("/sys/fs/cgroup", 1, true) and line:find("O_DIRECTORY", 1, true) then
        assert.matches('"/sys/fs/cgroup/[^"]*/pflask%.%d+%.1[/"]', line)
      end
    end
  end)

  it("the next pflask that makes cgroups removes a killed one's, in whatever hierarchy it uses itself", function()
    local mark = "8102" .. os.time() % 100000
    local pid = background({ "--memory=64M" }, mark)
    pft.wait_until("the container", function()
      return pft.capture("pgrep -f -x " .. pft.quote("sleep " .. mark)) ~= ""
    end)
    assert.equal(0, pft.sh("kill -KILL " .. pid))
    -- Its container dies with it (the parent-death signal).
    pft.wait_until("the container to die with pflask", function()
      return pft.capture("pgrep -f -x " .. pft.quote("sleep " .. mark)) == ""
    end)
    -- Another controller: on a host with v1 hierarchies, another parent,
    -- which the sweep of each parent never looked in.
    local r = pft.pflask({ "--pids-max=50", "--", "true" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", cgroups_of(pid), "cgroups left")
    assert.equal("", pft.capture("ls /run/pflask/pflask." .. pid .. ".*.cgroups 2>/dev/null"), "journal left")
  end)

  it("the start that sees a death also removes what a gone supervisor left without a journal", function()
    -- A pflask.PID.N cgroup of a supervisor that is gone, named by no
    -- journal (its journal lost with the runtime directory, say): the
    -- census cannot find it; the start that sweeps after a death looks in
    -- each parent too.
    local mark = "8103" .. os.time() % 100000
    local gone = tonumber((pft.capture("sh -c 'echo $$'")))
    pft.wait_until("pid " .. gone .. " to be gone", function() return not alive(gone) end)
    local parent = pft.capture("awk -F: '$2 == \"pids\" { print $3 }' /proc/self/cgroup")
    if parent == "" then return pending("no v1 pids hierarchy here") end
    local orphan = "/sys/fs/cgroup/pids" .. (parent == "/" and "" or parent) .. "/pflask." .. gone .. ".1"
    assert.equal(0, pft.sh("mkdir " .. pft.quote(orphan)))
    local ok, err = pcall(function()
      -- Another spec's pflask starting beside this one may see the death
      -- first and settle it (sweeping only its own parents): then a death
      -- again, a few times at most.
      for attempt = 1, 3 do
        -- The death: a pflask killed with its cgroups made.
        local m = mark .. attempt
        local pid = background({ "--memory=64M" }, m)
        pft.wait_until("the container", function()
          return pft.capture("pgrep -f -x " .. pft.quote("sleep " .. m)) ~= ""
        end)
        assert.equal(0, pft.sh("kill -KILL " .. pid))
        pft.wait_until("the container to die with pflask", function()
          return pft.capture("pgrep -f -x " .. pft.quote("sleep " .. m)) == ""
        end)
        local r = pft.pflask({ "--pids-max=50", "--", "true" })
        assert.equal(0, r.status, r.stderr)
        assert.equal("", cgroups_of(pid), "the killed one's cgroups left")
        if not pft.exists(orphan) then break end
      end
      assert.is_false(pft.exists(orphan), "the journal-less leftover left")
    end)
    pft.sh("rmdir " .. pft.quote(orphan) .. " 2>/dev/null")
    assert(ok, err)
  end)
end)
