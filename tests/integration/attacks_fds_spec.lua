-- Attacks through inherited file descriptors (issue 11, 3): an fd of the
-- caller's that reaches the container leads out of its root (a directory
-- fd is a way back to the host's tree). What must hold: every fd from 3 up
-- is closed before the command starts, unless passed on purpose
-- (--keep-fd, pass_fds, socket activation's LISTEN_FDS), and pid 1 holds
-- nothing but what it needs. As root and as an unprivileged user.
local pft = require "pftest"

local PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

--- Run a shell command line (as user, when given) with stdin from
--- /dev/null; returns status, stdout, stderr.
local function sh(cmd, user)
  local out, err = os.tmpname(), os.tmpname()
  pft.sh("chmod 0666 " .. out .. " " .. err)
  local prefix = user and ("runuser -u " .. user .. " -- ") or ""
  local status = pft.sh("cd / && timeout -k 5 60 " .. prefix .. "env PATH=" .. PATH .. " sh -c "
    .. pft.quote(cmd) .. " </dev/null >" .. out .. " 2>" .. err)
  local o, e = pft.read_file(out), pft.read_file(err)
  os.remove(out); os.remove(err)
  return status, o, e
end

local one_line = pft.one_line

-- The fds of a process seen from the host: "N -> target" lines, sorted.
local function fds_of(pid)
  local lines = {}
  for fd in (pft.capture("ls /proc/" .. pid .. "/fd")):gmatch("%d+") do
    local target = pft.capture("readlink /proc/" .. pid .. "/fd/" .. fd)
    if target ~= "" then lines[#lines + 1] = fd .. " -> " .. target end
  end
  table.sort(lines, function(a, b) return tonumber(a:match("^%d+")) < tonumber(b:match("^%d+")) end)
  return lines
end

-- Both worlds: as root, and as a throwaway user with a public copy of
-- pflask (so through an unprivileged user namespace).
for _, world in ipairs({ "root", "rootless" }) do
  describe("attacks through inherited fds (" .. world .. ")", function()
    local root, secret, u, user, P
    local mounts_before

    setup(function()
      root = pft.make_rootfs(pft.tempdir("froot"))
      secret = pft.tempdir("fsecret")
      pft.write_file(secret .. "/host-secret", "the host's\n")
      pft.write_file(secret .. "/passed", "passed on purpose\n")
      if world == "rootless" then
        u = pft.rootless_user()
        user, P = u.name, u.exe
      else
        P = pft.absolute(pft.PFLASK)
      end
    end)
    teardown(function()
      if u then u:remove() end
      if root then pft.rm_rf(root) end
      if secret then pft.rm_rf(secret) end
    end)
    before_each(function() mounts_before = pft.mounts() end)
    after_each(function() assert.equal(mounts_before, pft.mounts()) end)

    local function run(cmd) return sh(cmd, user) end

    it("a directory fd does not lead out of the root", function()
      local status, out, err = run(P .. " --chroot=" .. root .. " -- ls /proc/self/fd/7/ 7</")
      assert.are_not.equal(0, status, out)
      assert.not_matches("usr", out) -- the host's / has /usr, the root has none
      assert.matches("/proc/self/fd/7", err)
      status, out = run(P .. " --chroot=" .. root .. " -- ls /proc/self/fd/7/ 7<" .. secret)
      assert.are_not.equal(0, status, out)
      assert.not_matches("host%-secret", out)
      -- Standard fds pass as they are, but never a directory.
      status, out, err = run(P .. " --chroot=" .. root .. " -- ls /proc/self/fd/0/ 0</")
      assert.equal(125, status, out)
      assert.equal("", out)
      assert.is_true(one_line(err), err)
      assert.matches("^pflask: standard input: is a directory", err)
      status, out = run(P .. " --chroot=" .. root .. " -- sh -c 'ls /proc/self/fd/1/ >&2' 1<" .. secret)
      assert.equal(125, status, out)
      -- Nothing but stdio (and ls's own directory fd 3) in the command.
      status, out, err = run(P .. " --chroot=" .. root .. " -- ls /proc/self/fd 5<" .. secret .. "/host-secret 7</ 9<"
        .. secret)
      assert.equal(0, status, err)
      assert.equal("0\n1\n2\n3\n", out)
    end)

    it("pid 1 holds nothing but its stdio and its signalfd", function()
      local pidfile = secret .. "/pid-" .. world
      pft.sh("rm -f " .. pidfile .. "; touch " .. pidfile .. "; chmod 0666 " .. pidfile)
      local prefix = user and ("runuser -u " .. user .. " -- ") or ""
      pft.sh("cd / && " .. prefix .. "sh -c " .. pft.quote(P .. " --chroot=" .. root .. " -- sleep 1000 7</ 8<"
        .. secret .. " </dev/null >/dev/null 2>&1 & echo $! >" .. pidfile))
      local supervisor = tonumber(pft.read_file(pidfile))
      assert.is_truthy(supervisor)
      local pid1, command
      for _ = 1, 200 do
        pid1 = tonumber((pft.capture("pgrep -P " .. supervisor)))
        command = pid1 and tonumber((pft.capture("pgrep -P " .. pid1)))
        if command and not pft.capture("readlink /proc/" .. command .. "/exe"):match("busybox") then
          command = nil -- not exec'd yet
        end
        -- Once the command runs and pid 1 dropped its sync channel.
        if command and #fds_of(pid1) <= 4 then break end
        pft.sh("sleep 0.05")
      end
      finally(function()
        pft.sh("kill -TERM " .. supervisor .. " 2>/dev/null")
        for _ = 1, 100 do
          if pft.sh("kill -0 " .. supervisor .. " 2>/dev/null") ~= 0 then break end
          pft.sh("sleep 0.05")
        end
      end)
      assert.is_truthy(command, "the container's command did not start")
      local init = fds_of(pid1)
      assert.equal(4, #init, table.concat(init, "\n"))
      for i = 1, 3 do assert.matches("^" .. (i - 1) .. " %-> /dev/null$", init[i]) end
      assert.matches("^%d+ %-> anon_inode:%[signalfd%]$", init[4])
      assert.same({ "0 -> /dev/null", "1 -> /dev/null", "2 -> /dev/null" }, fds_of(command))
    end)

    it("in a recipe of two containers, the second holds nothing of the first's (its pty master)", function()
      local recipe = pft.write_file(secret .. "/two-" .. world .. ".lua", [[
local pflask = require "pflask"
local a = pflask.container{ terminal = true, command = { "sleep", "1000" } }:start()
-- pid 1 drops its last fds (its sync channel) right after the command
-- started: let it settle (at most 5 s) before looking.
local status = pflask.run{ command = { "sh", "-c",
  'n=0; while [ $(ls /proc/1/fd | wc -l) -gt 4 ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; '
  .. 'for f in /proc/1/fd/* /proc/self/fd/*; do echo "${f%/*} ${f##*/} $(readlink $f)"; done' } }
a:kill()
a:wait()
os.exit(status)
]])
      pft.sh("chmod 0644 " .. recipe)
      local status, out, err = run(P .. " --recipe=" .. recipe .. " 7</")
      assert.equal(0, status, err)
      assert.not_matches("ptmx", out)
      assert.not_matches("pts", out)
      local init, cmd = {}, {}
      for dir, fd, target in out:gmatch("(%S+) (%d+) ([^\n]*)\n") do
        local list = dir == "/proc/1/fd" and init or cmd
        list[#list + 1] = fd .. " " .. target
      end
      assert.equal(4, #init, out)
      assert.matches("^%d+ anon_inode:%[signalfd%]$", init[4])
      -- The command: stdio, and the directory fd its glob had open.
      assert.equal(4, #cmd, out)
      assert.matches("^3 ", cmd[4])
    end)

    it("--keep-fd passes fds on purpose, at their numbers", function()
      local status, out, err = run(P .. " --chroot=" .. root .. " --keep-fd=7 -- ls /proc/self/fd/7/ 7<" .. secret)
      assert.equal(0, status, err)
      assert.matches("host%-secret", out)
      status, out, err = run(P .. " --chroot=" .. root .. " --keep-fd=7,9 --keep-fd=6 -- sh -c "
        .. pft.quote("cat <&9; ls /proc/self/fd") .. " 7<" .. secret .. " 8</ 9<" .. secret .. "/passed 6</dev/null")
      assert.equal(0, status, err)
      assert.equal("passed on purpose\n0\n1\n2\n3\n6\n7\n9\n", out)
    end)

    it("refuses bad --keep-fd values with one line, exit 125", function()
      for _, case in ipairs({
        { "x", "'x' is not a file descriptor number %(3 to 65535%)" },
        { "2", "'2' is not a file descriptor number" },
        { "0x7", "'0x7' is not a file descriptor number" },
        { "-7", "'%-7' is not a file descriptor number" },
        { "65536", "'65536' is not a file descriptor number" },
        { "", "'' is not a file descriptor number" },
        { "7,", "'' is not a file descriptor number" },
        { "9", "fd 9 is not open" },
        { "7", "fd 7 is a terminal", "7<>/dev/ptmx" },
      }) do
        local status, out, err = run(P .. " --keep-fd=" .. case[1] .. " -- echo ran " .. (case[3] or "7</"))
        assert.equal(125, status, case[1] .. ": " .. err)
        assert.equal("", out)
        assert.is_true(one_line(err), err)
        assert.matches("^pflask: %-%-keep%-fd: " .. case[2], err)
      end
    end)

    it("pass_fds in a recipe", function()
      local recipe = pft.write_file(secret .. "/pass-" .. world .. ".lua", string.format([[
local pflask = require "pflask"
os.exit(pflask.run{ root = %q, pass_fds = { 8 }, command = { "sh", "-c", "cat <&8; ls /proc/self/fd" } })
]], root))
      pft.sh("chmod 0644 " .. recipe)
      local status, out, err = run(P .. " --recipe=" .. recipe .. " 8<" .. secret .. "/passed 9</")
      assert.equal(0, status, err)
      assert.equal("passed on purpose\n0\n1\n2\n3\n8\n", out)
    end)

    it("socket activation: LISTEN_FDS meant for pflask reach the command, LISTEN_PID is its pid", function()
      local show = pft.quote('echo "$LISTEN_PID $$ ${LISTEN_FDS-unset} ${LISTEN_FDNAMES-unset}"; ls /proc/self/fd')
      local function activated(pid, opts)
        return run("exec 3<" .. secret .. "/passed 4</ 5</; exec env LISTEN_FDS=2 LISTEN_PID=" .. pid
          .. " LISTEN_FDNAMES=a:b " .. P .. " " .. opts .. " -- sh -c " .. show)
      end
      -- The reaper's command, pid 2.
      local status, out, err = activated("$$", "")
      assert.equal(0, status, err)
      assert.equal("2 2 2 a:b\n0\n1\n2\n3\n4\n5\n", out) -- 5: ls's own
      -- Without a pid namespace, the command's host pid.
      status, out, err = activated("$$", "--no-pidns")
      assert.equal(0, status, err)
      local lp, pid = out:match("^(%d+) (%d+) 2 a:b\n0\n1\n2\n3\n4\n5\n$")
      assert.is_truthy(lp, out)
      assert.equal(pid, lp)
      -- The command as pid 1.
      status, out, err = activated("$$", "--as-pid1")
      assert.equal(0, status, err)
      assert.equal("1 1 2 a:b\n0\n1\n2\n3\n4\n5\n", out)
      -- Meant for another process: not passed, and not said to be.
      status, out, err = activated("1", "")
      assert.equal(0, status, err)
      assert.equal(" 2 unset unset\n0\n1\n2\n3\n", out)
      -- A --chroot's environment is cleared: nothing passed either.
      status, out, err = activated("$$", "--chroot=" .. root)
      assert.equal(0, status, err)
      assert.equal(" 2 unset unset\n0\n1\n2\n3\n", out)
      -- Meant for pflask but not there: one line, 125.
      status, out, err = run("exec 3</; exec env LISTEN_FDS=2 LISTEN_PID=$$ " .. P .. " -- true")
      assert.equal(125, status, err)
      assert.is_true(one_line(err), err)
      assert.matches("^pflask: LISTEN_FDS: fd 4 is not open", err)
    end)
  end)
end
