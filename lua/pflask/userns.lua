-- The user namespace concern (see container.lua, CONCERNS): which ids the
-- container maps, and writing the maps from the supervisor before the
-- child goes on.

local core = require "pflask.core"
local perr = require "pflask.error"
local ids = require "pflask.spec.id"

local M = {}

-- Overridable by tests.
M.SUBUID = "/etc/subuid"
M.SUBGID = "/etc/subgid"
M.NEWUIDMAP = "/usr/bin/newuidmap"
M.NEWGIDMAP = "/usr/bin/newgidmap"

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
--- The id mapped to itself, and 0 to 0 (once when id is 0).
local function identity_with_root(id)
  local ranges = { { inside = 0, outside = 0, count = 1 } }
  if id ~= 0 then ranges[2] = { inside = id, outside = id, count = 1 } end
  return ranges
end

--- A recipe's uid_map/gid_map (the command line's went through
--- pflask.spec.usermap already): every range checked as an id range.
local function check_spec_ranges(ranges, kind)
  if type(ranges) ~= "table" or #ranges == 0 then
    fail("--user-map", "%s_map must be an array of ranges or \"subordinate\"", kind)
  end
  for i, r in ipairs(ranges) do
    local ok, why = ids.check_range(r)
    if not ok then fail("--user-map", "%s range %d: %s", kind, i, why) end
  end
end

local function plan_id_maps(spec, user, euid, egid)
  if spec.uid_map == "subordinate" or spec.gid_map == "subordinate" then
    return M.subordinate_map("uid", euid), M.subordinate_map("gid", egid)
  end
  if spec.uid_map then
    check_spec_ranges(spec.uid_map, "uid")
    if spec.gid_map then check_spec_ranges(spec.gid_map, "gid") end
    return copy_ranges(spec.uid_map), copy_ranges(spec.gid_map or spec.uid_map)
  end
  if user then
    if euid ~= 0 and user.uid ~= euid then
      fail("--user", "'%s' (uid %d) is not you: without root, pflask can only map your own uid (use --user-map)",
           user.name, user.uid)
    end
    if euid ~= 0 then
      return { { inside = user.uid, outside = euid, count = 1 } },
             { { inside = user.gid, outside = egid, count = 1 } }
    end
    -- Root also maps root to itself: the container is set up (mount
    -- points, /dev nodes) by a mapped root before the switch to the user;
    -- an unmapped creator cannot make a single file.
    return identity_with_root(user.uid), identity_with_root(user.gid)
  end
  if euid ~= 0 then
    return { { inside = 0, outside = euid, count = 1 } }, { { inside = 0, outside = egid, count = 1 } }
  end
  return { { inside = 0, outside = 0, count = FULL_RANGE } }, { { inside = 0, outside = 0, count = FULL_RANGE } }
end

local function maps_outside(ranges, id)
  for _, r in ipairs(ranges) do
    if id >= r.outside and id < r.outside + r.count then return true end
  end
  return false
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

--- Subordinate id ranges of a user in /etc/subuid or /etc/subgid text:
--- the lines whose first field is the user's name or number.
---@param text string
---@param name string|nil
---@param id integer
---@return {start: integer, count: integer}[]
function M.parse_subids(text, name, id)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local who, start, count = line:match("^%s*([^:#%s][^:]*):(%d+):(%d+)%s*$")
    start, count = ids.parse(start), ids.parse(count)
    -- A range past the last id is malformed: skipped, as newuidmap does.
    if who and (who == name or who == tostring(id)) and start and count and count >= 1
      and start + count - 1 <= ids.MAX then
      out[#out + 1] = { start = start, count = count }
    end
  end
  return out
end

local read_file = require("pflask.path").read_file

--- The caller's subordinate ranges of one kind ("uid" or "gid").
---@param kind "uid"|"gid"
---@return {start: integer, count: integer}[]
function M.subordinate_ranges(kind)
  local uid = core.geteuid()
  local me = core.getpwnam(uid)
  return M.parse_subids(read_file(kind == "uid" and M.SUBUID or M.SUBGID) or "", me and me.name, uid)
end

--- "All my subordinate ids": the caller's own id is root inside, then
--- every subordinate range follows from id 1 on (as rootless podman).
---@param kind "uid"|"gid"
---@param own integer
---@return table[]
function M.subordinate_map(kind, own)
  local ranges = M.subordinate_ranges(kind)
  if #ranges == 0 then
    fail("--user-map", "'subordinate': you have no subordinate %ss in %s", kind,
         kind == "uid" and M.SUBUID or M.SUBGID)
  end
  local map = { { inside = 0, outside = own, count = 1 } }
  local next_inside = 1
  for _, r in ipairs(ranges) do
    if not (own >= r.start and own < r.start + r.count) then
      map[#map + 1] = { inside = next_inside, outside = r.start, count = r.count }
      next_inside = next_inside + r.count
    end
  end
  return map
end

local function fmt(r)
  return string.format("%d:%d:%d", r.inside, r.outside, r.count)
end

--- Refuse ranges that overlap (inside or outside): the kernel rejects the
--- whole map with a bare EINVAL.
local function check_overlaps(ranges, kind)
  for i = 1, #ranges do
    local a = ranges[i]
    if a.count < 1 then fail("--user-map", "%s range %s maps no ids", kind, fmt(a)) end
    for j = i + 1, #ranges do
      local b = ranges[j]
      if (a.inside < b.inside + b.count and b.inside < a.inside + a.count)
        or (a.outside < b.outside + b.count and b.outside < a.outside + a.count) then
        fail("--user-map", "%s ranges %s and %s overlap", kind, fmt(a), fmt(b))
      end
    end
  end
end

--- Unprivileged: does the map need newuidmap/newgidmap (anything but the
--- caller's own id, once), and is every range the caller's to give?
local function check_authorised(ranges, kind, own)
  if #ranges == 1 and ranges[1].outside == own and ranges[1].count == 1 then return false end
  local allowed = { { start = own, count = 1 } }
  for _, r in ipairs(M.subordinate_ranges(kind)) do allowed[#allowed + 1] = r end
  for _, r in ipairs(ranges) do
    local ok = false
    for _, a in ipairs(allowed) do
      if r.outside >= a.start and r.outside + r.count <= a.start + a.count then ok = true break end
    end
    if not ok then
      fail("--user-map", "host %ss %d-%d are not yours to map (your %s %d and your ranges in %s)", kind,
           r.outside, r.outside + r.count - 1, kind, own, kind == "uid" and M.SUBUID or M.SUBGID)
    end
  end
  local helper = kind == "uid" and M.NEWUIDMAP or M.NEWGIDMAP
  if not core.stat(helper) then
    fail("--user-map", "mapping more than your own %s needs %s (Debian: apt install uidmap)", kind, helper)
  end
  return true
end

--- Resolve the maps into plan.uid_map and plan.gid_map, and keep only the
--- supplementary groups that exist inside.
---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  if not plan.namespaces.user then return end
  local euid, egid = core.geteuid(), core.getegid()
  if plan.host then euid, egid = plan.host.euid, plan.host.egid end
  local user = plan.user
  plan.deny_setgroups = euid ~= 0
  plan.uid_map, plan.gid_map = plan_id_maps(spec, user, euid, egid)
  check_overlaps(plan.uid_map, "uid")
  check_overlaps(plan.gid_map, "gid")
  if euid ~= 0 then
    local uid_helper = check_authorised(plan.uid_map, "uid", euid)
    local gid_helper = check_authorised(plan.gid_map, "gid", egid)
    -- newgidmap needs setgroups allowed to map subordinate gids; with
    -- them, supplementary groups inside work too.
    plan.id_map_helper = uid_helper or gid_helper
    if plan.id_map_helper then plan.deny_setgroups = false end
  end
  plan.become_root = in_ranges(plan.uid_map, 0) and in_ranges(plan.gid_map, 0)
    and not (maps_outside(plan.uid_map, euid) and maps_outside(plan.gid_map, egid))
  if user then
    if not in_ranges(plan.uid_map, user.uid) then
      fail("--user", "uid %d of '%s' is not mapped in the user namespace", user.uid, user.name)
    end
    plan.groups = mappable_groups(user, plan.gid_map, plan.deny_setgroups)
  end
end

--- First child step: when the maps leave pflask's own ids out (root
--- mapping 0:100000:65536, or a rootless user mapping only subordinate
--- ids), the child would run as the overflow user "nobody" without any
--- file access; it becomes root inside instead, when root is mapped.
---@param plan pflask.Plan
function M.child_mounts(plan)
  if not plan.become_root then return end
  perr.check("user namespace", core.switch_user(0, 0, {}))
end

--- Run newuidmap or newgidmap: `helper PID INSIDE OUTSIDE COUNT...`.
---@param step string for messages
---@param helper string
---@param pid integer
---@param ranges table[]
function M.run_helper(step, helper, pid, ranges)
  local args = { helper, tostring(pid) }
  for _, r in ipairs(ranges) do
    args[#args + 1] = string.format("%d %d %d", r.inside, r.outside, r.count)
  end
  local p = io.popen(table.concat(args, " ") .. " 2>&1")
  local out = p and p:read("a") or ""
  local ok = p and p:close()
  if not ok then
    local line = out:match("[^\n]*[^\n%s]") or "failed"
    perr.raise(perr.FAILURE, "%s: %s", step, line)
  end
end

--- Write the maps (and deny setgroups where the kernel asks it first).
---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  if not plan.namespaces.user then return end
  local pid = container:pid()
  local step = plan.user and "--user" or "user namespace"
  if plan.id_map_helper then
    M.run_helper(step, M.NEWUIDMAP, pid, plan.uid_map)
    M.run_helper(step, M.NEWGIDMAP, pid, plan.gid_map)
    return
  end
  if plan.deny_setgroups then perr.check(step, core.deny_setgroups(pid)) end
  perr.check(step, core.write_id_map(pid, "uid", plan.uid_map))
  perr.check(step, core.write_id_map(pid, "gid", plan.gid_map))
end

return M
