-- The privileges concern (see container.lua, CONCERNS): capabilities
-- (--caps, spec.caps) and no_new_privs (--no-new-privs, spec.no_new_privs).
--
-- Every container starts from a default set, not from all the host grants:
-- a root container is not host root. The default is systemd-nspawn's:
-- what a system needs inside (files, ids, signals, mounts, its own network
-- when it has one) without what acts on the whole host (modules, raw I/O,
-- the clock, MAC policy, the kernel log, BPF, perf, suspend, process
-- accounting...). The --caps entries modify that default ("+all" is all
-- the host grants) and resolve, in the supervisor, into one set `keep`
-- (limited to the host's bounding set: on some hosts "all" lacks a few).
-- In the child, the bounding set is cut to `keep` before the user switch
-- (that needs CAP_SETPCAP, which a non-root user loses), so that no exec,
-- setuid or file-capability binary can bring a dropped capability back;
-- right before exec, permitted, effective and inheritable become `keep`
-- (pid 1 included, which would otherwise hold what its command lacks),
-- and for a command that runs as a non-root user the capabilities named
-- with "+" are raised in the ambient set so that they survive exec.

local core = require "pflask.core"
local perr = require "pflask.error"
local capspec = require "pflask.spec.caps"

local M = {}

local function fail(option, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, option, ...)
end

--- Normalise spec.caps: pflask.CapOp tables (from the CLI) or strings such
--- as "-all", "+chown", "net_admin" (from recipes).
---@param caps (pflask.CapOp|string)[]
---@return pflask.CapOp[]
local function normalize(caps)
  if type(caps) == "string" then return capspec.parse(caps, "--caps") end
  if type(caps) ~= "table" then fail("--caps", "must be a list of capabilities") end
  local out = {}
  for i, c in ipairs(caps) do
    if type(c) == "string" then
      capspec.parse(c, "--caps", out)
    elseif type(c) == "table" and (c.op == "+" or c.op == "-") and type(c.name) == "string" then
      if c.name == "all" and i > 1 then fail("--caps", "'all' must come first") end
      if c.name ~= "all" and not capspec.numbers[capspec.normalize(c.name)] then
        fail("--caps", "'%s' is not a capability", c.name)
      end
      out[#out + 1] = { op = c.op, name = capspec.normalize(c.name) }
    else
      fail("--caps", "entry %d is not a capability", i)
    end
  end
  return out
end

-- The default set, as systemd-nspawn's (nspawn.c, arg_caps_retain).
local DEFAULT_NAMES = {
  "audit_control", "audit_write", "chown", "dac_override", "dac_read_search",
  "fowner", "fsetid", "ipc_owner", "kill", "lease", "linux_immutable", "mknod",
  "net_bind_service", "net_broadcast", "net_raw", "setfcap", "setgid",
  "setpcap", "setuid", "sys_admin", "sys_boot", "sys_chroot", "sys_nice",
  "sys_ptrace", "sys_resource", "sys_tty_config",
}
local function default_set()
  local set = 0
  for _, name in ipairs(DEFAULT_NAMES) do set = set | (1 << capspec.numbers[name]) end
  return set
end
local DEFAULT = default_set()

--- The default bounding set of a container, before --caps: DEFAULT, and
--- net_admin when the container has a network namespace of its own (its
--- interfaces, routes and firewall are then its own).
---@param private_net boolean
---@return integer
function M.default(private_net)
  if private_net then return DEFAULT | (1 << capspec.numbers.net_admin) end
  return DEFAULT
end

--- Resolve a list of entries against the host's bounding set.
---@param ops pflask.CapOp[]
---@param host integer bit set of the capabilities the host grants
---@param last integer highest capability the kernel knows
---@param base integer|nil the set the entries modify (default: host)
---@return integer keep bit set
---@return integer added bit set of the capabilities named with "+"
function M.resolve(ops, host, last, base)
  local keep, added = host & (base or host), 0
  for _, c in ipairs(ops) do
    if c.name == "all" then
      keep = c.op == "+" and host or 0
    else
      local n = capspec.numbers[c.name]
      local bit = 1 << n
      if c.op == "+" then
        if n > last or host & bit == 0 then
          fail("--caps", "'%s' is not granted on this host (it is not in pflask's bounding set)", c.name)
        end
        keep, added = keep | bit, added | bit
      else
        keep, added = keep & ~bit, added & ~bit
      end
    end
  end
  return keep, added
end

--- The capabilities of the host's bounding set that M.resolve looks at
--- for ops and base: only those are read (a prctl each), all of them
--- when "+all" is asked for.
---@param ops pflask.CapOp[]
---@param base integer
---@return integer bit set
function M.consulted(ops, base)
  local which = base
  for _, c in ipairs(ops) do
    if c.name == "all" then
      if c.op == "+" then return -1 end
    elseif c.op == "+" then
      which = which | (1 << capspec.numbers[c.name])
    end
  end
  return which
end

--- Capability names of a bit set, for messages and tests.
---@param set integer
---@return string[]
function M.names(set)
  local out = {}
  for n = 0, 62 do
    if set & (1 << n) ~= 0 then out[#out + 1] = capspec.names[n + 1] or tostring(n) end
  end
  return out
end

---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  if spec.no_new_privs ~= nil and type(spec.no_new_privs) ~= "boolean" then
    fail("--no-new-privs", "spec.no_new_privs must be a boolean")
  end
  plan.no_new_privs = spec.no_new_privs or false
  local ops = spec.caps and normalize(spec.caps) or {}
  local base = M.default(plan.namespaces.net)
  local host = perr.check("--caps", core.caps_bounding(M.consulted(ops, base)))
  local keep, added = M.resolve(ops, host, core.caps_last(), base)
  local nonroot = plan.user and plan.user.uid ~= 0
  plan.caps = { keep = keep, ambient = nonroot and added or 0 }
end

--- Before the user switch: the bounding set.
---@param plan pflask.Plan
function M.child_privileges(plan)
  perr.check("--caps", core.caps_drop_bounding(plan.caps.keep, plan.caps.ambient ~= 0))
end

--- After the user switch, right before exec: the process's own sets (pid
--- 1's too). no_new_privs is the command's alone: the exec plan sets it
--- in the command's process (container.CHILD_STAGES, "exec").
---@param plan pflask.Plan
function M.child_exec(plan)
  perr.check("--caps", core.caps_apply(plan.caps.keep, plan.caps.ambient))
end

return M
