-- The privileges concern (see container.lua, CONCERNS): capabilities
-- (--caps, spec.caps) and no_new_privs (--no-new-privs, spec.no_new_privs).
--
-- The --caps entries resolve, in the supervisor, into one set `keep`
-- starting from what the host grants (its bounding set: on some hosts
-- "all" lacks a few). In the child, the bounding set is cut to `keep`
-- before the user switch (that needs CAP_SETPCAP, which a non-root user
-- loses), so that no exec, setuid or file-capability binary can bring a
-- dropped capability back; right before exec, permitted, effective and
-- inheritable become `keep`, and for a command that runs as a non-root
-- user the capabilities named with "+" are raised in the ambient set so
-- that they survive exec.

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

--- Resolve a list of entries against the host's bounding set.
---@param ops pflask.CapOp[]
---@param host integer bit set of the capabilities the host grants
---@param last integer highest capability the kernel knows
---@return integer keep bit set
---@return integer added bit set of the capabilities named with "+"
function M.resolve(ops, host, last)
  local keep, added = host, 0
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
  if #ops == 0 then return end
  local host = perr.check("--caps", core.caps_bounding())
  local keep, added = M.resolve(ops, host, core.caps_last())
  local nonroot = plan.user and plan.user.uid ~= 0
  plan.caps = { keep = keep, ambient = nonroot and added or 0 }
end

--- Before the user switch: the bounding set.
---@param plan pflask.Plan
function M.child_privileges(plan)
  if not plan.caps then return end
  perr.check("--caps", core.caps_drop_bounding(plan.caps.keep, plan.caps.ambient ~= 0))
end

--- After the user switch, right before exec: the process's own sets, then
--- no_new_privs (last: it does not hinder anything pflask still does).
---@param plan pflask.Plan
function M.child_exec(plan)
  if plan.caps then
    perr.check("--caps", core.caps_apply(plan.caps.keep, plan.caps.ambient))
  end
  if plan.no_new_privs then perr.check("--no-new-privs", core.no_new_privs()) end
end

return M
