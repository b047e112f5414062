-- `cmake --install` into a throwaway prefix: the files land where they
-- should, the installed executable runs containers without the build or
-- source tree (it embeds its Lua), and stock lua5.4 finds the installed
-- library and module under the prefix.
local pft = require "pftest"

local absolute = pft.absolute

local BUILD = absolute(pft.BUILD_DIR)
local SOURCE = absolute(pft.SOURCE_DIR)

local exists = pft.exists

local read_file = pft.read_file

-- Files under dir (relative names) matching a find(1) -name pattern, sorted.
local function find(dir, pattern)
  local out = pft.capture("cd " .. pft.quote(dir) .. " && find . -name " .. pft.quote(pattern)
    .. " \\( -type f -o -type l \\) | sed 's|^\\./||' | sort")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

-- Shell text that hides the build and source trees (tmpfs over them, in a
-- private mount namespace made by unshare) and clears Lua's search paths,
-- then runs argv.
local function hidden_trees(argv, env)
  local parts = {}
  for _, a in ipairs(argv) do parts[#parts + 1] = pft.quote(a) end
  local assigns = {}
  for k, v in pairs(env or {}) do assigns[#assigns + 1] = pft.quote(k .. "=" .. v) end
  local script = "mount -t tmpfs pftest-hide " .. pft.quote(BUILD)
    .. " && mount -t tmpfs pftest-hide " .. pft.quote(SOURCE)
    .. " && cd / && exec env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u PFLASK "
    .. table.concat(assigns, " ") .. " " .. table.concat(parts, " ")
  return { "unshare", "--mount", "--propagation", "private", "sh", "-c", script }
end

describe("cmake --install", function()
  local prefix, install
  local mounts_before

  setup(function()
    prefix = pft.tempdir("install")
    install = pft.run({ "cmake", "--install", BUILD, "--prefix", prefix }, { timeout = 300 })
  end)

  teardown(function()
    if prefix then pft.rm_rf(prefix) end
  end)

  before_each(function()
    assert.equal(0, install.status, install.stdout .. install.stderr)
    mounts_before = pft.mounts()
  end)
  after_each(function()
    assert.equal(mounts_before, pft.mounts())
    assert.equal(0, pft.count_processes(prefix .. "/bin/pflask"), "processes left behind")
  end)

  it("installs the executable, the module, the library, the recipes and the man page", function()
    local st = pft.capture("stat -c '%F %a' " .. prefix .. "/bin/pflask")
    assert.equal("regular file 755", st)
    assert.is_true(exists(prefix .. "/lib/lua/5.4/pflask/core.so"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/pflask/init.lua"))
    assert.is_true(exists(prefix .. "/share/pflask/recipes/pflask.lua"))
    local man = read_file(prefix .. "/share/man/man1/pflask.1")
    assert.is_not_nil(man, "no share/man/man1/pflask.1")
    assert.matches('%.TH "?pflask"? "?1"?', man)
  end)

  it("installs every Lua module and recipe of the source tree, unchanged", function()
    local modules = find(SOURCE .. "/lua/pflask", "*.lua")
    assert.is_true(#modules >= 5, "too few modules in the source tree")
    assert.same(modules, find(prefix .. "/share/lua/5.4/pflask", "*.lua"))
    for _, m in ipairs(modules) do
      assert.equal(read_file(SOURCE .. "/lua/pflask/" .. m),
        read_file(prefix .. "/share/lua/5.4/pflask/" .. m), m)
    end
    local recipes = find(SOURCE .. "/recipes", "*.lua")
    assert.same(recipes, find(prefix .. "/share/pflask/recipes", "*.lua"))
  end)

  it("installs the LuaCATS declarations for editors, and lists the installed examples", function()
    local metas = find(SOURCE .. "/lua/meta", "*.lua")
    assert.is_true(#metas >= 2)
    assert.same(metas, find(prefix .. "/share/pflask/meta", "*.lua"))
    -- --recipe=list describes the installed examples (the executable was
    -- built for another prefix: PFLASK_EXAMPLES_DIR says where they are).
    local r = pft.run({ prefix .. "/bin/pflask", "--recipe=list" },
                      { env = { PFLASK_EXAMPLES_DIR = prefix .. "/share/pflask/recipes/examples" } })
    assert.equal(0, r.status, r.stderr)
    assert.matches(prefix:gsub("%p", "%%%0") .. "/share/pflask/recipes/examples/network%.lua +A small network", r.stdout)
  end)

  it("installs the shell completions where bash-completion and zsh look under the prefix", function()
    assert.equal(read_file(SOURCE .. "/completion/pflask.bash"),
      read_file(prefix .. "/share/bash-completion/completions/pflask"))
    assert.equal(read_file(SOURCE .. "/completion/_pflask"), read_file(prefix .. "/share/zsh/site-functions/_pflask"))
  end)

  it("installs pflask-NAME links as links to pflask", function()
    for _, link in ipairs(find(prefix .. "/bin", "pflask-*")) do
      assert.equal("pflask", pft.capture("readlink " .. prefix .. "/bin/" .. link), link)
    end
  end)

  it("does not point the executable at the build tree", function()
    local dyn, code = pft.capture("readelf -d " .. prefix .. "/bin/pflask 2>&1")
    -- readelf read it (an empty answer would pass the check below).
    assert.equal(0, code, dyn)
    assert.matches("%(NEEDED%)%s+Shared library: %[libc%.so", dyn)
    assert.is_nil(dyn:find(BUILD, 1, true), dyn)
    -- Nor do its strings name the build tree's Lua (it embeds its own).
    local strings = pft.capture("grep -c -F " .. pft.quote(BUILD .. "/lua") .. " " .. prefix .. "/bin/pflask")
    assert.equal("0", strings)
  end)

  it("runs a real container from another directory", function()
    local r = pft.run({ prefix .. "/bin/pflask", "--", "sh", "-c", "echo $$; cat /proc/1/comm" },
      { prefix = "cd / &&" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\npflask-init\n", r.stdout)
  end)

  it("runs a real container with the build and source trees hidden", function()
    local r = pft.run(hidden_trees({ prefix .. "/bin/pflask", "--hostname=installed", "--",
      "sh", "-c", "echo $$; hostname; ls " .. pft.quote(SOURCE) .. " | wc -l; exit 4" }))
    assert.equal(4, r.status, r.stderr)
    assert.equal("2\ninstalled\n0\n", r.stdout)
    local v = pft.run(hidden_trees({ prefix .. "/bin/pflask", "--version" }))
    assert.equal(0, v.status, v.stderr)
    -- The first line: lines after it (build features) are not the version.
    assert.equal("pflask " .. pft.project_version(), v.stdout:match("^([^\n]*)\n"))
  end)

  it("runs the installed recipe file with the installed executable", function()
    local r = pft.run(hidden_trees({ prefix .. "/bin/pflask",
      "--recipe=" .. prefix .. "/share/pflask/recipes/pflask.lua", "--", "sh", "-c", "echo $$" }))
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\n", r.stdout)
  end)

  it("lets stock lua5.4 require the installed library and module", function()
    local env = {
      LUA_PATH = prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua",
      LUA_CPATH = prefix .. "/lib/lua/5.4/?.so",
    }
    local script = [[
local pflask = require "pflask"
print(pflask.version)
print(pflask.core.version)
print(package.searchpath("pflask", package.path))
print(package.searchpath("pflask.core", package.cpath))
print(package.searchpath("pflask.container", package.path))
]]
    local r = pft.run(hidden_trees({ "lua5.4", "-e", script }, env))
    assert.equal(0, r.status, r.stderr)
    local want_version = pft.project_version()
    assert.equal(table.concat({
      want_version,
      want_version,
      prefix .. "/share/lua/5.4/pflask/init.lua",
      prefix .. "/lib/lua/5.4/pflask/core.so",
      prefix .. "/share/lua/5.4/pflask/container.lua",
    }, "\n") .. "\n", r.stdout)
  end)

  it("lets stock lua5.4 run a container with the installed library", function()
    local env = {
      LUA_PATH = prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua",
      LUA_CPATH = prefix .. "/lib/lua/5.4/?.so",
    }
    local script = [[
local status = require("pflask").run{ command = { "sh", "-c", "echo $$; hostname; exit 6" }, hostname = "stocklua" }
io.stdout:flush()
os.exit(status)
]]
    local r = pft.run(hidden_trees({ "lua5.4", "-e", script }, env))
    assert.equal(6, r.status, r.stderr)
    assert.equal("2\nstocklua\n", r.stdout)
  end)
end)
