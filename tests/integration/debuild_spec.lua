-- pflask-debuild (issue 8): a real build of a small source package in a
-- throwaway container of a bookworm base. The base is cached in a
-- directory the tests own (created on the first run: a few minutes of
-- debootstrap); the package, its results and a throwaway user are made
-- fresh. The builds need the network (the base's apt sources).
--
-- Checks: results and log next to the source tree owned by the invoking
-- user (SUDO_UID/SUDO_GID), the package installs and runs, the base is
-- byte for byte unchanged, two builds at once, no network by default and
-- --network, a failing build keeps its log, bad input, and nothing left on
-- the host. Then the attacks of issue 11 (item 7): a hostile package and a
-- hostile invoking user against pflask-debuild run as root through sudo.
--
-- The mirror for --create comes from PFLASK_TEST_MIRROR, else the host's
-- apt sources (pflask-debuild's own choice), else debootstrap's default.
local pft = require "pftest"

local CACHE = "/var/cache/pflask-test/debuild"
local BASE = CACHE .. "/base-bookworm-amd64"
local DEBUILD = (pft.PFLASK:match("^(.*)/[^/]*$") or ".") .. "/pflask-debuild"
local BUILD_TIMEOUT = 1200

local function write_file(path, data, mode)
  local f = assert(io.open(path, "w"))
  f:write(data)
  f:close()
  if mode then assert(pft.sh("chmod " .. mode .. " " .. pft.quote(path)) == 0) end
end

local read_file = pft.read_file

local function exists(path)
  return pft.sh("test -e " .. pft.quote(path)) == 0
end

local function owner(path)
  return (pft.capture("stat -c %u:%g " .. pft.quote(path)))
end

-- Everything about the base a build could change.
local function snapshot(dir)
  return (pft.capture("find " .. pft.quote(dir) .. " -printf '%p %y %s %T@ %m %U %G %l\\n' | sort"))
end

local function checksums(dir)
  return (pft.capture("cd " .. pft.quote(dir) .. " && sha256sum etc/passwd etc/apt/sources.list "
    .. "var/lib/dpkg/status usr/bin/dpkg-buildpackage etc/resolv.conf 2>&1"))
end

-- The builds' temporary layers go to a TMPDIR of the spec's own, so that
-- other specs (or another run of this one) do not blur the check.
local TMPDIR
local function tmp_entries()
  return (pft.capture("ls -A " .. TMPDIR))
end

--- A source package NAME 1.0 in PARENT/NAME-1.0: one arch:all binary
--- package with a script /usr/bin/NAME that greets. opts.fail makes
--- dh_auto_build fail; the build always prints how many network interfaces
--- it sees (NETDEVS=N); opts.rules: more recipe lines for dh_auto_build
--- (make syntax: $$ for $); opts.dir: the tree's path (default
--- PARENT/NAME-1.0).
local function make_package(parent, name, opts)
  opts = opts or {}
  local dir = opts.dir or (parent .. "/" .. name .. "-1.0")
  assert(pft.sh("mkdir -p " .. dir .. "/debian/source") == 0)
  write_file(dir .. "/" .. name, "#!/bin/sh\necho \"hello from " .. name .. "\"\n", "0755")
  write_file(dir .. "/debian/changelog", table.concat({
    name .. " (1.0) " .. (opts.dist or "bookworm") .. "; urgency=medium",
    "", "  * Initial release.", "",
    " -- pflask tests <pflask@example.org>  Sat, 01 Jan 2022 00:00:00 +0000", "" }, "\n"))
  write_file(dir .. "/debian/control", table.concat({
    "Source: " .. name, "Section: misc", "Priority: optional",
    "Maintainer: pflask tests <pflask@example.org>",
    "Build-Depends: debhelper-compat (= 13)", "Standards-Version: 4.6.2",
    "Rules-Requires-Root: no", "",
    "Package: " .. name, "Architecture: all", "Depends: ${misc:Depends}",
    "Description: pflask-debuild test package", " A script that greets.", "" }, "\n"))
  write_file(dir .. "/debian/rules", table.concat({
    "#!/usr/bin/make -f", "%:", "\tdh $@", "",
    "override_dh_auto_build:",
    "\techo \"NETDEVS=$$(grep -c : /proc/net/dev)\"",
    "\techo \"NETNS=$$(readlink /proc/self/ns/net)\"",
    opts.rules or "",
    opts.fail and "\techo 'failing on purpose'; exit 1" or "\tdh_auto_build",
    "" }, "\n"), "0755")
  write_file(dir .. "/debian/install", name .. " usr/bin\n")
  write_file(dir .. "/debian/source/format", "3.0 (native)\n")
  return dir
end

--- Run pflask-debuild in dir as root with SUDO_UID/SUDO_GID of the user
--- (as root itself without a user).
local function debuild(dir, user, env, args, timeout)
  local e = { PFLASK_CACHE = CACHE, TMPDIR = TMPDIR }
  if user then
    e.SUDO_UID, e.SUDO_GID, e.SUDO_USER = tostring(user.uid), tostring(user.gid), user.name
  end
  for k, v in pairs(env or {}) do e[k] = v end
  return pft.run({ DEBUILD, table.unpack(args or {}) },
                 { env = e, prefix = "cd " .. pft.quote(dir) .. " &&", timeout = timeout or BUILD_TIMEOUT })
end

--- Everything about a tree: types, modes, owners, sizes, times, link
--- targets, and every file's checksum.
local function tree_listing(dir)
  return (pft.capture("cd " .. pft.quote(dir) .. " && find . -printf '%p %y %m %U %G %s %T@ %l\\n' | sort"
    .. " && find . -type f -exec sha256sum {} + | sort"))
end

local function chown_tree(path, user)
  assert(pft.sh(string.format("chown -hR %d:%d %s", user.uid, user.gid, pft.quote(path))) == 0)
end

local function report(r)
  return "status " .. r.status .. "\nstdout:\n" .. r.stdout .. "\nstderr:\n" .. r.stderr
end

describe("pflask-debuild", function()
  local user = {}
  local base_before, sums_before, mounts_before, tmp_before

  lazy_setup(function()
    assert(exists(DEBUILD), DEBUILD .. " is missing: build pflask first")
    if not exists(BASE) then
      local t0 = os.time()
      local env = { PFLASK_CACHE = CACHE, DIST = "bookworm" }
    local mirror = os.getenv("PFLASK_TEST_MIRROR")
    if mirror and mirror ~= "" then env.MIRROR = mirror end
    local r = pft.run({ DEBUILD, "--create" }, { env = env, timeout = 1800 })
      io.stderr:write(string.format("\ncreated %s in %ds\n", BASE, os.time() - t0))
      assert(r.status == 0, "--create failed: " .. report(r))
    end
    TMPDIR = pft.tempdir("debuild-tmp")
    user.name, user.uid, user.gid = pft.create_user()
    user.home = "/home/" .. user.name
    base_before, sums_before = snapshot(BASE), checksums(BASE)
    mounts_before, tmp_before = pft.mounts(), tmp_entries()
  end)

  lazy_teardown(function()
    if user.name then pft.remove_user(user.name) end
    if TMPDIR then pft.rm_rf(TMPDIR) end
  end)

  it("builds a package: results and log owned by the invoking user, progress, config", function()
    local parent = pft.tempdir("debuild")
    -- (busted keeps one finally per test.)
    finally(function() pft.rm_rf(parent); os.remove(user.home .. "/.devscripts") end)
    assert(pft.sh(string.format("chown %d:%d %s", user.uid, user.gid, parent)) == 0)
    local dir = make_package(parent, "pft-hello")
    assert(pft.sh(string.format("chown -R %d:%d %s", user.uid, user.gid, parent)) == 0)
    -- ~/.devscripts is read (not run): the lintian options come from it.
    write_file(user.home .. "/.devscripts", "# test\nDEBUILD_LINTIAN_OPTS=\"-I --pedantic\"\n$(touch /tmp/pftest-pwned)\n")

    local t0 = os.time()
    local r = debuild(dir, user)
    io.stderr:write(string.format("\none build: %ds\n", os.time() - t0))
    assert.are.equal(0, r.status, report(r))
    assert.is_false(exists("/tmp/pftest-pwned"))

    -- Progress: every step, durations, where things are.
    assert.matches("pflask%-debuild: %[1/5%] updating package lists", r.stderr)
    assert.matches("pflask%-debuild: %[2/5%] installing build dependencies", r.stderr)
    assert.matches("pflask%-debuild: %[3/5%] building %(dpkg%-buildpackage %-us %-uc, without network, "
                   .. "as pflask%-build%)", r.stderr)
    assert.matches("pflask%-debuild: %[4/5%] checking with lintian %-I %-%-pedantic", r.stderr)
    assert.matches("pflask%-debuild: %[5/5%] signing skipped: ", r.stderr)
    assert.matches("%[3/5%] done in [%d.]+s", r.stderr)
    assert.matches("results in " .. parent:gsub("%p", "%%%0") .. ": pft%-hello_1%.0_amd64%.changes", r.stderr)
    assert.matches("log: " .. parent:gsub("%p", "%%%0") .. "/pft%-hello_1%.0_amd64%.build", r.stderr)
    -- The build's own output streams (here captured) as it runs.
    assert.matches("dpkg%-buildpackage: info: source package pft%-hello", r.stdout .. r.stderr)
    -- No network by default: only lo.
    assert.are.equal(1, tonumber((r.stdout .. r.stderr):match("NETDEVS=(%d+)")))

    local owner_ids = user.uid .. ":" .. user.gid
    for _, f in ipairs({ "pft-hello_1.0_all.deb", "pft-hello_1.0_amd64.changes", "pft-hello_1.0_amd64.buildinfo",
                         "pft-hello_1.0.dsc", "pft-hello_1.0.tar.xz", "pft-hello_1.0_amd64.build" }) do
      assert.is_true(exists(parent .. "/" .. f), f .. " is missing")
      assert.are.equal(owner_ids, owner(parent .. "/" .. f), f)
    end
    -- Nothing in the source tree is left to root.
    assert.are.equal("", (pft.capture("find " .. pft.quote(parent) .. " -user 0")))
    -- The log has the build.
    local log = read_file(parent .. "/pft-hello_1.0_amd64.build")
    assert.matches("dpkg%-buildpackage: info: source package pft%-hello", log)
    assert.matches("dh_builddeb", log)
    assert.matches("%[2/5%] installing build dependencies", log)

    -- A real package, and it installs and runs in a container of the base.
    local info = pft.capture("dpkg-deb -I " .. parent .. "/pft-hello_1.0_all.deb")
    assert.matches("Package: pft%-hello", info)
    assert.matches("%./usr/bin/pft%-hello", (pft.capture("dpkg-deb -c " .. parent .. "/pft-hello_1.0_all.deb")))
    local run = pft.pflask({ "--chroot=" .. BASE, "--ephemeral", "--mount=bind-ro:" .. parent .. ":/build", "--",
                             "/bin/sh", "-c", "dpkg -i /build/pft-hello_1.0_all.deb >/dev/null && pft-hello" })
    assert.are.equal(0, run.status, report(run))
    assert.are.equal("hello from pft-hello\n", run.stdout)
  end)

  it("builds two packages at once from the same base", function()
    local a, b = pft.tempdir("debuild"), pft.tempdir("debuild")
    finally(function() pft.rm_rf(a); pft.rm_rf(b) end)
    make_package(a, "pft-one")
    make_package(b, "pft-two")
    chown_tree(a, user)
    chown_tree(b, user)
    local function cmd(parent, name)
      return string.format("(cd %s/%s-1.0 && env PFLASK_CACHE=%s TMPDIR=%s SUDO_UID=%d SUDO_GID=%d DEBUILD_LINTIAN=no "
        .. "timeout %d %s >%s/out 2>&1; echo $? >%s/rc) </dev/null &",
        parent, name, CACHE, TMPDIR, user.uid, user.gid, BUILD_TIMEOUT, DEBUILD, parent, parent)
    end
    pft.sh(cmd(a, "pft-one") .. " " .. cmd(b, "pft-two") .. " wait")
    for _, p in ipairs({ { a, "pft-one" }, { b, "pft-two" } }) do
      local parent, name = p[1], p[2]
      assert.are.equal("0\n", read_file(parent .. "/rc"), read_file(parent .. "/out"))
      assert.matches("lintian skipped: DEBUILD_LINTIAN=no", read_file(parent .. "/out"))
      assert.are.equal(user.uid .. ":" .. user.gid, owner(parent .. "/" .. name .. "_1.0_all.deb"))
      assert.matches("Package: " .. name:gsub("%-", "%%-"),
                     (pft.capture("dpkg-deb -I " .. parent .. "/" .. name .. "_1.0_all.deb")))
    end
  end)

  it("builds with the host's network only with --network (or DEBUILD_NETWORK=yes)", function()
    local parent = pft.tempdir("debuild")
    finally(function() pft.rm_rf(parent) end)
    local dir = make_package(parent, "pft-online")
    chown_tree(parent, user)
    local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" }, { "--network" })
    assert.are.equal(0, r.status, report(r))
    assert.is_nil(r.stderr:match("without network"))
    -- The host's network namespace itself (compared by inode: counting
    -- interfaces races with other specs that add some on the host).
    local host_netns = pft.capture("readlink /proc/self/ns/net")
    assert.are.equal(host_netns, read_file(parent .. "/pft-online_1.0_amd64.build"):match("NETNS=(net:%[%d+%])"))
    assert.is_true(exists(parent .. "/pft-online_1.0_all.deb"))
    -- --no-network (the default) wins over the configuration.
    r = debuild(dir, user, { DEBUILD_LINTIAN = "no", DEBUILD_NETWORK = "yes" }, { "--no-network" })
    assert.are.equal(0, r.status, report(r))
    assert.matches("without network", r.stderr)
    assert.matches("NETDEVS=1\n", read_file(parent .. "/pft-online_1.0_amd64.build"))
  end)

  it("fails when the build fails, and keeps the log", function()
    local parent = pft.tempdir("debuild")
    finally(function() pft.rm_rf(parent) end)
    local dir = make_package(parent, "pft-broken", { fail = true })
    assert(pft.sh(string.format("chown -R %d:%d %s", user.uid, user.gid, parent)) == 0)
    local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
    assert.are_not.equal(0, r.status)
    assert.matches("%[3/5%] building .* failed %(exit %d+%)", r.stderr)
    assert.matches("build failed after .*; log: " .. parent:gsub("%p", "%%%0"), r.stderr)
    local log = parent .. "/pft-broken_1.0_amd64.build"
    assert.matches("failing on purpose", read_file(log))
    assert.are.equal(user.uid .. ":" .. user.gid, owner(log))
    assert.is_false(exists(parent .. "/pft-broken_1.0_all.deb"))
    assert.are.equal("", (pft.capture("find " .. pft.quote(parent) .. " -user 0")))
  end)

  describe("refuses bad input with one line", function()
    local function one_error(r, pattern)
      assert.are.equal(125, r.status, report(r))
      assert.matches("^pflask%-debuild: [^\n]*\n$", r.stderr)
      assert.matches(pattern, r.stderr)
    end

    it("outside a source tree", function()
      local parent = pft.tempdir("debuild")
      finally(function() pft.rm_rf(parent) end)
      one_error(debuild(parent, user), "is not a Debian source tree: it has no debian/ directory")
    end)

    it("without a base for DIST", function()
      local parent = pft.tempdir("debuild")
      finally(function() pft.rm_rf(parent) end)
      local dir = make_package(parent, "pft-nobase", { dist = "nosuchdist" })
      one_error(debuild(dir, user),
        "no base for nosuchdist%-amd64 in " .. CACHE:gsub("%p", "%%%0") .. ": run DIST=nosuchdist pflask%-debuild %-%-create")
      one_error(debuild(dir, user, { DIST = "trixie" }), "no base for trixie%-amd64")
    end)

    it("with a malformed changelog", function()
      local parent = pft.tempdir("debuild")
      finally(function() pft.rm_rf(parent) end)
      local dir = make_package(parent, "pft-bad")
      write_file(dir .. "/debian/changelog", "pft-bad 1.0 bookworm urgency=low\n")
      one_error(debuild(dir, user), "debian/changelog is malformed: its first line is not")
      write_file(dir .. "/debian/changelog", "")
      one_error(debuild(dir, user), "debian/changelog is malformed: it is empty")
    end)

    it("with an unknown option", function()
      one_error(debuild("/", user, {}, { "--bogus" }), "unknown option '%-%-bogus'")
    end)

    it("when --create finds the base already there", function()
      one_error(pft.run({ DEBUILD, "--create" }, { env = { PFLASK_CACHE = CACHE, DIST = "bookworm" } }),
                "already exists: run DIST=bookworm pflask%-debuild %-%-update")
    end)
  end)

  it("killed with SIGKILL: the build dies with it, the next build sweeps what it left", function()
    local parent = pft.tempdir("debuild")
    finally(function() pft.rm_rf(parent) end)
    local marker = string.format("pftkilled%d", math.random(100000, 999999))
    local dir = make_package(parent, "pft-killed", { rules = "\t/bin/sh -c 'sleep 3600' " .. marker })
    chown_tree(parent, user)
    local pid = pft.capture(string.format("(cd %s && exec env PFLASK_CACHE=%s TMPDIR=%s SUDO_UID=%d SUDO_GID=%d "
      .. "DEBUILD_LINTIAN=no %s) >%s/out 2>&1 </dev/null & echo $!", dir, CACHE, TMPDIR, user.uid, user.gid,
      DEBUILD, parent, parent))
    -- (Patterns that do not match the shell running them.)
    local function pattern(text) return pft.quote("[" .. text:sub(1, 1) .. "]" .. text:sub(2)) end
    local running = pft.sh("for i in $(seq 600); do pgrep -f " .. pattern(marker) .. " >/dev/null && exit 0; "
      .. "kill -0 " .. pid .. " || exit 1; sleep 1; done; exit 1")
    assert.are.equal(0, running, read_file(parent .. "/out"))
    local layer = pft.capture("ls -d " .. TMPDIR .. "/pflask-debuild.*")
    assert.matches("^" .. TMPDIR:gsub("%p", "%%%0") .. "/pflask%-debuild%.%w+$", layer)
    assert.are.equal(0, pft.sh("kill -KILL " .. pid))
    -- The build (its pid namespace) and the log's helper end with it.
    local gone = pft.sh("for i in $(seq 100); do pgrep -f " .. pattern(marker) .. " >/dev/null || pgrep -f "
      .. pattern(layer) .. " >/dev/null || exit 0; sleep 0.2; done; exit 1")
    assert.are.equal(0, gone, pft.capture("ps -ef | grep -e " .. marker .. " -e " .. layer))
    -- Its temporary directory is left; the next build removes it.
    assert.are.equal(layer, pft.capture("ls -d " .. TMPDIR .. "/pflask-debuild.*"))
    local after = make_package(parent, "pft-after")
    chown_tree(parent, user)
    local r = debuild(after, user, { DEBUILD_LINTIAN = "no" })
    assert.are.equal(0, r.status, report(r))
    assert.are.equal("", tmp_entries())
  end)

  describe("attacked", function()
    -- A directory of root's (0755) with a root-only file and a name that
    -- must never be created.
    local victims
    before_each(function()
      victims = pft.tempdir("debuild-victim")
      write_file(victims .. "/victim", "root's own\n", "0600")
      write_file(victims .. "/secret", "DIST=pftsecret\n", "0600")
    end)
    after_each(function() pft.rm_rf(victims) end)

    it("by a hostile package: no capability, no host id, no network, the user's tree untouched", function()
      local parent = pft.tempdir("debuild")
      -- A listener on the host's loopback: the build must not reach it
      -- (its lo is its own). Checked with a connection from the host first.
      local port = math.random(20000, 60000)
      local seen = parent .. "/listener"
      local listener = pft.capture("perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "
        .. "\"127.0.0.1\", LocalPort => $ARGV[0], Listen => 5, ReuseAddr => 1) or die; $| = 1; "
        .. "while ($c = $s->accept) { open(O, \">>\", $ARGV[1]); print O \"connected\\n\"; close O }' "
        .. port .. " " .. seen .. " >/dev/null 2>&1 & echo $!")
      finally(function()
        pft.sh("kill " .. listener)
        pft.rm_rf(parent)
      end)
      assert.are.equal(0, pft.sh("for i in $(seq 100); do bash -c 'echo >/dev/tcp/127.0.0.1/" .. port
        .. "' 2>/dev/null && exit 0; sleep 0.1; done; exit 1"), "the host's listener did not start")
      -- Like GNU hello's autoreconf, the build changes its tree; built
      -- twice in the same tree it fails.
      local dir = make_package(parent, "pft-hostile", { rules = table.concat({
        "\tif bash -c 'echo >/dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null; then echo REACHED-HOST; fi",
        "\tgrep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status",
        "\techo \"UID=$$(id -u) UIDMAP=$$(head -n 1 /proc/self/uid_map)\"",
        "\techo \"USERNS=$$(readlink /proc/self/ns/user) NETNS=$$(readlink /proc/self/ns/net)\"",
        "\techo \"SEES=$$(ls -A /build | tr '\\n' ' ')\"",
        "\tif touch /etc/pft-owned 2>/dev/null; then echo BASE-WRITABLE; fi",
        "\tif test -e generated; then echo 'the tree was built before'; exit 1; fi",
        "\tdate > generated; echo '# changed by the build' >> pft-hostile; rm debian/source/format",
      }, "\n") })
      chown_tree(parent, user)
      local before = tree_listing(dir)

      local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(0, r.status, report(r))
      local log = read_file(parent .. "/pft-hostile_1.0_amd64.build")
      -- No capability, in any set.
      for _, set in ipairs({ "CapEff", "CapPrm", "CapBnd" }) do
        assert.matches(set .. ":%s+0000000000000000\n", log)
      end
      -- A user namespace that is not the host's, whose ids are neither
      -- host root nor the invoking user.
      local uid = assert(tonumber(log:match("\nUID=(%d+)")), log)
      local inside, outside = log:match("\nUID=%d+ UIDMAP=%s*(%d+)%s+(%d+)%s+%d+")
      assert.is_truthy(inside, log)
      local host_uid = tonumber(outside) + uid - tonumber(inside)
      assert.are_not.equal(0, uid)
      assert.are_not.equal(0, host_uid)
      assert.are_not.equal(user.uid, host_uid)
      local userns, netns = log:match("USERNS=(user:%[%d+%]) NETNS=(net:%[%d+%])")
      assert.is_truthy(userns, log)
      assert.are_not.equal(pft.capture("readlink /proc/self/ns/user"), userns)
      -- Its own network namespace, with lo only.
      assert.are_not.equal(pft.capture("readlink /proc/self/ns/net"), netns)
      assert.matches("NETDEVS=1\n", log)
      assert.is_nil(log:match("\nREACHED%-HOST"))
      assert.are.equal("connected\n", read_file(seen))
      -- Only the build's own files on /build, and the base is read-only.
      for entry in assert(log:match("\nSEES=([^\n]*)"), log):gmatch("%S+") do
        assert.matches("^pft%-hostile", entry)
      end
      assert.is_nil(log:match("\nBASE%-WRITABLE"))
      -- The user's tree is byte for byte what it was, and builds again.
      assert.are.equal(before, tree_listing(dir))
      r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(0, r.status, report(r))
      assert.are.equal(before, tree_listing(dir))
      assert.are.equal(user.uid .. ":" .. user.gid, owner(parent .. "/pft-hostile_1.0_all.deb"))
      -- The result has the build's change, the tree does not.
      assert.matches("changed by the build", pft.capture("dpkg-deb --fsys-tarfile " .. parent
        .. "/pft-hostile_1.0_all.deb | tar -xO ./usr/bin/pft-hostile"))
    end)

    it("never modifies an unpacked Debian source: GNU hello builds twice", function()
      local parent = pft.tempdir("debuild")
      finally(function() pft.rm_rf(parent) end)
      -- The source from the base's own archive (its deb lines as deb-src),
      -- unpacked by the base's dpkg-source, in a throwaway container.
      local get = pft.pflask({ "--chroot=" .. BASE, "--ephemeral", "--mount=bind:" .. parent .. ":/src", "--",
        "/bin/sh", "-c", "sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/src.list"
          .. " && apt-get -qq update && cd /src && apt-get -qq source hello" },
        { env = { TMPDIR = TMPDIR }, timeout = 600 })
      local dir = pft.capture("ls -d " .. parent .. "/hello-*/ 2>/dev/null | head -n 1"):gsub("/$", "")
      if get.status ~= 0 or dir == "" then
        pending("cannot fetch GNU hello's source from the base's archive: " .. report(get))
        return
      end
      chown_tree(parent, user)
      local before = tree_listing(dir)
      -- (Its changelog names unstable: the base's release instead.)
      for _ = 1, 2 do
        local r = debuild(dir, user, { DEBUILD_LINTIAN = "no", DIST = "bookworm" })
        assert.are.equal(0, r.status, report(r))
        assert.are.equal(before, tree_listing(dir))
      end
      local deb = pft.capture("ls " .. parent .. "/hello_*.deb")
      assert.are.equal(user.uid .. ":" .. user.gid, owner(deb))
      assert.matches("Package: hello", pft.capture("dpkg-deb -I " .. deb))
    end)

    it("by symlinks at the log's and the results' names", function()
      local parent = pft.tempdir("debuild")
      finally(function() pft.rm_rf(parent) end)
      local dir = make_package(parent, "pft-link")
      local mine = user.home .. "/mine"
      write_file(mine, "the user's own\n")
      chown_tree(mine, user)
      chown_tree(parent, user)
      local function link(target, name)
        assert(pft.sh(string.format("ln -sfn %s %s/%s && chown -h %d:%d %s/%s", pft.quote(target), parent, name,
                                    user.uid, user.gid, parent, name)) == 0)
      end
      -- The log's name: refused before anything runs (and the log is
      -- opened with O_NOFOLLOW by the user's helper in any case).
      for _, target in ipairs({ victims .. "/victim", victims .. "/absent", mine }) do
        link(target, "pft-link_1.0_amd64.build")
        local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
        assert.are.equal(125, r.status, report(r))
        assert.matches("pft%-link_1%.0_amd64%.build exists and is not a regular file", r.stderr)
      end
      assert.are.equal("root's own\n", read_file(victims .. "/victim"))
      assert.is_false(exists(victims .. "/absent"))
      assert.are.equal("the user's own\n", read_file(mine))
      os.remove(parent .. "/pft-link_1.0_amd64.build")

      -- The results' names: written by the user's ids with O_NOFOLLOW,
      -- so not even the user's own file is written through a link.
      link(victims .. "/victim", "pft-link_1.0_all.deb")
      link(victims .. "/absent", "pft-link_1.0.dsc")
      link(mine, "pft-link_1.0_amd64.buildinfo")
      local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are_not.equal(0, r.status, report(r))
      for _, name in ipairs({ "pft%-link_1%.0_all%.deb", "pft%-link_1%.0%.dsc", "pft%-link_1%.0_amd64%.buildinfo" }) do
        assert.matches("could not copy " .. name .. " to ", r.stderr)
      end
      assert.are.equal("root's own\n", read_file(victims .. "/victim"))
      assert.is_false(exists(victims .. "/absent"))
      assert.are.equal("the user's own\n", read_file(mine))
      -- The rest arrived, and the log is the user's regular file.
      assert.are.equal(user.uid .. ":" .. user.gid, owner(parent .. "/pft-link_1.0_amd64.changes"))
      assert.are.equal("file", pft.capture("stat -c %F " .. parent .. "/pft-link_1.0_amd64.build"):match("^regular (file)"))
      assert.are.equal(user.uid .. ":" .. user.gid, owner(parent .. "/pft-link_1.0_amd64.build"))
    end)

    it("by ~/.devscripts: a FIFO does not hang it, a link or a root-only file is not read", function()
      local parent = pft.tempdir("debuild")
      local conf = user.home .. "/.devscripts"
      finally(function() pft.rm_rf(parent); os.remove(conf) end)
      local dir = make_package(parent, "pft-conf")
      chown_tree(parent, user)
      -- (A hang would end in the timeout, not in a status 0.)
      assert(pft.sh("mkfifo " .. conf .. " && chown " .. user.uid .. " " .. conf) == 0)
      local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" }, nil, 600)
      assert.are.equal(0, r.status, report(r))
      os.remove(conf)
      -- DIST=pftsecret, read, would stop the run: "no base for pftsecret".
      assert(pft.sh("ln -s " .. victims .. "/secret " .. conf .. " && chown -h " .. user.uid .. " " .. conf) == 0)
      r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(0, r.status, report(r))
      os.remove(conf)
      assert(pft.sh("cp " .. victims .. "/secret " .. conf) == 0) -- root's, 0600, in the user's home
      r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(0, r.status, report(r))
      -- The same file, readable by the user: read.
      assert(pft.sh("chmod 0644 " .. conf) == 0)
      r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(125, r.status, report(r))
      assert.matches("no base for pftsecret%-amd64", r.stderr)
    end)

    it("with a tree at /NAME: / is neither bound nor given away", function()
      local name = string.format("pfttop%d", math.random(100000, 999999))
      local dir = "/" .. name .. "-1.0"
      finally(function()
        assert(pft.sh("rm -rf " .. dir .. " /" .. name .. "_1.0*") == 0)
      end)
      make_package("/", name, { dir = dir, rules = "\techo \"SEES=$$(ls -A /build | tr '\\n' ' ')\"" })
      chown_tree(dir, user)
      local function top()
        return pft.capture("stat -c '%n %u:%g %a' / /*")
      end
      local before = top()
      -- The invoking user cannot write to /: the log is refused, as the
      -- user's ids; nothing is created or chowned.
      local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(125, r.status, report(r))
      assert.matches("^pflask%-debuild: cannot write the build log /" .. name .. "_1%.0_amd64%.build: Permission denied\n$",
                     r.stderr)
      assert.are.equal("", pft.capture("ls -d /" .. name .. "_* 2>/dev/null"))
      -- Root itself builds there; the build sees its own files only.
      r = debuild(dir, nil, { DEBUILD_LINTIAN = "no" })
      assert.are.equal(0, r.status, report(r))
      local log = read_file("/" .. name .. "_1.0_amd64.build")
      for entry in assert(log:match("\nSEES=([^\n]*)"), log):gmatch("%S+") do
        assert.matches("^" .. name, entry)
      end
      -- Every entry of / keeps its owner and mode.
      local after = top()
      for line in before:gmatch("[^\n]+") do
        if not line:match("^/" .. name) then
          assert.is_truthy(("\n" .. after .. "\n"):find("\n" .. line .. "\n", 1, true), line)
        end
      end
    end)

    it("refuses to build without root (rootless)", function()
      local _, bindir = pft.public_pflask()
      local parent = pft.tempdir("debuild")
      finally(function() pft.rm_rf(parent); pft.rm_rf(bindir) end)
      assert(pft.sh("ln -s pflask " .. bindir .. "/pflask-debuild") == 0)
      local dir = make_package(parent, "pft-rootless")
      chown_tree(parent, user)
      local r = pft.run({ bindir .. "/pflask-debuild" },
                        { user = user.name, env = { PFLASK_CACHE = CACHE }, prefix = "cd " .. pft.quote(dir) .. " &&" })
      assert.are.equal(125, r.status, report(r))
      assert.are.equal("pflask-debuild: building needs root (run it with sudo)\n", r.stderr)
    end)
  end)

  it("left the base byte for byte unchanged and the host clean", function()
    assert.are.equal(base_before, snapshot(BASE))
    assert.are.equal(sums_before, checksums(BASE))
    assert.are.equal(mounts_before, pft.mounts())
    assert.are.equal("", tmp_before)
    assert.are.equal("", tmp_entries())
  end)
end)

describe("pflask.debuild", function()
  local debuild = require "pflask.debuild"

  it("parses changelog headers", function()
    local s = assert(debuild.parse_changelog("foo (1:2.0-1) unstable experimental; urgency=low\n\n  * x\n"))
    assert.are.same({ source = "foo", version = "1:2.0-1", upstream_version = "2.0-1", distribution = "unstable" }, s)
    assert.is_nil((debuild.parse_changelog("foo (abc) unstable; urgency=low")))
    assert.is_nil((debuild.parse_changelog("foo 1.0 unstable")))
  end)

  it("reads devscripts files without running them", function()
    local vars = debuild.parse_config(table.concat({
      "# comment", "DEBUILD_LINTIAN=no", "export DIST=\"bookworm\"", "DEBUILD_LINTIAN_OPTS='-i -I'",
      "X=$(rm -rf /)", "if true; then DEBSIGN_KEYID=ABC; fi", "ARCH=arm64 # trailing", "" }, "\n"))
    assert.are.equal("no", vars.DEBUILD_LINTIAN)
    assert.are.equal("bookworm", vars.DIST)
    assert.are.equal("-i -I", vars.DEBUILD_LINTIAN_OPTS)
    assert.are.equal("arm64", vars.ARCH)
    assert.is_nil(vars.DEBSIGN_KEYID)
  end)

  it("finds the host's mirror in one-line and deb822 sources", function()
    -- (Fixtures on reserved example domains, with paths that name no real
    -- mirror's layout.)
    assert.are.equal("http://mirror.example/archive", debuild.host_mirror(
      "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
      .. "Types: deb\nURIs: http://mirror.example/archive/\nSuites: bookworm\nComponents: main\n"))
    assert.are.equal("http://other.example/archive", debuild.host_mirror(
      "# x\ndeb [arch=amd64] http://other.example/archive bookworm main\n"))
    assert.is_nil(debuild.host_mirror("deb cdrom:[x]/ bookworm main\n"))
  end)

  it("maps the build to the user's subordinate ids, else a free block", function()
    local alice = { uid = 1000, name = "alice" }
    assert.are.equal(200000, debuild.id_start(alice, "bob:100000:65536\nalice:200000:65536\n", ""))
    assert.are.equal(300000, debuild.id_start(alice, "alice:200000:1000\n1000:300000:70000\n", ""))
    -- No range of alice's: the first block nobody's range overlaps, in
    -- either file, whose ids no host user has.
    assert.are.equal(100000, debuild.id_start(alice, "", ""))
    assert.are.equal(231072, debuild.id_start(alice, "bob:100000:65536\n", "carol:165536:65536\n"))
    assert.are.equal(165536, debuild.id_start(alice, "", "", function(id) return id == 101000 end))
  end)

  it("takes only plain file names from a .changes", function()
    assert.is_true(debuild.plain_name("hello_2.10-3_amd64.deb"))
    assert.is_false(debuild.plain_name("../etc/passwd"))
    assert.is_false(debuild.plain_name("a/b"))
    assert.is_false(debuild.plain_name(".hidden"))
    assert.are.same({ "x_1.dsc", "../evil" }, debuild.changes_files(
      "Source: x\nFiles:\n 0123abcd 10 misc optional x_1.dsc\n 0123abcd 10 misc optional ../evil\n"))
  end)

  it("never signs inside the container", function()
    assert.are.same({ "-us", "-uc" }, debuild.buildpackage_options({}, {}))
    assert.are.same({ "-b", "--no-sign" }, debuild.buildpackage_options({ DEBUILD_DPKG_BUILDPACKAGE_OPTS = "-b" }, {}))
  end)
end)
