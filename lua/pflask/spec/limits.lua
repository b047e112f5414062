-- Parse resource limits: --memory=SIZE, --pids-max=N, --cpus=N.

local error_ = require("pflask.error")

local M = {}

local UNITS = { [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3, t = 1024 ^ 4 }

-- Bytes a cgroup can be limited to: 2^53 keeps arithmetic exact and is far
-- above any machine.
local MAX_BYTES = 2 ^ 53

--- A memory size: bytes, or a number with a binary suffix K, M, G, T (any
--- case, optionally followed by "B" or "iB"): "512M", "1.5G", "65536".
---@param value string|integer
---@param option string for messages
---@return integer bytes
function M.memory(value, option)
  if math.type(value) == "integer" then
    if value < 4096 then error_.option(option, "%d bytes is below one page (4096)", value) end
    return value
  end
  if type(value) ~= "string" then error_.option(option, "'%s' is not a size", tostring(value)) end
  local num, unit = value:match("^(%d+%.?%d*)([KkMmGgTt]?)$")
  if not num then
    num, unit = value:match("^(%d+%.?%d*)([KkMmGgTt])i?[Bb]$")
  end
  local n = num and tonumber(num)
  if not n then
    error_.option(option, "'%s' is not a size (bytes, or a number with K, M, G or T: 512M)", value)
  end
  local bytes = n * UNITS[unit:lower()]
  if bytes >= MAX_BYTES then error_.option(option, "'%s' is too large", value) end
  bytes = math.floor(bytes)
  if bytes < 4096 then error_.option(option, "'%s' is below one page (4096 bytes)", value) end
  return math.tointeger(bytes)
end

--- A process count: a positive integer.
---@param value string|integer
---@param option string
---@return integer
function M.pids(value, option)
  local n = math.type(value) == "integer" and value
    or (type(value) == "string" and value:match("^%d+$") and #value <= 9 and math.tointeger(tonumber(value)))
  if not n or n < 1 then
    error_.option(option, "'%s' is not a positive number of processes", tostring(value))
  end
  return n
end

--- CPU bandwidth in CPUs: a positive decimal, at least 0.01 ("1.5" is one
--- and a half CPU's worth of time per period). Returns the quota in
--- microseconds per PERIOD.
M.PERIOD = 100000
---@param value string|number
---@param option string
---@return integer quota microseconds per M.PERIOD
function M.cpus(value, option)
  local n
  if type(value) == "number" then
    n = value
  elseif type(value) == "string" and (value:match("^%d+%.?%d*$") or value:match("^%.%d+$")) then
    n = tonumber(value)
  end
  if not n or n ~= n or n < 0.01 or n > 100000 then
    error_.option(option, "'%s' is not a number of CPUs (0.01 or more, e.g. 1.5)", tostring(value))
  end
  return math.tointeger(math.floor(n * M.PERIOD + 0.5))
end

return M
