-- Word lists for the shell completion scripts (contrib/completion/),
-- printed by the hidden `pflask --complete=KIND`, so that the scripts
-- stay generic: the options come from cli.lua's own table, the closed sets
-- from the parsers that accept them, the host's facts from the host.
--
--   pflask --complete=options     one line per option:
--                                 LONG ARG KIND COUNT [SHORT]
--                                 ARG: none, required or optional; KIND: how
--                                 its value completes (one of the kinds
--                                 below, or dir, file, user, none); COUNT:
--                                 once, or many for a repeatable option
--   pflask --complete=KIND        one word per line: caps (names and all),
--                                 mount and netif (type words), interfaces
--                                 (this network namespace's), cgroup
--                                 (controllers and name= hierarchies),
--                                 recipe (bundled recipes), attach (names
--                                 and pids of the caller's detached
--                                 containers), running (names and pids of
--                                 all the caller's running containers, for
--                                 --exec), register (yes no auto)
--
-- An unknown KIND prints nothing and exits 0: a script older or newer than
-- the executable completes less, never an error on the command line.

local core = require "pflask.core"

local M = {}

-- How an option's value completes, by long name; otherwise by its meta
-- (DIR: directories, FILE: files), else not at all.
local VALUE_KIND = {
  mount = "mount", netif = "netif", cgroup = "cgroup", caps = "caps", attach = "attach", exec = "running",
  register = "register", user = "user", recipe = "recipe",
}
local META_KIND = { DIR = "dir", FILE = "file" }

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

local function sorted_unique(list)
  table.sort(list)
  local out, seen = {}, {}
  for _, v in ipairs(list) do
    if not seen[v] then out[#out + 1] = v; seen[v] = true end
  end
  return out
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  return sorted_unique(out)
end

--- Every option the classic command line takes, --recipe included (the
--- executable reads it before the recipe runs).
---@return string[] lines "LONG ARG KIND COUNT [SHORT]"
function M.options()
  local lines = { "--recipe required recipe once" }
  for _, o in ipairs(require("pflask.cli").OPTIONS) do
    local kind = "none"
    if o.arg ~= "none" then
      kind = VALUE_KIND[o.long] or META_KIND[o.meta or ""] or "none"
    end
    -- Flags without a value may repeat harmlessly; shells offer them once.
    local count = (o.arg ~= "none" and not o.once) and "many" or "once"
    lines[#lines + 1] = table.concat({ "--" .. o.long, o.arg, kind, count, o.short and ("-" .. o.short) or nil }, " ")
  end
  return lines
end

--- The interfaces of this network namespace (/proc/net/dev, which unlike
--- /sys/class/net follows the reader's namespace).
---@return string[]
function M.interfaces()
  local out = {}
  for name in (read_file("/proc/net/dev") or ""):gmatch("\n%s*([^%s:]+):") do out[#out + 1] = name end
  return sorted_unique(out)
end

--- Controllers --cgroup can use here: the v2 hierarchy's and every v1
--- hierarchy's (name=NAME for named ones).
---@return string[]
function M.cgroups()
  local h = require("pflask.cgroups").facts().hierarchies
  local out = keys(h.v1)
  if h.v2 then
    for c in (read_file(h.v2.dir .. "/cgroup.controllers") or ""):gmatch("%S+") do out[#out + 1] = c end
  end
  return sorted_unique(out)
end

--- Names and pids of the caller's detached containers: those in the
--- registry (pflask.registry) whose terminal socket (PID.sock, next to
--- the records) exists.
---@return string[]
function M.attachable()
  local dir = core.state_dir(false)
  if not dir then return {} end
  local out = {}
  for _, rec in ipairs(require("pflask.registry").list()) do
    local st = rec.pid and core.stat(dir .. "/" .. rec.pid .. ".sock")
    if st and st.type == "socket" then
      out[#out + 1] = tostring(rec.pid)
      if rec.name ~= tostring(rec.pid) then out[#out + 1] = rec.name end
    end
  end
  return sorted_unique(out)
end

local LISTS = {
  options = M.options,
  caps = function()
    local out = { "all" }
    for _, n in ipairs(require("pflask.spec.caps").names) do out[#out + 1] = n end
    return out
  end,
  mount = function() return keys(require("pflask.spec.mount").KINDS) end,
  netif = function() return keys(require("pflask.spec.netif").KINDS) end,
  interfaces = M.interfaces,
  cgroup = M.cgroups,
  recipe = function() return sorted_unique({ table.unpack(core.recipes or {}) }) end,
  attach = M.attachable,
  running = function()
    local out = {}
    for _, rec in ipairs(require("pflask.registry").list()) do
      if rec.pid then
        out[#out + 1] = tostring(rec.pid)
        if rec.name ~= tostring(rec.pid) then out[#out + 1] = rec.name end
      end
    end
    return sorted_unique(out)
  end,
  register = function() return { "yes", "no", "auto" } end,
}

--- The lines `pflask --complete=KIND` prints.
---@param kind string
---@return string text newline-terminated lines, "" for an unknown kind
function M.text(kind)
  local fn = LISTS[kind]
  local lines = fn and fn() or {}
  if #lines == 0 then return "" end
  return table.concat(lines, "\n") .. "\n"
end

return M
