-- Attacks with the capabilities that act on the whole host (issue 11,
-- item 8): a root container is not host root. The command tries, with real
-- system calls, what those capabilities allow (loading a module, setting
-- the clock, reading the kernel log, raw I/O), as root, as root in a user
-- namespace whose uid 0 is host uid 0, as a non-root --user and rootless;
-- each must fail with EPERM, and CapBnd inside must be the default set.
-- The calls are chosen to change nothing even where they succeed:
-- settimeofday(NULL, NULL) only checks CAP_SYS_TIME, syslog(2)'s
-- SIZE_UNREAD only reads a count, init_module of an empty image fails
-- after the capability check, iopl(3) changes only the calling process.
local pft = require "pftest"

local EPERM = 1

-- Each call prints name=ok or name=<errno>.
local PROBE = table.concat({
  'require "syscall.ph";',
  'my $p = "";',
  'sub try { my ($n, $r) = @_; print "$n=", ($r == -1 ? $! + 0 : "ok"), "\\n"; }',
  'try("init_module", syscall(&SYS_init_module, 0, 0, $p));',
  'try("syslog", syscall(&SYS_syslog, 9, 0, 0));',
  'try("settimeofday", syscall(&SYS_settimeofday, 0, 0));',
  'if (defined &SYS_iopl) { try("iopl", syscall(&SYS_iopl, 3)); }',
}, " ")

-- What the kernel answers host root to each call: a call this kernel
-- lacks (ENOSYS) proves nothing inside.
local host_answer

local function parse(text)
  local t = {}
  for k, v in (text or ""):gmatch("([%w_]+)=([^\n]*)") do t[k] = v end
  return t
end

local function status_field(text, name)
  return tonumber(text:match(name .. ":%s*(%x+)"), 16)
end

local function host_bounding()
  return status_field(pft.capture("cat /proc/self/status"), "CapBnd")
end

local NAMES = require("pflask.spec.caps").numbers
local function set_of(names)
  local set = 0
  for _, n in ipairs(names) do set = set | (1 << NAMES[n]) end
  return set
end

-- systemd-nspawn's default, listed here on its own.
local DEFAULT = set_of({
  "audit_control", "audit_write", "chown", "dac_override", "dac_read_search",
  "fowner", "fsetid", "ipc_owner", "kill", "lease", "linux_immutable", "mknod",
  "net_bind_service", "net_broadcast", "net_raw", "setfcap", "setgid",
  "setpcap", "setuid", "sys_admin", "sys_boot", "sys_chroot", "sys_nice",
  "sys_ptrace", "sys_resource", "sys_tty_config",
})
-- Never in it: they act on the whole host.
local HOST_WIDE = set_of({
  "sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override", "syslog",
  "bpf", "perfmon", "wake_alarm", "block_suspend", "audit_read", "sys_pacct",
  "checkpoint_restore", "ipc_lock", "net_admin",
})

-- The inside's CapBnd, and pid 1's (the reaper must hold no more than its
-- command), then the probe.
local SCRIPT = "grep -E '^Cap(Bnd|Eff)' /proc/self/status; echo pid1_$(grep CapEff /proc/1/status); "
  .. "perl -e " .. pft.quote(PROBE)

local function assert_denied(r, world, want_bnd)
  assert.equal(0, r.status, world .. ": " .. r.stderr)
  local bnd = status_field(r.stdout, "CapBnd")
  assert.equal(want_bnd, bnd, world .. ": CapBnd")
  assert.equal(0, bnd & HOST_WIDE & ~want_bnd, world)
  local pid1 = tonumber(r.stdout:match("pid1_CapEff:%s*(%x+)"), 16)
  assert.equal(0, pid1 & ~want_bnd, world .. ": pid 1 holds more than the container's set")
  local p = parse(r.stdout)
  local proved = 0
  for call, answer in pairs(host_answer) do
    if answer ~= "38" then -- ENOSYS: this kernel lacks the call
      assert.equal(tostring(EPERM), p[call], world .. ": " .. call .. " was not refused")
      proved = proved + 1
    end
  end
  assert.is_true(proved >= 2, "too few of the calls work on this host")
  return p
end

describe("attacks with host-wide capabilities", function()
  local default
  setup(function()
    host_answer = parse(pft.capture("perl -e " .. pft.quote(PROBE)))
    default = DEFAULT & host_bounding()
  end)

  it("host root itself may make the calls (else the attacks prove nothing)", function()
    assert.equal("ok", host_answer.syslog)
    assert.equal("ok", host_answer.settimeofday)
    if host_answer.init_module == "38" then pending("this kernel has no module loading (init_module: ENOSYS)") end
    assert.are_not.equal(tostring(EPERM), host_answer.init_module)
  end)

  it("as root, without a user namespace", function()
    assert_denied(pft.pflask({ "--", "sh", "-c", SCRIPT }), "root", default)
  end)

  it("as root in a user namespace whose uid 0 is host uid 0", function()
    local r = pft.pflask({ "--user-map=0:0:65536", "--", "sh", "-c", "cat /proc/self/uid_map; " .. SCRIPT })
    assert.matches("^%s*0%s+0%s+65536\n", r.stdout)
    assert_denied(r, "--user-map=0:0:65536", default)
  end)

  it("as a non-root --user (a setuid-root binary brings back only the default set)", function()
    local dir = pft.tempdir("attacks-caps")
    assert.equal(0, pft.sh("cp /usr/bin/perl " .. dir .. "/sperl && chmod 4755 " .. dir .. "/sperl"))
    local r = pft.pflask({ "--user=nobody", "--no-userns", "--", "sh", "-c",
      (SCRIPT:gsub("perl %-e", dir .. "/sperl -e")) })
    pft.rm_rf(dir)
    assert_denied(r, "--user=nobody", default)
  end)

  it("as --user=alice of a --chroot root, and as its root: the default bounding set", function()
    local root = pft.make_rootfs(pft.tempdir("attacks-caps-root"))
    local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--", "sh", "-c",
      "id -u; grep -E '^Cap(Bnd|Eff)' /proc/self/status; echo pid1_$(grep CapEff /proc/1/status)" })
    local r0 = pft.pflask({ "--chroot=" .. root, "--", "grep", "-E", "^Cap(Bnd|Eff)", "/proc/self/status" })
    pft.rm_rf(root)
    assert.equal(0, r.status, r.stderr)
    assert.matches("^1000\n", r.stdout)
    assert.equal(default, status_field(r.stdout, "CapBnd"))
    assert.equal(0, status_field(r.stdout, "CapEff"))
    assert.equal(0, tonumber(r.stdout:match("pid1_CapEff:%s*(%x+)"), 16)) -- pid 1 too
    assert.equal(0, r0.status, r0.stderr)
    assert.equal(default, status_field(r0.stdout, "CapBnd"))
    assert.equal(default, status_field(r0.stdout, "CapEff"))
  end)

  it("with a network namespace of its own, net_admin is in the set, and only then", function()
    local r = pft.pflask({ "--netif", "--", "sh", "-c", SCRIPT })
    assert_denied(r, "--netif", default | (host_bounding() & set_of({ "net_admin" })))
  end)

  it("--caps=+sys_time gives back the clock on purpose, and nothing else", function()
    local r = pft.pflask({ "--caps=+sys_time", "--", "sh", "-c", SCRIPT })
    assert.equal(0, r.status, r.stderr)
    assert.equal(default | set_of({ "sys_time" }), status_field(r.stdout, "CapBnd"))
    local p = parse(r.stdout)
    assert.equal("ok", p.settimeofday)
    assert.equal(tostring(EPERM), p.syslog)
  end)

  it("--caps=+all gives back all the host grants", function()
    local r = pft.pflask({ "--caps=+all", "--", "sh", "-c", SCRIPT })
    assert.equal(0, r.status, r.stderr)
    assert.equal(host_bounding(), status_field(r.stdout, "CapBnd"))
    local p = parse(r.stdout)
    assert.equal("ok", p.settimeofday)
    assert.equal("ok", p.syslog)
  end)

  it("--caps entries modify the default set: -chown drops one more, -all,+chown keeps one", function()
    local r = pft.pflask({ "--caps=-chown", "--", "grep", "CapBnd", "/proc/self/status" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(default & ~set_of({ "chown" }), status_field(r.stdout, "CapBnd"))
    r = pft.pflask({ "--caps=-all,+chown", "--", "grep", "CapBnd", "/proc/self/status" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(set_of({ "chown" }), status_field(r.stdout, "CapBnd"))
  end)

  describe("rootless", function()
    local user
    setup(function() user = pft.rootless_user() end)
    teardown(function() if user then user:remove() end end)
    local function run(args)
      return user:pflask(args)
    end

    it("root inside holds the default set only, and the calls fail", function()
      assert_denied(run({ "--", "sh", "-c", SCRIPT }), "rootless", default)
    end)

    it("--caps=+all gives back the set, never host privilege", function()
      local r = run({ "--caps=+all", "--", "sh", "-c", SCRIPT })
      assert.equal(0, r.status, r.stderr)
      assert.equal(host_bounding(), status_field(r.stdout, "CapBnd"))
      local p = parse(r.stdout)
      assert.equal(tostring(EPERM), p.settimeofday)
      assert.equal(tostring(EPERM), p.syslog)
    end)
  end)
end)
