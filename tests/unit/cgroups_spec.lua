-- pflask.cgroups against a fake cgroupfs: a temporary directory laid out
-- as a pure v2 mount (a delegated subtree included), a v1 one and a
-- hybrid one, with file operations that act as the kernel does on the
-- files (subtree_control takes +c/-c, a new cgroup gets the controllers
-- its parent hands down, rmdir of a cgroup with processes is EBUSY) and
-- record every write. The real code runs: plan, prepare, parent, cleanup.
-- No root needed.
local cgroups = require "pflask.cgroups"
local core = require "pflask.core"

local function sh(cmd) assert(os.execute(cmd), cmd) end

local function read(file)
  local f = io.open(file)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(file, data)
  local f = assert(io.open(file, "w"))
  f:write(data)
  f:close()
end

local function words(s)
  local t = {}
  for w in (s or ""):gmatch("%S+") do t[#t + 1] = w end
  return t
end

local function isdir(dir) return os.execute("test -d '" .. dir .. "'") == true end

-- Interface files a new cgroup gets for each controller, with the
-- kernel's defaults.
local V2_FILES = {
  memory = { ["memory.max"] = "max", ["memory.swap.max"] = "max" },
  pids = { ["pids.max"] = "max" },
  cpu = { ["cpu.max"] = "max 100000" },
  hugetlb = {},
}
local V1_FILES = {
  memory = { ["memory.limit_in_bytes"] = "9223372036854771712" }, -- no memsw: swap accounting off
  pids = { ["pids.max"] = "max" },
  cpu = { ["cpu.cfs_period_us"] = "100000", ["cpu.cfs_quota_us"] = "-1" },
  devices = { ["devices.allow"] = "", ["devices.deny"] = "" },
  cpuset = { ["cpuset.cpus"] = "", ["cpuset.mems"] = "", ["cpuset.sched_load_balance"] = "1" },
}

--- A fake host. layout: "v2" (pure v2, supervisor in `own`), "v1" (pure
--- v1), "hybrid" (v1 controllers, an empty v2). Returns host, base dir,
--- and the log of writes ({dir, file, value}, relative to base).
local function fake_host(layout, opts)
  opts = opts or {}
  local base = os.tmpname()
  os.remove(base)
  sh("mkdir -p " .. base)
  local log = {}
  local kinds = {} -- mount dir -> "v2" or v1 controller
  local host = { euid = opts.euid or 0, pid = 4000, own = { v1 = {} }, hierarchies = { v1 = {} } }
  local function rel(p) return p:sub(#base + 1) end
  local function mount_of(dir)
    local best
    for m in pairs(kinds) do
      if (dir == m or dir:sub(1, #m + 1) == m .. "/") and (not best or #m > #best) then best = m end
    end
    return best
  end
  local function populate(dir, parent)
    local m = mount_of(dir)
    write(dir .. "/cgroup.procs", "")
    if kinds[m] == "v2" then
      local ctrls = parent and read(parent .. "/cgroup.subtree_control") or opts.v2_controllers or "cpu memory pids"
      write(dir .. "/cgroup.controllers", ctrls)
      write(dir .. "/cgroup.subtree_control", "")
      if parent then
        for _, c in ipairs(words(ctrls)) do
          for f, v in pairs(V2_FILES[c] or {}) do write(dir .. "/" .. f, v) end
        end
      end
    else
      for f, v in pairs(V1_FILES[kinds[m]] or {}) do
        write(dir .. "/" .. f, (parent and (f == "cpuset.cpus" or f == "cpuset.mems")) and "" or v)
      end
      if not parent and kinds[m] == "cpuset" then
        write(dir .. "/cpuset.cpus", "0-1")
        write(dir .. "/cpuset.mems", "0")
      end
    end
  end
  local fs = {}
  fs.read = read
  function fs.create(dir)
    log[#log + 1] = { "mkdir", rel(dir) }
    if isdir(dir) then return nil, "create cgroup " .. dir .. ": File exists", 17 end
    local parent = dir:match("^(.*)/[^/]+$")
    if not isdir(parent) then return nil, "create cgroup " .. dir .. ": No such file or directory", 2 end
    sh("mkdir '" .. dir .. "'")
    populate(dir, parent)
    return true
  end
  function fs.write(dir, file, value)
    log[#log + 1] = { rel(dir), file, value }
    local path = dir .. "/" .. file
    local old = read(path)
    if not old then return nil, "open " .. path .. ": No such file or directory", 2 end
    if file == "cgroup.subtree_control" then
      local set = {}
      for _, c in ipairs(words(old)) do set[c] = true end
      local sign, c = value:match("^([+-])(.+)$")
      if sign == "+" then
        if not ((" " .. (read(dir .. "/cgroup.controllers") or "") .. " "):find(" " .. c .. " ", 1, true)) then
          return nil, "write: No such file or directory", 2
        end
        -- The no-internal-process rule: only the root may hold processes.
        if read(dir .. "/cgroup.procs") ~= "" and dir ~= mount_of(dir) then
          return nil, "write '" .. value .. "' to " .. path .. ": Device or resource busy", 16
        end
        set[c] = true
      else
        set[c] = nil
      end
      local out = {}
      for k in pairs(set) do out[#out + 1] = k end
      table.sort(out)
      write(path, table.concat(out, " "))
    elseif file == "cgroup.procs" or file == "devices.allow" or file == "devices.deny" then
      write(path, old .. value:gsub("\n$", "") .. "\n")
    else
      write(path, value)
    end
    return true
  end
  function fs.attach(dir, pid) return fs.write(dir, "cgroup.procs", tostring(pid)) end
  function fs.remove(dir, kill)
    log[#log + 1] = { "rmdir", rel(dir), kill }
    if not isdir(dir) then return true end
    for _, child in ipairs(core.cgroup_children(dir) or {}) do
      local ok, msg, errno = fs.remove(dir .. "/" .. child, kill)
      if not ok then return ok, msg, errno end
    end
    if read(dir .. "/cgroup.procs") ~= "" and not kill then
      return nil, "remove cgroup " .. dir .. ": Device or resource busy", 16
    end
    sh("rm -rf '" .. dir .. "'")
    return true
  end
  fs.children = core.cgroup_children
  function fs.devices_attach(dir, rules)
    log[#log + 1] = { rel(dir), "BPF_CGROUP_DEVICE", table.concat(rules, ";") }
    return true
  end
  function fs.owner() return host.euid end
  function fs.device(p)
    if p == "/dev/net/tun" then return "char", 10, 200 end
    if p == "/dev/loop7" then return "block", 7, 7 end
    return false
  end
  host.fs = fs
  host.alive = function(pid) return tonumber(pid) == host.pid end

  local function mount(dir, kind)
    sh("mkdir -p " .. dir)
    kinds[dir] = kind
    populate(dir, nil)
  end
  if layout == "v2" then
    mount(base .. "/cg", "v2")
    host.hierarchies.v2 = { dir = base .. "/cg", root = "/" }
    host.own.v2 = opts.own or "/"
  end
  if layout == "v2" and not opts.bare then
    -- A delegated subtree, as systemd makes one (Delegate=yes): its parent
    -- hands it memory and pids.
    local d = base .. "/cg/user.slice"
    fs.create(d)
    fs.write(base .. "/cg", "cgroup.subtree_control", "+memory")
    fs.write(base .. "/cg", "cgroup.subtree_control", "+pids")
    fs.write(base .. "/cg", "cgroup.subtree_control", "+cpu")
    sh("rm -rf '" .. d .. "'")
    fs.create(d)
    fs.write(d, "cgroup.subtree_control", "+memory")
    fs.write(d, "cgroup.subtree_control", "+pids")
    fs.create(d .. "/deleg")
    fs.write(d .. "/deleg", "cgroup.procs", "4000") -- the supervisor
    for i = #log, 1, -1 do log[i] = nil end
  elseif layout ~= "v2" then
    if layout == "hybrid" then
      -- As on hosts that mount v1 controllers: the v2 root holds none.
      opts.v2_controllers = opts.v2_controllers or ""
      mount(base .. "/unified", "v2")
      host.hierarchies.v2 = { dir = base .. "/unified", root = "/" }
      host.own.v2 = "/"
    end
    for _, c in ipairs({ "memory", "pids", "cpu", "devices", "cpuset" }) do
      mount(base .. "/" .. c, c)
      host.hierarchies.v1[c] = { dir = base .. "/" .. c, root = "/" }
      host.own.v1[c] = "/"
    end
  end
  return host, base, log
end

local function new_plan(opts)
  opts = opts or {}
  return { namespaces = { mount = true, pid = true, cgroup = true, user = opts.user or false },
           root = opts.root, mounts = opts.mounts or {} }
end

local container = { pid = function() return 4242 end }

--- plan + prepare + parent; returns the plan.
local function start(host, spec, plan)
  plan = plan or new_plan()
  cgroups.plan(spec, plan, host)
  local ok, err = pcall(cgroups.prepare, plan)
  if not ok then
    cgroups.cleanup(plan)
    error(err, 0)
  end
  cgroups.parent(plan, container)
  return plan
end

local function writes_of(log, dir)
  local out = {}
  for _, w in ipairs(log) do
    if w[1] == dir then out[#out + 1] = w[2] .. "=" .. tostring(w[3]) end
  end
  return out
end

--- The name of the container's cgroups (pflask.PID.N, N counting up).
local function cgname(plan) return plan.cgroups[1].dir:match("[^/]+$") end

--- Give a fake host a census and journals (see pflask.cgroups, "The
--- census"): the journals in a directory below base, the semaphore set
--- as the kernel keeps it (SEM_UNDO: kill(pid) takes pid's joins off the
--- live count, not off the registered one). host.pid's process is alive
--- (start time 1) unless killed. Returns the census state; every call is
--- counted in state.calls.
local function add_census(host, base)
  local st = { live = 0, registered = 0, locked = false, joins = {}, dead = {}, calls = {} }
  local jdir = base .. "/run"
  sh("mkdir -p " .. jdir)
  local function count(name) st.calls[name] = (st.calls[name] or 0) + 1 end
  host.pidns = 77
  host.supervisor = function(pid)
    count("supervisor")
    if st.dead[pid] then return nil end
    return (pid == host.pid or (st.alive and st.alive[pid])) and 1 or nil
  end
  host.start_time = function(pid) return pid == host.pid and 1 or nil end
  host.journal = {
    dir = function() return jdir end,
    write = function(dir, name, data, exclusive)
      count("write")
      if exclusive and read(dir .. "/" .. name) then return nil, "exists", 17 end
      write(dir .. "/" .. name, data)
      return true
    end,
    read = function(dir, name) count("read"); return read(dir .. "/" .. name) end,
    list = function(dir)
      count("list")
      local out = {}
      for f in io.popen("ls " .. dir):lines() do
        if f:sub(-#cgroups.JOURNAL) == cgroups.JOURNAL then out[#out + 1] = f end
      end
      return out
    end,
    remove = function(dir, name) count("remove"); os.remove(dir .. "/" .. name); return true end,
    census_open = function()
      count("open")
      if st.foreign then return nil, "not pflask's", 1 end
      return 5, st.created or false
    end,
    census_join = function(_, d)
      count("join")
      st.live, st.registered = st.live + d, st.registered + d
      st.joins[host.pid] = (st.joins[host.pid] or 0) + d
      return true
    end,
    census_deaths = function() count("deaths"); return st.registered - st.live end,
    census_lock = function(_, on) assert(st.locked ~= on); st.locked = on; return true end,
    census_settle = function(_, n) count("settle"); st.registered = st.registered - n; return true end,
  }
  --- SIGKILL of process pid: the kernel undoes its live count.
  function st.kill(pid)
    st.live = st.live - (st.joins[pid] or 0)
    st.joins[pid] = nil
    st.dead[pid] = true
  end
  st.dir = jdir
  return st
end

local LIMITS = { memory = "64M", pids = 33, cpus = "1.5" }
local STANDARD = table.concat(cgroups.STANDARD_DEVICES, ";")

describe("pflask.cgroups on a fake cgroupfs", function()
  local host, base, log
  after_each(function() if base then sh("rm -rf '" .. base .. "'") end end)

  describe("pure v2", function()
    it("writes memory.max, memory.swap.max, cpu.max, pids.max in a cgroup below pflask's, and joins payload", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      -- user.slice hands down memory and pids, not cpu: no --cpus here.
      local plan = start(host, { limits = { memory = "64M", pids = 33 } })
      local N = cgname(plan)
      local dir = "/cg/user.slice/" .. N
      assert.same({ "memory.max=67108864", "memory.swap.max=0", "pids.max=33" }, writes_of(log, dir))
      assert.equal("67108864", read(base .. dir .. "/memory.max"))
      assert.equal("0", read(base .. dir .. "/memory.swap.max"))
      assert.equal("33", read(base .. dir .. "/pids.max"))
      assert.equal("4242\n", read(base .. dir .. "/payload/cgroup.procs"))
      assert.equal("", read(base .. dir .. "/cgroup.procs")) -- limits above, processes below
      -- The namespace plan unshares the cgroup namespace once placed.
      plan.joins, plan.init = {}, "reaper"
      local nsplan = require("pflask.container").namespace_plan(plan)
      assert.same({ "cgroup" }, nsplan.late)
      assert.is_false(nsplan.clone.cgroup)
      cgroups.cleanup(plan)
      assert.is_false(isdir(base .. dir))
      assert.equal("memory pids", read(base .. "/cg/user.slice/cgroup.subtree_control"))
    end)

    it("enables a controller at the root and writes -controller back in cleanup", function()
      host, base, log = fake_host("v2", { own = "/", bare = true, v2_controllers = "cpu memory pids hugetlb" })
      local plan = start(host, { limits = LIMITS, cgroups = { "hugetlb" } })
      local N = cgname(plan)
      local dir = "/cg/" .. N
      assert.same({ "memory.max=67108864", "memory.swap.max=0", "pids.max=33", "cpu.max=150000 100000" },
        writes_of(log, dir))
      assert.same({ "cgroup.subtree_control=+hugetlb", "cgroup.subtree_control=+memory",
        "cgroup.subtree_control=+pids", "cgroup.subtree_control=+cpu" }, writes_of(log, "/cg"))
      assert.equal("cpu hugetlb memory pids", read(base .. "/cg/cgroup.subtree_control"))
      assert.is_true(isdir(base .. "/cg/pflask.subtree.hugetlb"))
      -- Another cgroup appears meanwhile: it may need hugetlb, which stays.
      sh("mkdir " .. base .. "/cg/other")
      cgroups.cleanup(plan)
      assert.is_false(isdir(base .. dir))
      assert.equal("cpu hugetlb memory pids", read(base .. "/cg/cgroup.subtree_control"))
      -- Once it is gone, the next run's sweep undoes them all.
      sh("rmdir " .. base .. "/cg/other")
      local p2 = start(host, { cgroups = { "hugetlb" } })
      assert.equal("hugetlb", read(base .. "/cg/cgroup.subtree_control"))
      cgroups.cleanup(p2)
      assert.equal("", read(base .. "/cg/cgroup.subtree_control"))
      assert.same({}, core.cgroup_children(base .. "/cg"))
    end)

    it("undoes its +controller when it is the last to leave", function()
      host, base, log = fake_host("v2", { own = "/", bare = true, v2_controllers = "cpu memory pids hugetlb" })
      local plan = start(host, { cgroups = { "hugetlb" } })
      local N = cgname(plan)
      cgroups.cleanup(plan)
      assert.same({ "cgroup.subtree_control=+hugetlb", "cgroup.subtree_control=-hugetlb" }, writes_of(log, "/cg"))
      assert.equal("", read(base .. "/cg/cgroup.subtree_control"))
      assert.same({}, core.cgroup_children(base .. "/cg"))
    end)

    it("never leaves pflask's cgroup: a controller not handed to it is an error, nothing made", function()
      host, base, log = fake_host("v2", { own = "/user.slice/deleg" })
      -- The root hands cpu to user.slice, which does not hand it on.
      local ok, e = pcall(start, host, { limits = { cpus = 1 } })
      assert.is_false(ok)
      assert.equal(125, e.status)
      assert.matches("^%-%-cpus: the cpu controller is not delegated to pflask's cgroup .*/cg/user.slice/deleg", e.message)
      assert.same({}, log)
    end)

    it("fails clearly when pflask's cgroup holds other processes and cannot delegate", function()
      host, base, log = fake_host("v2", { own = "/user.slice/deleg" })
      write(base .. "/cg/user.slice/deleg/cgroup.procs", "4000\n3999\n") -- pflask and its shell
      -- memory is available in deleg (its parent hands it), not enabled.
      local ok, e = pcall(start, host, { limits = { memory = "64M" } })
      assert.is_false(ok)
      assert.matches("^%-%-cgroup: the memory controller is not delegated to pflask's cgroup .*deleg, which holds "
        .. "other processes", e.message)
      assert.same({}, core.cgroup_children(base .. "/cg/user.slice/deleg"))
      assert.equal("", read(base .. "/cg/user.slice/deleg/cgroup.subtree_control"))
      assert.equal("4000\n3999\n", read(base .. "/cg/user.slice/deleg/cgroup.procs"))
    end)

    it("steps aside into a leaf of its cgroup where it is alone, to hand a controller down", function()
      host, base, log = fake_host("v2", { own = "/user.slice/deleg" })
      local own = base .. "/cg/user.slice/deleg"
      -- The fake kernel moves nothing: leaving a cgroup is the test's part.
      local attach = host.fs.attach
      host.fs.attach = function(dir, pid)
        if pid == host.pid then
          for _, d in ipairs({ own, own .. "/pflask.4000.0" }) do
            local f = read(d .. "/cgroup.procs")
            if f then write(d .. "/cgroup.procs", (f:gsub("4000\n", ""))) end
          end
          if dir == own and read(own .. "/cgroup.subtree_control") ~= "" then
            return nil, "write: Device or resource busy", 16
          end
        end
        return attach(dir, pid)
      end
      local plan = start(host, { limits = { memory = "64M" } })
      local N = cgname(plan)
      assert.equal("4000\n", read(own .. "/pflask.4000.0/cgroup.procs"))
      assert.equal("", read(own .. "/cgroup.procs"))
      assert.equal("memory", read(own .. "/cgroup.subtree_control"))
      assert.equal("67108864", read(own .. "/" .. N .. "/memory.max"))
      assert.equal("4242\n", read(own .. "/" .. N .. "/payload/cgroup.procs"))
      cgroups.cleanup(plan)
      assert.equal("", read(own .. "/cgroup.subtree_control"))
      assert.equal("4000\n", read(own .. "/cgroup.procs"))
      assert.same({}, core.cgroup_children(own))
    end)

    it("puts the device policy of a root container on the cgroup above payload, before payload exists", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local plan = start(host, { devices = { "c 10:229 rw" } }, new_plan({
        root = "/srv/root",
        mounts = { { type = "bind", source = "/dev/net/tun", target = "/dev/net/tun" },
                   { type = "bind", source = "/dev/loop7", target = "/dev/loop7", readonly = true },
                   { type = "bind", source = "/home", target = "/home" } } }))
      local N = cgname(plan)
      local dir = "/cg/user.slice/" .. N
      local want = STANDARD .. ";c 10:229 rw;c 10:200 rw;b 7:7 r"
      local i_policy, i_payload
      for i, w in ipairs(log) do
        if w[2] == "BPF_CGROUP_DEVICE" then i_policy = i; assert.same({ dir, "BPF_CGROUP_DEVICE", want }, w) end
        if w[1] == "mkdir" and w[2] == dir .. "/payload" then i_payload = i end
      end
      assert.is_true(i_policy < i_payload)
      cgroups.cleanup(plan)
      assert.is_false(isdir(base .. dir))
    end)

    it("gives a root container a device policy with a user namespace too, none without a root", function()
      host, base, log = fake_host("v2")
      local plan = new_plan({ root = "/srv/root", user = true })
      cgroups.plan({}, plan, host)
      assert.equal(#cgroups.STANDARD_DEVICES, #plan.device_policy)
      local plain = new_plan()
      cgroups.plan({}, plain, host)
      assert.is_nil(plain.cgroups)
      host.euid = 1000
      local rootless = new_plan({ root = "/srv/root", user = true })
      cgroups.plan({}, rootless, host)
      assert.is_nil(rootless.cgroups)
    end)

    it("hands an init every controller of its cgroup", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local plan = new_plan({ root = "/srv/root" })
      plan.delegate_cgroup = true
      start(host, {}, plan)
      local N = cgname(plan)
      local dir = "/cg/user.slice/" .. N
      assert.equal(base .. dir .. "/payload", plan.delegated_cgroup_dir)
      assert.equal("memory pids", read(base .. dir .. "/cgroup.subtree_control"))
      assert.equal("memory pids", read(base .. dir .. "/payload/cgroup.controllers"))
      assert.equal(1, #plan.cgroups) -- the policy and the delegation share it
      cgroups.cleanup(plan)
      assert.is_false(isdir(base .. dir))
    end)

    it("sweeps the cgroups of a SIGKILLed pflask, not those of live ones", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local parent = base .. "/cg/user.slice"
      host.fs.create(parent .. "/pflask.999.1")
      host.fs.create(parent .. "/pflask.999.1/payload")
      host.fs.create(parent .. "/pflask.4000.7") -- this process's: alive
      local plan = start(host, { limits = { pids = 5 } })
      local N = cgname(plan)
      assert.is_false(isdir(parent .. "/pflask.999.1"))
      assert.is_true(isdir(parent .. "/pflask.4000.7"))
      cgroups.cleanup(plan)
    end)

    it("names the cgroups after the process that prepares them (--detach forks after planning)", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local plan = new_plan({ root = "/srv/root" })
      cgroups.plan({ limits = { pids = 5 } }, plan, host)
      local planned = plan.cgroups[1].dir
      host.getpid = function() return 4001 end
      cgroups.prepare(plan)
      cgroups.parent(plan, container)
      assert.equal(planned:gsub("pflask%.4000%.", "pflask.4001."), plan.cgroups[1].dir)
      assert.is_true(isdir(plan.cgroups[1].dir))
      assert.is_false(isdir(planned))
      assert.equal("4242\n", read(plan.cgroups[1].dir .. "/payload/cgroup.procs"))
      cgroups.cleanup(plan)
      assert.is_false(isdir(plan.cgroups[1].dir))
    end)

    it("kills what is left in the cgroup when removing it", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local plan = start(host, { limits = { pids = 5 } })
      local N = cgname(plan)
      cgroups.cleanup(plan)
      local last = log[#log]
      assert.same({ "rmdir", "/cg/user.slice/" .. N .. "/payload", true }, last)
      assert.is_nil(plan.cgroups_made[1])
    end)

    it("names the controllers available when one is unknown", function()
      host, base, log = fake_host("v2", { own = "/", bare = true })
      local ok, e = pcall(start, host, { cgroups = { "blkio" } })
      assert.is_false(ok)
      assert.equal("--cgroup: 'blkio' is not a cgroup controller on this host (available: cpu, memory, pids)", e.message)
    end)

    it("refuses a cgroup that is not the user's", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      host.euid = 1000
      host.fs.owner = function() return 0 end
      local ok, e = pcall(start, host, { limits = { pids = 5 } })
      assert.is_false(ok)
      assert.matches("^%-%-pids%-max: needs root or a delegated cgroup", e.message)
    end)
  end)

  describe("pure v1", function()
    it("writes the v1 limit files, a cpuset's cpus and mems, and the devices controller's rules", function()
      host, base, log = fake_host("v1")
      local plan = start(host, { limits = LIMITS, cgroups = { "cpuset" } }, new_plan({ root = "/srv/root" }))
      local N = cgname(plan)
      assert.same({ "memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=67108864" },
        writes_of(log, "/memory/" .. N))
      assert.same({ "pids.max=33" }, writes_of(log, "/pids/" .. N))
      assert.same({ "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=150000" }, writes_of(log, "/cpu/" .. N))
      -- Load balancing off first (the top cpuset balances all CPUs): then
      -- neither these writes nor the removal rebuild the scheduler domains.
      assert.same({ "cpuset.sched_load_balance=0", "cpuset.cpus=0-1", "cpuset.mems=0" }, writes_of(log, "/cpuset/" .. N))
      assert.same({ "cpuset.sched_load_balance=0", "cpuset.cpus=0-1", "cpuset.mems=0", "cgroup.procs=4242" },
        writes_of(log, "/cpuset/" .. N .. "/payload"))
      local dev = writes_of(log, "/devices/" .. N)
      assert.equal("devices.deny=a", dev[1])
      for i, r in ipairs(cgroups.STANDARD_DEVICES) do assert.equal("devices.allow=" .. r, dev[i + 1]) end
      for _, c in ipairs({ "memory", "pids", "cpu", "cpuset", "devices" }) do
        assert.equal("4242\n", read(base .. "/" .. c .. "/" .. N .. "/payload/cgroup.procs"), c)
      end
      -- The deny came before payload was made (a v1 child copies it).
      local i_deny, i_payload
      for i, w in ipairs(log) do
        if w[1] == "/devices/" .. N and w[2] == "devices.deny" then i_deny = i end
        if w[1] == "mkdir" and w[2] == "/devices/" .. N .. "/payload" then i_payload = i end
      end
      assert.is_true(i_deny < i_payload)
      cgroups.cleanup(plan)
      for _, c in ipairs({ "memory", "pids", "cpu", "cpuset", "devices" }) do
        assert.same({}, core.cgroup_children(base .. "/" .. c), c)
      end
    end)

    it("puts a root container without a user namespace in every v1 hierarchy, not one with", function()
      host, base, log = fake_host("hybrid")
      local plan = start(host, {}, new_plan({ root = "/srv/root" }))
      local N = cgname(plan)
      -- Its cgroup namespace's root there is its own cgroup, never the
      -- hierarchy's root (which has release_agent): payload below the
      -- device policy, the cgroup itself where there is nothing to hide.
      assert.equal("4242\n", read(base .. "/devices/" .. N .. "/payload/cgroup.procs"))
      assert.equal("", read(base .. "/devices/" .. N .. "/cgroup.procs"))
      for _, c in ipairs({ "memory", "pids", "cpu", "cpuset" }) do
        assert.equal("4242\n", read(base .. "/" .. c .. "/" .. N .. "/cgroup.procs"), c)
        assert.is_false(isdir(base .. "/" .. c .. "/" .. N .. "/payload"), c)
      end
      assert.same({ "cpuset.sched_load_balance=0", "cpuset.cpus=0-1", "cpuset.mems=0", "cgroup.procs=4242" },
        writes_of(log, "/cpuset/" .. N))
      -- The device policy then goes on v1 too; the v2 cgroup only hides the
      -- v2 root (the child is cloned into it).
      assert.equal("devices.deny=a", writes_of(log, "/devices/" .. N)[1])
      assert.same({ N }, core.cgroup_children(base .. "/unified"))
      assert.same({ "cgroup.procs=4242" }, writes_of(log, "/unified/" .. N)) -- here: clone places it
      assert.equal(base .. "/unified/" .. N, plan.clone_cgroup)
      cgroups.cleanup(plan)
      for _, c in ipairs({ "memory", "pids", "cpu", "devices", "cpuset", "unified" }) do
        assert.same({}, core.cgroup_children(base .. "/" .. c), c)
      end
      -- With a user namespace (no release_agent to fear): the policy alone,
      -- a BPF program on v2.
      local userns = start(host, {}, new_plan({ root = "/srv/root", user = true }))
      assert.equal(1, #userns.cgroups)
      assert.equal(2, userns.cgroups[1].version)
      assert.same({ "BPF_CGROUP_DEVICE=" .. STANDARD }, writes_of(log, "/unified/" .. cgname(userns)))
      cgroups.cleanup(userns)
    end)

    it("leaves a cpuset's load balancing alone where the top cpuset does not balance all CPUs", function()
      host, base, log = fake_host("v1")
      write(base .. "/cpuset/cpuset.sched_load_balance", "0\n")
      local plan = start(host, { cgroups = { "cpuset" } })
      local N = cgname(plan)
      assert.same({ "cpuset.cpus=0-1", "cpuset.mems=0" }, writes_of(log, "/cpuset/" .. N))
      cgroups.cleanup(plan)
    end)

    it("refuses a boot without a v2 hierarchy", function()
      host, base, log = fake_host("v1")
      local plan = new_plan({ root = "/srv/root" })
      plan.delegate_cgroup = true
      local ok, e = pcall(cgroups.plan, {}, plan, host)
      assert.is_false(ok)
      assert.matches("needs a cgroup v2 hierarchy", e.message)
    end)
  end)

  describe("hybrid", function()
    it("keeps the limits on v1 and puts the device policy of a user namespace's container on v2", function()
      host, base, log = fake_host("hybrid")
      local plan = start(host, { limits = { memory = "64M" } }, new_plan({ root = "/srv/root", user = true }))
      local N = cgname(plan)
      assert.same({ "memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=67108864" },
        writes_of(log, "/memory/" .. N))
      assert.same({ "BPF_CGROUP_DEVICE=" .. STANDARD }, writes_of(log, "/unified/" .. N))
      assert.same({}, writes_of(log, "/devices/" .. N))
      assert.equal("4242\n", read(base .. "/unified/" .. N .. "/payload/cgroup.procs"))
      cgroups.cleanup(plan)
      assert.same({}, core.cgroup_children(base .. "/unified"))
      assert.same({}, core.cgroup_children(base .. "/memory"))
    end)

    it("mounts cgroup2 for itself where no cgroup file system is mounted (ip netns exec)", function()
      host, base, log = fake_host("hybrid")
      local v2 = host.hierarchies.v2
      host.hierarchies = { v1 = {} }
      local mounted = 0
      host.mount_cgroup2 = function()
        mounted = mounted + 1
        return { v2 = v2, v1 = {} }, { v2 = "/", v1 = {} }
      end
      local plan = start(host, {}, new_plan({ root = "/srv/root", user = true }))
      local N = cgname(plan)
      assert.equal(1, mounted)
      assert.same({ "BPF_CGROUP_DEVICE=" .. STANDARD }, writes_of(log, "/unified/" .. N))
      cgroups.cleanup(plan)
      -- Not when nothing needs a cgroup.
      host.hierarchies = { v1 = {} }
      cgroups.plan({}, new_plan(), host)
      assert.equal(1, mounted)
    end)

    it("refuses a root container where no device policy can be set", function()
      host, base, log = fake_host("hybrid")
      host.hierarchies.v2 = nil
      host.hierarchies.v1.devices = nil
      local ok, e = pcall(cgroups.plan, {}, new_plan({ root = "/srv/root" }), host)
      assert.is_false(ok)
      assert.matches("^%-%-chroot: a root container needs a device policy", e.message)
    end)
  end)

  describe("spec.devices", function()
    it("refuses a rule that does not parse", function()
      host, base, log = fake_host("v2")
      for _, bad in ipairs({ "c 1:x rw", "c 1:3", "x 1:3 r", "c 1:3 rr", "c 4096:1 r" }) do
        local ok, e = pcall(cgroups.plan, { devices = { bad } }, new_plan({ root = "/r" }), host)
        assert.is_false(ok, bad)
        assert.equal("devices: '" .. bad .. "' is not a device rule (TYPE MAJOR:MINOR ACCESS, as 'c 1:3 rwm')",
          e.message)
      end
      local ok, e = pcall(cgroups.plan, { devices = "c 1:3 r" }, new_plan({ root = "/r" }), host)
      assert.is_false(ok)
      assert.matches("^devices: must be a list", e.message)
    end)
  end)

  describe("host facts", function()
    it("reads a hybrid mountinfo and /proc/self/cgroup", function()
      local h = cgroups.parse_mountinfo(table.concat({
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
        "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
        "41 31 0:38 /sub /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
      }, "\n"), { cpu = true, cpuacct = true })
      assert.same({ dir = "/sys/fs/cgroup/unified", root = "/sub" }, h.v2)
      assert.same({ dir = "/sys/fs/cgroup/cpu,cpuacct", root = "/" }, h.v1.cpu)
      assert.same({ dir = "/sys/fs/cgroup/systemd", root = "/" }, h.v1["name=systemd"])
      assert.is_nil(h.v1.xattr)
      local own = cgroups.parse_proc_cgroup("2:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n")
      assert.same({ v2 = "/c", v1 = { cpu = "/a", cpuacct = "/a", ["name=systemd"] = "/b" } }, own)
    end)
  end)

  describe("the census of supervisors", function()
    it("looks at no other container's cgroup while no supervisor died", function()
      host, base, log = fake_host("hybrid")
      local census = add_census(host, base)
      -- A thousand running containers of other supervisors.
      census.alive = {}
      for pid = 5000, 5999 do census.alive[pid] = true end
      sh("cd " .. base .. " && mkdir devices/pflask.{5000..5999}.1 pids/pflask.{5000..5999}.1")
      host.fs.children = function() error("listed a parent") end
      host.fs.stale = function() error("swept a parent") end
      host.alive = function() error("asked about a supervisor") end
      local plan = start(host, {}, new_plan({ root = "/srv/root" }))
      local N = cgname(plan)
      assert.equal(1, census.live)
      assert.is_nil(census.calls.list)
      assert.is_nil(census.calls.supervisor)
      local journal = read(census.dir .. "/" .. N .. ".cgroups")
      for _, c in ipairs({ "memory", "pids", "cpu", "devices", "cpuset" }) do
        assert.truthy(journal:find("cgroup=" .. base .. "/" .. c .. "/" .. N .. "\n", 1, true), c)
      end
      cgroups.cleanup(plan)
      assert.is_nil(read(census.dir .. "/" .. N .. ".cgroups"))
      assert.equal(0, census.live)
      assert.equal(0, census.registered)
      assert.is_nil(census.calls.list)
    end)

    it("sweeps a SIGKILLed supervisor's cgroups at the next start, and settles its death", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      local parent = base .. "/cg/user.slice"
      local a = start(host, { limits = { pids = 5 } })
      local A = cgname(a)
      assert.is_true(isdir(parent .. "/" .. A))
      census.kill(4000)
      -- The container died with it: its cgroup is empty.
      write(parent .. "/" .. A .. "/payload/cgroup.procs", "")
      host.pid = 4100
      local b = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(parent .. "/" .. A))
      assert.is_nil(read(census.dir .. "/" .. A .. ".cgroups"))
      assert.equal(0, census.registered - census.live)
      assert.equal(1, census.calls.settle)
      assert.is_true(isdir(b.cgroups[1].dir))
      cgroups.cleanup(b)
      assert.same({ "deleg" }, core.cgroup_children(parent))
    end)

    it("keeps the death counted while the killed supervisor's cgroup is busy, sweeps it once empty", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      local parent = base .. "/cg/user.slice"
      local a = start(host, { limits = { pids = 5 } })
      local A = cgname(a)
      census.kill(4000)
      host.pid = 4100
      local b = start(host, { limits = { pids = 5 } }) -- 4242 still dying in A's payload
      assert.is_true(isdir(parent .. "/" .. A))
      assert.equal(1, census.registered - census.live)
      cgroups.cleanup(b)
      write(parent .. "/" .. A .. "/payload/cgroup.procs", "")
      local c = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(parent .. "/" .. A))
      assert.equal(0, census.registered - census.live)
      cgroups.cleanup(c)
    end)

    it("removes only the pflask.PID.N cgroups of the journal's own pid, whatever the journal says", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      -- 6000 runs (a death makes the start sweep each parent as well:
      -- a live supervisor's cgroup stays whatever a journal says).
      local own = host.pid
      host.alive = function(pid) pid = tonumber(pid); return pid == own or pid == 6000 end
      local parent = base .. "/cg/user.slice"
      for _, d in ipairs({ "other", "pflask.5000.1", "pflask.6000.1" }) do host.fs.create(parent .. "/" .. d) end
      write(census.dir .. "/pflask.5000.1.cgroups", table.concat({ "pid=5000", "start=3", "pidns=77",
        "cgroup=" .. parent .. "/other", "cgroup=" .. parent .. "/pflask.6000.1", "cgroup=" .. parent .. "/pflask.5000.1",
        "cgroup=" .. parent .. "/../user.slice/pflask.5000.1", "cgroup=" .. base .. "/cg/user.slice" }, "\n"))
      -- A journal of another pid namespace: not ours to judge.
      host.fs.create(parent .. "/pflask.7000.1")
      write(census.dir .. "/pflask.7000.1.cgroups", "pid=7000\nstart=3\npidns=78\ncgroup=" .. parent .. "/pflask.7000.1\n")
      census.registered = 1 -- the death of 5000
      local b = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(parent .. "/pflask.5000.1"))
      for _, d in ipairs({ "other", "pflask.6000.1", "pflask.7000.1" }) do assert.is_true(isdir(parent .. "/" .. d), d) end
      assert.is_nil(read(census.dir .. "/pflask.5000.1.cgroups"))
      assert.truthy(read(census.dir .. "/pflask.7000.1.cgroups"))
      cgroups.cleanup(b)
    end)

    it("stays counted when it cannot remove its cgroups, so that the next start sweeps them once it is gone", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      local a = start(host, { limits = { pids = 5 } })
      local A = cgname(a)
      local remove = host.fs.remove
      host.fs.remove = function() return nil, "remove: Device or resource busy", 16 end
      cgroups.cleanup(a)
      host.fs.remove = remove
      assert.truthy(read(census.dir .. "/" .. A .. ".cgroups"))
      assert.equal(1, census.live)
      census.kill(4000) -- it exits: the kernel undoes its join
      write(a.cgroups[1].procs .. "/cgroup.procs", "")
      host.pid = 4100
      local b = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(a.cgroups[1].dir))
      assert.equal(0, census.registered - census.live)
      cgroups.cleanup(b)
    end)

    it("a journal of a dead supervisor that had its pid: its cgroups go first", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      local plan = new_plan()
      cgroups.plan({ limits = { pids = 5 } }, plan, host)
      local dir = plan.cgroups[1].dir
      host.fs.create(dir)
      write(census.dir .. "/" .. dir:match("[^/]+$") .. ".cgroups", "pid=4000\nstart=0\npidns=77\ncgroup=" .. dir .. "\n")
      cgroups.prepare(plan)
      assert.is_true(isdir(dir .. "/payload"))
      assert.matches("start=1\n", read(census.dir .. "/" .. dir:match("[^/]+$") .. ".cgroups"))
      cgroups.cleanup(plan)
      assert.is_false(isdir(dir))
    end)

    it("reads the journals once when it made the set (the host removed the old one)", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      local parent = base .. "/cg/user.slice"
      host.fs.create(parent .. "/pflask.5000.1")
      write(census.dir .. "/pflask.5000.1.cgroups", "pid=5000\nstart=3\npidns=77\ncgroup=" .. parent .. "/pflask.5000.1\n")
      census.created = true
      local plan = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(parent .. "/pflask.5000.1"))
      assert.is_nil(census.calls.settle) -- nothing was counted
      cgroups.cleanup(plan)
      census.created = false
      host.fs.create(parent .. "/pflask.5001.1")
      write(census.dir .. "/pflask.5001.1.cgroups", "pid=5001\nstart=3\npidns=77\ncgroup=" .. parent .. "/pflask.5001.1\n")
      local p2 = start(host, { limits = { pids = 5 } })
      assert.is_true(isdir(parent .. "/pflask.5001.1")) -- no death counted: not read
      cgroups.cleanup(p2)
    end)

    it("opens the set again when it was removed under it, and reads the journals once", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      local parent = base .. "/cg/user.slice"
      host.fs.create(parent .. "/pflask.5000.1")
      write(census.dir .. "/pflask.5000.1.cgroups", "pid=5000\nstart=3\npidns=77\ncgroup=" .. parent .. "/pflask.5000.1\n")
      local join = host.journal.census_join
      host.journal.census_join = function(id, d)
        -- ipcrm between the open and the join: the next open makes it anew.
        host.journal.census_join = join
        census.created = true
        return nil, "census: join: Identifier removed", 43
      end
      local plan = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(parent .. "/pflask.5000.1"))
      assert.equal(1, census.live)
      assert.truthy(plan.cgroup_joined)
      cgroups.cleanup(plan)
      assert.equal(0, census.live)
    end)

    it("writes no journal, and sweeps each parent, when it cannot read its own start time", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      host.start_time = function() return nil end
      local parent = base .. "/cg/user.slice"
      host.fs.create(parent .. "/pflask.999.1")
      local plan = start(host, { limits = { pids = 5 } })
      assert.is_nil(census.calls.write)
      assert.is_false(isdir(parent .. "/pflask.999.1")) -- the sweep of each parent
      cgroups.cleanup(plan)
      assert.equal(0, census.live)
    end)

    it("falls back to sweeping each parent when the census is not pflask's", function()
      host, base, log = fake_host("v2", { own = "/user.slice" })
      local census = add_census(host, base)
      census.foreign = true
      local parent = base .. "/cg/user.slice"
      host.fs.create(parent .. "/pflask.999.1")
      local plan = start(host, { limits = { pids = 5 } })
      assert.is_false(isdir(parent .. "/pflask.999.1"))
      assert.is_nil(census.calls.write) -- no journal: nobody would read it
      cgroups.cleanup(plan)
    end)

    it("undoes a +controller with cgroup.stat's count, without listing the parent", function()
      host, base, log = fake_host("v2", { own = "/", bare = true, v2_controllers = "cpu memory pids hugetlb" })
      local census = add_census(host, base)
      local plan = start(host, { cgroups = { "hugetlb" } })
      write(base .. "/cg/cgroup.stat", "nr_descendants 2\nnr_dying_descendants 0\n")
      host.fs.children = function() error("listed the parent") end
      local remove = host.fs.remove
      cgroups.cleanup(plan)
      -- Two descendants: the mark and one somebody else's: hugetlb stays.
      assert.equal("hugetlb", read(base .. "/cg/cgroup.subtree_control"))
      host.fs.remove = remove
      write(base .. "/cg/cgroup.stat", "nr_descendants 1\nnr_dying_descendants 0\n")
      local p2 = start(host, { cgroups = { "pids" } })
      assert.equal("pids", read(base .. "/cg/cgroup.subtree_control"))
      write(base .. "/cg/cgroup.stat", "nr_descendants 1\nnr_dying_descendants 0\n")
      cgroups.cleanup(p2)
      assert.is_false(isdir(base .. "/cg/pflask.subtree.hugetlb"))
      assert.equal("", read(base .. "/cg/cgroup.subtree_control"))
    end)
  end)

  describe("cgroup_path (OCI cgroupsPath)", function()
    it("v2: puts the cgroup at the absolute path, makes its parents with the controllers enabled, leaves them", function()
      host, base, log = fake_host("v2", { own = "/", bare = true })
      local plan = start(host, { limits = { pids = 9, memory = "1M" }, cgroup_path = "/oci/pod1/c1" })
      local dir = base .. "/cg/oci/pod1/c1"
      assert.equal("9", read(dir .. "/pids.max"))
      assert.equal("4242\n", read(dir .. "/payload/cgroup.procs"))
      assert.equal("memory pids", read(base .. "/cg/oci/cgroup.subtree_control"))
      assert.equal("memory pids", read(base .. "/cg/oci/pod1/cgroup.subtree_control"))
      cgroups.cleanup(plan)
      assert.is_false(isdir(dir))
      assert.is_true(isdir(base .. "/cg/oci/pod1")) -- shared parents stay
    end)

    it("v1: a relative path below pflask's own cgroup; new cpuset parents get their parent's CPUs and nodes", function()
      host, base, log = fake_host("v1")
      local plan = start(host, { limits = { pids = 5 }, cgroups = { "cpuset" }, cgroup_path = "rt/c2" })
      assert.equal("5", read(base .. "/pids/rt/c2/pids.max"))
      assert.equal("4242\n", read(base .. "/pids/rt/c2/payload/cgroup.procs"))
      assert.equal("0-1", read(base .. "/cpuset/rt/cpuset.cpus"))
      assert.equal("0", read(base .. "/cpuset/rt/cpuset.mems"))
      assert.equal("4242\n", read(base .. "/cpuset/rt/c2/payload/cgroup.procs"))
      cgroups.cleanup(plan)
      assert.is_false(isdir(base .. "/pids/rt/c2"))
    end)

    it("refuses a path that climbs, and a path without any cgroup to put there", function()
      host, base, log = fake_host("v1")
      for _, bad in ipairs({ "/a/../b", "a//..", "/", "", "a b" }) do
        local ok, err = pcall(cgroups.plan, { limits = { pids = 5 }, cgroup_path = bad }, new_plan(), host)
        assert.is_false(ok, bad)
        assert.matches("cgroup_path", err.message)
      end
      local ok, err = pcall(cgroups.plan, { cgroup_path = "/x" }, new_plan(), host)
      assert.is_false(ok)
      assert.matches("no cgroup to put there", err.message)
    end)
  end)
end)
