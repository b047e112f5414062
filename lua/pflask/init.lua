-- pflask: the library recipes use.
--
--   local pflask = require "pflask"
--   local status = pflask.run{ command = {"hostname"}, hostname = "box" }
--
-- See doc/lua-api.md. Modules load lazily: start-up cost is paid only for
-- what a recipe uses.

local core = require "pflask.core"

local M = {
  core = core,
  error = require "pflask.error",
  version = core.version,
}

--- Plan a container from a spec (raises a pflask.Error on bad input,
--- creates nothing yet); :start(), :wait() or :run() it.
---@param spec pflask.Spec
---@return pflask.Container
function M.container(spec)
  return require("pflask.container").new(spec)
end

--- Run a container to its end; returns the exit status (128+N when its
--- command was killed by signal N).
---@param spec pflask.Spec
---@return integer
function M.run(spec)
  --- Let a container created with spec.start_fifo = fifo run (OCI
--- `start`), from any process; see container.start_fifo.
---@param fifo string
---@param timeout number|nil seconds
---@return true|nil ok
---@return string|nil message
function M.start_fifo(fifo, timeout)
  return require("pflask.container").start_fifo(fifo, timeout)
end

return M.container(spec):run()
end

--- Let a container created with spec.start_fifo = fifo run (OCI
--- `start`), from any process; see container.start_fifo.
---@param fifo string
---@param timeout number|nil seconds
---@return true|nil ok
---@return string|nil message
function M.start_fifo(fifo, timeout)
  return require("pflask.container").start_fifo(fifo, timeout)
end

return M
