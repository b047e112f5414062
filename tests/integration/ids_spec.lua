-- Ids are checked (issue 11, item 6): from the command line, a spec and
-- the root's passwd file, an id past 4294967294 or not in decimal is
-- refused with one line and status 125, and never runs the command as
-- another user (4294967296 would wrap to root).
local pft = require "pftest"

local one_line = pft.one_line

describe("ids", function()
  local dir, root
  setup(function()
    dir = pft.tempdir("ids")
    root = pft.make_rootfs(dir .. "/root")
    pft.write_file(root .. "/etc/passwd", pft.read_file(root .. "/etc/passwd") .. table.concat({
      "wrap:x:4294967296:4294967296::/:/bin/sh",
      "neg:x:-1:-1::/:/bin/sh",
      "hex:x:0x0:0x0::/:/bin/sh",
      "", }, "\n"))
  end)
  teardown(function() pft.rm_rf(dir) end)

  local function refused(args, pattern)
    local r = pft.pflask(args)
    assert.equal(125, r.status, r.stdout .. r.stderr)
    assert.equal("", r.stdout)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches(pattern, r.stderr)
  end

  for _, userns in ipairs({ "--no-userns", false }) do
    local label = userns and " (no user namespace)" or " (user namespace)"
    it("--user 4294967296 and 4294967295 are refused" .. label, function()
      for _, v in ipairs({ "4294967296", "4294967295", "18446744073709551616" }) do
        local args = { "--chroot=" .. root, "--user=" .. v, "--", "id", "-u" }
        if userns then table.insert(args, 1, userns) end
        refused(args, "^pflask: %-%-user: '" .. v .. "' is not a user: ids go from 0 to 4294967294\n$")
      end
    end)
  end

  it("--user 4294967294, the last id, runs as 4294967294", function()
    local r = pft.pflask({ "--no-userns", "--chroot=" .. root, "--user=4294967294", "--", "id", "-u" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("4294967294\n", r.stdout)
  end)

  it("passwd entries with ids that would wrap or are not decimal are no users", function()
    for _, name in ipairs({ "wrap", "neg", "hex" }) do
      refused({ "--no-userns", "--chroot=" .. root, "--user=" .. name, "--", "id", "-u" },
        "^pflask: %-%-user: '" .. name .. "' is not a user: no such user in ")
    end
  end)

  it("--user-map ids past 4294967294 are refused", function()
    refused({ "--user-map=4294967295:0:1", "--chroot=" .. root, "--", "true" },
      "^pflask: %-%-user%-map: '4294967295:0:1' goes past id 4294967294\n$")
    refused({ "--user-map=0:4294967296:1", "--chroot=" .. root, "--", "true" },
      "^pflask: %-%-user%-map: ")
    refused({ "--user-map=0x0:0:1", "--chroot=" .. root, "--", "true" },
      "^pflask: %-%-user%-map: '0x0:0:1' is not CONT:HOST:COUNT\n$")
  end)

  it("a recipe's uid_map is checked too", function()
    local recipe = pft.write_file(dir .. "/map.lua", table.concat({
      'local pflask = require "pflask"',
      'return pflask.run{ command = { "true" }, uid_map = { { inside = 0, outside = 4294967296, count = 1 } } }',
      "", }, "\n"))
    refused({ "--recipe=" .. recipe }, "^pflask: %-%-user%-map: uid range 1: inside and outside must be ids")
  end)

  it("rootless: --user 4294967296 is refused", function()
    local user = pft.rootless_user()
    finally(function() user:remove() end)
    local r = user:pflask({ "--chroot=" .. root, "--user=4294967296", "--", "id", "-u" })
    assert.equal(125, r.status, r.stderr)
    assert.equal("pflask: --user: '4294967296' is not a user: ids go from 0 to 4294967294\n", r.stderr)
  end)
end)
