-- The sandbox concern (see container.lua, CONCERNS): the seccomp filter of
-- the command (--seccomp, --syscalls; spec.seccomp, spec.syscalls), the
-- time limit (--timeout; spec.timeout), CPU pinning (--cpuset) and the
-- namespaced sysctls (--sysctl). Both only act on the command:
-- the filter is compiled here, in the supervisor, and loaded by the exec
-- plan in the command's own process right before execve (pid 1 and
-- pflask's setup are never bound by it); the time limit is kept by the
-- supervisor (Container:wait).

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

local function fail(option, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, option, ...)
end

-- Groups of system calls, named as systemd-nspawn names them (the parts
-- of its groups that exist on Linux's common architectures).
M.GROUPS = {
  clock = { "adjtimex", "clock_adjtime", "clock_settime", "settimeofday", "stime" },
  ["cpu-emulation"] = { "modify_ldt", "vm86", "vm86old" },
  debug = { "lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "process_vm_readv",
            "process_vm_writev" },
  keyring = { "add_key", "keyctl", "request_key" },
  module = { "delete_module", "finit_module", "init_module" },
  obsolete = { "_sysctl", "afs_syscall", "create_module", "get_kernel_syms", "getpmsg", "putpmsg",
               "query_module", "security", "tuxcall", "uselib", "ustat", "vserver", "nfsservctl" },
  ["raw-io"] = { "ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write" },
  reboot = { "kexec_file_load", "kexec_load", "reboot" },
  swap = { "swapoff", "swapon" },
}

-- The default filter: what fails with EPERM unless --syscalls allows it.
-- The syscalls that are not namespaced and hand over the kernel or other
-- users' data (see pflask(1), SECCOMP, for each one's reason); the
-- capabilities pflask drops already stop most of them, the filter is the
-- second wall (and the only one for a capability a user adds back).
M.DEFAULT_DENY = {
  "@module", "kexec_load", "kexec_file_load", "@swap", "@raw-io", "@keyring", "@obsolete",
  "open_by_handle_at", "acct", "bpf", "lookup_dcookie", "perf_event_open", "userfaultfd",
  "quotactl", "syslog", "vm86", "vm86old",
}

-- ioctl requests refused by argument: TIOCSTI pushes input into a
-- terminal (a container's command would type into the shell of the user
-- whose terminal it shares); TIOCLINUX's subcommands paste the console's
-- selection. The kernel reads the request as 32 bits: the mask makes a
-- request with junk in the upper half match too.
M.IOCTLS = { TIOCSTI = 0x5412, TIOCLINUX = 0x541C }

--- Expand one name or @group into a list of names.
local function expand(option, item, out)
  local group = item:match("^@(.+)$")
  if group then
    local list = M.GROUPS[group]
    if not list then
      local names = {}
      for g in pairs(M.GROUPS) do names[#names + 1] = "@" .. g end
      table.sort(names)
      fail(option, "'%s' is not a group (%s)", item, table.concat(names, ", "))
    end
    for _, n in ipairs(list) do out[#out + 1] = n end
  else
    if not item:match("^[a-z_][a-z0-9_]*$") then fail(option, "'%s' is not a system call name", item) end
    out[#out + 1] = item
  end
  return out
end

--- The default filter as a core.seccomp_compile table, edited by
--- spec.syscalls ({"-name", "+name", "@group", ...}: "-" or no sign
--- adds to the denied list, "+" takes out). booting: reboot stays
--- allowed when a PID namespace makes it the container's own end.
---@param edits string[]|nil
---@param plan pflask.Plan
---@return table
function M.default_filter(edits, plan)
  local deny, order = {}, {}
  local function set(name, on)
    if deny[name] == nil then order[#order + 1] = name end
    deny[name] = on
  end
  for _, item in ipairs(M.DEFAULT_DENY) do
    for _, n in ipairs(expand("--syscalls", item, {})) do set(n, true) end
  end
  -- In a PID namespace, reboot(2) only ends the container (its init
  -- gets SIGHUP/SIGINT): a booted system's last call. Without one it
  -- would reach the host.
  if not plan.namespaces.pid then set("reboot", true) end
  if plan.caps then
    local numbers = require("pflask.spec.caps").numbers
    local default = require("pflask.privileges").default(plan.namespaces.net)
    for cap, calls in pairs(M.CAP_CALLS) do
      local bit = 1 << numbers[cap]
      if plan.caps.keep & bit ~= 0 and default & bit == 0 then
        for _, item in ipairs(calls) do
          for _, n in ipairs(expand("--caps", item, {})) do set(n, false) end
        end
      end
    end
  end
  local ioctl_rules = true
  for _, e in ipairs(edits or {}) do
    local sign, item = e:match("^([+-]?)(.*)$")
    if item == "" then fail("--syscalls", "empty entry") end
    for _, n in ipairs(expand("--syscalls", item, {})) do
      if n == "ioctl" and sign == "+" then ioctl_rules = false end
      set(n, sign ~= "+")
    end
  end
  local names = {}
  for _, n in ipairs(order) do
    -- Names this libseccomp does not know on any architecture (an
    -- obsolete call of another one) are left out of the default.
    if deny[n] then names[#names + 1] = n end
  end
  local rules = { { action = "errno", errno = 1, syscalls = names } }
  if ioctl_rules and not deny.ioctl then
    -- In a fixed order: pairs' order changes from run to run (Lua
    -- seeds its string hashes), and so would the program and its key,
    -- by which core.seccomp_compile finds the one compiled at build time.
    local reqs = {}
    for _, req in pairs(M.IOCTLS) do reqs[#reqs + 1] = req end
    table.sort(reqs)
    for _, req in ipairs(reqs) do
      rules[#rules + 1] = { action = "errno", errno = 1, syscalls = { "ioctl" },
                            args = { { index = 1, op = "masked_eq", value = 0xffffffff, value2 = req } } }
    end
  end
  return { default = "allow", rules = rules }
end

-- Names in the default groups that libseccomp resolves on no
-- architecture are dropped before compiling (below).
local known = core.seccomp_syscall_known

--- The default filter's table as plan() compiles it: default_filter,
--- without the default's names this libseccomp does not know (the
--- default lists calls of every architecture; a user's own names are
--- kept, for core.seccomp_compile to refuse by name).
---@param edits string[]|nil
---@param plan pflask.Plan
---@return table
function M.default_table(edits, plan)
  local t = M.default_filter(edits, plan)
  local user = {}
  for _, e in ipairs(edits or {}) do
    for _, n in ipairs(expand("--syscalls", e:match("^[+-]?(.*)$"), {})) do user[n] = true end
  end
  local kept = {}
  for _, n in ipairs(t.rules[1].syscalls) do
    if user[n] or known(n) then kept[#kept + 1] = n end
  end
  t.rules[1].syscalls = kept
  return t
end

-- The plans whose default filter tools/gen_seccomp.c compiles at build
-- time into the executable (core.seccomp_compile finds them by key):
-- without --syscalls, and without --caps given back beyond the default,
-- the filter only depends on whether a PID namespace keeps reboot(2)
-- allowed (and on the kernel's kill-process action, which the generator
-- covers both ways). Root, rootless, --netif, --boot: one of these.
M.BUILTIN_PLANS = {
  { namespaces = { pid = true, net = false } },
  { namespaces = { pid = false, net = false } },
}

--- Must a filter be loaded before the user switch (the command will hold
--- neither no_new_privs nor CAP_SYS_ADMIN)?
---@param nnp boolean
---@param user pflask.User|nil
---@param caps {keep: integer}|nil
---@return boolean
function M.needs_early_load(nnp, user, caps)
  if nnp then return false end
  local sys_admin = 21
  return (user ~= nil and user.uid ~= 0) or caps == nil or caps.keep & (1 << sys_admin) == 0
end

--- Child, before the user switch: load the filter now (plan.seccomp_early).
---@param plan pflask.Plan
function M.child_privileges(plan)
  if plan.seccomp_early then perr.check("--seccomp", core.seccomp_load(plan.seccomp_bpf)) end
end

-- Capabilities that, when --caps gives them back beyond the default set,
-- let the calls they guard through the default filter too, as nspawn's
-- filter follows its capabilities: the user asked for that power.
M.CAP_CALLS = {
  sys_module = { "@module" }, sys_rawio = { "@raw-io" }, syslog = { "syslog" },
  sys_pacct = { "acct" }, bpf = { "bpf" }, perfmon = { "perf_event_open" },
}

--- Check spec.seccomp/spec.syscalls/spec.timeout into the plan.
---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  local sc = spec.seccomp
  if spec.syscalls ~= nil then
    if type(spec.syscalls) ~= "table" then fail("--syscalls", "must be a list of names") end
    for i, e in ipairs(spec.syscalls) do
      if type(e) ~= "string" then fail("--syscalls", "entry %d is not a name", i) end
    end
    if sc ~= nil then fail("--syscalls", "edits the default filter: not with a seccomp table or --seccomp=none") end
  end
  if plan.seccomp_bpf ~= nil then
    if sc ~= nil or spec.syscalls ~= nil then fail("seccomp_bpf", "cannot be used with seccomp or syscalls") end
  elseif sc == false then
    plan.seccomp_bpf = nil
  else
    local t
    if sc == nil or sc == true then
      t = M.default_table(spec.syscalls, plan)
    elseif type(sc) == "table" then
      t = sc
    else
      fail("--seccomp", "spec.seccomp must be false or a filter table")
    end
    local bpf, msg = core.seccomp_compile(t)
    if not bpf then fail("--seccomp", "%s", (msg:gsub("^seccomp: ", ""))) end
    plan.seccomp_bpf = bpf
  end
  -- Loading a filter needs no_new_privs or CAP_SYS_ADMIN in the
  -- command's user namespace. A command that will hold neither (a
  -- non-root user, or sys_admin dropped) gets it loaded before the user
  -- switch instead, while pid 1 still holds CAP_SYS_ADMIN (runc does the
  -- same without noNewPrivileges): setuid programs keep working, and pid
  -- 1, by then only the reaper with the command's identity, is bound too.
  plan.seccomp_early = plan.seccomp_bpf ~= nil and M.needs_early_load(plan.no_new_privs, plan.user, plan.caps)

  if spec.cpuset ~= nil then plan.cpuset = M.cpu_list(spec.cpuset) end
  if spec.sysctls ~= nil then plan.sysctls = M.plan_sysctls(spec.sysctls, plan) end

  local to = spec.timeout
  if to ~= nil then
    local seconds, grace
    if type(to) == "number" then
      seconds, grace = to, M.DEFAULT_GRACE
    elseif type(to) == "table" then
      seconds, grace = to.seconds, to.grace == nil and M.DEFAULT_GRACE or to.grace
    end
    if type(seconds) ~= "number" or seconds <= 0 or seconds ~= seconds or seconds == math.huge then
      fail("--timeout", "'%s' is not a number of seconds > 0", tostring(seconds))
    end
    if type(grace) ~= "number" or grace < 0 or grace ~= grace or grace == math.huge then
      fail("--timeout", "grace '%s' is not a number of seconds >= 0", tostring(grace))
    end
    plan.timeout = { seconds = seconds, grace = grace }
  end
end

--- The CPUs this host has online, as a set {[n] = true}.
local function host_cpus()
  local set = {}
  local f = io.open("/sys/devices/system/cpu/online")
  local text = f and f:read("a") or ""
  if f then f:close() end
  for a, b in text:gmatch("(%d+)%-?(%d*)") do
    for n = tonumber(a), tonumber(b ~= "" and b or a) do set[n] = true end
  end
  return set
end

--- Parse a CPU list ("0-2,5" or a table of numbers) into a sorted list,
--- checked against the CPUs the host has.
---@param v string|integer[]
---@return integer[]
function M.cpu_list(v)
  local set, list = {}, {}
  local online = host_cpus()
  local function add(n)
    if not online[n] then fail("--cpuset", "CPU %d is not one of this host's (online: %s)", n,
      (function() local t = {} for c in pairs(online) do t[#t + 1] = c end table.sort(t)
        return table.concat(t, ",") end)()) end
    if not set[n] then set[n] = true; list[#list + 1] = n end
  end
  if type(v) == "table" then
    for _, n in ipairs(v) do
      if math.type(n) ~= "integer" or n < 0 then fail("--cpuset", "'%s' is not a CPU number", tostring(n)) end
      add(n)
    end
  elseif type(v) == "string" then
    for item in (v .. ","):gmatch("([^,]*),") do
      local a, b = item:match("^(%d+)%-(%d+)$")
      if not a then a = item:match("^(%d+)$"); b = a end
      if not a or #a > 5 or #b > 5 or tonumber(a) > tonumber(b) then
        fail("--cpuset", "'%s' is not a CPU list (0-3,6)", v)
      end
      for n = tonumber(a), tonumber(b) do add(n) end
    end
  else
    fail("--cpuset", "must be a CPU list such as \"0-3,6\"")
  end
  if #list == 0 then fail("--cpuset", "no CPU given") end
  table.sort(list)
  return list
end

-- The namespaced sysctls and the namespace each needs (prefix match on
-- the dotted name).
local SYSCTL_NS = {
  { "^net%.", "net", "a network namespace of its own (--netif)" },
  { "^kernel%.shm", "ipc", "an IPC namespace (drop --no-ipcns)" },
  { "^kernel%.msg", "ipc", "an IPC namespace (drop --no-ipcns)" },
  { "^kernel%.sem$", "ipc", "an IPC namespace (drop --no-ipcns)" },
  { "^fs%.mqueue%.", "ipc", "an IPC namespace (drop --no-ipcns)" },
  { "^kernel%.hostname$", "uts", "a UTS namespace (drop --no-utsns)" },
  { "^kernel%.domainname$", "uts", "a UTS namespace (drop --no-utsns)" },
}

--- Check spec.sysctls ({ [name] = value }) into a sorted list of {name,
--- value}: namespaced ones only, in a namespace the container has.
function M.plan_sysctls(sysctls, plan)
  if type(sysctls) ~= "table" then fail("--sysctl", "must be a table { [name] = value }") end
  local out = {}
  for name, value in pairs(sysctls) do
    if type(name) ~= "string" or not name:match("^[a-z0-9_][a-z0-9_.-]*$") or name:find("..", 1, true)
        or name:sub(-1) == "." then
      fail("--sysctl", "'%s' is not a sysctl name (net.ipv4.ip_forward)", tostring(name))
    end
    if type(value) == "number" then value = tostring(math.tointeger(value) or value) end
    if type(value) ~= "string" or value:find("[\n%z]") then
      fail("--sysctl", "%s: the value must be a string on one line", name)
    end
    local ns, why
    for _, rule in ipairs(SYSCTL_NS) do
      if name:match(rule[1]) then ns, why = rule[2], rule[3]; break end
    end
    if not ns then
      fail("--sysctl", "'%s' is not namespaced: it would change the host (allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.hostname, kernel.domainname)", name)
    end
    -- A namespace joined by path (OCI's namespaces[].path: podman's
    -- network namespace) is the container's own as much as a new one.
    local own = plan.namespaces[ns]
    for _, j in ipairs(plan.joins or {}) do if j.name == ns then own = true end end
    if not own then fail("--sysctl", "%s needs %s", name, why) end
    out[#out + 1] = { name, value }
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

--- Child, in the container's namespaces but before its /proc is
--- mounted (container.CHILD_STAGES, "sysctls"): /proc/sys of the mount
--- that is still in view acts on the writer's own network, IPC and UTS
--- namespaces, which are the container's now. The names were checked
--- in plan(): nothing of the root's is looked up.
---@param plan pflask.Plan
function M.child_sysctls(plan)
  for _, kv in ipairs(plan.sysctls or {}) do
    -- The UTS ones through their system calls: in a user namespace the
    -- host procfs's files refuse the writer, the calls do not.
    if kv[1] == "kernel.hostname" then
      perr.check("--sysctl: kernel.hostname", core.sethostname(kv[2]))
      goto next
    elseif kv[1] == "kernel.domainname" then
      perr.check("--sysctl: kernel.domainname", core.setdomainname(kv[2]))
      goto next
    end
    do
    local p = "/proc/sys/" .. kv[1]:gsub("%.", "/")
    local f, msg = io.open(p, "w")
    if not f then perr.raise(perr.FAILURE, "--sysctl: %s: %s", kv[1], (msg:gsub("^[^:]*: ", ""))) end
    local ok, werr = f:write(kv[2])
    if ok then ok, werr = f:close() else f:close() end
    if not ok then perr.raise(perr.FAILURE, "--sysctl: %s=%s: %s", kv[1], kv[2], (tostring(werr):gsub("^[^:]*: ", ""))) end
    end
    ::next::
  end
end

--- Supervisor, before the child goes on: pin it (and so everything it
--- starts) to plan.cpuset.
---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  if plan.cpuset then
    perr.check("--cpuset", core.sched_setaffinity(container:pid(), plan.cpuset))
  end
end

-- Seconds between SIGTERM and SIGKILL when --timeout has no GRACE.
M.DEFAULT_GRACE = 10

-- timeout(1)'s status when the time limit ran out.
M.TIMEOUT_STATUS = 124

--- Container:wait without a caller's own timeout, under plan.timeout:
--- wait; when the time is up, SIGTERM through the container's translate
--- table (a boot gets SIGRTMIN+3), then SIGKILL after the grace. Returns
--- the status (124 when the limit ran out).
---@param c pflask.Container
---@param wait fun(c: pflask.Container, timeout: number|nil): integer|nil, string|nil
function M.wait(c, wait)
  local t = c.plan.timeout
  local status = wait(c, t.seconds)
  if status then return status end
  local term = core.signals.TERM
  c:kill(c.plan.translate and c.plan.translate[term] or term)
  status = wait(c, t.grace)
  if not status then
    c:kill(core.signals.KILL)
    wait(c, nil)
  end
  return M.TIMEOUT_STATUS
end

return M
