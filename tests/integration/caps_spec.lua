-- --caps and --no-new-privs seen from inside a real container (as root).
-- This host may lack some capabilities (this VM has no CAP_SYS_RESOURCE
-- in its bounding set): "all" is compared with the host's own set.
local pft = require "pftest"

local function status_field(text, name)
  return text:match(name .. ":%s*(%x+)")
end

local function host_bounding()
  return tonumber(status_field(pft.capture("cat /proc/self/status"), "CapBnd"), 16)
end

local one_line = pft.one_line

local CHOWN, KILL, SETUID, SETPCAP, SYS_ADMIN, MKNOD, SYSLOG = 0, 5, 7, 8, 21, 27, 34

-- What a container keeps without --caps: systemd-nspawn's default set
-- (listed here on its own, not taken from pflask), within what the host
-- grants.
local DEFAULT_NAMES = {
  "audit_control", "audit_write", "chown", "dac_override", "dac_read_search",
  "fowner", "fsetid", "ipc_owner", "kill", "lease", "linux_immutable", "mknod",
  "net_bind_service", "net_broadcast", "net_raw", "setfcap", "setgid",
  "setpcap", "setuid", "sys_admin", "sys_boot", "sys_chroot", "sys_nice",
  "sys_ptrace", "sys_resource", "sys_tty_config",
}
local function default_set()
  local numbers = require("pflask.spec.caps").numbers
  local set = 0
  for _, name in ipairs(DEFAULT_NAMES) do set = set | (1 << numbers[name]) end
  return set & host_bounding()
end

describe("--caps", function()
  local dir
  before_each(function()
    dir = pft.tempdir("caps")
    pft.sh("touch " .. dir .. "/file")
  end)
  after_each(function() pft.rm_rf(dir) end)

  it("keeps the default set without --caps, and all the host grants with +all", function()
    local r = pft.pflask({ "--", "cat", "/proc/self/status" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(default_set(), tonumber(status_field(r.stdout, "CapBnd"), 16))
    assert.equal(default_set(), tonumber(status_field(r.stdout, "CapEff"), 16))
    assert.are_not.equal(host_bounding(), default_set())
    r = pft.pflask({ "--caps=+all", "--", "cat", "/proc/self/status" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(host_bounding(), tonumber(status_field(r.stdout, "CapBnd"), 16))
    assert.equal(host_bounding(), tonumber(status_field(r.stdout, "CapEff"), 16))
  end)

  it("drops one capability from every set, and the operation it allows fails", function()
    local r = pft.pflask({ "--caps=-chown", "--", "sh", "-c",
      "grep -E '^Cap(Bnd|Eff|Prm|Inh)' /proc/self/status; chown 1 " .. dir .. "/file && echo chowned; true" })
    assert.equal(0, r.status, r.stderr)
    local want = default_set() & ~(1 << CHOWN)
    for _, f in ipairs({ "CapBnd", "CapEff", "CapPrm", "CapInh" }) do
      assert.equal(want, tonumber(status_field(r.stdout, f), 16), f)
    end
    assert.is_nil(r.stdout:find("chowned", 1, true))
    assert.matches("Operation not permitted", r.stderr)
    assert.equal("0", pft.capture("stat -c %u " .. dir .. "/file"))
  end)

  it("keeps only the listed capabilities with -all,+LIST, in any case", function()
    local r = pft.pflask({ "--caps=-all,+CHOWN", "-b", "cap_SETUID", "--", "sh", "-c",
      "grep -E '^Cap' /proc/self/status; chown 1 " .. dir .. "/file && echo chowned; "
      .. "mknod " .. dir .. "/node c 1 3 || echo no-mknod; hostname other || echo no-hostname" })
    assert.equal(0, r.status, r.stderr)
    local want = (1 << CHOWN) | (1 << SETUID)
    for _, f in ipairs({ "CapBnd", "CapEff", "CapPrm", "CapInh" }) do
      assert.equal(want, tonumber(status_field(r.stdout, f), 16), f)
    end
    assert.equal(0, tonumber(status_field(r.stdout, "CapAmb"), 16))
    assert.truthy(r.stdout:find("chowned", 1, true))
    assert.truthy(r.stdout:find("no-mknod", 1, true))
    assert.truthy(r.stdout:find("no-hostname", 1, true))
    assert.equal("1", pft.capture("stat -c %u " .. dir .. "/file"))
  end)

  it("does not let a dropped capability come back through exec of a setuid-root binary", function()
    -- A setuid-root program run by nobody gets the bounding set: the
    -- default set without --caps, never what --caps dropped.
    assert.equal(0, pft.sh("cp /usr/bin/grep " .. dir .. "/sgrep && chmod 4755 " .. dir .. "/sgrep"))
    local cmd = { "--user=nobody", "--no-userns", "--", "sh", "-c",
      "grep CapEff /proc/self/status; " .. dir .. "/sgrep CapEff /proc/self/status" }
    local plain = pft.pflask(cmd)
    assert.equal(0, plain.status, plain.stderr)
    local before, after = plain.stdout:match("CapEff:%s*(%x+)\nCapEff:%s*(%x+)")
    assert.equal(0, tonumber(before, 16)) -- nobody has none
    assert.equal(default_set(), tonumber(after, 16), "setuid root did not work here")
    table.insert(cmd, 1, "--caps=-sys_admin,-mknod")
    local r = pft.pflask(cmd)
    assert.equal(0, r.status, r.stderr)
    before, after = r.stdout:match("CapEff:%s*(%x+)\nCapEff:%s*(%x+)")
    assert.equal(0, tonumber(before, 16))
    assert.equal(default_set() & ~((1 << SYS_ADMIN) | (1 << MKNOD)), tonumber(after, 16))
  end)

  it("gives a non-root --user the capabilities named with + (ambient), and only those", function()
    local r = pft.pflask({ "--caps=-all,+chown", "--user=nobody", "--no-userns", "--", "sh", "-c",
      "id -u; grep -E '^Cap' /proc/self/status; chown 1 " .. dir .. "/file && echo chowned" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^65534\n", r.stdout)
    for _, f in ipairs({ "CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb" }) do
      assert.equal(1 << CHOWN, tonumber(status_field(r.stdout, f), 16), f)
    end
    assert.truthy(r.stdout:find("chowned", 1, true))
  end)

  it("works in a user namespace too (drops setpcap, then no mount)", function()
    local r = pft.pflask({ "--user-map=0:0:65536", "--caps=-setpcap,-sys_admin", "--", "sh", "-c",
      "grep CapEff /proc/self/status; mount -t tmpfs none /mnt 2>/dev/null || echo no-mount" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(0, tonumber(status_field(r.stdout, "CapEff"), 16) & ((1 << SETPCAP) | (1 << SYS_ADMIN)))
    assert.truthy(r.stdout:find("no-mount", 1, true))
  end)

  it("refuses unknown names and capabilities the host does not grant, with one line and 125", function()
    local r = pft.pflask({ "--caps=-chown,+frobnicate", "--", "true" })
    assert.equal(125, r.status)
    assert.equal("pflask: --caps: 'frobnicate' is not a capability\n", r.stderr)
    -- This host may grant everything (a full bounding set): take one
    -- capability away from pflask's bounding set with setpriv, as a host
    -- that lacks it would, on every host.
    local r2 = pft.pflask({ "--caps=+syslog", "--", "true" }, { prefix = "setpriv --bounding-set -syslog" })
    assert.equal(125, r2.status)
    assert.equal("pflask: --caps: 'syslog' is not granted on this host (it is not in pflask's bounding set)\n",
      r2.stderr)
    -- And with the capability there, the same request runs.
    local r3 = pft.pflask({ "--caps=+syslog", "--", "grep", "CapBnd", "/proc/self/status" })
    if host_bounding() & (1 << SYSLOG) == 0 then
      pending("this host's bounding set lacks CAP_SYSLOG itself")
      return
    end
    assert.equal(0, r3.status, r3.stderr)
    assert.is_true(tonumber(status_field(r3.stdout, "CapBnd"), 16) & (1 << SYSLOG) ~= 0, r3.stdout)
  end)

  it("with capabilities missing from the host's bounding set: +all and the default set are within it", function()
    -- setpriv drops CAP_SYSLOG (not in the default set) and CAP_SYS_NICE
    -- (in it) from pflask's bounding set, as on a host that lacks them
    -- (this VM lacks CAP_SYS_RESOURCE; others lack none).
    local SYS_NICE = 23
    local LESS = "setpriv --bounding-set -syslog,-sys_nice"
    local missing = (1 << SYSLOG) | (1 << SYS_NICE)
    local function caps(args)
      local argv = {}
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      for _, a in ipairs({ "--", "grep", "-E", "^Cap(Bnd|Eff)", "/proc/self/status" }) do argv[#argv + 1] = a end
      local r = pft.pflask(argv, { prefix = LESS })
      assert.equal(0, r.status, r.stderr)
      local bnd, eff = tonumber(status_field(r.stdout, "CapBnd"), 16), tonumber(status_field(r.stdout, "CapEff"), 16)
      assert.equal(bnd, eff, r.stdout)
      return bnd
    end
    assert.is_true(default_set() & (1 << SYS_NICE) ~= 0 or host_bounding() & (1 << SYS_NICE) == 0)
    assert.equal(host_bounding() & ~missing, caps({ "--caps=+all" }))
    assert.equal(default_set() & ~missing, caps({}))
    -- --caps=+all,-chown from that set: one less, and still neither.
    assert.equal(host_bounding() & ~missing & ~(1 << CHOWN), caps({ "--caps=+all,-chown" }))
  end)
end)

describe("--no-new-privs", function()
  it("sets NoNewPrivs for the command, and not without the option", function()
    local r = pft.pflask({ "--no-new-privs", "--", "grep", "NoNewPrivs", "/proc/self/status" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("NoNewPrivs:%s*1", r.stdout)
    local r2 = pft.pflask({ "--", "grep", "NoNewPrivs", "/proc/self/status" })
    assert.equal(0, r2.status, r2.stderr)
    assert.matches("NoNewPrivs:%s*0", r2.stdout)
  end)

  it("stops a setuid-root binary from gaining privileges", function()
    local dir = pft.tempdir("nnp")
    finally(function() pft.rm_rf(dir) end)
    assert.equal(0, pft.sh("cp /usr/bin/id " .. dir .. "/sid && chmod 4755 " .. dir .. "/sid"))
    local cmd = { "--user=nobody", "--no-userns", "--", dir .. "/sid", "-u" }
    assert.equal("0\n", pft.pflask(cmd).stdout) -- euid 0 through setuid
    table.insert(cmd, 1, "--no-new-privs")
    local r = pft.pflask(cmd)
    assert.equal(0, r.status, r.stderr)
    assert.equal("65534\n", r.stdout)
  end)

  it("is a recipe field, with caps", function()
    local dir = pft.tempdir("nnp")
    finally(function() pft.rm_rf(dir) end)
    local recipe = pft.write_file(dir .. "/r.lua",
      'return require("pflask").run{ command = {"grep", "-E", "^(NoNewPrivs|Cap)", "/proc/self/status"}, '
      .. 'no_new_privs = true, caps = {"-all", "+kill"} }\n')
    local r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(0, r.status, r.stderr)
    assert.matches("NoNewPrivs:%s*1", r.stdout)
    -- The recipe's caps: CAP_KILL alone, in every set.
    for _, f in ipairs({ "CapBnd", "CapEff", "CapPrm", "CapInh" }) do
      assert.equal(1 << KILL, tonumber(status_field(r.stdout, f), 16), f)
    end
    -- Without the fields: no NoNewPrivs, the default capabilities.
    local plain = pft.pflask({ "--recipe=" .. pft.write_file(dir .. "/p.lua",
      'return require("pflask").run{ command = {"grep", "-E", "^(NoNewPrivs|CapEff)", "/proc/self/status"} }\n') })
    assert.equal(0, plain.status, plain.stderr)
    assert.matches("NoNewPrivs:%s*0", plain.stdout)
    assert.equal(default_set(), tonumber(status_field(plain.stdout, "CapEff"), 16))
  end)
end)
