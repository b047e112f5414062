-- The classic command line: `pflask [OPTIONS] [--] [COMMAND [ARGS...]]`.
--
-- Parsing follows getopt_long with "+" (options end at the first argument
-- that is not one, so the command keeps its own options); as there, a
-- long option may be shortened to any unique prefix (--chr=R). parse()
-- only builds a spec; the recipe decides what to do with it.

local error_ = require("pflask.error")

-- The spec parsers load on first use: most command lines need none of
-- them, and start-up time is what users feel.
local function lazy(name)
  return setmetatable({}, { __index = function(t, k)
    local module = require(name)
    setmetatable(t, { __index = module })
    return module[k]
  end })
end
local mount = lazy("pflask.spec.mount")
local netif = lazy("pflask.spec.netif")
local usermap = lazy("pflask.spec.usermap")
local caps = lazy("pflask.spec.caps")
local limits = lazy("pflask.spec.limits")

---@class pflask.Namespaces
---@field mount boolean
---@field pid boolean
---@field ipc boolean
---@field uts boolean
---@field cgroup boolean
---@field net boolean true when a --netif is given
---@field time boolean
---@field user boolean|nil true: asked for (--user, --user-map); false: --no-userns; nil: decided at run time

---@class pflask.EnvVar
---@field name string
---@field value string

---@class pflask.Spec
---@field command string[]|nil the command and its arguments; nil runs the user's shell
---@field namespaces pflask.Namespaces
---@field root string|nil --chroot
---@field chdir string|nil --chdir
---@field hostname string|nil --hostname
---@field user string|nil --user, a name or a number, resolved later
---@field uid_map pflask.IdMap[]|nil --user-map, in order
---@field gid_map pflask.IdMap[]|nil the same ranges as uid_map (separate tables)
---@field mounts pflask.Mount[] --mount, in order
---@field netifs pflask.Netif[] --netif, in order
---@field ephemeral boolean --ephemeral
---@field readonly_root boolean|nil --read-only
---@field ephemeral_dir string|nil --ephemeral-dir
---@field cgroups string[] --cgroup controllers, in order
---@field caps pflask.CapOp[] --caps entries of every --caps, in order
---@field no_new_privs boolean --no-new-privs
---@field limits {memory: integer|nil, pids: integer|nil, cpus: number|nil} --memory (bytes), --pids-max, --cpus
---@field detach boolean --detach
---@field attach integer|string|nil --attach: a pid or a name
---@field exec integer|string|nil --exec: run command in this running container (a pid or a name)
---@field name string|nil --name
---@field setenv pflask.EnvVar[] --setenv, in order
---@field keepenv boolean --keepenv
---@field pass_fds (integer|string)[]|nil --keep-fd: fds from 3 up passed on to the command (decimal strings from the command line)
---@field init "auto"|"pid1"|"reaper" who is pid 1: see PID 1 in pflask(1)
---@field register boolean|nil --register: true (yes), false (no), nil (auto: when the host runs machined)
---@field seccomp false|table|nil --seccomp=none: false; a filter table (doc/lua-api.md); nil: the default filter
---@field syscalls string[]|nil --syscalls: edits of the default filter ("-name", "+name", "@group")
---@field rlimits table<string, integer|string|{soft: integer|string, hard: integer|string}>|nil --rlimit
---@field timeout number|{seconds: number, grace: number}|nil --timeout
---@field cpuset string|integer[]|nil --cpuset: "0-3,6" or {0, 1, 2, 3, 6}
---@field sysctls table<string, string>|nil --sysctl: { ["net.ipv4.ip_forward"] = "1" }

local M = {}

-- One version for the whole program: the one CMake builds the engine with.
-- M.VERSION, read from pflask.core when first asked for: --help and
-- parsing need nothing else from it, and opening it is a third of the
-- executable's own start-up.
setmetatable(M, { __index = function(_, k)
  if k == "VERSION" then return require("pflask.core").version end
end })

--- The --version text: the version, then the features built in ("+") or
--- not ("-"), as systemd tools print them.
---@return string
function M.version_text()
  return "pflask " .. M.VERSION .. "\n" .. table.concat(require("pflask.core").features, " ") .. "\n"
end

--- Refuse a value that is empty: every option value names something.
---@param opt string
---@param value string
---@param meta string what the option expects, for the message
local function nonempty(opt, value, meta)
  if value == "" then
    error_.option(opt, "value is empty, expected %s", meta)
  end
end

--- Check a hostname: the kernel takes up to 64 bytes (HOST_NAME_MAX).
---@param value string
local function check_hostname(value)
  nonempty("--hostname", value, "NAME")
  if #value > 64 then
    error_.option("--hostname", "'%s' is longer than 64 characters", value)
  elseif value:find("\0", 1, true) then
    error_.option("--hostname", "contains a NUL byte")
  end
end

--- Parse a --cgroup value: a controller, or a v1 named hierarchy.
---@param value string
---@return string
local function check_cgroup(value)
  if not (value:match("^[a-z0-9_]+$") or value:match("^name=[a-z0-9_]+$")) then
    error_.option("--cgroup", "'%s' is not a controller name ([a-z0-9_]+ or name=[a-z0-9_]+)", value)
  end
  return value
end

--- Parse an --attach value: a positive decimal pid, or a container's name.
---@param value string
---@return integer|string
local function check_pid_or_name(value, opt)
  opt = opt or "--attach"
  if not value:match("^%d+$") then
    local ok, why = require("pflask.registry").valid_name(value)
    if not ok then error_.option(opt, "'%s' is neither a process id nor a name: a name %s", value, why) end
    return value
  end
  -- pid_max is at most 2^22; ten digits keep tonumber exact and in int range.
  local pid = #value <= 10 and math.tointeger(tonumber(value))
  if not pid or pid < 1 or pid > 0x7fffffff then
    error_.option(opt, "'%s' is not a process id", value)
  end
  return pid
end

--- Parse a --setenv list: NAME=VALUE[,NAME=VALUE...]. Values cannot hold
--- commas; a second --setenv does not help, so the man page says so.
---@param value string
---@param into pflask.EnvVar[]
local function parse_setenv(value, into)
  nonempty("--setenv", value, "NAME=VALUE[,NAME=VALUE...]")
  for entry in (value .. ","):gmatch("([^,]*),") do
    if entry == "" then
      error_.option("--setenv", "empty entry in '%s'", value)
    end
    local name, val = entry:match("^([^=]*)=(.*)$")
    if not name then
      error_.option("--setenv", "'%s' is not NAME=VALUE", entry)
    elseif not name:match("^[A-Za-z_][A-Za-z0-9_]*$") then
      error_.option("--setenv", "'%s' is not a variable name (letters, digits and _, not starting with a digit)", name)
    end
    into[#into + 1] = { name = name, value = val }
  end
end

--- Add one --user-map range to both maps, refusing overlaps the kernel
--- would reject with a bare EINVAL much later.
---@param spec pflask.Spec
---@param value string
local function add_user_map(spec, value)
  if value == "subordinate" then
    if spec.uid_map then
      error_.option("--user-map", "'subordinate' cannot be combined with other maps")
    end
    spec.uid_map, spec.gid_map = "subordinate", "subordinate"
    return
  elseif spec.uid_map == "subordinate" then
    error_.option("--user-map", "'subordinate' cannot be combined with other maps")
  end
  local map = usermap.parse(value, "--user-map")
  spec.uid_map = spec.uid_map or {}
  spec.gid_map = spec.gid_map or {}
  for _, other in ipairs(spec.uid_map) do
    if usermap.overlap(other, map) then
      error_.option("--user-map", "ranges %s and %s overlap", usermap.format(other), usermap.format(map))
    end
  end
  spec.uid_map[#spec.uid_map + 1] = map
  spec.gid_map[#spec.gid_map + 1] = { inside = map.inside, outside = map.outside, count = map.count }
end

--- Parse an --rlimit value, NAME=SOFT[:HARD], into spec.rlimits. Names
--- as prlimit(1) (nofile) or nspawn (NOFILE, RLIMIT_NOFILE) spell them
--- (a word that is none of them is not this option's grammar); plan()
--- checks the values.
---@param spec pflask.Spec
---@param value string
local function parse_rlimit(spec, value)
  local name, soft, hard = value:match("^([^=]+)=([^:]+):?(.*)$")
  if not name then
    error_.option("--rlimit", "'%s' is not NAME=SOFT[:HARD]", value)
  end
  name = name:lower():gsub("^rlimit_", "")
  local names = require("pflask.core").rlimit_names
  local known = false
  for _, n in ipairs(names) do known = known or n == name end
  if not known then
    error_.option("--rlimit", "'%s' is not a resource (%s)", name, table.concat(names, ", "))
  end
  local function limit(v)
    if v == "infinity" or v == "unlimited" then return "infinity" end
    return math.tointeger(tonumber(v:match("^%d+$") or "")) or v
  end
  spec.rlimits = spec.rlimits or {}
  if spec.rlimits[name] then error_.option("--rlimit", "'%s' given twice", name) end
  spec.rlimits[name] = { soft = limit(soft), hard = hard ~= "" and limit(hard) or limit(soft) }
end

-- Every option, in --help order. arg: "none", "required" or "optional"
-- (optional values only attached: --netif=SPEC, -nSPEC). once: the option
-- sets a single value, so a second one is a mistake rather than an
-- override. apply(spec, value, flags) records the option; flags collects
-- what only matters for the checks after parsing.
---@class pflask.cli.Option
---@field short string|nil
---@field long string
---@field arg "none"|"required"|"optional"
---@field meta string|nil
---@field help string
---@field once boolean|nil
---@field action "help"|"version"|nil
---@field apply fun(spec: pflask.Spec, value: string|nil, flags: table<string, boolean>)|nil

---@type pflask.cli.Option[]
local OPTIONS = {
  { short = "r", long = "chroot", arg = "required", meta = "DIR", once = true,
    help = "use DIR as the root directory of the container",
    apply = function(spec, v) nonempty("--chroot", v, "DIR"); spec.root = v end },
  { short = "c", long = "chdir", arg = "required", meta = "DIR", once = true,
    help = "change to DIR inside the container",
    apply = function(spec, v) nonempty("--chdir", v, "DIR"); spec.chdir = v end },
  { short = "t", long = "hostname", arg = "required", meta = "NAME", once = true,
    help = "set the container's hostname",
    apply = function(spec, v) check_hostname(v); spec.hostname = v end },
  { short = "m", long = "mount", arg = "required", meta = "SPEC",
    help = "bind[-ro]:SRC:DST[:FLAGS], tmp:DST, ... (pflask(1))",
    apply = function(spec, v)
      for _, m in ipairs(mount.parse_list(v, "--mount")) do spec.mounts[#spec.mounts + 1] = m end
    end },
  { long = "read-only", arg = "none",
    help = "make the root read-only (writable: --mount=tmp:/tmp)",
    apply = function(spec) spec.readonly_root = true end },
  { short = "n", long = "netif", arg = "optional", meta = "SPEC",
    help = "new network namespace [with interface SPEC]",
    apply = function(spec, v) spec.netifs[#spec.netifs + 1] = netif.parse(v, "--netif") end },
  { short = "u", long = "user", arg = "required", meta = "NAME", once = true,
    help = "run the command as user NAME inside",
    apply = function(spec, v) nonempty("--user", v, "NAME"); spec.user = v end },
  { short = "e", long = "user-map", arg = "required", meta = "MAP",
    help = "map ids CONT:HOST:COUNT[,...], or subordinate",
    apply = function(spec, v)
      -- pflask 0.2's list: commas between colon maps (a comma map,
      -- CONT,HOST,COUNT, is one map).
      if v:match("^[^:,]*([:,])") == ":" then
        for item in (v .. ","):gmatch("([^,]*),") do add_user_map(spec, item) end
      else
        add_user_map(spec, v)
      end
    end },
  { short = "w", long = "ephemeral", arg = "none",
    help = "throw away changes to the --chroot on exit",
    apply = function(spec) spec.ephemeral = true end },
  { long = "ephemeral-dir", arg = "required", meta = "DIR", once = true,
    help = "--ephemeral layer on disk in DIR, not memory",
    apply = function(spec, v) nonempty("--ephemeral-dir", v, "DIR"); spec.ephemeral_dir = v end },
  { short = "g", long = "cgroup", arg = "required", meta = "CONTROLLER",
    help = "put the container in new CONTROLLER[,...] cgroups",
    apply = function(spec, v)
      for item in (v .. ","):gmatch("([^,]*),") do
        check_cgroup(item)
        for _, c in ipairs(spec.cgroups) do
          if c == item then error_.option("--cgroup", "'%s' given twice", item) end
        end
        spec.cgroups[#spec.cgroups + 1] = item
      end
    end },
  { short = "b", long = "caps", arg = "required", meta = "LIST",
    help = "+cap keeps, -cap drops: -all,+net_bind_service",
    apply = function(spec, v) caps.parse(v, "--caps", spec.caps) end },
  { long = "no-new-privs", arg = "none",
    help = "no privileges through setuid or file capabilities",
    apply = function(spec) spec.no_new_privs = true end },
  { long = "seccomp", arg = "required", meta = "default|none", once = true,
    help = "the command's seccomp filter: default, or none",
    apply = function(spec, v)
      if v == "none" then spec.seccomp = false
      elseif v ~= "default" then error_.option("--seccomp", "'%s' is not default or none", v) end
    end },
  { long = "syscalls", arg = "required", meta = "LIST",
    help = "edit the default filter: -name, +name, @group",
    apply = function(spec, v)
      nonempty("--syscalls", v, "LIST")
      spec.syscalls = spec.syscalls or {}
      for item in (v .. ","):gmatch("([^,]*),") do
        if item == "" or item == "+" or item == "-" then error_.option("--syscalls", "empty entry in '%s'", v) end
        spec.syscalls[#spec.syscalls + 1] = item
      end
    end },
  { long = "rlimit", arg = "required", meta = "NAME=SOFT[:HARD]",
    help = "resource limit: nofile=1024, as=1G",
    apply = function(spec, v) parse_rlimit(spec, v) end },
  { long = "timeout", arg = "required", meta = "SECONDS[:GRACE]", once = true,
    help = "stop it after SECONDS (exit 124)",
    apply = function(spec, v)
      local s, g = v:match("^([^:]*):?(.*)$")
      local seconds, grace = tonumber(s), g ~= "" and tonumber(g) or nil
      if not s:match("^%d+%.?%d*$") or not seconds or seconds <= 0 then
        error_.option("--timeout", "'%s' is not a number of seconds > 0", s)
      elseif g ~= "" and (not g:match("^%d+%.?%d*$") or not grace) then
        error_.option("--timeout", "grace '%s' is not a number of seconds >= 0", g)
      end
      spec.timeout = grace and { seconds = seconds, grace = grace } or seconds
    end },
  { long = "cpuset", arg = "required", meta = "LIST", once = true,
    help = "run on these CPUs only (0-3,6)",
    apply = function(spec, v) nonempty("--cpuset", v, "LIST"); spec.cpuset = v end },
  { long = "sysctl", arg = "required", meta = "NAME=VALUE",
    help = "set a namespaced sysctl inside (net.*, ipc, uts)",
    apply = function(spec, v)
      local name, value = v:match("^([^=]+)=(.*)$")
      if not name then error_.option("--sysctl", "'%s' is not NAME=VALUE", v) end
      name = name:gsub("/", ".")
      spec.sysctls = spec.sysctls or {}
      if spec.sysctls[name] then error_.option("--sysctl", "'%s' given twice", name) end
      spec.sysctls[name] = value
    end },
  { long = "memory", arg = "required", meta = "SIZE", once = true,
    help = "limit memory to SIZE (512M, 2G) in a memory cgroup",
    apply = function(spec, v) spec.limits.memory = limits.memory(v, "--memory") end },
  { long = "pids-max", arg = "required", meta = "N", once = true,
    help = "limit the container to N processes (pids cgroup)",
    apply = function(spec, v) spec.limits.pids = limits.pids(v, "--pids-max") end },
  { long = "cpus", arg = "required", meta = "N", once = true,
    help = "limit CPU time to N CPUs (1.5) in a cpu cgroup",
    apply = function(spec, v)
      limits.cpus(v, "--cpus")
      spec.limits.cpus = tonumber(v)
    end },
  { short = "d", long = "detach", arg = "none",
    help = "detach from the terminal (see --attach)",
    apply = function(spec) spec.detach = true end },
  { short = "a", long = "attach", arg = "required", meta = "PID|NAME", once = true,
    help = "attach to the terminal of a detached container",
    apply = function(spec, v) spec.attach = check_pid_or_name(v) end },
  { long = "exec", arg = "required", meta = "PID|NAME", once = true,
    help = "run COMMAND in a running container",
    apply = function(spec, v) spec.exec = check_pid_or_name(v, "--exec") end },
  { long = "name", arg = "required", meta = "NAME", once = true,
    help = "name the container (for --attach, --list)",
    apply = function(spec, v) nonempty("--name", v, "NAME"); spec.name = v end },
  { long = "list", arg = "none",
    help = "list the running containers and exit",
    apply = function(_, _, flags) flags.list = true end },
  { long = "json", arg = "none",
    help = "with --list: print JSON",
    apply = function(_, _, flags) flags.json = true end },
  { short = "s", long = "setenv", arg = "required", meta = "LIST",
    help = "set NAME=VALUE[,NAME=VALUE...] in the environment",
    apply = function(spec, v) parse_setenv(v, spec.setenv) end },
  { long = "keep-fd", arg = "required", meta = "N",
    help = "pass fd N[,N...] on to the command (others close)",
    apply = function(spec, v)
      spec.pass_fds = spec.pass_fds or {}
      for n in (v .. ","):gmatch("([^,]*),") do spec.pass_fds[#spec.pass_fds + 1] = n end
    end },
  { short = "k", long = "keepenv", arg = "none",
    help = "keep pflask's environment with --chroot",
    apply = function(spec) spec.keepenv = true end },
  { short = "U", long = "no-userns", arg = "none", help = "no user namespace",
    apply = function(_, _, flags) flags["no-userns"] = true end },
  { short = "M", long = "no-mountns", arg = "none", help = "no mount namespace",
    apply = function(_, _, flags) flags["no-mountns"] = true end },
  { short = "N", long = "no-netns", arg = "none", help = "no network namespace",
    apply = function(_, _, flags) flags["no-netns"] = true end },
  { short = "I", long = "no-ipcns", arg = "none", help = "no IPC namespace",
    apply = function(_, _, flags) flags["no-ipcns"] = true end },
  { short = "H", long = "no-utsns", arg = "none", help = "no UTS namespace",
    apply = function(_, _, flags) flags["no-utsns"] = true end },
  { short = "P", long = "no-pidns", arg = "none", help = "no PID namespace",
    apply = function(_, _, flags) flags["no-pidns"] = true end },
  { long = "as-pid1", arg = "none", help = "run the command as pid 1 (for init systems)",
    apply = function(_, _, flags) flags["as-pid1"] = true end },
  { long = "as-pid2", arg = "none", help = "keep a reaper as pid 1 even for an init",
    apply = function(_, _, flags) flags["as-pid2"] = true end },
  { long = "register", arg = "required", meta = "yes|no|auto", once = true,
    help = "register with systemd-machined (auto: if it runs)",
    apply = function(spec, v)
      local choices = { yes = true, no = false, auto = "auto" }
      if choices[v] == nil then
        error_.option("--register", "'%s' is not yes, no or auto", v)
      end
      if choices[v] ~= "auto" then spec.register = choices[v] end
    end },
  { short = "h", long = "help", arg = "none", help = "show this help and exit", action = "help" },
  { short = "V", long = "version", arg = "none", help = "show the version and exit", action = "version" },
}

-- The options --exec takes along (the rest describe a new container).
local EXEC_OPTIONS = { exec = true, user = true, chdir = true, setenv = true }

-- For pflask.complete: the options complete from this table, so that a
-- new option completes without touching the shell scripts.
M.OPTIONS = OPTIONS

local BY_LONG, BY_SHORT = {}, {}
for _, o in ipairs(OPTIONS) do
  BY_LONG[o.long] = o
  if o.short then BY_SHORT[o.short] = o end
end

--- A spec with every default in place.
---@return pflask.Spec
local function new_spec()
  return {
    namespaces = {
      mount = true, pid = true, ipc = true, uts = true, cgroup = true,
      net = false, time = false, user = nil,
    },
    mounts = {}, netifs = {}, cgroups = {}, caps = {}, setenv = {}, limits = {},
    ephemeral = false, detach = false, keepenv = false, init = "auto",
    no_new_privs = false,
  }
end

--- The namespaces the flags ask for, and the rules that only the command
--- line can break (options that exclude each other, actions other than
--- running a container). Every rule about the container itself lives in
--- container.plan(), which names the classic option in its message, so
--- that a recipe's spec and the command line get the same one.
---@param spec pflask.Spec
---@param flags table<string, boolean>
local function finish(spec, flags)
  local ns = spec.namespaces
  ns.mount = not flags["no-mountns"]
  ns.ipc = not flags["no-ipcns"]
  ns.uts = not flags["no-utsns"]
  ns.pid = not flags["no-pidns"]
  -- false with --netif entries: plan() says why.
  ns.net = not flags["no-netns"] and #spec.netifs > 0
  if flags["no-userns"] then
    ns.user = false
  elseif spec.user or spec.uid_map then
    ns.user = true
  end

  if spec.exec and (spec.detach or spec.attach) then
    error_.option("--exec", "cannot be used with %s", spec.detach and "--detach" or "--attach")
  elseif spec.exec and not spec.command then
    error_.option("--exec", "needs a command (pflask --exec=%s -- COMMAND)", tostring(spec.exec))
  elseif spec.attach and spec.detach then
    error_.option("--attach", "cannot be used with --detach")
  elseif flags["as-pid1"] and flags["as-pid2"] then
    error_.option("--as-pid1", "cannot be used with --as-pid2")
  end
  spec.init = flags["as-pid1"] and "pid1" or flags["as-pid2"] and "reaper" or "auto"
  if flags.json and not flags.list then
    error_.option("--json", "needs --list")
  end
  return flags.list and (flags.json and "list-json" or "list") or nil
end

---@class pflask.cli.State
---@field argv string[]
---@field i integer index of the argument being read
---@field spec pflask.Spec
---@field flags table<string, boolean> options that only matter to finish()
---@field given table<string, boolean> long names seen, for once-only options

--- Record one option occurrence.
---@param st pflask.cli.State
---@param o pflask.cli.Option
---@param value string|nil
---@return "help"|"version"|nil action one that ends parsing
local function take(st, o, value)
  if o.action then return o.action end
  if o.once and st.given[o.long] then
    error_.option("--" .. o.long, "given more than once")
  end
  st.given[o.long] = true
  o.apply(st.spec, value, st.flags)
end

--- Consume the next argument as the value of `o`, whatever it looks like
--- (getopt does the same: `--chroot -k` makes "-k" the directory).
---@param st pflask.cli.State
---@param o pflask.cli.Option
---@return string
local function next_value(st, o)
  st.i = st.i + 1
  local value = st.argv[st.i]
  if value == nil then
    error_.option("--" .. o.long, "requires a value")
  end
  return value
end

--- `--name`, `--name=value` or `--name value`.
---@param st pflask.cli.State
---@param arg string
---@return "help"|"version"|nil
local function parse_long(st, arg)
  local name, value = arg:match("^%-%-([^=]*)=(.*)$")
  name = name or arg:sub(3)
  local o = BY_LONG[name]
  if not o and name ~= "" then
    -- getopt_long's rule: a unique prefix names its option.
    local found = {}
    for _, opt in ipairs(OPTIONS) do
      if opt.long:sub(1, #name) == name then found[#found + 1] = opt end
    end
    if #found == 1 then
      o = found[1]
    elseif #found > 1 then
      local names = {}
      for i, opt in ipairs(found) do names[i] = "--" .. opt.long end
      error_.option("--" .. name, "ambiguous option (could be %s)", table.concat(names, ", "))
    end
  end
  if not o then
    error_.option("--" .. name, "unknown option (see pflask --help)")
  elseif value and o.arg == "none" then
    error_.option("--" .. o.long, "takes no value")
  elseif not value and o.arg == "required" then
    value = next_value(st, o)
  end
  return take(st, o, value)
end

--- `-kU`, `-rDIR`, `-r DIR`, `-nSPEC`, `-n`: flags until the first option
--- that takes a value, which gets the rest of the argument.
---@param st pflask.cli.State
---@param arg string
---@return "help"|"version"|nil
local function parse_short(st, arg)
  for j = 2, #arg do
    local c = arg:sub(j, j)
    local o = BY_SHORT[c]
    if not o then
      error_.option("-" .. c, "unknown option (see pflask --help)")
    end
    if o.arg ~= "none" then
      local value = arg:sub(j + 1)
      if value == "" then
        value = o.arg == "required" and next_value(st, o) or nil
      end
      return take(st, o, value)
    end
    local action = take(st, o)
    if action then return action end
  end
end

--- Parse the classic command line.
---@param argv string[] the arguments after the program name
---@return pflask.Spec|nil spec nil for "help", "version", "list" and "list-json"
---@return "run"|"help"|"version"|"list"|"list-json" action
function M.parse(argv)
  ---@type pflask.cli.State
  local st = { argv = argv, i = 1, spec = new_spec(), flags = {}, given = {} }
  while st.i <= #argv do
    local arg = argv[st.i]
    local action
    if arg == "--" then
      st.i = st.i + 1
      break
    elseif arg:sub(1, 2) == "--" then
      action = parse_long(st, arg)
    elseif arg:sub(1, 1) == "-" and #arg > 1 then
      action = parse_short(st, arg)
    else
      break
    end
    if action then return nil, action end
    st.i = st.i + 1
  end

  if st.i <= #argv then
    st.spec.command = table.move(argv, st.i, #argv, 1, {})
  end
  local action = finish(st.spec, st.flags)
  if action then return nil, action end
  if st.spec.exec then
    -- A command in a running container: only what applies to it, never
    -- an option taken and silently ignored.
    for _, o in ipairs(OPTIONS) do
      if st.given[o.long] and not EXEC_OPTIONS[o.long] then
        error_.option("--exec", "cannot be used with --%s", o.long)
      end
    end
  end
  return st.spec, "run"
end

--- The --help text.
---@return string
function M.usage()
  local lines = {
    "Usage: pflask [OPTIONS] [--] [COMMAND [ARGS...]]",
    "       pflask --recipe=NAME|FILE [ARGS...]",
    "",
    "Run COMMAND (by default your shell) in new Linux namespaces.",
    "",
    "Options:",
  }
  for _, o in ipairs(OPTIONS) do
    local head = o.short and ("-" .. o.short .. ", ") or "    "
    head = head .. "--" .. o.long
    if o.arg == "required" then
      head = head .. "=" .. o.meta
    elseif o.arg == "optional" then
      head = head .. "[=" .. o.meta .. "]"
    end
    lines[#lines + 1] = string.format("  %-24s %s", head, o.help)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "See pflask(1) for the option grammars, namespaces and exit status."
  return table.concat(lines, "\n") .. "\n"
end

return M
