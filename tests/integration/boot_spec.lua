-- Booting an OS (issue 7): systemd as pid 1 of a debootstrapped Debian 12,
-- real boots, non-interactive (stdin /dev/null), each under a timeout
-- guard. The root filesystem is cached by tests/boot_rootfs.sh, which alone
-- writes into it; every boot here is --ephemeral and talks to the system
-- through a host directory bound on /pftest, where the fixture's unit
-- pftest-up.service (started after multi-user.target) leaves the output of
-- `systemctl is-system-running --wait` (state), `systemctl --failed`
-- (failed) and of the test's probe script (probe.out), then runs the
-- test's action (`systemctl poweroff` unless told otherwise).
-- CTest label "boot": `ctest -L boot` runs these, `ctest -LE boot` skips them.
local pft = require "pftest"

local INIT = "/lib/systemd/systemd"
-- Seconds a boot may take before the guard kills it (it takes about one).
local GUARD = 120

-- Units that fail in a container whatever the manager does, by case. As
-- root, none: Debian 12 boots to "running". In a user namespace the kernel
-- refuses debugfs and tracefs.
local IMPOSSIBLE = {
  root = {},
  rootless = { ["sys-kernel-debug.mount"] = true, ["sys-kernel-tracing.mount"] = true },
}

local read_file = pft.read_file

local write_file = pft.write_file

local function trim(s)
  return (s or ""):gsub("^%s+", ""):gsub("%s+$", "")
end

-- The cgroup2 mount of the host (/sys/fs/cgroup/unified on a hybrid host).
local function v2_dir()
  for line in io.lines("/proc/self/mountinfo") do
    local dir, fstype = line:match("^%S+ %S+ %S+ %S+ (%S+) .* %- (%S+) ")
    if fstype == "cgroup2" then return dir end
  end
end

-- Cgroups of boots (an init's cgroup holds its init.scope), as a set. Other
-- specs may boot at the same time on a shared machine: only a cgroup whose
-- supervisor (pflask.PID.N) is gone counts as left behind.
local function boot_cgroups()
  local set = {}
  local dir = v2_dir()
  if not dir then return set end
  local out = pft.capture("find " .. dir .. " -maxdepth 5 -type d -path '*/pflask.*/init.scope' 2>/dev/null")
  for d in out:gmatch("[^\n]+") do set[d] = true end
  return set
end

local function left_cgroups(before, after)
  local list = {}
  for d in pairs(after) do
    local pid = d:match("/pflask%.(%d+)%.%d+/init%.scope$")
    if not before[d] and pid and pft.sh("test -d /proc/" .. pid) ~= 0 then list[#list + 1] = d end
  end
  table.sort(list)
  return list
end

local one_line = pft.one_line

-- "key=value" lines of a probe's output.
local function parse(text)
  local t = {}
  for k, v in (text or ""):gmatch("([%w_.]+)=([^\n]*)") do t[k] = v end
  return t
end

-- The units `systemctl --failed --plain` listed that are not in `allowed`.
local function unexpected_failures(failed, allowed)
  local bad = {}
  for unit in (failed or ""):gmatch("(%S+)[^\n]*\n?") do
    if unit:match("%.") and not allowed[unit] then bad[#bad + 1] = unit end
  end
  return bad
end

-- The system came up: running, or degraded with only `allowed` units failed.
local function assert_up(io_dir, allowed)
  local state = trim(read_file(io_dir .. "/state"))
  local failed = read_file(io_dir .. "/failed") or ""
  assert.same({}, unexpected_failures(failed, allowed), "failed units:\n" .. failed)
  if next(allowed) == nil then
    assert.equal("running", state, failed)
  else
    assert.is_true(state == "running" or state == "degraded", state)
  end
end

describe("booting systemd", function()
  local rootfs
  local dirs = {}
  local mounts_before, cgroups_before
  -- This run's own: the ephemeral layers' $TMPDIR, and a word on every
  -- pflask command line, so that other runs at the same time do not count.
  local tmpdir, marker

  setup(function()
    local out, code = pft.capture(pft.quote(pft.SOURCE_DIR .. "/tests/boot_rootfs.sh") .. " 2>&1")
    assert(code == 0, "the boot root filesystem could not be made:\n" .. out)
    rootfs = out:match("([^\n]+)$")
    tmpdir = pft.tempdir("boottmp")
    dirs[#dirs + 1] = tmpdir
    assert(pft.sh("chmod 1777 " .. tmpdir) == 0)
    marker = "PFTEST_BOOT=" .. tmpdir
  end)

  teardown(function()
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
  end)

  local function tempdir(tag)
    local d = pft.tempdir(tag)
    dirs[#dirs + 1] = d
    return d
  end

  before_each(function()
    mounts_before = pft.mounts()
    cgroups_before = boot_cgroups()
  end)

  -- The host is as it was: mounts, cgroups, processes, temporary layers.
  after_each(function()
    assert.equal(mounts_before, pft.mounts())
    assert.same({}, left_cgroups(cgroups_before, boot_cgroups()), "cgroups left behind")
    assert.equal(0, pft.count_processes(marker), "processes left behind")
    local left = pft.capture("ls -A " .. tmpdir)
    pft.sh("rm -rf " .. tmpdir .. "/pflask-ephemeral.*")
    assert.equal("", left, "ephemeral directories left behind")
  end)

  ---@class boot.Options
  ---@field probe string|nil shell script run inside once the system is up
  ---@field action string|nil command run after the probe ("stay": none)
  ---@field args string[]|nil pflask options added before the init
  ---@field prepare fun(io_dir: string)|nil run on /pftest's host side before the boot
  ---@field run table|nil options for pft.pflask

  --- Boot the cached root (ephemeral), with a fresh /pftest directory.
  ---@param opts boot.Options|nil
  ---@return pftest.Result result
  ---@return string io the host side of /pftest
  local function boot(opts)
    opts = opts or {}
    local io_dir = tempdir("boot")
    if opts.probe then write_file(io_dir .. "/probe", opts.probe) end
    if opts.action then write_file(io_dir .. "/action", opts.action) end
    if opts.prepare then opts.prepare(io_dir) end
    local args = { "--chroot=" .. rootfs, "--ephemeral", "--mount=bind:" .. io_dir .. ":/pftest",
                   "--setenv=" .. marker }
    for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
    args[#args + 1] = INIT
    local run = opts.run or {}
    run.timeout = run.timeout or GUARD
    run.env = { TMPDIR = tmpdir }
    return pft.pflask(args, run), io_dir
  end

  it("boots to running, and `systemctl poweroff` inside ends pflask with 0", function()
    local r, io_dir = boot()
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    assert.is_not_nil(read_file(io_dir .. "/ready"))
  end)

  it("`poweroff` inside: exit 0; `systemctl reboot`: exit 133", function()
    local r, io_dir = boot({ action = "poweroff" })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    r = boot({ action = "systemctl reboot" })
    assert.equal(133, r.status, r.stderr)
  end)

  -- The OS runs what it would run under systemd-nspawn: a boot is not
  -- made quick by skipping or masking the image's units. Mount, scope and
  -- device units differ by design (pflask's masks over /proc and /sys are
  -- mounts; nspawn mounts a tmpfs on /tmp and systemd mounts credentials
  -- there), so services, sockets, targets, timers, paths and slices are
  -- compared.
  it("starts the units that systemd-nspawn starts", function()
    if pft.sh("command -v systemd-nspawn >/dev/null") ~= 0 then
      pending("systemd-nspawn is missing (tools/setup-debian.sh installs systemd-container)")
      return
    end
    local probe = "systemctl list-units --all --state=active --no-legend --plain | awk '{ print $1 }' | sort\n"
    local r, io_dir = boot({ probe = probe })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local ours = read_file(io_dir .. "/probe.out")
    local ns_dir = tempdir("nspawn")
    write_file(ns_dir .. "/probe", probe)
    -- Without systemd as the host's pid 1: no machined, no unit to move into.
    local extra = trim(read_file("/proc/1/comm")) == "systemd" and "" or "--register=no --keep-unit "
    local out, code = pft.capture("timeout -k 5 " .. GUARD .. " systemd-nspawn -q " .. extra
      .. "--volatile=overlay --setenv=" .. marker .. " --bind=" .. pft.quote(ns_dir) .. ":/pftest -D "
      .. pft.quote(rootfs) .. " -b </dev/null 2>&1 >/dev/null")
    assert.equal(0, code, out)
    assert_up(ns_dir, IMPOSSIBLE.root)
    local theirs = read_file(ns_dir .. "/probe.out")
    local function units(list)
      local t = {}
      for u in list:gmatch("[^\n]+") do
        if u:match("%.service$") or u:match("%.socket$") or u:match("%.target$") or u:match("%.timer$")
          or u:match("%.path$") or u:match("%.slice$") then t[#t + 1] = u end
      end
      return t
    end
    local a, b = units(ours), units(theirs)
    assert.is_true(#b > 20, theirs)
    assert.same(b, a)
  end)

  it("has a working journal and logind", function()
    local marker = string.format("pftest-marker-%d-%06d", os.time(), math.random(0, 999999))
    local r, io_dir = boot({ probe = [[
echo ]] .. marker .. [[ | systemd-cat -t pftest
for i in $(seq 50); do journalctl -q --no-pager -t pftest -o cat | grep -q ]] .. marker .. [[ && break; sleep 0.1; done
echo "marker=$(journalctl -q --no-pager -t pftest -o cat | grep -c ]] .. marker .. [[)"
echo "reached=$(journalctl -b -q --no-pager -o cat _PID=1 | grep -c 'Reached target multi-user.target')"
echo "journald=$(systemctl is-active systemd-journald)"
echo "logind=$(systemctl is-active systemd-logind)"
echo "seats=$(timeout 10 loginctl list-seats --no-legend | tr -s ' \n' ' ')"
]] })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local p = parse(read_file(io_dir .. "/probe.out"))
    assert.equal("1", p.marker, read_file(io_dir .. "/probe.out"))
    assert.is_true(tonumber(p.reached) >= 1, read_file(io_dir .. "/probe.out"))
    assert.equal("active", p.journald)
    assert.equal("active", p.logind)
    assert.matches("seat0", p.seats)
  end)

  it("gives systemd its container interface", function()
    local r, io_dir = boot({ probe = [[
echo "comm=$(cat /proc/1/comm)"
echo "container=$(tr '\0' '\n' </proc/1/environ | sed -n 's/^container=//p')"
echo "virt=$(systemd-detect-virt -c)"
mi() { awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); print $6 " " $(i+1) }' /proc/self/mountinfo | tail -n 1; }
echo "sys=$(mi /sys)"
echo "procsys=$(mi /proc/sys)"
echo "run=$(mi /run)"
echo "cgroup=$(mi /sys/fs/cgroup)"
echo "cgroup1=$(grep '^0::' /proc/1/cgroup)"
echo "initscope=$(test -d /sys/fs/cgroup/init.scope && echo yes)"
echo "syswrite=$(touch /sys/pftest 2>/dev/null; echo $?)"
echo "procsyswrite=$(sh -c 'echo x >/proc/sys/kernel/domainname' 2>/dev/null; echo $?)"
echo "runwrite=$(touch /run/pftest-w && echo ok)"
echo "mqueue=$(mi /dev/mqueue)"
echo "mqueue_unit=$(systemctl show -P ActiveState dev-mqueue.mount)"
echo "mqueue_exec=$(systemctl show -P ExecMount dev-mqueue.mount)"
echo "ipcns=$(readlink /proc/1/ns/ipc)"
exec 3>/dev/mqueue/pftest-q && echo "queue=made"
]] })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local out = read_file(io_dir .. "/probe.out")
    local p = parse(out)
    assert.equal("systemd", p.comm, out)
    assert.equal("pflask", p.container, out)
    -- systemd knows no "pflask" and says "container-other": a container.
    assert.equal("container-other", p.virt, out)
    assert.matches("^ro[, ].* sysfs$", p.sys, out)
    assert.matches("^ro[, ].* proc$", p.procsys, out)
    assert.matches("^rw[, ].* tmpfs$", p.run, out)
    assert.matches("^rw[, ].* cgroup2$", p.cgroup, out)
    -- Its own cgroup is the root of its namespace, and it manages it.
    assert.equal("0::/init.scope", p.cgroup1, out)
    assert.equal("yes", p.initscope, out)
    assert.are_not.equal("0", p.syswrite, out)
    assert.are_not.equal("0", p.procsyswrite, out)
    assert.equal("ok", p.runwrite, out)
    -- POSIX message queues of its own IPC namespace, mounted before it
    -- starts (as systemd-nspawn does): the unit is active and systemd ran
    -- no mount(8) for it; the queue made inside is the container's, not
    -- the host's.
    assert.matches("^rw[, ].* mqueue$", p.mqueue, out)
    assert.equal("active", p.mqueue_unit, out)
    assert.is_nil(p.mqueue_exec:match("code=exited"), out)
    assert.equal("made", p.queue, out)
    assert.matches("^ipc:%[%d+%]$", p.ipcns, out)
    assert.are_not.equal(pft.capture("readlink /proc/self/ns/ipc"), p.ipcns, out)
    local host_queues = pft.capture("unshare -m sh -c 'd=$(mktemp -d) && mount -t mqueue mqueue \"$d\" && ls -A \"$d\"; umount \"$d\"; rmdir \"$d\"'")
    assert.is_nil(host_queues:match("pftest%-q"), host_queues)
  end)

  it("powers off cleanly on SIGTERM and SIGINT to pflask: exit 0", function()
    for _, sig in ipairs({ "TERM", "INT" }) do
      local io_dir = tempdir("sig")
      write_file(io_dir .. "/action", "stay")
      local args = { pft.PFLASK, "--chroot=" .. rootfs, "--ephemeral", "--mount=bind:" .. io_dir .. ":/pftest",
                     "--setenv=" .. marker, INIT }
      local cmd = { "TMPDIR=" .. tmpdir }
      for _, a in ipairs(args) do cmd[#cmd + 1] = pft.quote(a) end
      -- pflask in the background; once the system is up, the signal; then
      -- a guard: 30 s to stop (it takes well under one).
      local script = table.concat(cmd, " ") .. " </dev/null >/dev/null 2>" .. io_dir .. "/stderr & pid=$!\n"
        .. "i=0; while [ ! -e " .. io_dir .. "/ready ] && [ $i -lt " .. GUARD * 10 .. " ]; do sleep 0.1; i=$((i+1)); done\n"
        .. "sleep 0.2; kill -" .. sig .. " $pid\n"
        .. "i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
        .. "kill -0 $pid 2>/dev/null && { echo still running; kill -KILL $pid; }\n"
        .. "wait $pid; echo status=$?\n"
      local out = pft.capture("sh -c " .. pft.quote(script))
      assert.equal("status=0", out, read_file(io_dir .. "/stderr"))
      assert_up(io_dir, IMPOSSIBLE.root)
    end
  end)

  it("boots under the default seccomp filter; --timeout powers it off cleanly (SIGRTMIN+3), exit 124", function()
    local r, io_dir = boot({ action = "stay", args = { "--timeout=15:60" }, probe = [=[
echo "seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/1/status)"
echo "keyctl=$(perl -e 'syscall(250, 0, 0, 0, 0, 0); print $! + 0' 2>/dev/null || echo none)"
systemd-run --quiet --unit=pft-stop --remain-after-exit -p "ExecStop=/bin/sh -c 'echo stopped > /pftest/stopped'" /bin/true
]=] })
    assert.equal(124, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local p = parse(read_file(io_dir .. "/probe.out"))
    -- systemd is the command here: bound by the filter.
    assert.equal("2", p.seccomp)
    if p.keyctl ~= "none" then assert.equal("1", p.keyctl) end
    -- Stopped as a poweroff stops units, not killed.
    assert.equal("stopped\n", read_file(io_dir .. "/stopped"))
  end)

  it("leaves the root as it was with --ephemeral", function()
    local listing = "find " .. pft.quote(rootfs) .. " -printf '%p %s %T@\\n' | sort"
    local before = pft.capture(listing)
    local r, io_dir = boot({ probe = "echo changed >/etc/pftest-written; rm -f /etc/issue\n" })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    assert.equal(before, pft.capture(listing))
  end)

  it("boots to running under the device policy, which holds for its services", function()
    -- With every capability (--caps=+all), only the device policy keeps a
    -- service from making a node of the host's kernel log, or opening one
    -- that a directory bound in holds.
    local io_dir
    local r
    r, io_dir = boot({ args = { "--caps=+all" }, probe = [[
mknod /run/pftest-kmsg c 1 11 && echo mknod=made || echo mknod=refused
if (exec 3</pftest/kmsg) 2>/pftest/kmsg.err; then echo kmsg=opened; else echo kmsg=refused; fi
echo "kmsg_eperm=$(grep -c 'not permitted' /pftest/kmsg.err)"
echo "null=$(echo x > /dev/null && echo ok)"
]], prepare = function(dir) assert.equal(0, pft.sh("mknod -m 0666 " .. dir .. "/kmsg c 1 11")) end })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local out = read_file(io_dir .. "/probe.out")
    local p = parse(out)
    assert.equal("refused", p.mknod, out)
    assert.equal("refused", p.kmsg, out)
    assert.equal("1", p.kmsg_eperm, out)
    assert.equal("ok", p.null, out)
  end)

  it("names the machine after --hostname", function()
    local r, io_dir = boot({ args = { "--hostname=pftest-box" }, probe = [[
echo "hostname=$(hostname)"
echo "hostnamectl=$(timeout 10 hostnamectl hostname)"
echo "etc=$(cat /etc/hostname)"
]] })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local out = read_file(io_dir .. "/probe.out")
    local p = parse(out)
    assert.equal("pftest-box", p.hostname, out)
    assert.equal("pftest-box", p.hostnamectl, out)
    assert.equal("pftest-box", p.etc, out)
  end)

  local NET_PROBE = [[
echo "links=$(ls /sys/class/net | tr '\n' ' ')"
echo "loflags=$(cat /sys/class/net/lo/flags)"
]]

  it("boots in an isolated network namespace with --netif", function()
    local r, io_dir = boot({ args = { "--netif" }, probe = NET_PROBE })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local out = read_file(io_dir .. "/probe.out")
    local p = parse(out)
    assert.equal("lo ", p.links, out)
    -- IFF_UP
    assert.equal(1, tonumber(p.loflags) & 1, out)
  end)

  it("boots with a veth pair (--netif=veth:HOST:CONT), host end removed afterwards", function()
    local host_end = string.format("vepft%d", math.random(10000, 99999))
    local r, io_dir = boot({ args = { "--netif=veth:" .. host_end .. ":host0" }, probe = NET_PROBE })
    assert.equal(0, r.status, r.stderr)
    assert_up(io_dir, IMPOSSIBLE.root)
    local out = read_file(io_dir .. "/probe.out")
    assert.equal("host0 lo ", parse(out).links, out)
    assert.are_not.equal(0, pft.sh("ip link show " .. host_end .. " >/dev/null 2>&1"))
  end)

  describe("bad input", function()
    it("a --chroot without the init: 125, one line", function()
      local empty = tempdir("empty")
      local r = pft.pflask({ "--chroot=" .. empty, INIT }, { timeout = 30 })
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("^pflask: %-%-chroot: .*has no init '/lib/systemd/systemd'", r.stderr)
    end)

    it("a root without the init, or that is no directory: 125, one line", function()
      local dir = tempdir("notroot")
      assert(pft.sh("mkdir -p " .. dir .. "/etc " .. dir .. "/lib/systemd && echo x >" .. dir .. "/file") == 0)
      for _, root in ipairs({ dir, dir .. "/file", dir .. "/missing" }) do
        local r = pft.pflask({ "--chroot=" .. root, INIT }, { timeout = 30 })
        assert.equal(125, r.status, root)
        assert.is_true(one_line(r.stderr), r.stderr)
        assert.matches("^pflask: ", r.stderr)
      end
    end)
  end)

  -- Rootless: a throwaway user boots a copy of the root that they own.
  -- Without a cgroup of their own, pflask refuses with one line (125).
  -- With one (delegated by root, as systemd's Delegate=yes would), a map of
  -- their subordinate ids (--user-map=subordinate) and a copy of the root
  -- shifted into that range, Debian boots, degraded only by the
  -- filesystems a user namespace may not mount (IMPOSSIBLE.rootless). With
  -- only their own id mapped, dbus cannot switch to its user and the boot
  -- never completes; that case is not tested.
  describe("rootless", function()
    local name, uid, gid, exe, bindir, copy, sub_start, subgid_start, cgroup
    local PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

    setup(function()
      name, uid, gid = pft.create_user()
      exe, bindir = pft.public_pflask()
      -- useradd hands out the subordinate uids and gids separately: the
      -- two ranges need not start at the same id (a stale line in one file
      -- is enough), so each kind is shifted by its own.
      local uids, gids = pft.subids(name, "/etc/subuid"), pft.subids(name, "/etc/subgid")
      sub_start, subgid_start = uids[1] and uids[1][1], gids[1] and gids[1][1]
      local dir = tempdir("rlroot")
      copy = dir .. "/root"
      assert(pft.sh("cp -a " .. pft.quote(rootfs) .. " " .. copy) == 0)
      if sub_start and subgid_start then
        -- Host ids as the subordinate maps show them: uid 0 is the user's
        -- uid, n>0 is sub_start+n-1; gid 0 is the user's gid, n>0 is
        -- subgid_start+n-1. Set-id bits survive the chown.
        local shift = [[
use File::Find;
my ($uid, $ubase, $gid, $gbase) = @ARGV[1..4];
sub to { my ($i, $me, $base) = @_; $i == 0 ? $me : $base + $i - 1 }
find({ no_chdir => 1, wanted => sub {
  my @s = lstat($_) or return;
  my ($u, $g) = (to($s[4], $uid, $ubase), to($s[5], $gid, $gbase));
  if (-l $_) { system("chown", "-h", "$u:$g", $_) == 0 or die "chown $_" }
  else { chown($u, $g, $_) or die "chown $_"; chmod($s[2] & 07777, $_) if $s[2] & 06000 }
} }, $ARGV[0]);
]]
        assert(pft.sh("perl -e " .. pft.quote(shift) .. " " .. copy .. " " .. uid .. " " .. sub_start
          .. " " .. gid .. " " .. subgid_start) == 0)
      else
        assert(pft.sh("chown -R " .. name .. ": " .. copy) == 0)
      end
    end)

    teardown(function()
      if cgroup then pft.sh("find " .. cgroup .. " -depth -type d -exec rmdir {} + 2>/dev/null") end
      if name then pft.remove_user(name) end
      if bindir then pft.rm_rf(bindir) end
    end)

    local function run(args, prefix)
      table.insert(args, 1, "--setenv=" .. marker)
      return pft.pflask(args, { user = name, pflask = exe, env = { PATH = PATH, TMPDIR = tmpdir }, timeout = GUARD,
                                prefix = "cd / && " .. (prefix or "") })
    end

    it("without a cgroup of one's own: 125, one line that says so", function()
      local r = run({ "--chroot=" .. copy, "--ephemeral", INIT })
      assert.equal(125, r.status, r.stderr)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("^pflask: boot: needs root or a delegated cgroup", r.stderr)
    end)

    it("boots with a delegated cgroup and the subordinate ids", function()
      assert(sub_start, "no /etc/subuid range for " .. name)
      assert(subgid_start, "no /etc/subgid range for " .. name)
      cgroup = v2_dir() .. "/pftest-" .. name
      assert(pft.sh("mkdir " .. cgroup .. " && chown " .. name .. ": " .. cgroup .. " " .. cgroup
        .. "/cgroup.procs " .. cgroup .. "/cgroup.threads " .. cgroup .. "/cgroup.subtree_control") == 0)
      local io_dir = tempdir("rlio")
      assert(pft.sh("chown " .. name .. " " .. io_dir) == 0)
      write_file(io_dir .. "/probe", "echo \"uidmap=$(cat /proc/self/uid_map | tr -s ' \\n' ' ')\"\n"
        .. "echo \"gidmap=$(cat /proc/self/gid_map | tr -s ' \\n' ' ')\"\n"
        .. "echo \"wtmp=$(stat -c %U:%G /var/log/wtmp)\"\n"
        .. "echo \"mqueue=$(awk '$5 == \"/dev/mqueue\" { for (i = 7; $i != \"-\"; i++); print $(i+1) }' /proc/self/mountinfo)\"\n"
        .. "echo \"mqueue_exec=$(systemctl show -P ExecMount dev-mqueue.mount)\"\n")
      local r = run({ "--user-map=subordinate", "--chroot=" .. copy, "--ephemeral",
                      "--mount=bind:" .. io_dir .. ":/pftest", INIT },
                    "echo $$ >" .. cgroup .. "/cgroup.procs &&")
      assert.equal(0, r.status, r.stderr)
      assert_up(io_dir, IMPOSSIBLE.rootless)
      local p = parse(read_file(io_dir .. "/probe.out"))
      assert.matches("^ ?0 " .. uid .. " 1 1 " .. sub_start .. " ", p.uidmap)
      assert.matches("^ ?0 " .. gid .. " 1 1 " .. subgid_start .. " ", p.gidmap)
      -- The copy's group ids are the image's inside: a file of group utmp
      -- is utmp's, not the overflow group that overlayfs cannot copy up.
      assert.equal("root:utmp", p.wtmp)
      -- Its IPC namespace's message queues, mounted by pflask in the user
      -- namespace too: systemd ran no mount(8) for them.
      assert.equal("mqueue", p.mqueue)
      assert.is_nil(p.mqueue_exec:match("code=exited"), p.mqueue_exec)
      assert.equal("0", pft.capture("pgrep -u " .. uid .. " | wc -l"), "processes left behind")
      assert.equal("", pft.capture("find " .. cgroup .. " -mindepth 1 -maxdepth 1 -type d"), "cgroups left behind")
    end)
  end)
end)
