-- Rewrite a Lua 5.4 binary chunk (luac output) without the names of local
-- variables and upvalues, keeping the line information: errors inside the
-- bundled library still read "pflask/cli.lua:12: ...", but loading the
-- chunk interns far fewer strings (start-up time, see tests/bench/startup).
--
--   lua5.4 luastrip.lua IN OUT
--
-- The format is lundump.c's (Lua 5.4); a chunk of another version or
-- layout is refused rather than guessed at.

local input, output = arg[1], arg[2]
assert(input and output, "usage: luastrip.lua IN OUT")

local f = assert(io.open(input, "rb"))
local data = f:read("a")
f:close()

local pos = 1
local out = {}

local function fail(what)
  error(string.format("luastrip: %s: %s at byte %d", input, what, pos - 1), 0)
end

local function take(n)
  if pos + n - 1 > #data then fail("truncated chunk") end
  local s = data:sub(pos, pos + n - 1)
  pos = pos + n
  return s
end

local function copy(n) out[#out + 1] = take(n) end

-- dumpSize: 7 bits a byte, most significant first, the last byte marked.
local function read_size()
  local x, start = 0, pos
  repeat
    local b = take(1):byte()
    x = x * 128 + (b & 0x7f)
  until b & 0x80 ~= 0
  return x, data:sub(start, pos - 1)
end

local function copy_size()
  local n, raw = read_size()
  out[#out + 1] = raw
  return n
end

local function size_bytes(x)
  local b = { string.char((x & 0x7f) | 0x80) }
  x = x >> 7
  while x > 0 do
    table.insert(b, 1, string.char(x & 0x7f))
    x = x >> 7
  end
  return table.concat(b)
end

local function skip_string()
  local n = read_size()
  if n > 0 then take(n - 1) end
end

local function copy_string()
  local n = copy_size()
  if n > 0 then copy(n - 1) end
end

local VNIL, VFALSE, VTRUE = 0x00, 0x01, 0x11
local VNUMINT, VNUMFLT = 0x03, 0x13
local VSHRSTR, VLNGSTR = 0x04, 0x14

local function copy_function()
  copy_string()            -- source (absent when it is the parent's)
  copy_size()              -- linedefined
  copy_size()              -- lastlinedefined
  copy(3)                  -- numparams, is_vararg, maxstacksize
  copy(4 * copy_size())    -- code
  for _ = 1, copy_size() do -- constants
    local t = take(1)
    out[#out + 1] = t
    t = t:byte()
    if t == VNUMINT or t == VNUMFLT then
      copy(8)
    elseif t == VSHRSTR or t == VLNGSTR then
      copy_string()
    elseif t ~= VNIL and t ~= VFALSE and t ~= VTRUE then
      fail("unknown constant type " .. t)
    end
  end
  local nupvalues = copy_size()
  copy(3 * nupvalues)      -- instack, idx, kind
  for _ = 1, copy_size() do copy_function() end -- nested functions
  -- Debug information: line numbers stay, names go.
  copy(copy_size())        -- lineinfo, one byte per instruction
  for _ = 1, copy_size() do copy_size(); copy_size() end -- abslineinfo
  for _ = 1, read_size() do -- locvars: name, startpc, endpc
    skip_string(); read_size(); read_size()
  end
  out[#out + 1] = size_bytes(0)
  for _ = 1, read_size() do skip_string() end -- upvalue names
  out[#out + 1] = size_bytes(0)
end

-- Header: signature, version 5.4, format 0, LUAC_DATA, the sizes of
-- Instruction, lua_Integer and lua_Number, LUAC_INT, LUAC_NUM.
if data:sub(1, 15) ~= "\27Lua\x54\0\x19\x93\r\n\x1a\n\4\8\8" then
  fail("not a Lua 5.4 chunk of the expected layout")
end
copy(4 + 1 + 1 + 6 + 3 + 8 + 8)
copy(1)                    -- number of upvalues of the main function
copy_function()
if pos <= #data then fail("trailing bytes") end

-- Whole or not at all: the build takes an existing OUT as up to date.
local o = assert(io.open(output .. ".tmp", "wb"))
assert(o:write(table.concat(out)))
assert(o:close())
assert(os.rename(output .. ".tmp", output))
