-- The default capability set and how --caps entries modify it, resolved
-- against a faked host (no root needed).
local privileges = require "pflask.privileges"
local capspec = require "pflask.spec.caps"

local function bit(name) return 1 << capspec.numbers[name] end
local LAST = capspec.LAST
local ALL = (1 << (LAST + 1)) - 1

local function ops(list) return capspec.parse(list, "--caps") end

describe("the default capability set", function()
  it("is systemd-nspawn's: no capability that acts on the whole host", function()
    local d = privileges.default(false)
    for _, name in ipairs({ "chown", "dac_override", "setuid", "setgid", "setpcap", "sys_admin",
                            "sys_chroot", "mknod", "kill", "net_bind_service", "audit_write" }) do
      assert.is_true(d & bit(name) ~= 0, name)
    end
    for _, name in ipairs({ "sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override",
                            "syslog", "bpf", "perfmon", "wake_alarm", "block_suspend", "audit_read",
                            "sys_pacct", "checkpoint_restore", "ipc_lock", "net_admin" }) do
      assert.equal(0, d & bit(name), name)
    end
  end)

  it("adds net_admin only with a network namespace of its own", function()
    assert.equal(privileges.default(false) | bit("net_admin"), privileges.default(true))
  end)
end)

describe("privileges.resolve from the default set", function()
  local base = privileges.default(false)

  it("without entries: the default, within what the host grants", function()
    assert.equal(base, (privileges.resolve({}, ALL, LAST, base)))
    local host = ALL & ~bit("sys_resource")
    assert.equal(base & ~bit("sys_resource"), (privileges.resolve({}, host, LAST, base)))
  end)

  it("+all is all the host grants, -all nothing", function()
    assert.equal(ALL, (privileges.resolve(ops("+all"), ALL, LAST, base)))
    assert.equal(0, (privileges.resolve(ops("-all"), ALL, LAST, base)))
  end)

  it("+NAME gives one back on purpose, -NAME drops one more", function()
    local keep, added = privileges.resolve(ops("+sys_module,-chown"), ALL, LAST, base)
    assert.equal((base | bit("sys_module")) & ~bit("chown"), keep)
    assert.equal(bit("sys_module"), added)
  end)

  it("refuses a capability the host does not grant", function()
    local host = ALL & ~bit("sys_time")
    assert.has_error(function() privileges.resolve(ops("+sys_time"), host, LAST, base) end)
  end)
end)

describe("privileges.consulted", function()
  -- The supervisor reads only these bits of the host's bounding set: the
  -- plan must come out the same as with the whole set read.
  it("names every capability of the host that resolve looks at", function()
    local hosts = { ALL, ALL & ~bit("sys_resource"), ALL & ~bit("sys_time") & ~bit("chown"),
                    bit("chown") | bit("kill"), 0 }
    local lists = { {}, ops("+all"), ops("-all"), ops("+all,-chown"), ops("-all,+kill,+chown"),
                    ops("+sys_module,-chown"), ops("-setpcap,-sys_admin"), ops("+net_admin") }
    for _, net in ipairs({ false, true }) do
      local base = privileges.default(net)
      for _, host in ipairs(hosts) do
        for i, list in ipairs(lists) do
          local part = host & privileges.consulted(list, base)
          local ok1, keep1, added1 = pcall(privileges.resolve, list, host, LAST, base)
          local ok2, keep2, added2 = pcall(privileges.resolve, list, part, LAST, base)
          assert.equal(ok1, ok2, "list " .. i)
          if ok1 then
            assert.equal(keep1, keep2, "list " .. i)
            assert.equal(added1, added2, "list " .. i)
          end
        end
      end
    end
  end)

  it("is the default set without entries, everything with +all", function()
    local base = privileges.default(false)
    assert.equal(base, privileges.consulted({}, base))
    assert.equal(base | bit("syslog"), privileges.consulted(ops("+syslog,-chown"), base))
    assert.equal(-1, privileges.consulted(ops("+all,-chown"), base))
  end)
end)
