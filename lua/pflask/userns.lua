-- The user namespace concern (see container.lua, CONCERNS): which ids the
-- container maps, and writing the maps from the supervisor before the
-- child goes on.

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

local FULL_RANGE = 4294967295 -- every id but the invalid (uid_t)-1

local function fail(option, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, option, ...)
end

local function copy_ranges(ranges)
  local out = {}
  for i, r in ipairs(ranges) do
    out[i] = { inside = r.inside, outside = r.outside, count = r.count }
  end
  return out
end

--- uid and gid maps for a new user namespace, following the classic rules:
--- explicit maps win; --user maps that user to itself (to the caller's own
--- id when unprivileged); an unprivileged caller becomes root; root gets
--- the identity map.
local function plan_id_maps(spec, user, euid, egid)
  if spec.uid_map then
    return copy_ranges(spec.uid_map), copy_ranges(spec.gid_map or spec.uid_map)
  end
  if user then
    if euid ~= 0 and user.uid ~= euid then
      fail("--user", "'%s' (uid %d) is not you: without root, pflask can only map your own uid (use --user-map)",
           user.name, user.uid)
    end
    local outside_uid = euid == 0 and user.uid or euid
    local outside_gid = euid == 0 and user.gid or egid
    return { { inside = user.uid, outside = outside_uid, count = 1 } },
           { { inside = user.gid, outside = outside_gid, count = 1 } }
  end
  if euid ~= 0 then
    return { { inside = 0, outside = euid, count = 1 } }, { { inside = 0, outside = egid, count = 1 } }
  end
  return { { inside = 0, outside = 0, count = FULL_RANGE } }, { { inside = 0, outside = 0, count = FULL_RANGE } }
end

local function in_ranges(ranges, id)
  for _, r in ipairs(ranges) do
    if id >= r.inside and id < r.inside + r.count then return true end
  end
  return false
end

--- Supplementary groups that exist inside: a gid outside the gid map
--- cannot be set (and without setgroups, none can).
local function mappable_groups(user, gid_map, setgroups_denied)
  if setgroups_denied then return {} end
  if not gid_map then return user.groups end
  local out = {}
  for _, gid in ipairs(user.groups) do
    if in_ranges(gid_map, gid) then out[#out + 1] = gid end
  end
  return out
end

--- Resolve the maps into plan.uid_map and plan.gid_map, and keep only the
--- supplementary groups that exist inside.
---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  if not plan.namespaces.user then return end
  local euid, egid = core.geteuid(), core.getegid()
  local user = plan.user
  plan.deny_setgroups = euid ~= 0
  plan.uid_map, plan.gid_map = plan_id_maps(spec, user, euid, egid)
  if user then
    if not in_ranges(plan.uid_map, user.uid) then
      fail("--user", "uid %d of '%s' is not mapped in the user namespace", user.uid, user.name)
    end
    plan.groups = mappable_groups(user, plan.gid_map, plan.deny_setgroups)
  end
end

--- Write the maps (and deny setgroups where the kernel asks it first).
---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  if not plan.namespaces.user then return end
  local pid = container:pid()
  local step = plan.user and "--user" or "user namespace"
  if plan.deny_setgroups then perr.check(step, core.deny_setgroups(pid)) end
  perr.check(step, core.write_id_map(pid, "uid", plan.uid_map))
  perr.check(step, core.write_id_map(pid, "gid", plan.gid_map))
end

return M
