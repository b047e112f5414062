-- Host paths and files as the supervisor sees them.

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

--- path made absolute against the current directory.
---@param path string
---@return string
function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return perr.check("getcwd", core.getcwd()) .. "/" .. path
end

--- The last component of path ("systemd" for "/lib/systemd/systemd/").
---@param path string
---@return string
function M.basename(path)
  return path:match("([^/]*)/*$")
end

--- Contents of a host file, or nil when it cannot be read.
---@param file string
---@return string|nil
function M.read_file(file)
  local f = io.open(file, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

return M
