-- The terminal concern (see container.lua, CONCERNS): the container's own
-- session always, its own pty in place of each standard fd that is a
-- terminal (or when it detaches), the relay between the user's terminal
-- and it, --detach (a supervisor that serves the pty on a
-- unix socket) and --attach (the client). See pflask(1), TERMINAL.

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

---@class pflask.TerminalPlan
---@field detach boolean serve the pty on a socket instead of relaying it
---@field pty any|nil pflask.Pty, from prepare
---@field pty_fds integer[] the standard fds the pty replaces in the container
---@field null_stdin boolean stdin, a terminal nobody relays, becomes /dev/null
---@field relay_in integer the fd relayed to the pty (-1: none)
---@field relay_out integer the fd the pty's output is relayed to
---@field console string|nil the pty's slave path, bound on /dev/console
---@field report any|nil pflask.Report of a detached supervisor
---@field listener any|nil pflask.Listener of a detached supervisor
---@field saved_termios any|nil pflask.Termios: the user's terminal settings

--- No terminal of the host ever enters the container (TIOCSTI would type
--- into the caller's shell, /dev/tty would reach it): each of stdin,
--- stdout and stderr that is a terminal is replaced by the container's own
--- pty, which the supervisor relays; the others pass straight through.
--- spec.terminal = false relays no input: a stdin that is a terminal
--- becomes /dev/null (as with </dev/null), stdout and stderr still go
--- through the pty. A detached container, or a boot or spec.terminal =
--- true without any terminal, gets the pty on all three.
---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  plan.detach = spec.detach and true or false
  if spec.detach and spec.terminal == false then
    perr.option("--detach", "needs a terminal for the container")
  end
  local tty = {}
  -- A standard fd the spec replaces (plan.stdio) is not the caller's.
  local isatty = plan.host and plan.host.isatty or core.isatty
  for fd = 0, 2 do tty[fd] = not (plan.stdio and plan.stdio[fd]) and isatty(fd) end
  plan.null_stdin = spec.terminal == false and tty[0]
  if plan.null_stdin then tty[0] = false end
  plan.pty_fds = {}
  for fd = 0, 2 do
    if tty[fd] then plan.pty_fds[#plan.pty_fds + 1] = fd end
  end
  -- An init writes its boot messages to /dev/console: give a boot one
  -- even without a terminal, as systemd-nspawn does.
  local whole = plan.detach or (#plan.pty_fds == 0 and (spec.terminal == true or plan.boot))
  if whole then
    -- terminal = false (a boot's console): output only, stdin untouched.
    plan.pty_fds = spec.terminal == false and { 1, 2 } or { 0, 1, 2 }
  end
  -- OCI --console-socket: a pty on all three fds whose master goes to
  -- the socket's client (conmon, containerd's shim), never relayed here.
  if spec.console_socket ~= nil then
    if type(spec.console_socket) ~= "string" or spec.console_socket == "" then
      perr.option("console_socket", "must be a path")
    end
    if spec.detach or spec.terminal == false then
      perr.option("console_socket", "needs a terminal of its own (not with detach or terminal = false)")
    end
    plan.console_socket = spec.console_socket
    plan.console_size = spec.console_size
    plan.pty_fds = { 0, 1, 2 }
  end
  plan.wants_pty = #plan.pty_fds > 0
  -- Relay input only from a terminal (or, for a pty on all three, from
  -- whatever stdin is, as before); output to the first terminal of
  -- stdout, stderr, stdin (a terminal's fd 0 is opened for writing too).
  plan.relay_in = spec.terminal ~= false and (whole or tty[0]) and 0 or -1
  plan.relay_out = 1
  if not whole and not tty[1] then
    plan.relay_out = tty[2] and 2 or 0
  end
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
  plan.pty = perr.check("terminal", core.open_pty(not plan.console_socket and size_source() or nil))
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

--- Before the root's mounts: /dev/null is still the host's node here,
--- whatever the root holds.
---@param plan pflask.Plan
function M.child_mounts(plan)
  if plan.null_stdin then perr.check("terminal", core.null_stdin()) end
end

--- Before the reaper forks, so that pid 1 and the command share the
--- session whose controlling terminal the pty is. Without a pty, a
--- session of its own all the same: no controlling terminal, so /dev/tty
--- does not reach the caller's.
---@param plan pflask.Plan
function M.child_system(plan)
  if plan.report then plan.report:close() end -- pid 1 never execs: not its to keep
  if plan.pty then
    perr.check("terminal", plan.pty:make_controlling(plan.pty_fds))
  else
    perr.check("terminal", core.setsid())
  end
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

--- Supervisor, once the container started: hand its pty to the
--- supervisor loop, which relays it (or, detached, serves it on a socket,
--- after telling the original process the pid) whenever it runs.
---@param plan pflask.Plan
---@param container pflask.Container
function M.supervise(plan, container)
  if not plan.pty then return end
  local pid = container:pid()
  if plan.console_socket then
    local size = plan.console_size or {}
    perr.check("console_socket", plan.pty:send_master(plan.console_socket, size.width, size.height))
    plan.pty:close()
    plan.pty = nil
    return
  end
  if not plan.detach then
    perr.check("terminal", plan.pty:start_relay(container.process, plan.relay_in, plan.relay_out))
    return
  end
  local listener, msg = core.pty_listen(pid)
  if not listener then perr.raise(perr.FAILURE, "--detach: %s", msg) end
  plan.listener = listener
  sweep_sockets(listener:path())
  local ok, err = plan.report:done(pid)
  if not ok then perr.raise(perr.FAILURE, "--detach: %s", err) end
  core.syslog(string.format("container %d detached (socket %s)", pid, listener:path()))
  perr.check("--detach", plan.pty:start_serve(container.process, listener))
end

--- Around a wait on the container (Container:wait, pflask.wait_any):
--- the user's terminal is raw while the loop relays input from it, and
--- back to its settings when the wait returns (the container ended, or
--- the wait timed out and the recipe goes on).
---@param plan pflask.Plan
---@param on boolean
function M.waiting(plan, on)
  if not plan.pty or plan.detach then return end
  if on then
    -- Raw only when input comes from the terminal on stdin: otherwise the
    -- user's terminal keeps its line discipline and only shows output.
    if plan.relay_in == 0 and core.isatty(0) and not plan.saved_termios then
      plan.saved_termios = core.tty_raw(0)
    end
  elseif plan.saved_termios then
    plan.saved_termios:restore()
    plan.saved_termios = nil
  end
end

--- The container ended (its pty is drained): log it when detached.
---@param plan pflask.Plan
---@param container pflask.Container
function M.ended(plan, container, status, how, code)
  if plan.detach and plan.listener then
    core.syslog(string.format("container %d ended: %s %d (status %d)", container:pid(), how, code, status))
  end
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
