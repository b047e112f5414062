-- Parse one --user-map value: CONT:HOST:COUNT (or CONT,HOST,COUNT).

local error_ = require("pflask.error")

---@class pflask.IdMap
---@field inside integer first id in the container
---@field outside integer first id on the host
---@field count integer number of ids, at least 1

local M = {}

-- The kernel refuses extents whose end wraps a u32 and the id (u32)-1, so
-- first + count must stay below 2^32.
local LIMIT = 4294967296

local split = require("pflask.spec.fields").split
local ids = require("pflask.spec.id")

--- A count: decimal digits only, below 2^32.
---@param s string
---@return integer|nil
local function number(s)
  if not s:match("^%d+$") or #s > 10 then
    return nil
  end
  local n = math.tointeger(tonumber(s))
  if n and n < LIMIT then
    return n
  end
  return nil
end

--- Parse one mapping.
---@param value string e.g. "0:100000:65536"
---@param option string the long option name for messages, e.g. "--user-map"
---@return pflask.IdMap
function M.parse(value, option)
  local fields = split(value)
  local inside, outside, count
  if #fields == 3 then
    -- Numbers first (so that "4294967295:0:1" reads as too far, not as
    -- garbage), then the range check below keeps every id within ids.MAX.
    inside, outside, count = number(fields[1]), number(fields[2]), number(fields[3])
  end
  if not (inside and outside and count) then
    error_.option(option, "'%s' is not CONT:HOST:COUNT", value)
  end
  if count < 1 then
    error_.option(option, "'%s' maps no ids (COUNT must be at least 1)", value)
  end
  if inside + count - 1 > ids.MAX or outside + count - 1 > ids.MAX then
    error_.option(option, "'%s' goes past id %d", value, ids.MAX)
  end
  return { inside = inside, outside = outside, count = count }
end

--- Format a mapping as the user would write it, for messages.
---@param map pflask.IdMap
---@return string
function M.format(map)
  return string.format("%d:%d:%d", map.inside, map.outside, map.count)
end

--- Do two mappings claim a common id, inside or outside? The kernel
--- refuses such a map as a whole, with a bare EINVAL.
---@param a pflask.IdMap
---@param b pflask.IdMap
---@return boolean
function M.overlap(a, b)
  local function meet(x, y, n, m)
    return x < y + m and y < x + n
  end
  return meet(a.inside, b.inside, a.count, b.count)
      or meet(a.outside, b.outside, a.count, b.count)
end

return M
