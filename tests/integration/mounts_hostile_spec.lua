-- Hostile root filesystems: symlinks inside a --chroot tree, absolute or
-- ..-laden, used as mount targets or standing in for /dev and /proc, must
-- never make pflask create or mount anything outside the tree. Each case
-- says what it expects: the operation lands inside the root (resolved as
-- the container will see it), or pflask refuses it with 125.
local pft = require "pftest"

local write_file = pft.write_file

local read_file = pft.read_file

local exists = pft.lexists

local function unique(tag)
  return string.format("pftest-%s-%d-%06d", tag, os.time(), math.random(0, 999999))
end

local snapshot = pft.snapshot

-- Mount points in a mountinfo text, as a set.
local function mountpoints(text)
  local set = {}
  for mp in text:gmatch("[^\n]-%S+ %S+ %S+ %S+ (%S+)[^\n]*") do set[mp] = true end
  return set
end

-- The names in the host's /etc, less the lock, backup and temporary files
-- that useradd, userdel and usermod make while specs running at the same
-- time add their throwaway users.
local function etc_names()
  return (pft.capture("cd /etc && ls -A | grep -Ev '(\\.lock|[-+]|\\.[0-9]+)$' | md5sum"))
end

-- The host's /etc/passwd, less the throwaway users (pftNNN) that specs
-- running at the same time add and remove.
local function host_passwd_text()
  return (pft.capture("grep -v '^pft[0-9]' /etc/passwd"))
end

describe("hostile root filesystems", function()
  local root, src, name, mounts_before, dirs, host_paths, host_etc

  before_each(function()
    mounts_before = pft.mounts()
    host_etc = etc_names()
    dirs, host_paths = {}, {}
    root = pft.tempdir("hostile")
    src = pft.tempdir("src")
    dirs[1], dirs[2] = root, src
    pft.make_rootfs(root)
    write_file(src .. "/file", "from the host source\n")
    name = unique("h")
    -- The symlinks of the issue.
    assert(pft.sh("ln -s / " .. root .. "/evil") == 0)
    assert(pft.sh("ln -s /etc " .. root .. "/etc2") == 0)
    assert(pft.sh("ln -s ../../../../../tmp " .. root .. "/up") == 0)
  end)

  after_each(function()
    local leaked = {}
    for _, p in ipairs(host_paths) do
      if exists(p) then leaked[#leaked + 1] = p end
    end
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    for _, p in ipairs(host_paths) do
      -- Never remove what a test did not create: only our unique names.
      if p:find(name, 1, true) and exists(p) then pft.sh("rm -rf " .. pft.quote(p)) end
    end
    assert.same({}, leaked, "created on the host")
    assert.equal(mounts_before, pft.mounts())
    assert.equal(host_etc, etc_names())
  end)

  -- Host paths that must not exist after the test.
  local function never_on_host(...)
    for _, p in ipairs({ ... }) do
      assert.is_false(exists(p), p .. " exists before the test")
      host_paths[#host_paths + 1] = p
    end
  end

  local function pflask(args)
    local argv = { "--chroot=" .. root }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return pft.pflask(argv)
  end

  -- Lands inside: tmp:/evil/NAME, /evil -> /, is the root's /NAME.
  it("an absolute symlink to / as a target's parent: lands inside the root", function()
    never_on_host("/" .. name)
    local r = pflask({ "--mount=tmp:/evil/" .. name, "--", "cat", "/proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.is_true(mountpoints(r.stdout)["/" .. name], r.stdout)
    assert.equal(0, pft.sh("test -d " .. root .. "/" .. name .. " && ! test -L " .. root .. "/" .. name))
  end)

  -- Lands inside: bind:FILE:/etc2/NAME, /etc2 -> /etc, is the root's /etc/NAME.
  it("an absolute symlink to /etc: a bound file lands in the root's /etc", function()
    never_on_host("/etc/" .. name)
    local r = pflask({ "--mount=bind:" .. src .. "/file:/etc2/" .. name, "--", "sh", "-c",
      "cat /etc/" .. name .. "; cat /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^from the host source\n", r.stdout)
    assert.is_true(mountpoints(r.stdout)["/etc/" .. name], r.stdout)
    assert.equal(0, pft.sh("test -f " .. root .. "/etc/" .. name))
  end)

  -- Lands inside: tmp:/up/NAME, /up -> ../../../../../tmp, is the root's /tmp/NAME.
  it("a ..-laden symlink: lands in the root's /tmp", function()
    never_on_host("/tmp/" .. name)
    local r = pflask({ "--mount=tmp:/up/" .. name, "--", "cat", "/proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.is_true(mountpoints(r.stdout)["/tmp/" .. name], r.stdout)
    assert.equal(0, pft.sh("test -d " .. root .. "/tmp/" .. name))
  end)

  -- Lands inside: /../../../tmp/NAME cannot climb above the root.
  it("a target with .. above the root: lands in the root's /tmp", function()
    never_on_host("/tmp/" .. name)
    local r = pflask({ "--mount=tmp:/../../../../tmp/" .. name, "--", "cat", "/proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.is_true(mountpoints(r.stdout)["/tmp/" .. name], r.stdout)
    assert.equal(0, pft.sh("test -d " .. root .. "/tmp/" .. name))
  end)

  -- Lands inside: binding over /etc2/passwd covers the root's /etc/passwd,
  -- never the host's.
  it("binding over an existing file through a symlink covers the root's file only", function()
    local host_passwd = host_passwd_text()
    local before = snapshot(root)
    local r = pflask({ "--mount=bind-ro:" .. src .. "/file:/etc2/passwd", "--", "sh", "-c",
      "cat /etc/passwd; grep ' /etc/passwd ' /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^from the host source\n[^\n]* /etc/passwd ro", r.stdout)
    assert.equal(host_passwd, host_passwd_text())
    assert.equal(before, snapshot(root))
  end)

  -- Refused (125): a dangling symlink naming a host path is not followed
  -- out of the root, and pflask does not create through it.
  it("dangling symlinks to host paths: refused, the host path untouched", function()
    local decoy = "/tmp/" .. name .. "-decoy"
    assert(pft.sh("mkdir " .. decoy) == 0)
    host_paths[#host_paths + 1] = decoy .. "/made"
    local ok, err = pcall(function()
      assert(pft.sh("ln -s " .. decoy .. "/made " .. root .. "/dang-abs") == 0)
      assert(pft.sh("ln -s ../../../../../.." .. decoy .. "/made " .. root .. "/dang-rel") == 0)
      assert(pft.sh("ln -s " .. decoy .. " " .. root .. "/dang-dir") == 0)
      for _, target in ipairs({ "/dang-abs", "/dang-rel", "/dang-dir/made", "/dang-abs/sub" }) do
        for _, m in ipairs({ "bind:" .. src .. ":", "bind:" .. src .. "/file:", "tmp:" }) do
          local r = pflask({ "--mount=" .. m .. target, "--", "true" })
          assert.equal(125, r.status, m .. target .. ": " .. r.stderr)
          assert.matches("^pflask: %-%-mount[^\n]*\n$", r.stderr)
        end
      end
      assert.equal("", pft.capture("ls -A " .. decoy))
    end)
    pft.sh("rm -rf " .. pft.quote(decoy))
    assert(ok, err)
  end)

  -- Lands inside: /dev -> /etc makes the root's /etc the container's /dev.
  it("a /dev that is an absolute symlink: populated inside the root", function()
    never_on_host("/etc/null", "/etc/pts", "/etc/shm")
    assert(pft.sh("rmdir " .. root .. "/dev && ln -s /etc " .. root .. "/dev") == 0)
    local r = pflask({ "--", "sh", "-c", "echo x >/dev/null && echo null-ok; grep -c ' /etc' /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^null%-ok\n", r.stdout)
    assert.equal(0, pft.sh("test -L " .. root .. "/dev"))
  end)

  -- Neither: /dev and /proc naming a host directory (through .. or
  -- absolutely) resolve inside the root, where nothing is there: the
  -- container goes without them and the host directory stays empty.
  it("a /dev and /proc pointing at a host directory: nothing mounted there", function()
    local decoy = "/tmp/" .. name .. "-decoy"
    assert(pft.sh("mkdir -p " .. decoy .. "/dev " .. decoy .. "/proc") == 0)
    local ok, err = pcall(function()
      assert(pft.sh("rmdir " .. root .. "/dev " .. root .. "/proc") == 0)
      assert(pft.sh("ln -s ../../../../../.." .. decoy .. "/dev " .. root .. "/dev") == 0)
      assert(pft.sh("ln -s " .. decoy .. "/proc " .. root .. "/proc") == 0)
      local r = pflask({ "--", "sh", "-c", "test -e /dev/null || echo no-dev; test -e /proc/self || echo no-proc" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("no-dev\nno-proc\n", r.stdout)
      assert.equal("", pft.capture("ls -A " .. decoy .. "/dev " .. decoy .. "/proc | grep -v : | grep ."))
    end)
    pft.sh("rm -rf " .. pft.quote(decoy))
    assert(ok, err)
  end)

  -- Lands inside: /proc -> /etc mounts proc (and the read-only /proc/sys)
  -- on the root's /etc, not the host's.
  it("a /proc that is an absolute symlink: mounted inside the root", function()
    never_on_host("/etc/self")
    assert(pft.sh("rmdir " .. root .. "/proc && ln -s /etc " .. root .. "/proc") == 0)
    local r = pflask({ "--", "sh", "-c", "cat /proc/1/comm; cat /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^pflask%-init\n", r.stdout)
    local mps = mountpoints(r.stdout)
    assert.is_true(mps["/etc"], r.stdout)
    assert.is_true(mps["/etc/sys"], r.stdout)
  end)

  -- Lands inside, and the chroot is unchanged: --ephemeral with the same
  -- symlinked targets.
  it("with --ephemeral: symlinked targets land in the ephemeral layer", function()
    never_on_host("/" .. name, "/etc/" .. name, "/tmp/" .. name)
    local before = snapshot(root)
    local r = pflask({ "--ephemeral", "--mount=tmp:/evil/" .. name,
      "--mount=bind:" .. src .. "/file:/etc2/" .. name, "--mount=tmp:/up/" .. name, "--",
      "cat", "/proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    local mps = mountpoints(r.stdout)
    assert.is_true(mps["/" .. name] and mps["/etc/" .. name] and mps["/tmp/" .. name], r.stdout)
    assert.equal(before, snapshot(root))
  end)
end)
