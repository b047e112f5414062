-- Recipes: Lua programs the pflask executable runs (src/main.c): how they
-- are chosen (--recipe=FILE, --recipe FILE, bundled names, pflask-NAME
-- links, #! lines), what they receive, how their result and their errors
-- become pflask's exit status.
local pft = require "pftest"

local absolute = pft.absolute

local PFLASK = absolute(pft.PFLASK)

local function write_file(path, text, mode)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  if mode then assert(pft.sh("chmod " .. mode .. " " .. pft.quote(path)) == 0) end
  return path
end

local one_line = pft.one_line

-- A recipe that reports what it got: arg[0], #arg, the arg table and `...`.
local ECHO_ARGS = [[
local parts = { "arg0=" .. tostring(arg[0]), "n=" .. #arg }
for i = 1, #arg do parts[#parts + 1] = "arg" .. i .. "=" .. arg[i] end
local dots = table.pack(...)
parts[#parts + 1] = "dots=" .. dots.n
for i = 1, dots.n do parts[#parts + 1] = "dot" .. i .. "=" .. dots[i] end
io.write(table.concat(parts, "\n"), "\n")
return tonumber(os.getenv("PFT_STATUS") or "0")
]]

local function expected_args(recipe, args)
  local lines = { "arg0=" .. recipe, "n=" .. #args }
  for i, a in ipairs(args) do lines[#lines + 1] = "arg" .. i .. "=" .. a end
  lines[#lines + 1] = "dots=" .. #args
  for i, a in ipairs(args) do lines[#lines + 1] = "dot" .. i .. "=" .. a end
  return table.concat(lines, "\n") .. "\n"
end

describe("recipes", function()
  local dir, mounts_before

  before_each(function()
    dir = pft.tempdir("recipes")
    mounts_before = pft.mounts()
  end)
  after_each(function()
    pft.rm_rf(dir)
    assert.equal(mounts_before, pft.mounts())
  end)

  it("runs --recipe=FILE with its arguments as arg and ...", function()
    local recipe = write_file(dir .. "/echo.lua", ECHO_ARGS)
    local r = pft.pflask({ "--recipe=" .. recipe, "one", "two words", "--three" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    assert.equal(expected_args(recipe, { "one", "two words", "--three" }), r.stdout)
  end)

  it("runs --recipe FILE (separate argument) the same way", function()
    local recipe = write_file(dir .. "/echo.lua", ECHO_ARGS)
    local r = pft.pflask({ "--recipe", recipe, "a", "b" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(expected_args(recipe, { "a", "b" }), r.stdout)
  end)

  it("runs a recipe with no arguments", function()
    local recipe = write_file(dir .. "/echo.lua", ECHO_ARGS)
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(0, r.status, r.stderr)
    assert.equal(expected_args(recipe, {}), r.stdout)
  end)

  it("takes a relative FILE with a .lua suffix from the working directory", function()
    write_file(dir .. "/echo.lua", ECHO_ARGS)
    local r = pft.pflask({ "--recipe=echo.lua", "x" }, { prefix = "cd " .. dir .. " &&" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(expected_args("echo.lua", { "x" }), r.stdout)
  end)

  it("exits with the recipe's integer return value", function()
    local recipe = write_file(dir .. "/echo.lua", ECHO_ARGS)
    for _, status in ipairs({ 0, 3, 42, 125 }) do
      local r = pft.pflask({ "--recipe=" .. recipe }, { env = { PFT_STATUS = tostring(status) } })
      assert.equal(status, r.status, r.stderr)
    end
    local nothing = write_file(dir .. "/nothing.lua", "local x = 1\n")
    assert.equal(0, pft.pflask({ "--recipe=" .. nothing }).status)
  end)

  it("runs an executable recipe with a #!/usr/bin/env -S pflask --recipe line", function()
    local bin = dir .. "/bin"
    assert.equal(0, pft.sh("mkdir " .. bin .. " && ln -s " .. pft.quote(PFLASK) .. " " .. bin .. "/pflask"))
    local script = write_file(dir .. "/hello", "#!/usr/bin/env -S pflask --recipe\n" .. ECHO_ARGS, "0755")
    local r = pft.run({ script, "first", "second" },
      { env = { PATH = bin .. ":/usr/bin:/bin", PFT_STATUS = "9" } })
    assert.equal(9, r.status, r.stderr)
    assert.equal(expected_args(script, { "first", "second" }), r.stdout)
  end)

  it("runs the bundled classic CLI with --recipe=pflask", function()
    local r = pft.pflask({ "--recipe=pflask", "--hostname=viarecipe", "--", "sh", "-c", "echo $$; hostname" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\nviarecipe\n", r.stdout)
    local v = pft.pflask({ "--recipe=pflask", "--version" })
    assert.equal(0, v.status, v.stderr)
    -- The first line against CMakeLists.txt; the features line after it.
    assert.equal("pflask " .. pft.project_version(), v.stdout:match("^([^\n]*)\n"))
    assert.matches("^pflask %d+%.%d+%.%d+\n[+-]%l[^\n]*\n$", v.stdout)
    local direct = pft.pflask({ "--version" })
    assert.equal(0, direct.status, direct.stderr)
    -- Through the recipe or not, the same text.
    assert.equal(direct.stdout, v.stdout)
  end)

  it("refuses an unknown bundled recipe name with 125 and one line", function()
    local r = pft.pflask({ "--recipe=pftest-no-such-recipe", "x" }, { prefix = "cd " .. dir .. " &&" })
    assert.equal(125, r.status)
    assert.equal("", r.stdout)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.equal(1, r.stderr:find("pflask: --recipe: no recipe named 'pftest-no-such-recipe'", 1, true),
      r.stderr)
    assert.matches("pflask", r.stderr:match("bundled: ([^;)]*)") or "", 1, true)
  end)

  it("refuses --recipe without a value", function()
    for _, args in ipairs({ { "--recipe=" }, { "--recipe" } }) do
      local r = pft.pflask(args)
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("^pflask: %-%-recipe: ", r.stderr)
    end
  end)

  it("refuses a recipe file that does not exist, with one line", function()
    local r = pft.pflask({ "--recipe=" .. dir .. "/missing.lua" })
    assert.equal(125, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: %-%-recipe: ", r.stderr)
    assert.matches("missing.lua", r.stderr, 1, true)
  end)

  it("runs recipe NAME when invoked through a symlink named pflask-NAME", function()
    local link = dir .. "/pflask-pflask"
    assert.equal(0, pft.sh("ln -s " .. pft.quote(PFLASK) .. " " .. link))
    local r = pft.run({ link, "--hostname=vialink", "--", "sh", "-c", "echo $$; hostname" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\nvialink\n", r.stdout)
    local unknown = dir .. "/pflask-pftestnope"
    assert.equal(0, pft.sh("ln -s " .. pft.quote(PFLASK) .. " " .. unknown))
    local u = pft.run({ unknown }, { prefix = "cd " .. dir .. " &&" })
    assert.equal(125, u.status)
    assert.matches("^pflask: %-%-recipe: no recipe named 'pftestnope'", u.stderr)
  end)

  it("reports a Lua error as 'pflask: FILE:LINE: message' on one line, exit 125", function()
    local recipe = write_file(dir .. "/broken.lua", "local x = 1\n\nerror(\"it broke\")\n")
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(125, r.status)
    assert.equal("", r.stdout)
    assert.equal("pflask: " .. recipe .. ":3: it broke\n", r.stderr)
  end)

  it("reports a runtime error in a recipe the same way", function()
    local recipe = write_file(dir .. "/nil.lua", "local t\nlocal y = 2\nreturn t.field\n")
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(125, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: " .. recipe:gsub("%p", "%%%0") .. ":3: attempt to index", r.stderr)
  end)

  -- The embedded library loses its local names (cmake/luastrip.lua), never
  -- its line numbers: a bug inside it still says where.
  it("reports an error inside the bundled library with its file and line", function()
    local line
    local n = 0
    for l in assert(io.lines(pft.SOURCE_DIR .. "/lua/pflask/path.lua")) do
      n = n + 1
      if l:find('if path:sub(1, 1) == "/"', 1, true) then line = n end
    end
    assert.is_not_nil(line, "pflask.path.absolute changed: update this test")
    local recipe = write_file(dir .. "/lib.lua", 'return require("pflask.path").absolute(42)\n')
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(125, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: pflask/path%.lua:" .. line .. ": attempt to index a number value", r.stderr)
    local d = pft.pflask({ "--recipe=" .. recipe }, { env = { PFLASK_DEBUG = "1" } })
    assert.matches("pflask/path.lua:" .. line .. ": in function 'pflask.path.absolute'", d.stderr, 1, true)
  end)

  -- src/main.c: a slow collector while the library loads (start-up time),
  -- Lua's default pace from the first running container on, so that a
  -- recipe starting thousands keeps its heap near twice what it holds.
  it("collects at Lua's default pace once the first container runs", function()
    local recipe = write_file(dir .. "/gc.lua", [[
local pflask = require "pflask"
-- The heap's peak over its live size while garbage is made.
local function peak()
  collectgarbage("collect")
  local base, max, keep = collectgarbage("count"), 0, {}
  for i = 1, 200000 do
    keep[i % 50 + 1] = { i, tostring(i) }
    max = math.max(max, collectgarbage("count"))
  end
  return max / base
end
local before = peak()
assert(pflask.run({ command = { "/bin/true" } }) == 0)
io.write(string.format("%.2f %.2f\n", before, peak()))
]])
    local function check(r)
      assert.equal(0, r.status, r.stderr)
      local before, after = r.stdout:match("^(%S+) (%S+)\n$")
      assert.is_true(tonumber(before) > 5, r.stdout)
      assert.is_true(tonumber(after) < 3, r.stdout)
    end
    check(pft.pflask({ "--recipe=" .. recipe }))
    -- Rootless: the same executable, the same pace.
    local user = pft.rootless_user()
    finally(function() user:remove() end)
    assert.are_not.equal(0, user.uid)
    check(user:pflask({ "--recipe=" .. recipe }))
  end)

  it("keeps the collector's mode a recipe chose before its first container", function()
    local recipe = write_file(dir .. "/gen.lua", [[
collectgarbage("generational")
assert(require("pflask").run({ command = { "/bin/true" } }) == 0)
io.write(collectgarbage("incremental"), "\n")
]])
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(0, r.status, r.stderr)
    assert.equal("generational\n", r.stdout)
  end)

  it("reports a syntax error in a recipe on one line, exit 125", function()
    local recipe = write_file(dir .. "/syntax.lua", "local x = \n\nif then\n")
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(125, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: ", r.stderr)
    assert.matches(recipe .. ":3:", r.stderr, 1, true)
  end)

  it("adds a traceback with PFLASK_DEBUG=1", function()
    local recipe = write_file(dir .. "/broken.lua", "local x = 1\n\nerror(\"it broke\")\n")
    local r = pft.pflask({ "--recipe=" .. recipe }, { env = { PFLASK_DEBUG = "1" } })
    assert.equal(125, r.status)
    local first = r.stderr:match("^[^\n]*")
    assert.equal("pflask: " .. recipe .. ":3: it broke", first)
    assert.matches("\nstack traceback:\n", r.stderr, 1, true)
    assert.matches(recipe .. ":3: in main chunk", r.stderr, 1, true)
    -- PFLASK_DEBUG=0 means off.
    local quiet = pft.pflask({ "--recipe=" .. recipe }, { env = { PFLASK_DEBUG = "0" } })
    assert.equal("pflask: " .. recipe .. ":3: it broke\n", quiet.stderr)
  end)

  it("can run a container with the pflask library", function()
    local recipe = write_file(dir .. "/lib.lua", [[
local pflask = require "pflask"
return pflask.run{ command = {"sh", "-c", "echo $$; hostname"}, hostname = "fromlua" }
]])
    local host = pft.capture("hostname")
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\nfromlua\n", r.stdout)
    assert.equal(host, pft.capture("hostname"))
  end)

  it("returns the container's status from pflask.run", function()
    local recipe = write_file(dir .. "/status.lua", [[
local pflask = require "pflask"
return pflask.run{ command = {"sh", "-c", "exit " .. arg[1]} }
]])
    assert.equal(7, pft.pflask({ "--recipe=" .. recipe, "7" }).status)
    assert.equal(0, pft.pflask({ "--recipe=" .. recipe, "0" }).status)
  end)

  it("exits with the status of a pflask.Error and prints its message", function()
    local recipe = write_file(dir .. "/custom.lua",
      "local perr = require 'pflask.error'\nerror(perr.new(42, 'custom failure'))\n")
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(42, r.status)
    assert.equal("pflask: custom failure\n", r.stderr)
    local raised = write_file(dir .. "/raised.lua",
      "require('pflask.error').raise(3, 'raised %d', 33)\n")
    local r2 = pft.pflask({ "--recipe=" .. raised })
    assert.equal(3, r2.status)
    assert.equal("pflask: raised 33\n", r2.stderr)
    local option = write_file(dir .. "/option.lua",
      "require('pflask.error').option('--thing', \"'%s' is wrong\", 'x')\n")
    local r3 = pft.pflask({ "--recipe=" .. option })
    assert.equal(125, r3.status)
    assert.equal("pflask: --thing: 'x' is wrong\n", r3.stderr)
  end)

  it("reports a command the library cannot find with 127", function()
    local recipe = write_file(dir .. "/nf.lua",
      "return require('pflask').run{ command = {'pftest-no-such-command'} }\n")
    local r = pft.pflask({ "--recipe=" .. recipe }, { env = { PATH = "/usr/bin:/bin" } })
    assert.equal(127, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: .*pftest%-no%-such%-command", r.stderr)
  end)
end)
