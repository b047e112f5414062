-- Mounts that compose, read-only roots, bind flags and pflask 0.2's
-- compatibility (issue 12): sources opened before any mount (hide the home,
-- keep one project), mount points made inside pflask's own tmpfs, user
-- mounts after pflask's /proc /sys /dev /run (a device bound into a
-- chroot's /dev), a root made from nothing, --read-only, nosuid / nodev /
-- noexec / optional, /run a tmpfs, /dev /proc /sys /run made in a root
-- without them, comma lists, the login shell, unique option prefixes; bad
-- input for each. As root, then as an unprivileged user.
local pft = require "pftest"

local EXTRA_APPLETS = { "stat", "rm", "mkdir", "cut", "head", "tr", "chmod", "mknod" }

local exists = pft.lexists

-- (Without modification times.)
local function snapshot(dir) return pft.snapshot(dir, { times = false }) end

-- mountinfo text -> { [mountpoint] = {options=, fstype=, super=} } (last wins).
local parse_mountinfo = pft.parse_mountinfo

local function has_option(options, word)
  return ("," .. options .. ","):find("," .. word .. ",", 1, true) ~= nil
end

local function one_error_line(r, prefix)
  assert.equal(125, r.status, r.stdout .. r.stderr)
  assert.matches("^pflask: " .. prefix:gsub("[%-%.%(%)%[%]%+%*%?]", "%%%0") .. "[^\n]*\n$", r.stderr)
end

-- A recipe that runs one spec: `return pflask.run(SPEC)`.
local function recipe_text(spec_lua)
  return "local pflask = require 'pflask'\nreturn pflask.run(" .. spec_lua .. ")\n"
end

-- The spec of a root made from nothing: a tmpfs, /bin with the host's
-- static busybox bound in, links, files, /proc, /dev, a /tmp.
local function from_nothing_spec(hostfile, script)
  return string.format([[{
  command = { "/bin/busybox", "sh", "-c", %q },
  mounts = {
    { type = "tmp", target = "/" },
    { type = "dir", target = "/bin", mode = tonumber("0711", 8) },
    { type = "bind", source = "/bin/busybox", target = "/bin/busybox", readonly = true },
    { type = "symlink", to = "busybox", target = "/bin/sh" },
    { type = "symlink", to = "/bin", target = "/usr/bin" },
    { type = "file", target = "/etc/motd", content = "built from nothing\n", mode = tonumber("0600", 8) },
    { type = "file", target = "/etc/copied", source = %q },
    { type = "proc" },
    { type = "dev" },
    { type = "tmp", target = "/tmp" },
  },
}]], script, hostfile)
end

local FROM_NOTHING_SCRIPT = table.concat({
  "cat /etc/motd /etc/copied",
  "/bin/busybox stat -c '%a %n' /bin /etc/motd /etc/copied",
  "/bin/busybox readlink /bin/sh", "/bin/busybox readlink /usr/bin",
  "echo x >/dev/null && echo devnull-ok",
  "test -e /proc/self/status && echo proc-ok",
  "echo y >/tmp/y && echo tmp-ok",
  "/bin/busybox ls /",
  "/bin/busybox grep ' / / ' /proc/self/mountinfo",
}, "; ")

local function check_from_nothing(r)
  assert.equal(0, r.status, r.stderr)
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
  assert.equal("built from nothing", lines[1])
  assert.equal("copied from the host", lines[2])
  assert.equal("711 /bin", lines[3])
  assert.equal("600 /etc/motd", lines[4])
  assert.equal("644 /etc/copied", lines[5])
  assert.equal("busybox", lines[6])
  assert.equal("/bin", lines[7])
  assert.equal("devnull-ok", lines[8])
  assert.equal("proc-ok", lines[9])
  assert.equal("tmp-ok", lines[10])
  -- Only what the spec made.
  assert.same({ "bin", "dev", "etc", "proc", "tmp", "usr" }, { lines[11], lines[12], lines[13], lines[14], lines[15], lines[16] })
  assert.matches(" / / .* %- tmpfs ", lines[17])
  assert.is_nil(lines[18], r.stdout)
end

describe("mounts that compose (as root)", function()
  local dirs, mounts_before

  local function tempdir(tag)
    local d = pft.tempdir(tag)
    dirs[#dirs + 1] = d
    return d
  end

  local function make_root()
    local d = tempdir("croot")
    pft.make_rootfs(d)
    for _, a in ipairs(EXTRA_APPLETS) do pft.sh("ln -sf busybox " .. d .. "/bin/" .. a) end
    return d
  end

  before_each(function()
    dirs = {}
    mounts_before = pft.mounts()
  end)

  after_each(function()
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    assert.equal(mounts_before, pft.mounts())
  end)

  describe("sources opened before any mount", function()
    it("hides the home directory and keeps one project (tmp:$HOME, bind:$HOME/project:$HOME/project)", function()
      local home = tempdir("home")
      assert(pft.sh("mkdir " .. home .. "/project " .. home .. "/secret") == 0)
      pft.write_file(home .. "/project/code", "code\n")
      pft.write_file(home .. "/secret/key", "KEY\n")
      pft.write_file(home .. "/.profile", "profile\n")
      local r = pft.pflask({ "--mount=tmp:" .. home, "--mount=bind:" .. home .. "/project:" .. home .. "/project",
        "--", "sh", "-c", "ls -A " .. home .. "; cat " .. home .. "/project/code; echo new >" .. home
        .. "/project/out; cat " .. home .. "/secret/key 2>/dev/null || echo no-secret" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("project\ncode\nno-secret\n", r.stdout)
      -- Writes to the project reach the host; the home is as it was.
      assert.equal("new\n", pft.read_file(home .. "/project/out"))
      assert.equal("KEY\n", pft.read_file(home .. "/secret/key"))
      assert.equal(".profile\nproject\nsecret\n", (pft.capture("ls -A " .. home)) .. "\n")
    end)

    it("the same inside a --chroot, with mount points made in the tmp only", function()
      local root = make_root()
      local host = tempdir("proj")
      pft.write_file(host .. "/code", "code\n")
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root, "--mount=tmp:/home/alice,bind:" .. host .. ":/home/alice/a/project",
        "--", "sh", "-c", "ls -A /home/alice; ls -A /home/alice/a; cat /home/alice/a/project/code" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("a\nproject\ncode\n", r.stdout)
      assert.equal(before, snapshot(root))
    end)

    it("errors say whether the source or the target is missing", function()
      local d = tempdir("err")
      one_error_line(pft.pflask({ "--mount=bind:" .. d .. "/nope:" .. d, "true" }),
        "--mount: bind source '" .. d .. "/nope' does not exist")
      one_error_line(pft.pflask({ "--mount=bind:" .. d .. ":" .. d .. "/nope", "true" }),
        "--mount: bind target '" .. d .. "/nope' does not exist")
      one_error_line(pft.pflask({ "--mount=tmp:" .. d .. "/nope", "true" }),
        "--mount: tmp target '" .. d .. "/nope' does not exist")
      assert.is_false(exists(d .. "/nope"))
    end)

    it("never makes a mount point on the host: only inside a tmp pflask mounted before", function()
      local d = tempdir("host")
      -- Under the host directory itself: refused, nothing created.
      one_error_line(pft.pflask({ "--mount=bind:/etc:" .. d .. "/x/y", "true" }),
        "--mount: bind target '" .. d .. "/x/y' does not exist")
      one_error_line(pft.pflask({ "--mount=dir:" .. d .. "/x", "true" }),
        "--mount: dir '" .. d .. "/x' can only be made inside --chroot or inside a tmp")
      -- A tmp after the bind does not count: order matters.
      one_error_line(pft.pflask({ "--mount=bind:/etc:" .. d .. "/t/x", "--mount=tmp:" .. d, "true" }),
        "--mount: bind target '" .. d .. "/t/x' does not exist")
      assert.equal("", pft.capture("ls -A " .. d))
      -- Under a tmp: made there, and gone with the container.
      local r = pft.pflask({ "--mount=tmp:" .. d .. ",dir:" .. d .. "/x/y,symlink:/etc:" .. d .. "/l,bind:/etc:" .. d
        .. "/x/e", "--", "sh", "-c", "ls " .. d .. "; ls " .. d .. "/x; test -e " .. d .. "/x/e/passwd && echo bound" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("l\nx\ne\ny\nbound\n", r.stdout)
      assert.equal("", pft.capture("ls -A " .. d))
    end)
  end)

  describe("user mounts after pflask's /proc, /sys, /dev and /run", function()
    it("a device bound into a --chroot's /dev is there and opens; nothing left in the image", function()
      local root = make_root()
      local before = snapshot(root)
      local dev = exists("/dev/net/tun") and "/dev/net/tun" or "/dev/fuse"
      if not exists(dev) then pending("no /dev/net/tun or /dev/fuse on this host") return end
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. dev .. ":" .. dev, "--", "sh", "-c",
        "test -c " .. dev .. " && echo char; exec 3<>" .. dev .. " && echo opened; grep ' " .. dev .. " ' /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^char\nopened\n[^\n]* " .. dev:gsub("%p", "%%%0") .. " ", r.stdout)
      assert.equal(before, snapshot(root))
      assert.equal("", pft.capture("ls -A " .. root .. "/dev"))
    end)

    it("a mount on /proc/... or /run/... lands on pflask's filesystems", function()
      local root = make_root()
      local r = pft.pflask({ "--chroot=" .. root, "--mount=tmp:/run/x", "--", "sh", "-c",
        "grep -E ' /run(/x)? ' /proc/self/mountinfo | cut -d' ' -f5" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("/run\n/run/x\n", r.stdout)
      assert.is_false(exists(root .. "/run/x"))
    end)
  end)

  describe("a root made from nothing", function()
    it("runs a static busybox from a tmpfs root with dir, symlink, file, proc, dev and tmp entries", function()
      local d = tempdir("nothing")
      pft.write_file(d .. "/copied", "copied from the host\n")
      local recipe = pft.write_file(d .. "/r.lua", recipe_text(from_nothing_spec(d .. "/copied", FROM_NOTHING_SCRIPT)))
      check_from_nothing(pft.pflask({ "--recipe=" .. recipe }))
      -- The host's /tmp (where the root was put together) is untouched.
      assert.is_true(exists(d .. "/r.lua"))
    end)

    it("from the command line: --mount=tmp:/ first, then what fills it; --read-only on it", function()
      local r = pft.pflask({ "--read-only", "--mount=tmp:/,dir:/bin,bind-ro:/bin/busybox:/bin/busybox,symlink:busybox:/bin/sh,tmp:/tmp",
        "--", "/bin/busybox", "sh", "-c", "/bin/busybox ls /; /bin/busybox touch /x 2>&1; /bin/busybox touch /tmp/x && echo tmp-ok" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("bin\ntmp\ntouch: /x: Read-only file system\ntmp-ok\n", r.stdout)
      one_error_line(pft.pflask({ "--mount=tmp:/tmp,tmp:/", "true" }), "--mount: tmp on '/' makes a root from nothing: only as the first mount")
      local root = make_root()
      one_error_line(pft.pflask({ "--chroot=" .. root, "--mount=tmp:/", "true" }), "--mount: tmp on '/' makes a root from nothing: leave --chroot out")
    end)

    it("with the classic dir: and symlink: forms inside a tmp", function()
      local root = make_root()
      local r = pft.pflask({ "--chroot=" .. root, "--mount=tmp:/opt,dir:/opt/a/b,symlink:a/b:/opt/l", "--", "sh", "-c",
        "ls -la /opt | grep -c ' l -> a/b'; test -d /opt/l && echo dir" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("1\ndir\n", r.stdout)
      -- The tmp's mount point is made in the root; what is in the tmp is not.
      assert.equal("", pft.capture("ls -A " .. root .. "/opt"))
    end)

    it("attack: dir, file and symlink entries through an image's symlinks to host paths stay inside the root", function()
      local root = make_root()
      local decoy = tempdir("decoy")
      assert(pft.sh("chmod 0700 " .. decoy .. " && echo host >" .. decoy .. "/keep") == 0)
      local before = snapshot(decoy) .. pft.capture("stat -c %a " .. decoy)
      -- The image: /evil -> the host directory (absolute), /up -> the same
      -- through .., and that path as a directory of the image too.
      assert(pft.sh("ln -s " .. decoy .. " " .. root .. "/evil && ln -s ../../../../../.." .. decoy .. " " .. root
        .. "/up && mkdir -p " .. root .. decoy) == 0)
      local d = tempdir("atkrecipe")
      local recipe = pft.write_file(d .. "/r.lua", recipe_text(string.format([[{
  root = %q, command = { "sh", "-c", "ls -l %s | tr -s ' ' | cut -d' ' -f1,9-" },
  mounts = {
    { type = "dir", target = "/evil", mode = tonumber("0777", 8) },
    { type = "file", target = "/evil/keep", content = "image\n", mode = tonumber("0666", 8) },
    { type = "file", target = "/up/new", content = "x" },
    { type = "symlink", to = "/etc/shadow", target = "/evil/l" },
    { type = "dir", target = "/up/sub/d" },
  },
}]], root, decoy)))
      local r = pft.pflask({ "--recipe=" .. recipe })
      assert.equal(0, r.status, r.stderr)
      assert.matches("keep", r.stdout)
      -- All of it landed in the image's own directory of that name.
      assert.equal("image\n", pft.read_file(root .. decoy .. "/keep"))
      assert.equal("777", pft.capture("stat -c %a " .. root .. decoy))
      assert.is_true(exists(root .. decoy .. "/new") and exists(root .. decoy .. "/l") and exists(root .. decoy .. "/sub/d"))
      assert.equal(before, snapshot(decoy) .. pft.capture("stat -c %a " .. decoy))
      assert.equal("host\n", pft.read_file(decoy .. "/keep"))
    end)

    it("bad spec entries: one line, 125, nothing left", function()
      local d = tempdir("badnothing")
      local cases = {
        { '{ type = "tmp", target = "/tmp" }, { type = "tmp", target = "/" }', "--mount: tmp on '/' makes a root from nothing: only as the first mount" },
        { '{ type = "dir" }', "--mount: dir needs a target" },
        { '{ type = "tmp", target = "/" }, { type = "dir", target = "/x", mode = 99999 }', "--mount: dir '/x': mode must be an integer from 0 to 07777" },
        { '{ type = "tmp", target = "/" }, { type = "symlink", target = "/x" }', "--mount: symlink '/x' needs 'to'" },
        { '{ type = "tmp", target = "/" }, { type = "file", target = "/x" }', "--mount: file '/x' needs either content or source" },
        { '{ type = "tmp", target = "/" }, { type = "file", target = "/x", content = "a", source = "/etc/passwd" }', "--mount: file '/x' needs either content or source" },
        { '{ type = "tmp", target = "/" }, { type = "file", target = "/x", source = "/etc" }', "--mount: file source '/etc' is not a regular file" },
        { '{ type = "tmp", target = "/" }, { type = "file", target = "/x", source = "/nonexistent-pf" }', "--mount: file source '/nonexistent-pf' does not exist" },
        { '{ type = "tmp", target = "/" }, { type = "bind", source = "/etc", target = "/e", nosuid = "yes" }', "mounts[2].nosuid: must be a boolean, not a string" },
        { '{ type = "tmp", target = "/" }, { type = "dir", target = "/" }', "--mount: dir cannot be '/'" },
        { '{ type = "nope", target = "/x" }', "--mount: 'nope' is not a mount type" },
        { '{ type = "file", target = "/etc/pf-x", content = "x" }', "--mount: file '/etc/pf-x' can only be made inside --chroot or inside a tmp" },
      }
      for i, c in ipairs(cases) do
        local recipe = pft.write_file(d .. "/r" .. i .. ".lua",
          recipe_text("{ command = { '/bin/true' }, mounts = { " .. c[1] .. " } }"))
        one_error_line(pft.pflask({ "--recipe=" .. recipe }), c[2])
      end
      local recipe = pft.write_file(d .. "/chroot.lua",
        recipe_text("{ root = " .. string.format("%q", d) .. ", command = { '/bin/true' }, mounts = { { type = 'tmp', target = '/' } } }"))
      one_error_line(pft.pflask({ "--recipe=" .. recipe }), "--mount: tmp on '/' makes a root from nothing: leave --chroot out")
      assert.is_false(exists("/etc/pf-x"))
    end)
  end)

  describe("--chroot=/", function()
    it("is refused with the reason, not pivot_root's EBUSY", function()
      for _, v in ipairs({ "/", "//", "/.", "/tmp/.." }) do
        one_error_line(pft.pflask({ "--chroot=" .. v, "true" }), "--chroot: '" .. v .. "' is the host's own root directory")
      end
    end)
  end)

  describe("--read-only", function()
    for _, ephemeral in ipairs({ false, true }) do
      it("refuses writes to the root (EROFS), --mount=tmp:/tmp stays writable" .. (ephemeral and ", with --ephemeral" or ""), function()
        local root = make_root()
        local before = snapshot(root)
        local args = { "--chroot=" .. root, "--read-only", "--mount=tmp:/tmp" }
        if ephemeral then args[#args + 1] = "--ephemeral" end
        for _, a in ipairs({ "--", "sh", "-c", "echo x >/new 2>/dev/null || echo refused; touch /etc/passwd 2>&1; "
          .. "echo y >/tmp/y && echo tmp-ok; echo z >/run/z && echo run-ok; awk '$5 == \"/\"' /proc/self/mountinfo" }) do
          args[#args + 1] = a
        end
        local r = pft.pflask(args)
        assert.equal(0, r.status, r.stderr)
        assert.matches("^refused\ntouch: /etc/passwd: Read%-only file system\ntmp%-ok\nrun%-ok\n", r.stdout)
        -- The root's own mount is read-only, one mount, not a bind stacked on it.
        local info = parse_mountinfo(r.stdout:match("run%-ok\n(.*)$"))
        assert.is_true(has_option(info["/"].options, "ro"), r.stdout)
        assert.equal(1, select(2, r.stdout:match("run%-ok\n(.*)$"):gsub("\n", "")), r.stdout)
        assert.equal(before, snapshot(root))
      end)
    end

    it("bind-ro:ROOT:/ is the classic way to ask for it", function()
      local root = make_root()
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind-ro:" .. root .. ":/", "--", "sh", "-c",
        "touch /x 2>&1; awk '$5 == \"/\" { print $6 }' /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^touch: /x: Read%-only file system\nro,", r.stdout)
      one_error_line(pft.pflask({ "--chroot=" .. root, "--mount=bind:/tmp:/", "true" }),
        "--mount: bind target '/' would replace the root")
      assert.is_false(exists(root .. "/x"))
    end)

    it("without --chroot: the host's root is read-only in the container only", function()
      local d = tempdir("rohost")
      local r = pft.pflask({ "--read-only", "--mount=tmp:" .. d, "--", "sh", "-c",
        "touch /pftest-ro-x 2>/dev/null || echo refused; touch " .. d .. "/ok && echo tmp-ok" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("refused\ntmp-ok\n", r.stdout)
      assert.is_false(exists("/pftest-ro-x"))
      assert.equal(0, pft.sh("touch " .. d .. "/host-writable"))
    end)

    it("attack: the command remounts the root read-write; without CAP_SYS_ADMIN it cannot", function()
      local root = make_root()
      pft.sh("ln -sf busybox " .. root .. "/bin/umount")
      local r = pft.pflask({ "--chroot=" .. root, "--read-only", "--caps=-sys_admin", "--", "sh", "-c",
        "mount -o remount,rw / 2>/dev/null && echo remounted; mount -o remount,bind,rw / 2>/dev/null && echo remounted; "
        .. "umount -l / 2>/dev/null && echo unmounted; touch /x 2>/dev/null || echo refused" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("refused\n", r.stdout)
      -- As alice (no capabilities at all) too.
      r = pft.pflask({ "--chroot=" .. root, "--read-only", "--user=alice", "--no-userns", "--", "sh", "-c",
        "mount -o remount,rw / 2>/dev/null && echo remounted; touch /home/alice/x 2>/dev/null || echo refused" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("refused\n", r.stdout)
      assert.is_false(exists(root .. "/x"))
      assert.is_false(exists(root .. "/home/alice/x"))
    end)

    it("needs a mount namespace", function()
      one_error_line(pft.pflask({ "--read-only", "--no-mountns", "true" }), "--read-only: needs a mount namespace")
    end)
  end)

  describe("bind flags", function()
    it("nosuid, nodev, noexec are in mountinfo and in effect", function()
      local root = make_root()
      local src = tempdir("flags")
      pft.write_file(src .. "/script", "#!/bin/sh\necho ran\n")
      assert(pft.sh("chmod 0755 " .. src .. "/script && mknod " .. src .. "/null c 1 3 && chmod 0666 " .. src .. "/null") == 0)
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/mnt/f:nosuid,nodev,noexec",
        "--", "sh", "-c", "grep ' /mnt/f ' /proc/self/mountinfo | cut -d' ' -f6; cat /mnt/f/null 2>/dev/null || echo nodev-refused" })
      assert.equal(0, r.status, r.stderr)
      local opts = r.stdout:match("^([^\n]*)\n")
      for _, w in ipairs({ "nosuid", "nodev", "noexec" }) do assert.is_true(has_option(opts, w), opts) end
      assert.matches("\nnodev%-refused\n$", r.stdout)
      -- A script on a noexec bind cannot be executed: 126.
      r = pft.pflask({ "--chroot=" .. root, "--mount=bind," .. src .. ",/mnt/f,noexec", "--", "/mnt/f/script" })
      assert.equal(126, r.status, r.stdout .. r.stderr)
      -- Without the flag it runs.
      r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/mnt/f", "--", "/mnt/f/script" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("ran\n", r.stdout)
    end)

    it("nosuid in effect: a set-user-id program on the bind runs with the caller's ids", function()
      local root = make_root()
      local src = tempdir("suid")
      pft.write_file(src .. "/euid.c", "#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"%d\\n\",(int)geteuid());return 0;}\n")
      if pft.sh("cc -static -o " .. src .. "/euid " .. src .. "/euid.c 2>/dev/null") ~= 0 then
        pending("no static C toolchain to build a set-user-id program")
        return
      end
      assert(pft.sh("chown root:root " .. src .. "/euid && chmod 4755 " .. src .. "/euid") == 0)
      local function euid(flags)
        local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--no-userns",
          "--mount=bind-ro:" .. src .. ":/mnt/s" .. flags, "--", "/mnt/s/euid" })
        assert.equal(0, r.status, r.stderr)
        return r.stdout
      end
      assert.equal("0\n", euid(""))          -- the control: set-user-id works
      assert.equal("1000\n", euid(":nosuid"))
    end)

    it("optional skips a missing source and binds a present one", function()
      local root = make_root()
      local src = tempdir("opt")
      pft.write_file(src .. "/here", "here\n")
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. src .. "/gone:/mnt/gone:optional,bind-ro:" .. src
        .. ":/mnt/here:optional", "--", "sh", "-c", "test -e /mnt/gone || echo skipped; cat /mnt/here/here" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("skipped\nhere\n", r.stdout)
      assert.is_false(exists(root .. "/mnt/gone"))
    end)

    it("bad flags: one line, 125", function()
      one_error_line(pft.pflask({ "--mount=bind:/tmp:/tmp:nosuid,suid", "true" }),
        "--mount: 'suid' is not a bind flag (nosuid, nodev, noexec, optional)")
      one_error_line(pft.pflask({ "--mount=tmp:/tmp:nosuid", "true" }), "--mount: 'tmp:/tmp:nosuid' needs 1 path")
    end)
  end)

  describe("compatibility with pflask 0.2", function()
    it("/run is a fresh tmpfs under --chroot; writes do not persist", function()
      local root = make_root()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c",
        "echo x >/run/pf && cat /run/pf; grep ' /run ' /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^x\n[^\n]* /run [^\n]* %- tmpfs ", r.stdout)
      assert.equal("", pft.capture("ls -A " .. root .. "/run"))
    end)

    it("a root without /dev, /proc, /sys and /run gets them, made inside it", function()
      local root = make_root()
      assert(pft.sh("rmdir " .. root .. "/dev " .. root .. "/proc " .. root .. "/sys " .. root .. "/run") == 0)
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c",
        "echo x >/dev/null && echo null-ok; test -e /proc/self/status && echo proc-ok; test -d /sys/kernel && echo sys-ok" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("null-ok\nproc-ok\nsys-ok\n", r.stdout)
      -- Empty mount points, nothing else.
      assert.equal("", pft.capture("ls -A " .. root .. "/dev " .. root .. "/proc " .. root .. "/sys " .. root .. "/run | grep -v : | grep ."))
    end)

    for _, form in ipairs({ "absolute", "relative" }) do
      it("attack: a /run that is a dangling " .. form .. " symlink to a host path is not made on the host", function()
        local root = make_root()
        local decoy = tempdir("decoy")
        local target = decoy .. "/made"
        if form == "relative" then target = ("../"):rep(12) .. target:sub(2) end
        assert(pft.sh("rmdir " .. root .. "/run && ln -s " .. pft.quote(target) .. " " .. root .. "/run") == 0)
        local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", "test -d /run || echo no-run" })
        assert.equal(0, r.status, r.stderr)
        assert.equal("no-run\n", r.stdout)
        assert.equal("", pft.capture("ls -A " .. decoy))
        assert.equal(0, pft.sh("test -L " .. root .. "/run"))
      end)
    end

    it("comma lists: --mount=bind:/a:/b,tmp:/c, --user-map=A,B, --cgroup=a,b", function()
      local root = make_root()
      local src = tempdir("list")
      pft.write_file(src .. "/f", "f\n")
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/tmp/b,tmp:/tmp/c",
        "--user-map=0:100000:1000,1000:101000:1000", "--", "sh", "-c",
        "cat /tmp/b/f; grep -c ' /tmp/c ' /proc/self/mountinfo; cat /proc/self/uid_map | tr -s ' '" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("f\n1\n 0 100000 1000\n 1000 101000 1000\n", r.stdout)
      -- Both controllers of the list reach the cgroup concern: the second
      -- one is checked against the host as the first is.
      r = pft.pflask({ "--cgroup=pids,memory", "--", "true" })
      assert.equal(0, r.status, r.stderr)
      one_error_line(pft.pflask({ "--cgroup=pids,nope_pf", "true" }), "--cgroup: 'nope_pf' is not a cgroup controller")
    end)

    it("with no command the shell starts as a login shell (argv[0] '-sh')", function()
      local root = make_root()
      pft.write_file(root .. "/etc/profile", "echo profile-read\n")
      local r = pft.pflask({ "--chroot=" .. root }, { stdin = "tr '\\0' ' ' </proc/$$/cmdline; echo; readlink /proc/$$/exe\n" })
      assert.equal(0, r.status, r.stderr)
      -- A login shell reads the profile.
      assert.equal("profile-read\n-sh \n/bin/busybox\n", r.stdout)
      -- Without --chroot: $SHELL, by its name.
      r = pft.pflask({}, { stdin = "tr '\\0' ' ' </proc/$$/cmdline\n", env = { SHELL = "/bin/bash" } })
      assert.equal(0, r.status, r.stderr)
      assert.equal("-bash ", r.stdout)
    end)

    it("unique prefixes of long options, as getopt_long", function()
      local root = make_root()
      local r = pft.pflask({ "--chr=" .. root, "--host=pfx", "--", "hostname" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("pfx\n", r.stdout)
      r = pft.pflask({ "--no", "true" })
      one_error_line(r, "--no: ambiguous option (could be --no-new-privs, --no-userns")
    end)
  end)
end)

describe("mounts that compose (rootless)", function()
  local user, name, uid, home, dirs, mounts_before

  setup(function()
    user = pft.rootless_user()
    name, uid, home = user.name, user.uid, user.home
  end)

  teardown(function()
    if user then user:remove() end
  end)

  local function run(args, opts)
    return user:pflask(args, { login = true, env = opts and opts.env, stdin = opts and opts.stdin })
  end

  -- A directory owned by the user, removed after the test.
  local function userdir(tag)
    local d = user:dir(tag)
    dirs[#dirs + 1] = d
    return d
  end

  local function user_root()
    local d = userdir("uroot")
    pft.make_rootfs(d)
    for _, a in ipairs(EXTRA_APPLETS) do pft.sh("ln -sf busybox " .. d .. "/bin/" .. a) end
    assert(pft.sh("chown -R " .. name .. ": " .. d) == 0)
    return d
  end

  before_each(function()
    dirs = {}
    mounts_before = pft.mounts()
    local r = run({ "true" })
    if r.status ~= 0 then pending("unprivileged user namespaces unavailable: " .. r.stderr) end
  end)

  after_each(function()
    local procs = pft.capture("pgrep -u " .. uid .. " | wc -l")
    pft.sh("pkill -KILL -u " .. uid .. " 2>/dev/null")
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    assert.equal(mounts_before, pft.mounts())
    assert.equal("0", procs, "processes left behind")
  end)

  it("hides the home directory and keeps one project", function()
    assert(pft.sh("mkdir -p " .. home .. "/project " .. home .. "/secret && echo code >" .. home
      .. "/project/code && echo KEY >" .. home .. "/secret/key && chown -R " .. name .. ": " .. home) == 0)
    local r = run({ "--mount=tmp:" .. home, "--mount=bind:" .. home .. "/project:" .. home .. "/project",
      "--", "sh", "-c", "ls -A " .. home .. "; cat " .. home .. "/project/code; echo new >" .. home .. "/project/out; "
      .. "cat " .. home .. "/secret/key 2>/dev/null || echo no-secret" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("project\ncode\nno-secret\n", r.stdout)
    assert.equal("new\n", pft.read_file(home .. "/project/out"))
    assert.equal("KEY\n", pft.read_file(home .. "/secret/key"))
  end)

  it("runs a static busybox in a root made from nothing", function()
    local d = userdir("unothing")
    pft.write_file(d .. "/copied", "copied from the host\n")
    local recipe = pft.write_file(d .. "/r.lua", recipe_text(from_nothing_spec(d .. "/copied", FROM_NOTHING_SCRIPT)))
    pft.sh("chmod 0644 " .. d .. "/r.lua " .. d .. "/copied")
    check_from_nothing(run({ "--recipe=" .. recipe }))
  end)

  it("--read-only refuses writes, a tmp on /tmp and /run stay writable", function()
    local root = user_root()
    local before = snapshot(root)
    local r = run({ "--chroot=" .. root, "--read-only", "--mount=tmp:/tmp", "--", "sh", "-c",
      "touch /x 2>&1; echo y >/tmp/y && echo tmp-ok; echo z >/run/z && echo run-ok; awk '$5 == \"/\" { print $6 }' /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^touch: /x: Read%-only file system\ntmp%-ok\nrun%-ok\nro,", r.stdout)
    assert.equal(before, snapshot(root))
  end)

  it("--read-only without --chroot: the host's root is read-only inside only", function()
    local r = run({ "--read-only", "--mount=tmp:" .. home, "--", "sh", "-c",
      "touch /tmp/pftest-ro-rootless 2>/dev/null && echo tmp-writable; touch /pftest-ro-x 2>/dev/null || echo refused; "
      .. "touch " .. home .. "/ok && echo home-ok" })
    assert.equal(0, r.status, r.stderr)
    -- /tmp is a file system of its own on some hosts, part of / on others.
    assert.matches("refused\nhome%-ok\n$", r.stdout)
    pft.sh("rm -f /tmp/pftest-ro-rootless")
    assert.is_false(exists("/pftest-ro-x"))
  end)

  it("noexec, nodev, nosuid on a bind: in mountinfo, a script there exits 126", function()
    local root = user_root()
    local src = userdir("uflags")
    pft.write_file(src .. "/script", "#!/bin/sh\necho ran\n")
    assert(pft.sh("chmod 0755 " .. src .. "/script && chown " .. name .. " " .. src .. "/script") == 0)
    local r = run({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/mnt/f:nosuid,nodev,noexec", "--", "sh", "-c",
      "grep ' /mnt/f ' /proc/self/mountinfo | cut -d' ' -f6" })
    assert.equal(0, r.status, r.stderr)
    for _, w in ipairs({ "nosuid", "nodev", "noexec" }) do assert.is_true(has_option(r.stdout:gsub("\n", ""), w), r.stdout) end
    r = run({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/mnt/f:noexec,optional", "--", "/mnt/f/script" })
    assert.equal(126, r.status, r.stdout .. r.stderr)
  end)

  it("a device bound into the chroot's /dev is there; /run a tmpfs; a root without /dev gets one", function()
    local root = user_root()
    assert(pft.sh("rmdir " .. root .. "/dev") == 0)
    local r = run({ "--chroot=" .. root, "--mount=bind:/dev/full:/dev/full2", "--", "sh", "-c",
      "test -c /dev/full2 && echo dev-ok; echo x >/dev/null && echo null-ok; grep -c ' /run .* tmpfs ' /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("dev-ok\nnull-ok\n1\n", r.stdout)
    assert.equal("", pft.capture("ls -A " .. root .. "/dev " .. root .. "/run | grep -v : | grep ."))
  end)

  it("a root the user cannot write, without /run: runs without one", function()
    local root = pft.tempdir("roroot")
    dirs[#dirs + 1] = root
    pft.make_rootfs(root)
    assert(pft.sh("rmdir " .. root .. "/run") == 0)
    local r = run({ "--chroot=" .. root, "--", "sh", "-c", "test -e /run || echo no-run; echo x >/dev/null && echo null-ok" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("no-run\nnull-ok\n", r.stdout)
    assert.is_false(exists(root .. "/run"))
  end)

  it("the login shell and bad input, rootless", function()
    local root = user_root()
    local r = run({ "--chroot=" .. root }, { stdin = "tr '\\0' ' ' </proc/$$/cmdline\n" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("-sh ", r.stdout)
    one_error_line(run({ "--mount=dir:/tmp/pf-nope", "true" }), "--mount: dir '/tmp/pf-nope' can only be made")
    one_error_line(run({ "--chroot=/", "true" }), "--chroot: '/' is the host's own root directory")
    assert.is_false(exists("/tmp/pf-nope"))
  end)
end)
