-- The cgroups concern (see container.lua, CONCERNS): --cgroup=CONTROLLER
-- (spec.cgroups), the limits --memory, --pids-max, --cpus (spec.limits),
-- which imply their controllers, and the device policy of a root
-- container (spec.devices).
--
-- Each controller is used on the unified (v2) hierarchy when it is enabled
-- there, else on the v1 hierarchy it is mounted on. In each hierarchy the
-- container gets a cgroup pflask.PID.N directly below the supervisor's own
-- cgroup (never beside or above it: the supervisor's limits still hold),
-- and its processes live in pflask.PID.N/payload (in pflask.PID.N itself
-- in a v1 hierarchy where it holds nothing: see release_agent below). The
-- limits and the device policy are set on pflask.PID.N, which the
-- container cannot see:
-- its cgroup namespace (below) has payload as its root, so even a root
-- container with CAP_SYS_ADMIN cannot lift them. Made in prepare, joined
-- in parent, removed in cleanup (processes still in them are killed
-- first). A supervisor that was SIGKILLed cannot remove its cgroups: the
-- next pflask that makes cgroups removes them (the census, below).
--
-- The census: finding a killed supervisor's cgroups must not cost a start
-- a look at every cgroup on the host (with a thousand containers running,
-- that was a thousand /proc reads and a listing of every parent, each
-- start). So before it makes cgroups, a supervisor writes the list of
-- them in a journal in its runtime directory (core.state_dir,
-- pflask.PID.N.cgroups) and joins a census, a System V semaphore set of
-- that directory (core.census_open) that counts live supervisors with
-- SEM_UNDO: when one dies without leaving, the kernel takes it off the
-- live count but not off the registered one. A start reads both (one
-- call); only when they differ does it read the journals, remove the
-- cgroups of those whose supervisor is gone, and settle the count. A
-- supervisor leaves only once its cgroups are gone: one it could not
-- remove stays counted as a death, to be swept by the next start. A
-- start that sees a death also sweeps each parent of its own cgroups
-- (remove_stale), sparing what the kept journals name, for leftovers no
-- journal names. Where the census cannot be used (a set that is not ours,
-- no System V IPC), every start sweeps each parent as before.
--
-- v2 delegation: a controller must be in the supervisor's cgroup's
-- cgroup.subtree_control. When it is available there (cgroup.controllers)
-- but not enabled, pflask enables it (+controller): at the root, or in a
-- cgroup where the supervisor is alone, after moving itself into a leaf
-- pflask.PID.0 below (step_aside; the kernel lets no cgroup with processes
-- hand controllers down). It marks that with an empty cgroup
-- pflask.subtree.CONTROLLER beside the containers', and the last pflask to
-- leave (or the next run's sweep) writes -controller back once no other
-- cgroup is left there. Otherwise a controller that is not delegated is a
-- clear error, never a cgroup elsewhere in the tree.
--
-- The device policy: a container run by root with a --chroot (a user
-- namespace or not) may create and open only the standard device nodes
-- (STANDARD_DEVICES), the ones bound in with --mount and the rules of
-- spec.devices. On a host with a v2 hierarchy it is a BPF device program
-- on the container's v2 cgroup (core.devices_attach; on a hybrid host the
-- v2 cgroup works too); on a host with v1 hierarchies, for a container
-- that gets a cgroup in each of them anyway (below), the v1 devices
-- controller. This is why such a container always has a cgroup. Unprivileged, the kernel itself refuses
-- mknod in a user namespace, and the nodes a container reaches open only
-- as its user could open them on the host anyway.
--
-- Such a container without a user namespace also gets a cgroup in every
-- v1 hierarchy: mounted from inside, a hierarchy whose root is its cgroup
-- namespace's would show release_agent, which the kernel runs as host root.
--
-- An init (plan.delegate_cgroup, set for a boot) gets a v2 cgroup of its
-- own even without --cgroup, which it manages inside its namespace, with
-- every controller that pflask's cgroup gets.
--
-- The cgroup namespace: a namespace made by clone would have the
-- supervisor's cgroup as its root, fixed before the parent moves the
-- child. So when the container gets cgroups (plan.cgroups), the namespace
-- plan (container.namespace_plan) leaves it out of clone and the child
-- unshares it once placed: the container sees its own cgroup as "/".
--
-- Host facts (the mounts, the supervisor's cgroups, the file operations)
-- come in as a table (M.facts()), which unit specs replace by a fake
-- cgroupfs in a temporary directory.

local core = require "pflask.core"
local perr = require "pflask.error"
local limits = require "pflask.spec.limits"
local read_file = require("pflask.path").read_file

local M = {}

--- Where the container's processes live, below its cgroup.
M.PAYLOAD = "payload"

--- Devices every container may use (devices.allow lines): null, zero,
--- full, random, urandom, tty, console, ptmx and the pts of a devpts.
M.STANDARD_DEVICES = {
  "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
  "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rw",
}

local MARK = "pflask.subtree."

--- The suffix of a supervisor's journal of cgroups (see "The census").
M.JOURNAL = ".cgroups"

local counter = 0

local function fail(option, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, option, ...)
end

local function words(s)
  local out = {}
  for w in (s or ""):gmatch("%S+") do out[#out + 1] = w end
  return out
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

--- The cgroup hierarchies described by mountinfo text: the v2 mount (or
--- nil) and the v1 mount of each controller ("memory", "name=systemd",
--- ...), with the root of the hierarchy each mount shows. known: the
--- controller names of /proc/cgroups.
---@return {v2: {dir: string, root: string}|nil, v1: table<string, {dir: string, root: string}>}
function M.parse_mountinfo(mountinfo, known)
  local h = { v1 = {} }
  for line in (mountinfo or ""):gmatch("[^\n]+") do
    local f = words(line)
    local sep
    for i, w in ipairs(f) do if w == "-" then sep = i break end end
    if sep then
      local fstype, opts, mroot, dir = f[sep + 1], f[sep + 3] or "", f[4], f[5]
      if fstype == "cgroup2" and not h.v2 then
        h.v2 = { dir = dir, root = mroot }
      elseif fstype == "cgroup" then
        for opt in opts:gmatch("[^,]+") do
          if (known[opt] or opt:match("^name=")) and not h.v1[opt] then
            h.v1[opt] = { dir = dir, root = mroot }
          end
        end
      end
    end
  end
  return h
end

--- A process's cgroups from /proc/PID/cgroup text: v2 path and v1 path by
--- controller.
---@return {v2: string|nil, v1: table<string, string>}
function M.parse_proc_cgroup(text)
  local own = { v1 = {} }
  for line in (text or ""):gmatch("[^\n]+") do
    local id, ctrls, p = line:match("^(%d+):([^:]*):(.*)$")
    if id == "0" and ctrls == "" then
      own.v2 = p
    elseif ctrls then
      for c in ctrls:gmatch("[^,]+") do own.v1[c] = p end
    end
  end
  return own
end

--- Is process `pid` (of this pid namespace) alive?
local function alive(pid)
  -- A zombie is gone too (a SIGKILLed pflask whose parent does not reap).
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %(.*%) (%a)") ~= "Z"
end

--- The pid namespace pids are seen in (a journal's pids mean something
--- only there).
local pidns
local function own_pidns()
  if not pidns then
    local st = core.stat("/proc/self/ns/pid")
    pidns = st and st.ino or 0
  end
  return pidns
end

--- The start time of process pid, if it runs (a zombie is gone: a
--- SIGKILLed pflask whose parent does not reap).
---@param pid integer
---@return integer|nil
local function supervisor(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  local rest = stat and stat:match("^%d+ %(.*%) (.*)$")
  if not rest or rest:sub(1, 1) == "Z" then return nil end
  local f = words(rest)
  -- After the command: state is field 3, the start time field 22.
  return math.tointeger(tonumber(f[20]))
end

---@class pflask.CgroupHost
---@field euid integer
---@field pid integer the supervisor's, when planning
---@field getpid fun(): integer the supervisor's, now (--detach forks it after planning)
---@field hierarchies table see parse_mountinfo
---@field own table the supervisor's cgroups, see parse_proc_cgroup
---@field alive fun(pid: string): boolean
---@field mount_cgroup2 (fun(): table|nil, table|string|nil, integer|nil)|nil see M.plan: mounts cgroup2, returns the hierarchies and own cgroups then seen, or fail
---@field fs table file operations: read(file), create(dir), write(dir, file, value), attach(dir, pid), remove(dir, kill), children(dir), stale(dir, known) (optional: children named after gone supervisors), devices_attach(dir, rules), owner(dir), device(path)
---@field journal table|nil optional: dir(), write(dir, name, data), read(dir, name), list(dir), remove(dir, name), census_open(dir), census_join(id, delta), census_deaths(id), census_lock(id, lock), census_settle(id, n); see "The census"
---@field supervisor fun(pid: integer): integer|nil the start time of a live (not zombie) process, nil when gone
---@field start_time fun(pid: integer): integer|nil the start time of a process (this one's, for its journal)
---@field pidns integer the inode of the pid namespace pids are seen in

--- The real host's facts.
---@return pflask.CgroupHost
function M.facts()
  local known = {}
  for line in (read_file("/proc/cgroups") or ""):gmatch("[^\n]+") do
    local name = line:match("^([%w_]+)%s")
    if name then known[name] = true end
  end
  return {
    euid = core.geteuid(),
    pid = core.getpid(),
    getpid = core.getpid,
    mount_cgroup2 = function()
      -- In a mount namespace of the supervisor's own, so that nothing
      -- changes on the host and the mount goes with the supervisor.
      local ok, msg, errno = core.unshare({ "mount" })
      if ok then ok, msg, errno = core.make_private() end
      if ok then
        ok, msg, errno = core.mount{ root = "/", target = "/sys/fs/cgroup", fstype = "cgroup2",
                                     options = "nosuid,nodev,noexec" }
      end
      if not ok then return nil, msg, errno end
      return M.parse_mountinfo(read_file("/proc/self/mountinfo"), known),
             M.parse_proc_cgroup(read_file("/proc/self/cgroup"))
    end,
    hierarchies = M.parse_mountinfo(read_file("/proc/self/mountinfo"), known),
    own = M.parse_proc_cgroup(read_file("/proc/self/cgroup")),
    alive = alive,
    fs = {
      read = read_file,
      create = core.cgroup_create,
      write = core.cgroup_write,
      attach = core.cgroup_attach,
      remove = core.cgroup_remove,
      children = core.cgroup_children,
      stale = core.cgroup_stale,
      devices_attach = core.devices_attach,
      owner = function(dir)
        local st = core.stat(dir)
        return st and st.uid
      end,
      device = core.device_number,
    },
    journal = {
      dir = function() return core.state_dir(true) end,
      write = core.state_write,
      read = core.state_read,
      list = function(dir) return core.state_list(dir, M.JOURNAL) end,
      remove = core.state_remove,
      census_open = core.census_open,
      census_join = core.census_join,
      census_deaths = core.census_deaths,
      census_lock = core.census_lock,
      census_settle = core.census_settle,
    },
    supervisor = supervisor,
    start_time = core.start_time,
    pidns = own_pidns(),
  }
end

--- The directory of cgroup `path` in a mount that shows `mount.root`.
local function dir_of(mount, path)
  if mount.root ~= "/" and path:sub(1, #mount.root) == mount.root then
    path = path:sub(#mount.root + 1)
  end
  path = path:gsub("/+$", "")
  return mount.dir .. path
end

local function parent_of(dir)
  return dir:match("^(.*)/[^/]+$")
end

--- Controllers available for --cgroup, for the message of a bad one.
local function available(host)
  local h, names = host.hierarchies, {}
  if h.v2 then
    for _, c in ipairs(words(host.fs.read(h.v2.dir .. "/cgroup.controllers"))) do names[#names + 1] = c end
  end
  for c in pairs(h.v1) do names[#names + 1] = c end
  table.sort(names)
  local out, seen = {}, {}
  for _, c in ipairs(names) do if not seen[c] then out[#out + 1] = c; seen[c] = true end end
  return table.concat(out, ", ")
end

--- v2: check that the supervisor's cgroup `dir` hands `controller` down
--- (its cgroup.subtree_control), or may be made to: it is available there
--- (prepare enables it, stepping aside if need be).
local function v2_delegation(host, dir, controller, option)
  local fs = host.fs
  if set_of(words(fs.read(dir .. "/cgroup.subtree_control")))[controller] then return end
  if set_of(words(fs.read(dir .. "/cgroup.controllers")))[controller] then return end
  fail(option, "the %s controller is not delegated to pflask's cgroup %s (run pflask in a cgroup of its own "
       .. "whose parent hands it down: systemd-run --scope -p Delegate=yes pflask ...)", controller, dir)
end

--- Where a controller lives: { version, parent dir }.
local function locate(host, controller, option)
  local h, own = host.hierarchies, host.own
  local loc
  local v2ctrls = h.v2 and set_of(words(host.fs.read(h.v2.dir .. "/cgroup.controllers"))) or {}
  if h.v2 and v2ctrls[controller] then
    local parent = dir_of(h.v2, own.v2 or "/")
    v2_delegation(host, parent, controller, option)
    loc = { version = 2, parent = parent, mount = h.v2 }
  elseif h.v1[controller] then
    loc = { version = 1, parent = dir_of(h.v1[controller], own.v1[controller] or "/"), mount = h.v1[controller] }
  else
    fail(option, "'%s' is not a cgroup controller on this host (available: %s)", controller, available(host))
  end
  if host.euid ~= 0 and host.fs.owner(loc.parent) ~= host.euid then
    fail(option, "needs root or a delegated cgroup (%s is not yours)", loc.parent)
  end
  return loc
end

--- Limits from the spec, parsed: { memory = bytes, pids = n, cpu = quota }.
local function plan_limits(spec)
  local l = spec.limits
  if l == nil then return {} end
  if type(l) ~= "table" then fail("limits", "must be a table") end
  local out = {}
  if l.memory ~= nil then out.memory = limits.memory(l.memory, "--memory") end
  if l.pids ~= nil then out.pids = limits.pids(l.pids, "--pids-max") end
  if l.cpus ~= nil then out.cpu = limits.cpus(l.cpus, "--cpus") end
  return out
end

--- Files to write in a new cgroup for the limits on `controller`.
local function limit_writes(host, version, controller, lim, dir)
  local w = {}
  if controller == "memory" and lim.memory then
    if version == 2 then
      w[#w + 1] = { "memory.max", tostring(lim.memory) }
      -- The limit is the limit: no swapping past it.
      w[#w + 1] = { "memory.swap.max", "0", optional = true }
    else
      w[#w + 1] = { "memory.limit_in_bytes", tostring(lim.memory) }
      w[#w + 1] = { "memory.memsw.limit_in_bytes", tostring(lim.memory), optional = true }
    end
  elseif controller == "pids" and lim.pids then
    w[#w + 1] = { "pids.max", tostring(lim.pids) }
  elseif controller == "cpu" and lim.cpu then
    if version == 2 then
      w[#w + 1] = { "cpu.max", string.format("%d %d", lim.cpu, limits.PERIOD) }
    else
      w[#w + 1] = { "cpu.cfs_period_us", tostring(limits.PERIOD) }
      w[#w + 1] = { "cpu.cfs_quota_us", tostring(lim.cpu) }
    end
  elseif controller == "cpuset" and version == 1 then
    -- A v1 cpuset cgroup takes no task until it has cpus and mems:
    -- --cpuset's CPUs (pflask.sandbox), else the nearest ancestor's (a
    -- cgroup_path's parents may not exist yet: prepare makes them, given
    -- the same).
    -- Each write of cpuset.cpus to a load-balanced v1 cpuset, and each
    -- removal of one, makes the kernel rebuild the scheduler domains,
    -- which walks every cpuset and every task on the host: with a
    -- thousand containers running, a start paid for all of them. Where
    -- the top cpuset balances load over all CPUs (the default) the flag
    -- of a cpuset below changes nothing about the domains, so it goes off
    -- first, while the new cgroup has no CPUs (which rebuilds nothing).
    local top = host.hierarchies.v1.cpuset
    if top and top.root == "/"
        and (host.fs.read(top.dir .. "/cpuset.sched_load_balance") or ""):match("^1") then
      w[#w + 1] = { "cpuset.sched_load_balance", "0", payload = true }
    end
    for _, f in ipairs({ "cpuset.cpus", "cpuset.mems" }) do
      local parent, v = parent_of(dir), ""
      while parent and parent ~= "" do
        v = (host.fs.read(parent .. "/" .. f) or ""):gsub("%s+$", "")
        if v ~= "" then break end
        parent = parent_of(parent)
      end
      if f == "cpuset.cpus" and lim.cpuset then v = table.concat(lim.cpuset, ",") end
      if v ~= "" then w[#w + 1] = { f, v, payload = true } end
    end
  elseif controller == "cpuset" and lim.cpuset then
    w[#w + 1] = { "cpuset.cpus", table.concat(lim.cpuset, ",") }
  end
  return w
end

--- Extra device rules of spec.devices, checked.
local function plan_devices(spec)
  local d = spec.devices
  if d == nil then return {} end
  if type(d) ~= "table" then fail("devices", "must be a list of rules ('c 10:200 rw')") end
  for i, rule in ipairs(d) do
    if type(rule) ~= "string" then fail("devices", "rule %d is not a string", i) end
    local ok, msg = core.device_rule_check(rule)
    if not ok then fail("devices", "%s", msg) end
  end
  return d
end

--- Controllers asked for by --cgroup and the limits.
local function spec_controllers(spec)
  local t = {}
  for _, c in ipairs(type(spec.cgroups) == "table" and spec.cgroups or {}) do t[#t + 1] = c end
  for k in pairs(type(spec.limits) == "table" and spec.limits or {}) do t[#t + 1] = k end
  return t
end

---@class pflask.Cgroup
---@field dir string the container's cgroup directory (limits, device policy)
---@field procs string where its processes go (dir/payload; dir itself for a v1 cgroup that only hides its hierarchy's root)
---@field version 1|2
---@field controllers string[]
---@field enable string[] v2: controllers the parent's subtree_control must have (enabled in prepare if not)
---@field writes table[] {file, value, optional=, payload=} written after creation
---@field devices string[]|nil device policy rules, set on dir
---@field delegate boolean|nil an init's: dir hands its controllers to payload

--- Does the spec build its root from nothing (a first mount
--- {type="tmp", target="/"}, pflask.mounts)? Such a root is as much the
--- container's own as a --chroot: it gets the device policy too.
---@param spec pflask.Spec
---@return boolean
function M.builds_root(spec)
  local first = type(spec.mounts) == "table" and spec.mounts[1]
  return type(first) == "table" and first.type == "tmp" and first.target == "/"
end

--- Does this container get a device policy? Every container pflask runs
--- as root with a root filesystem, a user namespace or not: a namespace
--- whose ids map to host root (as --user makes) passes the permission bits
--- of any node its image holds. Without --chroot the container shares the
--- host's /dev and files anyway; an unprivileged pflask opens only what
--- its user could open outside.
---@param plan pflask.Plan
---@param euid integer
---@param spec pflask.Spec|nil
function M.needs_device_policy(plan, euid, spec)
  return euid == 0 and (plan.root ~= nil or (spec ~= nil and M.builds_root(spec)))
end

---@param spec pflask.Spec
---@param plan pflask.Plan
---@param host pflask.CgroupHost|nil the host's facts (M.facts() by default)
function M.plan(spec, plan, host)
  local wanted = {}
  local option_of = {}
  if spec.cgroups ~= nil and type(spec.cgroups) ~= "table" then fail("--cgroup", "must be a list of controllers") end
  for _, c in ipairs(spec.cgroups or {}) do
    if type(c) ~= "string" or not (c:match("^[a-z0-9_]+$") or c:match("^name=[a-z0-9_]+$")) then
      fail("--cgroup", "'%s' is not a controller name", tostring(c))
    end
    if not option_of[c] then wanted[#wanted + 1] = c; option_of[c] = "--cgroup" end
  end
  local lim = plan_limits(spec)
  for _, key in ipairs({ "memory", "pids", "cpu" }) do
    if lim[key] and not option_of[key] then
      wanted[#wanted + 1] = key
      option_of[key] = ({ memory = "--memory", pids = "--pids-max", cpu = "--cpus" })[key]
    end
  end
  local extra_devices = plan_devices(spec)
  -- OCI's cgroupsPath: where the container's cgroups go instead of
  -- pflask.PID.N beside pflask's own; absolute (from each hierarchy's
  -- root) or relative (below pflask's own cgroup).
  local cpath = spec.cgroup_path
  if cpath ~= nil then
    if type(cpath) ~= "string" or cpath == "" or cpath == "/" then fail("cgroup_path", "must be a cgroup path") end
    for part in cpath:gmatch("[^/]+") do
      if part == "." or part == ".." or not part:match("^[%w_.:@+-]+$") then
        fail("cgroup_path", "'%s' is not a cgroup path (names of letters, digits, '_', '.', ':', '@', '+', '-')", cpath)
      end
    end
  end
  if #wanted == 0 and not plan.delegate_cgroup and spec.cpuset == nil
      and not M.needs_device_policy(plan, host and host.euid or core.geteuid(), spec) then
    -- No cgroup: the host's facts (its mount table, read and parsed) are
    -- not needed either.
    if cpath then fail("cgroup_path", "no cgroup to put there (no limits, no device policy)") end
    return
  end
  host = host or M.facts()
  -- --cpuset: a cpuset cgroup where the host gives pflask one (root, or
  -- a delegated v2 cgroup with cpuset); else the affinity alone
  -- (pflask.sandbox, which pins pid 1 in every case).
  if spec.cpuset ~= nil and not option_of.cpuset then
    local cpus = require("pflask.sandbox").cpu_list(spec.cpuset)
    if pcall(locate, host, "cpuset", "--cpuset") then
      lim.cpuset = cpus
      wanted[#wanted + 1] = "cpuset"
      option_of.cpuset = "--cpuset"
    end
  elseif spec.cpuset ~= nil then
    lim.cpuset = require("pflask.sandbox").cpu_list(spec.cpuset)
  end
  local h = host.hierarchies
  local policy = M.needs_device_policy(plan, host.euid, spec)
  if not h.v2 and next(h.v1) == nil and host.euid == 0 and host.mount_cgroup2
      and (policy or #wanted > 0 or plan.delegate_cgroup) then
    -- No cgroup file system where pflask runs (`ip netns exec` mounts a
    -- fresh /sys over the host's): the v2 one, in a mount namespace of
    -- pflask's own.
    local hierarchies, own = host.mount_cgroup2()
    if hierarchies then
      host.hierarchies, host.own, h = hierarchies, own, hierarchies
    end
  end
  if plan.delegate_cgroup and not h.v2 then
    perr.raise(perr.FAILURE, "boot: an init needs a cgroup v2 hierarchy, and this host mounts none")
  end
  if policy and not h.v2 and not h.v1.devices then
    fail("--chroot", "a root container needs a device policy, and this host has neither a cgroup v2 "
         .. "hierarchy nor the v1 devices controller")
  end
  if #wanted == 0 and not plan.delegate_cgroup and not policy then
    if cpath then fail("cgroup_path", "no cgroup to put there (no limits, no device policy)") end
    return
  end

  counter = counter + 1
  local name = string.format("pflask.%d.%d", host.pid, counter)
  local by_dir, list = {}, {}
  local function cgroup_in(parent, version, mount)
    local dir = parent .. "/" .. name
    if cpath and cpath:sub(1, 1) == "/" then
      dir = dir_of(mount, cpath)
    elseif cpath then
      dir = parent .. "/" .. cpath:gsub("/+$", "")
    end
    local cg = by_dir[dir]
    if not cg then
      cg = { dir = dir, procs = dir .. "/" .. M.PAYLOAD, version = version, controllers = {}, writes = {},
             enable = {} }
      by_dir[dir] = cg
      list[#list + 1] = cg
    end
    return cg
  end
  if plan.delegate_cgroup then
    -- An init manages its own subtree: a v2 cgroup of its own, with no
    -- controller asked of the host (those pflask's cgroup delegates come
    -- along).
    local parent = dir_of(h.v2, host.own.v2 or "/")
    if host.euid ~= 0 and host.fs.owner(parent) ~= host.euid then
      perr.raise(perr.FAILURE, "boot: needs root or a delegated cgroup (%s is not yours)", parent)
    end
    local cg = cgroup_in(parent, 2, h.v2)
    cg.delegate = true
    plan.delegated_cgroup_dir = cg.procs
  end
  for _, c in ipairs(wanted) do
    local loc = locate(host, c, option_of[c])
    local cg = cgroup_in(loc.parent, loc.version, loc.mount)
    cg.controllers[#cg.controllers + 1] = c
    if loc.version == 2 then cg.enable[#cg.enable + 1] = c end
    for _, w in ipairs(limit_writes(host, loc.version, c, lim, cg.dir)) do cg.writes[#cg.writes + 1] = w end
  end
  if policy then
    local cg
    -- The v1 devices controller where the container gets a cgroup in
    -- every v1 hierarchy anyway (below): a v2 cgroup and a BPF program
    -- on top would cost more than they bring.
    if h.v2 and not (h.v1.devices and not plan.namespaces.user) then
      cg = cgroup_in(dir_of(h.v2, host.own.v2 or "/"), 2, h.v2)
    else
      cg = cgroup_in(dir_of(h.v1.devices, host.own.v1.devices or "/"), 1, h.v1.devices)
    end
    cg.devices = {}
    for _, r in ipairs(M.STANDARD_DEVICES) do cg.devices[#cg.devices + 1] = r end
    for _, r in ipairs(extra_devices) do cg.devices[#cg.devices + 1] = r end
    plan.device_policy = cg.devices
    if not plan.namespaces.user then
      -- A v1 hierarchy's root cgroup has release_agent, a program the
      -- kernel runs as host root: a root container (CAP_SYS_ADMIN, no
      -- user namespace) that mounts a hierarchy where its cgroup namespace
      -- root is the hierarchy's root could set it. So it gets a cgroup in
      -- every v1 hierarchy, and sees only those. (Where pflask's own
      -- cgroup is not the root, that root would be pflask's cgroup, whose
      -- files it could write: the same holds there.) runc does the same
      -- on v1; nspawn leaves the container only the name=systemd one.
      -- One that only hides the hierarchy holds no limit and no policy:
      -- the container may write its files (as those of payload), so its
      -- processes go in it directly, no payload below (two mkdir and
      -- rmdir fewer per hierarchy, seven per start on a hybrid host).
      local names = {}
      for name in pairs(h.v1) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        local before = #list
        local cg1 = cgroup_in(dir_of(h.v1[name], host.own.v1[name] or "/"), 1, h.v1[name])
        if #list > before and not cpath and (name ~= "cpuset" or not lim.cpuset) then cg1.procs = cg1.dir end
        if name == "cpuset" and #cg1.writes == 0 then
          for _, w in ipairs(limit_writes(host, 1, "cpuset", lim, cg1.dir)) do cg1.writes[#cg1.writes + 1] = w end
        end
      end
      -- And the v2 hierarchy of a hybrid host, for the same reason: else
      -- its cgroup namespace's root there is pflask's cgroup, often the
      -- root, where it could make cgroups and see every other container's.
      -- The child is cloned into it (CLONE_INTO_CGROUP): no cost at start.
      if h.v2 then
        local before = #list
        local cg2 = cgroup_in(dir_of(h.v2, host.own.v2 or "/"), 2, h.v2)
        if #list > before and not cpath then cg2.procs = cg2.dir end
      end
    end
  end
  plan.cgroups = list
  plan.cgroup_path = cpath
  plan.limits = lim
  plan.cgroup_host = host
end

--- Write -controller back into dir's subtree_control for each controller
--- pflask enabled there (its pflask.subtree.C mark), once no cgroup but
--- the marks is left below dir. Called at every start and end in each v2
--- parent: it looks for the marks of the controllers dir hands down and
--- counts what else is there with cgroup.stat, instead of listing dir
--- (a thousand running containers are a thousand entries).
local function undo_enables(host, dir)
  local fs = host.fs
  local marks = {}
  for _, c in ipairs(words(fs.read(dir .. "/cgroup.subtree_control"))) do
    if fs.read(dir .. "/" .. MARK .. c .. "/cgroup.procs") then marks[#marks + 1] = c end
  end
  if #marks == 0 then return end
  local aside = "pflask." .. host.pid .. ".0" -- this supervisor's (step_aside)
  local others = tonumber((fs.read(dir .. "/cgroup.stat") or ""):match("nr_descendants (%d+)"))
  if others then
    others = others - #marks - (fs.read(dir .. "/" .. aside .. "/cgroup.procs") and 1 or 0)
    if others > 0 then return end -- somebody else's cgroup (or a live container) may need them
  else
    for _, entry in ipairs(fs.children(dir) or {}) do
      if entry:sub(1, #MARK) ~= MARK and entry ~= aside then return end
    end
  end
  for _, c in ipairs(marks) do
    if fs.write(dir, "cgroup.subtree_control", "-" .. c) then
      fs.remove(dir .. "/" .. MARK .. c, false)
    end
  end
end

--- v2: move the supervisor from its own cgroup `dir` into a leaf
--- pflask.PID.0 below it, so that dir holds no process and may hand
--- controllers down (the kernel's no-internal-process rule); nspawn
--- steps aside the same way. Only when the supervisor is alone in dir
--- (as under systemd-run --scope): other processes would stay. Undone in
--- cleanup; a leaf left by a SIGKILL is swept like a container's cgroup.
local function step_aside(host, plan, dir)
  local fs = host.fs
  local pids = words(fs.read(dir .. "/cgroup.procs"))
  if #pids ~= 1 or tonumber(pids[1]) ~= host.pid then return false end
  local leaf = dir .. "/pflask." .. host.pid .. ".0"
  if not fs.create(leaf) then return false end
  if not fs.attach(leaf, host.pid) then
    fs.remove(leaf, false)
    return false
  end
  plan.cgroup_aside = { dir = dir, leaf = leaf }
  return true
end

--- Remove the empty cgroups of pflask supervisors that are gone (killed
--- with SIGKILL, say) from `parent`. `known` remembers, across the parents
--- of one start, which supervisors are alive: every running container
--- has a cgroup in each v1 hierarchy, and asking /proc about each of
--- them once per hierarchy made a start cost 9 reads per container
--- already running.
local function remove_stale(host, parent, known, keep)
  keep = keep or {}
  if host.fs.stale then
    for _, entry in ipairs(host.fs.stale(parent, known) or {}) do
      local dir = parent .. "/" .. entry
      if not keep[dir] then host.fs.remove(dir, false) end
    end
    return
  end
  for _, entry in ipairs(host.fs.children(parent) or {}) do
    local pid = entry:match("^pflask%.(%d+)%.%d+$")
    local dir = parent .. "/" .. entry
    if pid and not keep[dir] then
      local live = known[pid]
      if live == nil then live = host.alive(pid); known[pid] = live end
      if not live then host.fs.remove(dir, false) end
    end
  end
end

local function escape(v)
  if not v:find("[%c%%]") then return v end
  return (v:gsub("[%c%%]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function unescape(v)
  return (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- A journal: what a supervisor makes, written before it makes it.
local function journal_encode(j)
  local out = { "pid=" .. j.pid, "start=" .. j.start, "pidns=" .. j.pidns }
  for _, k in ipairs({ "cgroup", "parent" }) do
    for _, v in ipairs(j[k]) do out[#out + 1] = k .. "=" .. escape(v) end
  end
  return table.concat(out, "\n") .. "\n"
end

local function journal_decode(data)
  local j = { cgroup = {}, parent = {} }
  for line in (data or ""):gmatch("[^\n]+") do
    local k, v = line:match("^(%a+)=(.*)$")
    if j[k] and type(j[k]) == "table" then
      table.insert(j[k], unescape(v))
    elseif k == "pid" or k == "start" or k == "pidns" then
      j[k] = math.tointeger(tonumber(v))
    end
  end
  if not (j.pid and j.start and j.pidns) then return nil end
  return j
end

--- Remove what a gone supervisor's journal lists: its pflask.PID.N
--- cgroups (and the leaf pflask.PID.0 it may have stepped aside into),
--- never anything else, whatever the file says. False when one of them
--- is still busy (its processes are still dying).
local function remove_journaled(host, j)
  local fs, ok = host.fs, true
  for i = #j.cgroup, 1, -1 do
    local dir = j.cgroup[i]
    local pid = dir:match("/pflask%.(%d+)%.%d+$")
    if pid and tonumber(pid) == j.pid and not dir:find("/%.%.?/") then
      local rok, _, errno = fs.remove(dir, false)
      if not rok and errno ~= 2 then ok = false end
    end
  end
  if ok then
    for _, parent in ipairs(j.parent) do undo_enables(host, parent) end
  end
  return ok
end

--- The census of this runtime directory, or nil (then every start sweeps
--- each parent: remove_stale).
local function census_of(host)
  local jr = host.journal
  if not jr then return nil end
  local dir = jr.dir()
  if not dir then return nil end
  local id, created = jr.census_open(dir)
  if not id then return nil end
  return { id = id, dir = dir, created = created }
end

--- Sweep the cgroups of supervisors that died without removing them, if
--- the census says there are any. When it looked (a death, or a new
--- set), it returns the cgroups the journals it kept name (live
--- supervisors', other pid namespaces'): the caller then also sweeps each
--- parent (remove_stale) but for those, for what a gone supervisor left
--- without a journal. That costs a listing of each parent, paid only
--- after a death, never on the common start.
local function sweep_dead(host, census)
  local jr = host.journal
  local deaths = jr.census_deaths(census.id)
  -- A set just made knows nothing of the supervisors before it (the host
  -- removed the old one: ipcrm, logind's RemoveIPC): the journals once.
  if not deaths or (deaths <= 0 and not census.created) then return nil end
  if not jr.census_lock(census.id, true) then return nil end
  local keep
  local ok, err = pcall(function()
    -- Again under the lock: another start may have settled them.
    deaths = jr.census_deaths(census.id)
    if not deaths or (deaths <= 0 and not census.created) then return end
    keep = {}
    local all = true
    for _, name in ipairs(jr.list(census.dir) or {}) do
      local j = journal_decode(jr.read(census.dir, name))
      -- Journals written in another pid namespace are not ours to judge.
      if j and j.pidns == host.pidns and host.supervisor(j.pid) ~= j.start then
        if remove_journaled(host, j) then
          jr.remove(census.dir, name)
        else
          all = false
        end
      elseif j then
        for _, dir in ipairs(j.cgroup) do keep[dir] = true end
      end
    end
    -- What is still busy keeps the deaths counted: the next start retries.
    if all and deaths > 0 then jr.census_settle(census.id, deaths) end
  end)
  jr.census_lock(census.id, false)
  if not ok then error(err, 0) end
  return keep
end

--- Before making the plan's cgroups: sweep what dead supervisors left,
--- then write this supervisor's journal and join the census. An OCI
--- container that outlives its creator (start_orphan) and cgroups at a
--- cgroup_path are removed by their owner, not swept: no journal.
local function journal_begin(host, plan)
  local census = census_of(host)
  plan.cgroup_census = census
  if not census then return end
  plan.cgroup_swept = sweep_dead(host, census)
  if plan.cgroup_path or plan.start_orphan then return end
  local jr = host.journal
  local start = host.start_time(host.pid)
  if not start then
    -- A journal that could not name this process could be taken for a
    -- dead one's: none, and every start sweeps each parent instead.
    plan.cgroup_census = nil
    return
  end
  local j = { pid = host.pid, start = start, pidns = host.pidns, cgroup = {}, parent = {} }
  for _, cg in ipairs(plan.cgroups) do
    local parent = parent_of(cg.dir)
    if cg.version == 2 then
      -- The leaf step_aside may make (named so that only this pid's
      -- journal may remove it).
      j.cgroup[#j.cgroup + 1] = parent .. "/pflask." .. host.pid .. ".0"
      j.parent[#j.parent + 1] = parent
    end
    j.cgroup[#j.cgroup + 1] = cg.dir
  end
  local name = plan.cgroups[1].dir:match("[^/]+$") .. M.JOURNAL
  -- Joined first: dying before the journal is written is a death with
  -- nothing to sweep, which the next sweep settles.
  local joined = jr.census_join(census.id, 1)
  if not joined then
    -- The set was removed meanwhile (ipcrm): a new one (which reads the
    -- journals once), then again. Not joined at all, the journal still
    -- lets a later sweep find these cgroups.
    local again = census_of(host)
    if again then
      census, plan.cgroup_census = again, again
      plan.cgroup_swept = sweep_dead(host, census) or plan.cgroup_swept
      joined = jr.census_join(census.id, 1)
    end
  end
  local data = journal_encode(j)
  local ok, _, errno = jr.write(census.dir, name, data, true)
  if not ok and errno == 17 then
    -- A journal of a dead supervisor that had our pid: its cgroups have
    -- our names.
    local old = journal_decode(jr.read(census.dir, name))
    if old and old.start ~= j.start then remove_journaled(host, old) end
    jr.remove(census.dir, name)
    ok = jr.write(census.dir, name, data, true)
  end
  if ok then plan.cgroup_journal = name end
  plan.cgroup_joined = joined and true or nil
  if not ok then
    -- Without a journal nobody could find them: every start sweeps then.
    if joined then jr.census_join(census.id, -1) end
    plan.cgroup_joined = nil
    plan.cgroup_census = nil
  end
end

--- After cleanup: the journal and the census, once every cgroup is gone
--- (else the supervisor stays counted as a death, and its journal is
--- swept after it exits).
local function journal_end(host, plan, all_removed)
  local census = plan.cgroup_census
  if not census then return end
  if not all_removed then return end
  local jr = host.journal
  if plan.cgroup_journal then jr.remove(census.dir, plan.cgroup_journal) end
  if plan.cgroup_joined then jr.census_join(census.id, -1) end
  plan.cgroup_journal, plan.cgroup_joined, plan.cgroup_census = nil, nil, nil
end

--- Device rules for the devices bound in with --mount.
local function bound_devices(host, plan)
  local rules = {}
  for _, m in ipairs(plan.mounts or {}) do
    if m.type == "bind" and m.source then
      local kind, major, minor = host.fs.device(m.source)
      if kind then
        rules[#rules + 1] = string.format("%s %d:%d %s", kind == "char" and "c" or "b", major, minor,
                                          m.readonly and "r" or "rw")
      end
    end
  end
  return rules
end

--- Put the device policy on cg.dir, before payload exists (a v1 child
--- copies its parent's rules when it is made).
local function apply_devices(host, cg, rules)
  local fs = host.fs
  if cg.version == 2 then
    perr.check("device policy", fs.devices_attach(cg.dir, rules))
  else
    perr.check("device policy", fs.write(cg.dir, "devices.deny", "a"))
    for _, r in ipairs(rules) do
      perr.check("device policy", fs.write(cg.dir, "devices.allow", r))
    end
  end
end

local function create(host, dir, option)
  local ok, msg, errno = host.fs.create(dir)
  if not ok then
    if errno == 13 or errno == 1 or errno == 30 then -- EACCES, EPERM, EROFS
      fail(option, "needs root or a delegated cgroup (%s)", msg)
    end
    perr.check(option, ok, msg, errno)
  end
end

---@param plan pflask.Plan
function M.prepare(plan)
  if not plan.cgroups then return end
  local host = plan.cgroup_host
  local fs = host.fs
  -- The cgroups are named after the process that stays to remove them:
  -- with --detach that is a child forked after planning. (Named after a
  -- process that is gone, the next run's sweep could remove them.)
  local pid = host.getpid and host.getpid() or host.pid
  if pid ~= host.pid then
    local old, new = "/pflask%." .. host.pid .. "%.", "/pflask." .. pid .. "."
    for _, cg in ipairs(plan.cgroups) do
      cg.dir = cg.dir:gsub(old, new)
      cg.procs = cg.procs:gsub(old, new)
    end
    if plan.delegated_cgroup_dir then plan.delegated_cgroup_dir = plan.delegated_cgroup_dir:gsub(old, new) end
    host.pid = pid
  end
  plan.cgroups_made = {}
  plan.cgroup_parents = {}
  journal_begin(host, plan)
  local known = {}
  for _, cg in ipairs(plan.cgroups) do
    local option = "--cgroup"
    local parent = parent_of(cg.dir)
    if plan.cgroup_path then
      -- The directories above it (cgroupsPath's parents), made when
      -- missing and left for others (a runtime's parent is shared);
      -- a v2 controller enabled in each.
      local missing, d = {}, parent
      while not fs.read(d .. "/cgroup.procs") do
        table.insert(missing, 1, d)
        d = parent_of(d)
        if not d or d == "" then break end
      end
      for _, m in ipairs(missing) do
        -- Enabled in the parent first: the child's controllers are those.
        for _, c in ipairs(cg.enable) do fs.write(parent_of(m), "cgroup.subtree_control", "+" .. c) end
        local ok, _, errno = fs.create(m)
        if not ok and errno ~= 17 then create(host, m, "cgroup_path") end
        -- v1 cpuset: a new cgroup has no CPUs and no memory nodes until
        -- given its parent's (the leaf gets them from limit_writes).
        for _, f in ipairs{ "cpuset.cpus", "cpuset.mems" } do
          local v = fs.read(m .. "/" .. f)
          if v and not v:match("%S") then fs.write(m, f, (fs.read(parent_of(m) .. "/" .. f) or ""):gsub("%s+$", "")) end
        end
      end
    end
    -- Without a census every start sweeps each parent; with one, only a
    -- start that saw a death does (sweep_dead), for leftovers no journal
    -- names (a journal lost with its directory, a supervisor killed
    -- before the census existed).
    if not plan.cgroup_census or plan.cgroup_swept then remove_stale(host, parent, known, plan.cgroup_swept) end
    -- Only v2 has subtree_control (and so pflask's marks): listing a v1
    -- parent for them, twice per start, cost a read of every sibling.
    if cg.version == 2 then
      undo_enables(host, parent)
      plan.cgroup_parents[#plan.cgroup_parents + 1] = parent
    end
    local enabled = #cg.enable > 0 and set_of(words(fs.read(parent .. "/cgroup.subtree_control"))) or {}
    for _, c in ipairs(cg.enable) do
      -- Checked again now, not at plan time: another pflask may have
      -- undone its own +c meanwhile. The mark first: whoever sees it knows
      -- pflask enabled c.
      if not enabled[c] then
        local mark = parent .. "/" .. MARK .. c
        local mok, mmsg, merrno = fs.create(mark)
        if not mok and merrno ~= 17 then perr.check(option, mok, mmsg, merrno) end -- EEXIST
        local ok, msg, errno = fs.write(parent, "cgroup.subtree_control", "+" .. c)
        if not ok and errno == 16 and not plan.cgroup_aside and step_aside(host, plan, parent) then
          ok, msg, errno = fs.write(parent, "cgroup.subtree_control", "+" .. c)
        end
        if not ok then
          if mok then fs.remove(mark, false) end
          if errno == 16 then -- EBUSY: the no-internal-process rule
            fail(option, "the %s controller is not delegated to pflask's cgroup %s, which holds other processes "
                 .. "and so cannot enable it (run pflask in a cgroup of its own: systemd-run --scope "
                 .. "-p Delegate=yes pflask ...)", c, parent)
          end
          perr.check(option, ok, msg, errno)
        end
      end
    end
    create(host, cg.dir, option)
    plan.cgroups_made[#plan.cgroups_made + 1] = cg.dir
    for _, w in ipairs(cg.writes) do
      local wok, wmsg, werrno = fs.write(cg.dir, w[1], w[2])
      if not wok and not (w.optional and werrno == 2) then -- ENOENT: file not there
        perr.check("cgroup limit", wok, wmsg, werrno)
      end
    end
    if cg.devices then
      local rules = {}
      for _, r in ipairs(cg.devices) do rules[#rules + 1] = r end
      for _, r in ipairs(bound_devices(host, plan)) do rules[#rules + 1] = r end
      apply_devices(host, cg, rules)
    end
    if cg.delegate then
      -- Hand the init every controller this cgroup has (best effort: one
      -- the kernel refuses is one the init goes without).
      for _, c in ipairs(words(fs.read(cg.dir .. "/cgroup.controllers"))) do
        fs.write(cg.dir, "cgroup.subtree_control", "+" .. c)
      end
    end
    if cg.procs ~= cg.dir then
      create(host, cg.procs, option)
      for _, w in ipairs(cg.writes) do
        if w.payload then perr.check("--cgroup", fs.write(cg.procs, w[1], w[2])) end
      end
    end
    -- The child starts in its v2 cgroup (core.clone): moving it there
    -- afterwards costs an RCU grace period, milliseconds on a busy host.
    if cg.version == 2 and not plan.clone_cgroup then plan.clone_cgroup = cg.procs end
  end
end

---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  if not plan.cgroups then return end
  local pid = container:pid()
  for _, cg in ipairs(plan.cgroups) do
    if not (plan.clone_placed and cg.procs == plan.clone_cgroup) then
      perr.check("--cgroup", plan.cgroup_host.fs.attach(cg.procs, pid))
    end
  end
end

---@param plan pflask.Plan
function M.cleanup(plan)
  local made = plan.cgroups_made
  if not made then return end
  local host = plan.cgroup_host
  local all = true
  for i = #made, 1, -1 do
    if not host.fs.remove(made[i], true) then all = false end
    made[i] = nil
  end
  for _, parent in ipairs(plan.cgroup_parents or {}) do undo_enables(host, parent) end
  plan.cgroup_parents = nil
  local aside = plan.cgroup_aside
  if aside then
    -- Back home, once no controller is handed down any more (the kernel
    -- refuses otherwise: then the leaf stays, swept after pflask exits).
    if not (host.fs.attach(aside.dir, host.pid) and host.fs.remove(aside.leaf, false)) then all = false end
    plan.cgroup_aside = nil
  end
  journal_end(host, plan, all)
end

return M
