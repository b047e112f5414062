-- The shape of a container spec, declared once: every field of every
-- part (top level, a mount, a netif, namespaces, limits, rlimits...) with
-- its type. container.plan() checks a spec against it first, so that a
-- misspelt field ("readOnly") or a wrong type ({ network = true }) is a
-- pflask.Error (125) naming it, with the closest known field suggested,
-- never silently ignored nor a raw Lua error later on. The concerns still
-- check values (paths, ranges, what exists on the host); this checks
-- names and types only.
--
-- Adding a spec field is one line in the record it belongs to (SPEC,
-- MOUNT, NETIF...): `name = "type"`, the type one of "string", "boolean",
-- "integer", "number", "function", "table", several joined with "|"
-- ("integer|string"), or a descriptor made by list(), record(), map().

local perr = require "pflask.error"

local M = {}

--- A list: an array of elements of desc, nothing else in it.
function M.list(desc) return { kind = "list", of = desc } end
--- A record: known fields only, each of its own type.
function M.record(fields) return { kind = "record", fields = fields } end
--- A map: keys from keys (a list of names, or nil for any string), each
--- value of desc.
function M.map(keys, desc) return { kind = "map", keys = keys, of = desc } end
--- One of several descriptors, chosen by the value's Lua type.
function M.either(...) return { kind = "either", alts = { ... } } end

local list, record, map, either = M.list, M.record, M.map, M.either

local ID_RANGE = record{ inside = "integer", outside = "integer", count = "integer" }

M.MOUNT = record{
  type = "string", target = "string", source = "string",
  readonly = "boolean", nosuid = "boolean", nodev = "boolean", noexec = "boolean",
  optional = "boolean", options = "string", upper = "string", work = "string",
  mode = "integer", to = "string", content = "string",
}

M.ROUTE = record{ dst = "string", gateway = "string", metric = "integer" }

-- core.seccomp_compile's table (doc/lua-api.md, spec.seccomp).
M.SECCOMP = record{
  default = "string", errno = "integer", arch = list("string"),
  rules = list(record{
    action = "string", errno = "integer", syscalls = list("string"),
    args = list(record{ index = "integer", op = "string", value = "integer", value2 = "integer" }),
  }),
}

local ADDRESSES = either("string", list("string"))

M.NETIF = record{
  type = "string", inside = "string", outside = "string", device = "string",
  name = "string", master = "string", mode = "string",
  address = ADDRESSES, gateway = ADDRESSES, routes = list(M.ROUTE),
  mtu = "integer", mac = "string", up = "boolean",
  outside_address = ADDRESSES, outside_mtu = "integer", outside_master = "string",
  outside_up = "boolean",
}

M.SPEC = record{
  command = list("string"),
  namespaces = "namespaces", -- filled in below from core.namespaces
  root = "string", chdir = "string", hostname = "string", user = "string|integer",
  gid = "integer", groups = list("integer"),
  uid_map = either("string", list(ID_RANGE)), gid_map = either("string", list(ID_RANGE)),
  keepenv = "boolean",
  pass_fds = list("integer|string"),
  terminal = "boolean", detach = "boolean",
  setenv = list(record{ name = "string", value = "string" }),
  init = "string", boot = "boolean",
  console_socket = "string", console_size = record{ width = "integer", height = "integer" },
  child_setup = "function", parent_setup = "function",
  mounts = list(M.MOUNT),
  readonly_root = "boolean", ephemeral = "boolean", ephemeral_dir = "string",
  masked_paths = list("string"), readonly_paths = list("string"),
  netifs = list(M.NETIF),
  caps = list(either("string", record{ op = "string", name = "string" })),
  no_new_privs = "boolean",
  rlimits = "rlimits", -- filled in below from core.rlimit_names
  seccomp_bpf = "string",
  seccomp = either("boolean", M.SECCOMP), syscalls = list("string"),
  timeout = either("number", record{ seconds = "number", grace = "number" }),
  cpuset = either("string", list("integer")),
  sysctls = map(nil, "string|number"),
  start_fifo = "string", start_orphan = "boolean",
  cgroups = list("string"), cgroup_path = "string",
  devices = list("string"),
  limits = record{ memory = "integer|string", pids = "integer|string", cpus = "number|string" },
  name = "string",
  register = "boolean",
  stdin = "string|userdata", stdout = "string|userdata", stderr = "string|userdata",
}

do
  local core = require "pflask.core"
  M.SPEC.fields.namespaces = map(core.namespaces, "boolean|string")
  M.SPEC.fields.rlimits = map(core.rlimit_names,
    either("integer|string", record{ soft = "integer|string", hard = "integer|string" }))
end

--- Edit distance (insertions, deletions, substitutions), case-blind.
local function distance(a, b)
  a, b = a:lower(), b:lower()
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The known name closest to name, when close enough to be a typo.
---@param name string
---@param known string[]
---@return string|nil
function M.closest(name, known)
  local best, best_d
  for _, k in ipairs(known) do
    local d = distance(name, k)
    if not best_d or d < best_d or (d == best_d and k < best) then best, best_d = k, d end
  end
  if best and best_d <= math.max(1, math.min(3, #name // 3)) then return best end
  -- A longer or shorter spelling ("network" for "net", "mem" for
  -- "memory").
  local lname = name:lower()
  for _, k in ipairs(known) do
    if (#k >= 3 and lname:sub(1, #k) == k) or (#lname >= 3 and k:sub(1, #lname) == lname) then
      return k
    end
  end
  return nil
end

local function fail(where, fmt, ...)
  perr.raise(perr.FAILURE, "%s: " .. fmt, where, ...)
end

local function describe_value(v)
  if type(v) == "number" and math.type(v) == "float" then return "a number" end
  return ({ string = "a string", number = "an integer", boolean = "a boolean", table = "a table",
            ["function"] = "a function", ["nil"] = "nil" })[type(v)] or type(v)
end

-- "t1|t2" -> { t1 = true, t2 = true }, split once per type string (the
-- schema has a few dozen) rather than at every value checked.
local TYPESETS = {}

--- Does v have one of the types in "t1|t2"? ("integer": a number of the
--- integer subtype; "number": any number; else a type() name.)
local function type_ok(names, v)
  local set = TYPESETS[names]
  if not set then
    set = {}
    for t in names:gmatch("[^|]+") do set[t] = true end
    TYPESETS[names] = set
  end
  return set[type(v)] == true or (set.integer == true and math.type(v) == "integer")
end

local function sorted_keys(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function unknown(where, key, known)
  if type(key) ~= "string" then
    fail(where, "unexpected key %s (only named fields)", tostring(key))
  end
  local guess = M.closest(key, known)
  if guess then fail(where, "unknown field '%s' (did you mean '%s'?)", key, guess) end
  fail(where, "unknown field '%s' (known: %s)", key, table.concat(known, ", "))
end

local check

--- The keys of t, names first, in a fixed order: the first error reported
--- is the same on every run.
local function keys_of(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    local ta, tb = type(a) == "string", type(b) == "string"
    if ta ~= tb then return ta end
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return tostring(a) < tostring(b)
  end)
  return ks
end

local function check_record(desc, v, where)
  local known
  for _, k in ipairs(keys_of(v)) do
    local fv = v[k]
    local fd = type(k) == "string" and desc.fields[k]
    if not fd then
      known = known or sorted_keys(desc.fields)
      unknown(where, k, known)
    end
    check(fd, fv, where == "spec" and k or (where .. "." .. k))
  end
end

local function check_list(desc, v, where)
  local n = #v
  for _, k in ipairs(keys_of(v)) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      fail(where, "must be a list (an array), not a table with key '%s'", tostring(k))
    end
  end
  for i = 1, n do check(desc.of, v[i], string.format("%s[%d]", where, i)) end
end

local function check_map(desc, v, where)
  local set
  if desc.keys then
    set = {}
    for _, k in ipairs(desc.keys) do set[k] = true end
  end
  for _, k in ipairs(keys_of(v)) do
    local fv = v[k]
    if type(k) ~= "string" or (set and not set[k]) then
      if not set then fail(where, "unexpected key %s (only names)", tostring(k)) end
      local known = {}
      for _, n in ipairs(desc.keys) do known[#known + 1] = n end
      table.sort(known)
      unknown(where, k, known)
    end
    check(desc.of, fv, where .. "." .. k)
  end
end

--- The first alternative whose Lua type fits v decides.
local function outer_type_ok(d, v)
  if type(d) == "string" then return type_ok(d, v) end
  return type(v) == "table"
end

local ARTICLE = { string = "a string", boolean = "a boolean", integer = "an integer", number = "a number",
                  ["function"] = "a function", table = "a table", userdata = "an open file" }

local function expected(d)
  if type(d) == "string" then
    local parts = {}
    for t in d:gmatch("[^|]+") do parts[#parts + 1] = ARTICLE[t] or t end
    return table.concat(parts, " or ")
  end
  if d.kind == "list" then return "a list" end
  if d.kind == "either" then
    local parts = {}
    for _, a in ipairs(d.alts) do parts[#parts + 1] = expected(a) end
    return table.concat(parts, " or ")
  end
  return "a table"
end

function check(desc, v, where)
  if v == nil then return end
  if type(desc) == "string" then
    if not type_ok(desc, v) then
      fail(where, "must be %s, not %s", expected(desc), describe_value(v))
    end
    return
  end
  if desc.kind == "either" then
    for _, a in ipairs(desc.alts) do
      if outer_type_ok(a, v) then return check(a, v, where) end
    end
    fail(where, "must be %s, not %s", expected(desc), describe_value(v))
  end
  if type(v) ~= "table" then
    fail(where, "must be %s, not %s", expected(desc), describe_value(v))
  end
  if desc.kind == "record" then return check_record(desc, v, where) end
  if desc.kind == "list" then return check_list(desc, v, where) end
  return check_map(desc, v, where)
end

-- The same verdict as check, without its costs: no key sorted, no field
-- path built. Nearly every spec passes, and check's sorting (which makes
-- the first fault it names the same on every run) was most of the time
-- schema took at every start; only a spec that fails is walked again by
-- check, to name its fault.
local conforms

local function conforms_map(desc, v)
  local set = desc.keyset
  if desc.keys and not set then
    set = {}
    for _, k in ipairs(desc.keys) do set[k] = true end
    desc.keyset = set
  end
  for k, fv in pairs(v) do
    if type(k) ~= "string" or (set and not set[k]) or not conforms(desc.of, fv) then return false end
  end
  return true
end

function conforms(desc, v)
  if v == nil then return true end
  if type(desc) == "string" then return type_ok(desc, v) end
  if desc.kind == "either" then
    for _, a in ipairs(desc.alts) do
      if outer_type_ok(a, v) then return conforms(a, v) end
    end
    return false
  end
  if type(v) ~= "table" then return false end
  if desc.kind == "record" then
    local fields = desc.fields
    for k, fv in pairs(v) do
      local fd = type(k) == "string" and fields[k]
      if not fd or not conforms(fd, fv) then return false end
    end
    return true
  end
  if desc.kind == "list" then
    local n = #v
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    end
    for i = 1, n do
      if not conforms(desc.of, v[i]) then return false end
    end
    return true
  end
  return conforms_map(desc, v)
end

--- Whether spec passes M.check, as a boolean (M.check raises instead).
---@param spec any
---@return boolean
function M.conforms(spec)
  return type(spec) == "table" and conforms(M.SPEC, spec)
end

--- M.check without its fast path: always walks spec in key order.
--- For the specs that compare both.
---@param spec any
function M.check_ordered(spec)
  if type(spec) ~= "table" then
    perr.raise(perr.FAILURE, "spec: must be a table, not %s", describe_value(spec))
  end
  check(M.SPEC, spec, "spec")
end

--- Check spec against M.SPEC: raises a pflask.Error (125) naming the
--- first unknown field or wrong type, as "mounts[1]: unknown field
--- 'readOnly' (did you mean 'readonly'?)".
---@param spec any
function M.check(spec)
  if not M.conforms(spec) then M.check_ordered(spec) end
end

return M
