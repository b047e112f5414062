-- A short soak (issue 15; tests/bench/soak is the 10,000 one): 300
-- sequential containers from one recipe (tests/bench/soak.lua), as root
-- and as an unprivileged user; its fds and Lua heap stay flat from the
-- 100th on, its RSS grows by less than a page per container, every
-- container's registry record is gone with it, and no mount or process
-- is left. Counts, not times.

local t = require("pftest")

local RECIPE = t.SOURCE_DIR .. "/tests/bench/soak.lua"

--- The report lines of a soak run, as tables.
local function reports(stdout)
  local list = {}
  for i, fds, rss, lua, left in stdout:gmatch("soak: (%d+) containers fds (%d+) rss_kb (%d+) lua_kb (%d+) host_used_kb %d+ records_left (%d+)") do
    list[#list + 1] = { n = tonumber(i), fds = tonumber(fds), rss = tonumber(rss), lua = tonumber(lua), left = tonumber(left) }
  end
  return list
end

local function check(res)
  assert.equal(0, res.status, res.stdout .. res.stderr)
  assert.matches("soak: done\n$", res.stdout)
  local r = reports(res.stdout)
  assert.equal(4, #r, res.stdout)
  -- From the 100th on (the first containers open what stays open, e.g.
  -- the signal fd, and fill Lua's caches): flat.
  assert.equal(r[2].fds, r[4].fds, res.stdout)
  assert.is_true(r[4].lua <= r[2].lua * 1.1 + 8, "Lua heap grows:\n" .. res.stdout)
  assert.is_true(r[4].rss - r[2].rss < 200 * 4, "RSS grows by a page per container:\n" .. res.stdout)
  assert.equal(0, r[4].left, "records left behind:\n" .. res.stdout)
end

describe("soak", function()
  local mounts_before
  before_each(function() mounts_before = t.mounts() end)
  after_each(function() assert.equal(mounts_before, t.mounts()) end)

  it("300 containers from one recipe as root: flat fds, heap and RSS, nothing left", function()
    check(t.pflask({ "--recipe=" .. RECIPE, "300", "100" }))
    assert.equal(0, t.count_processes(RECIPE))
  end)

  it("300 containers from one recipe as an unprivileged user: the same", function()
    local name, uid = t.create_user()
    local exe, bindir = t.public_pflask()
    local recipe_dir = t.tempdir("soak")
    t.sh("cp " .. t.quote(RECIPE) .. " " .. recipe_dir .. "/soak.lua && chmod 0755 " .. recipe_dir)
    local ok, err = pcall(function()
      local res = t.pflask({ "--recipe=" .. recipe_dir .. "/soak.lua", "300", "100" },
        { user = name, pflask = exe, env = { PATH = "/usr/sbin:/usr/bin:/sbin:/bin" }, prefix = "cd / &&" })
      if res.status ~= 0 and res.stderr:match("user namespace") then
        pending("no user namespaces for an unprivileged user here: " .. res.stderr)
        return
      end
      check(res)
      assert.equal("0", t.user_processes(uid), "processes left behind")
    end)
    t.remove_user(name)
    t.rm_rf(bindir)
    t.rm_rf(recipe_dir)
    if not ok then error(err, 0) end
  end)
end)
