-- `pflask --recipe=list`: every bundled recipe, then every example, with
-- the one-line description its own source starts with.
local pft = require "pftest"

describe("--recipe=list", function()
  it("prints each bundled recipe with the first line of its source", function()
    local r = pft.pflask({ "--recipe=list" }, { env = { PFLASK_EXAMPLES_DIR = "/nonexistent" } })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    for _, name in ipairs({ "pflask", "debuild" }) do
      local first = pft.read_file(pft.SOURCE_DIR .. "/recipes/" .. name .. ".lua"):match("^%-%-%s*([^\n]-)[:%s]*\n")
      assert.matches("\n?" .. name .. " +" .. first:gsub("%p", "%%%0") .. "\n", r.stdout)
    end
  end)

  it("lists the examples by path, described by their header", function()
    local dir = pft.SOURCE_DIR .. "/recipes/examples"
    dir = pft.absolute(dir)
    local r = pft.pflask({ "--recipe=list" }, { env = { PFLASK_EXAMPLES_DIR = dir } })
    assert.equal(0, r.status, r.stderr)
    local n = 0
    for file in pft.capture("ls " .. dir .. "/*.lua"):gmatch("[^\n]+") do
      local first = pft.read_file(file):match("^%-%-%s*([^\n]-)[:%s]*\n")
      assert.is_truthy(first and #first > 0, file .. " has no header line")
      assert.matches(file:gsub("%p", "%%%0") .. " +" .. first:gsub("%p", "%%%0") .. "\n", r.stdout)
      n = n + 1
    end
    assert.is_true(n > 0)
  end)
end)
