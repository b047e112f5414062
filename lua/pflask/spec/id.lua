-- User and group ids, from any input: the command line (--user,
-- --user-map), spec fields (user, uid_map, gid_map) and the passwd, group
-- and subuid files of a root the container comes from. One checker, so
-- that none of them lets an id wrap: the kernel's ids are 32 bits, and
-- (uid_t)-1 = 4294967295 means "no id" to setresuid(2) and friends, so a
-- number past it would silently become another id (4294967296 is root).

local M = {}

--- The largest valid id.
M.MAX = 4294967294

M.RANGE = "ids go from 0 to 4294967294"

--- An id from a string of decimal digits (no sign, space, hex, exponent or
--- fraction) or an integer, in 0 .. M.MAX; nil otherwise.
---@param v string|integer|any
---@return integer|nil
function M.parse(v)
  if math.type(v) == "integer" then
    return (v >= 0 and v <= M.MAX) and v or nil
  end
  -- Ten digits at most: tonumber stays exact, and the comparison decides.
  if type(v) ~= "string" or not v:match("^%d+$") or #v > 10 then return nil end
  local n = math.tointeger(tonumber(v))
  if n and n <= M.MAX then return n end
  return nil
end

--- Does a string look like a number someone meant as an id (so that a
--- failed parse is "out of range", not "no such user name")?
---@param v string
---@return boolean
function M.numeric(v)
  return type(v) == "string" and v:match("^%d+$") ~= nil
end

--- Check a range of ids {inside=, outside=, count=} as a spec gives it:
--- integers, first ids valid, at least one id, and no id past M.MAX.
--- Returns nil and why when it is not.
---@param r any
---@return boolean|nil ok
---@return string|nil why
function M.check_range(r)
  if type(r) ~= "table" then return nil, "a range is a table {inside=, outside=, count=}" end
  local inside, outside, count = M.parse(r.inside), M.parse(r.outside), r.count
  if not inside or not outside then return nil, "inside and outside must be ids (" .. M.RANGE .. ")" end
  if math.type(count) ~= "integer" or count < 1 then return nil, "count must be an integer, at least 1" end
  if inside + count - 1 > M.MAX or outside + count - 1 > M.MAX then
    return nil, "the range goes past id " .. M.MAX
  end
  return true
end

return M
