-- The --mount, --netif, --user-map and --caps value parsers.

local mount = require("pflask.spec.mount")
local netif = require("pflask.spec.netif")
local usermap = require("pflask.spec.usermap")
local caps = require("pflask.spec.caps")

--- Assert that fn(...) raises a usage error with exactly `message`.
local function fails(message, fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected an error: " .. message)
  assert.is_table(e, tostring(e))
  assert.equal(125, e.status)
  assert.equal(message, e.message)
end

describe("spec.mount", function()
  local function parse(v) return mount.parse(v, "--mount") end

  it("parses bind and bind-ro", function()
    assert.same({ type = "bind", source = "/a", target = "/b", readonly = false }, parse("bind:/a:/b"))
    assert.same({ type = "bind", source = "rel/a", target = "/b", readonly = true }, parse("bind-ro:rel/a:/b"))
  end)

  it("parses tmp and overlay", function()
    assert.same({ type = "tmp", target = "/tmp" }, parse("tmp:/tmp"))
    assert.same({ type = "overlay", upper = "up", target = "/usr", work = "/w" }, parse("overlay:up:/usr:/w"))
  end)

  it("accepts commas, chosen by the character after the type", function()
    assert.same({ type = "bind", source = "/a", target = "/b", readonly = false }, parse("bind,/a,/b"))
    assert.same({ type = "tmp", target = "/x" }, parse("tmp,/x"))
    assert.same({ type = "overlay", upper = "/u", target = "/t", work = "/w" }, parse("overlay,/u,/t,/w"))
  end)

  it("keeps the other separator inside paths", function()
    assert.same({ type = "bind", source = "/a:b", target = "/c:d", readonly = true }, parse("bind-ro,/a:b,/c:d"))
    assert.same({ type = "tmp", target = "/a,b" }, parse("tmp:/a,b"))
  end)

  it("rejects unknown and missing types", function()
    fails("--mount: 'bnd' is not a mount type (bind, bind-ro, dir, overlay, symlink, tmp)", parse, "bnd:/a:/b")
    fails("--mount: 'bnd' is not a mount type (bind, bind-ro, dir, overlay, symlink, tmp)", parse, "bnd")
    fails("--mount: 'BIND' is not a mount type (bind, bind-ro, dir, overlay, symlink, tmp)", parse, "BIND,/a,/b")
    fails("--mount: ':/a:/b' does not start with a mount type (bind, bind-ro, dir, overlay, symlink, tmp)", parse, ":/a:/b")
    fails("--mount: empty value (bind, bind-ro, dir, overlay, symlink, tmp)", parse, "")
  end)

  it("rejects a wrong number of paths", function()
    fails("--mount: 'bind:/a' needs 2 paths (bind:SRC:DST[:FLAGS])", parse, "bind:/a")
    fails("--mount: '/c' is not a bind flag (nosuid, nodev, noexec, optional)", parse, "bind:/a:/b:/c")
    fails("--mount: 'bind:/a:/b:nosuid:nodev' needs 2 paths (bind:SRC:DST[:FLAGS])", parse, "bind:/a:/b:nosuid:nodev")
    fails("--mount: 'bind-ro' needs 2 paths (bind-ro:SRC:DST[:FLAGS])", parse, "bind-ro")
    fails("--mount: 'tmp' needs 1 path (tmp:DST)", parse, "tmp")
    fails("--mount: 'tmp:/a:/b' needs 1 path (tmp:DST)", parse, "tmp:/a:/b")
    fails("--mount: 'overlay:/u:/t' needs 3 paths (overlay:UPPER:DST:WORK)", parse, "overlay:/u:/t")
    fails("--mount: 'bind,/a:/b' needs 2 paths (bind:SRC:DST[:FLAGS])", parse, "bind,/a:/b")
  end)

  it("rejects empty paths", function()
    fails("--mount: 'bind::/b' has an empty path (bind:SRC:DST[:FLAGS])", parse, "bind::/b")
    fails("--mount: 'bind:/a:' has an empty path (bind:SRC:DST[:FLAGS])", parse, "bind:/a:")
    fails("--mount: 'tmp:' has an empty path (tmp:DST)", parse, "tmp:")
    fails("--mount: 'overlay,/u,,/w' has an empty path (overlay:UPPER:DST:WORK)", parse, "overlay,/u,,/w")
  end)

  it("requires an absolute target", function()
    fails("--mount: tmp target 'x' must be an absolute path", parse, "tmp:x")
    fails("--mount: bind target 'b' must be an absolute path", parse, "bind:/a:b")
    fails("--mount: bind-ro target 'b' must be an absolute path", parse, "bind-ro:/a:b")
    fails("--mount: overlay target 't' must be an absolute path", parse, "overlay:/u:t:/w")
  end)

  it("parses dir and symlink", function()
    assert.same({ type = "dir", target = "/a/b" }, parse("dir:/a/b"))
    assert.same({ type = "symlink", to = "usr/lib", target = "/lib" }, parse("symlink:usr/lib:/lib"))
    assert.same({ type = "symlink", to = "/a:b", target = "/c" }, parse("symlink,/a:b,/c"))
    fails("--mount: 'dir:/a:/b' needs 1 path (dir:DST)", parse, "dir:/a:/b")
    fails("--mount: 'symlink:/a' needs 2 paths (symlink:TO:DST)", parse, "symlink:/a")
    fails("--mount: 'symlink::/a' has an empty path (symlink:TO:DST)", parse, "symlink::/a")
    fails("--mount: dir target 'a' must be an absolute path", parse, "dir:a")
    fails("--mount: symlink target 'b' must be an absolute path", parse, "symlink:/a:b")
  end)

  it("parses bind flags: a comma list after a third colon, or comma fields", function()
    assert.same({ type = "bind", source = "/a", target = "/b", readonly = false, nosuid = true, nodev = true },
      parse("bind:/a:/b:nosuid,nodev"))
    assert.same({ type = "bind", source = "/a", target = "/b", readonly = true, noexec = true, optional = true },
      parse("bind-ro,/a,/b,noexec,optional"))
    fails("--mount: 'suid' is not a bind flag (nosuid, nodev, noexec, optional)", parse, "bind:/a:/b:suid")
    fails("--mount: '' is not a bind flag (nosuid, nodev, noexec, optional)", parse, "bind:/a:/b:nosuid,")
    fails("--mount: '' is not a bind flag (nosuid, nodev, noexec, optional)", parse, "bind:/a:/b:")
    fails("--mount: 'tmp:/a:nosuid' needs 1 path (tmp:DST)", parse, "tmp:/a:nosuid")
  end)

  it("splits a list where a comma is followed by a mount type and ':'", function()
    local function list(v) return mount.parse_list(v, "--mount") end
    assert.same({ { type = "bind", source = "/a", target = "/b", readonly = false }, { type = "tmp", target = "/c" } },
      list("bind:/a:/b,tmp:/c"))
    -- The grammar's ambiguous case: flags stay with their bind.
    assert.same({ { type = "bind", source = "/a", target = "/b", readonly = false, nosuid = true, nodev = true },
                  { type = "tmp", target = "/c" } },
      list("bind:/a:/b:nosuid,nodev,tmp:/c"))
    -- Commas in paths that are not followed by TYPE: stay.
    assert.same({ { type = "tmp", target = "/a,b" }, { type = "dir", target = "/c,d" } }, list("tmp:/a,b,dir:/c,d"))
    -- The comma form is always one mount.
    assert.same({ { type = "bind", source = "/a:b", target = "/c", readonly = false } }, list("bind,/a:b,/c"))
    fails("--mount: 'tmp:x:y' needs 1 path (tmp:DST)", list, "tmp:/a,tmp:x:y")
    fails("--mount: tmp target 'x' must be an absolute path", list, "bind:/a:/b,tmp:x")
  end)

  it("names the option it is given", function()
    fails("-x: 'bnd' is not a mount type (bind, bind-ro, dir, overlay, symlink, tmp)", mount.parse, "bnd", "-x")
  end)
end)

describe("spec.netif", function()
  local function parse(v) return netif.parse(v, "--netif") end

  it("makes an empty namespace without a value", function()
    assert.same({ type = "none" }, parse(nil))
  end)

  it("moves a device", function()
    assert.same({ type = "move", device = "eth1", name = "eth0" }, parse("eth1:eth0"))
    assert.same({ type = "move", device = "eth1", name = "eth0" }, parse("eth1,eth0"))
  end)

  it("creates macvlan, ipvlan and veth", function()
    assert.same({ type = "macvlan", master = "eth0", name = "mv0" }, parse("macvlan:eth0:mv0"))
    assert.same({ type = "ipvlan", master = "eth0", name = "iv0" }, parse("ipvlan,eth0,iv0"))
    assert.same({ type = "veth", outside = "ve-box", inside = "host0" }, parse("veth:ve-box:host0"))
  end)

  it("accepts names of exactly 15 bytes", function()
    assert.same({ type = "veth", outside = "abcdefghijklmno", inside = "x" }, parse("veth:abcdefghijklmno:x"))
  end)

  it("rejects malformed values", function()
    fails("--netif: empty value (use --netif alone for a namespace with only lo)", parse, "")
    fails("--netif: 'eth0' is not DEV:NAME, macvlan:MASTER:NAME, ipvlan:MASTER:NAME or veth:OUTSIDE:INSIDE",
      parse, "eth0")
    fails("--netif: 'macvlna:eth0:mv0' is not DEV:NAME, macvlan:MASTER:NAME, ipvlan:MASTER:NAME or veth:OUTSIDE:INSIDE",
      parse, "macvlna:eth0:mv0")
    fails("--netif: 'macvlan:eth0' needs 2 interface names (macvlan:MASTER:NAME)", parse, "macvlan:eth0")
    fails("--netif: 'ipvlan' needs 2 interface names (ipvlan:MASTER:NAME)", parse, "ipvlan")
    fails("--netif: 'veth:a:b:c' needs 2 interface names (veth:OUTSIDE:INSIDE)", parse, "veth:a:b:c")
  end)

  it("rejects empty fields", function()
    local forms = "(DEV:NAME, macvlan:MASTER:NAME, ipvlan:MASTER:NAME or veth:OUTSIDE:INSIDE)"
    fails("--netif: 'eth0:' has an empty interface name " .. forms, parse, "eth0:")
    fails("--netif: ':eth0' has an empty interface name " .. forms, parse, ":eth0")
    fails("--netif: 'veth,,x' has an empty interface name " .. forms, parse, "veth,,x")
  end)

  it("rejects bad interface names", function()
    fails("--netif: interface name 'abcdefghijklmnop' is longer than 15 characters", parse, "eth0:abcdefghijklmnop")
    fails("--netif: interface name 'abcdefghijklmnop' is longer than 15 characters",
      parse, "macvlan:abcdefghijklmnop:x")
    fails("--netif: interface name '.' is not allowed", parse, "eth0:.")
    fails("--netif: interface name '..' is not allowed", parse, "veth:..:x")
    fails("--netif: interface name 'a/b' contains '/'", parse, "eth0:a/b")
    fails("--netif: interface name 'a,b' contains ','", parse, "eth0:a,b")
    fails("--netif: interface name 'a:b' contains ':'", parse, "eth0,a:b")
    fails("--netif: interface name 'a b' contains whitespace", parse, "eth0:a b")
    fails("--netif: interface name 'a\\tb' contains whitespace", parse, "veth:x:a\tb")
  end)

  it("checks names on their own", function()
    assert.has_no.errors(function() netif.check_name("eth0", "--netif") end)
    fails("--netif: empty interface name", netif.check_name, "", "--netif")
  end)
end)

describe("spec.usermap", function()
  local function parse(v) return usermap.parse(v, "--user-map") end

  it("parses both separators", function()
    assert.same({ inside = 0, outside = 100000, count = 65536 }, parse("0:100000:65536"))
    assert.same({ inside = 0, outside = 1000, count = 1 }, parse("0,1000,1"))
  end)

  it("accepts ranges that end right below 2^32-1", function()
    assert.same({ inside = 0, outside = 0, count = 4294967295 }, parse("0:0:4294967295"))
    assert.same({ inside = 4294967294, outside = 7, count = 1 }, parse("4294967294:7:1"))
  end)

  it("rejects what is not three decimal numbers", function()
    for _, v in ipairs({ "0:1000", "0:1000:1:1", "", "0", "a:b:c", "-1:0:1", "+1:0:1", "0x10:0:1",
      "1e3:0:1", "0:1000:", "0::1", "0:1000,1", " 0:1:1", "4294967296:0:1", "99999999999:0:1" }) do
      fails("--user-map: '" .. v .. "' is not CONT:HOST:COUNT", parse, v)
    end
  end)

  it("rejects an empty count", function()
    fails("--user-map: '0:1000:0' maps no ids (COUNT must be at least 1)", parse, "0:1000:0")
  end)

  it("rejects ranges past the last id", function()
    fails("--user-map: '4294967295:0:1' goes past id 4294967294", parse, "4294967295:0:1")
    fails("--user-map: '0:4294967000:1000' goes past id 4294967294", parse, "0:4294967000:1000")
    fails("--user-map: '1:0:4294967295' goes past id 4294967294", parse, "1:0:4294967295")
  end)

  it("detects overlaps inside and outside", function()
    local a = { inside = 0, outside = 1000, count = 10 }
    assert.is_true(usermap.overlap(a, { inside = 5, outside = 2000, count = 1 }))
    assert.is_true(usermap.overlap(a, { inside = 100, outside = 1009, count = 1 }))
    assert.is_false(usermap.overlap(a, { inside = 10, outside = 1010, count = 5 }))
    assert.equal("0:1000:10", usermap.format(a))
  end)
end)

describe("spec.caps", function()
  local function parse(v, into) return caps.parse(v, "--caps", into) end

  it("knows the 41 capabilities of Linux 6.x in order", function()
    assert.equal(41, #caps.names)
    assert.equal(40, caps.LAST)
    assert.equal("chown", caps.names[1])
    assert.equal("checkpoint_restore", caps.names[41])
    assert.equal(0, caps.numbers.chown)
    assert.equal(21, caps.numbers.sys_admin)
    assert.equal(38, caps.numbers.perfmon)
    assert.equal(40, caps.numbers.checkpoint_restore)
    for i, name in ipairs(caps.names) do
      assert.equal(i - 1, caps.numbers[name])
    end
  end)

  it("looks numbers up by any spelling", function()
    assert.equal(12, caps.number("CAP_NET_ADMIN"))
    assert.equal(12, caps.number("Net_Admin"))
    assert.is_nil(caps.number("chwon"))
  end)

  it("parses signs, case and the CAP_ prefix", function()
    assert.same({
      { op = "-", name = "all" }, { op = "+", name = "chown" }, { op = "+", name = "net_admin" },
      { op = "-", name = "sys_admin" }, { op = "+", name = "kill" },
    }, parse("-all,+chown,NET_ADMIN,-CAP_SYS_ADMIN,cap_kill"))
  end)

  it("accepts all first, with or without a sign", function()
    assert.same({ { op = "+", name = "all" } }, parse("ALL"))
    assert.same({ { op = "+", name = "all" } }, parse("+cap_all"))
  end)

  it("appends to earlier --caps", function()
    local list = parse("-all")
    assert.equal(list, parse("+chown", list))
    assert.same({ { op = "-", name = "all" }, { op = "+", name = "chown" } }, list)
  end)

  it("wants all first", function()
    fails("--caps: 'all' must come first", parse, "chown,-all")
    fails("--caps: 'all' must come first", parse, "-all", parse("chown"))
  end)

  it("rejects unknown names and empty entries", function()
    fails("--caps: 'chwon' is not a capability", parse, "chwon")
    fails("--caps: 'CAP_CHWON' is not a capability", parse, "-CAP_CHWON")
    fails("--caps: '+chown' is not a capability", parse, "++chown")
    fails("--caps: 'cap_' is not a capability", parse, "cap_")
    fails("--caps: '-' has no capability name after the sign", parse, "chown,-")
    fails("--caps: empty entry in 'chown,,kill'", parse, "chown,,kill")
    fails("--caps: empty entry in 'chown,'", parse, "chown,")
    fails("--caps: empty list (names like chown or -all,+net_admin)", parse, "")
  end)
end)
