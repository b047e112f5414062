-- A container spec becomes a plan (everything resolved in the supervisor,
-- before anything is created), then ordered steps: the parent's from
-- outside, the child's from inside, then exec. See doc/lua-api.md for the
-- spec and doc/architecture.md for the process model.

local core = require "pflask.core"
local perr = require "pflask.error"
local users = require "pflask.users"
local path = require "pflask.path"

local M = {}

M.DEFAULT_NAMESPACES = { mount = true, pid = true, ipc = true, uts = true, cgroup = true }
M.DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

-- Spec fields and the classic options that set them, so that messages
-- name what the user typed.
local OPTION = {
  root = "--chroot", chdir = "--chdir", hostname = "--hostname", user = "--user",
  uid_map = "--user-map", gid_map = "--user-map", command = "command", pass_fds = "--keep-fd",
  setenv = "--setenv", rlimits = "--rlimit",
}

-- The highest fd --keep-fd / pass_fds accepts: far above what a caller
-- hands on in practice, and a bound on what the child walks.
M.MAX_PASS_FD = 65535

-- File names that mean "this command is an init system": it runs as pid 1
-- itself instead of under pflask's reaper.
local INIT_NAMES = { init = true, systemd = true }

-- Concerns: modules that add steps to every container (filesystem,
-- network, cgroups, privileges), so that each subsystem lives in its own
-- module. A concern is a table with any of these functions, called in this
-- order (each concern in list order, cleanup in reverse):
--
--   plan(spec, plan)          supervisor: check and resolve its part of the
--                             spec into plan; raise on bad input; create
--                             nothing
--   prepare(plan)             supervisor, before clone: create what must
--                             exist first (temporary dirs, cgroups)
--   parent(plan, container)   supervisor, after the id maps, before the
--                             child is released (move interfaces, join
--                             cgroups); container:pid() is the child
--   child_mounts(plan)        child, before pivot_root (root is plan.root)
--   child_system(plan)        child, after pivot_root (loopback up, ...)
--   child_privileges(plan)    child, before the user switch (bounding
--                             set, securebits)
--   child_exec(plan)          child, after the user switch, right before
--                             exec (capability sets, no_new_privs); pid 1
--                             then starts the command and stays as its
--                             init, with the same identity
--   started(plan, container)  supervisor, once every child stage ran and
--                             the command was exec'd (or waits for its
--                             start FIFO): record what only now is known
--                             (pflask.registry)
--   supervise(plan, container) supervisor, once the command started: hand
--                             what the supervisor loop must handle while
--                             the container runs to core.supervisor() (the
--                             terminal: its pty relay or detached server)
--   waiting(plan, on)         supervisor, around each wait on the container
--                             (on true, then false when the wait returns)
--   ended(plan, container, status, how, code)
--                             supervisor: the container ended and was
--                             reaped, before cleanup
--   cleanup(plan, container)  supervisor, after the container ended or
--                             failed to start, also after a partial
--                             prepare: undo what prepare and parent made;
--                             idempotent, must not raise
--
-- Each concern comes with a cheap test of whether a spec needs it: a
-- module is loaded only then, which keeps the start-up of a plain
-- container short.
local function nonempty(t) return type(t) == "table" and next(t) ~= nil end
-- A root built from nothing (pflask.cgroups.builds_root, without loading
-- the module for every container).
local function builds_root(spec)
  local first = type(spec.mounts) == "table" and spec.mounts[1]
  return type(first) == "table" and first.type == "tmp" and first.target == "/"
end

-- The start FIFO (spec.start_fifo): made before the child, removed with
-- the container.
local START_FIFO = {
  prepare = function(plan)
    perr.check("start_fifo", core.mkfifo(plan.start_fifo))
    plan.start_fifo_made = true
  end,
  cleanup = function(plan)
    if plan.start_fifo_made then os.remove(plan.start_fifo); plan.start_fifo_made = nil end
  end,
}

-- Standard I/O (spec.stdin, stdout, stderr; plan.stdio): "inherit"
-- (nil), "null", a path (opened here, outside, with the caller's rights:
-- never a path of the container's), a Lua io file (a pipe end of
-- core.pipe(), or any open file) or "capture" (a memfd of pflask's, read
-- back by Container:output()). The child puts them on 0, 1, 2 before its
-- root exists; the supervisor keeps only what it must read back.
local STDIO_NAMES = { [0] = "stdin", "stdout", "stderr" }

local function stdio_fail(fd, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, STDIO_NAMES[fd], ...)
end

--- A file that is a terminal never enters the container as such (the
--- terminal concern replaces the caller's own by a pty).
local function check_not_tty(fd, f, what)
  if core.isatty(core.fileno(f)) then
    stdio_fail(fd, "%s is a terminal (a terminal of the host never enters the container; leave it \"inherit\" to get a pty)", what)
  end
end

local function plan_stdio(spec)
  local out = {}
  for fd = 0, 2 do
    local v = spec[STDIO_NAMES[fd]]
    if v == nil or v == "inherit" then
      -- inherited: the terminal concern deals with a terminal
    elseif v == "null" or v == "capture" then
      if v == "capture" and fd == 0 then stdio_fail(fd, "cannot be \"capture\"") end
      out[fd] = { kind = v }
    elseif type(v) == "string" then
      if v == "" then stdio_fail(fd, "must be \"inherit\", \"null\", \"capture\", a path or a file") end
      out[fd] = { kind = "path", path = path.absolute(v) }
    elseif io.type(v) == "file" then
      check_not_tty(fd, v, "the file")
      out[fd] = { kind = "file", file = v }
    else
      stdio_fail(fd, "must be \"inherit\", \"null\", \"capture\", a path or an open file, not %s",
                 io.type(v) or type(v))
    end
  end
  return out
end

local STDIO = {
  -- Supervisor, before clone: open what is named, outside.
  prepare = function(plan)
    for fd, s in pairs(plan.stdio) do
      if s.kind == "null" or s.kind == "path" then
        local p = s.kind == "null" and "/dev/null" or s.path
        local f, msg = io.open(p, fd == 0 and "rb" or "ab")
        if not f then stdio_fail(fd, "%s", msg) end
        s.file, s.opened = f, true
        if s.kind == "path" then check_not_tty(fd, f, "'" .. s.path .. "'") end
      elseif s.kind == "capture" then
        s.file = perr.check(STDIO_NAMES[fd], core.memfd("pflask-" .. STDIO_NAMES[fd]))
        s.opened = true
      end
    end
  end,
  -- Child, first of the mounts: the host's files onto 0, 1, 2.
  child_mounts = function(plan)
    for fd, s in pairs(plan.stdio) do perr.check(STDIO_NAMES[fd], core.dup2(s.file, fd)) end
  end,
  -- Supervisor, the child has its copies: only a capture stays open.
  parent = function(plan)
    for _, s in pairs(plan.stdio) do
      if s.opened and s.kind ~= "capture" then s.file:close(); s.opened = false end
    end
  end,
  cleanup = function(plan)
    for _, s in pairs(plan.stdio) do
      if s.opened and s.kind ~= "capture" then pcall(s.file.close, s.file); s.opened = false end
    end
  end,
}

M.CONCERNS = {
  -- First: --detach forks the supervisor in its prepare, before any other
  -- concern creates something tied to the process that stays behind.
  -- Always: every container gets a session of its own, and any terminal
  -- among the standard fds is replaced by a pty.
  { "pflask.terminal", function() return true end },
  -- Before the mounts: the child's 0, 1, 2 are the host's files first.
  { STDIO, function(_, plan) return next(plan.stdio) ~= nil end },
  -- Second: the record names the supervisor that stays (after --detach).
  { "pflask.registry", function() return true end },
  { "pflask.userns", function(_, plan) return plan.namespaces.user end },
  -- Also for the device policy of a root container with a --chroot
  -- (pflask.cgroups.needs_device_policy, same test).
  { "pflask.cgroups", function(spec, plan)
      return nonempty(spec.cgroups) or nonempty(spec.limits) or plan.delegate_cgroup or spec.devices ~= nil
        or spec.cpuset ~= nil
        or (plan.host.euid == 0 and (plan.root ~= nil or builds_root(spec))) end },
  { "pflask.mounts", function() return true end },
  { "pflask.boot", function(_, plan) return plan.boot end },
  { "pflask.network", function(spec, plan) return plan.namespaces.net or nonempty(spec.netifs) end },
  -- Always: every container drops the capabilities that act on the whole
  -- host (the module is small and precompiled into the executable).
  { "pflask.privileges", function() return true end },
  -- After privileges (whether the command holds CAP_SYS_ADMIN to load
  -- its seccomp filter): always, the default filter is on by default.
  { "pflask.sandbox", function() return true end },
  { START_FIFO, function(spec) return spec.start_fifo ~= nil end },
  -- Last: it registers the container once the others placed it. In auto
  -- mode a host without systemd costs one stat.
  { "pflask.machined", function(spec, plan)
      return spec.register == true or (spec.register == nil and plan.host.euid == 0
        and core.stat("/run/systemd/system") ~= nil) end },
}

---@class pflask.HostFacts
---@field euid integer
---@field egid integer
---@field uid integer
---@field pid integer
---@field isatty fun(fd: integer): boolean
---@field fd_is_open fun(fd: integer): boolean, string|nil
---@field getpwnam fun(key: string|integer): table|nil
---@field environ fun(): table<string, string>

--- What plan() asks the host, as one table: unit specs pass a fake one
--- (plan(spec, host)) to test the decisions without root or a terminal.
--- The concerns read plan.host too (terminal, userns); what they look at
--- on disk (a root, a mount source) is still read from the disk.
---@return pflask.HostFacts
function M.host_facts()
  return {
    euid = core.geteuid(), egid = core.getegid(), uid = core.getuid(), pid = core.getpid(),
    isatty = core.isatty, fd_is_open = core.fd_is_open, getpwnam = core.getpwnam,
    environ = core.environ,
  }
end

local function concern_modules(spec, plan)
  local mods = {}
  for _, c in ipairs(M.CONCERNS) do
    if c[2](spec, plan) then mods[#mods + 1] = type(c[1]) == "table" and c[1] or require(c[1]) end
  end
  return mods
end

--- Run one stage of every concern that has it.
local function run_stage(plan, stage, ...)
  for _, concern in ipairs(plan.concerns) do
    if concern[stage] then concern[stage](plan, ...) end
  end
end

local function run_cleanup(plan, container)
  for i = #plan.concerns, 1, -1 do
    local concern = plan.concerns[i]
    if concern.cleanup then pcall(concern.cleanup, plan, container) end
  end
end

local function fail(field, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, OPTION[field] or field, ...)
end

local function read_first_line(file)
  return (path.read_file(file) or ""):match("^[^\n]*")
end

--- Why the host refuses user namespaces, as advice, or nil when unknown.
---@return string|nil
function M.userns_refusal_hint()
  if read_first_line("/proc/sys/user/max_user_namespaces") == "0" then
    return "user namespaces are disabled on this host (sysctl -w user.max_user_namespaces=15000 enables them)"
  end
  if core.geteuid() ~= 0 then
    if read_first_line("/proc/sys/kernel/unprivileged_userns_clone") == "0" then
      return "unprivileged user namespaces are disabled on this host (sysctl -w kernel.unprivileged_userns_clone=1 enables them)"
    end
    if read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" then
      return "AppArmor restricts unprivileged user namespaces on this host (sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give pflask an AppArmor profile)"
    end
  end
  return nil
end

local NS_KINDS = {}
for _, n in ipairs(core.namespaces) do NS_KINDS[n] = true end

-- Namespaces a container may join by path instead of creating
-- (spec.namespaces.net = "/run/netns/NAME", OCI's namespaces[].path):
-- those the child can enter with setns after clone, before any other
-- stage, without changing who it is or what its paths mean.
M.JOINABLE = { net = true, ipc = true, uts = true, cgroup = true }

--- Namespaces to create: defaults, overridden by spec.namespaces. The user
--- namespace, when not decided (nil), is created for unprivileged users
--- only, and for explicit id maps. A path instead of a boolean joins the
--- namespace it names (plan.joins).
local function plan_namespaces(spec, euid, joins)
  local ns = {}
  for name, on in pairs(M.DEFAULT_NAMESPACES) do ns[name] = on end
  if spec.namespaces ~= nil and type(spec.namespaces) ~= "table" then
    fail("namespaces", "must be a table {name = true|false|PATH}")
  end
  for name, on in pairs(spec.namespaces or {}) do
    local field = "namespaces." .. tostring(name)
    if type(name) ~= "string" or not NS_KINDS[name] then
      fail("namespaces", "'%s' is not a namespace (%s)", tostring(name), table.concat(core.namespaces, ", "))
    end
    if type(on) == "string" then
      if not M.JOINABLE[name] then
        fail(field, "joining by path is supported for net, ipc, uts and cgroup, not %s", name)
      end
      if on:sub(1, 1) ~= "/" then fail(field, "'%s' must be an absolute path", on) end
      local ok, msg = core.ns_check(on, name)
      if not ok then fail(field, "%s", msg) end
      joins[#joins + 1] = { name = name, path = on }
      on = false
    elseif on ~= nil and type(on) ~= "boolean" then
      fail(field, "must be true, false or the path of a namespace to join")
    end
    ns[name] = on
  end
  for _, j in ipairs(joins) do
    if j.name == "net" and type(spec.netifs) == "table" and #spec.netifs > 0 then
      fail("netifs", "cannot be used with a joined network namespace (%s)", j.path)
    end
  end
  if ns.user == nil then
    ns.user = euid ~= 0 or spec.uid_map ~= nil or spec.gid_map ~= nil
  end
  if spec.root and not ns.mount then
    fail("root", "needs a mount namespace (drop --no-mountns)")
  end
  for _, f in ipairs({ "uid_map", "gid_map" }) do
    local map = spec[f]
    if map ~= nil and (type(map) ~= "table" or #map > 0) and not ns.user then
      fail(f, "needs a user namespace (drop --no-userns)")
    end
  end
  return ns
end

local function plan_root(spec)
  if not spec.root then return nil end
  local root = path.absolute(spec.root)
  local st = core.stat(root)
  if not st then fail("root", "'%s' does not exist", spec.root) end
  if st.type ~= "directory" then fail("root", "'%s' is not a directory", spec.root) end
  return root
end

-- The largest user database file read from the host for a lookup.
local MAX_DB_FILE = 16 * 1024 * 1024

--- What spec.mounts puts at /etc/passwd and /etc/group, so that `user` is
--- looked up in the files the command will see (a root built from
--- nothing, a passwd file mounted over the root's): the last entry that
--- provides each, a `file` (content, or a host source) or a `bind` of the
--- file or of /etc. nil when the mounts provide no passwd.
---@param spec pflask.Spec
---@return {passwd: string, group: string|nil, where: string}|nil
local function mounted_user_db(spec)
  local found = {}
  for _, m in ipairs(type(spec.mounts) == "table" and spec.mounts or {}) do
    local target = type(m) == "table" and type(m.target) == "string"
      and ("/" .. m.target):gsub("/+", "/"):gsub("(.)/$", "%1") or nil
    for _, name in ipairs({ "passwd", "group" }) do
      local file = "/etc/" .. name
      if m.type == "file" and target == file then
        found[name] = { content = m.content, source = m.source }
      elseif m.type == "bind" and type(m.source) == "string" then
        if target == file then found[name] = { source = m.source }
        elseif target == "/etc" then found[name] = { source = m.source .. "/" .. name } end
      end
    end
  end
  if not found.passwd then return nil end
  local function text(f, what)
    if f.content then return f.content end
    local st = core.stat(f.source)
    if not st or st.type ~= "file" or st.size > MAX_DB_FILE then
      fail("user", "cannot read %s from mounts (%s)", what, f.source)
    end
    return path.read_file(f.source) or fail("user", "cannot read %s from mounts (%s)", what, f.source)
  end
  return { passwd = text(found.passwd, "/etc/passwd"),
           group = found.group and text(found.group, "/etc/group") or nil,
           where = "the /etc/passwd of mounts" }
end

--- The user the command runs as, or nil to keep the identity it starts
--- with inside (root in a user namespace, the caller otherwise).
local function plan_user(spec, root)
  if not spec.user then
    if spec.gid ~= nil or spec.groups ~= nil then fail("user", "gid and groups need a user") end
    return nil
  end
  local user, why = users.lookup(spec.user, root, mounted_user_db(spec))
  if not user then
    fail("user", "'%s' is not a user%s", spec.user,
         why and (": " .. why) or "")
  end
  -- Numeric ids as given (OCI's process.user gid and additionalGids),
  -- instead of the user's entries in the root's /etc/passwd and /etc/group.
  local function gid(v, what)
    if math.type(v) ~= "integer" or v < 0 or v > 0xfffffffe then
      fail("user", "%s: '%s' is not a gid", what, tostring(v))
    end
    return v
  end
  if spec.gid ~= nil then user.gid = gid(spec.gid, "gid") end
  if spec.groups ~= nil then
    if type(spec.groups) ~= "table" then fail("user", "groups: must be an array of gids") end
    local groups = {}
    for i, g in ipairs(spec.groups) do groups[i] = gid(g, "groups") end
    user.groups = groups
  end
  return user
end

--- The command's environment, as the classic pflask builds it. who is
--- the user inside a root (user, else the root's own root), if known.
local function plan_environment(spec, root, user, who, host)
  local env
  if root and not spec.keepenv then
    env = { TERM = os.getenv("TERM"), PATH = M.DEFAULT_PATH }
    who = who or { name = "root", home = "/root" }
    env.USER, env.LOGNAME, env.HOME = who.name, who.name, who.home
  else
    env = host.environ()
    -- keepenv keeps the caller's HOME and USER too (pflask 0.2's
    -- --keepenv: the whole environment, as it is).
    if user and not spec.keepenv then
      env.USER, env.LOGNAME, env.HOME = user.name, user.name, user.home
    end
  end
  env.container = "pflask"
  for i, var in ipairs(spec.setenv or {}) do
    if type(var.name) ~= "string" or not var.name:match("^[%a_][%w_]*$") or type(var.value) ~= "string" then
      fail("setenv", "entry %d needs a name (letters, digits and _, not starting with a digit) and a string value", i)
    end
    env[var.name] = var.value
  end
  return env
end

--- With no command: the user's shell, /bin/sh when none is known, as a
--- login shell (argv[0] "-sh", login(1)'s convention) as pflask 0.2 ran
--- it, so that it reads the profile.
---@return string[] argv
---@return string|nil file what to exec when it is not argv[1]
local function plan_command(spec, root, user, who, host)
  if spec.command and #spec.command > 0 then
    for i, a in ipairs(spec.command) do
      if type(a) ~= "string" then fail("command", "argument %d is not a string", i) end
    end
    return spec.command
  end
  local shell
  if user or root then
    shell = who and who.shell
  else
    shell = os.getenv("SHELL")
    if not shell or shell == "" then
      local me = host.getpwnam(host.uid)
      shell = me and me.shell
    end
  end
  if not shell or shell == "" then shell = "/bin/sh" end
  return { "-" .. path.basename(shell) }, shell
end

local function plan_init(spec, ns, argv)
  local mode = spec.init or "auto"
  if not ns.pid then
    if mode == "pid1" or mode == "reaper" then
      -- The classic option that asks for this mode.
      fail(mode == "pid1" and "--as-pid1" or "--as-pid2", "needs a PID namespace (drop --no-pidns)")
    end
    return "none"
  end
  if mode == "auto" then
    return INIT_NAMES[path.basename(argv[1])] and "pid1" or "reaper"
  end
  if mode ~= "pid1" and mode ~= "reaper" then
    fail("init", "'%s' is not an init mode (auto, pid1, reaper)", tostring(mode))
  end
  return mode
end

--- One fd to pass: open, and not a terminal (no terminal of the host
--- ever enters the container: TIOCSTI would type into it).
local function check_pass_fd(field, fd, host)
  if not host.fd_is_open(fd) then fail(field, "fd %d is not open", fd) end
  if host.isatty(fd) then
    fail(field, "fd %d is a terminal (a terminal of the host never enters the container)", fd)
  end
end

--- The fds from 3 up the command inherits (every other one is closed
--- before exec): spec.pass_fds (--keep-fd), and socket activation's
--- LISTEN_FDS when the environment passed to the command holds it and
--- LISTEN_PID names this pflask (sd_listen_fds(3)'s rule). LISTEN_PID then
--- becomes the command's pid inside (filled in right before exec); LISTEN_*
--- meant for another process, or that do not reach the command, are dropped.
---@param spec pflask.Spec
---@param env table<string, string> the command's environment (changed)
---@return integer[] fds sorted
local function plan_pass_fds(spec, env, stdio, host)
  local set = {}
  local fds = spec.pass_fds or {}
  if type(fds) ~= "table" then fail("pass_fds", "must be a list of fd numbers") end
  for _, v in ipairs(fds) do
    local fd = math.type(v) == "integer" and v
      or (type(v) == "string" and v:match("^%d+$") and #v <= 5 and tonumber(v)) or nil
    if not fd or fd < 3 or fd > M.MAX_PASS_FD then
      fail("pass_fds", "'%s' is not a file descriptor number (3 to %d)", tostring(v), M.MAX_PASS_FD)
    end
    check_pass_fd("pass_fds", fd, host)
    set[fd] = true
  end
  if env.LISTEN_FDS or env.LISTEN_PID then
    local n = env.LISTEN_FDS and env.LISTEN_FDS:match("^%d+$") and #env.LISTEN_FDS <= 5
      and tonumber(env.LISTEN_FDS)
    if env.LISTEN_PID == tostring(host.pid) and n and n > 0 then
      if 3 + n - 1 > M.MAX_PASS_FD then fail("LISTEN_FDS", "%d fds are too many", n) end
      for fd = 3, 3 + n - 1 do
        check_pass_fd("LISTEN_FDS", fd, host)
        set[fd] = true
      end
      env.LISTEN_PID = "" -- the command's own pid, set right before exec
    else
      env.LISTEN_FDS, env.LISTEN_PID, env.LISTEN_FDNAMES = nil, nil, nil
    end
  end
  -- Standard fds pass as they are, except a directory: /proc/self/fd/0/
  -- inside would be the host's directory, whatever the root.
  for fd, name in pairs({ [0] = "standard input", "standard output", "standard error" }) do
    local _, kind = host.fd_is_open(fd)
    if stdio and stdio[fd] then kind = nil end -- replaced in the container
    if kind == "directory" then
      fail(name, "is a directory, which would lead out of the container's root")
    end
  end
  local list = {}
  for fd in pairs(set) do list[#list + 1] = fd end
  table.sort(list)
  return list
end

--- spec.rlimits = { nofile = 1024, core = { soft = 0, hard = 0 } } as
--- the exec plan's array {name, soft, hard}; "infinity" is no limit.
local function plan_rlimits(spec)
  local out = {}
  if spec.rlimits == nil then return out end
  if type(spec.rlimits) ~= "table" then fail("rlimits", "must be a table {name = limit}") end
  local known = {}
  for _, n in ipairs(core.rlimit_names) do known[n] = true end
  local function limit(name, v, what)
    if v == "infinity" or v == "unlimited" then return "infinity" end
    -- Sizes as --memory takes them (1G, 512K), for as, data, stack...
    if type(v) == "string" then
      local num, unit = v:match("^(%d+)([KkMmGgTt]?)$")
      local mult = { [""] = 1, k = 1 << 10, m = 1 << 20, g = 1 << 30, t = 1 << 40 }
      if num and #num <= 15 then v = math.tointeger(tonumber(num) * mult[unit:lower()]) end
    end
    if math.type(v) ~= "integer" or v < 0 then
      fail("rlimits", "%s: %s limit '%s' must be an integer >= 0 or \"infinity\"", name, what, tostring(v))
    end
    return v
  end
  for name, v in pairs(spec.rlimits) do
    if type(name) ~= "string" or not known[name] then
      fail("rlimits", "'%s' is not a resource (%s)", tostring(name), table.concat(core.rlimit_names, ", "))
    end
    local soft, hard
    if type(v) == "table" then
      soft = limit(name, v.soft, "soft")
      hard = v.hard == nil and soft or limit(name, v.hard, "hard")
    else
      soft = limit(name, v, "soft")
      hard = soft
    end
    if hard ~= "infinity" and (soft == "infinity" or soft > hard) then
      fail("rlimits", "%s: soft limit above the hard one", name)
    end
    out[#out + 1] = { name, soft, hard }
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

--- spec.seccomp_bpf: a compiled filter (struct sock_filter array) as a
--- string, loaded in the command right before exec.
local function plan_seccomp(spec)
  local bpf = spec.seccomp_bpf
  if bpf == nil then return nil end
  if type(bpf) ~= "string" or #bpf == 0 or #bpf % 8 ~= 0 or #bpf > 8 * 4096 then
    fail("seccomp_bpf", "must be a BPF program: 1 to 4096 struct sock_filter of 8 bytes")
  end
  return bpf
end

--- spec.start_fifo: the path of a FIFO pflask makes; the command waits,
--- right before exec, until another process opens it (M.start_fifo).
local function plan_start_fifo(spec)
  local p = spec.start_fifo
  if p == nil then return nil end
  if type(p) ~= "string" or p == "" then fail("start_fifo", "must be a path") end
  p = path.absolute(p)
  if core.lstat(p) then fail("start_fifo", "'%s' already exists", p) end
  local parent = p:match("^(.*)/[^/]+$")
  local st = core.stat(parent ~= "" and parent or "/")
  if not st or st.type ~= "directory" then fail("start_fifo", "'%s' is not a directory", parent) end
  return p
end

--- Namespaces and forks, decided in one place (crun's
--- namespaces_to_unshare / must_fork): which namespaces clone creates,
--- which the child unshares itself once the supervisor placed it (a
--- cgroup namespace after its cgroups: made at clone, its root would be
--- the supervisor's cgroup), which it joins by path first, and whether pid
--- 1 forks the command (reaper) or is it.
---@param plan pflask.Plan
---@return pflask.NsPlan
function M.namespace_plan(plan)
  local clone, late = {}, {}
  for name, on in pairs(plan.namespaces) do clone[name] = on and true or false end
  if clone.cgroup and plan.cgroups then
    clone.cgroup = false
    late[#late + 1] = "cgroup"
  end
  return { clone = clone, late = late, join = plan.joins, fork = plan.init == "reaper" }
end

---@class pflask.NsPlan
---@field clone table<string, boolean> namespaces core.clone creates
---@field late string[] namespaces the child unshares once placed (cgroup)
---@field join {name: string, path: string}[] namespaces the child joins first, by path
---@field fork boolean pid 1 starts the command and stays as its reaper

---@class pflask.Plan
---@field namespaces table<string, boolean>
---@field root string|nil absolute
---@field user pflask.User|nil
---@field groups integer[]|nil supplementary groups of user (pflask.userns keeps the mapped ones)
---@field uid_map table[]|nil set by pflask.userns
---@field gid_map table[]|nil set by pflask.userns
---@field env table<string, string>
---@field pass_fds integer[] fds from 3 up the command inherits; every other one is closed
---@field argv string[]
---@field file string|nil what to exec when it is not argv[1] (a login shell's "-sh")
---@field init "none"|"pid1"|"reaper"
---@field hostname string|nil
---@field chdir string|nil
---@field boot boolean an init as pid 1 of a root: booting an OS (pflask.boot)
---@field delegate_cgroup boolean give the container a v2 cgroup it manages (pflask.cgroups)
---@field translate table<integer, integer>|nil signals to send instead of those received (Container:wait)
---@field map_status fun(status: integer, how: string): integer|nil the exit status pflask reports
---@field joins {name: string, path: string}[] namespaces joined by path
---@field rlimits table[] {name, soft, hard}, set in the command
---@field seccomp_bpf string|nil a compiled seccomp filter, loaded in the command last
---@field start_fifo string|nil the FIFO whose opening lets the command start
---@field start_orphan boolean with start_fifo: the command survives the supervisor once created
---@field ns pflask.NsPlan clone, late, join, fork (M.namespace_plan)

--- Resolve a spec into a plan, or raise a pflask.Error naming the option
--- at fault. Creates nothing.
---@param spec pflask.Spec
---@param host pflask.HostFacts|nil the host's facts (M.host_facts() by default)
---@return pflask.Plan
function M.plan(spec, host)
  -- Names and types first (pflask.schema): every later check may rely
  -- on them.
  require("pflask.schema").check(spec)
  host = host or M.host_facts()
  local euid = host.euid
  local joins = {}
  local ns = plan_namespaces(spec, euid, joins)
  local root = plan_root(spec)
  if spec.hostname ~= nil and (type(spec.hostname) ~= "string" or #spec.hostname == 0 or #spec.hostname > 64) then
    fail("hostname", "'%s' must be 1 to 64 characters", tostring(spec.hostname))
  end
  if spec.hostname and not ns.uts then
    fail("hostname", "needs a UTS namespace (drop --no-utsns)")
  end
  local user = plan_user(spec, root)
  local plan = {
    namespaces = ns, root = root, user = user, hostname = spec.hostname,
    chdir = spec.chdir or (root and "/") or nil,
    child_setup = spec.child_setup, parent_setup = spec.parent_setup,
    groups = user and user.groups or nil,
    joins = joins, rlimits = plan_rlimits(spec), seccomp_bpf = plan_seccomp(spec),
    start_fifo = plan_start_fifo(spec), stdio = plan_stdio(spec), host = host,
    -- OCI create: the command outlives the supervisor once created.
    start_orphan = spec.start_fifo ~= nil and spec.start_orphan == true,
  }
  -- Read the root's passwd once, for both the environment and the shell.
  local who = user or (root and users.lookup("root", root)) or nil
  plan.env = plan_environment(spec, root, user, who, host)
  plan.pass_fds = plan_pass_fds(spec, plan.env, plan.stdio, host)
  plan.argv, plan.file = plan_command(spec, root, user, who, host)
  plan.init = plan_init(spec, ns, plan.argv)
  -- An init as pid 1 of a root filesystem: booting an OS (pflask.boot),
  -- unless the spec says it is not one (OCI: any command is pid 1).
  plan.boot = plan.init == "pid1" and root ~= nil and spec.boot ~= false
  plan.delegate_cgroup = plan.boot
  plan.concerns = concern_modules(spec, plan)
  for _, concern in ipairs(plan.concerns) do
    if concern.plan then concern.plan(spec, plan) end
  end
  plan.ns = M.namespace_plan(plan)
  return plan
end

--- The child's stages, in order: each a name (what an error says it was
--- doing, and what a test or a later concern can refer to) and a function
--- of (plan, chan, state). Everything up to "exec" runs in the process
--- that becomes pid 1; "exec" is the exec plan (core.exec_plan), run in
--- the command's own process right before execve: with a reaper as pid 1
--- that is the command the reaper starts, never the reaper itself.
M.CHILD_STAGES = {
  -- Joined namespaces first, before anything depends on them (OCI's
  -- namespaces[].path).
  { "join", function(plan)
      for _, j in ipairs(plan.ns.join) do
        perr.check("namespaces." .. j.name, core.ns_enter(j.path, j.name))
      end
    end },
  -- Placed by the supervisor by now (cgroups): a cgroup namespace made
  -- here has the container's own cgroup as its root.
  { "late", function(plan)
      if #plan.ns.late > 0 then perr.check("namespaces", core.unshare(plan.ns.late)) end
    end },
  -- Built while the host's paths are still in view: the start FIFO is
  -- opened here (O_PATH), the exec stage reopens it through /proc.
  { "exec_plan", function(plan, _, state)
      state.exec_plan = perr.check("start the command", core.exec_plan{
        pass_fds = plan.pass_fds, rlimits = plan.rlimits, no_new_privs = plan.no_new_privs,
        -- pflask.sandbox loaded it before the user switch already.
        seccomp = not plan.seccomp_early and plan.seccomp_bpf or nil, start_fifo = plan.start_fifo,
        orphan = plan.start_orphan,
      })
    end },
  { "private", function(plan)
      if plan.namespaces.mount then perr.check("make mounts private", core.make_private()) end
    end },
  { "hostname", function(plan)
      if plan.hostname then perr.check("--hostname", core.sethostname(plan.hostname)) end
    end },
  -- Before the container's own /proc (and its read-only /proc/sys): the
  -- one in view acts on the namespaces the child is in (pflask.sandbox).
  { "sysctls", function(plan) if plan.sysctls then require("pflask.sandbox").child_sysctls(plan) end end },
  { "child_mounts", function(plan) run_stage(plan, "child_mounts") end }, -- /proc too (pflask.mounts)
  { "pivot_root", function(plan)
      -- libmount (loaded now, or never: not from the container's root) is
      -- only for a recipe's child_setup: pflask's own later stages mount
      -- nothing with options.
      if plan.root then perr.check("--chroot", core.pivot_root(plan.root, plan.child_setup ~= nil)) end
    end },
  { "child_system", function(plan) run_stage(plan, "child_system") end },
  { "child_setup", function(plan) if plan.child_setup then plan.child_setup(plan) end end },
  { "child_privileges", function(plan) run_stage(plan, "child_privileges") end },
  { "switch_user", function(plan)
      if plan.user then
        perr.check("--user", core.switch_user(plan.user.uid, plan.user.gid, plan.groups))
      end
    end },
  { "child_exec", function(plan) run_stage(plan, "child_exec") end },
  { "chdir", function(plan) if plan.chdir then perr.check("--chdir", core.chdir(plan.chdir)) end end },
  -- Nothing of the supervisor's crosses the root but what is passed on
  -- purpose (a directory fd would lead back to the host's tree): the
  -- exec plan closes the rest in the command; pid 1 of the reaper holds
  -- nothing once the command has started.
  { "exec", function(plan, chan, state)
      if plan.ns.fork then
        -- This process stays as pid 1, with the command's identity: an
        -- init that reaps and forwards signals needs no privilege.
        perr.check("start the command",
          core.exec_reaped(chan, plan.file or plan.argv[1], plan.argv, plan.env, state.exec_plan))
      end
      local _, msg, errno, status = core.exec(plan.file or plan.argv[1], plan.argv, plan.env, state.exec_plan, chan)
      error(perr.new(status, msg, errno), 0)
    end },
}

--- Child side: every stage, in order, then exec. Runs in the cloned
--- process; an error here travels to the parent (core.clone).
local function child_main(plan, chan)
  if not chan:wait() then core.exit(perr.FAILURE) end -- the supervisor is gone
  local state = {}
  for _, stage in ipairs(M.CHILD_STAGES) do stage[2](plan, chan, state) end
end

--- Parent side, from outside: the concerns' steps (id maps first), then
--- the recipe's hook.
local function parent_setup(plan, container)
  run_stage(plan, "parent", container)
  if plan.parent_setup then plan.parent_setup(container) end
end

local function clone_failure(plan, msg, errno)
  local hint
  if plan.namespaces.user then
    hint = M.userns_refusal_hint()
  elseif core.geteuid() ~= 0 then
    hint = "without a user namespace only root can create namespaces (drop --no-userns)"
  end
  perr.raise(perr.FAILURE, "%s%s", msg, hint and ("; " .. hint) or "")
end

---@class pflask.Container
---@field plan pflask.Plan
---@field process any pflask.Process once started
local Container = {}
Container.__index = Container

-- Containers started and not yet cleaned up, in start order (weak: one
-- the recipe dropped is cleaned up by its own __gc), and what the recipe
-- deferred (pflask.defer): M.at_exit runs both when pflask ends, however
-- it ends.
local live = setmetatable({}, { __mode = "k" }) -- container -> start order
local started_count = 0
local deferred = {}

local function forget(c) live[c] = nil end

-- The supervisor's memory while containers run (issue 15): once a wait
-- has lasted SHED_AFTER seconds since a container started (one that ends
-- sooner never pays for it), what only the plans needed is let go and the
-- free pages go back to the kernel (sup:shed). Each running plan keeps,
-- of its concerns, only their stages still to run (waiting, ended,
-- cleanup: a table of those functions, not the module), and the modules
-- of SHED_MODULES leave package.loaded: one still held elsewhere (a
-- recipe's local) is put back, the same table; otherwise the next require
-- loads it afresh. By default the spec parsers, which have no state. The
-- classic command line, which runs no other Lua code (nobody can hold a
-- module or have changed its settings), adds the concerns and the facade.
M.SHED_AFTER = 0.02
M.SHED_MODULES = {
  "pflask.cli", "pflask.schema", "pflask.spec.caps", "pflask.spec.fields", "pflask.spec.limits",
  "pflask.spec.mount", "pflask.spec.netif", "pflask.spec.usermap",
}
local POST_START_STAGES = { "waiting", "ended", "cleanup" }
local shed_due = false

local function shed(sup)
  shed_due = false
  for c in pairs(live) do
    if c.supervised and not c.shed then
      c.shed = true
      local kept = {}
      for _, concern in ipairs(c.plan.concerns) do
        local stages
        for _, stage in ipairs(POST_START_STAGES) do
          if concern[stage] then
            stages = stages or {}
            stages[stage] = concern[stage]
          end
        end
        kept[#kept + 1] = stages
      end
      c.plan.concerns = kept
    end
  end
  local held = setmetatable({}, { __mode = "v" })
  for _, name in ipairs(M.SHED_MODULES) do
    held[name], package.loaded[name] = package.loaded[name], nil
  end
  sup:shed()
  for _, name in ipairs(M.SHED_MODULES) do
    if held[name] ~= nil and package.loaded[name] == nil then package.loaded[name] = held[name] end
  end
end

-- Signals that end a recipe which deferred something (pflask.defer): the
-- containers get it as ever, the wait returns once the waited one ended,
-- then the recipe is interrupted (M.check_interrupted) so that its
-- deferred functions run and pflask exits 128+N.
M.INTERRUPTS = {
  [core.signals.INT] = "SIGINT", [core.signals.TERM] = "SIGTERM",
  [core.signals.HUP] = "SIGHUP", [core.signals.QUIT] = "SIGQUIT",
}

-- Seconds the containers get to end after an interrupting signal, before
-- pflask kills what is left and runs the deferred functions.
M.GRACE = 10

--- Raise "interrupted by SIGTERM" (status 128+N) when such a signal
--- reached pflask during a wait and the recipe deferred something.
function M.check_interrupted()
  local sig = M.interrupted
  M.interrupted = nil -- one wait's signal, never a later wait's
  if sig and #deferred > 0 then
    M.interrupted_by = sig
    perr.raise(128 + sig, "interrupted by %s", M.INTERRUPTS[sig])
  end
end

--- Create the container and start its command. Returns once the command
--- was exec'd; raises a pflask.Error (status 125, 126 or 127) otherwise,
--- leaving no process behind.
---@return pflask.Container
function Container:start()
  assert(not self.process, "container already started")
  local plan = self.plan
  local ok, err = pcall(run_stage, plan, "prepare")
  if not ok then
    run_cleanup(plan, self)
    error(err, 0)
  end
  -- plan.clone_cgroup (pflask.cgroups): a v2 cgroup to start the child in.
  local proc, chan, errno_or_placed = core.clone(plan.ns.clone, function(ch) return child_main(plan, ch) end,
                                                 plan.clone_cgroup)
  if not proc then
    run_cleanup(plan, self)
    clone_failure(plan, chan, errno_or_placed)
  end
  plan.clone_placed = errno_or_placed
  self.process = proc
  started_count = started_count + 1
  live[self] = started_count
  self.owner = core.getpid() -- a forked copy of this process must leave it alone
  ok, err = pcall(parent_setup, plan, self)
  if ok then
    ok, err = pcall(function() perr.check("release container", chan:release()) end)
  end
  if not ok then
    chan:close()
    self:abort()
    error(err, 0)
  end
  local started, msg, child_errno, status = chan:result()
  chan:close()
  if started == nil then
    self:abort()
    perr.raise(perr.FAILURE, "%s", msg)
  elseif not started then
    proc:wait()
    self:finish()
    error(perr.new(status, msg, child_errno), 0)
  end
  -- Every stage ran; with "created" the command waits for its start FIFO.
  self.created = msg == "created"
  -- The executable's start-up is over: the collector's usual pace again
  -- (src/main.c).
  if core.startup_done then core.startup_done() end
  ok, err = pcall(run_stage, plan, "started", self)
  if not ok then
    self:abort()
    error(err, 0)
  end
  self:supervise()
  return self
end

--- Kill the container (SIGKILL), reap it and clean up after it.
function Container:abort()
  self.process:kill(core.signals.KILL)
  self.process:wait()
  self:finish()
end

--- Clean up what the concerns created, once the container has ended.
--- Idempotent.
function Container:finish()
  if self.finished then return end
  self.finished = true
  forget(self)
  run_cleanup(self.plan, self)
end

--- Supervisor, once the command started: the supervisor loop
--- (core.supervisor) passes the signals pflask receives on to this
--- container through its translate table from now on, whichever container
--- a recipe waits on, and the concerns hand it their part (the terminal's
--- relay). Raises (after killing the container) if a concern fails.
function Container:supervise()
  if self.supervised then return end
  self.supervised = true
  local ok, err = pcall(function()
    local sup = core.supervisor()
    -- Blocked since the clone, so that the parent's steps ran as ever;
    -- noted by the handler from now on, and passed on by the loop.
    sup:unblock()
    if self.plan.translate then sup:translate(self.process, self.plan.translate) end
    run_stage(self.plan, "supervise", self)
    shed_due = true
  end)
  if not ok then
    self:abort()
    error(err, 0)
  end
end

--- Has the container's first process ended (and been reaped)?
local function has_ended(c)
  return not core.supervisor():watching(c.process)
end

--- The container ended: its status (mapped by the plan), after the
--- concerns heard of it and cleaned up. Idempotent.
local function settle(c)
  if not c.status then
    local status, how, code = c.process:wait()
    if not status then
      c:abort()
      perr.raise(perr.FAILURE, "wait for container: %s", tostring(how))
    end
    run_stage(c.plan, "ended", c, status, how, code)
    c:finish()
    if c.plan.map_status then status = c.plan.map_status(status, how) end
    c.status = status
  end
  return c.status
end

--- Step the supervisor loop until one container of list ended (returns
--- it) or timeout seconds passed (returns nil; nil timeout: never).
local function first_ended(list, timeout)
  for _, c in ipairs(list) do
    assert(c.process, "container not started")
    if has_ended(c) then return c end
  end
  local sup = core.supervisor()
  local deadline = timeout and core.monotonic() + timeout
  for _, c in ipairs(list) do run_stage(c.plan, "waiting", true) end
  local ok, found = pcall(function()
    while true do
      local left = deadline and math.max(0, deadline - core.monotonic())
      local idle = shed_due and (not left or left > M.SHED_AFTER)
      local what, proc, errno = sup:step(idle and M.SHED_AFTER or left)
      if what == nil then
        perr.raise(perr.FAILURE, "wait for container: %s", tostring(proc), errno)
      elseif what == "timeout" and idle then
        shed(sup)
        -- Its finalizers may have waited (a dropped container closed),
        -- taking an exit this loop waits for.
        for _, c in ipairs(list) do
          if has_ended(c) then return c end
        end
      elseif what == "timeout" then
        return nil
      elseif what == "exit" then
        for _, c in ipairs(list) do
          if c.process == proc then return c end
        end
      elseif what == "signal" and M.INTERRUPTS[proc] then
        M.interrupted = proc
      end
    end
  end)
  for _, c in ipairs(list) do run_stage(c.plan, "waiting", false) end
  if not ok then error(found, 0) end
  return found
end

--- Wait options: a table with timeout and/or translate, or (the older
--- call form) the translate table itself.
local function wait_options(opts)
  if opts == nil then return nil, nil end
  if type(opts) ~= "table" then
    perr.raise(perr.FAILURE, "Container:wait: options must be a table, not %s", type(opts))
  end
  if opts.timeout == nil and opts.translate == nil then return opts, nil end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout < 0) then
    perr.raise(perr.FAILURE, "Container:wait: timeout must be a number of seconds >= 0")
  end
  return opts.translate, opts.timeout
end

--- Wait for the container to end (forwarding signals to every container
--- meanwhile), then clean up after it. With a timeout (seconds,
--- fractional) that passes first, returns nil, "timeout" and the container
--- keeps running. opts: {timeout = S, translate = {[from] = to}}, or a
--- translate table as before (signals to send this container instead of
--- those received).
---@param opts table|nil
---@return integer|nil status exit code, or 128+N if killed by signal N
---@return string|nil "timeout"
function Container:wait(opts)
  local translate, timeout = wait_options(opts)
  if self.status then return self.status end
  -- --timeout (pflask.sandbox): the plan's time limit, unless the caller
  -- waits with a timeout of its own.
  if self.plan.timeout and timeout == nil and not self.timing then
    self.timing = true
    local ok, status = pcall(require("pflask.sandbox").wait, self, function(c, t)
      if t == nil and translate == nil then return c:wait() end
      return c:wait{ translate = translate, timeout = t }
    end)
    self.timing = nil
    if not ok then error(status, 0) end
    self.status = status
    return status
  end
  self:supervise()
  if translate and not has_ended(self) then
    core.supervisor():translate(self.process, translate)
  end
  local ok, ended = pcall(first_ended, { self }, timeout)
  if not ok then
    self:abort() -- the loop failed: take the container down, not leave it
    error(ended, 0)
  end
  if not ended then
    M.check_interrupted()
    return nil, "timeout"
  end
  local status = settle(self)
  M.check_interrupted()
  return status
end

--- The end of a container the recipe no longer needs: killed (SIGKILL)
--- if it still runs, reaped, then the same cleanup as a normal end (the
--- concerns' ended and cleanup: ephemeral directory, cgroups, interfaces,
--- registry record). Idempotent, never raises: also the container's
--- __close (`local c <close> = ...:start()`) and __gc, and what pflask
--- does at exit for every container still running.
function Container:close()
  if not self.process or self.finished or self.owner ~= core.getpid() then return end
  if not self.status then
    self.process:kill(core.signals.KILL) -- fails once reaped: nothing to do
    local ok = pcall(settle, self)
    if not ok then pcall(self.finish, self) end
  end
  self:finish()
end
Container.__close = Container.close
Container.__gc = function(c) pcall(Container.close, c) end

--- Wait for the end (as wait(), and raising nothing more), then what
--- the "capture" fds got: status, stdout, stderr (nil for one not
--- captured). The captures are read once; the container is closed.
---@param opts table|nil as for wait()
---@return integer|nil status
---@return string|nil stdout
---@return string|nil stderr
function Container:output(opts)
  if not self.process then self:start() end
  local status, why = self:wait(opts)
  if not status then return nil, why end
  local out = {}
  for fd = 1, 2 do
    local s = self.plan.stdio[fd]
    if s and s.kind == "capture" and s.file then
      if not self.captured then self.captured = {} end
      if self.captured[fd] == nil and s.opened then
        s.file:seek("set")
        self.captured[fd] = s.file:read("a")
        s.file:close(); s.opened = false
      end
      out[fd] = self.captured[fd]
    end
  end
  return status, out[1], out[2]
end

--- start() then wait().
---@return integer status
function Container:run()
  return self:start():wait()
end

--- The container's first process as seen from the host.
---@return integer
function Container:pid()
  return self.process:pid()
end

--- Send a signal (a number, core.signals.TERM by default) to the
--- container's first process, as given (no translate table).
---@param sig integer|nil
---@return boolean|nil ok
---@return string|nil message
function Container:kill(sig)
  return self.process:kill(sig)
end

--- The first container of list to end, and its status (after its
--- cleanup); the others keep running. nil, "timeout" when timeout
--- seconds pass first (nil: wait for ever).
---@param list pflask.Container[]
---@param timeout number|nil
---@return pflask.Container|nil
---@return integer|string status, or "timeout"
function M.wait_any(list, timeout)
  if type(list) ~= "table" or #list == 0 then
    perr.raise(perr.FAILURE, "wait_any: a list of started containers is needed")
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    perr.raise(perr.FAILURE, "wait_any: timeout must be a number of seconds >= 0")
  end
  for _, c in ipairs(list) do c:supervise() end
  local c = first_ended(list, timeout)
  if not c then
    M.check_interrupted()
    return nil, "timeout"
  end
  local status = settle(c)
  M.check_interrupted()
  return c, status
end

--- Send sig (default SIGTERM) to every container this process started
--- and has not reaped, as if pflask had received it: through each one's
--- translate table (a boot's SIGTERM stops it the systemd way). Returns
--- how many it was sent to.
---@param sig integer|nil
---@return integer
function M.kill_all(sig)
  return core.supervisor():signal(sig or core.signals.TERM)
end

--- What c:exec needs of the container's plan: its pid, the cgroups pflask
--- made, its command's confinement, identity and environment.
---@param plan pflask.Plan
---@param pid integer
---@return pflask.ExecTarget
function M.exec_target(plan, pid)
  local cgroups = {}
  for i, cg in ipairs(plan.cgroups or {}) do cgroups[i] = cg.procs or cg.dir end
  -- The namespaces the registry recorded (pflask.registry): exec checks
  -- they are still the container's.
  local rec = plan.registry and plan.registry.record
  local ns, start
  if rec and rec.pid == pid then
    ns, start = {}, rec.start
    for _, n in ipairs(core.namespaces) do ns[n] = rec["ns_" .. n] end
  end
  return { pid = pid, cgroups = cgroups, caps = plan.caps, no_new_privs = plan.no_new_privs,
           user = plan.user, groups = plan.groups, env = plan.env, rlimits = plan.rlimits,
           seccomp_bpf = plan.seccomp_bpf, ns = ns, start = start }
end

--- Run a command in the running container (docker exec): it joins every
--- namespace the container has of its own, its cgroups and root, with
--- the confinement of the container's command (bounding set, capabilities,
--- no_new_privs, rlimits, seccomp). Returns its status; raises a
--- pflask.Error (125, or 126/127 when it cannot be executed) otherwise,
--- the caller staying in its own namespaces.
---@param argv string[]
---@param opts pflask.ExecOptions|nil user, cwd, env, stdin, stdout, stderr
---@return integer status
function Container:exec(argv, opts)
  assert(self.process, "container not started")
  return require("pflask.exec").run(M.exec_target(self.plan, self:pid()), argv, opts)
end

--- Let a container created with spec.start_fifo = path run (OCI
--- `start`), from any process: opens the FIFO for reading, which the
--- command waits for right before exec. timeout (seconds) bounds the wait
--- for a container to answer.
---@param fifo string
---@param timeout number|nil
---@return true|nil ok
---@return string|nil message
function M.start_fifo(fifo, timeout)
  return core.start_fifo(fifo, timeout and math.floor(timeout * 1000) or nil)
end
Container.start_fifo = M.start_fifo

--- Run spec to its end with its stdout and stderr captured (unless the
--- spec says otherwise): status, stdout, stderr. Output of any size, on
--- both at once, never blocks the command (captures are memfds).
---@param spec pflask.Spec
---@return integer status
---@return string|nil stdout
---@return string|nil stderr
function M.capture(spec)
  if type(spec) ~= "table" then require("pflask.schema").check(spec) end
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  if s.stdout == nil then s.stdout = "capture" end
  if s.stderr == nil then s.stderr = "capture" end
  local c <close> = M.new(s)
  return c:output()
end

--- Run fn at exit (normal end, error, or a signal that ends pflask while
--- it waits), after every container still running was closed; the last
--- deferred runs first. For what the recipe made itself (a bridge).
---@param fn function
function M.defer(fn)
  if type(fn) ~= "function" then
    perr.raise(perr.FAILURE, "defer: a function is needed, not %s", type(fn))
  end
  deferred[#deferred + 1] = { fn = fn, pid = core.getpid() }
  -- A signal while no container runs (os.execute, plain Lua) must end the
  -- recipe through its deferred functions too, not kill pflask outright.
  if #deferred == 1 then core.interrupt_on_signals(true) end
end

--- Called once by the executable (src/main.c) when the recipe ended,
--- however: closes the containers still running (last started first),
--- then runs the deferred functions in reverse order. An error in one is
--- reported on stderr and the others still run.
function M.at_exit()
  -- From here a second signal acts as by default: it ends pflask, even in
  -- the middle of the cleanup (as a second Ctrl-C does).
  if #deferred > 0 then core.interrupt_on_signals(false) end
  local list = {}
  for c in pairs(live) do list[#list + 1] = c end
  table.sort(list, function(a, b) return live[a] > live[b] end)
  if M.interrupted_by then
    -- They got the signal too: give them M.GRACE seconds to end as it
    -- asks before they are killed.
    local deadline = core.monotonic() + M.GRACE
    for _, c in ipairs(list) do
      if c.owner == core.getpid() and not c.finished then
        pcall(c.wait, c, { timeout = math.max(0, deadline - core.monotonic()) })
      end
    end
  end
  for _, c in ipairs(list) do c:close() end
  while #deferred > 0 do
    local d = table.remove(deferred)
    local ok, err = true, nil
    if d.pid == core.getpid() then ok, err = pcall(d.fn) end
    if not ok then io.stderr:write("pflask: deferred function: ", tostring(err), "\n") end
  end
end

--- Plan a container from a spec; raises on bad input, creates nothing.
---@param spec pflask.Spec
---@return pflask.Container
function M.new(spec)
  -- Plan first: a table given a __gc metatable is looked for in the list
  -- of every object made since it was (lgc.c, luaC_checkfinalizer), and
  -- the plan (with the modules it loads) makes thousands.
  local plan = M.plan(spec)
  return setmetatable({ spec = spec, plan = plan }, Container)
end

return M
