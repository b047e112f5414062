-- `pflask --version` (issue 16): the version CMake builds with, then the
-- features built in, as systemd tools print them.
local pft = require "pftest"

local function project_version()
  local text = pft.read_file(pft.SOURCE_DIR .. "/CMakeLists.txt")
  return text:match("project%(pflask VERSION (%d+%.%d+%.%d+)")
end

local function cache_value(name)
  local text = pft.read_file(pft.BUILD_DIR .. "/CMakeCache.txt") or ""
  return text:match("\n" .. name .. ":%w+=([^\n]*)")
end

describe("pflask --version", function()
  it("prints the project's version, above pflask 0.2's, and the features line", function()
    local r = pft.pflask({ "--version" })
    assert.equal(0, r.status, r.stderr)
    local version, features = r.stdout:match("^pflask (%S+)\n([^\n]*)\n$")
    assert.equal(project_version(), version, r.stdout)
    local major, minor = version:match("^(%d+)%.(%d+)")
    assert.is_true(tonumber(major) > 0 or tonumber(minor) > 2, version)
    assert.equal("+netlink +libmount +caps +seccomp "
      .. (cache_value("PFLASK_MACHINED") == "ON" and "+" or "-") .. "machined", features)
    assert.equal(r.stdout, pft.pflask({ "-V" }).stdout)
    -- The Lua library says the same.
    local core = require "pflask.core"
    assert.equal(version, core.version)
    assert.equal(features, table.concat(core.features, " "))
  end)

  it("loads libsystemd only to register: the executable does not link it", function()
    local ldd = pft.capture("ldd " .. pft.quote(pft.PFLASK))
    assert.is_nil(ldd:find("libsystemd", 1, true), ldd)
    assert.is_nil(ldd:find("libmount", 1, true), ldd)
  end)
end)
