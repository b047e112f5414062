-- Errors that carry an exit status.
--
-- pflask's own failures exit 125, a command that cannot be executed 126,
-- one that is not found 127 (see doc/errors.md). A recipe raises them with
-- error.raise (or the option-naming shorthand error.option) and the host
-- (src/main.c) prints "pflask: MESSAGE" and exits with the status. Any other
-- Lua error is a bug or a recipe error and exits 125 as well.

---@class pflask.Error
---@field status integer exit status pflask ends with
---@field message string one line, without the "pflask: " prefix
---@field errno integer|nil the system error behind it, when there is one

local M = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.message end
Error.__name = "pflask.Error"

M.FAILURE = 125        -- pflask itself failed
M.CANNOT_EXECUTE = 126 -- the command exists but cannot be executed
M.NOT_FOUND = 127      -- the command does not exist

--- Build an error object without raising it.
---@param status integer
---@param message string
---@param errno integer|nil
---@return pflask.Error
function M.new(status, message, errno)
  -- Messages quote what the user (or a hostile spec) wrote: a newline or
  -- an escape sequence in it would forge lines or drive the terminal, and
  -- the message must stay one line.
  message = tostring(message):gsub("%c", function(c)
    return c == "\n" and "\\n" or c == "\t" and "\\t" or string.format("\\x%02x", c:byte())
  end)
  return setmetatable({ status = status, message = message, errno = errno }, Error)
end

--- Is `v` an error object made by this module?
---@param v any
---@return boolean
function M.is(v)
  return getmetatable(v) == Error
end

--- Raise an error with an exit status and a formatted message.
---@param status integer
---@param fmt string
---@param ... any
function M.raise(status, fmt, ...)
  error(M.new(status, string.format(fmt, ...)), 0)
end

--- Raise a usage error about a command-line option (exit 125):
--- `error.option("--mount", "'%s' is not a mount type", t)` gives
--- "--mount: 'bnd' is not a mount type".
---@param option string the option as the user spells it, e.g. "--mount"
---@param fmt string
---@param ... any
function M.option(option, fmt, ...)
  error(M.new(M.FAILURE, option .. ": " .. string.format(fmt, ...)), 0)
end

--- Raise a failure of a step (exit 125) from a `nil, message, errno` triple
--- returned by a pflask.core function, so callers can write
--- `check("chroot", core.chroot(dir))`.
---@param step string what was being done, names the step in the message
---@param ok any first return value of the core call
---@param message string|nil
---@param errno integer|nil
---@return any ok the first value, when it is not nil/false
function M.check(step, ok, message, errno, ...)
  if ok == nil or ok == false then
    error(M.new(M.FAILURE, step .. ": " .. tostring(message), errno), 0)
  end
  return ok, message, errno, ...
end

return M
