-- The terminal concern (see container.lua, CONCERNS): the container's own
-- pty when pflask runs on a terminal (or detaches), the relay between the
-- user's terminal and it, --detach (a supervisor that serves the pty on a
-- unix socket) and --attach (the client). See pflask(1), TERMINAL.

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

---@class pflask.TerminalPlan
---@field detach boolean serve the pty on a socket instead of relaying it
---@field pty any|nil pflask.Pty, from prepare
---@field console string|nil the pty's slave path, bound on /dev/console
---@field report any|nil pflask.Report of a detached supervisor
---@field listener any|nil pflask.Listener of a detached supervisor
---@field saved_termios any|nil pflask.Termios: the user's terminal settings

--- A pty when stdin is a terminal, or when detaching. spec.terminal = false
--- never makes one (the standard fds pass straight through).
---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  plan.detach = spec.detach and true or false
  if spec.detach and spec.terminal == false then
    perr.option("--detach", "needs a terminal for the container")
  end
  -- An init writes its boot messages to /dev/console: give a boot one
  -- even without a terminal, as systemd-nspawn does.
  plan.wants_pty = plan.detach or spec.terminal == true
    or (spec.terminal ~= false and (core.isatty(0) or plan.boot))
end

--- The terminal whose size the container's starts with.
local function size_source()
  for fd = 0, 2 do
    if core.isatty(fd) then return fd end
  end
  return nil
end

--- Open the pty; with --detach, fork first: the original process prints
--- the pid and exits here, the new one goes on as the detached supervisor.
---@param plan pflask.Plan
function M.prepare(plan)
  if not plan.wants_pty then return end
  plan.pty = perr.check("terminal", core.open_pty(size_source()))
  plan.console = plan.pty:name()
  if not plan.detach then return end
  local what, value = core.daemonize()
  perr.check("--detach", what, value)
  if what == "detached" then
    io.stdout:write(string.format("pflask: detached, pid %d (reattach: pflask --attach=%d)\n", value, value))
    core.exit(0)
  elseif what == "failed" then
    core.exit(value) -- the supervisor already said why
  end
  plan.report = value
end

--- Before the reaper forks, so that pid 1 and the command share the
--- session whose controlling terminal the pty is.
---@param plan pflask.Plan
function M.child_system(plan)
  if plan.report then plan.report:close() end -- pid 1 never execs: not its to keep
  if plan.pty then perr.check("terminal", plan.pty:make_controlling()) end
end

--- Is process `pid` alive (a zombie is gone)?
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  local stat = f and f:read("a")
  if f then f:close() end
  return stat ~= nil and stat:match("^%d+ %(.*%) (%a)") ~= "Z"
end

--- A supervisor killed with SIGKILL cannot remove its socket: remove the
--- sockets, next to ours, of containers that are gone (each is named
--- after its container's pid), as cgroups are swept.
local function sweep_sockets(path)
  local dir = path:match("^(.*)/[^/]+$")
  for _, name in ipairs(dir and core.dir_entries(dir) or {}) do
    local pid = name:match("^(%d+)%.sock$")
    if pid and not alive(pid) then
      local st = core.lstat(dir .. "/" .. name)
      if st and st.type == "socket" then os.remove(dir .. "/" .. name) end
    end
  end
end

--- Detached supervisor: the socket, tell the original process, serve.
local function serve(plan, container, translate)
  local pid = container:pid()
  local listener, msg = core.pty_listen(pid)
  if not listener then return nil, "--detach: " .. msg end
  plan.listener = listener
  sweep_sockets(listener:path())
  local ok, err = plan.report:done(pid)
  if not ok then return nil, "--detach: " .. err end
  core.syslog(string.format("container %d detached (socket %s)", pid, listener:path()))
  local status, how, code = plan.pty:serve(container.process, listener, translate)
  if status then
    core.syslog(string.format("container %d ended: %s %d (status %d)", pid, how, code, status))
  else
    core.syslog(string.format("container %d: %s", pid, tostring(how)))
  end
  return status, how, code
end

--- Wait for the container: relay its pty, serve it when detached, or
--- plain Process:wait without a pty.
---@param plan pflask.Plan
---@param container pflask.Container
---@param translate table<integer, integer>|nil
---@return integer|nil status
---@return string how_or_message
---@return integer|nil code
function M.wait(plan, container, translate)
  if not plan.pty then return container.process:wait(translate) end
  if plan.detach then return serve(plan, container, translate) end
  -- Raw only when stdin is the terminal: with stdin redirected it is
  -- stdout's size that counts and there is nothing to make raw.
  if core.isatty(0) then plan.saved_termios = core.tty_raw(0) end
  local status, how, code = plan.pty:relay(container.process, translate)
  if plan.saved_termios then plan.saved_termios:restore() end
  return status, how, code
end

---@param plan pflask.Plan
function M.cleanup(plan)
  if plan.saved_termios then plan.saved_termios:restore() end
  if plan.listener then plan.listener:close() end
  if plan.report then plan.report:close() end
  if plan.pty then plan.pty:close() end
end

--- pflask --attach=PID: relay this terminal to a detached container until
--- it ends (returns its exit status) or the user detaches with Ctrl-@
--- (returns 0). Raises a pflask.Error (125) when pid is no detached
--- container of ours.
---@param pid integer|string a pid, or a name (pflask.registry)
---@return integer status
function M.attach(pid)
  if type(pid) == "string" then
    local rec = require("pflask.registry").find(pid)
    if not rec or not rec.pid then perr.raise(perr.FAILURE, "--attach: no running container named '%s'", pid) end
    pid = rec.pid
  end
  local conn, msg = core.pty_connect(pid)
  if not conn then perr.raise(perr.FAILURE, "--attach: %s", msg) end
  local saved = core.isatty(0) and core.tty_raw(0) or nil
  local what, status = conn:relay()
  if saved then saved:restore() end
  conn:close()
  if what == "detached" then
    io.stderr:write(string.format("%spflask: detached, pid %d (reattach: pflask --attach=%d)\n",
                                  saved and "\n" or "", pid, pid))
    return 0
  elseif what == "exited" then
    return status
  end
  perr.raise(perr.FAILURE, "--attach: %s", tostring(status))
end

return M
