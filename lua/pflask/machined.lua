-- The machined concern (see container.lua, CONCERNS): registers the
-- container with systemd-machined, so that `machinectl list` and
-- `machinectl status NAME` show it, and forgets it at the end.
--
-- spec.register: true (--register=yes) registers or fails; false
-- (--register=no) never does; nil (auto, the default) registers when
-- pflask runs as root on a host where systemd is pid 1 and machined is
-- installed, and only warns when machined refuses. container.lua's
-- predicate already needs euid 0 and /run/systemd/system in auto mode, so
-- a host without systemd pays one stat(2) per container and never loads
-- this module nor libsystemd.
--
-- The machine is spec.name (--name), or "pflask-PID" (PID: the
-- container's first process as the host sees it, as in pflask 0.2) when
-- there is none, or when machined would refuse it in auto mode
-- (--register=yes refuses such a name). A container whose cgroups pflask
-- does not place itself is registered with CreateMachine, as pflask 0.2
-- did: machined moves it into a scope of machine.slice and forgets it when
-- that scope empties. A container in cgroups of pflask's (--cgroup,
-- limits, a booted init's delegated cgroup) is registered with
-- RegisterMachine, which leaves it where it is: CreateMachine would move it
-- out of its limits. Either way cleanup unregisters it
-- (UnregisterMachine), so that machinectl never lists a container that
-- ended.

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

-- Where the host says machined can be reached: its D-Bus activation file
-- (it is bus-activated) or its unit, in either usr-merged location.
M.MACHINED_FILES = {
  "/usr/share/dbus-1/system-services/org.freedesktop.machine1.service",
  "/usr/lib/systemd/system/systemd-machined.service",
  "/lib/systemd/system/systemd-machined.service",
}

---@class pflask.machined.Host
---@field supported boolean built with sd-bus headers
---@field systemd boolean systemd is pid 1 (/run/systemd/system, as sd_booted)
---@field machined boolean machined is installed

--- The facts plan() decides on; unit specs pass their own.
---@return pflask.machined.Host
function M.host()
  local machined = false
  for _, f in ipairs(M.MACHINED_FILES) do
    if core.stat(f) then machined = true break end
  end
  local supported = false
  for _, f in ipairs(core.features) do
    if f == "+machined" then supported = true end
  end
  local st = core.stat("/run/systemd/system")
  return { supported = supported, systemd = st ~= nil and st.type == "directory", machined = machined }
end

--- Is `name` a name machined accepts: a hostname, labels of letters,
--- digits and inner "-" joined by single dots, at most 64 characters
--- (--name also allows "_", which machined refuses).
---@param name string
---@return boolean
function M.valid_name(name)
  if type(name) ~= "string" or #name < 1 or #name > 64 then return false end
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if not (label:match("^%w$") or label:match("^%w[%w-]*%w$")) then return false end
  end
  return true
end

local function uses_own_cgroups(plan)
  local cgroups = package.loaded["pflask.cgroups"]
  for _, c in ipairs(plan.concerns or {}) do
    if cgroups and c == cgroups then return true end
  end
  return false
end

---@class pflask.machined.Plan
---@field name string|nil spec.name, else nil: "pflask-PID" once the pid is known
---@field required boolean --register=yes: a failure is fatal
---@field create_scope boolean CreateMachine (true) or RegisterMachine
---@field registered string|nil the name registered, once it is

--- Decide whether and how to register: plan.machine, or nil when not.
---@param spec pflask.Spec
---@param plan pflask.Plan
---@param host pflask.machined.Host|nil
function M.plan(spec, plan, host)
  if spec.register == false then return end
  local required = spec.register == true
  if spec.register ~= nil and type(spec.register) ~= "boolean" then
    perr.option("--register", "must be yes, no or auto")
  end
  -- --name checks the name itself (pflask.registry); machined's rule is
  -- narrower.
  local name = spec.name
  if name ~= nil and not M.valid_name(name) then
    if required then
      perr.option("--register", "'%s' is not a name machined accepts (letters, digits, inner '-', dots between)",
        tostring(name))
    end
    name = nil
  end
  host = host or M.host()
  local why
  if not host.supported then
    why = "this pflask was built without machined support (see pflask --version)"
  elseif not host.systemd then
    why = "systemd is not running on this host (no /run/systemd/system), so neither is machined"
  elseif not host.machined then
    why = "machined is not installed on this host (systemd-container)"
  end
  if why then
    if required then perr.option("--register", "%s", why) end
    return
  end
  plan.machine = { name = name, required = required, create_scope = not uses_own_cgroups(plan) }
end

--- Supervisor, once the container's first process exists.
---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  local m = plan.machine
  if not m then return end
  local name = m.name or ("pflask-" .. container:pid())
  local ok, msg, errno = core.machined_register(name, container:pid(), plan.root or "", m.create_scope)
  if ok then
    m.registered = name
  elseif m.required then
    error(perr.new(perr.FAILURE, "--register: machined: " .. tostring(msg), errno), 0)
  else
    io.stderr:write("pflask: warning: not registered with machined: ", tostring(msg), "\n")
  end
end

--- Forget the machine; a machine machined already dropped is no failure.
---@param plan pflask.Plan
function M.cleanup(plan)
  local m = plan.machine
  if not (m and m.registered) then return end
  local name = m.registered
  m.registered = nil
  local ok, msg, errno = core.machined_unregister(name)
  if not ok and errno ~= 2 then -- ENOENT: gone with its scope
    io.stderr:write("pflask: warning: machined: ", tostring(msg), "\n")
  end
end

return M
