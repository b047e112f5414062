-- pflask.registry without containers: names, and records that survive any
-- byte in a command line or path.
local registry = require "pflask.registry"

describe("pflask.registry", function()
  it("takes names that are hostname-like and not pids", function()
    for _, good in ipairs({ "web", "a", "web-1.test_2", "1web", ("x"):rep(64) }) do
      assert.is_true(registry.valid_name(good), good)
    end
    for _, bad in ipairs({ "", "123", "-web", ".web", "_web", "a/b", "a b", "a\nb", ("x"):rep(65), "é", 7 }) do
      local ok, why = registry.valid_name(bad)
      assert.is_false(ok, tostring(bad))
      assert.is_string(why)
    end
  end)

  it("round-trips a record whatever bytes its fields hold", function()
    local rec = {
      name = "web", pid = 42, start = 123456789, supervisor = 41, supervisor_start = 123456700,
      uid = 0, pidns = 4026531836, created = 1700000000,
      root = "/srv/a=b%c\nd\255",
      command = { "sh", "-c", "echo 'x=1'\n%41 \0 end", "" },
    }
    local data = registry.encode(rec)
    -- One line per value: no raw newline, NUL or '=' inside a value.
    for line in data:gmatch("[^\n]*\n") do
      assert.matches("^[%w_]+=[^=%c]*\n$", line)
    end
    assert.are.same(rec, registry.decode(data))
  end)

  -- The compiled seccomp filter --exec applies, as hex in the record:
  -- eight bytes a format item must give what one byte at a time gave.
  it("writes the seccomp filter as hex, and reads back the same bytes", function()
    local seed = 15
    local function byte()
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed >> 16 & 0xff
    end
    for n = 0, 70 do
      local bytes = {}
      for i = 1, n do bytes[i] = string.char(byte()) end
      -- High bytes first: the eight-byte groups are negative integers.
      if n > 0 then bytes[1] = "\255" end
      local bpf = table.concat(bytes)
      local slow = bpf:gsub(".", function(c) return string.format("%02x", c:byte()) end)
      assert.equal(slow, registry.hex(bpf), "length " .. n)
      local rec = {}
      registry.confinement({ seccomp_bpf = bpf }, rec)
      assert.equal(slow, rec.seccomp)
      assert.equal(bpf, registry.target(rec).seccomp_bpf)
    end
  end)

  it("escapes exactly the control bytes, '%', '=' and bytes over 127", function()
    for b = 0, 255 do
      local c = string.char(b)
      local must = b < 32 or b == 127 or c == "%" or c == "=" or b > 127
      local rec = { name = "web", pid = 42, start = 1, supervisor = 41, supervisor_start = 1, uid = 0,
                    pidns = 1, created = 1, root = "a" .. c .. "b" }
      local data = registry.encode(rec)
      local line = data:match("\nroot=[^\n]*\n")
      assert.equal(must and string.format("\nroot=a%%%02Xb\n", b) or ("\nroot=a" .. c .. "b\n"), line, "byte " .. b)
      assert.are.same(rec, registry.decode(data))
    end
  end)

  it("rejects what is not a record", function()
    assert.is_nil(registry.decode("garbage"))
    assert.is_nil(registry.decode("name=x\n")) -- no supervisor
    assert.is_nil(registry.decode("name=x\nsupervisor=12abc\n"))
    assert.is_nil(registry.decode(""))
  end)

  it("formats --list as a table and as JSON", function()
    local recs = { { name = "web", pid = 42, root = "/srv/web", command = { "nginx", "-g", "a\"b" }, created = os.time() - 5 } }
    local text = registry.format(recs)
    assert.matches("^NAME%s+PID%s+ROOT%s+UPTIME%s+COMMAND\n", text)
    assert.matches("\nweb%s+42 /srv/web%s+%d+s nginx %-g a\"b\n$", text)
    local json = registry.format(recs, true)
    assert.matches('^%[{"name":"web","pid":42,"root":"/srv/web","command":%["nginx","%-g","a\\"b"%],"created":%d+,"uptime":%d+}%]\n$', json)
    -- Bytes that are not UTF-8 do not break the JSON.
    json = registry.format({ { name = "x", pid = 1, command = { "\255a\n" }, created = 1 } }, true)
    assert.matches('"command":%["\239\191\189a\\n"%]', json)
  end)
end)
