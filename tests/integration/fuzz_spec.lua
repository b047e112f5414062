-- Robust parsing under random input (issue 15): seeded command lines and
-- spec tables fed to pflask.cli.parse and to pflask.container (which only
-- plans: nothing is started). Every one must end in success or in a
-- pflask.Error with status 125 and a one-line message: never a raw Lua
-- error, another status, a crash or a hang. A sample of the rejected
-- command lines also goes to the real executable, which must exit 125
-- with one "pflask: " line. FUZZ_COUNT (default 5,000) sets the count;
-- tests/bench/fuzz runs 100,000 and more.

local g = require("fuzzgen")
local cli = require("pflask.cli")
local pflask = require("pflask")
local t = require("pftest")

local COUNT = tonumber(os.getenv("FUZZ_COUNT")) or 5000
local SEED = tonumber(os.getenv("FUZZ_SEED")) or 1

--- Distinct problems (by their first 100 characters), each with the
--- first case that showed it, so a failure names a seed to replay.
local function collector()
  local seen, list = {}, {}
  return function(kind, i, why)
    local key = kind .. why:sub(1, 100)
    if not seen[key] then
      seen[key] = true
      list[#list + 1] = string.format("%s (seed %d, case %d): %s", kind, SEED, i, why:sub(1, 300))
    end
  end, list
end

describe("fuzzing the parsers", function()
  it("cli.parse, then the plan of what parsed: a clean 125 or success, " .. COUNT .. " command lines", function()
    local add, problems = collector()
    local planned = 0
    for i = 1, COUNT do
      local r = g.rng(SEED * 1000003 + i)
      local ok, spec = pcall(cli.parse, g.argv(r))
      local why = g.check(ok, spec)
      if why then add("cli.parse", i, why) end
      if ok and spec then
        planned = planned + 1
        why = g.check(pcall(pflask.container, spec))
        if why then add("plan of a parsed command line", i, why) end
      end
    end
    assert.same({}, problems)
    assert.is_true(planned > 0, "no command line parsed: the generator is too hostile to reach plan()")
  end)

  it("the real executable exits 125 with one line for rejected command lines", function()
    local tried = 0
    for i = 1, COUNT * 4 do
      if tried >= 25 then break end
      local r = g.rng(SEED * 7919 + i)
      local argv = g.argv(r)
      local joined = table.concat(argv, "\1")
      local ok = pcall(cli.parse, argv)
      -- Only rejected ones: an accepted command line would start a
      -- container. A NUL cannot be in an argument.
      if not ok and not joined:find("\0", 1, true) and #joined < 60000 then
        tried = tried + 1
        local res = t.pflask(argv)
        assert.equal(125, res.status, table.concat(argv, " ") .. "\n" .. res.stderr)
        assert.matches("^pflask: [^\n]*\n$", res.stderr)
        assert.is_nil(res.stderr:find("traceback", 1, true), res.stderr)
      end
    end
    assert.is_true(tried > 0)
  end)

  it("pflask.container on random spec tables: a clean 125 or a plan, " .. COUNT .. " specs", function()
    local add, problems = collector()
    -- A field of the wrong type is the strict spec check's (pflask.schema):
    -- a raw Lua error from plan() is a hole like any other.
    for i = 1, COUNT do
      local r = g.rng(SEED * 104729 + i)
      local spec = g.spec(r)
      local ok, e = pcall(pflask.container, spec)
      local why = g.check(ok, e)
      if why then add("pflask.container", i, why) end
    end
    assert.same({}, problems)
  end)
end)
