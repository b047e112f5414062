-- pflask-debuild (issue 8): a real build of a small source package in a
-- throwaway container of a bookworm base. The base is cached in a
-- directory the tests own (created on the first run: a few minutes of
-- debootstrap); the package, its results and a throwaway user are made
-- fresh. The builds need the network (the base's apt sources).
--
-- Checks: results and log next to the source tree owned by the invoking
-- user (SUDO_UID/SUDO_GID), the package installs and runs, the base is
-- byte for byte unchanged, two builds at once, --no-network, a failing
-- build keeps its log, bad input, and nothing left on the host.
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
--- it sees (NETDEVS=N).
local function make_package(parent, name, opts)
  opts = opts or {}
  local dir = parent .. "/" .. name .. "-1.0"
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
    opts.fail and "\techo 'failing on purpose'; exit 1" or "\tdh_auto_build",
    "" }, "\n"), "0755")
  write_file(dir .. "/debian/install", name .. " usr/bin\n")
  write_file(dir .. "/debian/source/format", "3.0 (native)\n")
  return dir
end

--- Run pflask-debuild in dir as root with SUDO_UID/SUDO_GID of the user.
local function debuild(dir, user, env, args)
  local e = { PFLASK_CACHE = CACHE, TMPDIR = TMPDIR, SUDO_UID = tostring(user.uid), SUDO_GID = tostring(user.gid),
              SUDO_USER = user.name }
  for k, v in pairs(env or {}) do e[k] = v end
  return pft.run({ DEBUILD, table.unpack(args or {}) },
                 { env = e, prefix = "cd " .. pft.quote(dir) .. " &&", timeout = BUILD_TIMEOUT })
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
      local r = pft.run({ DEBUILD, "--create" },
                        { env = { PFLASK_CACHE = CACHE, DIST = "bookworm" }, timeout = 1800 })
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
    assert.matches("pflask%-debuild: %[3/5%] building %(dpkg%-buildpackage %-us %-uc%)", r.stderr)
    assert.matches("pflask%-debuild: %[4/5%] checking with lintian %-I %-%-pedantic", r.stderr)
    assert.matches("pflask%-debuild: %[5/5%] signing skipped: ", r.stderr)
    assert.matches("%[3/5%] done in [%d.]+s", r.stderr)
    assert.matches("results in " .. parent:gsub("%p", "%%%0") .. ": pft%-hello_1%.0_amd64%.changes", r.stderr)
    assert.matches("log: " .. parent:gsub("%p", "%%%0") .. "/pft%-hello_1%.0_amd64%.build", r.stderr)
    -- The build's own output streams (here captured) as it runs.
    assert.matches("dpkg%-buildpackage: info: source package pft%-hello", r.stdout .. r.stderr)
    -- The host's network by default.
    local netdevs = tonumber((r.stdout .. r.stderr):match("NETDEVS=(%d+)"))
    local host_netdevs = tonumber((pft.capture("grep -c : /proc/net/dev")))
    assert.are.equal(host_netdevs, netdevs)

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

  it("builds without network with --no-network", function()
    local parent = pft.tempdir("debuild")
    finally(function() pft.rm_rf(parent) end)
    local dir = make_package(parent, "pft-offline")
    local r = debuild(dir, user, { DEBUILD_LINTIAN = "no" }, { "--no-network" })
    assert.are.equal(0, r.status, report(r))
    assert.matches("without network", r.stderr)
    -- Only lo in the build step.
    assert.matches("NETDEVS=1\n", read_file(parent .. "/pft-offline_1.0_amd64.build"))
    assert.is_true(exists(parent .. "/pft-offline_1.0_all.deb"))
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
    assert.are.equal("http://deb.debian.org/debian", debuild.host_mirror(
      "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
      .. "Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: bookworm\nComponents: main\n"))
    assert.are.equal("http://ftp.fr.debian.org/debian", debuild.host_mirror(
      "# x\ndeb [arch=amd64] http://ftp.fr.debian.org/debian bookworm main\n"))
    assert.is_nil(debuild.host_mirror("deb cdrom:[x]/ bookworm main\n"))
  end)

  it("never signs inside the container", function()
    assert.are.same({ "-us", "-uc" }, debuild.buildpackage_options({}, {}))
    assert.are.same({ "-b", "--no-sign" }, debuild.buildpackage_options({ DEBUILD_DPKG_BUILDPACKAGE_OPTS = "-b" }, {}))
  end)
end)
