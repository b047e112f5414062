-- pflask run by an unprivileged user: a throwaway user runs a public copy
-- of the executable, so everything goes through an unprivileged user
-- namespace. The spec runs as root only to create and remove that user.
local pft = require "pftest"

local ns_id = pft.ns_id

-- "         0       1000          1\n" -> "0 1000 1"
local function squeeze(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local one_line = pft.one_line

describe("rootless pflask", function()
  local user, name, uid, gid, home
  local cleanup = {}

  setup(function()
    user = pft.rootless_user()
    name, uid, gid, home = user.name, user.uid, user.gid, user.home
  end)

  teardown(function()
    if user then user:remove() end
    for _, dir in ipairs(cleanup) do pft.rm_rf(dir) end
  end)

  -- Run pflask as the throwaway user (with PATH = pft.USER_PATH: the
  -- user's own would be root's, see there).
  local function run(args, opts)
    return user:pflask(args, { env = opts and opts.env })
  end

  local mounts_before
  before_each(function() mounts_before = pft.mounts() end)
  after_each(function()
    assert.equal(mounts_before, pft.mounts())
    -- Every process a container ran belongs to the user on the host.
    assert.equal("0", pft.user_processes(uid), "processes left behind")
  end)

  it("is really unprivileged outside", function()
    local r = pft.run({ "id", "-u" }, { user = name })
    assert.equal(tostring(uid) .. "\n", r.stdout)
    assert.are_not.equal(0, uid)
  end)

  it("makes the user root inside, mapped to its own uid and gid only", function()
    local r = run({ "--", "sh", "-c",
      "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; cat /proc/self/setgroups" })
    assert.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(5, #lines, r.stdout)
    assert.equal("0", lines[1])
    assert.equal("0", lines[2])
    assert.equal(string.format("0 %d 1", uid), squeeze(lines[3]))
    assert.equal(string.format("0 %d 1", gid), squeeze(lines[4]))
    assert.equal("deny", lines[5])
  end)

  it("creates a user namespace distinct from the host's", function()
    local r = run({ "--", "readlink", "/proc/self/ns/user" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^user:%[%d+%]\n$", r.stdout)
    assert.are_not.equal(ns_id("user") .. "\n", r.stdout)
  end)

  it("also creates the default namespaces, not a network one", function()
    local r = run({ "--", "sh", "-c",
      "for n in mnt pid ipc uts cgroup net; do echo $n $(readlink /proc/self/ns/$n); done" })
    assert.equal(0, r.status, r.stderr)
    local inside = {}
    for n, id in r.stdout:gmatch("(%S+) (%S+)") do inside[n] = id end
    for _, n in ipairs({ "mnt", "pid", "ipc", "uts", "cgroup" }) do
      assert.matches("^" .. n .. ":%[%d+%]$", inside[n] or "", n .. " not read inside")
      assert.are_not.equal(ns_id(n), inside[n], n .. " should be new")
    end
    assert.equal(ns_id("net"), inside.net)
  end)

  it("is not root on the host: host-only files stay unreadable", function()
    local r = run({ "--", "cat", "/etc/shadow" })
    assert.are_not.equal(0, r.status)
    assert.matches("[Pp]ermission denied", r.stderr)
  end)

  it("runs the command as pid 2 under the reaper, and as pid 1 with --as-pid1", function()
    local r = run({ "--", "sh", "-c", "echo $$; cat /proc/1/comm" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\npflask-init\n", r.stdout)
    local r1 = run({ "--as-pid1", "--", "sh", "-c", "echo $$" })
    assert.equal(0, r1.status, r1.stderr)
    assert.equal("1\n", r1.stdout)
  end)

  it("sets the hostname inside without changing the host's", function()
    local host = pft.capture("hostname")
    local r = run({ "--hostname=rootless-box", "--", "hostname" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("rootless-box\n", r.stdout)
    local r2 = run({ "--", "sh", "-c", "hostname changed-inside && hostname" })
    assert.equal(0, r2.status, r2.stderr)
    assert.equal("changed-inside\n", r2.stdout)
    assert.equal(host, pft.capture("hostname"))
  end)

  it("creates files in the user's home owned by the user's real uid on the host", function()
    local r = run({ "--", "sh", "-c", "echo $HOME; touch \"$HOME/made-inside\"; stat -c '%u %g' \"$HOME/made-inside\"" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(home .. "\n0 0\n", r.stdout) -- root inside
    assert.equal(string.format("%d %d", uid, gid),
      pft.capture("stat -c '%u %g' " .. pft.quote(home .. "/made-inside")))
  end)

  it("maps the user to itself with --user=<that user>", function()
    local r = run({ "--user=" .. name, "--", "sh", "-c",
      "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map" })
    assert.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(tostring(uid), lines[1])
    assert.equal(tostring(gid), lines[2])
    assert.equal(string.format("%d %d 1", uid, uid), squeeze(lines[3] or ""))
    assert.equal(string.format("%d %d 1", gid, gid), squeeze(lines[4] or ""))
  end)

  it("refuses --user=root with one line naming --user", function()
    local r = run({ "--user=root", "--", "id", "-u" })
    assert.equal(125, r.status)
    assert.equal("", r.stdout)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: ", r.stderr)
    assert.matches("--user", r.stderr, 1, true)
  end)

  it("refuses --no-userns with one line saying root or a user namespace is needed", function()
    local r = run({ "--no-userns", "--", "id", "-u" })
    assert.equal(125, r.status)
    assert.equal("", r.stdout)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: ", r.stderr)
    assert.matches("root", r.stderr, 1, true)
    assert.matches("user namespace", r.stderr, 1, true)
  end)

  describe("--chroot", function()
    local rootfs
    before_each(function()
      rootfs = pft.tempdir("rootless-root")
      cleanup[#cleanup + 1] = rootfs
      pft.make_rootfs(rootfs, { uid = uid, gid = gid })
    end)
    after_each(function() pft.rm_rf(rootfs) end)

    it("runs in a root-owned, readable busybox rootfs", function()
      local r = run({ "--chroot=" .. rootfs, "--", "sh", "-c",
        "id -u; echo $$; echo $HOME; readlink /bin/sh; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'" })
      assert.equal(0, r.status, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("0", lines[1])
      assert.equal("2", lines[2])
      assert.equal("/root", lines[3])
      assert.equal("busybox", lines[4])
      assert.equal("pflask-init", lines[5])
      assert.is_true(tonumber(lines[6]) <= 4, r.stdout)
    end)

    it("writes into a rootfs the user owns, as the user's uid on the host", function()
      assert.equal(0, pft.sh("chown -R " .. uid .. ":" .. gid .. " " .. rootfs))
      local r = run({ "--chroot=" .. rootfs, "--", "sh", "-c", "touch /root/made-inside && echo ok" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("ok\n", r.stdout)
      assert.equal(string.format("%d %d", uid, gid),
        pft.capture("stat -c '%u %g' " .. rootfs .. "/root/made-inside"))
    end)

    it("runs as alice (the user's uid in the rootfs) with --user=alice", function()
      local r = run({ "--chroot=" .. rootfs, "--user=alice", "--", "sh", "-c", "id -u; echo $HOME" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(uid .. "\n/home/alice\n", r.stdout)
    end)
  end)

  it("passes exit statuses through", function()
    assert.equal(7, run({ "--", "sh", "-c", "exit 7" }).status)
    local nf = run({ "--", "pftest-no-such-command" })
    assert.equal(127, nf.status, nf.stderr)
    assert.matches("pftest%-no%-such%-command", nf.stderr)
    assert.equal(137, run({ "--", "sh", "-c", "kill -KILL $$" }).status)
    assert.equal(0, run({ "--", "true" }).status)
  end)
end)
