-- Ids from every input (issue 11, item 6): one checker (pflask.spec.id),
-- used by --user, --user-map, spec ranges, passwd, group and subuid files.
-- 0 to 4294967294, decimal digits only: nothing wraps to another id.

local ids = require("pflask.spec.id")
local users = require("pflask.users")
local usermap = require("pflask.spec.usermap")
local userns = require("pflask.userns")

describe("pflask.spec.id", function()
  it("takes the edge values 0 and 4294967294", function()
    assert.equal(0, ids.parse("0"))
    assert.equal(4294967294, ids.parse("4294967294"))
    assert.equal(7, ids.parse("007"))
    assert.equal(0, ids.parse(0))
    assert.equal(4294967294, ids.parse(4294967294))
  end)

  it("refuses what is not an id", function()
    for _, v in ipairs({ "4294967295", "4294967296", "18446744073709551616", "99999999999",
                         "-1", "0x10", "1e3", "1.0", " 1", "1 ", "+1", "", "0 ", "١" }) do
      assert.is_nil(ids.parse(v), v)
    end
    for _, v in ipairs({ -1, 4294967295, 4294967296, 1.0, 0.5, math.huge, true, {} }) do
      assert.is_nil(ids.parse(v), tostring(v))
    end
    assert.is_nil(ids.parse(nil))
  end)

  it("checks a spec range", function()
    assert.is_true(ids.check_range({ inside = 0, outside = 100000, count = 65536 }))
    assert.is_true(ids.check_range({ inside = 4294967294, outside = 0, count = 1 }))
    assert.is_true(ids.check_range({ inside = 0, outside = 0, count = 4294967295 }))
    for _, r in ipairs({
      { inside = 4294967294, outside = 0, count = 2 }, { inside = 0, outside = 0, count = 4294967296 },
      { inside = -1, outside = 0, count = 1 }, { inside = 0, outside = 4294967295, count = 1 },
      { inside = 0, outside = 0, count = 0 }, { inside = 0, outside = 0, count = 1.5 },
      { inside = "0", outside = 0, count = "1" }, "0:0:1",
    }) do
      assert.is_nil((ids.check_range(r)))
    end
  end)
end)

describe("ids in passwd and group files", function()
  local PASSWD = table.concat({
    "root:x:0:0:root:/root:/bin/sh",
    "neg:x:-1:0::/:/bin/sh",
    "hex:x:0x10:0::/:/bin/sh",
    "exp:x:1e3:0::/:/bin/sh",
    "float:x:1.0:0::/:/bin/sh",
    "wrap:x:4294967296:0::/:/bin/sh",
    "nobody:x:4294967295:0::/:/bin/sh",
    "badgid:x:1001:-1::/:/bin/sh",
    "space:x: 1002:0::/:/bin/sh",
    "max:x:4294967294:4294967294::/:/bin/sh",
    "", }, "\n")

  it("skips entries whose uid or gid is not an id", function()
    for _, name in ipairs({ "neg", "hex", "exp", "float", "wrap", "nobody", "badgid", "space" }) do
      assert.is_nil(users.find_in_passwd(PASSWD, name), name)
    end
    -- Never found by the number the bad text would have become.
    assert.is_nil(users.find_in_passwd(PASSWD, 16))
    assert.is_nil(users.find_in_passwd(PASSWD, 1000))
    assert.equal("root", users.find_in_passwd(PASSWD, 0).name)
    assert.same({ name = "max", uid = 4294967294, gid = 4294967294, home = "/", shell = "/bin/sh" },
      users.find_in_passwd(PASSWD, "max"))
  end)

  it("skips groups whose gid is not an id", function()
    local GROUP = "a:x:-1:u\nb:x:0x10:u\nc:x:4294967296:u\nd:x:20:u\ne:x:1e3:u\n"
    assert.same({ 5, 20 }, users.groups_in_group_file(GROUP, "u", 5))
  end)

  it("a numeric --user out of range is no user, and never root", function()
    for _, v in ipairs({ "4294967295", "4294967296", "18446744073709551616" }) do
      local user, why = users.lookup(v, nil)
      assert.is_nil(user, v)
      assert.equal(ids.RANGE, why)
    end
    local user = users.lookup("4294967294", "/nonexistent-root")
    assert.equal(4294967294, user.uid)
  end)

  it("subuid ranges past the last id are skipped", function()
    local text = "u:100000:65536\nu:4294967290:10\nu:-5:10\nu:0x10:10\nu:5:0\n"
    assert.same({ { start = 100000, count = 65536 } }, userns.parse_subids(text, "u", 1000))
  end)
end)

describe("--user-map ids", function()
  local function fails(v)
    local ok, e = pcall(usermap.parse, v, "--user-map")
    assert.is_false(ok, v)
    assert.equal(125, e.status)
    assert.matches("^%-%-user%-map: ", e.message)
  end

  it("takes 0 and 4294967294 as first ids", function()
    assert.same({ inside = 4294967294, outside = 0, count = 1 }, usermap.parse("4294967294:0:1", "--user-map"))
    assert.same({ inside = 0, outside = 4294967294, count = 1 }, usermap.parse("0:4294967294:1", "--user-map"))
  end)

  it("refuses ids out of range, signs, hex, exponents, fractions, spaces", function()
    for _, v in ipairs({ "4294967295:0:1", "0:4294967295:1", "4294967296:0:1", "-1:0:1", "0x10:0:1",
                         "1e3:0:1", "1.0:0:1", " 1:0:1", ":0:1", "0:0:", "0:1:4294967296" }) do
      fails(v)
    end
  end)
end)
