-- The filesystem run by an unprivileged user (issue 3, "Rootless"): bind,
-- bind-ro, tmp, overlay and --ephemeral inside an unprivileged user
-- namespace, and a usable /dev in a --chroot made of bind-mounted device
-- nodes. A throwaway user runs a public copy of pflask; the spec runs as
-- root only to create the user, the host submount and the trees.
local pft = require "pftest"

local PATH = pft.USER_PATH
local EXTRA_APPLETS = { "head", "stat", "rm", "mkdir", "cut" }

local write_file = pft.write_file

local read_file = pft.read_file

local exists = pft.lexists

local snapshot = pft.snapshot

-- pflask-ephemeral.* directories in this run's $TMPDIR (pft.run gives
-- every command its own), as a set: other runs' are never seen, nor removed.
local ephemeral_dirs = pft.ephemeral_dirs

local parse_mountinfo = pft.parse_mountinfo

describe("rootless filesystem", function()
  local user, name, uid, gid, home, bindir
  local dirs, submounts, mounts_before, ephemeral_before, ephemeral_checked

  setup(function()
    user = pft.rootless_user()
    name, uid, gid, home, bindir = user.name, user.uid, user.gid, user.home, user.bindir
  end)

  teardown(function()
    if user then user:remove() end
  end)

  -- A directory owned by the user, removed after the test.
  local function userdir(tag)
    local d = user:dir(tag)
    dirs[#dirs + 1] = d
    return d
  end

  local function user_root(opts)
    local d = pft.tempdir("root")
    dirs[#dirs + 1] = d
    pft.make_rootfs(d)
    for _, a in ipairs(EXTRA_APPLETS) do pft.sh("ln -sf busybox " .. d .. "/bin/" .. a) end
    if opts and opts.owned then assert(pft.sh("chown -R " .. name .. ": " .. d) == 0) end
    return d
  end

  local function run(args, opts)
    return user:pflask(args, { login = true, env = opts and opts.env })
  end

  before_each(function()
    dirs, submounts, ephemeral_checked = {}, {}, false
    mounts_before = pft.mounts()
    ephemeral_before = ephemeral_dirs()
  end)

  after_each(function()
    -- Every process a container ran belongs to the user on the host.
    local procs = pft.user_processes(uid)
    pft.sh("pkill -KILL -u " .. uid .. " 2>/dev/null")
    for i = #submounts, 1, -1 do pft.sh("umount -l " .. pft.quote(submounts[i]) .. " 2>/dev/null") end
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    local left = {}
    for d in pairs(ephemeral_dirs()) do
      if not ephemeral_before[d] then left[#left + 1] = d; pft.sh("rm -rf " .. pft.quote(d)) end
    end
    assert.equal(mounts_before, pft.mounts())
    if not ephemeral_checked then assert.same({}, left, "ephemeral directories left behind") end
    assert.equal("0", procs, "processes left behind")
  end)

  -- pflask removed its --ephemeral directory (checked in the test, so that
  -- a failure names it; after_each removes what is left).
  local function assert_ephemeral_gone()
    ephemeral_checked = true
    local left = {}
    for d in pairs(ephemeral_dirs()) do
      if not ephemeral_before[d] then left[#left + 1] = d .. ": " .. pft.capture("ls -A " .. d .. " | tr '\\n' ' '") end
    end
    assert.same({}, left, "--ephemeral directories left behind (contents after ':')")
  end

  it("runs unprivileged", function()
    assert.are_not.equal(0, uid)
    assert.equal(tostring(uid), (pft.capture("runuser -u " .. name .. " -- id -u")))
  end)

  it("binds a directory and a file, read-write", function()
    local src, dst = userdir("src"), userdir("dst")
    write_file(src .. "/hello", "hello\n")
    write_file(dst .. "/file", "host\n")
    pft.sh("chown " .. name .. ": " .. src .. "/hello " .. dst .. "/file")
    local r = run({ "--mount=bind:" .. src .. ":" .. dst, "--mount=bind," .. src .. "/hello," .. home .. "/.profile",
      "--", "sh", "-c", "cat " .. dst .. "/hello " .. home .. "/.profile; echo w >" .. dst .. "/w" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("hello\nhello\n", r.stdout)
    assert.equal("w\n", read_file(src .. "/w"))
    assert.equal("host\n", read_file(dst .. "/file"))
  end)

  it("bind-ro is read-only, a host submount included", function()
    local src, dst = userdir("src"), userdir("dst")
    assert(pft.sh("mkdir " .. src .. "/sub && mount -t tmpfs -o mode=0777 pftest-sub " .. src .. "/sub") == 0)
    submounts[#submounts + 1] = src .. "/sub"
    local r = run({ "--mount=bind-ro:" .. src .. ":" .. dst, "--", "sh", "-c",
      "touch " .. dst .. "/x; touch " .. dst .. "/sub/x; cat /proc/self/mountinfo" })
    assert.equal(0, r.status, r.stderr)
    local _, erofs = r.stderr:gsub("Read%-only file system", "")
    assert.equal(2, erofs, r.stderr)
    local info = parse_mountinfo(r.stdout)
    assert.matches("^ro", info[dst].options)
    assert.matches("^ro", info[dst .. "/sub"].options)
    assert.is_false(exists(src .. "/x"))
    assert.is_false(exists(src .. "/sub/x"))
  end)

  it("mounts an empty tmpfs, also as the user's home (the example, rootless)", function()
    local r = run({ "--mount=tmp,/tmp", "ls", "-a", "/tmp" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(".\n..\n", r.stdout)
    local before = snapshot(home)
    local r2 = pft.run({ "sh", "-c", "cd / && pflask --user=$USER --mount=tmp,$HOME ls -a $HOME" },
      { user = name, env = { PATH = bindir .. ":" .. PATH, HOME = home, USER = name } })
    assert.equal(0, r2.status, r2.stderr)
    assert.equal(".\n..\n", r2.stdout)
    assert.equal(before, snapshot(home))
  end)

  it("mounts an overlay: writes land in UPPER, DST unchanged", function()
    local lower, upper, work = userdir("lower"), userdir("upper"), userdir("work")
    write_file(lower .. "/a", "lower\n")
    local before = snapshot(lower)
    local r = run({ "--mount=overlay:" .. upper .. ":" .. lower .. ":" .. work, "--", "sh", "-c",
      "cat " .. lower .. "/a && echo new >" .. lower .. "/b && rm " .. lower .. "/a && ls " .. lower })
    assert.equal(0, r.status, r.stderr)
    assert.equal("lower\nb\n", r.stdout)
    assert.equal(before, snapshot(lower))
    assert.equal("new\n", read_file(upper .. "/b"))
    assert.equal(0, pft.sh("test -c " .. upper .. "/a"))
  end)

  it("--ephemeral keeps a chroot unchanged and removes its temporary directory", function()
    local root = user_root({ owned = true })
    local before = snapshot(root)
    local r = run({ "--chroot=" .. root, "--ephemeral", "--", "sh", "-c",
      "echo x >/new && rm /etc/passwd && mkdir /d && echo y >/tmp/y && cat /new && ls /" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("x\nbin\nd\ndev\netc\nhome\nnew\nproc\nroot\nrun\nsys\ntmp\n", r.stdout)
    assert.equal(before, snapshot(root))
    assert_ephemeral_gone()
  end)

  -- Files of a root-owned tree are owned by an unmapped uid inside the
  -- user namespace: overlayfs cannot copy them up (the kernel says
  -- EOVERFLOW), so writes into such directories fail. Reading works.
  it("--ephemeral on a root-owned chroot: runs, reads, leaves it unchanged", function()
    local root = user_root()
    local before = snapshot(root)
    local r = run({ "--chroot=" .. root, "--ephemeral", "--", "sh", "-c",
      "cat /etc/group >/dev/null && ls /; echo y >/tmp/y 2>/dev/null; true" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("bin\ndev\netc\nhome\nproc\nroot\nrun\nsys\ntmp\n", r.stdout)
    assert.equal(before, snapshot(root))
    assert_ephemeral_gone()
  end)

  it("has a working /dev in a chroot, from bound device nodes", function()
    local root = user_root({ owned = true })
    local r = run({ "--chroot=" .. root, "--", "sh", "-c", [[
      echo x >/dev/null && echo null-ok
      head -c 4 /dev/urandom | wc -c
      head -c 2 /dev/zero | wc -c
      for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done
      readlink /dev/ptmx; test -c /dev/pts/ptmx && echo ptmx-ok
      touch /dev/shm/x && echo shm-ok
      cat /proc/self/mountinfo
    ]] })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^" .. table.concat({ "null%-ok", "4", "2",
      "/dev/null character special file 1:3", "/dev/zero character special file 1:5",
      "/dev/full character special file 1:7", "/dev/random character special file 1:8",
      "/dev/urandom character special file 1:9", "/dev/tty character special file 5:0",
      "pts/ptmx", "ptmx%-ok", "shm%-ok\n" }, "\n"), r.stdout)
    local info = parse_mountinfo(r.stdout)
    assert.equal("tmpfs", info["/dev"].fstype)
    assert.equal("devpts", info["/dev/pts"].fstype)
    assert.equal("/null", info["/dev/null"] and info["/dev/null"].root, r.stdout)
  end)

  it("all at once in a chroot: bind, bind-ro, tmp, overlay, --ephemeral", function()
    local root = user_root({ owned = true })
    local src, upper, work = userdir("src"), userdir("upper"), userdir("work")
    write_file(src .. "/f", "f\n")
    local before = snapshot(root)
    local r = run({ "--chroot=" .. root, "--ephemeral", "--mount=bind:" .. src .. ":/rw",
      "--mount=bind-ro:" .. src .. ":/ro", "--mount=tmp:/tmp", "--mount=overlay:" .. upper .. ":/home/alice:" .. work,
      "--", "sh", "-c",
      "cat /ro/f; touch /ro/x; echo w >/rw/w; ls -a /tmp; echo h >/home/alice/h" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("f\n.\n..\n", r.stdout)
    assert.matches("Read%-only file system", r.stderr)
    assert.equal("w\n", read_file(src .. "/w"))
    assert.equal("h\n", read_file(upper .. "/h"))
    assert.equal(before, snapshot(root))
    assert_ephemeral_gone()
  end)

  it("bad input is still one line and 125", function()
    local r = run({ "--mount=bind:/nonexistent-" .. name .. ":/tmp", "--", "true" })
    assert.equal(125, r.status)
    assert.matches("^pflask: %-%-mount: [^\n]*\n$", r.stderr)
  end)
end)
