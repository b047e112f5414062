-- Faults of a booted system (issue 11, items 5 and "nothing is left after
-- SIGKILL"; the boot row of the fault matrix): systemd as pid 1 of the
-- cached Debian root (tests/boot_rootfs.sh), --ephemeral, pflask killed
-- with SIGKILL once the system is up. The whole system dies with it
-- (parent-death signal, also after the user namespace's credential
-- change), and once the next boot has swept: no process, no mount, no
-- cgroup, no ephemeral layer is left. CTest label "boot".
local pft = require "pftest"

local INIT = "/lib/systemd/systemd"
local GUARD = 120

-- A booted system takes its time: 30 s.
local function eventually(check) return pft.eventually(check, 30) end
local alive = pft.alive

describe("faults: a booted system", function()
  local rootfs, dir

  setup(function()
    local out, code = pft.capture(pft.quote(pft.SOURCE_DIR .. "/tests/boot_rootfs.sh") .. " 2>&1")
    assert(code == 0, "the boot root filesystem could not be made:\n" .. out)
    rootfs = out:match("([^\n]+)$")
  end)

  local started, init -- pflask's pid and its pid 1, killed whatever an assertion did
  before_each(function() dir, started, init = pft.tempdir("fboot"), nil, nil end)
  after_each(function()
    if started and alive(started) then pft.sh("kill -KILL " .. started) end
    -- pid 1 of a system that outlived pflask: its namespace goes with it.
    if init and alive(init) then pft.sh("kill -KILL " .. init) end
    pft.rm_rf(dir)
  end)

  for _, case in ipairs({
    { "as root", {} },
    { "with --user-map (a user namespace: credentials change in the child)", { "--user-map=0:0:65536" } },
    { "with an --ephemeral-dir layer on disk", { "--ephemeral-dir=DISK" } },
  }) do
    it("SIGKILL of pflask once up, " .. case[1] .. ": nothing left", function()
      local io_dir = dir .. "/io"
      local disk = dir .. "/disk"
      assert(pft.sh("mkdir " .. io_dir .. " " .. disk) == 0)
      pft.write_file(io_dir .. "/action", "stay")
      local marker = "PFTEST_FBOOT=" .. math.random(100000, 999999)
      local argv = { pft.PFLASK, "--chroot=" .. rootfs, "--ephemeral", "--mount=bind:" .. io_dir .. ":/pftest",
                     "--setenv=" .. marker }
      for _, a in ipairs(case[2]) do argv[#argv + 1] = (a:gsub("DISK", disk)) end
      argv[#argv + 1] = INIT
      local q = {}
      for i, a in ipairs(argv) do q[i] = pft.quote(a) end
      local pid = tonumber((pft.capture(table.concat(q, " ") .. " </dev/null >" .. dir .. "/log 2>&1 & echo $!")))
      started = pid
      local up = false
      for _ = 1, GUARD * 10 do
        if pft.sh("test -e " .. io_dir .. "/ready") == 0 or not alive(pid) then break end
        pft.sh("sleep 0.1")
      end
      up = pft.sh("test -e " .. io_dir .. "/ready") == 0
      if not up then pft.sh("kill -KILL " .. pid) end
      assert.is_true(up, "the system did not come up: " .. tostring(pft.read_file(dir .. "/log")))
      -- The booted system: every process of pid 1's pid namespace.
      init = tonumber((pft.capture("pgrep -P " .. pid)))
      local ns = pft.capture("readlink /proc/" .. init .. "/ns/pid")
      assert.matches("^pid:%[%d+%]$", ns)
      local function in_ns()
        return tonumber((pft.capture("for p in /proc/[0-9]*; do [ \"$(readlink $p/ns/pid 2>/dev/null)\" = "
          .. pft.quote(ns) .. " ] && echo; done | wc -l")))
      end
      assert.is_true(in_ns() > 3, "the booted system runs more than its init")
      assert.equal(0, pft.sh("kill -KILL " .. pid))

      assert.is_true(eventually(function() return not alive(pid) end))
      assert.is_true(eventually(function() return in_ns() == 0 end), "processes of the booted system left")
      assert.equal(0, pft.count_processes(marker))
      -- The next boot-like run (an init as pid 1: a delegated v2 cgroup
      -- next to the killed one's) sweeps its cgroups; the next run with
      -- the same --ephemeral-dir its layer.
      local tiny = pft.make_rootfs(dir .. "/tiny")
      local r = pft.pflask({ "--chroot=" .. tiny, "--ephemeral", "--ephemeral-dir=" .. disk, "--as-pid1",
                             "--", "/bin/true" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("", pft.capture("find /sys/fs/cgroup -maxdepth 6 -type d -name 'pflask." .. pid .. ".*' 2>/dev/null"),
        "cgroups left")
      assert.equal("", pft.capture("ls -A " .. disk), "ephemeral layer left")
      local mounts = pft.capture("grep -F -e " .. pft.quote(rootfs) .. " -e " .. pft.quote(dir) .. " /proc/self/mountinfo")
      assert.equal("", mounts, "mounts left")
    end)
  end
end)
