-- The registry concern (see container.lua, CONCERNS): every running
-- container has a record in the caller's runtime directory (/run/pflask
-- for root; see core.state_dir), so that another pflask can find it by
-- name or pid (`--attach=NAME`, `--list`) after its supervisor is gone
-- from reach. A record lives exactly as long as its container: the
-- supervisor removes it at the end, and a record whose container is gone
-- (pflask was SIGKILLed) is swept by the next reader.
--
-- Records are `NAME.pflask` files of `key=value` lines, values escaped
-- (%XX) so that a command line or a path can hold any byte; a key that
-- repeats is a list (argv). The container is named for good by its pid
-- and that process's start time, so a reused pid is never mistaken for
-- it.

local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

M.SUFFIX = ".pflask"

local EEXIST = 17

-- Keys whose values are lists, in order.
local LISTS = { command = true, cgroup = true, veth = true, groups = true, rlimit = true,
                joined = true }
local INTEGERS = { pid = true, start = true, supervisor = true, supervisor_start = true,
                   created = true, uid = true, pidns = true, caps_keep = true, caps_ambient = true,
                   user_uid = true, user_gid = true }
-- ns_NAME=inode: the namespaces the container has of its own, so that a
-- joiner (--exec) can check that /proc/PID/ns/NAME still is the one.
for _, n in ipairs(core.namespaces) do INTEGERS["ns_" .. n] = true end

-- What else a record holds, for another pflask that must find, join,
-- stop or clean the container without its supervisor (state on disk):
--   cgroup=DIR...        the cgroups pflask made for it (--exec joins them)
--   veth=NAME...         veth host ends pflask made (torn down with it)
--   ephemeral_dir=DIR    a disk-backed --ephemeral layer
--   socket=PATH          the --detach socket
--   start_fifo=PATH      the FIFO that lets a created container start
--   caps_keep, caps_ambient, no_new_privs, user_uid, user_gid, groups,
--   env_NAME=VALUE (the command's environment), rlimit=NAME:SOFT:HARD,
--   seccomp=HEX
--                        the command's confinement and identity, which
--                        --exec gives the commands it runs inside too

--- A name a user may give: a letter or digit first, then letters, digits,
--- `_`, `.`, `-`; not all digits (those are pids); at most 64 bytes.
---@param name any
---@return boolean ok
---@return string|nil why
function M.valid_name(name)
  if type(name) ~= "string" then return false, "must be a string" end
  if #name == 0 or #name > 64 then return false, "must be 1 to 64 characters" end
  if not name:match("^[A-Za-z0-9][A-Za-z0-9_.-]*$") then
    return false, "may hold only letters, digits, '_', '.' and '-', and starts with a letter or digit"
  end
  if name:match("^%d+$") then return false, "cannot be all digits (those are pids)" end
  return true
end

local function escape(s)
  s = tostring(s)
  -- Nothing to escape: printable ASCII but '%' and '='. One anchored
  -- match, not a find that starts a match at every byte: the record holds
  -- the whole environment, and this was 5 % of a start's instructions.
  if s:match("^[ -$&-<>-~]*$") then return s end
  return (s:gsub("[%c%%=\128-\255]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- A record as file content.
---@param rec table
---@return string
function M.encode(rec)
  local keys = {}
  for k in pairs(rec) do if k ~= "env" then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = rec[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do out[#out + 1] = k .. "=" .. escape(item) end
    elseif v ~= nil then
      out[#out + 1] = k .. "=" .. escape(v)
    end
  end
  -- The environment, a map, as env_NAME lines (in no order: a record is
  -- read back as a table); a name that cannot be a key is left out.
  for k, v in pairs(rec.env or {}) do
    if k:find("^[%w_]+$") then out[#out + 1] = "env_" .. k .. "=" .. escape(v) end
  end
  return table.concat(out, "\n") .. "\n"
end

--- File content as a record; nil for anything that is not one.
---@param data string
---@return table|nil
function M.decode(data)
  local rec = {}
  for line in data:gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if not k then return nil end
    v = unescape(v)
    if LISTS[k] then
      rec[k] = rec[k] or {}
      table.insert(rec[k], v)
    elseif k:sub(1, 4) == "env_" then
      rec.env = rec.env or {}
      rec.env[k:sub(5)] = v
    elseif INTEGERS[k] then
      rec[k] = math.tointeger(tonumber(v))
      if not rec[k] then return nil end
    else
      rec[k] = v
    end
  end
  if not rec.name or not rec.supervisor then return nil end
  return rec
end

--- Is process pid the one that started at start (not a later one that
--- reuses its pid), and not a zombie (a killed pflask's, or its
--- container's pid 1, that nobody has reaped yet: it runs nothing)?
local function same_process(pid, start)
  if not pid or not start then return false end
  local now = core.start_time(pid)
  if now ~= start then return false end
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  local stat = f and f:read("a")
  if f then f:close() end
  return not (stat and stat:match("^%d+ %(.*%) (%a)") == "Z")
end

--- The pid namespace we see pids in: a record's pids mean something only
--- there (inside a container, the host's pids are not ours to judge).
local function own_pidns()
  local st = core.stat("/proc/self/ns/pid")
  return st and st.ino or nil
end

--- Is the record's container running? A record whose container has not
--- started yet (its name is reserved) counts while its supervisor runs.
--- nil when the record was written in another pid namespace, where its
--- pids cannot be checked from here.
---@param rec table
---@return boolean|nil
function M.alive(rec)
  if rec.pidns ~= own_pidns() then return nil end
  if rec.pid then return same_process(rec.pid, rec.start) end
  return same_process(rec.supervisor, rec.supervisor_start)
end

local function dir(create)
  return core.state_dir(create)
end

--- Read one record by file name; nil when missing or not a record.
local function read(d, file)
  local data = core.state_read(d, file)
  return data and M.decode(data) or nil
end

-- The census of records (core.census_open(dir, "records")): a supervisor
-- joins before it writes its record and leaves once it removed it. A
-- pflask killed with SIGKILL cannot remove its record, but the kernel
-- takes it off the live count (SEM_UNDO), so the next start learns of the
-- death with one call and only then lists the records to remove those of
-- containers that are gone; --list removes them too. Where the set
-- cannot be used (a set that is not ours), records of killed pflasks
-- wait for --list, as before.
local function census(d)
  local id, created = core.census_open(d, "records")
  if not id then return nil end
  return { id = id, created = created }
end

--- Remove the records of containers that are gone, if the census says a
--- supervisor died without removing its own.
local function sweep_dead(d, c)
  local deaths = core.census_deaths(c.id)
  if not deaths or (deaths <= 0 and not c.created) then return end
  if not core.census_lock(c.id, true) then return end
  local ok, err = pcall(function()
    -- Again under the lock: another start may have settled them.
    deaths = core.census_deaths(c.id)
    if not deaths or (deaths <= 0 and not c.created) then return end
    for _, file in ipairs(core.state_list(d, M.SUFFIX) or {}) do
      local rec = read(d, file)
      -- Records of another pid namespace are not ours to judge (nil).
      if rec and M.alive(rec) == false then core.state_remove(d, file) end
    end
    if deaths > 0 then core.census_settle(c.id, deaths) end
  end)
  core.census_lock(c.id, false)
  if not ok then error(err, 0) end
end

--- The running containers of the caller, sorted by name; records of
--- containers that are gone are removed on the way. Records written in
--- another pid namespace are neither listed nor removed.
---@return table[]
function M.list()
  local d = dir(false)
  local out = {}
  for _, file in ipairs(core.state_list(d, M.SUFFIX) or {}) do
    local rec = read(d, file)
    local alive = rec and M.alive(rec)
    -- A name reserved by a container that is still starting is not yet
    -- a running container.
    if alive and rec.pid then
      out[#out + 1] = rec
    elseif alive == false then
      core.state_remove(d, file)
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- The running container with this name or pid, or nil.
---@param id string|integer a name, or a pid (as a number or digits)
---@return table|nil
function M.find(id)
  local pid = math.tointeger(tonumber(id))
  if pid then
    for _, rec in ipairs(M.list()) do
      if rec.pid == pid then return rec end
    end
    return nil
  end
  if not M.valid_name(id) then return nil end
  local d = dir(false)
  local rec = read(d, id .. M.SUFFIX)
  if rec and M.alive(rec) then return rec end
  return nil
end

--- A JSON string; bytes that are not UTF-8 become U+FFFD.
local function json_string(s)
  s = tostring(s)
  local valid = {}
  local i = 1
  while i <= #s do
    local len = utf8.len(s, i)
    if len then valid[#valid + 1] = s:sub(i); break end
    local _, bad = utf8.len(s, i)
    valid[#valid + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  s = table.concat(valid)
  local named = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t' }
  return '"' .. s:gsub('[%c"\\]', function(c)
    return named[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function uptime(rec, now)
  local s = math.max(0, now - (rec.created or now))
  if s < 120 then return s .. "s" end
  if s < 7200 then return (s // 60) .. "m" end
  if s < 172800 then return (s // 3600) .. "h" end
  return (s // 86400) .. "d"
end

--- The running containers as `pflask --list` prints them: a table with a
--- header, or with json a JSON array of objects (name, pid, root, command,
--- created, uptime in seconds).
---@param records table[] from M.list()
---@param json boolean|nil
---@return string
function M.format(records, json)
  local now = os.time()
  local out = {}
  if json then
    for _, rec in ipairs(records) do
      local argv = {}
      for i, a in ipairs(rec.command or {}) do argv[i] = json_string(a) end
      out[#out + 1] = string.format('{"name":%s,"pid":%d,"root":%s,"command":[%s],"created":%d,"uptime":%d}',
        json_string(rec.name), rec.pid or 0, rec.root and json_string(rec.root) or "null",
        table.concat(argv, ","), rec.created or 0, math.max(0, now - (rec.created or now)))
    end
    return "[" .. table.concat(out, ",\n ") .. "]\n"
  end
  out[1] = string.format("%-20s %8s %-24s %7s %s", "NAME", "PID", "ROOT", "UPTIME", "COMMAND")
  for _, rec in ipairs(records) do
    out[#out + 1] = string.format("%-20s %8s %-24s %7s %s", rec.name, tostring(rec.pid or "-"),
      rec.root or "/", uptime(rec, now), (table.concat(rec.command or {}, " "):gsub("%c", "?")))
  end
  return table.concat(out, "\n") .. "\n"
end

---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  if spec.name ~= nil then
    local ok, why = M.valid_name(spec.name)
    if not ok then perr.option("--name", "'%s' %s", tostring(spec.name), why) end
  end
  plan.name = spec.name
end

--- Reserve the name before anything else is made: a second container of
--- the same name fails here, with nothing to undo. An unnamed container
--- is registered under its pid once it runs (started).
---@param plan pflask.Plan
function M.prepare(plan)
  local d, msg = dir(true)
  if not d then
    -- A directory in /tmp that another user squats must not stop every
    -- container of ours: an unnamed one runs without a record.
    if plan.name then perr.option("--name", "%s", msg) end
    return
  end
  plan.registry = { dir = d, record = {
    name = plan.name, supervisor = core.getpid(),
    supervisor_start = core.start_time(core.getpid()), uid = core.geteuid(), pidns = own_pidns(),
    root = plan.root, command = plan.argv, created = os.time(),
  } }
  local c = census(d)
  if c then
    sweep_dead(d, c)
    -- Joined before the record exists: dying before it is written is a
    -- death with nothing to remove, which the next sweep settles.
    if core.census_join(c.id, 1) then plan.registry.census = c.id end
  end
  if not plan.name then return end
  local file = plan.name .. M.SUFFIX
  local data = M.encode(plan.registry.record)
  local ok, errno
  ok, msg, errno = core.state_write(d, file, data, true)
  if not ok and errno == EEXIST then -- taken, unless by a container that is gone
    -- A record we cannot read may be one being written: taken too.
    local old = read(d, file)
    if not old or M.alive(old) ~= false then
      perr.option("--name", "'%s' is already the name of a running container%s", plan.name,
                  old and string.format(" (pid %d)", old.pid or old.supervisor) or "")
    end
    core.state_remove(d, file)
    ok, msg = core.state_write(d, file, data, true)
  end
  if not ok then perr.option("--name", "%s", msg) end
  plan.registry.file = file
end

--- s as hexadecimal digits, two a byte in order. Eight bytes a format
--- item: a filter is about a kilobyte, and one string.format per byte
--- (through a function per byte) cost more instructions than the rest
--- of the supervisor's start-up.
---@param s string
---@return string
function M.hex(s)
  local n8 = #s // 8
  local out = n8 > 0 and string.format(("%016x"):rep(n8), string.unpack(">" .. ("I8"):rep(n8), s)) or ""
  for i = n8 * 8 + 1, #s do out = out .. string.format("%02x", s:byte(i)) end
  return out
end

--- What --exec needs to give a command the container's confinement.
---@param plan pflask.Plan
---@param rec table changed
function M.confinement(plan, rec)
  if plan.caps then rec.caps_keep, rec.caps_ambient = plan.caps.keep, plan.caps.ambient end
  rec.no_new_privs = plan.no_new_privs and "1" or nil
  if plan.user then
    rec.user_uid, rec.user_gid = plan.user.uid, plan.user.gid
    rec.groups = {}
    for i, g in ipairs(plan.groups or {}) do rec.groups[i] = tostring(g) end
  end
  -- One env_NAME line per variable (M.encode): most values need no
  -- escaping then.
  rec.env = plan.env
  rec.rlimit = {}
  for i, r in ipairs(plan.rlimits or {}) do rec.rlimit[i] = table.concat(r, ":") end
  if plan.seccomp_bpf then
    rec.seccomp = M.hex(plan.seccomp_bpf)
  end
end

--- The record's confinement as container.exec_in takes it.
---@param rec table
---@return table
function M.target(rec)
  local t = { pid = rec.pid, start = rec.start, cgroups = rec.cgroup or {}, no_new_privs = rec.no_new_privs == "1",
              root = rec.root, name = rec.name, env = {}, rlimits = {} }
  if rec.caps_keep then t.caps = { keep = rec.caps_keep, ambient = rec.caps_ambient or 0 } end
  if rec.user_uid then
    t.user = { uid = rec.user_uid, gid = rec.user_gid, name = tostring(rec.user_uid) }
    t.groups = {}
    for i, g in ipairs(rec.groups or {}) do t.groups[i] = math.tointeger(tonumber(g)) end
  end
  for k, v in pairs(rec.env or {}) do t.env[k] = v end
  for i, r in ipairs(rec.rlimit or {}) do
    local name, soft, hard = r:match("^(%w+):(%w+):(%w+)$")
    t.rlimits[i] = { name, math.tointeger(tonumber(soft)) or soft, math.tointeger(tonumber(hard)) or hard }
  end
  if rec.seccomp then
    t.seccomp_bpf = rec.seccomp:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  end
  t.ns = {}
  for _, n in ipairs(core.namespaces) do t.ns[n] = rec["ns_" .. n] end
  return t
end

--- The full record, once every child stage ran (the container runs, or
--- waits for its start FIFO): nothing another pflask could use before the
--- container is set up (--exec would join a mount namespace that has no
--- root of the container's yet).
--- One write, as before the container had a record of its own.
---@param plan pflask.Plan
---@param container pflask.Container
function M.started(plan, container)
  local reg = plan.registry
  if not reg then return end
  local rec = reg.record
  rec.pid = container:pid()
  rec.start = core.start_time(rec.pid)
  if plan.cgroups then
    rec.cgroup = {}
    for i, cg in ipairs(plan.cgroups) do rec.cgroup[i] = cg.procs or cg.dir end
  end
  if plan.network then
    rec.veth = {}
    for _, n in ipairs(plan.network.netifs) do
      if n.type == "veth" then rec.veth[#rec.veth + 1] = n.outside end
    end
  end
  rec.ephemeral_dir = plan.ephemeral_dir
  rec.socket = plan.detach and (reg.dir .. "/" .. rec.pid .. ".sock") or nil
  rec.start_fifo = plan.start_fifo
  M.confinement(plan, rec)
  -- A named record replaces its reservation; an unnamed one is new,
  -- unless a container that had this pid before left its record (its
  -- pflask was killed): that one is gone, since the pid is ours now.
  local replace = rec.name ~= nil
  rec.name = rec.name or tostring(rec.pid)
  reg.file = rec.name .. M.SUFFIX
  local data = M.encode(rec)
  local ok, msg, errno = core.state_write(reg.dir, reg.file, data, not replace)
  if not ok and errno == EEXIST then
    core.state_remove(reg.dir, reg.file)
    ok, msg = core.state_write(reg.dir, reg.file, data, true)
  end
  if not ok then perr.raise(perr.FAILURE, "registry: %s", msg) end
end

--- ns_NAME=inode for each namespace the container has of its own, read
--- before it is released (parent), so that nothing the command does once
--- it runs (an init that unshares or joins another) is recorded: those it
--- was cloned with, and those it joins by path (their files' inodes). One
--- unshared late (cgroup) is not known before, and not recorded.
---@param plan pflask.Plan
---@param rec table changed
function M.namespaces(plan, rec)
  local own = {}
  for name, on in pairs(plan.ns.clone) do if on then own[#own + 1] = name end end
  local inodes = core.ns_inodes(rec.pid, own)
  for _, name in ipairs(own) do rec["ns_" .. name] = inodes[name] end
  for _, j in ipairs(plan.ns.join) do
    local st = core.stat(j.path)
    rec["ns_" .. j.name] = st and st.ino or nil
  end
end

--- Before the child is released: its namespaces (M.namespaces). The
--- record is written once it runs (M.started).
---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  local reg = plan.registry
  if not reg then return end
  reg.record.pid = container:pid()
  M.namespaces(plan, reg.record)
end

---@param plan pflask.Plan
function M.cleanup(plan)
  local reg = plan.registry
  if reg and reg.file then
    core.state_remove(reg.dir, reg.file)
    reg.file = nil
  end
  -- Left only by the process that joined (SEM_UNDO is per process: a
  -- --detach'ed supervisor joined itself, after its fork).
  if reg and reg.census and reg.record.supervisor == core.getpid() then
    core.census_join(reg.census, -1)
    reg.census = nil
  end
end

return M
