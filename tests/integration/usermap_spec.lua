-- --user-map with subordinate ids: a throwaway user with a range in
-- /etc/subuid and /etc/subgid (added in setup, removed in teardown) maps
-- 65536 ids through newuidmap/newgidmap.
local pft = require "pftest"

local SUB = 524288 -- far from the ranges useradd hands out

local function squeeze(s)
  return (s:gsub("[ \t]+", " "):gsub("^ ", ""):gsub("\n ", "\n"))
end

local one_line = pft.one_line

-- The user's subordinate ranges are set and dropped through usermod
-- (pft.set_subids), which locks /etc/subuid and /etc/subgid as useradd and
-- userdel do: specs that add users at the same time lose nothing.

describe("--user-map with subordinate ids", function()
  local user, uid, gid, dir
  setup(function()
    user = pft.rootless_user()
    uid, gid = user.uid, user.gid
    pft.set_subids(user.name, SUB, 65536)
    assert.same({ { SUB, 65536 } }, pft.subids(user.name, "/etc/subuid"))
    assert.same({ { SUB, 65536 } }, pft.subids(user.name, "/etc/subgid"))
  end)
  teardown(function()
    if user then user:remove() end
  end)
  before_each(function()
    dir = pft.tempdir("usermap")
    pft.sh("chmod 1777 " .. dir)
  end)
  after_each(function()
    pft.rm_rf(dir)
    assert.equal("0", pft.user_processes(uid), "processes left behind")
  end)

  local function run(args)
    return user:pflask(args)
  end

  it("maps a whole subordinate range: 65536 ids inside, chown works", function()
    local r = run({ "--user-map=0:" .. SUB .. ":65536", "--", "sh", "-c",
      "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch " .. dir .. "/f && chown 1000:1000 "
      .. dir .. "/f && echo chowned" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(string.format("0 %d 65536\n0 %d 65536\n0\nchowned\n", SUB, SUB), squeeze(r.stdout))
    assert.equal(string.format("%d %d", SUB + 1000, SUB + 1000), pft.capture("stat -c '%u %g' " .. dir .. "/f"))
  end)

  it("maps the user's own id and the subordinate range with --user-map=subordinate", function()
    local r = run({ "--user-map=subordinate", "--", "sh", "-c",
      "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch " .. dir .. "/g && chown 1000 "
      .. dir .. "/g && echo chowned" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(string.format("0 %d 1\n1 %d 65536\n0 %d 1\n1 %d 65536\n0\nchowned\n", uid, SUB, gid, SUB),
      squeeze(r.stdout))
    assert.equal(tostring(SUB + 999), pft.capture("stat -c %u " .. dir .. "/g"))
  end)

  it("runs a --user of a chroot whose uid is in the subordinate range", function()
    local root = pft.tempdir("usermap-root")
    finally(function() pft.rm_rf(root) end)
    pft.make_rootfs(root, { uid = 1000, gid = 1000 })
    local r = run({ "--chroot=" .. root, "--user-map=0:" .. SUB .. ":65536", "--user=alice", "--", "sh", "-c",
      "id -u; id -g; id -G; echo $HOME $USER" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("1000\n1000\n1000 1001\n/home/alice alice\n", r.stdout)
  end)

  describe("refuses with one line and 125", function()
    local function refused(args, pattern)
      local r = run(args)
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches(pattern, r.stderr)
    end

    it("ranges that are not the user's", function()
      refused({ "--user-map=0:" .. (SUB + 65000) .. ":1000", "--", "true" }, "are not yours to map")
      refused({ "--user-map=0:0:1", "--", "true" }, "host uids 0%-0 are not yours to map")
    end)

    it("overlapping and malformed ranges", function()
      refused({ "--user-map=0:" .. SUB .. ":10", "--user-map=5:" .. (SUB + 100) .. ":10", "--", "true" }, "overlap")
      refused({ "--user-map=0:" .. SUB, "--", "true" }, "is not CONT:HOST:COUNT")
      refused({ "--user-map=0:" .. SUB .. ":0", "--", "true" }, "maps no ids")
    end)

    it("a user that is not in the container's passwd", function()
      local root = pft.tempdir("usermap-root")
      finally(function() pft.rm_rf(root) end)
      pft.make_rootfs(root)
      refused({ "--chroot=" .. root, "--user-map=0:" .. SUB .. ":65536", "--user=bob", "--", "true" },
        "'bob' is not a user")
    end)
  end)
end)

-- useradd hands out subordinate uids and gids separately, and a host's
-- two files need not agree: a user's gid range may start elsewhere than
-- its uid range. --user-map=subordinate maps gids from /etc/subgid alone.
describe("--user-map=subordinate with uid and gid ranges that differ", function()
  local GSUB = SUB + 65536
  local user, uid, gid, dir
  setup(function()
    user = pft.rootless_user()
    uid, gid = user.uid, user.gid
    pft.set_subids(user.name, SUB, 65536, GSUB)
    assert.same({ { SUB, 65536 } }, pft.subids(user.name, "/etc/subuid"))
    assert.same({ { GSUB, 65536 } }, pft.subids(user.name, "/etc/subgid"))
    dir = pft.tempdir("usermap")
    pft.sh("chmod 1777 " .. dir)
  end)
  teardown(function()
    if user then user:remove() end
    if dir then pft.rm_rf(dir) end
  end)

  it("maps the gids of /etc/subgid: a host file's group is its own inside, a chown's group lands in the gid range", function()
    -- A file as a shifted image holds it: group 43 inside is GSUB+42 outside.
    assert(pft.sh("touch " .. dir .. "/img && chown " .. (SUB + 42) .. ":" .. (GSUB + 42) .. " " .. dir .. "/img") == 0)
    local r = user:pflask({ "--user-map=subordinate", "--", "sh", "-c",
      "cat /proc/self/uid_map /proc/self/gid_map; stat -c '%u %g' " .. dir .. "/img; touch " .. dir
      .. "/g && chown 1000:1000 " .. dir .. "/g && echo chowned" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(string.format("0 %d 1\n1 %d 65536\n0 %d 1\n1 %d 65536\n43 43\nchowned\n", uid, SUB, gid, GSUB),
      squeeze(r.stdout))
    assert.equal(string.format("%d %d", SUB + 999, GSUB + 999), pft.capture("stat -c '%u %g' " .. dir .. "/g"))
    assert.equal("0", pft.user_processes(uid), "processes left behind")
  end)
end)

describe("--user-map=subordinate without subordinate ids", function()
  it("fails with one line", function()
    local user = pft.rootless_user()
    finally(function() user:remove() end)
    pft.set_subids(user.name, nil)
    assert.same({}, pft.subids(user.name))
    -- (The caller's PATH, as it always was here.)
    local r = user:pflask({ "--user-map=subordinate", "--", "true" }, { env = { PATH = false } })
    assert.equal(125, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("you have no subordinate uids in /etc/subuid", r.stderr)
  end)
end)
