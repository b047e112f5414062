-- Run a command in a running container (c:exec, `pflask --exec=PID|NAME`),
-- as docker exec and nsenter do: in a child made for it, join every
-- namespace the container has of its own (user first, mount last, then its
-- root), its cgroups (written from outside, before the child goes on), fork
-- once more so that the command is in its pid namespace, and give the
-- command the container's confinement (bounding set, capabilities,
-- no_new_privs, rlimits, seccomp: the exec plan again). The caller itself
-- never calls setns: a failure leaves it in its own namespaces.

local core = require "pflask.core"
local perr = require "pflask.error"
local users = require "pflask.users"

local M = {}

---@class pflask.ExecTarget
---@field pid integer the container's first process, as the caller sees it
---@field cgroups string[] cgroup directories to join
---@field caps {keep: integer, ambient: integer}|nil
---@field no_new_privs boolean
---@field user pflask.User|nil the container's user (the default)
---@field groups integer[]|nil
---@field env table<string, string> the container's command's environment
---@field rlimits table[] {name, soft, hard}
---@field seccomp_bpf string|nil
---@field ns table<string, integer>|nil namespace inodes the record promised
---@field start integer|nil the start time of pid the record promised (core.start_time)

---@class pflask.ExecOptions
---@field user string|integer|nil a user of the container (its /etc/passwd), else the container's
---@field cwd string|nil inside, default "/"
---@field env table<string, string>|nil added to (and overriding) the container's environment
---@field stdin string|nil "inherit" (default), "null" or a path (opened outside)
---@field stdout string|nil likewise
---@field stderr string|nil likewise
---@field gid integer|nil with a user: the primary gid as given
---@field groups integer[]|nil with a user: the supplementary gids as given
---@field detach boolean|nil return at once, `0, pid`: pid is the command's reaper (exits with its status), which outlives the caller (OCI exec --detach); needs a pid namespace
---@field console_socket string|nil a pty on the three fds, its master sent to this unix socket (SCM_RIGHTS), not relayed (OCI --console-socket)

local function fail(fmt, ...)
  perr.raise(perr.FAILURE, "exec: " .. fmt, ...)
end

--- The namespaces the record promised are still the container's: a pid
--- reused by another process, or a namespace changed, is refused.
local function check_namespaces(t)
  if not t.ns then return end
  local now = core.ns_inodes(t.pid)
  for name, ino in pairs(t.ns) do
    if now[name] ~= ino then
      fail("%d no longer has the %s namespace it was started with", t.pid, name)
    end
  end
end

--- The cgroups to join: each one pflask made for the container, or the
--- one below it where the container's first process is now (an init
--- such as systemd moves itself to a child, init.scope: a cgroup v2 with
--- controllers enabled for its children takes no process itself). Never
--- one outside those pflask made.
---@param pid integer
---@param made string[]
---@return string[]
function M.cgroups(pid, made)
  if #made == 0 then return made end
  local h = require("pflask.cgroups").facts().hierarchies
  local mounts = {}
  if h.v2 then mounts[#mounts + 1] = { m = h.v2, v2 = true } end
  for ctrl, m in pairs(h.v1) do mounts[#mounts + 1] = { m = m, ctrl = ctrl } end
  local now = {}
  for line in (require("pflask.path").read_file("/proc/" .. pid .. "/cgroup") or ""):gmatch("[^\n]+") do
    local id, ctrls, p = line:match("^(%d+):([^:]*):(.*)$")
    if id then
      for _, mt in ipairs(mounts) do
        local match = (mt.v2 and id == "0" and ctrls == "")
        if mt.ctrl then
          for c in ctrls:gmatch("[^,]+") do if c == mt.ctrl then match = true end end
        end
        if match then
          local root = mt.m.root
          if root ~= "/" and p:sub(1, #root) == root then p = p:sub(#root + 1) end
          now[#now + 1] = (mt.m.dir .. p):gsub("/+$", "")
        end
      end
    end
  end
  local out = {}
  for i, dir in ipairs(made) do
    out[i] = dir
    for _, cand in ipairs(now) do
      if cand:sub(1, #dir + 1) == dir .. "/" and not cand:find("/%.%.?/") then out[i] = cand end
    end
  end
  return out
end

local STDIO = { "stdin", "stdout", "stderr" }

--- An fd for one of stdin/stdout/stderr, opened outside (a path is the
--- caller's path), or nil to inherit.
local function open_stdio(opts, fd)
  local what = opts[STDIO[fd + 1]]
  if what == nil or what == "inherit" then return nil end
  if io.type(what) == "file" then -- a pipe end of core.pipe(), the caller's own
    if core.isatty(core.fileno(what)) then fail("%s: the file is a terminal", STDIO[fd + 1]) end
    return what
  end
  if type(what) ~= "string" then fail("%s must be \"inherit\", \"null\", a path or an open file", STDIO[fd + 1]) end
  local p = what == "null" and "/dev/null" or what
  local f, msg = io.open(p, fd == 0 and "rb" or "ab")
  if not f then fail("%s: %s", STDIO[fd + 1], msg) end
  return f
end

--- Run argv in the container t. Returns its status (as Container:wait).
---@param t pflask.ExecTarget
---@param argv string[]
---@param opts pflask.ExecOptions|nil
---@return integer status
function M.run(t, argv, opts)
  opts = opts or {}
  if type(argv) ~= "table" or #argv == 0 then fail("needs a command") end
  for i, a in ipairs(argv) do
    if type(a) ~= "string" then fail("argument %d is not a string", i) end
  end
  local start = core.start_time(t.pid)
  if not start or (t.start and t.start ~= start) then fail("no container with pid %d", t.pid) end
  check_namespaces(t)
  local user, groups = t.user, t.groups
  if opts.user ~= nil then
    local why
    user, why = users.lookup(opts.user, "/proc/" .. t.pid .. "/root")
    if not user then fail("'%s' is not a user of the container%s", tostring(opts.user), why and (": " .. why) or "") end
    groups = user.groups
  end
  -- Numeric ids as given (OCI exec's process.user gid, additionalGids).
  if opts.gid ~= nil or opts.groups ~= nil then
    if not user then fail("gid and groups need a user") end
    local function gid(v)
      if math.type(v) ~= "integer" or v < 0 or v > 0xfffffffe then fail("'%s' is not a gid", tostring(v)) end
      return v
    end
    local u = {}
    for k, v in pairs(user) do u[k] = v end
    if opts.gid ~= nil then u.gid = gid(opts.gid) end
    user = u
    if opts.groups ~= nil then
      groups = {}
      for i, g in ipairs(opts.groups) do groups[i] = gid(g) end
    end
  end
  local env = {}
  for k, v in pairs(t.env or {}) do env[k] = v end
  -- Socket activation was the container's command's, not ours.
  env.LISTEN_FDS, env.LISTEN_PID, env.LISTEN_FDNAMES = nil, nil, nil
  if opts.user ~= nil then env.USER, env.LOGNAME, env.HOME = user.name, user.name, user.home or env.HOME end
  for k, v in pairs(opts.env or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then fail("env must map strings to strings") end
    env[k] = v
  end
  env.PATH = env.PATH or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  local cwd = opts.cwd or "/"
  local files = {}
  for fd = 0, 2 do files[fd] = open_stdio(opts, fd) end

  -- No terminal of the caller's enters the container: a terminal among
  -- the inherited stdio is replaced by a pty of the command's own, relayed
  -- (as the container's own terminal is, pflask.terminal).
  local tplan = {}
  require("pflask.terminal").plan({}, tplan)
  for fd = 0, 2 do
    if files[fd] then
      for i = #tplan.pty_fds, 1, -1 do if tplan.pty_fds[i] == fd then table.remove(tplan.pty_fds, i) end end
    end
  end
  -- OCI exec --tty --console-socket: a pty the command opens inside the
  -- container (its own devpts: the tty has a name there), its master
  -- sent on a socket connected now, while the path is in sight.
  local console
  if opts.console_socket then
    tplan.pty_fds = {}
    console = perr.check("exec: console socket", core.console_connect(opts.console_socket))
  end
  if opts.detach and #tplan.pty_fds > 0 then
    fail("detach: the caller's terminal cannot be relayed by a process that is gone")
  end
  local pty
  if #tplan.pty_fds > 0 then
    local src
    for fd = 0, 2 do if core.isatty(fd) then src = fd; break end end
    pty = perr.check("exec: terminal", core.open_pty(src))
  end

  -- A command without no_new_privs or CAP_SYS_ADMIN: the filter is
  -- loaded before the user switch (pflask.sandbox.needs_early_load).
  local early = t.seccomp_bpf ~= nil and require("pflask.sandbox").needs_early_load(t.no_new_privs, user, t.caps)
  local xplan = {
    pass_fds = {}, rlimits = t.rlimits or {}, no_new_privs = t.no_new_privs,
    seccomp = not early and t.seccomp_bpf or nil,
  }
  local proc, chan, errno = core.clone({}, function(ch)
    -- Before anything of the container can see it: not ptrace-able by
    -- the container's root until it execs (runc's CVE-2016-9962).
    perr.check("exec", core.set_dumpable(false))
    if not ch:wait() then core.exit(perr.FAILURE) end
    for fd = 0, 2 do
      if files[fd] then perr.check("exec: " .. STDIO[fd + 1], core.dup2(files[fd], fd)) end
    end
    local joined = perr.check("exec: join", core.join(t.pid, nil, start))
    local pidns = false
    for _, n in ipairs(joined) do if n == "pid" then pidns = true end end
    -- In the container's pid namespace only once forked: this process
    -- stays between, passes signals on and exits with the command's status.
    if opts.detach then
      -- This process stays between as the command's reaper, adopted by
      -- whoever adopts orphans of the caller (conmon): it must outlive
      -- the caller, and be in the pid namespace's parent to do so.
      if not pidns then fail("detach: needs a container with a pid namespace of its own") end
      perr.check("exec: detach", core.keep_after_parent())
    end
    if pidns then perr.check("exec: fork", core.fork_reaper(ch)) end
    if console then
      perr.check("exec: terminal", console:attach())
    elseif pty then
      perr.check("exec: terminal", pty:make_controlling(tplan.pty_fds))
    else
      perr.check("exec: session", core.setsid())
    end
    local x = perr.check("exec", core.exec_plan(xplan))
    if t.caps then
      perr.check("exec: capabilities", core.caps_drop_bounding(t.caps.keep, (t.caps.ambient or 0) ~= 0))
    end
    if early then perr.check("exec: seccomp", core.seccomp_load(t.seccomp_bpf)) end
    if user then perr.check("exec: user", core.switch_user(user.uid, user.gid, groups)) end
    if t.caps then perr.check("exec: capabilities", core.caps_apply(t.caps.keep, t.caps.ambient or 0)) end
    perr.check("exec: cwd", core.chdir(cwd))
    local _, msg, errnum, status = core.exec(argv[1], argv, env, x, ch)
    error(perr.new(status, msg, errnum), 0)
  end)
  -- The child has its copies; a file of the caller's stays the caller's.
  for fd = 0, 2 do
    if files[fd] and files[fd] ~= opts[STDIO[fd + 1]] then files[fd]:close() end
  end
  if console then console:close() end
  if not proc then
    if pty then pty:close() end
    fail("%s", chan)
  end
  local ok, err = pcall(function()
    for _, dir in ipairs(M.cgroups(t.pid, t.cgroups or {})) do
      perr.check("exec: cgroup", core.cgroup_attach(dir, proc:pid()))
    end
    perr.check("exec", chan:release())
  end)
  if not ok then
    chan:close()
    proc:kill(core.signals.KILL)
    proc:wait()
    if pty then pty:close() end
    error(err, 0)
  end
  local started, msg, child_errno, status = chan:result()
  chan:close()
  if not started then
    proc:wait()
    if pty then pty:close() end
    if started == nil then perr.raise(perr.FAILURE, "exec: %s", tostring(msg)) end
    error(perr.new(status, msg, child_errno), 0)
  end
  -- The reaper's pid, which exits with the command's status.
  if opts.detach then return 0, proc:pid() end
  local how
  if pty then
    local saved = (tplan.relay_in == 0 and core.isatty(0)) and core.tty_raw(0) or nil
    status, how = pty:relay(proc, nil, tplan.relay_in, tplan.relay_out)
    if saved then saved:restore() end
    pty:close()
  else
    status, how = proc:wait()
  end
  if not status then perr.raise(perr.FAILURE, "exec: wait: %s", tostring(how)) end
  return status
end

--- `pflask --exec=PID|NAME -- CMD`: the caller's container of that name
--- or pid, from the registry.
---@param id integer|string
---@param argv string[]
---@param opts pflask.ExecOptions|nil
---@return integer status
function M.by_id(id, argv, opts)
  local registry = require "pflask.registry"
  local rec = registry.find(id)
  if not rec or not rec.pid then
    if math.type(id) == "integer" then
      perr.raise(perr.FAILURE, "--exec: %d is not a running container of yours (pflask --list)", id)
    end
    perr.raise(perr.FAILURE, "--exec: no running container named '%s'", tostring(id))
  end
  local t = registry.target(rec)
  local ok, status = pcall(M.run, t, argv, opts)
  if ok then return status end
  if type(status) == "table" and status.status == perr.FAILURE then
    status.message = status.message:gsub("^exec: ", "--exec: ")
  end
  error(status, 0)
end

return M
