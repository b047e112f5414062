-- cmake/luastrip.lua: the embedded chunks lose the names of locals and
-- upvalues (start-up time) and keep everything else, line numbers
-- included, so that an error inside the bundled library still says where.
local pft = require "pftest"

local STRIP = pft.SOURCE_DIR .. "/cmake/luastrip.lua"

local function compile(dir, name, source_file)
  local full = dir .. "/" .. name .. ".full"
  local stripped = dir .. "/" .. name .. ".luac"
  assert.equal(0, pft.sh("luac5.4 -o " .. pft.quote(full) .. " " .. pft.quote(source_file)))
  assert.equal(0, pft.sh("lua5.4 " .. pft.quote(STRIP) .. " " .. pft.quote(full) .. " " .. pft.quote(stripped)))
  return assert(loadfile(full, "b")), assert(loadfile(stripped, "b")), full, stripped
end

local function bundled_sources()
  local list = {}
  local p = io.popen("cd " .. pft.quote(pft.SOURCE_DIR) .. " && find lua/pflask recipes -maxdepth 2 -name '*.lua' -not -path 'recipes/examples/*' | sort")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

describe("luastrip", function()
  local dir
  before_each(function() dir = pft.tempdir("luastrip") end)
  after_each(function() pft.rm_rf(dir) end)

  it("changes nothing but debug names in any bundled chunk", function()
    local sources = bundled_sources()
    assert.is_true(#sources > 20, "found " .. #sources .. " sources")
    for i, src in ipairs(sources) do
      local full, stripped, full_file, stripped_file = compile(dir, tostring(i), pft.SOURCE_DIR .. "/" .. src)
      -- The same code, constants and functions: equal once both lose all
      -- debug information.
      assert.equal(string.dump(full, true), string.dump(stripped, true), src)
      -- The same lines, and the same source name ("pflask/cli.lua:12:").
      local a, b = debug.getinfo(full, "SL"), debug.getinfo(stripped, "SL")
      assert.same(a.activelines, b.activelines, src)
      assert.equal(a.source, b.source, src)
      assert.is_true(#pft.read_file(stripped_file) < #pft.read_file(full_file), src)
    end
  end)

  it("reads every kind of constant, long sizes and deep nesting", function()
    local src = dir .. "/kinds.lua"
    local locals = {}
    for i = 1, 150 do locals[#locals + 1] = "local v" .. i .. " = " .. i end
    local f = assert(io.open(src, "w"))
    f:write(table.concat(locals, "\n"), "\n", [[
local long = "]], ("x"):rep(300), [["
local consts = { 1.5, -0.0, 1e308, math.maxinteger, math.mininteger, true, false, "short" }
return function(...)
  local up = select("#", ...)
  return function()
    return function() return up, long, consts, v1, v150, nil end
  end
end
]])
    f:close()
    local full, stripped = compile(dir, "kinds", src)
    assert.equal(string.dump(full, true), string.dump(stripped, true))
    local a, b, c = stripped()(1, 2, 3)()()
    assert.equal(3, a)
    assert.equal(("x"):rep(300), b)
    assert.equal(1.5, c[1])
    assert.equal(math.mininteger, c[5])
  end)

  it("keeps the line of an error in a nested function, drops the local's name", function()
    local src = dir .. "/nested.lua"
    local f = assert(io.open(src, "w"))
    f:write("local outer = 1\nreturn function(arg)\n  local inner = arg\n\n  return inner.field + outer\nend\n")
    f:close()
    local full, stripped = compile(dir, "nested", src)
    local ok, err = pcall(full(), nil)
    assert.is_false(ok)
    assert.matches("nested.lua:5: attempt to index a nil value (local 'inner')", err, 1, true)
    ok, err = pcall(stripped(), nil)
    assert.is_false(ok)
    assert.matches("nested.lua:5: attempt to index a nil value", err, 1, true)
    assert.is_nil(err:find("inner", 1, true), err)
  end)

  it("refuses what is not a Lua 5.4 chunk, leaving no output", function()
    local bad = dir .. "/bad.luac"
    local f = assert(io.open(bad, "wb"))
    f:write("\27Lua\x53\0garbage")
    f:close()
    local out = dir .. "/out.luac"
    local r = pft.run({ "lua5.4", STRIP, bad, out })
    assert.are_not.equal(0, r.status)
    assert.matches("luastrip: .*not a Lua 5.4 chunk", r.stderr)
    assert.is_nil(io.open(out, "rb"))
    assert.is_nil(io.open(out .. ".tmp", "rb"))
  end)
end)
