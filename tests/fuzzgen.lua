-- A seeded generator of hostile input for pflask's parsers: command lines
-- for pflask.cli.parse and spec tables for pflask.container (plan only).
-- Used by tests/integration/fuzz_spec.lua (a few thousand cases) and
-- tests/bench/fuzz (the full count). The same seed gives the same cases,
-- so a failure is reproduced by its seed and index.

local cli = require("pflask.cli")

local M = {}

-- A small deterministic PRNG (xorshift32) of our own: math.random's
-- sequence may change between Lua builds, a seed printed in a failure
-- must replay the same case.
local function rng(seed)
  local s = (seed * 2654435761) % 4294967296
  if s == 0 then s = 1 end
  local r = {}
  function r.next()
    s = s ~ ((s << 13) & 0xffffffff)
    s = s ~ (s >> 17)
    s = s ~ ((s << 5) & 0xffffffff)
    return s
  end
  function r.int(a, b) return a + r.next() % (b - a + 1) end
  function r.pick(t) return t[r.int(1, #t)] end
  function r.chance(p) return r.next() % 1000 < p * 1000 end
  return r
end
M.rng = rng

-- Numbers at and past every limit the parsers know of: ids (2^32-1),
-- counts, hostname lengths, fds, integer overflow of Lua and C.
local NUMBERS = {
  "0", "1", "-1", "64", "65", "255", "256", "1023", "1024", "4095", "4096",
  "65535", "65536", "2147483647", "2147483648", "4294967294", "4294967295",
  "4294967296", "9223372036854775807", "9223372036854775808",
  "-9223372036854775808", "18446744073709551616", "1e308", "1e309", "inf",
  "nan", "-0", "0x10", "0x", "1.5", ".5", "5.", "1e-9", "  7", "7 ", "+3",
  "00000000000000000000000000000001", "1K", "1k", "512M", "2G", "3T", "9E",
  "99999999999P", "1KB", "0.0001M", "-5M", "1.5.5",
}
local WORDS = {
  "bind", "bind-ro", "tmp", "overlay", "dir", "symlink", "macvlan", "ipvlan",
  "veth", "move", "subordinate", "all", "+all", "-all", "+net_admin",
  "-sys_admin", "cap_chown", "root", "nobody", "yes", "no", "auto",
  "memory", "pids", "cpu", "cpuset", "devices", "freezer", "nosuid", "nodev",
  "noexec", "optional", "eth0", "lo", "/", "/tmp", "/proc", "..", ".", "/..",
  "../../etc", "/dev/null", "a=b", "=", "PATH=/x", "", " ", "-", "--",
}
local SEPS = { ":", ",", "=", "", "::", ",,", ":,", "/", " " }

local function invalid_utf8(r)
  local bytes = { "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xe2\x82", "\0", "\n", "\t", "\27[2J" }
  return r.pick(bytes)
end

--- One random string: words, numbers, separators, bytes, sometimes long.
local function str(r)
  local k = r.int(1, 10)
  if k == 1 then return string.rep(r.pick(WORDS) .. r.pick(SEPS), r.int(100, 3000)) end
  if k == 2 then
    local t = {}
    for i = 1, r.int(1, 40) do t[i] = string.char(r.int(0, 255)) end
    return table.concat(t)
  end
  local parts = {}
  for i = 1, r.int(1, 6) do
    local c = r.int(1, 6)
    parts[i] = c <= 2 and r.pick(WORDS) or c <= 4 and r.pick(NUMBERS) or c == 5 and r.pick(SEPS) or invalid_utf8(r)
    if r.chance(0.5) then parts[i] = parts[i] .. r.pick(SEPS) end
  end
  return table.concat(parts)
end
M.str = str

local LONGS = {}
for _, o in ipairs(cli.OPTIONS) do LONGS[#LONGS + 1] = o end

--- One option as the user could spell it: long, a prefix of it, short,
--- bundled shorts, with the value attached, separate or missing.
local function option(r, argv)
  local o = r.pick(LONGS)
  local name = o.long
  if r.chance(0.3) then name = name:sub(1, r.int(1, #name)) end
  if r.chance(0.05) then name = name .. invalid_utf8(r) end
  local form = r.int(1, 6)
  if form == 1 and o.short then
    local bundle = "-"
    for _ = 1, r.int(0, 3) do bundle = bundle .. (r.pick(LONGS).short or "") end
    argv[#argv + 1] = bundle .. o.short .. (r.chance(0.5) and str(r) or "")
  elseif form == 2 then
    argv[#argv + 1] = "--" .. name .. "=" .. str(r)
  elseif form == 3 then
    argv[#argv + 1] = "--" .. name
    argv[#argv + 1] = str(r)
  else
    argv[#argv + 1] = "--" .. name
  end
end

--- A random command line (the arguments after "pflask").
function M.argv(r)
  local argv = {}
  for _ = 1, r.int(0, 8) do
    local k = r.int(1, 10)
    if k <= 7 then option(r, argv)
    elseif k == 8 then argv[#argv + 1] = "--"
    elseif k == 9 then argv[#argv + 1] = "-" .. string.char(r.int(33, 126))
    else argv[#argv + 1] = str(r) end
  end
  if r.chance(0.3) then argv[#argv + 1] = "--"; argv[#argv + 1] = "/bin/true" end
  return argv
end

-- Spec fields and plausible values; values of the wrong type are drawn
-- as often as right ones.
local FIELDS = {
  "command", "namespaces", "root", "chdir", "hostname", "user", "uid_map",
  "gid_map", "mounts", "netifs", "ephemeral", "readonly_root",
  "ephemeral_dir", "cgroups", "caps", "no_new_privs", "limits", "detach",
  "name", "setenv", "keepenv", "pass_fds", "init", "register", "rlimits",
  "devices", "terminal", "start_fifo", "seccomp_bpf", "env", "bogus",
}

local value
local function deep(r, n)
  local t = {}
  local cur = t
  for _ = 1, n do cur[1] = {}; cur = cur[1] end
  return t
end

--- A random Lua value, tables up to `depth` levels.
function value(r, depth)
  local k = r.int(1, 12)
  if k == 1 then return nil
  elseif k == 2 then return r.chance(0.5)
  elseif k == 3 then return r.pick({ 0, -1, 1, 2^31, 2^53, math.maxinteger, math.mininteger, 1/0, -1/0, 0/0, 1.5, 4294967295, 65536 })
  elseif k <= 6 then return str(r)
  elseif k == 7 then return deep(r, r.int(50, 300))
  elseif k == 8 then return function() end
  elseif depth > 0 then
    local t = {}
    for i = 1, r.int(0, 5) do
      if r.chance(0.5) then t[i] = value(r, depth - 1) else t[r.pick(WORDS) ~= "" and r.pick({ "type", "source", "target", "name", "inside", "outside", "count", "memory", "pids", "cpus", "user", "mount", "net", "pid", "path", "soft", "hard", r.pick(WORDS) })] = value(r, depth - 1) end
    end
    return t
  end
  return str(r)
end
M.value = value

--- A random spec table: a few fields, each a random value, sometimes
--- one from a command line that parsed.
function M.spec(r)
  local spec = {}
  if r.chance(0.3) then
    local ok, parsed = pcall(cli.parse, M.argv(r))
    if ok and type(parsed) == "table" then spec = parsed end
  end
  for _ = 1, r.int(1, 6) do spec[r.pick(FIELDS)] = value(r, 3) end
  if r.chance(0.5) then spec.command = { "/bin/true" } end
  return spec
end

--- Classify the outcome of pcall(fn, ...): nil when it is acceptable
--- (success, or a pflask.Error with status 125 and a one-line message);
--- otherwise a description of what went wrong.
function M.check(ok, e)
  if ok then return nil end
  local perr = require("pflask.error")
  if not perr.is(e) then return "raw error: " .. tostring(e) end
  if e.status ~= 125 then return "status " .. tostring(e.status) .. ": " .. e.message end
  if type(e.message) ~= "string" or e.message == "" or e.message:find("\n") then
    return "not one line: " .. string.format("%q", tostring(e.message))
  end
  if e.message:find("stack traceback", 1, true) or e.message:find("%.lua:%d+:") then
    return "Lua error leaked: " .. e.message
  end
  return nil
end

return M
