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
  return M.container(spec):run()
end

--- Run a container to its end with stdout and stderr captured: status,
--- stdout, stderr (see Container:output).
---@param spec pflask.Spec
---@return integer status
---@return string|nil stdout
---@return string|nil stderr
function M.capture(spec)
  return require("pflask.container").capture(spec)
end

--- Wait for the first of list (started containers) to end: returns it and
--- its exit status, after its cleanup; the others keep running. With
--- timeout (seconds) passing first: nil, "timeout".
---@param list pflask.Container[]
---@param timeout number|nil
---@return pflask.Container|nil
---@return integer|string
function M.wait_any(list, timeout)
  return require("pflask.container").wait_any(list, timeout)
end

--- Send sig (default SIGTERM) to every container this process started and
--- has not reaped, through each one's translate table, as a signal pflask
--- receives is. Returns how many.
---@param sig integer|nil
---@return integer
function M.kill_all(sig)
  return require("pflask.container").kill_all(sig)
end

--- Run fn when pflask ends, however the recipe ends (its normal end, an
--- error, a signal that ends it), after the containers still running
--- were closed; the last deferred runs first. For what the recipe made
--- itself: `pflask.defer(function() core.link_del("br0") end)`.
---@param fn function
function M.defer(fn)
  return require("pflask.container").defer(fn)
end

--- Sleep seconds (fractional) while the supervisor loop runs: containers'
--- terminals are relayed, signals passed on, ended containers reaped.
--- Returns 0, or early the seconds left and the signal number when pflask
--- receives a forwarded signal other than SIGWINCH.
---@param seconds number
---@return number
---@return integer|nil
function M.sleep(seconds)
  local left, sig = core.sleep(seconds)
  local container = package.loaded["pflask.container"]
  if sig and container and container.INTERRUPTS[sig] then
    container.interrupted = sig
    container.check_interrupted()
    container.interrupted = nil
  end
  return left, sig
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
