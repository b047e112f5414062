-- Every path inside the root is resolved inside the root (issue 11, item
-- 4). The attack: a hostile image whose /run is a symlink to a host
-- directory holding pflask/hostname -> a secret file; the image also has
-- that path as a directory of its own, so that every step resolved inside
-- the root succeeds. Booted with --hostname (an init as pid 1), pflask
-- used to bind root .. "/run/pflask/hostname", resolved on the host: the
-- secret became the container's /etc/hostname.
local pft = require "pftest"

describe("attack: paths joined to the root", function()
  local dir, root, secret, hostrun

  before_each(function()
    dir = pft.tempdir("atkpath")
    root = pft.make_rootfs(dir .. "/root")
    secret = dir .. "/secret"
    pft.write_file(secret, "SECRET-" .. math.random(100000, 999999) .. "\n")
    assert(pft.sh("chmod 0600 " .. secret) == 0)
    hostrun = dir .. "/hostrun"
    assert(pft.sh("mkdir -p " .. hostrun .. "/pflask && ln -s " .. secret .. " " .. hostrun .. "/pflask/hostname") == 0)
    pft.write_file(root .. "/etc/hostname", "imagehost\n")
    -- The same path inside the image, as a directory.
    assert(pft.sh("mkdir -p " .. root .. hostrun) == 0)
  end)

  after_each(function() pft.rm_rf(dir) end)

  local function boot_cat_hostname(extra)
    local args = { "--chroot=" .. root, "--hostname=h", "--as-pid1" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    for _, a in ipairs({ "--", "/bin/sh", "-c", "cat /etc/hostname; ls /run/pflask" }) do args[#args + 1] = a end
    local r = pft.pflask(args)
    -- A boot's console is a pty: its output has CRLF line ends.
    r.stdout = r.stdout:gsub("\r\n", "\n")
    return r
  end

  local function assert_no_leak(r)
    local s = pft.read_file(secret)
    assert.is_nil(r.stdout:find(s, 1, true), "the host's secret reached the container")
    assert.is_nil(r.stderr:find(s, 1, true), "the host's secret reached the container")
    assert.equal(s, pft.read_file(secret))
    assert.equal(secret, pft.capture("readlink " .. hostrun .. "/pflask/hostname"))
  end

  for _, form in ipairs({ "absolute", "relative" }) do
    for _, user in ipairs({ false, "alice" }) do
      local label = form .. " /run symlink" .. (user and ", --user=" .. user or "")
      it(label .. ": the container sees the name asked for, never the host's file", function()
        local target = hostrun
        if form == "relative" then target = ("../"):rep(12) .. hostrun:sub(2) end
        assert(pft.sh("rmdir " .. root .. "/run 2>/dev/null; ln -sfn " .. pft.quote(target) .. " " .. root .. "/run") == 0)
        local r = boot_cat_hostname(user and { "--user=" .. user } or nil)
        assert_no_leak(r)
        assert.equal(0, r.status, r.stderr)
        assert.equal("h\nhostname\n", r.stdout)
        -- The image on disk is untouched: the name lived on a tmpfs.
        assert.equal("imagehost\n", pft.read_file(root .. "/etc/hostname"))
        assert.equal("", pft.capture("ls -A " .. root .. hostrun))
      end)
    end
  end

  it("an image without /run: only its mount point is made in the image, the name lives on a tmpfs", function()
    assert(pft.sh("rmdir " .. root .. "/run") == 0)
    local r = boot_cat_hostname()
    assert_no_leak(r)
    -- pflask 0.2 and nspawn make /run inside the root; what goes there
    -- stays on the container's tmpfs.
    assert.equal("h\n", r.stdout:match("^[^\n]*\n"))
    assert.equal("imagehost\n", pft.read_file(root .. "/etc/hostname"))
    assert.equal("", pft.capture("ls -A " .. root .. "/run"))
  end)

  it("a /proc that is a symlink out of the root is resolved inside it", function()
    -- /proc -> the host's real /proc path, which exists inside as an
    -- empty directory: the container's /proc is mounted there, never on
    -- the host's, and the host is not asked about it.
    assert(pft.sh("rmdir " .. root .. "/proc && mkdir -p " .. root .. dir .. "/p && ln -s " .. dir .. "/p "
      .. root .. "/proc") == 0)
    local mounts_before = pft.mounts()
    local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", "test -e /proc/self/status && echo proc" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("proc\n", r.stdout)
    assert.equal("", pft.capture("ls -A " .. dir .. "/p"))
    -- Nothing mounted on the host (a line count > 0 was checked here,
    -- which no failure could change).
    assert.equal(mounts_before, pft.mounts())
  end)
end)
