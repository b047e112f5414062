-- pflask.oci: the OCI runtime (the command line runc and crun implement)
-- on top of pflask's engine, for podman, containerd and Kubernetes; the
-- recipe recipes/oci.lua (pflask-oci) calls M.cli.
--
-- M.spec_from_config(cfg, bundle) turns a parsed config.json into a pflask
-- spec; M.seccomp_table(linux_seccomp) gives what core.seccomp_compile
-- takes; M.main(args) runs one command line. See pflask-oci(1).
--
-- A container is a directory ROOT/ID holding state.json (written atomically), the start FIFO (exec.fifo, runc's) and
-- the engine's registry record (what `exec` joins). `create` plans and
-- starts the container with spec.start_fifo and spec.start_orphan: the
-- command waits on the FIFO right before exec, having dropped its parent
-- death signal, and this process exits; `start` opens the FIFO.

local core = require "pflask.core"
local perr = require "pflask.error"

local PROGRAM = "pflask-oci"
local OCI_VERSION = "1.0.2"
local EEXIST, ENOENT = 17, 2

local USAGE = [[
Usage: pflask-oci [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]

Global options (before COMMAND):
  --root DIR            state directory (default /run/pflask-oci, rootless
                        $XDG_RUNTIME_DIR/pflask-oci)
  --log FILE            also write errors to FILE
  --log-format FORMAT   text or json
  --version             print the version

Commands:
  create --bundle DIR [--pid-file F] [--console-socket PATH] ID
  start ID              run a created container's process
  state ID              the runtime-spec state JSON
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  list [--format table|json] [-q]
  run --bundle DIR [--pid-file F] [--detach] ID
  exec [--process FILE] [--cwd DIR] [--env K=V] [--user UID] ID [CMD...]
  ps [--format table|json] ID
  pause ID, resume ID
  spec [--bundle DIR]   write a default config.json
]]

local M = {}

-- Logging ----------------------------------------------------------------

local log = { file = nil, format = "text" }

local function json_lib()
  local ok, cjson = pcall(require, "cjson")
  if not ok then
    perr.raise(perr.FAILURE, "the Lua JSON library is missing (install lua-cjson)")
  end
  return cjson
end

local function log_line(level, msg)
  if not log.file then return end
  local f = io.open(log.file, "a")
  if not f then return end
  if log.format == "json" then
    local cjson = json_lib()
    f:write(cjson.encode{ level = level, msg = msg, time = os.date("!%Y-%m-%dT%H:%M:%SZ") }, "\n")
  else
    f:write(os.date("!%Y-%m-%dT%H:%M:%SZ"), " ", level, " ", msg, "\n")
  end
  f:close()
end

local function fail(fmt, ...)
  perr.raise(perr.FAILURE, fmt, ...)
end

-- Signals ------------------------------------------------------------------

local function signal_number(s)
  if s == nil then return core.signals.TERM end
  local n = tonumber(s)
  if n then
    if n ~= math.floor(n) or n < 1 or n > 64 then fail("kill: '%s' is not a signal", s) end
    return math.floor(n)
  end
  local name = s:upper():gsub("^SIG", "")
  local rt = name:match("^RTMIN%+(%d+)$")
  if rt and core.signals.RTMIN then return core.signals.RTMIN + tonumber(rt) end
  local v = core.signals[name]
  if not v then fail("kill: '%s' is not a signal", s) end
  return v
end

-- State ----------------------------------------------------------------------

local function state_root(opt)
  if opt then return opt end
  if core.geteuid() == 0 then return "/run/pflask-oci" end
  local xdg = os.getenv("XDG_RUNTIME_DIR")
  if xdg and xdg ~= "" then return xdg .. "/pflask-oci" end
  return "/tmp/pflask-oci-" .. core.geteuid()
end

local function valid_id(id)
  if type(id) ~= "string" or #id == 0 or #id > 1024 or not id:match("^[A-Za-z0-9][A-Za-z0-9_.+-]*$") then
    fail("'%s' is not a valid container ID (letters, digits, '_', '.', '+', '-')", tostring(id))
  end
end

local function read_file(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

--- The process is still the one the state names (a pid and its start
--- time), and not a zombie waiting for its adopter to reap it.
local function alive(pid, start)
  if not pid then return false end
  local st = core.start_time(pid)
  if not st or st ~= start then return false end
  local stat = read_file("/proc/" .. pid .. "/stat")
  local s = stat and stat:match("%) (%a)")
  return s ~= nil and s ~= "Z" and s ~= "X"
end

local Store = {}
Store.__index = Store

local function store(root)
  return setmetatable({ root = root }, Store)
end

function Store:dir(id) return self.root .. "/" .. id end

--- The state of container id, or raises "does not exist".
function Store:load(id)
  valid_id(id)
  local d = self:dir(id)
  local data = core.state_read(d, "state.json")
  if not data then fail("container '%s' does not exist", id) end
  local ok, st = pcall(json_lib().decode, data)
  if not ok or type(st) ~= "table" then fail("container '%s': unreadable state", id) end
  st.dir = d
  -- cjson gives floats: pids and start times are integers.
  st.pid = st.pid and math.tointeger(st.pid)
  st.start = st.start and math.tointeger(st.start)
  return st
end

function Store:save(st)
  local t = {}
  for k, v in pairs(st) do if k ~= "dir" then t[k] = v end end
  perr.check("state", core.state_write(st.dir, "state.json", json_lib().encode(t)))
end

--- created (waiting on its FIFO), running or stopped.
local function status(st)
  if st.pid == nil then return "creating" end
  if st.paused and alive(st.pid, st.start) then return "paused" end
  if not alive(st.pid, st.start) then return "stopped" end
  if core.lstat(st.dir .. "/exec.fifo") then return "created" end
  return "running"
end

local function state_json(st)
  local cjson = json_lib()
  local s = status(st)
  local t = { ociVersion = OCI_VERSION, id = st.id, status = s, bundle = st.bundle }
  -- Only when there are some: an empty Lua table would encode as [].
  if st.annotations and next(st.annotations) then t.annotations = st.annotations end
  if s ~= "stopped" then t.pid = st.pid end
  return cjson.encode(t)
end

-- Hooks ------------------------------------------------------------------------

--- Run one OCI hook, in the runtime's namespaces, with the state JSON on
--- its stdin and exactly its own environment (`env`); raises when it
--- fails, or outlives its `timeout` (seconds). argv[0] is `path`: args[1]
--- is not passed as a different argv[0] (sh has no exec -a).
local function run_hook(kind, h, st)
  local input = os.tmpname()
  local f = assert(io.open(input, "w"))
  f:write(state_json(st))
  f:close()
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local line = { "env -i" }
  for _, e in ipairs(h.env or {}) do line[#line + 1] = q(e) end
  if h.timeout then line[#line + 1] = "timeout -k 1 " .. math.floor(h.timeout) end
  line[#line + 1] = q(h.path)
  for i = 2, #(h.args or {}) do line[#line + 1] = q(h.args[i]) end
  local ok, how, code = os.execute(table.concat(line, " ") .. " < " .. q(input))
  os.remove(input)
  if not ok then fail("%s hook %s: %s %s", kind, h.path, tostring(how), tostring(code)) end
end

local function run_hooks(st, kind, soft)
  for _, h in ipairs((st.hooks or {})[kind] or {}) do
    if soft then
      local ok, err = pcall(run_hook, kind, h, st)
      if not ok then log_line("warning", tostring(err)); io.stderr:write(PROGRAM, ": ", tostring(err), "\n") end
    else
      run_hook(kind, h, st)
    end
  end
end

-- config.json → pflask spec ---------------------------------------------------

local NS = { pid = "pid", network = "net", mount = "mount", ipc = "ipc", uts = "uts",
             user = "user", cgroup = "cgroup", time = "time" }

-- Mounts pflask makes itself with a root (pflask(1), FILESYSTEMS): the
-- OCI entries for them are what pflask does already.
local OWN_MOUNTS = { ["/proc"] = "proc", ["/sys"] = "sysfs", ["/dev"] = "tmpfs",
                     ["/dev/pts"] = "devpts", ["/dev/shm"] = "tmpfs", ["/dev/mqueue"] = "mqueue",
                     ["/sys/fs/cgroup"] = "cgroup" }

local function want(v, kind, field)
  if v ~= nil and type(v) ~= kind then
    fail("config.json: %s: must be %s, not %s", field, kind == "table" and "an object or array" or ("a " .. kind), type(v))
  end
  return v
end

local function is_array(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

local function want_array(v, field)
  if v ~= nil and not is_array(v) then fail("config.json: %s: must be an array", field) end
  return v or {}
end

local function strings(v, field)
  for i, s in ipairs(want_array(v, field)) do want(s, "string", field .. "[" .. (i - 1) .. "]") end
  return v or {}
end

local function integer(v, field)
  if v == nil then return nil end
  if math.type(v) ~= "integer" then
    if type(v) == "number" and v == math.floor(v) then return math.floor(v) end
    fail("config.json: %s: must be an integer", field)
  end
  return v
end

--- The mount options OCI gives, as pflask's bind flags or tmpfs options.
local function mount_entry(m, i, root)
  local field = "mounts[" .. (i - 1) .. "]"
  want(m, "table", field)
  local dest = want(m.destination, "string", field .. ".destination")
  if not dest or dest:sub(1, 1) ~= "/" then fail("config.json: %s.destination: must be an absolute path", field) end
  local mtype = want(m.type, "string", field .. ".type")
  local opts = strings(m.options, field .. ".options")
  local set = {}
  for _, o in ipairs(opts) do set[o] = true end
  if OWN_MOUNTS[dest] and (mtype == OWN_MOUNTS[dest] or (dest == "/dev/shm" and mtype == "tmpfs")) then
    return nil -- pflask makes it (its /proc, /sys, /dev with pts, shm, mqueue)
  end
  if mtype == "bind" or set.bind or set.rbind then
    local src = want(m.source, "string", field .. ".source")
    if not src then fail("config.json: %s.source: a bind mount needs one", field) end
    return { type = "bind", source = src, target = dest, readonly = set.ro or nil,
             nosuid = set.nosuid or nil, nodev = set.nodev or nil, noexec = set.noexec or nil }
  elseif mtype == "tmpfs" then
    local keep = {}
    for _, o in ipairs(opts) do
      if o:match("^mode=") or o:match("^size=") or o:match("^nr_inodes=") or o:match("^uid=") or o:match("^gid=") then
        keep[#keep + 1] = o
      elseif o ~= "nosuid" and o ~= "nodev" and o ~= "noexec" and o ~= "strictatime" and o ~= "rw" then
        fail("config.json: %s.options: '%s' is not supported for tmpfs", field, o)
      end
    end
    return { type = "tmp", target = dest, options = #keep > 0 and table.concat(keep, ",") or nil }
  end
  fail("config.json: %s: mount type '%s' at %s is not supported", field, tostring(mtype), dest)
end

local CAPSETS = { "bounding", "effective", "inheritable", "permitted", "ambient" }

--- Turn a parsed config.json into a pflask spec. Raises on what pflask
--- cannot do, never ignoring a field silently.
function M.spec_from_config(cfg, bundle)
  want(cfg, "table", "config.json")
  local spec = { init = "pid1", boot = false, terminal = false, namespaces = {} }
  local root = want(cfg.root, "table", "root")
  if not root or not root.path then fail("config.json: root.path: missing") end
  local rpath = want(root.path, "string", "root.path")
  if rpath:sub(1, 1) ~= "/" then rpath = bundle .. "/" .. rpath end
  local st = core.stat(rpath)
  if not st or st.type ~= "directory" then fail("config.json: root.path: '%s' is not a directory", rpath) end
  spec.root = rpath
  spec.readonly_root = want(root.readonly, "boolean", "root.readonly") or nil

  local p = want(cfg.process, "table", "process")
  if not p then fail("config.json: process: missing") end
  local args = strings(p.args, "process.args")
  if #args == 0 then fail("config.json: process.args: must name a command") end
  spec.command = args
  spec.setenv = {}
  for _, e in ipairs(strings(p.env, "process.env")) do
    local k, v = e:match("^([^=]+)=(.*)$")
    if not k then fail("config.json: process.env: '%s' is not NAME=VALUE", e) end
    spec.setenv[#spec.setenv + 1] = { name = k, value = v }
  end
  spec.chdir = want(p.cwd, "string", "process.cwd")
  if want(p.terminal, "boolean", "process.terminal") then
    -- A pty whose master goes to --console-socket (create sets it).
    spec.terminal = true
    local size = want(p.consoleSize, "table", "process.consoleSize")
    if size then
      spec.console_size = { width = integer(size.width, "process.consoleSize.width"),
                            height = integer(size.height, "process.consoleSize.height") }
    end
  end
  local user = want(p.user, "table", "process.user") or {}
  local uid = integer(user.uid, "process.user.uid") or 0
  local gid = integer(user.gid, "process.user.gid") or 0
  local extra = want_array(user.additionalGids, "process.user.additionalGids")
  if uid ~= 0 or gid ~= 0 or #extra > 0 then
    -- The ids as given, whatever the root's /etc/passwd says.
    spec.user = tostring(uid)
    spec.gid = gid
    spec.groups = {}
    for i, g in ipairs(extra) do spec.groups[i] = integer(g, "process.user.additionalGids[" .. (i - 1) .. "]") end
  end
  if user.username ~= nil then fail("config.json: process.user.username: Windows only") end
  if user.umask ~= nil then
    local m = integer(user.umask, "process.user.umask")
    if m < 0 or m > tonumber("0777", 8) then fail("config.json: process.user.umask: %d is not a mask", m) end
    spec.umask = m -- set by create, inherited through clone
  end
  spec.no_new_privs = want(p.noNewPrivileges, "boolean", "process.noNewPrivileges") or nil
  if p.rlimits then
    spec.rlimits = {}
    for i, r in ipairs(want_array(p.rlimits, "process.rlimits")) do
      local f = "process.rlimits[" .. (i - 1) .. "]"
      want(r, "table", f)
      local name = want(r.type, "string", f .. ".type")
      if not name or not name:match("^RLIMIT_%u+$") then fail("config.json: %s.type: '%s' is not an rlimit", f, tostring(name)) end
      spec.rlimits[name:sub(8):lower()] = { soft = integer(r.soft, f .. ".soft"), hard = integer(r.hard, f .. ".hard") }
    end
  end
  local caps = want(p.capabilities, "table", "process.capabilities")
  if caps then
    -- pflask keeps one set (bounding = permitted = effective); the
    -- container gets the union of what OCI lists in bounding, effective
    -- and permitted, ambient as listed.
    local union, list = {}, { "-all" }
    for _, set in ipairs(CAPSETS) do
      for _, c in ipairs(strings(caps[set], "process.capabilities." .. set)) do
        if not c:match("^CAP_[A-Z_]+$") then fail("config.json: process.capabilities.%s: '%s' is not a capability", set, c) end
        if set ~= "inheritable" and set ~= "ambient" and not union[c] then
          union[c] = true
          list[#list + 1] = "+" .. c:sub(5):lower()
        end
      end
    end
    spec.caps = list
  end
  if p.apparmorProfile or p.selinuxLabel then
    fail("config.json: process.apparmorProfile/selinuxLabel: not supported")
  end

  spec.hostname = want(cfg.hostname, "string", "hostname")

  local linux = want(cfg.linux, "table", "linux") or {}
  for name in pairs(NS) do spec.namespaces[NS[name]] = false end
  for i, n in ipairs(want_array(linux.namespaces, "linux.namespaces")) do
    local f = "linux.namespaces[" .. (i - 1) .. "]"
    want(n, "table", f)
    local name = NS[want(n.type, "string", f .. ".type") or ""]
    if not name then fail("config.json: %s.type: '%s' is not a namespace", f, tostring(n.type)) end
    spec.namespaces[name] = want(n.path, "string", f .. ".path") or true
  end
  if spec.hostname and not spec.namespaces.uts then spec.hostname = nil end
  for _, which in ipairs{ "uid", "gid" } do
    local m = want_array(linux[which .. "Mappings"], "linux." .. which .. "Mappings")
    if #m > 0 then
      local out = {}
      for i, e in ipairs(m) do
        local f = "linux." .. which .. "Mappings[" .. (i - 1) .. "]"
        out[i] = { inside = integer(e.containerID, f .. ".containerID"), outside = integer(e.hostID, f .. ".hostID"),
                   count = integer(e.size, f .. ".size") }
      end
      spec[which .. "_map"] = out
    end
  end
  local res = want(linux.resources, "table", "linux.resources")
  if res then
    local limits = {}
    local mem = want(res.memory, "table", "linux.resources.memory")
    if mem and mem.limit and mem.limit > 0 then limits.memory = integer(mem.limit, "linux.resources.memory.limit") end
    local pids = want(res.pids, "table", "linux.resources.pids")
    if pids and pids.limit and pids.limit > 0 then limits.pids = integer(pids.limit, "linux.resources.pids.limit") end
    local cpu = want(res.cpu, "table", "linux.resources.cpu")
    if cpu and cpu.quota and cpu.quota > 0 then
      limits.cpus = cpu.quota / (cpu.period and cpu.period > 0 and cpu.period or 100000)
    end
    if next(limits) then spec.limits = limits end
    -- The device cgroup: pflask's policy denies every device but the
    -- standard ones and those bound in; allow rules add to it.
    for i, d in ipairs(want_array(res.devices, "linux.resources.devices")) do
      local f = "linux.resources.devices[" .. (i - 1) .. "]"
      want(d, "table", f)
      local dtype = want(d.type, "string", f .. ".type") or "a"
      local access = want(d.access, "string", f .. ".access") or "rwm"
      if not access:match("^[rwm]+$") then fail("config.json: %s.access: '%s' is not r, w, m", f, access) end
      if d.allow == false then
        if dtype ~= "a" or d.major or d.minor then
          fail("config.json: %s: a deny rule other than deny-all is not supported", f)
        end
        if i ~= 1 then fail("config.json: %s: deny-all must come first", f) end
      elseif d.allow == true then
        if dtype ~= "a" and dtype ~= "c" and dtype ~= "b" then fail("config.json: %s.type: '%s' is not a, c, b", f, dtype) end
        local function n(v, what) return v == nil and "*" or tostring(integer(v, f .. "." .. what)) end
        spec.devices = spec.devices or {}
        spec.devices[#spec.devices + 1] = dtype == "a" and "a" or string.format("%s %s:%s %s", dtype, n(d.major, "major"), n(d.minor, "minor"), access)
      else
        fail("config.json: %s.allow: must be true or false", f)
      end
    end
  end
  -- sysctl: the engine writes them in the container's namespaces
  -- before its /proc (namespaced ones only, checked by plan()).
  local sysctl = want(linux.sysctl, "table", "linux.sysctl")
  if sysctl and next(sysctl) then
    spec.sysctls = {}
    for k, v in pairs(sysctl) do
      want(v, "string", "linux.sysctl." .. tostring(k))
      spec.sysctls[k] = v
    end
  end
  local cpath = want(linux.cgroupsPath, "string", "linux.cgroupsPath")
  if cpath then
    if cpath:match("^[^/]*:[^/]*:[^/]*$") then
      fail("config.json: linux.cgroupsPath: '%s': systemd cgroup paths are not supported (use cgroupfs)", cpath)
    end
    spec.cgroup_path = cpath
  end
  -- OCI: no filter unless the config has one (pflask's own default
  -- filter is the classic command line's).
  spec.seccomp = false
  if linux.seccomp then
    want(linux.seccomp, "table", "linux.seccomp")
    if not core.seccomp_compile then fail("config.json: linux.seccomp: this pflask has no seccomp compiler") end
    -- Compiled by plan() (spec.seccomp), a bad one naming --seccomp.
    spec.seccomp = M.seccomp_table(linux.seccomp)
  end
  spec.mounts = {}
  -- Device nodes: the host's own node of that number, bound in (a bound
  -- device is allowed by the device policy); none is made.
  for i, dev in ipairs(want_array(linux.devices, "linux.devices")) do
    local f = "linux.devices[" .. (i - 1) .. "]"
    want(dev, "table", f)
    local dpath = want(dev.path, "string", f .. ".path")
    local dtype = want(dev.type, "string", f .. ".type")
    local major, minor = integer(dev.major, f .. ".major"), integer(dev.minor, f .. ".minor")
    if not dpath or dpath:sub(1, 5) ~= "/dev/" then fail("config.json: %s.path: must be under /dev", f) end
    local kind, hmaj, hmin = core.device_number(dpath)
    local want_kind = (dtype == "c" or dtype == "u") and "char" or dtype == "b" and "block" or nil
    if not want_kind then fail("config.json: %s.type: '%s' is not supported (c, u, b)", f, tostring(dtype)) end
    if kind ~= want_kind or hmaj ~= major or hmin ~= minor then
      fail("config.json: %s: the host has no %s device %s:%s at %s (pflask binds the host's node, it makes none)",
           f, want_kind, tostring(major), tostring(minor), dpath)
    end
    spec.mounts[#spec.mounts + 1] = { type = "bind", source = dpath, target = dpath }
  end
  for i, m in ipairs(want_array(cfg.mounts, "mounts")) do
    local e = mount_entry(m, i, rpath)
    if e then spec.mounts[#spec.mounts + 1] = e end
  end
  -- On top of pflask's own masked /proc and /sys paths.
  spec.masked_paths = strings(linux.maskedPaths, "linux.maskedPaths")
  spec.readonly_paths = strings(linux.readonlyPaths, "linux.readonlyPaths")
  local prop = want(linux.rootfsPropagation, "string", "linux.rootfsPropagation")
  if prop and prop ~= "private" and prop ~= "rprivate" then
    fail("config.json: linux.rootfsPropagation: '%s' is not supported (pflask's mounts are private)", prop)
  end
  local hooks = want(cfg.hooks, "table", "hooks") or {}
  for k, list in pairs(hooks) do
    for i, h in ipairs(want_array(list, "hooks." .. k)) do
      want(h, "table", "hooks." .. k .. "[" .. (i - 1) .. "]")
      want(h.path, "string", "hooks." .. k .. "[" .. (i - 1) .. "].path")
    end
  end
  return spec
end

--- OCI's linux.seccomp as the table core.seccomp_compile takes.
function M.seccomp_table(s)
  local ACTIONS = { ALLOW = "allow", ERRNO = "errno", KILL = "kill", KILL_THREAD = "kill",
                    KILL_PROCESS = "kill_process", TRAP = "trap", LOG = "log" }
  local function action(a)
    local name = type(a) == "string" and a:gsub("^SCMP_ACT_", "") or nil
    return name and ACTIONS[name] or fail("linux.seccomp: action '%s' is not supported", tostring(a))
  end
  local known = core.seccomp_syscall_known or function() return true end
  local t = { default = action(s.defaultAction), errno = integer(s.defaultErrnoRet, "linux.seccomp.defaultErrnoRet"),
              arch = {}, rules = {} }
  for i, a in ipairs(s.architectures or {}) do t.arch[i] = a:gsub("^SCMP_ARCH_", ""):lower() end
  -- None named: the native one and its compat ones (the compiler's default).
  if #t.arch == 0 then t.arch = nil end
  local ops = { SCMP_CMP_NE = "ne", SCMP_CMP_LT = "lt", SCMP_CMP_LE = "le", SCMP_CMP_EQ = "eq",
                SCMP_CMP_GE = "ge", SCMP_CMP_GT = "gt", SCMP_CMP_MASKED_EQ = "masked_eq" }
  for i, r in ipairs(s.syscalls or {}) do
    -- Names this libseccomp does not know (a profile for newer kernels)
    -- are left out, as runc does.
    local names = {}
    for _, n in ipairs(r.names or {}) do if known(n) then names[#names + 1] = n end end
    local f = "linux.seccomp.syscalls[" .. (i - 1) .. "]"
    local rule = { action = action(r.action), errno = integer(r.errnoRet, f .. ".errnoRet"), syscalls = names, args = {} }
    for j, a in ipairs(r.args or {}) do
      local fa = f .. ".args[" .. (j - 1) .. "]"
      rule.args[j] = { index = integer(a.index, fa .. ".index"),
                       op = ops[a.op] or fail("linux.seccomp: '%s' is not a comparison", tostring(a.op)),
                       value = integer(a.value, fa .. ".value"), value2 = integer(a.valueTwo, fa .. ".valueTwo") }
    end
    if #names > 0 then t.rules[#t.rules + 1] = rule end
  end
  return t
end

local function load_config(bundle)
  local file = bundle .. "/config.json"
  local data = read_file(file)
  if not data then fail("%s: cannot be read", file) end
  local ok, cfg = pcall(json_lib().decode, data)
  if not ok then fail("%s: not valid JSON: %s", file, tostring(cfg)) end
  if type(cfg) ~= "table" then fail("%s: not a JSON object", file) end
  return cfg
end

-- Commands -----------------------------------------------------------------------

--- Options of a subcommand: { ["--bundle"] = "value", ["--force"] = "flag" }
--- also "-b" short aliases; returns opts, positional.
local function parse(args, known, aliases)
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      table.move(args, i + 1, #args, #pos + 1, pos)
      break
    elseif #pos > 0 and known._stop_at_positional then
      table.move(args, i, #args, #pos + 1, pos)
      break
    elseif a:sub(1, 1) == "-" and #a > 1 then
      local name, value = a:match("^(%-%-?[^=]+)=(.*)$")
      name = name or a
      name = aliases and aliases[name] or name
      if name:sub(1, 2) ~= "--" then name = "-" .. name end
      local kind = known[name]
      if not kind then fail("%s: unknown option", a) end
      if kind == "flag" then
        if value then fail("%s: takes no value", name) end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then fail("%s: needs a value", name) end
        end
        if kind == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

local function one_id(pos, cmd)
  if #pos ~= 1 then fail("%s: needs exactly one container ID", cmd) end
  return pos[1]
end

local function write_pid_file(path, pid)
  if not path then return end
  local tmp = path .. ".tmp"
  local f = io.open(tmp, "w")
  if not f then fail("--pid-file: cannot write %s", path) end
  f:write(tostring(pid))
  f:close()
  local ok, err = os.rename(tmp, path)
  if not ok then os.remove(tmp); fail("--pid-file: %s", err) end
end

--- Create container id from bundle: returns the started pflask Container
--- and its state; everything made is undone if any step fails.
local function create(S, id, bundle, opts, orphan)
  valid_id(id)
  bundle = require("pflask.path").absolute(bundle or "."):gsub("/%.$", "")
  local cfg = load_config(bundle)
  local spec = M.spec_from_config(cfg, bundle)
  if spec.terminal then
    if not opts["--console-socket"] then
      fail("--console-socket: needed when process.terminal is true")
    end
    spec.console_socket = require("pflask.path").absolute(opts["--console-socket"])
  elseif opts["--console-socket"] then
    fail("--console-socket: only with process.terminal true")
  elseif orphan then
    -- pflask never lets a terminal of the host into a container: it
    -- would relay it through a pty, but nobody stays to relay.
    for fd = 0, 2 do
      if core.isatty(fd) then
        fail("create: standard %s is a terminal and process.terminal is false: pflask lets no terminal of the host into a container (redirect it, or use process.terminal with --console-socket)",
             ({ [0] = "input", "output", "error" })[fd])
      end
    end
  end
  local oom = integer((cfg.process or {}).oomScoreAdj, "process.oomScoreAdj")
  local annotations = want(cfg.annotations, "table", "annotations")
  local hooks = want(cfg.hooks, "table", "hooks")
  local pflask = require "pflask"
  -- The state root and its parents, as runc makes them (containerd's
  -- shim names /run/containerd/runc/NAMESPACE).
  local acc = ""
  for part in S.root:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    local rok, rmsg, rerr = core.mkdir(acc, tonumber("0711", 8))
    if not rok and rerr ~= EEXIST then fail("--root: %s", rmsg) end
  end
  local d = S:dir(id)
  local ok, msg, errno = core.mkdir(d, tonumber("0711", 8))
  if not ok then
    if errno == EEXIST then fail("container '%s' already exists", id) end
    fail("%s", msg)
  end
  local st = { id = id, bundle = bundle, dir = d, annotations = annotations, hooks = hooks,
               created = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  local c
  local ok2, err = pcall(function()
    S:save(st)
    spec.start_fifo = d .. "/exec.fifo"
    spec.start_orphan = orphan
    local umask = spec.umask
    spec.umask = nil
    c = pflask.container(spec)
    -- The cgroups are known once planned: in the state before any exists,
    -- so that delete --force finds them (and the processes in them)
    -- whenever create dies.
    if c.plan.cgroups then
      st.cgroup_dirs, st.cgroups = {}, {}
      for i, cg in ipairs(c.plan.cgroups) do st.cgroup_dirs[i], st.cgroups[i] = cg.dir, cg.procs or cg.dir end
      S:save(st)
    end
    -- Inherited through clone by the container's process.
    if umask then core.umask(umask) end
    c:start()
    st.pid = c:pid()
    st.start = core.start_time(st.pid)
    if oom then
      -- Written from outside, before the command runs: it inherits
      -- nothing from us, and lowering it needs root.
      local f = io.open("/proc/" .. st.pid .. "/oom_score_adj", "w")
      if not f or not f:write(tostring(oom)) or not f:close() then
        fail("config.json: process.oomScoreAdj: cannot set %d", oom)
      end
    end
    local reg = c.plan.registry
    if reg and reg.record then
      -- The engine's record, for exec (what to join, the confinement);
      -- kept here, with the container, not in pflask's own list.
      local registry = require "pflask.registry"
      st.record = registry.encode(reg.record)
      if reg.file then core.state_remove(reg.dir, reg.file); reg.file = nil end
    end
    S:save(st)
    write_pid_file(opts["--pid-file"], st.pid)
    -- Once the container exists (its pid in the state they read).
    run_hooks(st, "createRuntime")
    run_hooks(st, "createContainer")
  end)
  if not ok2 then
    if c and c.process then pcall(c.abort, c) end
    core.remove_tree(d)
    error(err, 0)
  end
  return c, st
end

local function remove_container(S, st)
  for _, dir in ipairs(st.cgroup_dirs or {}) do core.cgroup_remove(dir, true) end
  for _, dir in ipairs(st.cgroups or {}) do if core.stat(dir) then core.cgroup_remove(dir, true) end end
  perr.check("delete", core.remove_tree(st.dir))
end

local function start(S, st)
  local s = status(st)
  if s ~= "created" then fail("container '%s' is %s, not created: cannot start it", st.id, s) end
  run_hooks(st, "prestart")
  run_hooks(st, "startContainer")
  local fifo = st.dir .. "/exec.fifo"
  local ok, msg = core.start_fifo(fifo, 10000)
  if not ok then fail("start '%s': %s", st.id, tostring(msg)) end
  os.remove(fifo)
  run_hooks(st, "poststart", true)
end

local function freeze(st, on)
  local done = false
  for _, dir in ipairs(st.cgroup_dirs or {}) do
    if core.stat(dir .. "/cgroup.freeze") then
      perr.check("freeze", core.cgroup_write(dir, "cgroup.freeze", on and "1" or "0"))
      done = true
    elseif core.stat(dir .. "/freezer.state") then
      perr.check("freeze", core.cgroup_write(dir, "freezer.state", on and "FROZEN" or "THAWED"))
      done = true
    end
  end
  if not done then fail("%s: the container has no freezer cgroup", on and "pause" or "resume") end
end

local function pids(st)
  local out, seen = {}, {}
  -- Where the processes are: the payload leaves (st.cgroups).
  for _, dir in ipairs(st.cgroups or st.cgroup_dirs or {}) do
    local data = read_file(dir .. "/cgroup.procs")
    for p in (data or ""):gmatch("%d+") do
      p = tonumber(p)
      if not seen[p] then seen[p] = true; out[#out + 1] = p end
    end
    if #out > 0 then break end
  end
  if #out == 0 and alive(st.pid, st.start) then out[1] = st.pid end
  table.sort(out)
  return out
end

local DEFAULT_SPEC = [[
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ "sh" ],
    "env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" ],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "pflask",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] }
  ],
  "linux": {
    "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ]
  }
}
]]

function M.main(args)
  -- Global options, wherever they come before the subcommand.
  local gopts = { root = nil }
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[^=]+)=(.*)$")
    name = name or a
    if name == "--root" or name == "--log" or name == "--log-format" then
      if not value then i = i + 1; value = args[i] end
      if value == nil then fail("%s: needs a value", name) end
      if name == "--log-format" and value ~= "text" and value ~= "json" then
        fail("--log-format: '%s' is not text or json", value)
      end
      gopts[name] = value
      if name == "--log" then log.file = value end
      if name == "--log-format" then log.format = value end
    elseif name == "--debug" then
      gopts.debug = true -- more output: nothing more to say for now
    elseif name == "--systemd-cgroup" then
      fail("--systemd-cgroup: not supported (pflask manages cgroupfs directly)")
    elseif name == "--version" or name == "-v" then
      io.stdout:write(PROGRAM, " version ", core.version, "\nspec: ", OCI_VERSION, "\n")
      return 0
    elseif name == "-h" or name == "--help" then
      io.stdout:write(USAGE)
      return 0
    elseif a:sub(1, 1) == "-" then
      fail("%s: unknown global option", a)
    else
      break
    end
    i = i + 1
  end
  local cmd = args[i]
  if not cmd then io.stderr:write(USAGE); return 1 end
  local rest = table.move(args, i + 1, #args, 1, {})
  local S = store(state_root(gopts["--root"]))

  if cmd == "create" or cmd == "run" then
    local opts, pos = parse(rest, { ["--bundle"] = "value", ["--pid-file"] = "value", ["--console-socket"] = "value",
                                    ["--detach"] = "flag", ["--no-pivot"] = "flag", ["--no-new-keyring"] = "flag",
                                    ["--preserve-fds"] = "value" },
                        { ["-b"] = "--bundle", ["-d"] = "--detach" })
    if opts["--preserve-fds"] and opts["--preserve-fds"] ~= "0" then fail("--preserve-fds: not supported yet") end
    local id = one_id(pos, cmd)
    if cmd == "create" then
      create(S, id, opts["--bundle"], opts, true)
      -- The command waits on its FIFO, adopted by our parent (or init):
      -- leave without the cleanup a Container does when collected.
      io.stdout:flush()
      os.exit(0, false)
    end
    local c, st = create(S, id, opts["--bundle"], opts, opts["--detach"] == true)
    start(S, st)
    if opts["--detach"] then io.stdout:flush(); os.exit(0, false) end
    local code = c:wait()
    run_hooks(st, "poststop", true)
    remove_container(S, st)
    return code
  elseif cmd == "start" then
    local _, pos = parse(rest, {})
    start(S, S:load(one_id(pos, cmd)))
  elseif cmd == "state" then
    local _, pos = parse(rest, {})
    io.stdout:write(state_json(S:load(one_id(pos, cmd))), "\n")
  elseif cmd == "kill" then
    local opts, pos = parse(rest, { ["--all"] = "flag" }, { ["-a"] = "--all" })
    if #pos < 1 or #pos > 2 then fail("kill: needs a container ID and an optional signal") end
    local st = S:load(pos[1])
    local sig = signal_number(pos[2])
    local s = status(st)
    if s ~= "created" and s ~= "running" and s ~= "paused" then
      fail("container '%s' is %s: cannot send it a signal", st.id, s)
    end
    if opts["--all"] then
      for _, p in ipairs(pids(st)) do core.kill(p, sig) end
    else
      perr.check("kill", core.kill(st.pid, sig))
    end
  elseif cmd == "delete" then
    local opts, pos = parse(rest, { ["--force"] = "flag" }, { ["-f"] = "--force" })
    local id = one_id(pos, cmd)
    valid_id(id)
    local ok, st = pcall(S.load, S, id)
    if not ok then
      -- A crash between mkdir and the first state write: --force cleans.
      -- runc's --force: a container that is not there is deleted.
      if opts["--force"] then
        if core.lstat(S:dir(id)) then core.remove_tree(S:dir(id)) end
        return 0
      end
      error(st, 0)
    end
    local s = status(st)
    if s == "running" or s == "paused" then
      if not opts["--force"] then fail("container '%s' is %s: stop it first, or delete --force", id, s) end
    end
    if s ~= "stopped" then
      -- (creating: create died before it saved the pid; its processes
      -- are in the cgroups it saved.)
      if s == "paused" then pcall(freeze, st, false) end
      for _, p in ipairs(pids(st)) do core.kill(p, core.signals.KILL) end
      if st.pid and alive(st.pid, st.start) then core.kill(st.pid, core.signals.KILL) end
    end
    remove_container(S, st)
    if s ~= "created" then run_hooks(st, "poststop", true) end
  elseif cmd == "list" then
    local opts = parse(rest, { ["--format"] = "value", ["--quiet"] = "flag" }, { ["-f"] = "--format", ["-q"] = "--quiet" })
    local names, msg, errno = core.dir_entries(S.root)
    if not names then
      if errno ~= ENOENT then fail("list: %s", msg) end
      names = {}
    end
    table.sort(names)
    local out = {}
    for _, id in ipairs(names) do
      local ok, st = pcall(S.load, S, id)
      if ok then out[#out + 1] = st end
    end
    if opts["--format"] == "json" then
      local t = {}
      for _, st in ipairs(out) do
        t[#t + 1] = { id = st.id, pid = st.pid, status = status(st), bundle = st.bundle, created = st.created }
      end
      io.stdout:write(#t == 0 and "[]" or json_lib().encode(t), "\n")
    elseif opts["--quiet"] then
      for _, st in ipairs(out) do io.stdout:write(st.id, "\n") end
    else
      io.stdout:write(string.format("%-20s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED"))
      for _, st in ipairs(out) do
        local s = status(st)
        io.stdout:write(string.format("%-20s %-8s %-10s %-40s %s\n", st.id, s == "stopped" and 0 or st.pid, s, st.bundle, st.created))
      end
    end
  elseif cmd == "ps" then
    local opts, pos = parse(rest, { ["--format"] = "value" }, { ["-f"] = "--format" })
    local st = S:load(one_id(pos, cmd))
    local list = pids(st)
    if opts["--format"] == "json" then
      io.stdout:write(#list == 0 and "[]" or json_lib().encode(list), "\n")
    else
      io.stdout:write("PID\n")
      for _, p in ipairs(list) do io.stdout:write(p, "\n") end
    end
  elseif cmd == "pause" or cmd == "resume" then
    local _, pos = parse(rest, {})
    local st = S:load(one_id(pos, cmd))
    local s = status(st)
    if cmd == "pause" and s ~= "running" then fail("container '%s' is %s, not running: cannot pause it", st.id, s) end
    if cmd == "resume" and s ~= "paused" then fail("container '%s' is %s, not paused: cannot resume it", st.id, s) end
    freeze(st, cmd == "pause")
    st.paused = cmd == "pause" or nil
    S:save(st)
  elseif cmd == "exec" then
    local known = { ["--process"] = "value", ["--detach"] = "flag", ["--tty"] = "flag", ["--console-socket"] = "value",
                    ["--pid-file"] = "value", ["--cwd"] = "value", ["--env"] = "list", ["--user"] = "value",
                    _stop_at_positional = true }
    local opts, pos = parse(rest, known, { ["-p"] = "--process", ["-d"] = "--detach", ["-t"] = "--tty",
                                           ["-e"] = "--env", ["-u"] = "--user" })
    if opts["--pid-file"] and not opts["--detach"] then
      fail("exec: --pid-file: only with --detach")
    end
    local id = table.remove(pos, 1)
    if not id then fail("exec: needs a container ID") end
    local st = S:load(id)
    local s = status(st)
    if s ~= "running" then fail("container '%s' is %s, not running: cannot exec in it", id, s) end
    local argv, xo = pos, { env = {} }
    if opts["--process"] then
      local data = read_file(opts["--process"])
      if not data then fail("--process: cannot read %s", opts["--process"]) end
      local ok, p = pcall(json_lib().decode, data)
      if not ok or type(p) ~= "table" then fail("--process: %s: not valid JSON", opts["--process"]) end
      argv = strings(p.args, "process.args")
      for _, e in ipairs(strings(p.env, "process.env")) do
        local k, v = e:match("^([^=]+)=(.*)$")
        if k then xo.env[k] = v end
      end
      xo.cwd = want(p.cwd, "string", "process.cwd")
      local pu = want(p.user, "table", "process.user")
      if pu then
        xo.user = tostring(integer(pu.uid, "process.user.uid") or 0)
        xo.gid = integer(pu.gid, "process.user.gid") or 0
        xo.groups = {}
        for i, g in ipairs(want_array(pu.additionalGids, "process.user.additionalGids")) do
          xo.groups[i] = integer(g, "process.user.additionalGids[" .. (i - 1) .. "]")
        end
        if pu.umask ~= nil then fail("--process: process.user.umask: not supported for exec yet") end
      end
      if want(p.terminal, "boolean", "process.terminal") then opts["--tty"] = true end
    end
    if #argv == 0 then fail("exec: needs a command") end
    for _, e in ipairs(opts["--env"] or {}) do
      local k, v = e:match("^([^=]+)=(.*)$")
      if not k then fail("--env: '%s' is not NAME=VALUE", e) end
      xo.env[k] = v
    end
    xo.cwd = opts["--cwd"] or xo.cwd
    xo.user = opts["--user"] or xo.user
    if opts["--tty"] then
      if not opts["--console-socket"] then fail("exec: --tty: needs --console-socket") end
      xo.console_socket = require("pflask.path").absolute(opts["--console-socket"])
    elseif opts["--console-socket"] then
      fail("exec: --console-socket: only with --tty")
    end
    xo.detach = opts["--detach"] or nil
    local registry = require "pflask.registry"
    local target = registry.target(registry.decode(st.record))
    local status, pid = require("pflask.exec").run(target, argv, xo)
    if opts["--detach"] then
      write_pid_file(opts["--pid-file"], pid)
      -- The command's reaper outlives us: leave without collecting it.
      io.stdout:flush()
      os.exit(0, false)
    end
    return status
  elseif cmd == "spec" then
    local opts = parse(rest, { ["--bundle"] = "value", ["--rootless"] = "flag" }, { ["-b"] = "--bundle" })
    if opts["--rootless"] then fail("spec --rootless: not supported yet") end
    local file = (opts["--bundle"] or ".") .. "/config.json"
    if core.lstat(file) then fail("%s already exists", file) end
    local f = io.open(file, "w")
    if not f then fail("cannot write %s", file) end
    f:write(DEFAULT_SPEC)
    f:close()
  else
    fail("'%s' is not a command (see --help)", cmd)
  end
  return 0
end

--- The command line: errors print as "pflask-oci: ...", and go to the
--- log too. Returns the exit status.
function M.cli(...)
  if os.getenv("PFLASK_DEBUG") == "1" then return M.main({ ... }) end
  local ok, result = pcall(M.main, { ... })
  if ok then return result end
  if perr.is(result) then
    io.stderr:write(PROGRAM, ": ", result.message, "\n")
    pcall(log_line, "error", result.message)
    return result.status == 0 and 1 or result.status
  end
  pcall(log_line, "error", tostring(result))
  error(result, 0)
end

return M
