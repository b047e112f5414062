-- Editor support: the LuaCATS files in lua/meta/ declare exactly what the
-- modules export (pflask.core's functions and tables, the pflask facade's
-- functions) and exactly the spec fields pflask.schema knows.
local pft = require "pftest"

local function meta(name)
  return assert(pft.read_file(pft.SOURCE_DIR .. "/lua/meta/" .. name .. ".lua"))
end

local function declared(text, prefix)
  local set = {}
  for n in text:gmatch("\nfunction " .. prefix .. "%.([%w_]+)%(") do set[n] = true end
  for n in text:gmatch("\n" .. prefix .. "%.([%w_]+) = ") do set[n] = true end
  return set
end

local function diff(a, b)
  local out = {}
  for k in pairs(a) do if not b[k] then out[#out + 1] = k end end
  table.sort(out)
  return table.concat(out, ", ")
end

-- In the pflask executable only (src/main.c sets them).
local EXECUTABLE_ONLY = { recipes = true, recipe_descriptions = true, examples_dir = true, startup_done = true }

describe("lua/meta", function()
  it("declares every export of pflask.core, and nothing else", function()
    local stub = declared(meta("pflask.core"), "core")
    local exported = {}
    for k in pairs(require "pflask.core") do exported[k] = true end
    for k in pairs(EXECUTABLE_ONLY) do exported[k] = true end
    assert.equal("", diff(exported, stub), "exported but not in lua/meta/pflask.core.lua")
    assert.equal("", diff(stub, exported), "in lua/meta/pflask.core.lua but not exported")
  end)

  it("declares every function of the pflask facade, and nothing else", function()
    local stub = declared(meta("pflask"), "pflask")
    local exported = {}
    for k in pairs(require "pflask") do exported[k] = true end
    assert.equal("", diff(exported, stub), "exported but not in lua/meta/pflask.lua")
    assert.equal("", diff(stub, exported), "in lua/meta/pflask.lua but not exported")
  end)

  it("declares pflask.Spec with exactly the fields pflask.schema knows", function()
    local text = meta("pflask")
    local class = text:match("\n%-%-%-@class pflask%.Spec\n(.-)\n\n")
    local stub = {}
    for n in class:gmatch("%-%-%-@field ([%w_]+)") do stub[n] = true end
    local known = {}
    for k in pairs(require("pflask.schema").SPEC.fields) do known[k] = true end
    assert.equal("", diff(known, stub), "spec fields missing from pflask.Spec")
    assert.equal("", diff(stub, known), "pflask.Spec fields the schema does not know")
  end)

  it("declares a mount's and a netif's fields as the schema does", function()
    local text = meta("pflask")
    local schema = require "pflask.schema"
    for class, rec in pairs({ Mount = schema.MOUNT, Netif = schema.NETIF }) do
      local body = text:match("\n%-%-%-@class pflask%." .. class .. "\n(.-)\n\n")
      local stub = {}
      for n in body:gmatch("%-%-%-@field ([%w_]+)") do stub[n] = true end
      assert.equal("", diff(rec.fields, stub), class)
      assert.equal("", diff(stub, rec.fields), class)
    end
  end)
end)
