-- --netif and the network API with real interfaces and real traffic. Every
-- pflask here runs inside a network namespace this spec creates
-- ("ip netns exec pftest-..."), so the interfaces it makes, moves and
-- pings live there; the host's own interfaces are only read, to check that
-- nothing changed. Traffic only goes between that namespace and the
-- containers.
local pft = require "pftest"


local one_line = pft.one_line

local write_file = pft.write_file

-- Interface names of a namespace, sorted, one a line. Without netns: the
-- host's, but only the names this spec gives interfaces ("pft-*", and the
-- example recipe's "pfdemo*"): other specs running at the same time (boot
-- veths, other network namespaces' runs) add and remove their own.
local function links(netns)
  local prefix = netns and ("ip netns exec " .. netns .. " ") or ""
  local filter = netns and "" or " | grep -E '^(pft-|pfdemo)'"
  return (pft.capture(prefix .. "ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//'" .. filter .. " | sort"))
end

local function ipv6()
  return pft.capture("test -e /proc/sys/net/ipv6 && echo yes") == "yes"
end

describe("network", function()
  local netns = string.format("pftest-net-%d-%d", os.time() % 100000, math.random(0, 9999))
  local dir, host_before, ns_before

  setup(function()
    assert(pft.sh("ip netns add " .. netns) == 0, "ip netns add")
    dir = pft.tempdir("net")
  end)
  teardown(function()
    pft.sh("ip netns del " .. netns .. " 2>/dev/null")
    if dir then pft.rm_rf(dir) end
  end)

  local function sh_in(cmd)
    return pft.sh("ip netns exec " .. netns .. " sh -c " .. pft.quote(cmd))
  end
  local function capture_in(cmd)
    return pft.capture("ip netns exec " .. netns .. " sh -c " .. pft.quote(cmd))
  end

  -- pflask in the test namespace.
  local function run(args, opts)
    opts = opts or {}
    opts.prefix = "ip netns exec " .. netns
    return pft.pflask(args, opts)
  end
  local function recipe(name, text, args)
    local path = write_file(dir .. "/" .. name .. ".lua", text)
    local argv = { "--recipe=" .. path }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return run(argv)
  end

  before_each(function()
    host_before = links()
    ns_before = links(netns)
  end)
  after_each(function()
    assert.equal(host_before, links(), "host interfaces changed")
    assert.equal(ns_before, links(netns), "interfaces left in the test namespace")
  end)

  it("--netif alone gives a new network namespace with only lo, up", function()
    local r = run({ "--netif", "--", "sh", "-c", "readlink /proc/self/ns/net; ip -o link" })
    assert.equal(0, r.status, r.stderr)
    local id, rest = r.stdout:match("^(%S+)\n(.*)$")
    assert.are_not.equal(capture_in("readlink /proc/self/ns/net"), id)
    assert.equal(1, select(2, rest:gsub("\n", "")), rest)
    assert.matches("^1: lo: <LOOPBACK,UP", rest)
  end)

  it("creates a veth: INSIDE in the container, OUTSIDE on the host, both gone after", function()
    local r = run({ "--netif=veth:pft-out0:eth0", "--", "sh", "-c",
      "ip -o link show eth0; ip -o link | wc -l" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("eth0@if%d+: <BROADCAST,MULTICAST", r.stdout)
    assert.matches("\n2\n$", r.stdout)
  end)

  it("shows the outside end on the host while the container runs", function()
    local out = capture_in(pft.quote(pft.PFLASK) .. " --netif=veth:pft-out1:eth0 -- sleep 3 & "
      .. "for i in 1 2 3 4 5 6 7 8 9 10; do ip -o link show pft-out1 2>/dev/null && break; sleep 0.2; done; wait")
    assert.matches("pft%-out1@if%d+:", out)
  end)

  it("configures addresses, routes, MTU and MAC from the spec, and pings across", function()
    local v6 = ipv6()
    local r = recipe("veth", [[
      local pflask = require "pflask"
      local v6 = ...
      local addrs, outs = { "10.231.0.2/24" }, { "10.231.0.1/24" }
      if v6 == "yes" then addrs[2] = "fd31::2/64"; outs[2] = "fd31::1/64" end
      local cmd = "ip -o link show eth0; ip -o addr show dev eth0; ip route; busybox ping -c 1 -W 5 10.231.0.1"
      if v6 == "yes" then cmd = cmd .. " && busybox ping -c 1 -W 5 fd31::1" end
      return pflask.run{ command = { "sh", "-c", cmd },
        netifs = { { type = "veth", outside = "pft-ve1", inside = "eth0",
                     address = addrs, outside_address = outs, gateway = "10.231.0.1",
                     routes = { { dst = "10.232.0.0/16", gateway = "10.231.0.1" } },
                     mtu = 1400, mac = "02:00:00:31:00:02" } } }
    ]], { v6 and "yes" or "no" })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches("eth0@if%d+: <[^>]*UP[^>]*> mtu 1400", r.stdout)
    assert.matches("link/ether 02:00:00:31:00:02", r.stdout)
    assert.matches("inet 10.231.0.2/24", r.stdout, 1, true)
    assert.matches("default via 10.231.0.1 dev eth0", r.stdout, 1, true)
    assert.matches("10.232.0.0/16 via 10.231.0.1 dev eth0", r.stdout, 1, true)
    assert.matches("1 packets received", r.stdout, 1, true)
    if v6 then assert.matches("inet6 fd31::2/64", r.stdout, 1, true) end
  end)

  it("moves a host interface in under a new name and returns it under its own", function()
    assert(sh_in("ip link add pft-m1 type veth peer name pft-m2 && ip addr add 10.233.0.1/24 dev pft-m2 && ip link set pft-m2 up") == 0)
    finally(function() sh_in("ip link del pft-m1 2>/dev/null; ip link del pft-m2 2>/dev/null") end)
    local r = run({ "--netif=pft-m1:eth1", "--", "sh", "-c",
      "ip -o link | wc -l; ip -o link show eth1 && ip addr add 10.233.0.2/24 dev eth1 && ip link set eth1 up && busybox ping -c 1 -W 5 10.233.0.1" })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches("^2\n", r.stdout)
    assert.matches("eth1@if%d+:", r.stdout)
    assert.matches("1 packets received", r.stdout, 1, true)
    -- Back, still paired with its peer (a virtual device survived).
    assert.matches("^%d+: pft%-m1@pft%-m2:", capture_in("ip -o link show pft-m1"))
    -- The comma form too.
    r = run({ "--netif=pft-m1,x1", "--", "ip", "-o", "link", "show", "x1" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^%d+: pft%-m1@pft%-m2:", capture_in("ip -o link show pft-m1"))
  end)

  it("creates a macvlan on a veth the test made and pings through it", function()
    assert(sh_in("ip link add pft-l1 type veth peer name pft-l2 && ip addr add 10.234.0.1/24 dev pft-l2 && ip link set pft-l1 up && ip link set pft-l2 up") == 0)
    finally(function() sh_in("ip link del pft-l1 2>/dev/null") end)
    local r = recipe("macvlan", [[
      local pflask = require "pflask"
      return pflask.run{ command = { "sh", "-c", "ip -d -o link show mv0; busybox ping -c 1 -W 5 10.234.0.1" },
        netifs = { { type = "macvlan", master = "pft-l1", name = "mv0", address = "10.234.0.2/24" } } }
    ]])
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches("mv0@if%d+:.*macvlan mode bridge", r.stdout)
    assert.matches("1 packets received", r.stdout, 1, true)
    r = run({ "--netif=macvlan:pft-l1:mv1", "--", "ip", "-o", "link", "show", "mv1" })
    assert.equal(0, r.status, r.stderr)
  end)

  it("creates an ipvlan where the kernel has ipvlan, else fails cleanly", function()
    assert(sh_in("ip link add pft-i1 type veth peer name pft-i2 && ip addr add 10.235.0.1/24 dev pft-i2 && ip link set pft-i1 up && ip link set pft-i2 up") == 0)
    finally(function() sh_in("ip link del pft-i1 2>/dev/null") end)
    local supported = sh_in("ip link add link pft-i1 name pft-iv type ipvlan mode l2 2>/dev/null && ip link del pft-iv") == 0
    local r = run({ "--netif=ipvlan:pft-i1:iv0", "--", "sh", "-c",
      "ip addr add 10.235.0.2/24 dev iv0 && ip link set iv0 up && busybox ping -c 1 -W 5 10.235.0.1" })
    if supported then
      assert.equal(0, r.status, r.stderr .. r.stdout)
      assert.matches("1 packets received", r.stdout, 1, true)
    else
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("no ipvlan support", r.stderr, 1, true)
    end
  end)

  it("combines several --netif with other options", function()
    local root = pft.make_rootfs(pft.tempdir("netroot"))
    finally(function() pft.rm_rf(root) end)
    pft.sh("ln -sf busybox " .. root .. "/bin/ip")
    local r = run({ "--chroot=" .. root, "--hostname=netbox", "--netif=veth:pft-c1:e1",
      "--netif=veth:pft-c2:e2", "--netif", "--", "sh", "-c", "hostname; ip -o link | sed 's/@.*//' | cut -d' ' -f2" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("netbox\nlo:\ne1\ne2\n", r.stdout)
  end)

  it("cleans up when the command is not found or dies of a signal", function()
    local r = run({ "--netif=veth:pft-f1:eth0", "--", "/nonexistent/cmd" })
    assert.equal(127, r.status)
    assert.equal(ns_before, links(netns))
    r = run({ "--netif=veth:pft-f1:eth0", "--", "sh", "-c", "kill -9 $$" })
    assert.equal(137, r.status)
  end)

  it("lets recipes use the API inside (child_setup) and on the host (parent_setup)", function()
    local r = recipe("api", [[
      local pflask = require "pflask"
      local core = pflask.core
      local network = require "pflask.network"
      local host_seen
      local status = pflask.run{ command = { "sh", "-c", "ip -o addr show dev in0; ip route; busybox ping -c 1 -W 5 10.236.0.1" },
        netifs = { { type = "veth", outside = "pft-a1", inside = "in0" } },
        parent_setup = function(c)
          local ns = network.netns(c)
          assert(core.link_get("in0", ns))
          assert(core.addr_add("pft-a1", "10.236.0.1/24"))
          assert(core.link_set("pft-a1", { up = true, mtu = 1450 }))
          host_seen = core.link_get("pft-a1")
        end,
        child_setup = function()
          assert(core.link_set("in0", { up = true, mtu = 1450 }))
          assert(core.addr_add("in0", "10.236.0.2/24"))
          assert(core.route_add{ dst = "10.237.0.0/16", gateway = "10.236.0.1" })
        end }
      print("host", host_seen.name, host_seen.kind, host_seen.mtu, host_seen.up)
      return status
    ]])
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches("inet 10.236.0.2/24", r.stdout, 1, true)
    assert.matches("10.237.0.0/16 via 10.236.0.1 dev in0", r.stdout, 1, true)
    assert.matches("1 packets received", r.stdout, 1, true)
    assert.matches("host\tpft-a1\tveth\t1450\ttrue", r.stdout, 1, true)
  end)

  it("lists links, and removes addresses and routes, from inside", function()
    local r = recipe("api-del", [[
      local pflask = require "pflask"
      local core = pflask.core
      return pflask.run{ command = { "sh", "-c", "ip -o addr show dev lo; ip route" },
        netifs = { { type = "none" } },
        child_setup = function()
          local names = {}
          for _, l in ipairs(assert(core.link_list())) do names[#names + 1] = l.name end
          print("links " .. table.concat(names, ","))
          -- Two subnets: deleting an address takes its secondaries along.
          assert(core.addr_add("lo", "10.238.0.1/16"))
          assert(core.addr_add("lo", "10.240.0.1/16"))
          assert(core.route_add{ dst = "10.239.0.0/16", dev = "lo" })
          assert(core.route_add{ dst = "10.241.0.0/16", dev = "lo" })
          assert(core.route_del{ dst = "10.239.0.0/16", dev = "lo" })
          assert(core.addr_del("lo", "10.238.0.1/16"))
          io.stdout:flush()
        end }
    ]])
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches("links lo\n", r.stdout)
    assert.matches("inet 10.240.0.1/16", r.stdout, 1, true)
    assert.matches("10.241.0.0/16 dev lo", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("10.238.0.1", 1, true))
    assert.is_nil(r.stdout:find("10.239.0.0", 1, true))
  end)

  it("runs the example recipe: containers on a bridge ping each other", function()
    local r = run({ "--recipe=" .. pft.SOURCE_DIR .. "/recipes/examples/network.lua", "3", "pft-br0", "10.238.0" })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.matches("network: every container answered", r.stdout, 1, true)
    -- The recipe pings with the host's ping when there is one (iputils:
    -- "1 received"), else busybox's ("1 packets received"): either one
    -- reply line per waiting container, nothing lost.
    local replies = 0
    for line in r.stdout:gmatch("[^\n]+") do
      if line:match("^1 packets transmitted, 1 received, 0%% packet loss")
        or line:match("^1 packets transmitted, 1 packets received, 0%% packet loss") then
        replies = replies + 1
      end
    end
    assert.equal(2, replies, r.stdout)
  end)

  describe("refuses bad input with one line, exit 125, nothing left", function()
    local cases = {
      { { "--netif=pft-nope:eth0" }, "no interface 'pft-nope' on the host" },
      { { "--netif=veth:lo:eth0" }, "interface name 'lo' is already taken on the host" },
      { { "--netif=veth:pft-x1:eth0", "--netif=veth:pft-x2:eth0" }, "'eth0' is given twice" },
      { { "--netif=veth:pft-x1:eth0", "--netif=veth:pft-x1:eth1" }, "'pft-x1' is used twice" },
      { { "--netif=veth:pft-0123456789abc:eth0" }, "longer than 15 characters" },
      { { "--netif=macvlan:pft-nomaster:mv0" }, "no master interface 'pft-nomaster'" },
      { { "--netif=ipvlan:pft-nomaster:iv0" }, "no master interface 'pft-nomaster'" },
      { { "--netif=veth:pft-x1" }, "needs 2 interface names" },
      { { "--netif=veth:pft-x1:lo" }, "'lo' already exists in the container" },
      { { "--netif=lo:x" }, "lo cannot leave its namespace" },
      { { "--netif=veth:pft-x1:eth0", "--no-netns" }, "--no-netns" },
    }
    for _, case in ipairs(cases) do
      it(table.concat(case[1], " "), function()
        local args = {}
        for i, a in ipairs(case[1]) do args[i] = a end
        args[#args + 1] = "--"
        args[#args + 1] = "true"
        local r = run(args)
        assert.equal(125, r.status, r.stderr)
        assert.is_true(one_line(r.stderr), r.stderr)
        assert.matches("^pflask: %-%-netif", r.stderr)
        assert.matches(case[2], r.stderr, 1, true)
      end)
    end

    it("a second veth whose outside name exists: the first is not left behind", function()
      assert(sh_in("ip link add pft-t1 type veth peer name pft-t2") == 0)
      finally(function() sh_in("ip link del pft-t1 2>/dev/null") end)
      local r = run({ "--netif=veth:pft-ok:eth0", "--netif=veth:pft-t2:eth1", "--", "true" })
      assert.equal(125, r.status)
      assert.matches("'pft-t2' is already taken on the host", r.stderr, 1, true)
    end)

    local spec_cases = {
      { '{ type = "veth", outside = "pft-x1" }', "missing field 'inside'" },
      { '{ type = "move", name = "eth0" }', "missing field 'device'" },
      { '{ type = "macvlan", name = "mv0" }', "missing field 'master'" },
      { '{ type = "bond", name = "b0" }', "is not an interface type" },
      { '{ type = "veth", outside = "pft-x1", inside = "eth0", address = "10.1.2.300/24" }', "is not an IPv4 or IPv6 address" },
      { '{ type = "veth", outside = "pft-x1", inside = "eth0", mtu = 10 }', "mtu must be" },
      { '{ type = "veth", outside = "pft-x1", inside = "eth0", mac = "zz" }', "is not a MAC address" },
      { '{ type = "veth", outside = "pft-x1", inside = "eth0", outside_master = "pft-nobr" }', "no bridge 'pft-nobr'" },
      { '{ type = "macvlan", master = "lo", name = "m0", mode = "l2" }', "is not a mode of macvlan" },
    }
    for _, case in ipairs(spec_cases) do
      it("spec " .. case[1], function()
        local r = recipe("bad", "return require('pflask').run{ command = { 'true' }, netifs = { " .. case[1] .. " } }")
        assert.equal(125, r.status, r.stderr)
        assert.is_true(one_line(r.stderr), r.stderr)
        assert.matches(case[2], r.stderr, 1, true)
      end)
    end
  end)

  describe("rootless", function()
    local user
    setup(function() user = pft.rootless_user() end)
    teardown(function() if user then user:remove() end end)
    local function run_user(args)
      return user:pflask(args)
    end

    it("gets an isolated network namespace with lo up", function()
      local r = run_user({ "--netif", "--", "sh", "-c", "readlink /proc/self/ns/net; ip -o link; id -u" })
      assert.equal(0, r.status, r.stderr)
      local id, links_, uid = r.stdout:match("^(%S+)\n(.-)\n(%d+)\n$")
      assert.are_not.equal(pft.capture("readlink /proc/self/ns/net"), id)
      assert.matches("^1: lo: <LOOPBACK,UP", links_)
      assert.is_nil(links_:find("\n"), links_)
      assert.equal("0", uid)
    end)

    it("is refused interfaces on the host, in one line", function()
      local r = run_user({ "--netif=veth:pft-u1:eth0", "--", "true" })
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("needs root on the host", r.stderr, 1, true)
    end)
  end)
end)
