-- The cgroups concern (see container.lua, CONCERNS): --cgroup=CONTROLLER
-- (spec.cgroups) and the limits --memory, --pids-max, --cpus
-- (spec.limits), which imply their controllers.
--
-- Each controller is used on the unified (v2) hierarchy when it is enabled
-- there, else on the v1 hierarchy it is mounted on. The container gets a
-- new cgroup, pflask.PID.N, below the supervisor's own cgroup (so the
-- supervisor's limits still hold; on v2, below the nearest ancestor that
-- delegates the controller), made in prepare, joined in parent, removed in
-- cleanup (processes still in it are killed first). A supervisor that was
-- SIGKILLed cannot remove its cgroups: the next pflask that uses the same
-- place removes the empty pflask.PID.N cgroups of processes that are gone.
--
-- An init (plan.delegate_cgroup, set for a boot) gets a v2 cgroup of its
-- own even without --cgroup, which it manages inside its namespace.
--
-- The cgroup namespace: a namespace made by clone would have the
-- supervisor's cgroup as its root, fixed before the parent moves the
-- child. So when the container gets cgroups (plan.cgroups), the namespace
-- plan (container.namespace_plan) leaves it out of clone and the child
-- unshares it once placed: the container sees its own cgroup as "/".

local core = require "pflask.core"
local perr = require "pflask.error"
local limits = require "pflask.spec.limits"

local M = {}

-- Overridable by tests: where the kernel describes mounts and cgroups.
M.MOUNTINFO = "/proc/self/mountinfo"
M.PROC_CGROUP = "/proc/self/cgroup"
M.PROC_CGROUPS = "/proc/cgroups"

local counter = 0

local function fail(option, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, option, ...)
end

local read_file = require("pflask.path").read_file

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

--- The cgroup hierarchies mounted here: the v2 mount (or nil) and the v1
--- mount of each controller ("memory", "name=systemd", ...), with the
--- root of the hierarchy each mount shows.
---@return {v2: {dir: string, root: string}|nil, v1: table<string, {dir: string, root: string}>}
function M.hierarchies()
  local known = {}
  for line in (read_file(M.PROC_CGROUPS) or ""):gmatch("[^\n]+") do
    local name = line:match("^([%w_]+)%s")
    if name then known[name] = true end
  end
  local h = { v1 = {} }
  for line in (read_file(M.MOUNTINFO) or ""):gmatch("[^\n]+") do
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

--- The supervisor's cgroup in each hierarchy: ["0"] for v2, and by v1
--- controller.
local function own_cgroups()
  local own = { v1 = {} }
  for line in (read_file(M.PROC_CGROUP) or ""):gmatch("[^\n]+") do
    local id, ctrls, path = line:match("^(%d+):([^:]*):(.*)$")
    if id == "0" and ctrls == "" then
      own.v2 = path
    elseif ctrls then
      for c in ctrls:gmatch("[^,]+") do own.v1[c] = path end
    end
  end
  return own
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

--- v2: the cgroup below which a new one gets `controller`: the nearest
--- ancestor of ours (ours included only at the root, which may hold
--- processes) that has it in cgroup.subtree_control.
local function v2_parent(mount, own, controller)
  local dir = dir_of(mount, own or "/")
  while dir and #dir >= #mount.dir do
    local sub = set_of(words(read_file(dir .. "/cgroup.subtree_control")))
    if sub[controller] then return dir end
    if dir == mount.dir then
      local avail = set_of(words(read_file(dir .. "/cgroup.controllers")))
      if avail[controller] then return dir, true end
      return nil
    end
    dir = parent_of(dir)
  end
  return nil
end

--- Controllers available for --cgroup, for the message of a bad one.
local function available(h)
  local names = {}
  if h.v2 then
    for _, c in ipairs(words(read_file(h.v2.dir .. "/cgroup.controllers"))) do names[#names + 1] = c end
  end
  for c in pairs(h.v1) do names[#names + 1] = c end
  table.sort(names)
  local out, seen = {}, {}
  for _, c in ipairs(names) do if not seen[c] then out[#out + 1] = c; seen[c] = true end end
  return table.concat(out, ", ")
end

local function owned_by(dir, euid)
  local st = core.stat(dir)
  return st and st.uid == euid
end

--- Where a controller lives: { version, parent dir, enable (v2 root) }.
local function locate(h, own, controller, option, euid)
  local loc
  local v2ctrls = h.v2 and set_of(words(read_file(h.v2.dir .. "/cgroup.controllers"))) or {}
  if h.v2 and v2ctrls[controller] then
    local parent, enable = v2_parent(h.v2, own.v2, controller)
    if not parent then
      fail(option, "the %s controller is not delegated to any cgroup above pflask's (%s)", controller,
           tostring(own.v2))
    end
    loc = { version = 2, parent = parent, enable = enable and controller or nil }
  elseif h.v1[controller] then
    loc = { version = 1, parent = dir_of(h.v1[controller], own.v1[controller] or "/") }
  else
    fail(option, "'%s' is not a cgroup controller on this host (available: %s)", controller, available(h))
  end
  if euid ~= 0 and not owned_by(loc.parent, euid) then
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
local function limit_writes(version, controller, lim, dir)
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
    -- A v1 cpuset cgroup takes no task until it has cpus and mems.
    local parent = parent_of(dir)
    for _, f in ipairs({ "cpuset.cpus", "cpuset.mems" }) do
      local v = (read_file(parent .. "/" .. f) or ""):gsub("%s+$", "")
      if v ~= "" then w[#w + 1] = { f, v } end
    end
  end
  return w
end

---@class pflask.Cgroup
---@field dir string the container's cgroup directory
---@field version 1|2
---@field controllers string[]
---@field enable string|nil controller to enable in the v2 parent's subtree_control
---@field writes table[] {file, value, optional=} written after creation

---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
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
  for key, ctrl in pairs({ memory = "memory", pids = "pids", cpu = "cpu" }) do
    if lim[key] and not option_of[ctrl] then
      wanted[#wanted + 1] = ctrl
      option_of[ctrl] = ({ memory = "--memory", pids = "--pids-max", cpu = "--cpus" })[key]
    end
  end
  local h
  if plan.delegate_cgroup then
    h = M.hierarchies()
    if not h.v2 then
      perr.raise(perr.FAILURE, "boot: an init needs a cgroup v2 hierarchy, and this host mounts none")
    end
  end
  if #wanted == 0 and not plan.delegate_cgroup then return end

  local euid = core.geteuid()
  local own = own_cgroups()
  h = h or M.hierarchies()
  counter = counter + 1
  local name = string.format("pflask.%d.%d", core.getpid(), counter)
  local by_dir, list = {}, {}
  if plan.delegate_cgroup then
    -- An init manages its own subtree: a v2 cgroup of its own, with no
    -- controller asked of the host (any the parent delegates come along
    -- when the init enables them).
    local parent = dir_of(h.v2, own.v2 or "/")
    if euid ~= 0 and not owned_by(parent, euid) then
      perr.raise(perr.FAILURE, "boot: needs root or a delegated cgroup (%s is not yours)", parent)
    end
    local cg = { dir = parent .. "/" .. name, version = 2, controllers = {}, writes = {}, enable = {} }
    by_dir[cg.dir] = cg
    list[1] = cg
    plan.delegated_cgroup_dir = cg.dir
  end
  for _, c in ipairs(wanted) do
    local loc = locate(h, own, c, option_of[c], euid)
    local dir = loc.parent .. "/" .. name
    local cg = by_dir[dir]
    if not cg then
      cg = { dir = dir, version = loc.version, controllers = {}, writes = {}, enable = {} }
      by_dir[dir] = cg
      list[#list + 1] = cg
    end
    cg.controllers[#cg.controllers + 1] = c
    if loc.enable then cg.enable[#cg.enable + 1] = loc.enable end
    for _, w in ipairs(limit_writes(loc.version, c, lim, dir)) do cg.writes[#cg.writes + 1] = w end
  end
  plan.cgroups = list
  plan.limits = lim
end

--- Is process `pid` (of this pid namespace) alive?
local function alive(pid)
  -- A zombie is gone too (a SIGKILLed pflask whose parent does not reap).
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %(.*%) (%a)") ~= "Z"
end

--- Remove the empty cgroups of pflask supervisors that are gone (killed
--- with SIGKILL, say) from `parent`.
local function remove_stale(parent)
  for _, entry in ipairs(core.cgroup_children(parent) or {}) do
    local pid = entry:match("^pflask%.(%d+)%.%d+$")
    if pid and not alive(pid) then core.cgroup_remove(parent .. "/" .. entry, false) end
  end
end

---@param plan pflask.Plan
function M.prepare(plan)
  if not plan.cgroups then return end
  plan.cgroups_made = {}
  for _, cg in ipairs(plan.cgroups) do
    local option = "--cgroup"
    local parent = parent_of(cg.dir)
    remove_stale(parent)
    for _, c in ipairs(cg.enable) do
      perr.check(option, core.cgroup_write(parent, "cgroup.subtree_control", "+" .. c))
    end
    local ok, msg, errno = core.cgroup_create(cg.dir)
    if not ok then
      if errno == 13 or errno == 1 or errno == 30 then -- EACCES, EPERM, EROFS
        fail(option, "needs root or a delegated cgroup (%s)", msg)
      end
      perr.check(option, ok, msg, errno)
    end
    plan.cgroups_made[#plan.cgroups_made + 1] = cg.dir
    for _, w in ipairs(cg.writes) do
      local wok, wmsg, werrno = core.cgroup_write(cg.dir, w[1], w[2])
      if not wok and not (w.optional and werrno == 2) then -- ENOENT: file not there
        perr.check("cgroup limit", wok, wmsg, werrno)
      end
    end
  end
end

---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  if not plan.cgroups then return end
  local pid = container:pid()
  for _, cg in ipairs(plan.cgroups) do
    perr.check("--cgroup", core.cgroup_attach(cg.dir, pid))
  end
end

---@param plan pflask.Plan
function M.cleanup(plan)
  local made = plan.cgroups_made
  if not made then return end
  for i = #made, 1, -1 do
    core.cgroup_remove(made[i], true)
    made[i] = nil
  end
end

return M
