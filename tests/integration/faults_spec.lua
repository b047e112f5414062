-- Faults (issue 11 "Tests", issue 17 "fault gaps"): pflask killed at each
-- stage of a container's life (planning, after prepare, right after clone,
-- running, during cleanup), with each feature that creates something on
-- the host (an ephemeral root in memory or on disk, a cgroup, a veth, a
-- macvlan, a moved interface, a detached supervisor). Once the next pflask
-- run has swept: no process, mount, link, cgroup, socket or temporary
-- directory of the killed run is left. Also SIGTERM while pflask holds
-- interfaces or is detached, failed starts with --ephemeral, symlinks the
-- container plants in a disk-backed layer, and the parent-death signal
-- after every credential change (--user, --user-map, rootless).
--
-- Stages are held by a recipe (faults/hold.lua) that blocks on a FIFO the
-- spec never writes; every name (interface, directory, sleep marker) is
-- unique to this run, and only what this spec made is ever removed.
local pft = require "pftest"

local HOLD = pft.SOURCE_DIR .. "/tests/integration/faults/hold.lua"
local PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

local function uniq()
  return string.format("%05d%03d", os.time() % 100000, math.random(0, 999))
end

local join_quoted = pft.join_quoted
local eventually = pft.eventually -- 15 s
local alive = pft.alive

--- Processes whose command line contains marker (pid 1 of a container
--- still has pflask's command line, which holds the marker too).
local function processes(marker)
  return pft.count_processes(marker)
end

local function links_named(names)
  local out = pft.capture("ip -o link show")
  local found = {}
  for _, n in ipairs(names) do
    if out:find(": " .. n .. "[@:]") then found[#found + 1] = n end
  end
  return found
end

local function mounts_mentioning(paths)
  local found = {}
  for line in io.lines("/proc/self/mountinfo") do
    for _, p in ipairs(paths) do
      if line:find(p, 1, true) then found[#found + 1] = line end
    end
  end
  return found
end

local function cgroups_of(pid)
  return pft.capture("find /sys/fs/cgroup -maxdepth 5 -type d -name 'pflask." .. pid .. ".*' 2>/dev/null")
end

--- Start argv in the background (as user, if given), stdout and stderr to
--- log; returns the pid of the process started.
local function background(argv, log, user)
  local cmd = join_quoted(argv) .. " </dev/null >" .. pft.quote(log) .. " 2>&1 & echo $!"
  if user then
    cmd = "cd / && runuser -u " .. user .. " -- env PATH=" .. PATH .. " sh -c " .. pft.quote(cmd)
  end
  return tonumber((pft.capture(cmd)))
end

describe("faults", function()
  local dir, root, made_links

  before_each(function()
    dir = pft.tempdir("faults")
    root = pft.make_rootfs(dir .. "/root")
    made_links = {}
  end)

  local started = {} -- pids this test started, killed whatever an assertion did
  local markers = {} -- and the unique command lines of its containers

  after_each(function()
    for _, pid in ipairs(started) do
      if alive(pid) then pft.sh("kill -KILL " .. pid) end
    end
    -- A container that outlived its pflask (the bug these tests catch).
    for _, m in ipairs(markers) do
      for pid in pft.capture("pgrep -f " .. pft.quote(m)):gmatch("%d+") do pft.sh("kill -KILL " .. pid) end
    end
    started, markers = {}, {}
    for _, l in ipairs(made_links) do pft.sh("ip link del " .. l .. " 2>/dev/null") end
    pft.sh("chmod -R u+rwx " .. dir .. " 2>/dev/null")
    pft.rm_rf(dir)
  end)

  --- A host interface this test owns (removed in after_each).
  local function host_link(name, kind_args)
    assert(pft.sh("ip link add " .. name .. " " .. kind_args) == 0)
    made_links[#made_links + 1] = name
  end

  -- Features: the options, the names they create, and the run that sweeps
  -- what a killed run leaves.
  local function feature(kind)
    local id = uniq()
    local f = { id = id, links = {}, mounts = { root }, needs_root = true }
    if kind == "ephemeral" then
      f.args = { "--chroot=" .. root, "--ephemeral" }
      -- The layer dies with the namespace; the cgroups of the device
      -- policy (every root --chroot container has them) are swept.
      f.sweep = f.args
    elseif kind == "ephemeral-dir" then
      f.disk = dir .. "/layers"
      assert(pft.sh("mkdir " .. f.disk) == 0)
      f.args = { "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. f.disk }
      f.sweep = f.args
      f.mounts[#f.mounts + 1] = f.disk
    elseif kind == "cgroup" then
      f.args = { "--cgroup=pids" }
      f.sweep = f.args
    elseif kind == "veth" then
      f.links = { "pfv" .. id }
      f.args = { "--netif=veth:pfv" .. id .. ":host0" }
    elseif kind == "macvlan" then
      -- A veth end as the master: no dummy module needed.
      host_link("pfd" .. id, "type veth peer name pfe" .. id)
      f.args = { "--netif=macvlan:pfd" .. id .. ":mv0" }
    elseif kind == "moved" then
      -- A veth end moved in: SIGKILL destroys it with the namespace (and
      -- its peer with it, pflask(1) --netif); SIGTERM gives it back.
      host_link("pfa" .. id, "type veth peer name pfb" .. id)
      f.links = { "pfa" .. id, "pfb" .. id }
      f.args = { "--netif=pfb" .. id .. ":eth1" }
    elseif kind == "detach" then
      f.args = { "--detach" }
    elseif kind == "boot" then
      -- An init as pid 1 of a root: a boot (a delegated v2 cgroup, a
      -- tmpfs /run, a console pty), with busybox as the "init".
      f.args = { "--chroot=" .. root, "--ephemeral", "--as-pid1" }
      f.sweep = f.args
      f.absolute = true
    end
    return f
  end

  --- Run pflask through the hold recipe at stage, with f's options and the
  --- command; wait until the stage is reached; return the supervisor's
  --- pid and the container's (0 before clone) and the marker.
  local function start_held(stage, f, user, exe, command)
    local marker = "sleep " .. f.id .. "1"
    markers[#markers + 1] = marker
    local ready = dir .. "/ready"
    assert(pft.sh("mkfifo " .. ready .. ".fifo && chmod 0777 " .. dir .. " && chmod 0666 " .. ready .. ".fifo") == 0)
    local argv = { exe or pft.PFLASK, "--recipe=" .. HOLD, stage, ready, "--" }
    for _, a in ipairs(f.args) do argv[#argv + 1] = a end
    argv[#argv + 1] = "--"
    local bin = f.absolute and "/bin/" or ""
    command = command or (stage == "cleanup" and { bin .. "true" }) or { bin .. "sleep", f.id .. "1" }
    for _, a in ipairs(command) do argv[#argv + 1] = a end
    started[#started + 1] = background(argv, dir .. "/log", user)
    local ok = eventually(function() return pft.read_file(ready) ~= nil end)
    assert.is_true(ok, "stage " .. stage .. " not reached: " .. tostring(pft.read_file(dir .. "/log")))
    local sup, cpid = pft.read_file(ready):match("^(%d+) (%d+)")
    started[#started + 1] = tonumber(sup)
    if stage == "running" then
      assert.is_true(eventually(function() return pft.capture("pgrep -x -f " .. pft.quote("(/bin/)?" .. marker)) ~= "" end),
        "the command never ran: " .. tostring(pft.read_file(dir .. "/log")))
    end
    return tonumber(sup), tonumber(cpid), marker
  end

  --- Everything f made is gone once its sweep run (if any) has run.
  local function wait_gone(sup, cpid, marker)
    assert.is_true(eventually(function() return not alive(sup) end), "pflask still alive")
    assert.is_true(eventually(function() return processes(marker) == 0 end), "container processes left")
    if cpid and cpid > 0 then
      assert.is_true(eventually(function() return not alive(cpid) end), "container pid 1 left")
    end
  end

  local function assert_nothing_left(f, sup, cpid, marker)
    wait_gone(sup, cpid, marker)
    if f.sweep then
      local args = {}
      for _, a in ipairs(f.sweep) do args[#args + 1] = a end
      args[#args + 1] = "--"
      args[#args + 1] = f.absolute and "/bin/true" or "true"
      local r = pft.pflask(args)
      assert.equal(0, r.status, r.stderr)
    end
    assert.same({}, mounts_mentioning(f.mounts), "mounts left")
    -- The kernel deletes a dead namespace's interfaces from a work queue.
    assert.is_true(eventually(function() return #links_named(f.links) == 0 end),
      "interfaces left: " .. table.concat(links_named(f.links), " "))
    assert.equal("", cgroups_of(sup), "cgroups left")
    assert.equal("", pft.capture("ls -d /tmp/pflask-ephemeral." .. sup .. ".* 2>/dev/null"))
    if f.disk then
      assert.equal("", pft.capture("ls -A " .. pft.quote(f.disk)), "disk-backed layer left")
    end
    if cpid and cpid > 0 then
      assert.is_false(pft.sh("test -e /run/pflask/" .. cpid .. ".sock") == 0, "detach socket left")
    end
  end

  local STAGES = { "planning", "prepare", "clone", "running", "cleanup" }
  local FEATURES = { "ephemeral", "ephemeral-dir", "cgroup", "veth", "macvlan", "moved", "detach", "boot" }

  describe("SIGKILL of pflask", function()
    for _, kind in ipairs(FEATURES) do
      for _, stage in ipairs(STAGES) do
        it(kind .. ", " .. stage .. ": nothing left once the next run swept", function()
          local f = feature(kind)
          local sup, cpid, marker = start_held(stage, f)
          assert.equal(0, pft.sh("kill -KILL " .. sup))
          if kind == "moved" and (stage == "planning" or stage == "prepare") then
            -- Not moved yet: the host's pair is untouched.
            assert.equal(2, #links_named(f.links))
            f.links = {}
          end
          if kind == "detach" and stage ~= "planning" and stage ~= "prepare" then
            -- A stale socket is swept by the next detached run.
            wait_gone(sup, cpid, marker)
            local r = pft.pflask({ "--detach", "--", "true" })
            assert.equal(0, r.status, r.stderr)
            local p = tonumber(r.stdout:match("pid (%d+)"))
            assert.is_true(eventually(function() return pft.sh("test -e /run/pflask/" .. p .. ".sock") ~= 0 end))
          end
          assert_nothing_left(f, sup, cpid, marker)
        end)
      end
    end
  end)

  describe("SIGTERM of pflask", function()
    for _, kind in ipairs({ "veth", "macvlan", "moved", "detach", "ephemeral-dir" }) do
      it(kind .. ", running: the container ends and pflask cleans up", function()
        local f = feature(kind)
        local sup, cpid, marker = start_held("running", f)
        assert.equal(0, pft.sh("kill -TERM " .. sup))
        assert.is_true(eventually(function() return not alive(sup) end), "pflask did not end")
        if kind == "moved" then
          -- Given back to the host under its own name, peer and all.
          assert.is_true(eventually(function() return #links_named(f.links) == 2 end), "moved interface not given back")
          f.links = {}
        end
        assert_nothing_left(f, sup, cpid, marker)
      end)
    end
  end)

  describe("a disk-backed layer", function()
    it("of a live run is never swept by another run", function()
      local f = feature("ephemeral-dir")
      local sup, _, marker = start_held("running", f)
      local mine = pft.capture("ls " .. f.disk)
      assert.matches("^pflask%-ephemeral%." .. sup .. "%.", mine)
      local r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. f.disk, "--", "true" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(mine, pft.capture("ls " .. f.disk))
      assert.equal(0, pft.sh("kill -TERM " .. sup))
      assert_nothing_left(f, sup, nil, marker)
    end)

    it("is not swept when another user owns it, when it is not a directory, or of another pid namespace", function()
      local layers = dir .. "/layers"
      assert(pft.sh("mkdir " .. layers) == 0)
      -- pid 2**22+1 is above pid_max's ceiling: never alive.
      local ns = pft.capture("stat -L -c %i /proc/self/ns/pid")
      local dead = "4194305." .. ns
      local function name(tag) return layers .. "/pflask-ephemeral." .. dead .. "." .. tag end
      assert(pft.sh("mkdir " .. name("aaaaaa") .. " && chown 1:1 " .. name("aaaaaa")) == 0)
      assert(pft.sh("ln -s / " .. name("bbbbbb")) == 0)
      assert(pft.sh("mkdir -p " .. name("cccccc") .. "/upper") == 0)
      assert(pft.sh("mkdir -p " .. layers .. "/pflask-ephemeral.4194305.1.dddddd/upper") == 0)
      local r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. layers, "--", "true" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("pflask-ephemeral.4194305.1.dddddd\npflask-ephemeral." .. dead .. ".aaaaaa\npflask-ephemeral."
        .. dead .. ".bbbbbb", pft.capture("ls " .. layers))
      assert.equal(0, pft.sh("test -d /bin"))
    end)

    it("with symlinks the container planted: cleanup removes them, never what they point to", function()
      local layers = dir .. "/layers"
      local victim = dir .. "/victim"
      assert(pft.sh("mkdir " .. layers .. " " .. victim .. " && echo precious >" .. victim .. "/file") == 0)
      -- Links to the host's victim (as the host sees the upper layer) and
      -- unreadable directories, as a hostile container would leave them.
      local r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. layers, "--", "sh", "-c",
        "ln -s " .. victim .. " /vdir && ln -s " .. victim .. "/file /vfile && mkdir -p /deep/a/b && "
        .. "ln -s " .. victim .. " /deep/a/b/up && chmod 000 /deep/a/b /deep && ln -s ../../../../../.. /dots" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("", pft.capture("ls -A " .. layers))
      assert.equal("precious\n", pft.read_file(victim .. "/file"))
      -- The same after SIGKILL, removed by the next run's sweep.
      local args = { "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. layers }
      local f = { id = uniq(), disk = layers, sweep = args, args = args, links = {}, mounts = { root, layers } }
      local command = { "sh", "-c", "ln -s " .. victim .. " /vdir && ln -s / /rootlink && mkdir /d && "
        .. "ln -s " .. victim .. "/file /d/f && chmod 000 /d && exec sleep " .. f.id .. "1" }
      local sup, cpid, marker = start_held("running", f, nil, nil, command)
      assert.equal(0, pft.sh("kill -KILL " .. sup))
      assert_nothing_left(f, sup, cpid, marker)
      assert.equal("precious\n", pft.read_file(victim .. "/file"))
    end)
  end)

  describe("--ephemeral-dir and PFLASK_EPHEMERAL_DIR", function()
    local function refused(args, env, line)
      local r = pft.pflask(args, { env = env })
      assert.equal(125, r.status, r.stderr)
      assert.equal(line, r.stderr)
      assert.equal("", r.stdout)
    end

    it("bad input: one line, 125", function()
      refused({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. dir .. "/none", "--", "true" }, nil,
        "pflask: --ephemeral-dir: '" .. dir .. "/none' does not exist\n")
      refused({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. root .. "/etc/passwd", "--", "true" }, nil,
        "pflask: --ephemeral-dir: '" .. root .. "/etc/passwd' is not a directory\n")
      refused({ "--chroot=" .. root, "--ephemeral-dir=" .. dir, "--", "true" }, nil,
        "pflask: --ephemeral-dir: needs --ephemeral\n")
      refused({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=", "--", "true" }, nil,
        "pflask: --ephemeral-dir: value is empty, expected DIR\n")
      refused({ "--chroot=" .. root, "--ephemeral", "--", "true" }, { PFLASK_EPHEMERAL_DIR = dir .. "/none" },
        "pflask: PFLASK_EPHEMERAL_DIR: '" .. dir .. "/none' does not exist\n")
    end)

    it("PFLASK_EPHEMERAL_DIR puts the layer on disk there, --ephemeral-dir wins, empty means memory", function()
      local a, b = dir .. "/a", dir .. "/b"
      assert(pft.sh("mkdir " .. a .. " " .. b) == 0)
      local probe = "grep ' / / ' /proc/self/mountinfo"
      local r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--", "sh", "-c", probe },
        { env = { PFLASK_EPHEMERAL_DIR = a } })
      assert.equal(0, r.status, r.stderr)
      assert.matches("upperdir=" .. a:gsub("%p", "%%%0") .. "/pflask%-ephemeral%.%d+%.%d+%.[%w_]+/upper", r.stdout)
      r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--ephemeral-dir=" .. b, "--", "sh", "-c", probe },
        { env = { PFLASK_EPHEMERAL_DIR = a } })
      assert.equal(0, r.status, r.stderr)
      assert.matches("upperdir=" .. b:gsub("%p", "%%%0") .. "/pflask%-ephemeral%.", r.stdout)
      r = pft.pflask({ "--chroot=" .. root, "--ephemeral", "--", "sh", "-c", probe },
        { env = { PFLASK_EPHEMERAL_DIR = "" } })
      assert.equal(0, r.status, r.stderr)
      assert.matches("upperdir=/proc/self/fd/%d+/upper", r.stdout)
      assert.equal("", pft.capture("ls -A " .. a))
      assert.equal("", pft.capture("ls -A " .. b))
    end)

    it("rootless: on disk and in memory, nothing left, the root unchanged", function()
      local user = pft.rootless_user()
      local name = user.name
      local ok, err = pcall(function()
        local layers = dir .. "/layers"
        -- The root belongs to the user, who is root inside.
        assert(pft.sh("chmod 0755 " .. dir .. " && mkdir " .. layers .. " && chown " .. name .. " " .. layers
          .. " && chown -R " .. name .. ": " .. root) == 0)
        local before = pft.capture("cd " .. root .. " && find . -printf '%p %m %U %s\\n' | sort")
        for _, extra in ipairs({ { "--ephemeral-dir=" .. layers }, {} }) do
          local args = { "--chroot=" .. root, "--ephemeral" }
          for _, a in ipairs(extra) do args[#args + 1] = a end
          for _, a in ipairs({ "--", "sh", "-c", "echo x >/new && rm /etc/passwd && mkdir /d && cat /new" }) do
            args[#args + 1] = a
          end
          local r = user:pflask(args)
          assert.equal(0, r.status, r.stderr)
          assert.equal("x\n", r.stdout)
          assert.equal("", pft.capture("ls -A " .. layers))
        end
        assert.equal(before, pft.capture("cd " .. root .. " && find . -printf '%p %m %U %s\\n' | sort"))
      end)
      user:remove()
      assert(ok, err)
    end)
  end)

  describe("a failed start with --ephemeral leaves nothing", function()
    for _, disk in ipairs({ false, true }) do
      for _, case in ipairs({ { { "--chdir=/no/such/dir", "--", "true" }, 125 },
                              { { "--", "pftest-no-such-command" }, 127 } }) do
        it((disk and "on disk" or "in memory") .. ": " .. case[1][1], function()
          local layers = dir .. "/layers"
          assert(pft.sh("mkdir " .. layers) == 0)
          local args = { "--chroot=" .. root, "--ephemeral" }
          if disk then args[#args + 1] = "--ephemeral-dir=" .. layers end
          for _, a in ipairs(case[1]) do args[#args + 1] = a end
          local r = pft.pflask(args)
          assert.equal(case[2], r.status, r.stderr)
          assert.equal("", pft.capture("ls -A " .. layers))
          assert.same({}, mounts_mentioning({ root, layers }))
        end)
      end
    end
  end)

  describe("parent death after a credential change", function()
    local function killed_leaves_nothing(args, user, exe, sweep)
      -- A root --chroot container has cgroups (its device policy, on v1 or
      -- v2 depending on its user namespace): the next run like it sweeps
      -- them.
      if not sweep and not user then sweep = args end
      local f = { id = uniq(), args = args, links = {}, mounts = { root }, sweep = sweep }
      local sup, cpid, marker = start_held("running", f, user, exe)
      assert.equal(0, pft.sh("kill -KILL " .. sup))
      assert_nothing_left(f, sup, cpid, marker)
    end

    before_each(function()
      pft.write_file(root .. "/etc/passwd", pft.read_file(root .. "/etc/passwd") .. "nobody:x:65534:65534::/:/bin/sh\n")
    end)

    it("--user nobody", function()
      killed_leaves_nothing({ "--chroot=" .. root, "--ephemeral", "--user=nobody", "--cgroup=pids" })
    end)

    it("--no-userns --user nobody (setresuid as root)", function()
      killed_leaves_nothing({ "--chroot=" .. root, "--ephemeral", "--no-userns", "--user=nobody" })
    end)

    it("--user-map", function()
      killed_leaves_nothing({ "--chroot=" .. root, "--ephemeral", "--user-map=0:3000000:65536" })
    end)

    it("--caps=-all (a capability change)", function()
      killed_leaves_nothing({ "--chroot=" .. root, "--ephemeral", "--caps=-all" })
    end)

    it("rootless", function()
      local user = pft.rootless_user()
      local name, exe = user.name, user.exe
      local ok, err = pcall(function()
        assert(pft.sh("chmod 0755 " .. dir .. " && chown -R " .. name .. " " .. root) == 0)
        -- Rootless, the child always changes credentials: it becomes
        -- root of its user namespace (setresuid(0)).
        killed_leaves_nothing({ "--chroot=" .. root, "--ephemeral" }, name, exe)
        -- Zombies do not count: this host's init may be slow to reap them.
        assert.equal("0", pft.capture("ps -o stat= -u " .. name .. " | grep -vc '^Z'"))
      end)
      user:remove()
      assert(ok, err)
    end)
  end)
end)
