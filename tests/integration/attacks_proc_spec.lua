-- Attacks on /proc and /sys (issue 11, items 2 and 9): a hostile command
-- tries to write the host's kernel tunables and to read what /proc and
-- /sys leak about the host, as a program would, from a root container
-- without a user namespace, from one whose uid 0 is host uid 0 (the exact
-- hole of item 2), as a non-root --user, rootless, and without --chroot
-- (where pflask mounts a fresh /proc over the host's). Every attempt must
-- fail. A write that would change the host only ever writes back the value
-- it read, so a failing test leaves the host as it was.
local pft = require "pftest"


-- Inside: try the write of item 2 and of sysrq-trigger, then report what
-- the masked paths are. One "key=value" line each.
local PROBE = table.concat({
  "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo core_pattern=WRITABLE || echo core_pattern=refused",
  "if [ -e /proc/sysrq-trigger ]; then : 2>/dev/null > /proc/sysrq-trigger && echo sysrq=WRITABLE || echo sysrq=refused; else echo sysrq=absent; fi",
  -- a masked file is the host's /dev/null (char 1:3): nothing to read
  "for f in kcore keys timer_list kallsyms sched_debug timer_stats latency_stats; do "
    .. "if [ -e /proc/$f ]; then echo $f=$(busybox stat -c %t:%T /proc/$f):$(cat /proc/$f 2>/dev/null | wc -c); "
    .. "else echo $f=absent; fi; done",
  "if [ -d /sys/firmware ]; then echo firmware=$(ls -A /sys/firmware | wc -l); "
    .. "touch /sys/firmware/x 2>/dev/null && echo firmware_write=WRITABLE || echo firmware_write=refused; "
    .. "else echo firmware=absent; fi",
  "if [ -d /proc/acpi ]; then echo acpi=$(ls -A /proc/acpi | wc -l); else echo acpi=absent; fi",
  "cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo net=WRITABLE || echo net=refused",
  "true",
}, "\n")

local function parse(text)
  local t = {}
  for k, v in (text or ""):gmatch("([%w_]+)=([^\n]*)") do t[k] = v end
  return t
end

-- What the host has, to tell "masked" from "this kernel has none".
local function host_has(path) return pft.sh("test -e " .. path) == 0 end
local function host_nonempty(path)
  return pft.sh("test -s " .. path .. " || [ $(head -c 1 " .. path .. " 2>/dev/null | wc -c) -gt 0 ]") == 0
end

-- The probe's verdict, asserted, for any world.
-- opts.host_sys: the container sees the host's own /sys (no --chroot).
local function assert_protected(r, world, opts)
  assert.equal(0, r.status, world .. ": " .. r.stderr)
  local p = parse(r.stdout)
  assert.equal("refused", p.core_pattern, world .. ": /proc/sys/kernel/core_pattern is writable")
  if p.sysrq ~= "absent" then
    assert.equal("refused", p.sysrq, world .. ": /proc/sysrq-trigger is writable")
  end
  local seen = 0
  for _, f in ipairs({ "kcore", "keys", "timer_list", "kallsyms", "sched_debug", "timer_stats", "latency_stats" }) do
    if host_has("/proc/" .. f) then
      -- "1:3:0": the host's /dev/null, nothing read
      assert.equal("1:3:0", p[f], world .. ": /proc/" .. f .. " is not masked")
      seen = seen + 1
    end
  end
  assert.is_true(seen > 0, "the host has none of the masked /proc files")
  if host_has("/sys/firmware") and not (opts and opts.host_sys) then
    assert.equal("0", p.firmware, world .. ": /sys/firmware is not masked")
    assert.equal("refused", p.firmware_write, world)
  end
  if host_has("/proc/acpi") then assert.equal("0", p.acpi, world .. ": /proc/acpi is not masked") end
  return p
end

describe("attacks on /proc and /sys", function()
  local root, core_pattern, ip_forward
  setup(function()
    root = pft.make_rootfs(pft.tempdir("attacks-proc"))
    core_pattern = pft.read_file("/proc/sys/kernel/core_pattern")
    ip_forward = pft.read_file("/proc/sys/net/ipv4/ip_forward")
  end)
  teardown(function() pft.rm_rf(root) end)
  after_each(function()
    -- Whatever happened inside, the host's tunables are as they were.
    assert.equal(core_pattern, pft.read_file("/proc/sys/kernel/core_pattern"))
    assert.equal(ip_forward, pft.read_file("/proc/sys/net/ipv4/ip_forward"))
  end)

  it("the host has what the probe looks at", function()
    -- Without these the other tests prove less: say so.
    assert.is_true(host_nonempty("/proc/timer_list") or host_nonempty("/proc/keys"))
    if not host_has("/proc/sysrq-trigger") then pending("this kernel has no /proc/sysrq-trigger") end
  end)

  it("as root, without a user namespace", function()
    local p = assert_protected(pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", PROBE }), "root")
    assert.equal("refused", p.net) -- the host's network namespace
  end)

  it("as root in a user namespace whose uid 0 is host uid 0 (--user-map=0:0:65536)", function()
    local r = pft.pflask({ "--chroot=" .. root, "--user-map=0:0:65536", "--", "sh", "-c",
      "cat /proc/self/uid_map; " .. PROBE })
    assert.matches("^%s*0%s+0%s+65536\n", r.stdout)
    local p = assert_protected(r, "--user-map=0:0:65536")
    assert.equal("refused", p.net)
  end)

  it("as root with --user=root (item 2 as reported)", function()
    assert_protected(pft.pflask({ "--chroot=" .. root, "--user=root", "--", "sh", "-c", PROBE }), "--user=root")
  end)

  it("as root with --user=alice", function()
    local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--", "sh", "-c", "id -u; " .. PROBE })
    assert.matches("^1000\n", r.stdout)
    assert_protected(r, "--user=alice")
  end)

  it("without --chroot: the fresh /proc over the host's is masked too", function()
    local r = pft.pflask({ "--", "sh", "-c", (PROBE:gsub("busybox stat", "stat")) })
    local p = assert_protected(r, "no --chroot", { host_sys = true })
    assert.equal("refused", p.net)
  end)

  it("without --chroot and --no-pidns: the host's /proc is masked in the container's mount namespace", function()
    local r = pft.pflask({ "--no-pidns", "--user-map=0:0:65536", "--", "sh", "-c", (PROBE:gsub("busybox stat", "stat")) })
    assert_protected(r, "--no-pidns", { host_sys = true })
    -- and on the host, nothing was masked
    assert.equal(0, pft.sh("test ! -c /proc/keys"))
  end)

  it("with --caps=-sys_admin, unmounting the read-only /proc/sys gives nothing back", function()
    local r = pft.pflask({ "--chroot=" .. root, "--user-map=0:0:65536", "--caps=-sys_admin", "--", "sh", "-c",
      "umount /proc/sys 2>/dev/null && echo UNMOUNTED; umount -l /proc/keys 2>/dev/null && echo UNMASKED; "
      .. "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo WRITABLE; true" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stdout)
  end)

  it("a private network namespace gets its own writable /proc/sys/net, the host's stays as it was", function()
    local r = pft.pflask({ "--chroot=" .. root, "--netif", "--", "sh", "-c",
      "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; "
      .. "echo 0 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; " .. PROBE })
    assert.matches("^1\n0\n", r.stdout)
    local p = assert_protected(r, "--netif")
    assert.equal("WRITABLE", p.net)
  end)

  it("in a booted system (systemd as pid 1), as root", function()
    -- The boot specs' cached Debian root (tests/boot_rootfs.sh, label
    -- "boot"); made there, not here, since making it takes minutes.
    local cache = (os.getenv("PFLASK_TEST_CACHE") or "/var/cache/pflask-test") .. "/bookworm-systemd"
    if pft.sh("test -x " .. cache .. "/lib/systemd/systemd") ~= 0 then
      pending("no cached boot root (ctest -L boot makes it)")
      return
    end
    local rootfs = pft.capture(pft.quote(pft.SOURCE_DIR .. "/tests/boot_rootfs.sh") .. " 2>/dev/null"):match("([^\n]+)$")
    local io_dir, tmp = pft.tempdir("attacks-boot"), pft.tempdir("attacks-boottmp")
    pft.write_file(io_dir .. "/probe", table.concat({
      "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo core_pattern=WRITABLE || echo core_pattern=refused",
      "echo keys=$(stat -c %t:%T /proc/keys)",
      "echo firmware=$(ls -A /sys/firmware | wc -l)",
      "echo pid1=$(awk '/^CapBnd/ {print $2}' /proc/1/status)",
      "", }, "\n"))
    local r = pft.pflask({ "--chroot=" .. rootfs, "--ephemeral", "--mount=bind:" .. io_dir .. ":/pftest",
                           "/lib/systemd/systemd" }, { timeout = 120, env = { TMPDIR = tmp } })
    local state = pft.read_file(io_dir .. "/state")
    local out = pft.read_file(io_dir .. "/probe.out")
    pft.rm_rf(io_dir)
    pft.rm_rf(tmp)
    assert.equal(0, r.status, r.stderr)
    assert.equal("running", (state or ""):match("^%s*(.-)%s*$"))
    local p = parse(out)
    assert.equal("refused", p.core_pattern, out)
    assert.equal("1:3", p.keys, out)
    if host_has("/sys/firmware") then assert.equal("0", p.firmware, out) end
    -- pid 1 (systemd) holds no capability that acts on the whole host
    local bnd = tonumber(p.pid1, 16)
    local names = require("pflask.spec.caps").numbers
    for _, c in ipairs({ "sys_module", "sys_rawio", "sys_time", "syslog", "mac_admin", "bpf" }) do
      assert.equal(0, bnd & (1 << names[c]), c)
    end
  end)

  describe("rootless", function()
    local user, uid, userroot
    setup(function()
      user = pft.rootless_user()
      uid = user.uid
      userroot = pft.make_rootfs(pft.tempdir("attacks-proc-user"), { uid = uid, gid = user.gid })
    end)
    teardown(function()
      if user then user:remove() end
      if userroot then pft.rm_rf(userroot) end
    end)
    local function run(args)
      return user:pflask(args)
    end

    it("with --chroot", function()
      local p = assert_protected(run({ "--chroot=" .. userroot, "--", "sh", "-c", PROBE }), "rootless")
      assert.equal("refused", p.net)
    end)

    it("with --chroot and --user=alice", function()
      local r = run({ "--chroot=" .. userroot, "--user=alice", "--", "sh", "-c", "id -u; " .. PROBE })
      assert.matches("^" .. uid .. "\n", r.stdout)
      assert_protected(r, "rootless --user=alice")
    end)

    it("without --chroot", function()
      assert_protected(run({ "--", "sh", "-c", (PROBE:gsub("busybox stat", "stat")) }), "rootless, no --chroot",
                       { host_sys = true })
    end)

    it("without --chroot and --no-pidns", function()
      assert_protected(run({ "--no-pidns", "--", "sh", "-c", (PROBE:gsub("busybox stat", "stat")) }),
                       "rootless --no-pidns", { host_sys = true })
    end)

    it("unmounting the masks gives the container's root nothing of the host's", function()
      -- Root inside is the user outside: the kernel itself refuses.
      local r = run({ "--chroot=" .. userroot, "--", "sh", "-c",
        "umount /proc/sys 2>/dev/null; "
        .. "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo WRITABLE; true" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("", r.stdout)
    end)

    it("a private network namespace gets its own writable /proc/sys/net", function()
      local r = run({ "--chroot=" .. userroot, "--netif", "--", "sh", "-c",
        "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; " .. PROBE })
      assert.matches("^1\n", r.stdout)
      local p = assert_protected(r, "rootless --netif")
      assert.equal("WRITABLE", p.net)
    end)
  end)
end)
