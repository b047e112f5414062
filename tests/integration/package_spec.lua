-- The Debian package of pflask (issue 16), built by pflask itself: the
-- checkout's files (git ls-files: the clean tree, without build/ or
-- anything untracked) are copied into a directory of a throwaway user, and
-- pflask-debuild builds them there as root with that user's SUDO_UID and
-- SUDO_GID, in a container of the cached buildd base that debuild_spec uses
-- too (created here on the first run). The build runs the unit tests
-- (dh_auto_test) unprivileged and without network, then lintian, whose
-- findings must have no E: or W: line.
--
-- Then the .deb is installed in an --ephemeral container of that base (its
-- dependencies from the base's archive: this needs the network, as the
-- build's own apt steps do), and the installed pflask runs a container of
-- its own in there: a container inside a container. Its man pages, the
-- pflask-debuild link, the completion files and the Lua module are checked
-- in place.
--
-- The mirror for --create comes from PFLASK_TEST_MIRROR, else the host's
-- apt sources (pflask-debuild's own choice), else debootstrap's default.
local pft = require "pftest"

local CACHE = "/var/cache/pflask-test/debuild"
local BASE = CACHE .. "/base-bookworm-amd64"
local DEBUILD = (pft.PFLASK:match("^(.*)/[^/]*$") or ".") .. "/pflask-debuild"
local BUILD_TIMEOUT = 1800

local exists = pft.exists

local function report(r)
  return "status " .. r.status .. "\nstdout:\n" .. r.stdout .. "\nstderr:\n" .. r.stderr
end

local function escape(s)
  return (s:gsub("%p", "%%%0"))
end

--- The version in CMakeLists.txt's project().
local function cmake_version()
  local text = assert(pft.read_file(pft.SOURCE_DIR .. "/CMakeLists.txt"))
  return assert(text:match("project%s*%(%s*pflask%s+VERSION%s+([%d.]+)"), "no version in CMakeLists.txt")
end

describe("the Debian package", function()
  local user = {}
  local parent, tmpdir, version, arch, deb
  -- Why the package could not be built here, when it could not.
  local skipped

  lazy_setup(function()
    assert(exists(DEBUILD), DEBUILD .. " is missing: build pflask first")
    if not exists(BASE) then
      local env = { PFLASK_CACHE = CACHE, DIST = "bookworm" }
      local mirror = os.getenv("PFLASK_TEST_MIRROR")
      if mirror and mirror ~= "" then env.MIRROR = mirror end
      local r = pft.run({ DEBUILD, "--create" }, { env = env, timeout = 1800 })
      assert(r.status == 0, "--create failed: " .. report(r))
    end
    version = cmake_version()
    arch = (pft.capture("dpkg --print-architecture"))
    user.name, user.uid, user.gid = pft.create_user()
    parent = pft.tempdir("package")
    tmpdir = pft.tempdir("package-tmp")
    deb = string.format("%s/pflask_%s_%s.deb", parent, version, arch)
  end)

  lazy_teardown(function()
    if user.name then pft.remove_user(user.name) end
    if parent then pft.rm_rf(parent) end
    if tmpdir then pft.rm_rf(tmpdir) end
  end)

  it("has a changelog entry for the version in CMakeLists.txt", function()
    local changelog = assert(pft.read_file(pft.SOURCE_DIR .. "/debian/changelog"))
    assert.are.equal(version, changelog:match("^pflask %(([^)]+)%)"))
  end)

  it("is built by pflask-debuild from a clean checkout, tests run, lintian-clean", function()
    if pft.sh("git -C " .. pft.quote(pft.SOURCE_DIR) .. " rev-parse --git-dir >/dev/null 2>&1") ~= 0 then
      skipped = "the source directory is not a git checkout (or git is missing): no list of the clean tree"
      pending(skipped)
      return
    end
    local tree = parent .. "/pflask"
    assert(pft.sh("mkdir " .. tree) == 0)
    -- The tracked files as they are in the work tree (a tracked file
    -- deleted there is skipped, not an error).
    assert.are.equal(0, pft.sh(string.format(
      "cd %s && git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C %s",
      pft.quote(pft.SOURCE_DIR), tree)))
    assert.is_true(exists(tree .. "/debian/rules"), "debian/ is not tracked in git")
    assert(pft.sh(string.format("chown -R %d:%d %s", user.uid, user.gid, parent)) == 0)

    -- lintian as pflask-debuild's default, whatever /etc/devscripts.conf
    -- says (the environment wins); the build's checks on whatever the
    -- caller's DEB_BUILD_OPTIONS say.
    local t0 = os.time()
    local r = pft.run({ DEBUILD }, {
      env = { PFLASK_CACHE = CACHE, TMPDIR = tmpdir, DIST = "bookworm", SUDO_UID = tostring(user.uid),
              SUDO_GID = tostring(user.gid), SUDO_USER = user.name,
              DEBUILD_LINTIAN = "yes", DEBUILD_LINTIAN_OPTS = "-IE --pedantic" },
      prefix = "cd " .. pft.quote(tree) .. " && unset DEB_BUILD_OPTIONS DEB_BUILD_PROFILES &&",
      timeout = BUILD_TIMEOUT })
    io.stderr:write(string.format("\npackage build: %ds\n", os.time() - t0))
    assert.are.equal(0, r.status, report(r))

    assert.is_true(exists(deb), deb .. " is missing\n" .. r.stderr)
    assert.are.equal(user.uid .. ":" .. user.gid, (pft.capture("stat -c %u:%g " .. pft.quote(deb))))
    local log = assert(pft.read_file(string.format("%s/pflask_%s_%s.build", parent, version, arch)))
    -- dh_auto_test ran the unit tests, and they passed (as the unprivileged
    -- build user, without network).
    assert.matches("ctest [^\n]*%-L unit", log)
    assert.matches("100%% tests passed, 0 tests failed out of %d+", log)
    -- lintian ran, and found neither errors nor warnings.
    assert.matches("%[4/5%] checking with lintian", log)
    assert.matches("%[4/5%] done in", log)
    local bad = {}
    for line in log:gmatch("[^\n]+") do
      if line:match("^[EW]: ") then bad[#bad + 1] = line end
    end
    assert.are.same({}, bad)
    -- The source tree was not changed, and nothing there is root's.
    assert.is_false(exists(tree .. "/obj-" .. (pft.capture("dpkg-architecture -qDEB_HOST_GNU_TYPE"))))
    assert.are.equal("", (pft.capture("find " .. pft.quote(parent) .. " -user 0")))
  end)

  it("holds the executable, the pflask-NAME links, the module, man pages and completions", function()
    if skipped then pending(skipped) return end
    assert.is_true(exists(deb), "no package: the build failed (see above)")
    local info = pft.capture("dpkg-deb -f " .. pft.quote(deb) .. " Package Version Architecture Depends")
    assert.matches("Package: pflask\n", info)
    assert.matches("Version: " .. escape(version) .. "\n", info)
    assert.matches("Architecture: " .. escape(arch), info)
    -- dlopen'ed, so not found by dpkg-shlibdeps: declared by hand.
    assert.matches("libmount1", info)
    -- Linked dynamically (PFLASK_STATIC_DEPS=OFF): Lua is a dependency.
    assert.matches("liblua5%.4%-0", info)
    local list = pft.capture("dpkg-deb -c " .. pft.quote(deb)) .. "\n"
    for _, pattern in ipairs({
      " %./usr/bin/pflask\n",
      " %./usr/bin/pflask%-debuild %-> pflask\n",
      " %./usr/lib/" .. escape((pft.capture("dpkg-architecture -qDEB_HOST_MULTIARCH"))) .. "/lua/5%.4/pflask/core%.so\n",
      " %./usr/share/lua/5%.4/pflask/init%.lua\n",
      " %./usr/share/man/man1/pflask%.1%.gz\n",
      " %./usr/share/man/man1/pflask%-debuild%.1%.gz\n",
      " %./usr/share/man/man7/pflask%-recipes%.7%.gz\n",
      " %./usr/share/bash%-completion/completions/pflask\n",
      " %./usr/share/zsh/vendor%-completions/_pflask\n",
      " %./usr/share/doc/pflask/copyright\n",
      -- The example recipes, where Debian users look for examples too.
      " %./usr/share/doc/pflask/examples %-> %.%./%.%./pflask/recipes/examples\n",
    }) do
      assert.matches(pattern, list)
    end
    -- Everything is root's in the package (Rules-Requires-Root: no, yet
    -- dpkg-deb writes root ownership).
    for line in list:gmatch("[^\n]+") do
      assert.matches("^%S+ root/root ", line)
    end
  end)

  it("installs in a container of the base, and its pflask runs a container in there", function()
    if skipped then pending(skipped) return end
    assert.is_true(exists(deb), "no package: the build failed (see above)")
    local name = deb:match("[^/]+$")
    -- The outer container is a root container without a user namespace,
    -- with pflask's default capability set: that set keeps sys_admin
    -- (namespaces, mounts, pivot_root), setpcap (the inner pflask cuts its
    -- container's bounding set) and sys_chroot, which is all the inner
    -- pflask needs; no --caps=+all. The inner container may mount its own
    -- /proc over the outer's masked one because the kernel only refuses
    -- that (mnt_too_revealing) inside a user namespace. The outer shares
    -- the host's network, for apt.
    local script = table.concat({
      "set -e",
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update -qq >/tmp/apt.log 2>&1 || { cat /tmp/apt.log >&2; exit 1; }",
      "apt-get install -y -qq --no-install-recommends /pkg/" .. name .. " lua5.4 >/tmp/apt.log 2>&1"
        .. " || { cat /tmp/apt.log >&2; exit 1; }",
      "echo \"OUTER=$(readlink /proc/self/ns/pid)\"",
      "echo \"EXE=$(command -v pflask)\"",
      "pflask --version | sed 's/^/VERSION=/'",
      "echo \"MAN1=$(man -w pflask)\"",
      "echo \"MAN_DEBUILD=$(man -w pflask-debuild)\"",
      "echo \"MAN7=$(man -w 7 pflask-recipes)\"",
      "echo \"LINK=$(readlink /usr/bin/pflask-debuild)\"",
      "pflask -- sh -c 'echo \"INNER=pid $$ $(readlink /proc/self/ns/pid)\"'",
      "echo \"INNER_STATUS=$?\"",
      -- Rootless in there: an unprivileged user of the outer container.
      -- Its pflask mounts a /proc in a user namespace of its own, which the
      -- kernel allows only when the mount namespace already shows a procfs
      -- with nothing hidden (mnt_too_revealing); the outer /proc has
      -- pflask's masks, so a whole one is mounted aside first, as
      -- rootless podman-in-podman needs (unmask=/proc/*).
      "useradd --create-home pftinner",
      "mkdir /run/fullproc && mount -t proc proc /run/fullproc",
      "setpriv --reuid=pftinner --regid=pftinner --init-groups env HOME=/home/pftinner"
        .. " pflask -- sh -c 'echo \"ROOTLESS=pid $$ uid $(id -u) $(cat /proc/self/uid_map)\"'",
      "echo \"ROOTLESS_STATUS=$?\"",
      "echo \"INNER_UID=$(id -u pftinner)\"",
      "lua5.4 -e 'local c = require \"pflask.core\"; print(\"CORE=\" .. type(c))'",
      "bash -c '. /usr/share/bash-completion/completions/pflask && complete -p pflask' | sed 's/^/BASH=/'",
    }, "\n")
    local r = pft.pflask({ "--chroot=" .. BASE, "--ephemeral", "--mount=bind-ro:" .. parent .. ":/pkg", "--",
                           "/bin/sh", "-c", script }, { timeout = 900 })
    assert.are.equal(0, r.status, report(r))
    local out = r.stdout
    local function value(key)
      for line in out:gmatch("[^\n]+") do
        local v = line:match("^" .. key .. "=(.*)$")
        if v then return v end
      end
    end
    assert.are.equal("/usr/bin/pflask", value("EXE"))
    -- pflask --version: the CMakeLists version, and the machined support
    -- that libsystemd-dev in Build-Depends brings.
    assert.are.equal("pflask " .. version, value("VERSION"))
    assert.matches("VERSION=[^\n]*%+machined", out)
    assert.are.equal("/usr/share/man/man1/pflask.1.gz", value("MAN1"))
    assert.are.equal("/usr/share/man/man1/pflask-debuild.1.gz", value("MAN_DEBUILD"))
    assert.are.equal("/usr/share/man/man7/pflask-recipes.7.gz", value("MAN7"))
    assert.are.equal("pflask", value("LINK"))
    -- The inner container: pid 2 (the reaper is pid 1) in a pid namespace
    -- that is not the outer container's.
    assert.are.equal("0", value("INNER_STATUS"), report(r))
    local inner_pid, inner_ns = (value("INNER") or ""):match("^pid (%d+) (pid:%[%d+%])$")
    assert.are.equal("2", inner_pid, report(r))
    assert.matches("^pid:%[%d+%]$", value("OUTER"))
    assert.are_not.equal(value("OUTER"), inner_ns)
    -- The rootless one: root (uid 0) in its own user namespace, which maps
    -- it to the unprivileged user outside.
    assert.are.equal("0", value("ROOTLESS_STATUS"), report(r))
    local rpid, ruid, inside, outside, count =
      (value("ROOTLESS") or ""):match("^pid (%d+) uid (%d+)%s+(%d+)%s+(%d+)%s+(%d+)$")
    assert.are.equal("2", rpid, report(r))
    assert.are.equal("0", ruid)
    assert.are.equal("0", inside)
    assert.are.equal(value("INNER_UID"), outside)
    assert.are.equal("1", count)
    -- Stock lua5.4 finds the module where the package put it.
    assert.are.equal("table", value("CORE"))
    assert.matches("^complete .* pflask$", value("BASH"))
    -- The base is untouched (--ephemeral), and the build left nothing in
    -- its temporary directory.
    assert.is_false(exists(BASE .. "/usr/bin/pflask"))
    assert.are.equal("", (pft.capture("ls -A " .. pft.quote(tmpdir))))
  end)
end)
