-- The filesystem (issue 3): --mount (bind, bind-ro, tmp, overlay, in the
-- order given), mount points created only inside --chroot, /dev /proc /sys
-- in a new root, pivot_root without propagation, --ephemeral, bad input and
-- faults. Every test looks from inside (mountinfo, files, writes refused
-- with EROFS) and from outside (the host's mount table, files and temporary
-- directories as they were).
local pft = require "pftest"

-- Applets the specs need besides pftest's.
local EXTRA_APPLETS = { "head", "dd", "rm", "mkdir", "stat", "umount", "ln", "find", "cut", "sort" }

local function make_root(dir)
  pft.make_rootfs(dir)
  for _, applet in ipairs(EXTRA_APPLETS) do
    assert(pft.sh("ln -sf busybox " .. dir .. "/bin/" .. applet) == 0)
  end
  assert(pft.sh("mkdir -p " .. dir .. "/mnt") == 0)
  return dir
end

local write_file = pft.write_file

local read_file = pft.read_file

local exists = pft.lexists

local function unique(tag)
  return string.format("pftest-%s-%d-%06d", tag, os.time(), math.random(0, 999999))
end

-- Everything about a tree that a container could change.
local snapshot = pft.snapshot

-- pflask-ephemeral.* directories in this run's $TMPDIR (pft.run gives
-- every command its own), as a set: other runs' are never seen, nor removed.
local ephemeral_dirs = pft.ephemeral_dirs

local function new_entries(before, after)
  local list = {}
  for d in pairs(after) do if not before[d] then list[#list + 1] = d end end
  table.sort(list)
  return list
end

-- mountinfo text -> { [mountpoint] = {options=, fstype=, source=, root=} } (last wins).
local parse_mountinfo = pft.parse_mountinfo

-- The mount options of the host's mount at path, "" when none.
local function host_mount_options(path)
  local m = parse_mountinfo(read_file("/proc/self/mountinfo"))[path]
  return m and m.options or ""
end

local function one_error_line(stderr, prefix)
  assert.matches("^" .. prefix:gsub("%-", "%%-") .. "[^\n]*\n$", stderr)
end

describe("filesystem", function()
  local mounts_before, ephemeral_before
  local dirs, submounts

  -- A temporary directory removed after the test.
  local function tempdir(tag)
    local d = pft.tempdir(tag)
    dirs[#dirs + 1] = d
    return d
  end

  -- A tmpfs mounted on host path dir, unmounted after the test.
  local function host_tmpfs(dir)
    assert(pft.sh("mount -t tmpfs pftest-sub " .. pft.quote(dir)) == 0)
    submounts[#submounts + 1] = dir
  end

  before_each(function()
    dirs, submounts = {}, {}
    mounts_before = pft.mounts()
    ephemeral_before = ephemeral_dirs()
  end)

  after_each(function()
    for i = #submounts, 1, -1 do pft.sh("umount -l " .. pft.quote(submounts[i]) .. " 2>/dev/null") end
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    assert.equal(mounts_before, pft.mounts())
    local left = new_entries(ephemeral_before, ephemeral_dirs())
    for _, d in ipairs(left) do pft.sh("rm -rf " .. pft.quote(d)) end
    assert.same({}, left, "ephemeral directories left behind")
  end)

  describe("--mount bind", function()
    for _, sep in ipairs({ ":", "," }) do
      it("binds a directory (bind" .. sep .. "SRC" .. sep .. "DST), writes go to SRC", function()
        local src, dst = tempdir("src"), tempdir("dst")
        write_file(src .. "/hello", "hello\n")
        local r = pft.pflask({ "--mount=bind" .. sep .. src .. sep .. dst, "--", "sh", "-c",
          "cat " .. dst .. "/hello && echo new >" .. dst .. "/new && cat /proc/self/mountinfo" })
        assert.equal(0, r.status, r.stderr)
        assert.matches("^hello\n", r.stdout)
        local m = parse_mountinfo(r.stdout)[dst]
        assert.is_not_nil(m, r.stdout)
        assert.equal(src, m.root)
        assert.matches("^rw", m.options)
        assert.equal("new\n", read_file(src .. "/new"))
        -- The mount point on the host is untouched.
        assert.equal("", pft.capture("ls -A " .. dst))
      end)
    end

    it("binds a single file", function()
      local dir = tempdir("file")
      write_file(dir .. "/src", "from source\n")
      write_file(dir .. "/dst", "host target\n")
      local r = pft.pflask({ "--mount=bind:" .. dir .. "/src:" .. dir .. "/dst", "--", "sh", "-c",
        "cat " .. dir .. "/dst && echo appended >>" .. dir .. "/dst" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("from source\n", r.stdout)
      assert.equal("from source\nappended\n", read_file(dir .. "/src"))
      assert.equal("host target\n", read_file(dir .. "/dst"))
    end)

    it("is recursive: a submount inside SRC is visible", function()
      local src, dst = tempdir("src"), tempdir("dst")
      assert(pft.sh("mkdir " .. src .. "/sub") == 0)
      host_tmpfs(src .. "/sub")
      write_file(src .. "/sub/marker", "on the submount\n")
      local r = pft.pflask({ "--mount=bind:" .. src .. ":" .. dst, "--", "sh", "-c",
        "cat " .. dst .. "/sub/marker && cat /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^on the submount\n", r.stdout)
      local m = parse_mountinfo(r.stdout)[dst .. "/sub"]
      assert.is_not_nil(m, r.stdout)
      assert.equal("tmpfs", m.fstype)
    end)

    it("bind-ro is really read-only, submounts included, and leaves the host writable", function()
      local src, dst = tempdir("src"), tempdir("dst")
      assert(pft.sh("mkdir " .. src .. "/sub") == 0)
      host_tmpfs(src .. "/sub")
      write_file(src .. "/file", "x\n")
      write_file(src .. "/sub/file", "y\n")
      local r = pft.pflask({ "--mount=bind-ro:" .. src .. ":" .. dst, "--", "sh", "-c",
        "touch " .. dst .. "/new; touch " .. dst .. "/sub/new; echo z >>" .. dst .. "/file; "
        .. "echo z >>" .. dst .. "/sub/file; cat " .. dst .. "/file " .. dst .. "/sub/file; "
        .. "cat /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      local _, erofs = r.stderr:gsub("Read%-only file system", "")
      assert.equal(4, erofs, r.stderr)
      assert.matches("^x\ny\n", r.stdout)
      local info = parse_mountinfo(r.stdout)
      assert.matches("^ro", info[dst].options)
      assert.matches("^ro", info[dst .. "/sub"].options)
      assert.is_false(exists(src .. "/new"))
      assert.is_false(exists(src .. "/sub/new"))
      -- Only the container's view is read-only: the host's submount is not.
      assert.matches("^rw", host_mount_options(src .. "/sub"))
      assert.equal(0, pft.sh("touch " .. src .. "/sub/host-can-write"))
    end)

    it("without --chroot, a missing target is an error (no mount point on the host)", function()
      local src = tempdir("src")
      local target = "/tmp/" .. unique("nohost")
      local r = pft.pflask({ "--mount=bind:" .. src .. ":" .. target, "--", "true" })
      assert.equal(125, r.status)
      one_error_line(r.stderr, "pflask: --mount:")
      assert.is_false(exists(target))
    end)
  end)

  describe("--mount with --chroot", function()
    local root
    before_each(function() root = make_root(tempdir("root")) end)

    it("resolves DST inside the new root", function()
      local src = tempdir("src")
      write_file(src .. "/hello", "hello\n")
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/home/alice", "--",
        "sh", "-c", "cat /home/alice/hello; echo w >/home/alice/w" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("hello\n", r.stdout)
      assert.equal("w\n", read_file(src .. "/w"))
      assert.equal(before, snapshot(root))
    end)

    it("creates missing mount points inside the root only: a file for a file, else a directory", function()
      local src = tempdir("src")
      write_file(src .. "/file", "file content\n")
      local top = unique("mp")
      local r = pft.pflask({ "--chroot=" .. root,
        "--mount=bind:" .. src .. "/file:/" .. top .. "/a/file",
        "--mount=bind:" .. src .. ":/" .. top .. "/b/dir",
        "--mount=tmp:/" .. top .. "/c/tmp", "--", "sh", "-c",
        "cat /" .. top .. "/a/file; cat /" .. top .. "/b/dir/file; ls -a /" .. top .. "/c/tmp" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("file content\nfile content\n.\n..\n", r.stdout)
      assert.equal(0, pft.sh("test -f " .. root .. "/" .. top .. "/a/file && ! test -s " .. root .. "/" .. top .. "/a/file"))
      assert.equal(0, pft.sh("test -d " .. root .. "/" .. top .. "/b/dir"))
      assert.equal(0, pft.sh("test -d " .. root .. "/" .. top .. "/c/tmp"))
      assert.is_false(exists("/" .. top))
    end)

    it("keeps the order: a tmp on /tmp, then a bind into /tmp/x", function()
      local src = tempdir("src")
      write_file(src .. "/hello", "hello\n")
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root, "--mount=tmp:/tmp", "--mount=bind:" .. src .. ":/tmp/x",
        "--", "sh", "-c", "ls -a /tmp; cat /tmp/x/hello; stat -c %a /tmp" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(".\n..\nx\nhello\n1777\n", r.stdout)
      -- /tmp/x was made in the tmpfs, not in the root on disk.
      assert.equal(before, snapshot(root))
    end)

    it("the classic overlay on the root itself: writes land in the upper dir", function()
      local ov = tempdir("ov")
      assert(pft.sh("mkdir " .. ov .. "/root " .. ov .. "/work") == 0)
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root,
        "--mount=overlay," .. ov .. "/root," .. root .. "," .. ov .. "/work", "--", "sh", "-c",
        "echo hi >/written; rm /etc/group; echo more >>/etc/passwd; cat /written; "
        .. "test -e /etc/group || echo gone; grep ' / ' /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^hi\ngone\n[^\n]* / / [^\n]* %- overlay ", r.stdout)
      assert.equal(before, snapshot(root))
      assert.equal("hi\n", read_file(ov .. "/root/written"))
      assert.matches("more\n$", read_file(ov .. "/root/etc/passwd"))
      -- A whiteout: a 0:0 character device.
      assert.equal("0,0", pft.capture("stat -c '%t,%T' " .. ov .. "/root/etc/group"))
      assert.equal(0, pft.sh("test -c " .. ov .. "/root/etc/group"))
    end)

    it("tmp mounts are empty, 1777 on .../tmp and 0755 elsewhere", function()
      local r = pft.pflask({ "--chroot=" .. root, "--mount=tmp:/tmp", "--mount=tmp:/mnt",
        "--mount=tmp:/home/alice", "--", "sh", "-c",
        "ls -a /tmp /mnt /home/alice; stat -c '%n %a' /tmp /mnt /home/alice" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("/home/alice:\n.\n..\n\n/mnt:\n.\n..\n\n/tmp:\n.\n..\n"
        .. "/tmp 1777\n/mnt 755\n/home/alice 755\n", r.stdout)
    end)
  end)

  describe("--mount tmp and overlay without --chroot", function()
    it("pflask --mount=tmp,/tmp ls -a /tmp shows an empty 1777 tmpfs", function()
      local r = pft.pflask({ "--mount=tmp,/tmp", "ls", "-a", "/tmp" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(".\n..\n", r.stdout)
      local r2 = pft.pflask({ "--mount=tmp,/tmp", "--", "sh", "-c",
        "stat -c %a /tmp; grep ' /tmp ' /proc/self/mountinfo" })
      assert.equal(0, r2.status, r2.stderr)
      assert.matches("^1777\n[^\n]* /tmp [^\n]* %- tmpfs ", r2.stdout)
    end)

    it("a tmp elsewhere is 0755 and hides the directory's files from the container only", function()
      local dst = tempdir("dst")
      write_file(dst .. "/kept", "kept\n")
      local r = pft.pflask({ "--mount=tmp:" .. dst, "--", "sh", "-c",
        "ls -a " .. dst .. "; stat -c %a " .. dst .. "; touch " .. dst .. "/scratch" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(".\n..\n755\n", r.stdout)
      assert.equal("kept\n", pft.capture("ls -A " .. dst) .. "\n")
    end)

    it("overlay:UPPER:DST:WORK shows DST plus UPPER, writes land in UPPER, DST unchanged", function()
      local lower, upper, work = tempdir("lower"), tempdir("upper"), tempdir("work")
      write_file(lower .. "/a", "lower a\n")
      write_file(lower .. "/b", "lower b\n")
      write_file(upper .. "/u", "upper u\n")
      local before = snapshot(lower)
      local r = pft.pflask({ "--mount=overlay:" .. upper .. ":" .. lower .. ":" .. work, "--", "sh", "-c",
        "cd " .. lower .. " && ls && cat a u && echo changed >a && rm b && echo c >c && ls" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("a\nb\nu\nlower a\nupper u\na\nc\nu\n", r.stdout)
      assert.equal(before, snapshot(lower))
      assert.equal("changed\n", read_file(upper .. "/a"))
      assert.equal("c\n", read_file(upper .. "/c"))
      assert.equal(0, pft.sh("test -c " .. upper .. "/b"))
    end)
  end)

  describe("the examples users know, for a user U with HOME=/home/U", function()
    local user, name, uid, home, bindir
    setup(function()
      user = pft.rootless_user()
      name, uid, bindir = user.name, user.uid, user.bindir
      home = "/home/" .. name
    end)
    teardown(function()
      if user then user:remove() end
    end)

    local function example(cmdline)
      return pft.run({ "sh", "-c", cmdline }, { env = {
        USER = name, HOME = home, PATH = bindir .. ":" .. pft.USER_PATH } })
    end

    it("pflask --user=$USER --mount=tmp,$HOME ls -a $HOME", function()
      assert.equal(home, pft.capture("getent passwd " .. name .. " | cut -d: -f6"))
      local before = snapshot(home)
      local r = example("pflask --user=$USER --mount=tmp,$HOME ls -a $HOME")
      assert.equal(0, r.status, r.stderr)
      assert.equal(".\n..\n", r.stdout)
      assert.equal(before, snapshot(home))
    end)

    it("pflask --user=$USER --mount=bind,/tmp/trash,$HOME sh -c 'echo x > $HOME/f'", function()
      local trash = tempdir("trash")
      assert(pft.sh("chown " .. name .. ": " .. trash) == 0)
      local r = example("pflask --user=$USER --mount=bind," .. trash .. ",$HOME sh -c 'echo x > $HOME/f'")
      assert.equal(0, r.status, r.stderr)
      assert.equal("x\n", read_file(trash .. "/f"))
      assert.equal(name .. " " .. uid, pft.capture("stat -c '%U %u' " .. trash .. "/f"))
      assert.is_false(exists(home .. "/f"))
    end)
  end)

  describe("a usable system inside --chroot", function()
    local root
    before_each(function() root = make_root(tempdir("root")) end)

    it("has the standard device nodes, working", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", [[
        for d in null zero full random urandom tty; do echo "$d $(stat -c '%F %t:%T' /dev/$d)"; done
        echo x >/dev/null && echo null-ok
        head -c 4 /dev/urandom | wc -c
        head -c 4 /dev/random | wc -c
        head -c 3 /dev/zero | wc -c
        echo x >/dev/full || echo full-refused
      ]] })
      assert.equal(0, r.status, r.stderr)
      assert.equal(table.concat({
        "null character special file 1:3", "zero character special file 1:5",
        "full character special file 1:7", "random character special file 1:8",
        "urandom character special file 1:9", "tty character special file 5:0",
        "null-ok", "4", "4", "3", "full-refused", "" }, "\n"), r.stdout)
      assert.matches("No space left on device", r.stderr)
    end)

    it("has a devpts with ptmx, /dev/shm, and the fd links", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", [[
        readlink /dev/ptmx; stat -c '%F' /dev/pts/ptmx
        for l in fd stdin stdout stderr; do echo "$l -> $(readlink /dev/$l)"; done
        (echo to-stdout >/dev/stdout; echo to-stderr >/dev/stderr) 2>&1 | cat
        echo from-stdin | cat /dev/stdin
        ls /dev/fd/ >/dev/null && echo fd-ok
        touch /dev/shm/x && echo shm-ok
        cat /proc/self/mountinfo
      ]] })
      assert.equal(0, r.status, r.stderr)
      assert.matches(table.concat({ "^pts/ptmx", "character special file",
        "fd %-> /proc/self/fd", "stdin %-> /proc/self/fd/0", "stdout %-> /proc/self/fd/1",
        "stderr %-> /proc/self/fd/2", "to%-stdout", "to%-stderr", "from%-stdin", "fd%-ok", "shm%-ok\n" }, "\n"), r.stdout)
      local info = parse_mountinfo(r.stdout)
      assert.equal("tmpfs", info["/dev"].fstype)
      assert.equal("devpts", info["/dev/pts"].fstype)
      assert.equal("tmpfs", info["/dev/shm"].fstype)
      -- A devpts instance of its own: no host terminals in it.
      assert.equal("ptmx\n", pft.pflask({ "--chroot=" .. root, "--", "ls", "/dev/pts" }).stdout)
    end)

    it("has a fresh /proc, read-only /proc/sys and a read-only /sys", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", [[
        cat /proc/1/comm; echo $$
        ls /proc | grep -c '^[0-9]'
        echo pwned >/proc/sys/kernel/hostname
        touch /sys/pwned
        cat /proc/self/mountinfo
      ]] })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^pflask%-init\n2\n", r.stdout)
      local pids = tonumber(r.stdout:match("^[^\n]*\n[^\n]*\n(%d+)\n"))
      assert.is_true(pids ~= nil and pids <= 5, r.stdout)
      assert.matches("can't create /proc/sys/kernel/hostname: Read%-only file system", r.stderr)
      assert.matches("/sys/pwned: Read%-only file system", r.stderr)
      assert.are_not.equal("pwned", pft.capture("hostname"))
      local info = parse_mountinfo(r.stdout)
      assert.equal("proc", info["/proc"].fstype)
      assert.matches("^ro", info["/proc/sys"].options)
      assert.matches("^ro", info["/sys"].options)
    end)

    it("pivots: nothing of the host's tree is mounted inside", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "cat", "/proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      local allowed = { ["/"] = true, ["/proc"] = true, ["/proc/sys"] = true, ["/proc/sysrq-trigger"] = true,
        ["/sys"] = true, ["/dev"] = true, ["/dev/pts"] = true, ["/dev/shm"] = true, ["/run"] = true }
      -- The masks of /proc and /sys (attacks_proc_spec): kernel files
      -- hidden by the host's /dev/null, directories by an empty tmpfs,
      -- tunables bound read-only on themselves.
      local masked_file = { ["/proc/kcore"] = true, ["/proc/kallsyms"] = true, ["/proc/keys"] = true,
        ["/proc/timer_list"] = true, ["/proc/timer_stats"] = true, ["/proc/sched_debug"] = true,
        ["/proc/latency_stats"] = true }
      local masked_dir = { ["/proc/acpi"] = true, ["/proc/asound"] = true, ["/proc/scsi"] = true,
        ["/sys/firmware"] = true, ["/sys/devices/virtual/powercap"] = true }
      local readonly = { ["/proc/bus"] = true, ["/proc/fs"] = true, ["/proc/irq"] = true, ["/proc/apm"] = true }
      local n = 0
      for line in r.stdout:gmatch("[^\n]+") do
        n = n + 1
        local fsroot, mountpoint, fstype = line:match("^%S+ %S+ %S+ (%S+) (%S+) .* %- (%S+) ")
        if masked_file[mountpoint] then
          assert.equal("/null", fsroot, line)
        elseif masked_dir[mountpoint] then
          assert.equal("tmpfs", fstype, line)
        elseif readonly[mountpoint] then
          assert.equal("proc", fstype, line)
        else
          assert.is_true(allowed[mountpoint] or false, "unexpected mount inside: " .. line)
        end
        if mountpoint == "/" then assert.equal(root, fsroot, line) end
      end
      -- / /proc /proc/sys /sys /dev /dev/pts /dev/shm at least.
      assert.is_true(n >= 7, r.stdout)
    end)

    it("propagates nothing to the host, not even through a bind of a shared host directory", function()
      local src = tempdir("src")
      assert(pft.sh("mkdir " .. src .. "/sub") == 0)
      local tag = unique("prop")
      local r = pft.pflask({ "--chroot=" .. root, "--mount=bind:" .. src .. ":/srv", "--", "sh", "-c",
        "mount -t tmpfs " .. tag .. " /mnt && mount -t tmpfs " .. tag .. " /srv/sub && "
        .. "touch /srv/sub/inside && grep -c " .. tag .. " /proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("2\n", r.stdout)
      assert.is_nil(read_file("/proc/self/mountinfo"):find(tag, 1, true))
      assert.equal("", pft.capture("ls -A " .. src .. "/sub"))
    end)
  end)

  describe("--ephemeral", function()
    local root
    before_each(function() root = make_root(tempdir("root")) end)

    it("leaves the root on disk unchanged and removes its temporary directory", function()
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--", "sh", "-c",
        "echo new >/new && rm /etc/passwd && echo more >>/etc/group && mkdir /d && rm -r /home && "
        .. "rm /bin/true && touch /bin/busybox && cat /new && ls /" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("new\nbin\nd\ndev\netc\nmnt\nnew\nproc\nroot\nrun\nsys\ntmp\n", r.stdout)
      assert.equal(before, snapshot(root))
      -- after_each checks $TMPDIR/pflask-ephemeral.* is gone too; say it here as well.
      assert.same({}, new_entries(ephemeral_before, ephemeral_dirs()))
    end)

    it("combines with --mount", function()
      local src = tempdir("src")
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--mount=bind:" .. src .. ":/data",
        "--mount=tmp:/tmp", "--", "sh", "-c", "echo kept >/data/kept && echo lost >/lost" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("kept\n", read_file(src .. "/kept"))
      -- The mount point /data was made in the ephemeral layer.
      assert.equal(before, snapshot(root))
    end)

    it("needs --chroot", function()
      local r = pft.pflask({ "--ephemeral", "--", "true" })
      assert.equal(125, r.status)
      one_error_line(r.stderr, "pflask: --ephemeral")
    end)
  end)

  describe("bad input: one line, 125, nothing created or mounted on the host", function()
    local root, work
    before_each(function()
      root = make_root(tempdir("root"))
      work = tempdir("bad")
    end)

    local function check(args, prefix, must_not_exist)
      local before_root, before_work = snapshot(root), snapshot(work)
      local r = pft.pflask(args)
      assert.equal(125, r.status, r.stderr)
      assert.equal("", r.stdout)
      one_error_line(r.stderr, prefix)
      assert.equal(before_root, snapshot(root))
      assert.equal(before_work, snapshot(work))
      for _, p in ipairs(must_not_exist or {}) do assert.is_false(exists(p), p) end
      return r
    end

    it("a missing source", function()
      local target = "/tmp/" .. unique("t")
      check({ "--mount=bind:" .. work .. "/missing:" .. target, "--", "true" }, "pflask: --mount:", { target })
      check({ "--chroot=" .. root, "--mount=bind-ro:" .. work .. "/missing:/x", "--", "true" },
        "pflask: --mount:", { root .. "/x" })
    end)

    it("a chroot that is not a directory", function()
      write_file(work .. "/file", "")
      check({ "--chroot=" .. work .. "/file", "--mount=tmp:/tmp", "--", "true" }, "pflask: --chroot:")
      check({ "--chroot=" .. work .. "/missing", "--", "true" }, "pflask: --chroot:")
    end)

    it("an unknown type", function()
      local r = check({ "--chroot=" .. root, "--mount=bnd:" .. work .. ":/x", "--", "true" }, "pflask: --mount:")
      assert.matches("'bnd' is not a mount type", r.stderr)
    end)

    it("a wrong number of fields", function()
      check({ "--chroot=" .. root, "--mount=bind:" .. work, "--", "true" }, "pflask: --mount:")
      check({ "--chroot=" .. root, "--mount=bind:" .. work .. ":/x:/y", "--", "true" }, "pflask: --mount:")
      check({ "--chroot=" .. root, "--mount=tmp:/x:/y", "--", "true" }, "pflask: --mount:")
      check({ "--chroot=" .. root, "--mount=overlay:" .. work .. ":/x", "--", "true" }, "pflask: --mount:")
      check({ "--chroot=" .. root, "--mount=tmp", "--", "true" }, "pflask: --mount:")
    end)

    it("an overlay work dir on another filesystem", function()
      local shm = "/dev/shm/" .. unique("work")
      local tmp_dev, shm_dev = pft.capture("stat -c %d /tmp"), pft.capture("stat -c %d /dev/shm")
      if tmp_dev == shm_dev then
        pending("/tmp and /dev/shm are the same filesystem here")
        return
      end
      assert(pft.sh("mkdir -p " .. work .. "/upper " .. shm) == 0)
      local ok, err = pcall(check, { "--chroot=" .. root,
        "--mount=overlay:" .. work .. "/upper:/home/alice:" .. shm, "--", "true" }, "pflask: --mount:")
      local shm_left = pft.capture("ls -A " .. shm)
      pft.sh("rm -rf " .. pft.quote(shm))
      assert(ok, err)
      assert.equal("", shm_left)
    end)

    it("a relative target", function()
      check({ "--chroot=" .. root, "--mount=tmp:relative", "--", "true" }, "pflask: --mount:", { "relative" })
      check({ "--chroot=" .. root, "--mount=bind:" .. work .. ":rel/dir", "--", "true" }, "pflask: --mount:")
    end)
  end)

  describe("faults", function()
    local root
    before_each(function() root = make_root(tempdir("root")) end)

    local function args_with(cmd)
      local args = { pft.PFLASK, "--chroot=" .. root, "--ephemeral", "--mount=tmp:/tmp",
        "--mount=bind-ro:" .. root .. "/etc:/mnt", "--" }
      for _, a in ipairs(cmd) do args[#args + 1] = a end
      local q = {}
      for i, a in ipairs(args) do q[i] = pft.quote(a) end
      return table.concat(q, " ")
    end

    -- Start pflask in the background running `sleep N`, wait until the
    -- sleep runs, send sig to pflask, and return pflask's exit status.
    local function signal_pflask(sig)
      local n = tostring(math.random(100000, 999999))
      local script = "TMPDIR=" .. pft.run_tmpdir() .. " " .. args_with({ "sleep", n }) .. " </dev/null >/dev/null 2>&1 & pid=$!; "
        .. "i=0; while ! pgrep -x -f 'sleep " .. n .. "' >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
        .. "kill -" .. sig .. " $pid; wait $pid; echo $?"
      local out = pft.capture("timeout 30 sh -c " .. pft.quote(script))
      -- Give a killed supervisor's container a moment to go.
      local gone = pft.sh("i=0; while pgrep -x -f 'sleep " .. n .. "' >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
        .. "! pgrep -x -f 'sleep " .. n .. "' >/dev/null") == 0
      if not gone then pft.sh("pkill -KILL -x -f 'sleep " .. n .. "'") end
      return tonumber(out), gone
    end

    it("after a normal exit", function()
      local before = snapshot(root)
      local r = pft.run({ "sh", "-c", args_with({ "sh", "-c", "echo x >/x; exit 3" }) })
      assert.equal(3, r.status, r.stderr)
      assert.equal(before, snapshot(root))
    end)

    it("after a crash (SIGSEGV)", function()
      local before = snapshot(root)
      local r = pft.run({ "sh", "-c", args_with({ "sh", "-c", "echo x >/x; kill -SEGV $$" }) })
      assert.equal(128 + 11, r.status, r.stderr)
      assert.equal(before, snapshot(root))
    end)

    it("after SIGTERM to pflask: the temporary directory is gone", function()
      local status, gone = signal_pflask("TERM")
      assert.equal(128 + 15, status)
      assert.is_true(gone, "the container outlived pflask")
    end)

    it("after SIGKILL to pflask: no mounts, no ephemeral directory left", function()
      local status, gone = signal_pflask("KILL")
      assert.equal(128 + 9, status)
      assert.is_true(gone, "the container outlived pflask")
      assert.equal(mounts_before, pft.mounts())
      -- The writable layer was a tmpfs of the container's mount namespace:
      -- it went with the container, pflask's cleanup had nothing to do.
      assert.same({}, new_entries(ephemeral_before, ephemeral_dirs()))
    end)
  end)
end)
