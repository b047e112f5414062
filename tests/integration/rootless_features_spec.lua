-- The rootless twins of the features otherwise tested as root (issue 17):
-- --caps and --no-new-privs inside a user namespace, --detach/--attach,
-- signals, the terminal, the environment, the --no-*ns flags, recipes and
-- hostile root trees, run by a throwaway unprivileged user with a public
-- copy of pflask. Each test looks from inside (what the command sees) and
-- from outside (the host's /proc, files, sockets, what is left). The spec
-- runs as root only to create the user, its trees, and to look.
local pft = require "pftest"
local tmux = require "fixtures.tmux"

local PATH = pft.USER_PATH

local CHOWN, DAC_OVERRIDE, SYSLOG = 0, 1, 34

local read_file = pft.read_file
local write_file = pft.write_file

local one_line = pft.one_line

local status_field = pft.status_field

local ns_id = pft.ns_id

local exists = pft.lexists

local marker = pft.marker

local wait_until = pft.wait_until

describe("rootless twins", function()
  local user, name, uid, gid, home, exe
  local dirs, mounts_before

  setup(function()
    user = pft.rootless_user()
    name, uid, gid, home, exe = user.name, user.uid, user.gid, user.home, user.exe
  end)

  -- (With the user go what its tmux and detached pflask keep in /tmp.)
  teardown(function()
    if user then user:remove() end
  end)

  -- A directory owned by the user, removed after the test.
  local function userdir(tag)
    local d = user:dir(tag)
    dirs[#dirs + 1] = d
    return d
  end

  -- pflask as the user. opts.env adds variables, opts.prefix goes before
  -- everything (setpriv).
  local function run(args, opts)
    opts = opts or {}
    return user:pflask(args, { env = opts.env, stdin = opts.stdin, prefix = opts.prefix })
  end

  -- Shell text running argv as the user.
  local function as_user(argv) return user:shell(argv) end

  -- The user's processes, after giving them a moment to end.
  local function user_processes()
    local n
    for _ = 1, 100 do
      n = tonumber(pft.user_processes(uid))
      if n == 0 then break end
      pft.sh("sleep 0.05")
    end
    return n
  end

  before_each(function()
    dirs = {}
    mounts_before = pft.mounts()
  end)

  after_each(function()
    local left = user_processes()
    pft.sh("pkill -KILL -u " .. uid .. " 2>/dev/null")
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    assert.equal(mounts_before, pft.mounts())
    assert.equal(0, left, "processes left behind")
  end)

  -- Start pflask args as the user with a command that records its own
  -- /proc/self/status, then sleeps; read the same process's status from
  -- the host; end it. Returns the status seen inside and from outside.
  local function inside_and_outside(args)
    local mark = marker()
    local dir = userdir("view")
    local argv = { exe }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    for _, a in ipairs({ "--", "sh", "-c", "cat /proc/self/status >" .. dir .. "/inside.new && mv "
      .. dir .. "/inside.new " .. dir .. "/inside && exec sleep " .. mark }) do argv[#argv + 1] = a end
    pft.sh("timeout 30 sh -c " .. pft.quote(as_user(argv)) .. " </dev/null >/dev/null 2>" .. dir .. "/err &")
    local pid
    wait_until("the container's sleep", function()
      pid = tonumber((pft.capture("pgrep -u " .. uid .. " -x -f " .. pft.quote("sleep " .. mark))))
      return pid ~= nil and exists(dir .. "/inside")
    end)
    local outside = read_file("/proc/" .. pid .. "/status")
    local inside = read_file(dir .. "/inside")
    pft.sh("kill -KILL " .. pid)
    return inside, outside, pid
  end

  describe("--caps in a user namespace", function()
    it("-dac_override: root inside can no longer write the user's read-only file, the host's file unchanged", function()
      local dir = userdir("caps")
      local file = dir .. "/ro"
      local function reset()
        write_file(file, "host\n")
        assert(pft.sh("chown " .. name .. ": " .. file .. " && chmod 0444 " .. file) == 0)
      end
      local script = "grep CapEff /proc/self/status; echo inside >" .. file .. " && echo wrote; true"
      -- Without --caps, root of the user namespace overrides the mode of
      -- a file whose owner is mapped: it writes.
      reset()
      local plain = run({ "--", "sh", "-c", script })
      assert.equal(0, plain.status, plain.stderr)
      assert.is_true(status_field(plain.stdout, "CapEff") & (1 << DAC_OVERRIDE) ~= 0, plain.stdout)
      assert.matches("wrote\n$", plain.stdout)
      assert.equal("inside\n", read_file(file))
      reset()
      local r = run({ "--caps=-dac_override", "--", "sh", "-c", script })
      assert.equal(0, r.status, r.stderr)
      assert.equal(0, status_field(r.stdout, "CapEff") & (1 << DAC_OVERRIDE), r.stdout)
      assert.is_nil(r.stdout:find("wrote", 1, true))
      assert.matches("Permission denied", r.stderr)
      assert.equal("host\n", read_file(file))
    end)

    it("-all,+chown: chown alone in every set, seen inside and in the host's /proc", function()
      local inside, outside = inside_and_outside({ "--caps=-all,+chown" })
      for _, f in ipairs({ "CapBnd", "CapEff", "CapPrm", "CapInh" }) do
        assert.equal(1 << CHOWN, status_field(inside, f), f .. " inside")
        assert.equal(1 << CHOWN, status_field(outside, f), f .. " outside")
      end
      -- The process belongs to the user on the host.
      assert.matches("\nUid:%s+" .. uid .. "%s", outside)
    end)

    it("refuses a capability missing from its bounding set (setpriv), with one line and 125", function()
      local r = run({ "--caps=+syslog", "--", "true" }, { prefix = "setpriv --bounding-set -syslog" })
      assert.equal(125, r.status)
      assert.equal("pflask: --caps: 'syslog' is not granted on this host (it is not in pflask's bounding set)\n",
        r.stderr)
      local ok = run({ "--caps=-all,+syslog", "--", "grep", "CapEff", "/proc/self/status" })
      if ok.status ~= 0 and ok.stderr:match("not granted") then
        pending("this host's bounding set lacks CAP_SYSLOG itself")
        return
      end
      assert.equal(0, ok.status, ok.stderr)
      assert.equal(1 << SYSLOG, status_field(ok.stdout, "CapEff"))
    end)
  end)

  describe("--no-new-privs", function()
    it("sets NoNewPrivs, inside and in the host's /proc; not without it", function()
      local inside, outside = inside_and_outside({ "--no-new-privs" })
      assert.matches("\nNoNewPrivs:%s*1\n", inside)
      assert.matches("\nNoNewPrivs:%s*1\n", outside)
      local inside0, outside0 = inside_and_outside({})
      assert.matches("\nNoNewPrivs:%s*0\n", inside0)
      assert.matches("\nNoNewPrivs:%s*0\n", outside0)
    end)
  end)

  -- A tmux server of the user's, one session running cmd in a WxH window;
  -- the pane prints "exit-status N" when cmd ends.
  local function user_tmux(cmd, w, h)
    return tmux.new(cmd, { width = w, height = h, status = true, user = name, home = home })
  end

  describe("the terminal", function()
    it("under tmux: a pty of its own with the window size, resizes, Ctrl-C, the exit status", function()
      local t = user_tmux(pft.quote(exe) .. " -- sh", 90, 30)
      finally(function() t:kill() end)
      t:wait("#")
      t:keys("tty; stty size; id -u; echo $$", "Enter")
      t:wait("\n/dev/pts/%d+\n30 90\n0\n2\n")
      t:run("resize-window -t 0 -x 120 -y 40")
      t:keys("stty size", "Enter")
      t:wait("\n40 120\n")
      t:keys("sleep 100", "Enter")
      pft.sh("sleep 0.3")
      t:keys("C-c")
      t:keys("echo after-$((6*7))", "Enter")
      t:wait("\nafter%-42\n")
      -- The shell runs as the user on the host, on a pty pflask made.
      local pid = tonumber((pft.capture("pgrep -u " .. uid .. " -x sh | tail -n 1")))
      assert.is_not_nil(pid)
      assert.matches("^/dev/pts/%d+$", pft.capture("readlink /proc/" .. pid .. "/fd/0"))
      t:keys("exit 4", "Enter")
      t:wait("exit%-status 4")
    end)

    it("without a terminal: no pty, the fds straight through", function()
      local r = run({ "--", "sh", "-c", "cat; tty; echo after" }, { stdin = "input\n" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("input\nnot a tty\nafter\n", r.stdout)
    end)
  end)

  describe("--detach and --attach", function()
    -- Where pflask puts a detached container's socket for this user.
    local function socket_of(pid)
      local rt = "/run/user/" .. uid
      if pft.sh("test -d " .. rt .. " && test \"$(stat -c %u " .. rt .. ")\" = " .. uid) == 0 then
        return rt .. "/pflask/" .. pid .. ".sock"
      end
      return "/tmp/pflask-" .. uid .. "/" .. pid .. ".sock"
    end

    it("detaches, attaches through the user's tmux, Ctrl-@, the exit status, the socket removed", function()
      local r = run({ "--detach", "--", "sh", "-c", "echo started; exec sh" })
      assert.equal(0, r.status, r.stderr)
      local pid = tonumber(r.stdout:match("^pflask: detached, pid (%d+) %(reattach: pflask %-%-attach=%d+%)\n$"))
      assert.is_not_nil(pid, r.stdout)
      local t
      -- One finally per test: busted keeps only the last one given.
      finally(function()
        if t then t:kill() end
        pft.sh("kill -KILL " .. pid .. " 2>/dev/null")
      end)
      -- Outside: the supervisor is the user's, its socket private to it.
      local sock = socket_of(pid)
      assert.equal(tostring(uid), pft.capture("stat -c %u /proc/" .. pid))
      assert.equal(uid .. " socket", pft.capture("stat -c '%u %F' " .. sock))
      assert.equal(uid .. " 700", pft.capture("stat -c '%u %a' " .. sock:match("^(.*)/")))
      t = user_tmux(pft.quote(exe) .. " --attach=" .. pid)
      t:wait("started")
      t:keys("id -u; echo one-$((40+2))", "Enter")
      t:wait("\n0\none%-42\n")
      t:keys("C-@")
      t:wait("pflask: detached, pid " .. pid .. " %(reattach: pflask %-%-attach=" .. pid .. "%)\nexit%-status 0")
      assert.equal(0, pft.sh("kill -0 " .. pid), "the container ended on detach")
      t:kill()
      t = user_tmux(pft.quote(exe) .. " --attach=" .. pid)
      t:wait("one%-42")
      t:keys("exit 5", "Enter")
      t:wait("exit%-status 5")
      wait_until("the socket to go", function() return not exists(sock) end)
    end)

    it("root's detached container is not the user's to attach", function()
      local r = pft.pflask({ "--detach", "--", "sleep", "30" }, { timeout = 10 })
      assert.equal(0, r.status, r.stderr)
      local pid = tonumber(r.stdout:match("pid (%d+)"))
      finally(function() pft.sh("kill -KILL " .. pid .. " 2>/dev/null") end)
      -- Refused by /run/pflask's permissions, before any credentials
      -- (detach_spec opens them for a moment, under the same lock).
      pft.host_lock("run-pflask", function()
        local a = run({ "--attach=" .. pid })
        assert.equal(125, a.status)
        assert.is_true(one_line(a.stderr), a.stderr)
        assert.equal("pflask: --attach: container " .. pid .. " belongs to uid 0: permission denied\n", a.stderr)
      end)
    end)
  end)

  describe("signals", function()
    -- Run a shell script as the user; $P is pflask, $D a directory of the
    -- user's. Returns its output and status.
    local function script(body)
      local dir = userdir("sig")
      write_file(dir .. "/run.sh", "P=" .. pft.quote(exe) .. "\nD=" .. dir .. "\n" .. pft.SH_WAIT .. body .. "\n")
      local status = pft.sh("timeout -k 2 20 sh -c " .. pft.quote(as_user({ "sh", dir .. "/run.sh" }))
        .. " >" .. dir .. "/output 2>&1 </dev/null")
      return (read_file(dir .. "/output") or ""):gsub("\n$", ""), status
    end

    for _, sig in ipairs({ "TERM", "INT", "HUP", "USR1" }) do
      it("SIG" .. sig .. " sent to pflask reaches the command", function()
        local out, status = script([[
env --default-signal=INT,QUIT $P -- sh -c 'trap "echo got ]] .. sig .. [[; exit 3" ]] .. sig
          .. [[; echo ready; while :; do sleep 0.05; done' >$D/out 2>&1 &
pid=$!
waitfor $D/out ready
kill -]] .. sig .. [[ $pid
wait $pid 2>/dev/null
echo "status $?"
cat $D/out
]])
        assert.equal(0, status, out)
        assert.equal("status 3\nready\ngot " .. sig, out)
      end)
    end

    it("SIGKILL to pflask takes the whole container down", function()
      local mark = marker()
      local out, status = script([[
$P -- sh -c 'sleep ]] .. mark .. [[ & sleep ]] .. mark .. [[' >/dev/null 2>&1 &
pid=$!
n=0; until [ "$(pgrep -c -f -x 'sleep ]] .. mark .. [[')" = 2 ] || [ $n -ge 250 ]; do sleep 0.02; n=$((n+1)); done
echo "running $(pgrep -c -f -x 'sleep ]] .. mark .. [[')"
kill -KILL $pid
wait $pid 2>/dev/null
echo "status $?"
]])
      assert.equal(0, status, out)
      assert.equal("running 2\nstatus 137", out)
      wait_until("the container to go", function() return pft.count_processes("sleep " .. mark) == 0 end)
    end)
  end)

  describe("the environment", function()
    local rootfs
    before_each(function()
      rootfs = pft.tempdir("rl-env-root")
      dirs[#dirs + 1] = rootfs
      pft.make_rootfs(rootfs, { uid = uid, gid = gid })
    end)

    local function parse_env(text)
      local env = {}
      for line in text:gmatch("[^\n]+") do
        local k, v = line:match("^([^=]+)=(.*)$")
        if k then env[k] = v end
      end
      return env
    end

    it("is cleared with --chroot (TERM kept), kept with --keepenv, and gets --setenv", function()
      local r = run({ "--chroot=" .. rootfs, "--setenv=A=1,B=x=y", "--", "env" },
        { env = { TERM = "xterm", FOO = "bar" } })
      assert.equal(0, r.status, r.stderr)
      local env = parse_env(r.stdout)
      assert.same({ TERM = "xterm", A = "1", B = "x=y", USER = "root", LOGNAME = "root", HOME = "/root",
        container = "pflask", PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }, env)
      local k = run({ "--chroot=" .. rootfs, "--keepenv", "-s", "FOO=over", "--", "env" },
        { env = { FOO = "bar", PFTEST_KEPT = "yes" } })
      assert.equal(0, k.status, k.stderr)
      local kenv = parse_env(k.stdout)
      assert.equal("over", kenv.FOO)
      assert.equal("yes", kenv.PFTEST_KEPT)
      assert.equal("pflask", kenv.container)
    end)

    it("is the user's own, plus container=pflask, without --chroot", function()
      local opts = { env = { FOO = "bar", TERM = "vt100" } }
      local inside = run({ "--", "env" }, opts)
      assert.equal(0, inside.status, inside.stderr)
      local outside = pft.run({ "env" }, { user = name, env = { PATH = PATH, FOO = "bar", TERM = "vt100" },
        prefix = "cd / &&" })
      local want = parse_env(outside.stdout)
      want.container = "pflask"
      assert.same(want, parse_env(inside.stdout))
    end)
  end)

  describe("the --no-*ns flags", function()
    local SHOW = "for n in mnt pid ipc uts net; do echo $n $(readlink /proc/self/ns/$n); done"
    local cases = {
      { "--no-pidns", "pid" }, { "--no-utsns", "uts" }, { "--no-ipcns", "ipc" },
      { "--no-mountns", "mnt" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. " keeps the host's " .. case[2] .. " namespace, and only that one", function()
        -- --netif too, so that every other namespace is new.
        local r = run({ case[1], "--netif", "--", "sh", "-c", SHOW })
        assert.equal(0, r.status, r.stderr)
        local inside = {}
        for n, id in r.stdout:gmatch("(%S+) (%S+)") do inside[n] = id end
        for _, n in ipairs({ "mnt", "pid", "ipc", "uts", "net" }) do
          assert.matches("^" .. n .. ":%[%d+%]$", inside[n] or "", n)
          if n == case[2] then
            assert.equal(ns_id(n), inside[n], n .. " should be the host's")
          else
            assert.are_not.equal(ns_id(n), inside[n], n .. " should be new")
          end
        end
      end)
    end

    it("--no-netns: the host's network namespace (the default), and --netif with it refused", function()
      local r = run({ "--no-netns", "--", "sh", "-c", SHOW })
      assert.equal(0, r.status, r.stderr)
      assert.matches("\nnet " .. ns_id("net"):gsub("%p", "%%%0") .. "\n", r.stdout)
      assert.are_not.equal(ns_id("pid"), r.stdout:match("pid (%S+)"))
      local bad = run({ "--no-netns", "--netif", "--", "true" })
      assert.equal(125, bad.status)
      assert.equal("pflask: --netif: needs a network namespace (drop --no-netns)\n", bad.stderr)
    end)

    it("--no-userns, which only root can do, is refused in one line naming it", function()
      local r = run({ "--no-userns", "--", "true" })
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("only root can create namespaces %(drop %-%-no%-userns%)\n$", r.stderr)
    end)
  end)

  describe("recipes", function()
    it("runs a recipe file: its fields applied inside, its files the user's outside", function()
      local dir = userdir("recipe")
      local recipe = write_file(dir .. "/r.lua", [[
local pflask = require "pflask"
local dir = ...
return pflask.run{
  command = { "sh", "-c", "hostname; id -u; echo $PFTEST_R; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; "
    .. "touch " .. dir .. "/made; exit 6" },
  hostname = "rl-recipe", setenv = { { name = "PFTEST_R", value = "from-recipe" } }, no_new_privs = true,
  caps = { "-all", "+chown" },
}
]])
      pft.sh("chmod 0644 " .. recipe)
      local r = run({ "--recipe=" .. recipe, dir })
      assert.equal(6, r.status, r.stderr)
      assert.matches("^rl%-recipe\n0\nfrom%-recipe\n", r.stdout)
      assert.equal(1 << CHOWN, status_field(r.stdout, "CapEff"), r.stdout)
      assert.matches("NoNewPrivs:%s*1", r.stdout)
      assert.equal(uid .. " " .. gid, pft.capture("stat -c '%u %g' " .. dir .. "/made"))
      assert.are_not.equal("rl-recipe", pft.capture("hostname"))
    end)

    it("runs the bundled classic CLI with --recipe=pflask", function()
      local r = run({ "--recipe=pflask", "--hostname=rl-bundled", "--", "sh", "-c", "echo $$; hostname; id -u" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("2\nrl-bundled\n0\n", r.stdout)
    end)
  end)

  describe("hostile root trees", function()
    local root, decoy, tag
    before_each(function()
      tag = string.format("pftest-rl-%d%06d", os.time() % 100000, math.random(0, 999999))
      root = pft.tempdir("rl-hostile")
      dirs[#dirs + 1] = root
      pft.make_rootfs(root, { uid = uid, gid = gid })
      -- The user's own tree: it may make mount points in it.
      assert(pft.sh("chown -R " .. name .. ": " .. root) == 0)
      -- A host directory the user can write: what a hostile root aims at.
      decoy = userdir("rl-decoy")
      assert(pft.sh("ln -s / " .. root .. "/evil") == 0)
      assert(pft.sh("ln -s " .. decoy .. " " .. root .. "/dang-abs") == 0)
      assert(pft.sh("ln -s ../../../../../.." .. decoy .. " " .. root .. "/dang-rel") == 0)
    end)
    after_each(function()
      assert.equal("", pft.capture("ls -A " .. decoy), "created in the host directory")
      assert.is_false(exists("/" .. tag), "created on the host")
    end)

    it("an absolute symlink to / as a target's parent: lands inside the root", function()
      local r = run({ "--chroot=" .. root, "--mount=tmp:/evil/" .. tag, "--", "grep", " /" .. tag .. " ",
        "/proc/self/mountinfo" })
      assert.equal(0, r.status, r.stderr)
      assert.matches(" /" .. tag:gsub("%-", "%%-") .. " ", r.stdout)
      assert.equal(0, pft.sh("test -d " .. root .. "/" .. tag .. " && ! test -L " .. root .. "/" .. tag))
    end)

    it("symlinks to a host directory the user may write: refused, nothing made there", function()
      for _, via in ipairs({ "/dang-abs/", "/dang-rel/" }) do
        for _, m in ipairs({ "tmp:", "bind:" .. decoy .. ":" }) do
          local r = run({ "--chroot=" .. root, "--mount=" .. m .. via .. tag, "--", "true" })
          assert.equal(125, r.status, m .. via .. ": " .. r.stderr)
          assert.matches("^pflask: %-%-mount[^\n]*\n$", r.stderr)
        end
      end
    end)

    it("a /dev and /proc pointing at the host directory: nothing mounted there", function()
      assert(pft.sh("mkdir " .. decoy .. "/dev " .. decoy .. "/proc") == 0)
      assert(pft.sh("rmdir " .. root .. "/dev " .. root .. "/proc && ln -s " .. decoy .. "/dev " .. root
        .. "/dev && ln -s ../../../../../.." .. decoy .. "/proc " .. root .. "/proc") == 0)
      local r = run({ "--chroot=" .. root, "--", "sh", "-c",
        "test -e /dev/null || echo no-dev; test -e /proc/self || echo no-proc" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("no-dev\nno-proc\n", r.stdout)
      assert.equal("", pft.capture("ls -A " .. decoy .. "/dev " .. decoy .. "/proc | grep -v : | grep ."))
      assert(pft.sh("rmdir " .. decoy .. "/dev " .. decoy .. "/proc") == 0)
    end)
  end)
end)
