-- `user` is looked up in the files the command will see: a root built
-- from nothing whose /etc/passwd is a file mount, a passwd mounted over a
-- root's. keepenv keeps the caller's HOME and USER.
local pft = require "pftest"

local function run(dir, text)
  local file = dir .. "/recipe.lua"
  pft.write_file(file, text)
  return pft.pflask({ "--recipe=" .. file }, { env = { HOME = "/caller/home", USER = "caller" } })
end

-- A root from nothing with the host's /usr (and the merged-/usr links).
local FROM_NOTHING = [[
local mounts = { { type = "tmp", target = "/" }, { type = "bind", source = "/usr", target = "/usr", readonly = true } }
for _, l in ipairs({ "bin", "lib", "lib64", "sbin" }) do
  local t = pflask.core.lstat("/" .. l)
  if t and t.type == "symlink" then mounts[#mounts + 1] = { type = "symlink", target = "/" .. l, to = "usr/" .. l }
  elseif t then mounts[#mounts + 1] = { type = "bind", source = "/" .. l, target = "/" .. l, readonly = true } end
end
]]

describe("user lookup", function()
  local dir
  setup(function() dir = pft.tempdir("planuser") end)
  teardown(function() pft.rm_rf(dir) end)

  it("finds the user in a /etc/passwd that a file mount puts in a root made from nothing", function()
    local r = run(dir, "local pflask = require 'pflask'\n" .. FROM_NOTHING .. [[
mounts[#mounts + 1] = { type = "file", target = "/etc/passwd", content = "root:x:0:0::/root:/bin/sh\nbuilder:x:4321:4322:B:/work:/bin/sh\n" }
mounts[#mounts + 1] = { type = "file", target = "/etc/group", content = "builder:x:4322:\nextra:x:4323:builder\n" }
local st, out, err = pflask.capture{ mounts = mounts, user = "builder",
  command = { "sh", "-c", "id -u; id -g; id -G; echo $HOME $USER" } }
io.write(st, "\n", out, err)
]])
    if r.status ~= 0 and r.stderr:find("user namespace") then pending(r.stderr) return end
    assert.equal(0, r.status, r.stderr)
    assert.equal("0\n4321\n4322\n4322 4323\n/work builder\n", r.stdout)
  end)

  it("names the mounts' passwd when the user is not in it", function()
    local r = run(dir, "local pflask = require 'pflask'\n" .. FROM_NOTHING .. [[
mounts[#mounts + 1] = { type = "file", target = "/etc/passwd", content = "root:x:0:0::/root:/bin/sh\n" }
return pflask.run{ mounts = mounts, user = "builder", command = { "true" } }
]])
    assert.equal(125, r.status)
    assert.equal("pflask: --user: 'builder' is not a user: no such user in the /etc/passwd of mounts\n", r.stderr)
  end)

  it("keepenv keeps the caller's HOME and USER, also with a user", function()
    local r = run(dir, [[
local pflask = require 'pflask'
local _, a = pflask.capture{ user = "daemon", keepenv = true, command = { "sh", "-c", "echo $HOME $USER" } }
local _, b = pflask.capture{ user = "daemon", command = { "sh", "-c", "echo $HOME $USER" } }
io.write(a, b)
]])
    assert.equal(0, r.status, r.stderr)
    local home = pft.capture("getent passwd daemon | cut -d: -f6")
    assert.equal("/caller/home caller\n" .. home .. " daemon\n", r.stdout)
  end)
end)
