-- The device policy (issue 11, item 8): a container run by root with a
-- --chroot may open only the standard device nodes and those bound in with
-- --mount, whatever nodes its root filesystem holds or it tries to make;
-- with --user too (a user namespace whose ids map to host ids: the
-- permission bits alone would let it open a hostile image's nodes). Each test is the attack a hostile command or image would make:
-- the image ships a node of the host's kernel log, memory or disk, or the
-- command makes one, and opening it must fail with EPERM. Rootless, the
-- kernel refuses mknod itself.
local pft = require "pftest"

-- Open (not read) a node from busybox sh: "ok" or the shell's error.
local function open_cmd(path, mode)
  return string.format("(exec 3%s%s) && echo open-ok", mode or "<", path)
end

local one_line = pft.one_line

--- The block device the host's / lives on, as "MAJOR MINOR", or nil when /
--- is on no block device (an overlay, a tmpfs).
local function root_disk()
  local dev = pft.capture("stat -c '%Hd %Ld' /")
  local major, minor = dev:match("^(%d+) (%d+)$")
  if not major or major == "0" then return nil end
  return major .. " " .. minor
end

--- pflask cgroups left by supervisors that are gone, but those in
--- `before` (other runs at the same time may leave theirs).
local function leaked(before)
  local out = {}
  for dir in pft.capture("find /sys/fs/cgroup -type d -name 'pflask.*' 2>/dev/null"):gmatch("[^\n]+") do
    local pid = dir:match("pflask%.(%d+)%.%d+$")
    -- A zombie is gone too (a SIGKILLed pflask nobody reaped yet).
    local stat = pid and pft.read_file("/proc/" .. pid .. "/stat")
    if pid and (not stat or stat:match("^%d+ %(.*%) (%a)") == "Z") and not (before or ""):find(dir, 1, true) then
      out[#out + 1] = dir
    end
  end
  table.sort(out)
  return table.concat(out, "\n")
end

describe("device policy", function()
  local rootfs, disk

  setup(function()
    rootfs = pft.tempdir("devroot")
    pft.make_rootfs(rootfs)
    -- A hostile image's nodes, open to everyone: the host's kernel log,
    -- its memory, its disk, and a tun node nobody bound in.
    assert(pft.sh("mknod -m 0666 " .. rootfs .. "/kmsg c 1 11 && mknod -m 0666 " .. rootfs .. "/mem c 1 1"
      .. " && mknod -m 0666 " .. rootfs .. "/tun c 10 200") == 0)
    disk = root_disk()
    if disk then
      assert(pft.sh("mknod -m 0666 " .. rootfs .. "/disk b " .. disk) == 0)
      -- Only if the host may open it (a device policy of the host's own
      -- may forbid it, as on the machines these tests run on).
      if pft.capture(open_cmd(rootfs .. "/disk") .. " 2>/dev/null") ~= "open-ok" then disk = nil end
    end
  end)

  teardown(function() pft.rm_rf(rootfs) end)

  local cgroups_before
  before_each(function() cgroups_before = pft.capture("find /sys/fs/cgroup -type d -name 'pflask.*' 2>/dev/null") end)
  after_each(function() assert.equal("", leaked(cgroups_before), "cgroups left behind") end)

  -- The nodes are real: root opens them on the host.
  it("opens the test's nodes on the host (they are real)", function()
    -- (Not mem: kernels without /dev/mem fail it with ENXIO.)
    for _, n in ipairs({ "kmsg", "tun", disk and "disk" or nil }) do
      assert.equal("open-ok\n", pft.capture(open_cmd(rootfs .. "/" .. n)) .. "\n", n)
    end
  end)

  -- With every capability given back too (--caps=+all): the default set
  -- leaves out CAP_SYSLOG and CAP_SYS_RAWIO, which kmsg and mem ask for,
  -- so only there the device policy alone stands in the way.
  for _, who in ipairs({ { "root", {} }, { "root with --caps=+all", { "--caps=+all" } },
                         { "root with --user", { "--user=alice" } } }) do
    describe("as " .. who[1], function()
      local with_user = who[2][1] == "--user=alice"
      local function run(script, extra)
        local args = { "--chroot=" .. rootfs }
        for _, a in ipairs(who[2]) do args[#args + 1] = a end
        for _, a in ipairs(extra or {}) do args[#args + 1] = a end
        args[#args + 1] = "--"
        args[#args + 1] = "sh"
        args[#args + 1] = "-c"
        args[#args + 1] = script
        return pft.pflask(args)
      end

      it("cannot open the host's kernel log, memory or a pre-made tun node", function()
        for _, n in ipairs({ "kmsg", "mem", "tun" }) do
          local r = run(open_cmd("/" .. n) .. "; " .. open_cmd("/" .. n, "<>"))
          assert.equal("", r.stdout, n .. " was opened")
          assert.matches("can't open /" .. n .. ": Operation not permitted", r.stderr)
        end
      end)

      it("cannot open a node of the host's disk", function()
        if not disk then pending("/ is on no block device the host may open here") return end
        local r = run(open_cmd("/disk"))
        assert.equal("", r.stdout, "the disk was opened")
        assert.matches("can't open /disk: Operation not permitted", r.stderr)
      end)

      it("cannot make device nodes but the standard ones", function()
        local r = run("cd /tmp && mknod kmsg c 1 11; mknod disk b 254 0; mknod null c 1 3 && " .. open_cmd("null", "<>") .. "; rm -f null")
        if with_user then
          -- --user makes a user namespace: the kernel refuses every mknod.
          assert.matches("mknod: kmsg: Operation not permitted", r.stderr)
          assert.matches("mknod: null: Operation not permitted", r.stderr)
          return
        end
        assert.matches("mknod: kmsg: Operation not permitted", r.stderr)
        assert.matches("mknod: disk: Operation not permitted", r.stderr)
        assert.equal("open-ok\n", r.stdout, r.stderr)
      end)

      it("uses the standard nodes", function()
        local r = run("echo x > /dev/null && echo null; head -c 3 /dev/urandom | wc -c; head -c 2 /dev/zero | wc -c;"
          .. " head -c 1 /dev/random | wc -c; echo x > /dev/full; " .. open_cmd("/dev/ptmx", "<>"))
        assert.equal(0, r.status, r.stderr)
        assert.equal("null\n3\n2\n1\nopen-ok\n", r.stdout)
        assert.matches("No space left on device", r.stderr) -- /dev/full opened, and full
      end)

      it("opens its terminal: /dev/console, /dev/tty, ptmx and a new pts", function()
        -- Under script(1) pflask has a terminal and gives the container a
        -- pty of its own, bound on /dev/console. Inside, opening ptmx makes
        -- pts/0 of the container's devpts: still locked, so opening it
        -- fails with EIO from the pty driver, which the kernel asks only
        -- once the device policy let the open through (else EPERM).
        local line = { pft.quote(pft.PFLASK), "--chroot=" .. rootfs }
        for _, a in ipairs(who[2]) do line[#line + 1] = a end
        local cmd = "echo t > /dev/tty && echo tty; exec 3<>/dev/ptmx && echo ptmx; exec 4<>/dev/pts/0"
        if not with_user then cmd = "echo c > /dev/console && echo console; " .. cmd end
        line[#line + 1] = "-- sh -c " .. pft.quote(cmd)
        local r = pft.run({ "script", "-qec", table.concat(line, " "), "/dev/null" })
        -- script(1) turns the end of its (empty) input into a NUL, which
        -- the terminal echoes as ^@ anywhere in the output.
        r.stdout = r.stdout:gsub("%z", ""):gsub("%^@", "")
        if not with_user then assert.matches("console\r?\n", r.stdout) end
        assert.matches("tty\r?\nptmx\r?\n", r.stdout)
        assert.matches("/dev/pts/0: Input/output error", r.stdout, 1, true)
        assert.not_matches("not permitted", r.stdout)
      end)

      it("opens a device bound in with --mount, read-write or read-only", function()
        if pft.sh("test -c /dev/net/tun") ~= 0 then pending("no /dev/net/tun on this host") return end
        local r = run(open_cmd("/dev/net/tun", "<>"), { "--mount=bind:/dev/net/tun:/dev/net/tun" })
        if with_user then
          -- The node is root's, mode 0600: alice is refused by its mode
          -- (EACCES), not by the device policy (EPERM).
          assert.matches("can't create /dev/net/tun: Permission denied", r.stderr)
          return
        end
        assert.equal(0, r.status, r.stderr)
        assert.equal("open-ok\n", r.stdout, r.stderr)
        local ro = run(open_cmd("/dev/net/tun", "<") .. "; " .. open_cmd("/dev/net/tun", ">"),
          { "--mount=bind-ro:/dev/net/tun:/dev/net/tun" })
        assert.equal("open-ok\n", ro.stdout, ro.stderr)
        assert.matches("can't create /dev/net/tun: Operation not permitted", ro.stderr)
      end)

      it("cannot lift the policy through the cgroup filesystems", function()
        -- The container's cgroup namespace root is a cgroup below the one
        -- holding the policy: mounted here it shows neither that cgroup
        -- nor its siblings, and writing to it changes nothing.
        local r = run([[
          mkdir -p /tmp/v2 /tmp/v1
          if mount -t cgroup2 none /tmp/v2; then
            echo pflask-cgroups=$(ls /tmp/v2 | grep -c pflask)
            echo $$ > /tmp/v2/cgroup.procs
          fi
          if mount -t cgroup -o devices none /tmp/v1; then
            echo a > /tmp/v1/devices.allow && echo lifted
            echo $$ > /tmp/v1/cgroup.procs
          fi
          ]] .. open_cmd("/kmsg"))
        -- (On a hybrid host with the policy on v2, the v1 devices
        -- hierarchy the container mounts is the host's root cgroup, where
        -- allowing "a" changes nothing: what counts is the open below.)
        assert.not_matches("pflask%-cgroups=[1-9]", r.stdout) -- no pflask cgroup in sight
        assert.not_matches("open%-ok", r.stdout)
        assert.matches("can't open /kmsg: Operation not permitted", r.stderr)
      end)
    end)
  end

  it("holds where pflask sees no cgroup file system (ip netns exec), changing no host mount", function()
    local ns = string.format("pftest-dev-%d-%d", os.time() % 100000, math.random(0, 9999))
    assert.equal(0, pft.sh("ip netns add " .. ns))
    finally(function() pft.sh("ip netns del " .. ns .. " 2>/dev/null") end)
    local mounts = pft.mounts()
    local r = pft.run({ "ip", "netns", "exec", ns, pft.PFLASK, "--chroot=" .. rootfs, "--", "sh", "-c",
      open_cmd("/kmsg") .. "; echo x > /dev/null && echo null" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("null\n", r.stdout)
    assert.matches("can't open /kmsg: Operation not permitted", r.stderr)
    assert.equal(mounts, pft.mounts())
  end)

  it("cannot reach a v1 hierarchy's release_agent (host root code execution)", function()
    -- Mounted from inside, a v1 hierarchy shows the container's own
    -- cgroup as its root: release_agent is only in the hierarchy's root.
    local h = pft.capture("awk '$3 != \"\" && $1 !~ /^#/ {print $1}' /proc/cgroups | sort")
    local mounted = pft.capture("grep -o ' - cgroup cgroup [^ ]*' /proc/self/mountinfo")
    if mounted == "" then pending("no cgroup v1 hierarchy on this host") return end
    local opts = {}
    for o in mounted:gmatch("cgroup cgroup ([^\n]+)") do
      opts[#opts + 1] = o:gsub("^rw,", ""):gsub(",?xattr", "")
    end
    assert.is_true(#opts > 0, h)
    local script = "mkdir -p /tmp/h; for o in " .. table.concat(opts, " ") .. "; do "
      .. "if mount -t cgroup -o $o none /tmp/h; then echo mounted-$o; ls /tmp/h | grep release_agent; "
      .. "cat /tmp/h/cgroup.procs | wc -l; umount /tmp/h; fi; done"
    local r = pft.pflask({ "--chroot=" .. rootfs, "--", "sh", "-c", script })
    assert.equal(0, r.status, r.stderr)
    local n = select(2, r.stdout:gsub("mounted%-", ""))
    assert.equal(#opts, n, r.stdout .. r.stderr)
    assert.not_matches("release_agent", r.stdout)
  end)

  it("keeps a plain container (no --chroot) on the host's /dev", function()
    -- (tun, not kmsg: the default capabilities leave out CAP_SYSLOG,
    -- which kmsg asks for on hosts that restrict dmesg.)
    local r = pft.pflask({ "--", "sh", "-c", open_cmd(rootfs .. "/tun", "<>") })
    assert.equal("open-ok\n", r.stdout, r.stderr)
  end)

  it("holds in a root built from nothing (--mount=tmp:/), as in a --chroot", function()
    -- The root is the container's own tmpfs: a node made there opens
    -- whatever the host's device is unless the policy says no.
    local base = "--mount=tmp:/,dir:/bin,bind-ro:/bin/busybox:/bin/busybox,symlink:busybox:/bin/sh"
    local r = pft.pflask({ base, "--", "/bin/sh", "-c",
      "busybox mknod /tun c 10 200 && (exec 3<>/tun) && echo open-ok; echo done" })
    assert.equal("done\n", r.stdout, r.stderr)
    assert.matches("mknod: /tun: Operation not permitted", r.stderr)
  end)

  it("refuses a bad spec.devices rule with one line", function()
    local recipe = os.tmpname()
    pft.write_file(recipe, [[
      return require("pflask").run({ root = ]] .. string.format("%q", rootfs) .. [[,
        devices = { "c 1:x rw" }, command = { "true" } })]])
    local r = pft.pflask({ "--recipe=" .. recipe })
    os.remove(recipe)
    assert.equal(125, r.status)
    assert.is_true(one_line(r.stderr), r.stderr)
    assert.matches("^pflask: devices: 'c 1:x rw' is not a device rule", r.stderr)
  end)

  it("is what stops the attacks: with every device allowed and every capability, kmsg opens", function()
    -- The control of the tests above (as root with --caps=+all): the same
    -- open succeeds once spec.devices allows everything.
    local recipe = os.tmpname()
    pft.write_file(recipe, [[
      return require("pflask").run({ root = ]] .. string.format("%q", rootfs) .. [[,
        caps = { "+all" }, devices = { "a" }, command = { "sh", "-c", ]]
        .. string.format("%q", open_cmd("/kmsg") .. "; " .. open_cmd("/tun", "<>")) .. [[ } })]])
    local r = pft.pflask({ "--recipe=" .. recipe })
    os.remove(recipe)
    assert.equal(0, r.status, r.stderr)
    assert.equal("open-ok\nopen-ok\n", r.stdout, r.stderr)
  end)

  it("allows the devices of spec.devices", function()
    local recipe = os.tmpname()
    pft.write_file(recipe, [[
      return require("pflask").run({ root = ]] .. string.format("%q", rootfs) .. [[,
        devices = { "c 10:200 rw" }, command = { "sh", "-c", ]] .. string.format("%q", open_cmd("/tun", "<>")) .. [[ } })]])
    local r = pft.pflask({ "--recipe=" .. recipe })
    os.remove(recipe)
    assert.equal(0, r.status, r.stderr)
    assert.equal("open-ok\n", r.stdout, r.stderr)
  end)

  it("holds on the v1 devices controller too", function()
    if pft.sh("grep -qw devices /proc/self/cgroup") ~= 0 then pending("no v1 devices controller here") return end
    -- The same container with the v2 hierarchy hidden from pflask.
    local recipe = os.tmpname()
    pft.write_file(recipe, [[
      local cgroups = require "pflask.cgroups"
      local facts = cgroups.facts
      cgroups.facts = function() local h = facts(); h.hierarchies.v2 = nil; return h end
      return require("pflask").run(require("pflask.cli").parse({ ... }))]])
    local r = pft.pflask({ "--recipe=" .. recipe, "--chroot=" .. rootfs, "--", "sh", "-c",
      "grep devices /proc/self/cgroup; echo x > /dev/null && echo null; " .. open_cmd("/kmsg")
      .. "; mknod /tmp/k c 1 11; mkdir /tmp/v1; mount -t cgroup -o devices none /tmp/v1 && cat /tmp/v1/devices.list"
      .. " && echo a > /tmp/v1/devices.allow && echo lifted" })
    os.remove(recipe)
    assert.matches("^%d+:devices:/\nnull\n", r.stdout, r.stderr) -- its own devices cgroup
    assert.matches("c 1:3 rwm\n", r.stdout)
    assert.not_matches("lifted", r.stdout)
    assert.not_matches("a %*:%* rwm", r.stdout)
    assert.matches("can't open /kmsg: Operation not permitted", r.stderr)
    assert.matches("mknod: /tmp/k: Operation not permitted", r.stderr)
  end)

  it("holds with the BPF program of a pure v2 host", function()
    if pft.sh("grep -q ' - cgroup2 ' /proc/self/mountinfo") ~= 0 then pending("no cgroup v2 hierarchy here") return end
    -- The same container with the v1 hierarchies hidden from pflask.
    local recipe = os.tmpname()
    pft.write_file(recipe, [[
      local cgroups = require "pflask.cgroups"
      local facts = cgroups.facts
      cgroups.facts = function() local h = facts(); h.hierarchies.v1 = {}; return h end
      return require("pflask").run(require("pflask.cli").parse({ ... }))]])
    local r = pft.pflask({ "--recipe=" .. recipe, "--chroot=" .. rootfs, "--caps=+all", "--", "sh", "-c",
      "grep '^0::' /proc/self/cgroup; echo x > /dev/null && echo null; " .. open_cmd("/kmsg") .. "; "
      .. open_cmd("/tun", "<>") .. "; mknod /tmp/k c 1 11" })
    os.remove(recipe)
    assert.equal("0::/\nnull\n", r.stdout, r.stderr)
    assert.matches("can't open /kmsg: Operation not permitted", r.stderr)
    assert.matches("can't create /tun: Operation not permitted", r.stderr)
    assert.matches("mknod: /tmp/k: Operation not permitted", r.stderr)
  end)

  it("leaves an empty cgroup when pflask is SIGKILLed, which the next run removes", function()
    local mark = tostring(3000 + math.random(0, 999))
    local pid = tonumber((pft.capture(pft.quote(pft.PFLASK) .. " --chroot=" .. rootfs
      .. " -- sleep " .. mark .. " >/dev/null 2>&1 & echo $!")))
    local function running() return pft.capture("pgrep -f -x 'sleep " .. mark .. "'") ~= "" end
    for _ = 1, 200 do if running() then break end pft.sh("sleep 0.05") end
    assert.is_true(running(), "the container runs")
    pft.sh("kill -KILL " .. pid)
    -- The container dies with its supervisor (the parent-death signal).
    for _ = 1, 200 do if not running() then break end pft.sh("sleep 0.05") end
    assert.is_false(running(), "the container died with pflask")
    assert.matches("pflask%." .. pid .. "%.1", leaked(), "the killed pflask should have left its cgroup")
    local r = pft.pflask({ "--chroot=" .. rootfs, "--", "true" })
    assert.equal(0, r.status, r.stderr)
    assert.not_matches("pflask%." .. pid .. "%.", leaked())
  end)

  describe("rootless", function()
    local user, uroot
    setup(function()
      user = pft.rootless_user()
      uroot = pft.tempdir("devroot-user")
      pft.make_rootfs(uroot, { uid = user.uid, gid = user.gid })
      assert(pft.sh("mknod -m 0600 " .. uroot .. "/kmsg c 1 11") == 0)
    end)
    teardown(function()
      if user then user:remove() end
      if uroot then pft.rm_rf(uroot) end
    end)

    local function run(script)
      return user:pflask({ "--chroot=" .. uroot, "--", "sh", "-c", script })
    end

    it("cannot make device nodes (the kernel refuses mknod in a user namespace)", function()
      local r = run("id -u; mknod /tmp/kmsg c 1 11 || echo refused; mknod /tmp/null c 1 3 || echo refused")
      assert.equal(0, r.status, r.stderr)
      assert.equal("0\nrefused\nrefused\n", r.stdout)
    end)

    it("cannot open the host's nodes in its root, and uses the standard ones", function()
      local r = run(open_cmd("/kmsg") .. "; echo x > /dev/null && echo null; head -c 3 /dev/urandom | wc -c")
      assert.equal("null\n3\n", r.stdout, r.stderr)
      assert.matches("can't open /kmsg: Permission denied", r.stderr)
    end)
  end)
end)
