-- pflask-oci driven by real clients (label oci): podman with
-- --runtime=pflask-oci on the cached debootstrapped root (tests/boot_rootfs.sh,
-- under a podman overlay `:O` so that nothing writes into the cache), and
-- containerd's ctr with --runc-binary on a busybox root, against a
-- containerd of the test's own (its own socket, root and state). Both are
-- installed from Debian's packages by tools/setup-debian.sh (podman,
-- containerd); a missing one makes its tests pending.
local pft = require "pftest"

local PFLASK = pft.absolute(pft.PFLASK)
local OCI = PFLASK:gsub("pflask$", "pflask-oci")

local function have(cmd)
  return pft.sh("command -v " .. cmd .. " >/dev/null 2>&1") == 0
end

-- This VM lacks CAP_SYS_RESOURCE: explicit limits no higher than the
-- host's, else the runtime cannot set podman's defaults.
local function ulimits()
  local n = tonumber((pft.capture("bash -c 'ulimit -Hn'"))) or 1024
  local u = tonumber((pft.capture("bash -c 'ulimit -Hu'"))) or 1024
  n, u = math.min(n, 1024), math.min(u, 1024)
  return { "--ulimit", "nofile=" .. n .. ":" .. n, "--ulimit", "nproc=" .. u .. ":" .. u }
end

describe("pflask-oci under podman", function()
  local rootfs, base, had_libpod_parent

  -- podman makes a libpod_parent cgroup in each hierarchy for the
  -- containers it runs with cgroupfs, and leaves it: removed afterwards
  -- (only when empty) if this spec is what made it.
  local function libpod_parents()
    return pft.capture("find /sys/fs/cgroup -maxdepth 2 -type d -name libpod_parent 2>/dev/null")
  end

  setup(function()
    if not have("podman") or pft.capture("id -u") ~= "0" then return end
    had_libpod_parent = libpod_parents() ~= ""
    rootfs = pft.capture(pft.quote(pft.SOURCE_DIR .. "/tests/boot_rootfs.sh") .. " 2>/dev/null"):match("([^\n]+)$")
    if rootfs and pft.sh("test -x " .. pft.quote(rootfs) .. "/bin/sh") ~= 0 then rootfs = nil end
    base = { "podman", "--runtime=" .. OCI, "run" }
    for _, a in ipairs(ulimits()) do base[#base + 1] = a end
  end)

  teardown(function()
    if had_libpod_parent == false then
      for d in libpod_parents():gmatch("[^\n]+") do
        pft.sh("find " .. pft.quote(d) .. " -depth -type d -exec rmdir {} + 2>/dev/null")
      end
    end
  end)

  before_each(function()
    if not have("podman") then pending("podman is not installed (tools/setup-debian.sh installs it)") end
    if pft.capture("id -u") ~= "0" then pending("podman tests run as root") end
    if not rootfs then pending("no debootstrapped root (tests/boot_rootfs.sh failed)") end
  end)

  local function podman_run(flags, cmd, opts)
    local argv = {}
    for _, a in ipairs(base) do argv[#argv + 1] = a end
    for _, a in ipairs(flags) do argv[#argv + 1] = a end
    argv[#argv + 1] = "--rootfs"
    argv[#argv + 1] = rootfs .. ":O"
    for _, a in ipairs(cmd) do argv[#argv + 1] = a end
    return pft.run(argv, opts or { timeout = 120 })
  end

  local function podman(args)
    local argv = { "podman", "--runtime=" .. OCI }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return pft.run(argv, { timeout = 120 })
  end

  it("runs a command with --rm: its output, its exit status, pid 1, nothing left", function()
    local r = podman_run({ "--rm", "--hostname", "podbox" },
      { "sh", "-c", "echo $$; hostname; cat /etc/debian_version; grep Seccomp: /proc/self/status; exit 3" })
    assert.are.equal(3, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("1", lines[1])
    assert.are.equal("podbox", lines[2])
    assert.matches("^12", lines[3])
    -- podman's default seccomp profile, compiled by the engine, loaded
    assert.matches("^Seccomp:%s+2", lines[4])
    r = podman_run({ "--rm" }, { "true" })
    assert.are.equal(0, r.status, r.stderr)
    r = podman_run({ "--rm" }, { "/nonexistent" })
    assert.are_not.equal(0, r.status)
  end)

  it("runs detached, execs into it, stops it with podman stop", function()
    local r = podman_run({ "-d" }, { "sleep", "600" })
    assert.are.equal(0, r.status, r.stderr)
    local id = r.stdout:match("(%x+)%s*$")
    finally(function() podman({ "rm", "-f", "-t", "0", id }) end)
    r = podman({ "inspect", "--format", "{{.State.Status}} {{.State.Pid}}", id })
    assert.are.equal(0, r.status, r.stderr)
    local status, pid = r.stdout:match("^(%S+) (%d+)")
    assert.are.equal("running", status)
    assert.matches("sleep", pft.read_file("/proc/" .. pid .. "/cmdline"))
    -- the runtime's state agrees
    local st = pft.run({ OCI, "--root", "/run/pflask-oci", "state", id })
    if st.status == 0 then assert.matches('"status":"running"', st.stdout) end
    r = podman({ "exec", id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 4" })
    assert.are.equal(4, r.status, r.stderr)
    assert.matches("^sleep 600", r.stdout)
    -- with a terminal: the command's stdio is one
    r = podman({ "exec", "-t", id, "sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("on%-a%-tty", r.stdout)
    r = podman({ "stop", "-t", "1", id })
    assert.are.equal(0, r.status, r.stderr)
    r = podman({ "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", id })
    assert.matches("^exited ", r.stdout)
    assert.are.equal(1, pft.sh("test -e /proc/" .. pid .. "/cmdline && grep -q sleep /proc/" .. pid .. "/cmdline"))
  end)

  it("gives the container a terminal with -t", function()
    local r = podman_run({ "--rm", "-t" }, { "sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty; exit 6" })
    assert.are.equal(6, r.status, r.stderr)
    assert.matches("on%-a%-tty", r.stdout)
  end)
end)

describe("pflask-oci under containerd (ctr)", function()
  local dir, pidfile, sock, had_run_containerd

  setup(function()
    if not have("containerd") or not have("ctr") or pft.capture("id -u") ~= "0" then return end
    -- The shim's runtime root is /run/containerd/runc/NAMESPACE whatever
    -- our containerd's state directory: removed afterwards if we made it.
    had_run_containerd = pft.sh("test -e /run/containerd") == 0
    dir = pft.tempdir("ctrd")
    sock = dir .. "/containerd.sock"
    pidfile = dir .. "/containerd.pid"
    -- A containerd of our own, without the CRI plugin (no listener beyond
    -- its socket), its state in our directory.
    pft.write_file(dir .. "/config.toml", 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    pft.sh(string.format("containerd --config %s --address %s --root %s/root --state %s/state >%s/log 2>&1 & echo $! > %s",
      dir .. "/config.toml", sock, dir, dir, dir, pidfile))
    for _ = 1, 100 do
      if pft.sh("ctr --address " .. sock .. " version >/dev/null 2>&1") == 0 then break end
      pft.sh("sleep 0.1")
    end
    pft.make_rootfs(dir .. "/rootfs")
  end)

  teardown(function()
    if not dir then return end
    local pid = pft.read_file(pidfile)
    if pid then pft.sh("kill " .. pid:gsub("%s", "") .. " 2>/dev/null; sleep 0.5") end
    pft.sh("umount -R " .. dir .. "/state 2>/dev/null; umount -R " .. dir .. "/root 2>/dev/null")
    pft.rm_rf(dir)
    if not had_run_containerd then pft.sh("rm -rf /run/containerd") end
  end)

  before_each(function()
    if not have("ctr") or not have("containerd") then pending("containerd is not installed (tools/setup-debian.sh installs it)") end
    if pft.capture("id -u") ~= "0" then pending("containerd tests run as root") end
  end)

  local function ctr(args)
    local argv = { "ctr", "--address", sock }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return pft.run(argv, { timeout = 120 })
  end

  it("runs a container with ctr run --runc-binary: output and exit status", function()
    local r = ctr({ "run", "--rm", "--runc-binary", OCI, "--rootfs", dir .. "/rootfs", "pftctr1",
                    "sh", "-c", "echo hello from ctr; echo $$; exit 3" })
    assert.are.equal(3, r.status, r.stderr)
    assert.are.equal("hello from ctr\n1\n", r.stdout)
    -- gone from the runtime's state and from containerd
    r = ctr({ "containers", "list", "-q" })
    assert.are_not.matches("pftctr1", r.stdout)
  end)

  it("runs detached and is killed with ctr task kill", function()
    local r = ctr({ "run", "-d", "--runc-binary", OCI, "--rootfs", dir .. "/rootfs", "pftctr2", "sleep", "600" })
    assert.are.equal(0, r.status, r.stderr)
    finally(function()
      ctr({ "task", "kill", "-s", "KILL", "pftctr2" })
      pft.sh("sleep 0.3")
      ctr({ "task", "delete", "-f", "pftctr2" })
      ctr({ "containers", "delete", "pftctr2" })
    end)
    r = ctr({ "task", "ls" })
    assert.matches("pftctr2%s+%d+%s+RUNNING", r.stdout)
    r = ctr({ "task", "exec", "--exec-id", "x1", "pftctr2", "sh", "-c", "echo in-task; exit 2" })
    assert.are.equal(2, r.status, r.stderr)
    assert.matches("in%-task", r.stdout)
    r = ctr({ "task", "kill", "-s", "KILL", "pftctr2" })
    assert.are.equal(0, r.status, r.stderr)
    for _ = 1, 100 do
      if ctr({ "task", "ls" }).stdout:match("pftctr2%s+%d+%s+STOPPED") then break end
      pft.sh("sleep 0.1")
    end
    assert.matches("pftctr2%s+%d+%s+STOPPED", ctr({ "task", "ls" }).stdout)
  end)
end)
