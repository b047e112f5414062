-- The classic option parser.

local cli = require("pflask.cli")

--- Parse and return the spec, asserting the action is "run".
local function run(argv)
  local spec, action = cli.parse(argv)
  assert.equal("run", action)
  return spec
end

--- Assert that `argv` parses but its plan fails with exactly `message` and
--- status 125: the rules about the container live in container.plan(),
--- for recipes and the command line alike.
local function plan_fails(argv, message)
  local spec = run(argv)
  local ok, e = pcall(require("pflask.container").plan, spec)
  assert.is_false(ok, "expected an error: " .. message)
  assert.is_table(e, tostring(e))
  assert.equal(125, e.status)
  assert.equal(message, e.message)
end

--- Assert that parsing `argv` fails with exactly `message` and status 125.
local function fails(argv, message)
  local ok, e = pcall(cli.parse, argv)
  assert.is_false(ok, "expected an error: " .. message)
  assert.is_table(e, tostring(e))
  assert.equal(125, e.status)
  assert.equal(message, e.message)
end

describe("cli.parse", function()
  describe("defaults", function()
    it("run the shell in mount, pid, ipc, uts and cgroup namespaces", function()
      local spec, action = cli.parse({})
      assert.equal("run", action)
      assert.same({
        namespaces = { mount = true, pid = true, ipc = true, uts = true, cgroup = true, net = false, time = false },
        mounts = {}, netifs = {}, cgroups = {}, caps = {}, setenv = {}, limits = {},
        ephemeral = false, detach = false, keepenv = false, init = "auto", no_new_privs = false,
      }, spec)
      assert.is_nil(spec.command)
      assert.is_nil(spec.namespaces.user)
    end)
  end)

  describe("command", function()
    it("is everything after the options", function()
      assert.same({ "ls", "-a" }, run({ "ls", "-a" }).command)
    end)

    it("starts at the first argument that is not an option", function()
      local spec = run({ "--user=me", "chromium", "--disable-setuid-sandbox", "-k" })
      assert.same({ "chromium", "--disable-setuid-sandbox", "-k" }, spec.command)
      assert.equal("me", spec.user)
      assert.is_false(spec.keepenv)
    end)

    it("starts after --", function()
      assert.same({ "--chroot", "x" }, run({ "-k", "--", "--chroot", "x" }).command)
      assert.same({ "--" }, run({ "--", "--" }).command)
    end)

    it("is nil after a final --", function()
      assert.is_nil(run({ "-k", "--" }).command)
    end)

    it("can be a lone -", function()
      assert.same({ "-", "-k" }, run({ "-", "-k" }).command)
    end)

    it("does not alter argv", function()
      local argv = { "-k", "ls" }
      run(argv)
      assert.same({ "-k", "ls" }, argv)
    end)
  end)

  describe("value options", function()
    -- Each option in its four spellings gives the same field.
    local cases = {
      { "r", "chroot", "/srv/debian", "root" },
      { "c", "chdir", "/home", "chdir" },
      { "t", "hostname", "box", "hostname" },
      { "u", "user", "alice", "user" },
    }
    for _, c in ipairs(cases) do
      local short, long, value, field = c[1], c[2], c[3], c[4]
      it("--" .. long .. " sets " .. field, function()
        assert.equal(value, run({ "--" .. long .. "=" .. value })[field])
        assert.equal(value, run({ "--" .. long, value })[field])
        assert.equal(value, run({ "-" .. short, value })[field])
        assert.equal(value, run({ "-" .. short .. value })[field])
      end)
    end

    it("take values that look like options", function()
      assert.equal("-k", run({ "--chroot", "-k" }).root)
      assert.equal("--", run({ "-r", "--" }).root)
      assert.equal("a=b", run({ "--chroot=a=b" }).root)
    end)

    it("--mount parses and keeps the order", function()
      local want = {
        { type = "bind", source = "/a", target = "/b", readonly = false },
        { type = "tmp", target = "/t" },
        { type = "bind", source = "/c", target = "/d", readonly = true },
        { type = "overlay", upper = "/u", target = "/o", work = "/w" },
      }
      assert.same(want, run({ "--mount=bind:/a:/b", "--mount", "tmp,/t", "-m", "bind-ro:/c:/d",
        "-moverlay:/u:/o:/w" }).mounts)
    end)

    it("--user-map fills uid_map and gid_map", function()
      local spec = run({ "--user-map=0:100000:1000", "--user-map", "1000,1000,1", "-e", "1001:101001:100",
        "-e2000:200000:10" })
      local want = {
        { inside = 0, outside = 100000, count = 1000 },
        { inside = 1000, outside = 1000, count = 1 },
        { inside = 1001, outside = 101001, count = 100 },
        { inside = 2000, outside = 200000, count = 10 },
      }
      assert.same(want, spec.uid_map)
      assert.same(want, spec.gid_map)
      assert.are_not.equal(spec.uid_map, spec.gid_map)
      assert.are_not.equal(spec.uid_map[1], spec.gid_map[1])
      assert.is_true(spec.namespaces.user)
    end)

    it("--cgroup takes a comma list, as pflask 0.2 did", function()
      assert.same({ "cpu", "memory", "pids" }, run({ "--cgroup=cpu,memory", "-gpids" }).cgroups)
    end)

    it("--user-map takes a comma list of colon maps, as pflask 0.2 did", function()
      local spec = run({ "--user-map=0:100000:1000,1000:101000:1000" })
      assert.same({ { inside = 0, outside = 100000, count = 1000 }, { inside = 1000, outside = 101000, count = 1000 } },
        spec.uid_map)
      fails({ "--user-map=0:100000:1000,5:200000:1" }, "--user-map: ranges 0:100000:1000 and 5:200000:1 overlap")
      fails({ "--user-map=0:100000:1000," }, "--user-map: '' is not CONT:HOST:COUNT")
    end)

    it("--mount takes a comma list and bind flags; --read-only", function()
      local spec = run({ "--mount=bind:/a:/b:nosuid,tmp:/c", "-m", "dir:/d", "--read-only" })
      assert.same({ { type = "bind", source = "/a", target = "/b", readonly = false, nosuid = true },
                    { type = "tmp", target = "/c" }, { type = "dir", target = "/d" } }, spec.mounts)
      assert.is_true(spec.readonly_root)
      assert.is_nil(run({}).readonly_root)
    end)

    it("--cgroup collects controllers", function()
      assert.same({ "cpu", "memory", "name=systemd", "pids" },
        run({ "--cgroup=cpu", "--cgroup", "memory", "-g", "name=systemd", "-gpids" }).cgroups)
    end)

    it("--caps accumulates", function()
      assert.same({ { op = "-", name = "all" }, { op = "+", name = "chown" }, { op = "+", name = "kill" },
        { op = "-", name = "net_raw" }, { op = "+", name = "sys_time" } },
        run({ "--caps=-all,chown", "--caps", "KILL", "-b", "-net_raw", "-bcap_sys_time" }).caps)
    end)

    it("--attach takes a pid", function()
      assert.equal(42, run({ "--attach=42" }).attach)
      assert.equal(42, run({ "--attach", "42" }).attach)
      assert.equal(7, run({ "-a", "007" }).attach)
      assert.equal(1, run({ "-a1" }).attach)
      assert.equal(math.type(run({ "-a1" }).attach), "integer")
    end)

    it("--exec takes a pid or a name, and needs a command", function()
      local spec = run({ "--exec=42", "--", "ls", "-l" })
      assert.equal(42, spec.exec)
      assert.same({ "ls", "-l" }, spec.command)
      assert.equal("web", run({ "--exec", "web", "true" }).exec)
      fails({ "--exec=web" }, "--exec: needs a command (pflask --exec=web -- COMMAND)")
      fails({ "--exec=0", "true" }, "--exec: '0' is not a process id")
      fails({ "--exec=a/b", "true" }, "--exec: 'a/b' is neither a process id nor a name: a name may hold only letters, digits, '_', '.' and '-', and starts with a letter or digit")
      fails({ "--exec=web", "--detach", "true" }, "--exec: cannot be used with --detach")
      fails({ "--exec=web", "--hostname=x", "true" }, "--exec: cannot be used with --hostname")
      fails({ "--exec=web", "-k", "true" }, "--exec: cannot be used with --keepenv")
      local with = run({ "--exec=web", "--user=alice", "--chdir=/tmp", "--setenv=A=1", "--", "true" })
      assert.equal("alice", with.user)
      assert.equal("/tmp", with.chdir)
    end)

    it("--setenv collects variables in order", function()
      assert.same({ { name = "A", value = "1" }, { name = "B", value = "x=y" }, { name = "_c9", value = "" },
        { name = "D", value = "4" }, { name = "E", value = "5" } },
        run({ "--setenv=A=1,B=x=y", "--setenv", "_c9=", "-s", "D=4", "-sE=5" }).setenv)
    end)
  end)

  describe("--keep-fd", function()
    it("collects fd numbers, repeatable and as comma lists, left to plan() to check", function()
      assert.same({ "3", "7", "9" }, run({ "--keep-fd=3", "--keep-fd", "7,9", "--", "true" }).pass_fds)
      assert.same({ "x", "" }, run({ "--keep-fd=x,", "--", "true" }).pass_fds)
      assert.is_nil(run({ "true" }).pass_fds)
    end)
  end)

  describe("--netif", function()
    it("alone makes a network namespace with only lo", function()
      local spec = run({ "--netif" })
      assert.same({ { type = "none" } }, spec.netifs)
      assert.is_true(spec.namespaces.net)
    end)

    it("takes its value only attached", function()
      assert.same({ { type = "move", device = "eth1", name = "eth0" } }, run({ "--netif=eth1:eth0" }).netifs)
      assert.same({ { type = "veth", outside = "a", inside = "b" } }, run({ "-nveth,a,b" }).netifs)
    end)

    it("followed by a separate word is bare, and the word is the command", function()
      local spec = run({ "--netif", "foo", "bar" })
      assert.same({ { type = "none" } }, spec.netifs)
      assert.same({ "foo", "bar" }, spec.command)
      spec = run({ "-n", "eth0:x" })
      assert.same({ { type = "none" } }, spec.netifs)
      assert.same({ "eth0:x" }, spec.command)
    end)

    it("repeats", function()
      assert.same({ { type = "none" }, { type = "macvlan", master = "eth0", name = "mv0" } },
        run({ "-n", "--netif=macvlan:eth0:mv0" }).netifs)
    end)
  end)

  describe("flags", function()
    local cases = {
      { "w", "ephemeral", function(s) return s.ephemeral end, { "-r", "/x" } },
      { "d", "detach", function(s) return s.detach end, {} },
      { "k", "keepenv", function(s) return s.keepenv end, {} },
    }
    for _, c in ipairs(cases) do
      local short, long, get, extra = c[1], c[2], c[3], c[4]
      it("--" .. long, function()
        assert.is_true(get(run({ "--" .. long, table.unpack(extra) })))
        assert.is_true(get(run({ "-" .. short, table.unpack(extra) })))
        assert.is_false(get(run(extra)))
      end)
    end

    local ns = { U = "user", M = "mount", N = "net", I = "ipc", H = "uts", P = "pid" }
    local long = { U = "no-userns", M = "no-mountns", N = "no-netns", I = "no-ipcns", H = "no-utsns",
      P = "no-pidns" }
    for short, name in pairs(ns) do
      it("--" .. long[short] .. " turns off the " .. name .. " namespace", function()
        assert.is_false(run({ "--" .. long[short] }).namespaces[name])
        assert.is_false(run({ "-" .. short }).namespaces[name])
      end)
    end

    it("bundle", function()
      local spec = run({ "-kUPd", "ls" })
      assert.is_true(spec.keepenv)
      assert.is_true(spec.detach)
      assert.is_false(spec.namespaces.user)
      assert.is_false(spec.namespaces.pid)
      assert.same({ "ls" }, spec.command)
    end)

    it("bundle with a value option last", function()
      assert.equal("/srv", run({ "-kr/srv" }).root)
      local spec = run({ "-kr", "/srv", "ls" })
      assert.equal("/srv", spec.root)
      assert.is_true(spec.keepenv)
      assert.same({ "ls" }, spec.command)
      assert.equal("Ik", run({ "-kuIk" }).user)
    end)

    it("bundle with --netif's optional value", function()
      assert.same({ { type = "none" } }, run({ "-kn" }).netifs)
      assert.same({ { type = "veth", outside = "a", inside = "b" } }, run({ "-knveth:a:b" }).netifs)
    end)

    it("may repeat", function()
      assert.is_true(run({ "-k", "--keepenv", "-kk" }).keepenv)
    end)
  end)

  describe("user namespace", function()
    it("is automatic by default", function()
      assert.is_nil(run({}).namespaces.user)
    end)

    it("is asked for by --user and --user-map", function()
      assert.is_true(run({ "--user=me" }).namespaces.user)
      assert.is_true(run({ "--user-map=0:1000:1" }).namespaces.user)
    end)

    it("is refused by --no-userns, which wins over --user", function()
      assert.is_false(run({ "--user=me", "--no-userns" }).namespaces.user)
      assert.is_false(run({ "-U", "-u", "me" }).namespaces.user)
    end)
  end)

  describe("init", function()
    it("is auto by default, pid1 or reaper on request", function()
      assert.equal("auto", run({}).init)
      assert.equal("pid1", run({ "--as-pid1" }).init)
      assert.equal("reaper", run({ "--as-pid2" }).init)
    end)
  end)

  describe("help and version", function()
    it("stop parsing", function()
      assert.same({ nil, "help" }, { cli.parse({ "--help" }) })
      assert.same({ nil, "help" }, { cli.parse({ "-h", "--frobnicate" }) })
      assert.same({ nil, "help" }, { cli.parse({ "-kh" }) })
      assert.same({ nil, "version" }, { cli.parse({ "--version" }) })
      assert.same({ nil, "version" }, { cli.parse({ "-r", "/x", "-V", "--netif=bad" }) })
    end)

    it("come after the options before them", function()
      fails({ "--frobnicate", "--help" }, "--frobnicate: unknown option (see pflask --help)")
    end)

    it("are not options after the command", function()
      assert.same({ "ls", "--help" }, run({ "ls", "--help" }).command)
    end)
  end)

  describe("errors", function()
    it("unknown options", function()
      fails({ "--frobnicate" }, "--frobnicate: unknown option (see pflask --help)")
      fails({ "--frobnicate=1" }, "--frobnicate: unknown option (see pflask --help)")
      fails({ "-x" }, "-x: unknown option (see pflask --help)")
      fails({ "-kx" }, "-x: unknown option (see pflask --help)")
      fails({ "--as-pid3" }, "--as-pid3: unknown option (see pflask --help)")
    end)

    it("unique prefixes of long options name them, as getopt_long accepts", function()
      assert.equal("/x", run({ "--chr=/x" }).root)
      assert.equal("x", run({ "--host", "x" }).hostname)
      assert.is_true(run({ "--read" }).readonly_root)
      assert.is_true(run({ "--ephemeral", "--chroot=/x" }).ephemeral)
      fails({ "--keep" }, "--keep: ambiguous option (could be --keep-fd, --keepenv)")
      fails({ "--no" }, "--no: ambiguous option (could be --no-new-privs, --no-userns, --no-mountns, --no-netns, --no-ipcns, --no-utsns, --no-pidns)")
      fails({ "--chr" }, "--chroot: requires a value")
      fails({ "--keepe=1" }, "--keepenv: takes no value")
      fails({ "--chroot=/a", "--chr=/b" }, "--chroot: given more than once")
    end)

    it("missing values", function()
      fails({ "--chroot" }, "--chroot: requires a value")
      fails({ "-r" }, "--chroot: requires a value")
      fails({ "-kr" }, "--chroot: requires a value")
      fails({ "--mount" }, "--mount: requires a value")
      fails({ "-k", "--user-map" }, "--user-map: requires a value")
    end)

    it("values given to flags", function()
      fails({ "--keepenv=1" }, "--keepenv: takes no value")
      fails({ "--keepenv=" }, "--keepenv: takes no value")
      fails({ "--no-userns=yes" }, "--no-userns: takes no value")
      fails({ "--help=1" }, "--help: takes no value")
    end)

    it("empty values", function()
      fails({ "--chroot=" }, "--chroot: value is empty, expected DIR")
      fails({ "-r", "" }, "--chroot: value is empty, expected DIR")
      fails({ "--chdir=" }, "--chdir: value is empty, expected DIR")
      fails({ "--hostname=" }, "--hostname: value is empty, expected NAME")
      fails({ "--user=" }, "--user: value is empty, expected NAME")
      fails({ "--setenv=" }, "--setenv: value is empty, expected NAME=VALUE[,NAME=VALUE...]")
      fails({ "--netif=" }, "--netif: empty value (use --netif alone for a namespace with only lo)")
    end)

    it("single-value options given twice", function()
      fails({ "-r", "/a", "--chroot=/b" }, "--chroot: given more than once")
      fails({ "-c/a", "-c/a" }, "--chdir: given more than once")
      fails({ "-t", "a", "-t", "b" }, "--hostname: given more than once")
      fails({ "-u", "a", "-u", "b" }, "--user: given more than once")
      fails({ "-a1", "-a2" }, "--attach: given more than once")
    end)

    it("--hostname", function()
      assert.equal(string.rep("h", 64), run({ "--hostname=" .. string.rep("h", 64) }).hostname)
      local long = string.rep("h", 65)
      fails({ "--hostname=" .. long }, "--hostname: '" .. long .. "' is longer than 64 characters")
      fails({ "--hostname=a\0b" }, "--hostname: contains a NUL byte")
    end)

    it("--mount, --netif, --user-map and --caps values, named in long form", function()
      fails({ "-m", "bnd:/a:/b" }, "--mount: 'bnd' is not a mount type (bind, bind-ro, dir, overlay, symlink, tmp)")
      fails({ "-mbind:/a" }, "--mount: 'bind:/a' needs 2 paths (bind:SRC:DST[:FLAGS])")
      fails({ "-neth0:abcdefghijklmnop" }, "--netif: interface name 'abcdefghijklmnop' is longer than 15 characters")
      fails({ "-e", "0:1000" }, "--user-map: '0:1000' is not CONT:HOST:COUNT")
      fails({ "-b", "chwon" }, "--caps: 'chwon' is not a capability")
    end)

    it("--user-map ranges that overlap", function()
      fails({ "--user-map=0:1000:10", "--user-map=5:2000:1" }, "--user-map: ranges 0:1000:10 and 5:2000:1 overlap")
      fails({ "-e0:1000:10", "-e100:1005:1" }, "--user-map: ranges 0:1000:10 and 100:1005:1 overlap")
    end)

    it("--caps 'all' after other entries", function()
      fails({ "--caps=chown", "--caps=-all" }, "--caps: 'all' must come first")
    end)

    it("--cgroup", function()
      local want = "is not a controller name ([a-z0-9_]+ or name=[a-z0-9_]+)"
      fails({ "--cgroup=CPU" }, "--cgroup: 'CPU' " .. want)
      fails({ "--cgroup=" }, "--cgroup: '' " .. want)
      fails({ "-g", "cpu,Memory" }, "--cgroup: 'Memory' " .. want)
      fails({ "-g", "cpu," }, "--cgroup: '' " .. want)
      fails({ "-g", "cpu,cpu" }, "--cgroup: 'cpu' given twice")
      fails({ "-g", "name=" }, "--cgroup: 'name=' " .. want)
      fails({ "-g", "../x" }, "--cgroup: '../x' " .. want)
      fails({ "-g", "cpu", "-gcpu" }, "--cgroup: 'cpu' given twice")
    end)

    it("--memory, --pids-max and --cpus values", function()
      for _, v in ipairs({ "", "x", "-1", "1X", "12MM", "0x10", "1e9", "M", " 5M" }) do
        fails({ "--memory=" .. v }, "--memory: '" .. v .. "' is not a size (bytes, or a number with K, M, G or T: 512M)")
      end
      fails({ "--memory=100" }, "--memory: '100' is below one page (4096 bytes)")
      fails({ "--memory=99999999T" }, "--memory: '99999999T' is too large")
      for _, v in ipairs({ "", "0", "-1", "1.5", "x", "1e3", "9999999999" }) do
        fails({ "--pids-max=" .. v }, "--pids-max: '" .. v .. "' is not a positive number of processes")
      end
      for _, v in ipairs({ "", "0", "0.001", "-1", "x", "1,5", "1e2", "inf", "nan" }) do
        fails({ "--cpus=" .. v }, "--cpus: '" .. v .. "' is not a number of CPUs (0.01 or more, e.g. 1.5)")
      end
      fails({ "--memory=1M", "--memory=2M" }, "--memory: given more than once")
    end)

    it("--user-map=subordinate alone", function()
      fails({ "-e", "subordinate", "-e", "0:1000:1" }, "--user-map: 'subordinate' cannot be combined with other maps")
      fails({ "-e", "0:1000:1", "-e", "subordinate" }, "--user-map: 'subordinate' cannot be combined with other maps")
    end)

    it("--attach", function()
      for _, v in ipairs({ "0", "99999999999", "2147483648" }) do
        fails({ "--attach=" .. v }, "--attach: '" .. v .. "' is not a process id")
      end
      -- Anything else that is not digits must be a valid container name.
      local chars = "may hold only letters, digits, '_', '.' and '-', and starts with a letter or digit"
      for _, v in ipairs({ "-1", "+1", ".5", "a b", "a/b" }) do
        fails({ "--attach=" .. v }, "--attach: '" .. v .. "' is neither a process id nor a name: a name " .. chars)
      end
      fails({ "--attach=" }, "--attach: '' is neither a process id nor a name: a name must be 1 to 64 characters")
      fails({ "-a", "-1" }, "--attach: '-1' is neither a process id nor a name: a name " .. chars)
      -- A name is kept as it is, for the registry to resolve.
      assert.are.equal("web", (cli.parse({ "--attach=web" })).attach)
      assert.are.equal(42, (cli.parse({ "--attach=42" })).attach)
    end)

    it("--name, --list and --json", function()
      assert.are.equal("web", (cli.parse({ "--name=web", "true" })).name)
      fails({ "--name=" }, "--name: value is empty, expected NAME")
      fails({ "--name=a", "--name=b" }, "--name: given more than once")
      assert.are.same({ nil, "list" }, { cli.parse({ "--list" }) })
      assert.are.same({ nil, "list-json" }, { cli.parse({ "--json", "--list" }) })
      fails({ "--json" }, "--json: needs --list")
    end)

    it("--setenv", function()
      fails({ "--setenv=A" }, "--setenv: 'A' is not NAME=VALUE")
      fails({ "--setenv=A=1,B" }, "--setenv: 'B' is not NAME=VALUE")
      fails({ "--setenv=A=1,,B=2" }, "--setenv: empty entry in 'A=1,,B=2'")
      fails({ "--setenv=A=1," }, "--setenv: empty entry in 'A=1,'")
      local want = "is not a variable name (letters, digits and _, not starting with a digit)"
      fails({ "-s", "1A=x" }, "--setenv: '1A' " .. want)
      fails({ "-s", "=x" }, "--setenv: '' " .. want)
      fails({ "-s", "A-B=x" }, "--setenv: 'A-B' " .. want)
    end)
  end)

  describe("conflicts", function()
    it("--chroot and --mount need a mount namespace", function()
      plan_fails({ "--chroot=/x", "--no-mountns" }, "--chroot: needs a mount namespace (drop --no-mountns)")
      plan_fails({ "-M", "-r", "/x" }, "--chroot: needs a mount namespace (drop --no-mountns)")
      plan_fails({ "-M", "-m", "tmp:/x" }, "--mount: needs a mount namespace (drop --no-mountns)")
    end)

    it("--ephemeral-dir takes a directory, once", function()
      assert.equal("/x", run({ "-w", "-r", "/r", "--ephemeral-dir=/x" }).ephemeral_dir)
      fails({ "-w", "-r", "/r", "--ephemeral-dir=" }, "--ephemeral-dir: value is empty, expected DIR")
    end)

    it("--ephemeral needs --chroot", function()
      plan_fails({ "--ephemeral" }, "--ephemeral: needs --chroot")
      assert.is_true(run({ "-w", "-r", "/x" }).ephemeral)
    end)

    it("--netif needs a network namespace", function()
      plan_fails({ "--netif", "--no-netns" }, "--netif: needs a network namespace (drop --no-netns)")
      plan_fails({ "-N", "--netif=eth0:x" }, "--netif: needs a network namespace (drop --no-netns)")
      assert.is_false(run({ "-N" }).namespaces.net)
    end)

    it("--hostname needs a UTS namespace", function()
      plan_fails({ "-H", "-t", "box" }, "--hostname: needs a UTS namespace (drop --no-utsns)")
    end)

    it("--user-map needs a user namespace", function()
      plan_fails({ "-U", "-e", "0:1000:1" }, "--user-map: needs a user namespace (drop --no-userns)")
    end)

    it("--attach and --detach", function()
      fails({ "-d", "-a", "1" }, "--attach: cannot be used with --detach")
    end)

    it("--as-pid1 and --as-pid2", function()
      fails({ "--as-pid2", "--as-pid1" }, "--as-pid1: cannot be used with --as-pid2")
      plan_fails({ "--as-pid1", "-P" }, "--as-pid1: needs a PID namespace (drop --no-pidns)")
      plan_fails({ "-P", "--as-pid2" }, "--as-pid2: needs a PID namespace (drop --no-pidns)")
    end)

    it("are found after parsing, whatever the order", function()
      fails({ "--ephemeral", "--frobnicate" }, "--frobnicate: unknown option (see pflask --help)")
    end)
  end)
end)

describe("privilege and resource options", function()
  it("parse --caps, --no-new-privs, --cgroup and the limits", function()
    local spec = run({ "--caps=-all,+CHOWN", "-b", "cap_kill", "--no-new-privs", "-g", "memory",
      "--memory=512M", "--pids-max=64", "--cpus=1.5", "true" })
    assert.same({ { op = "-", name = "all" }, { op = "+", name = "chown" }, { op = "+", name = "kill" } }, spec.caps)
    assert.is_true(spec.no_new_privs)
    assert.same({ "memory" }, spec.cgroups)
    assert.same({ memory = 512 * 1024 * 1024, pids = 64, cpus = 1.5 }, spec.limits)
  end)

  it("take memory sizes with binary suffixes", function()
    assert.equal(65536, run({ "--memory=65536" }).limits.memory)
    assert.equal(1536 * 1024 * 1024, run({ "--memory=1.5G" }).limits.memory)
    assert.equal(50 * 1024 * 1024, run({ "--memory=50MiB" }).limits.memory)
    assert.equal(2 * 1024 ^ 4, run({ "--memory=2t" }).limits.memory)
    assert.equal(8192, run({ "--memory=8k" }).limits.memory)
  end)

  it("take --user-map=subordinate", function()
    local spec = run({ "--user-map=subordinate" })
    assert.equal("subordinate", spec.uid_map)
    assert.equal("subordinate", spec.gid_map)
    assert.is_true(spec.namespaces.user)
  end)
end)

describe("cli.usage", function()
  it("lists every option", function()
    local text = cli.usage()
    assert.truthy(text:find("Usage: pflask [OPTIONS] [--] [COMMAND [ARGS...]]", 1, true))
    for _, o in ipairs({ "-r, --chroot=DIR", "-c, --chdir=DIR", "-t, --hostname=NAME", "-m, --mount=SPEC",
      "-n, --netif[=SPEC]", "-u, --user=NAME", "-e, --user-map=MAP", "-w, --ephemeral", "-g, --cgroup=CONTROLLER",
      "-b, --caps=LIST", "-d, --detach", "-a, --attach=PID", "-s, --setenv=LIST", "-k, --keepenv",
      "-U, --no-userns", "-M, --no-mountns", "-N, --no-netns", "-I, --no-ipcns", "-H, --no-utsns",
      "-P, --no-pidns", "    --as-pid1", "    --as-pid2", "-h, --help", "-V, --version" }) do
      assert.truthy(text:find(o, 1, true), o)
    end
  end)

  it("fits in 80 columns", function()
    for line in cli.usage():gmatch("[^\n]*") do
      assert.is_true(#line < 80, line)
    end
  end)

end)

describe("cli.VERSION", function()
  it("is the project's version (CMakeLists.txt), as the engine's", function()
    local want = require("pftest").project_version()
    assert.equal(want, cli.VERSION)
    assert.equal(want, require("pflask.core").version)
  end)
end)
