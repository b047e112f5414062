-- Namespaces seen from inside and outside a real container (as root).
local pft = require "pftest"

local ns_id = pft.ns_id

describe("namespaces", function()
  local mounts_before
  before_each(function() mounts_before = pft.mounts() end)
  after_each(function() assert.equal(mounts_before, pft.mounts()) end)

  it("creates mount, pid, ipc, uts and cgroup namespaces by default, not net", function()
    local r = pft.pflask({ "--", "sh", "-c",
      "for n in mnt pid ipc uts cgroup net user; do echo $n $(readlink /proc/self/ns/$n); done" })
    assert.equal(0, r.status, r.stderr)
    local inside = {}
    for n, id in r.stdout:gmatch("(%S+) (%S+)") do inside[n] = id end
    for _, n in ipairs({ "mnt", "pid", "ipc", "uts", "cgroup" }) do
      assert.matches("^" .. n .. ":%[%d+%]$", inside[n] or "", n .. " not read inside")
      assert.are_not.equal(ns_id(n), inside[n], n .. " should be new")
    end
    assert.equal(ns_id("net"), inside.net)
    assert.equal(ns_id("user"), inside.user) -- root: no user namespace unless asked
  end)

  it("runs a reaper as pid 1 and the command as pid 2", function()
    local r = pft.pflask({ "--", "sh", "-c", "echo $$; cat /proc/1/comm" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2\npflask-init\n", r.stdout)
  end)

  it("runs the command as pid 1 with --as-pid1", function()
    local r = pft.pflask({ "--as-pid1", "--", "sh", "-c", "echo $$" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("1\n", r.stdout)
  end)

  it("treats a command named init as an init (pid 1), unless --as-pid2", function()
    local dir = pft.tempdir("init")
    finally(function() pft.rm_rf(dir) end)
    assert(pft.sh("ln -s /bin/sh " .. dir .. "/init") == 0)
    local r = pft.pflask({ "--", dir .. "/init", "-c", "echo $$" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("1\n", r.stdout)
    r = pft.pflask({ "--as-pid2", "--", dir .. "/init", "-c", "echo $$; cat /proc/1/comm" })
    assert.equal("2\npflask-init\n", r.stdout)
  end)

  it("mounts a fresh /proc that shows only the container's processes", function()
    local r = pft.pflask({ "--", "sh", "-c", "ls /proc | grep -c '^[0-9]'" })
    assert.equal(0, r.status, r.stderr)
    assert.is_true(tonumber(r.stdout) <= 4, r.stdout)
  end)

  it("keeps the host's pid namespace with --no-pidns", function()
    local r = pft.pflask({ "--no-pidns", "--", "sh", "-c", "echo $$; readlink /proc/self/ns/pid" })
    assert.equal(0, r.status, r.stderr)
    local pid, ns = r.stdout:match("^(%d+)\n(pid:%[%d+%])\n$")
    assert.is_not_nil(pid, r.stdout)
    assert.is_true(tonumber(pid) > 1)
    assert.equal(ns_id("pid"), ns)
  end)

  it("sets the hostname inside without changing the host's", function()
    local host = pft.capture("hostname")
    local r = pft.pflask({ "--hostname=pftest-box", "--", "hostname" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("pftest-box\n", r.stdout)
    local r2 = pft.pflask({ "-t", "other", "--", "sh", "-c", "hostname inner; hostname" })
    assert.equal(0, r2.status, r2.stderr)
    assert.equal("inner\n", r2.stdout)
    assert.equal(host, pft.capture("hostname"))
  end)

  it("keeps the host's UTS namespace with --no-utsns", function()
    local r = pft.pflask({ "--no-utsns", "--", "readlink", "/proc/self/ns/uts" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(ns_id("uts") .. "\n", r.stdout)
  end)

  it("keeps the host's IPC namespace with --no-ipcns, and its mount namespace with --no-mountns", function()
    local r = pft.pflask({ "--no-ipcns", "--", "readlink", "/proc/self/ns/ipc" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(ns_id("ipc") .. "\n", r.stdout)
    r = pft.pflask({ "-M", "--", "sh", "-c", "readlink /proc/self/ns/mnt /proc/self/ns/uts" })
    assert.equal(0, r.status, r.stderr)
    local mnt, uts = r.stdout:match("^(mnt:%[%d+%])\n(uts:%[%d+%])\n$")
    assert.is_not_nil(mnt, r.stdout)
    assert.equal(ns_id("mnt"), mnt)
    assert.are_not.equal(ns_id("uts"), uts)
  end)

  it("does not leak an IPC object to the host", function()
    local before = pft.capture("ipcs -m | wc -l")
    local r = pft.pflask({ "--", "sh", "-c", "ipcmk -M 4096 >/dev/null && ipcs -m | grep -c 0x" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("1\n", r.stdout)
    assert.equal(before, pft.capture("ipcs -m | wc -l"))
  end)

  it("does not leak a mount to the host", function()
    local dir = pft.tempdir("mnt")
    local r = pft.pflask({ "--", "sh", "-c",
      "mount -t tmpfs none " .. dir .. " && touch " .. dir .. "/inside && ls " .. dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("inside\n", r.stdout)
    assert.equal("", pft.capture("ls " .. dir))
    pft.rm_rf(dir)
  end)

  it("gives the container its own cgroup namespace", function()
    local r = pft.pflask({ "--", "readlink", "/proc/self/ns/cgroup" })
    -- pflask must have run: a failed run prints nothing, which differs too.
    assert.equal(0, r.status, r.stderr)
    local inside = r.stdout:match("^(cgroup:%[%d+%])\n$")
    assert.is_not_nil(inside, r.stdout)
    assert.are_not.equal(ns_id("cgroup"), inside)
    local shared = pft.pflask({ "--", "sh", "-c", "readlink /proc/self/ns/net" })
    assert.equal(0, shared.status, shared.stderr)
    assert.equal(ns_id("net") .. "\n", shared.stdout)
  end)
end)
