-- A test recipe for faults_spec: the classic command line, held at one
-- stage of a container's life so that the spec can kill pflask there.
--   pflask --recipe=hold.lua STAGE READY -- [classic options] [-- command]
-- STAGE: planning (before the plan), prepare (after every concern's
-- prepare, before clone), clone (after the parent's steps, before the
-- child is released), cleanup (when the cleanup starts, nothing removed
-- yet), running (no hold). READY: a file created when the stage is
-- reached, holding "SUPERVISOR_PID CONTAINER_PID" (0 before clone); pflask
-- then blocks until it is killed (opening a FIFO nobody writes). With
-- running, READY is written just before the child is released.
local pflask = require "pflask"
local cli = require "pflask.cli"
local core = require "pflask.core"

local stage, ready = arg[1], arg[2]
assert(arg[3] == "--", "usage: hold.lua STAGE READY -- OPTIONS")
local args = {}
for i = 4, #arg do args[#args + 1] = arg[i] end

local function say_ready(container)
  local tmp = ready .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(string.format("%d %d\n", core.getpid(), container and container.process and container:pid() or 0))
  f:close()
  assert(os.rename(tmp, ready))
end

local function hold(...)
  -- Called as hook(plan, container) or parent_setup(container).
  local container
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "table" and v.process then container = v end
  end
  say_ready(container)
  -- Opening a FIFO (the spec made READY.fifo) for reading blocks until a
  -- writer comes: none will.
  io.open(ready .. ".fifo", "r")
  error("hold.lua: the FIFO was opened")
end

local spec = cli.parse(args)
if stage == "planning" then hold() end
if stage == "clone" then spec.parent_setup = hold end
if stage == "running" then spec.parent_setup = say_ready end
local c = pflask.container(spec)
local concerns = c.plan.concerns
if stage == "prepare" then concerns[#concerns + 1] = { prepare = hold } end
-- Cleanup runs the concerns in reverse: the last one's first.
if stage == "cleanup" then concerns[#concerns + 1] = { cleanup = hold } end
return c:run()
