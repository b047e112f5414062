-- pflask-oci (recipes/oci.lua), driven as podman and containerd drive a
-- runtime: the lifecycle (create leaves the command waiting, orphaned, for
-- start; state created → running → stopped), every operation in a wrong
-- state, bad input (one clear error, in the JSON log too, nothing left
-- behind), checked from outside (processes, state directory, cgroups,
-- mounts) and inside (pid 1, hostname).
local pft = require "pftest"

local PFLASK = pft.absolute(pft.PFLASK)
local OCI = PFLASK:gsub("pflask$", "pflask-oci")

local cjson_ok, cjson = pcall(require, "cjson")

describe("pflask-oci", function()
  local tmp, bundle, root, mounts_before

  local function oci(args, opts)
    local argv = { "--root", root }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    opts = opts or {}
    opts.pflask = OCI
    return pft.pflask(argv, opts)
  end

  local function config(process, extra)
    local cfg = {
      ociVersion = "1.0.2",
      process = process or { args = { "sleep", "600" }, cwd = "/", env = { "PATH=/bin" } },
      root = { path = "rootfs" },
      hostname = "ocibox",
      mounts = {
        { destination = "/proc", type = "proc", source = "proc" },
        { destination = "/tmp", type = "tmpfs", source = "tmpfs", options = { "nosuid", "mode=1777" } },
      },
      linux = { namespaces = { { type = "pid" }, { type = "mount" }, { type = "uts" }, { type = "ipc" } } },
    }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    pft.write_file(bundle .. "/config.json", cjson.encode(cfg))
  end

  local function state(id)
    local r = oci({ "state", id })
    if r.status ~= 0 then return nil, r end
    return cjson.decode(r.stdout)
  end

  local function private_state(id)
    local data = pft.read_file(root .. "/" .. id .. "/state.json")
    return data and cjson.decode(data)
  end

  local function alive(pid)
    local stat = pft.read_file("/proc/" .. math.tointeger(pid) .. "/stat")
    return stat ~= nil and not stat:match("%) [ZX]")
  end

  local wait_until = pft.wait_until

  --- A console socket's client, as conmon is: accept, take the fd, read
  --- the terminal's output until nobody holds it, write it to out.
  local function console_receiver(sock, out)
    pft.write_file(tmp .. "/recv.py", [[
import socket, sys, os
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(1)
open(path + ".ready", "w").close()
c, _ = s.accept()
msg, fds, flags, addr = socket.recv_fds(c, 1024, 1)
data = b""
while True:
    try:
        b = os.read(fds[0], 4096)
    except OSError:
        break
    if not b:
        break
    data += b
open(out + ".tmp", "wb").write(msg + b"\n" + data)
os.rename(out + ".tmp", out)
]])
    pft.sh("timeout 60 python3 " .. tmp .. "/recv.py " .. sock .. " " .. out .. " >/dev/null 2>&1 &")
    wait_until("the console socket", function() return pft.read_file(sock .. ".ready") ~= nil end)
  end

  --- Nothing of container id is left: no state, no process of this
  --- bundle, none of its cgroups, no mount.
  local function assert_gone(id, cgroups)
    assert.is_nil(pft.read_file(root .. "/" .. id .. "/state.json"))
    assert.are.equal(1, pft.sh("test -e " .. pft.quote(root .. "/" .. id)))
    assert.are.equal(0, pft.count_processes(bundle))
    for _, dir in ipairs(cgroups or {}) do
      assert.are.equal(1, pft.sh("test -e " .. pft.quote(dir)), dir .. " is left")
    end
    assert.are.equal(mounts_before, pft.mounts())
  end

  setup(function()
    if not cjson_ok then return end
    tmp = pft.tempdir("oci")
    -- The bundle's path is the marker of its processes (pgrep -f): the
    -- created command's command line is create's until it execs.
    bundle = tmp .. "/bundle"
    root = tmp .. "/state"
    pft.make_rootfs(bundle .. "/rootfs")
    mounts_before = pft.mounts()
  end)

  teardown(function()
    if not cjson_ok then return end
    local ids = pft.capture(pft.quote(OCI) .. " --root " .. pft.quote(root) .. " list -q")
    for id in ids:gmatch("%S+") do oci({ "delete", "--force", id }) end
    pft.rm_rf(tmp)
  end)

  before_each(function()
    if not cjson_ok then pending("lua-cjson is not installed (tools/setup-debian.sh installs it)") end
  end)

  it("prints its version and writes a default config.json", function()
    local r = oci({ "--version" })
    assert.are.equal(0, r.status)
    assert.matches("pflask%-oci version", r.stdout)
    assert.matches("spec: 1%.", r.stdout)
    local dir = tmp .. "/specdir"
    pft.sh("mkdir -p " .. dir)
    r = oci({ "spec", "--bundle", dir })
    assert.are.equal(0, r.status, r.stderr)
    local cfg = cjson.decode(pft.read_file(dir .. "/config.json"))
    assert.are.equal("rootfs", cfg.root.path)
    -- Never overwrites one.
    r = oci({ "spec", "--bundle", dir })
    assert.are.equal(125, r.status)
    assert.matches("already exists", r.stderr)
  end)

  it("goes through create, start, exec, ps, pause, resume, kill, delete", function()
    config()
    local pidfile = tmp .. "/pid"
    local r = oci({ "create", "--bundle", bundle, "--pid-file", pidfile, "life" })
    assert.are.equal(0, r.status, r.stderr)
    -- create returned: the command waits, orphaned, for start.
    local pid = tonumber(pft.read_file(pidfile))
    assert.truthy(alive(pid))
    local s = state("life")
    assert.are.equal("created", s.status)
    assert.are.equal(pid, math.tointeger(s.pid))
    assert.are.equal(bundle, s.bundle)
    assert.are.equal("1.0.2", s.ociVersion)
    local ppid = pft.read_file("/proc/" .. pid .. "/stat"):match("%) %a (%d+)")
    assert.are_not.equal(tostring(pft.capture("echo $PPID")), ppid)
    local cgroups = private_state("life").cgroup_dirs

    -- list shows it
    r = oci({ "list", "--format", "json" })
    assert.are.equal(0, r.status, r.stderr)
    local list = cjson.decode(r.stdout)
    assert.are.equal("life", list[1].id)
    assert.are.equal("created", list[1].status)

    r = oci({ "start", "life" })
    assert.are.equal(0, r.status, r.stderr)
    s = state("life")
    assert.are.equal("running", s.status)
    -- Inside: the command is pid 1, the hostname is the config's.
    r = oci({ "exec", "life", "sh", "-c", "cat /proc/1/cmdline; echo; hostname" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^sleep%z600%z?\nocibox\n", r.stdout)
    r = oci({ "exec", "life", "sh", "-c", "exit 3" })
    assert.are.equal(3, r.status)
    -- exec --process
    pft.write_file(tmp .. "/process.json", cjson.encode{ args = { "sh", "-c", "echo $FOO; pwd" }, env = { "FOO=bar" }, cwd = "/tmp" })
    r = oci({ "exec", "--process", tmp .. "/process.json", "life" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("bar\n/tmp\n", r.stdout)
    pft.write_file(tmp .. "/process.json", cjson.encode{ args = { "sh", "-c", "id -u; id -g; id -G" },
      user = { uid = 1000, gid = 1001, additionalGids = { 7 } } })
    r = oci({ "exec", "--process", tmp .. "/process.json", "life" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^1000\n1001\n", r.stdout)
    assert.matches("\n1001 7\n$", r.stdout)

    r = oci({ "ps", "--format", "json", "life" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same({ pid }, cjson.decode(r.stdout))

    r = oci({ "pause", "life" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("paused", state("life").status)
    local st = pft.read_file("/proc/" .. pid .. "/status")
    assert.truthy(st) -- still there, frozen
    r = oci({ "resume", "life" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("running", state("life").status)

    r = oci({ "kill", "life", "SIGTERM" })
    assert.are.equal(0, r.status, r.stderr)
    -- pid 1 ignores what it has no handler for: TERM does nothing; KILL by
    -- number does.
    r = oci({ "kill", "life", "9" })
    assert.are.equal(0, r.status, r.stderr)
    wait_until("the container to stop", function() return state("life").status == "stopped" end)
    assert.is_nil(state("life").pid)

    r = oci({ "delete", "life" })
    assert.are.equal(0, r.status, r.stderr)
    assert_gone("life", cgroups)
  end)

  it("run --detach, kill --all reaches every process of the container, a text log", function()
    config({ args = { "sh", "-c", "sleep 600 & sleep 600 & exec sleep 600" }, cwd = "/", env = { "PATH=/bin" } })
    local r = oci({ "run", "--detach", "--bundle", bundle, "ka" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("running", state("ka").status)
    local cgroups = private_state("ka").cgroup_dirs
    local list
    wait_until("three processes", function()
      list = cjson.decode(oci({ "ps", "--format", "json", "ka" }).stdout)
      return #list == 3
    end)
    assert.are.equal(0, oci({ "kill", "--all", "ka", "KILL" }).status)
    wait_until("every process to go", function()
      for _, p in ipairs(list) do if alive(p) then return false end end
      return true
    end)
    assert.are.equal("stopped", state("ka").status)
    assert.are.equal(0, oci({ "delete", "ka" }).status)
    assert_gone("ka", cgroups)
    -- --log in text: one line with the time, the level and the message
    local log = tmp .. "/log.txt"
    r = oci({ "--log", log, "state", "ka" })
    assert.are.equal(125, r.status)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT[%d:]+Z error container 'ka' does not exist\n$", pft.read_file(log))
  end)

  it("refuses a cgroupsPath that is another cgroup already, and leaves it alone", function()
    local taken = "pftest-oci-taken-" .. math.random(100000, 999999)
    local dir = "/sys/fs/cgroup/pids/" .. taken
    if pft.sh("mkdir " .. dir .. " 2>/dev/null") ~= 0 then pending("no v1 pids hierarchy to make a cgroup in") end
    finally(function() pft.sh("rmdir " .. dir .. " 2>/dev/null") end)
    config(nil, { linux = { namespaces = { { type = "pid" }, { type = "mount" } }, cgroupsPath = "/" .. taken } })
    local r = oci({ "create", "--bundle", bundle, "taken" })
    assert.are.equal(125, r.status)
    assert.matches("File exists", r.stderr)
    assert.are.equal(0, pft.sh("test -d " .. dir))
    assert.are.equal("", (pft.read_file(dir .. "/cgroup.procs")))
    assert_gone("taken")
  end)

  it("runs a container to its end with run: output and exit status", function()
    config({ args = { "sh", "-c", "echo hello from $(hostname); exit 7" }, cwd = "/", env = { "PATH=/bin" } })
    local r = oci({ "run", "--bundle", bundle, "runner" })
    assert.are.equal(7, r.status, r.stderr)
    assert.are.equal("hello from ocibox\n", r.stdout)
    assert_gone("runner")
  end)

  it("sends the pty master to --console-socket (SCM_RIGHTS) for process.terminal", function()
    config({ args = { "sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo on-a-tty; stty size" },
             cwd = "/", env = { "PATH=/bin" }, terminal = true, consoleSize = { width = 100, height = 40 } })
    -- The client side, as conmon does it: accept, take the fd, read the
    -- container's output from it until the container is gone.
    local sock, out = tmp .. "/console.sock", tmp .. "/console.out"
    console_receiver(sock, out)
    local r = oci({ "create", "--bundle", bundle, "--console-socket", sock, "tty" })
    assert.are.equal(0, r.status, r.stderr)
    local cgroups = private_state("tty").cgroup_dirs
    assert.are.equal(0, oci({ "start", "tty" }).status)
    wait_until("the console output", function() return pft.read_file(out) ~= nil end)
    local text = pft.read_file(out)
    assert.matches("^/dev/ptmx\n", text)
    assert.matches("on%-a%-tty", text)
    assert.matches("40 100", text)
    wait_until("the container to stop", function() return state("tty").status == "stopped" end)
    assert.are.equal(0, oci({ "delete", "tty" }).status)
    assert_gone("tty", cgroups)
    -- terminal without a socket, and a socket without a terminal: refused
    r = oci({ "create", "--bundle", bundle, "tty2" })
    assert.are.equal(125, r.status)
    assert.matches("%-%-console%-socket: needed when process%.terminal is true", r.stderr)
    assert_gone("tty2")
    config()
    r = oci({ "create", "--bundle", bundle, "--console-socket", sock, "tty3" })
    assert.matches("%-%-console%-socket: only with process%.terminal true", r.stderr)
    assert_gone("tty3")
  end)

  it("applies config.json: user ids, capabilities, rlimits, noNewPrivileges, env, cwd, mounts, readonly root, oomScoreAdj, resources", function()
    local hostdir = tmp .. "/shared"
    pft.sh("mkdir -p " .. hostdir .. " && echo from-host > " .. hostdir .. "/f")
    config({
      args = { "sh", "-c", table.concat({
        "id -u; id -g; id -G",
        "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status",
        "ulimit -n",
        "cat /proc/self/oom_score_adj",
        "echo FOO=$FOO; pwd",
        "cat /data/f; touch /data/x 2>/dev/null && echo data-writable || echo data-ro",
        "touch /bin/x 2>/dev/null && echo root-writable || echo root-ro",
        "touch /tmp/x && echo tmp-writable",
      }, "; ") },
      cwd = "/tmp", env = { "PATH=/bin", "FOO=bar baz" },
      user = { uid = 1000, gid = 1001, additionalGids = { 5, 7 } },
      capabilities = { bounding = { "CAP_KILL", "CAP_CHOWN" }, effective = { "CAP_KILL", "CAP_CHOWN" },
                       permitted = { "CAP_KILL", "CAP_CHOWN" } },
      rlimits = { { type = "RLIMIT_NOFILE", soft = 123, hard = 456 } },
      noNewPrivileges = true,
      oomScoreAdj = 321,
    }, {
      root = { path = "rootfs", readonly = true },
      mounts = {
        { destination = "/proc", type = "proc", source = "proc" },
        { destination = "/tmp", type = "tmpfs", source = "tmpfs", options = { "nosuid", "mode=1777" } },
        { destination = "/data", type = "bind", source = hostdir, options = { "rbind", "ro" } },
      },
      linux = { namespaces = { { type = "pid" }, { type = "mount" }, { type = "uts" }, { type = "ipc" } },
                resources = { pids = { limit = 50 }, memory = { limit = 64 * 1024 * 1024 } } },
    })
    local r = oci({ "run", "--bundle", bundle, "cfg" })
    assert.are.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("1000", lines[1])
    assert.are.equal("1001", lines[2])
    assert.are.same({ "1001", "5", "7" }, (function(t) table.sort(t) return t end)({ lines[3]:match("(%d+) (%d+) (%d+)") }))
    -- CAP_CHOWN (0) and CAP_KILL (5): 0x21, bounding and effective, as
    -- runc gives them to a command of uid 1000 too; nothing else.
    assert.are.equal("CapEff:\t0000000000000021", lines[4])
    assert.are.equal("CapBnd:\t0000000000000021", lines[5])
    assert.are.equal("NoNewPrivs:\t1", lines[6])
    assert.are.equal("123", lines[7])
    assert.are.equal("321", lines[8])
    assert.are.equal("FOO=bar baz", lines[9])
    assert.are.equal("/tmp", lines[10])
    assert.are.equal("from-host", lines[11])
    assert.are.equal("data-ro", lines[12])
    assert.are.equal("root-ro", lines[13])
    assert.are.equal("tmp-writable", lines[14])
    assert.is_nil(pft.read_file(hostdir .. "/x"))
    assert_gone("cfg")
  end)

  it("masks maskedPaths and freezes readonlyPaths, resolved inside the root (attack: a symlink to the host)", function()
    local rf = bundle .. "/rootfs"
    local hostonly = tmp .. "/hostonly"
    pft.sh("mkdir -p " .. hostonly .. " " .. rf .. "/srvdir " .. rf .. "/frozen && echo s3cret > " .. rf .. "/secret"
      .. " && echo inside > " .. rf .. "/srvdir/f && echo hostfile > " .. hostonly .. "/f && ln -sfn " .. hostonly .. " " .. rf .. "/evil")
    config({ args = { "sh", "-c", "cat /secret; echo [$(ls /srvdir)]; touch /frozen/x 2>/dev/null && echo frozen-writable || echo frozen-ro;"
                        .. " touch /tmp/x && echo tmp-writable; cat /evil/f 2>/dev/null || echo no-evil" },
             cwd = "/", env = { "PATH=/bin" } },
           { linux = { namespaces = { { type = "pid" }, { type = "mount" } },
                       maskedPaths = { "/secret", "/srvdir", "/evil", "/nonexistent" },
                       readonlyPaths = { "/frozen", "/evil" } } })
    local r = oci({ "run", "--bundle", bundle, "masked" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("[]\nfrozen-ro\ntmp-writable\nno-evil\n", r.stdout)
    -- the host's directory the link names is untouched
    assert.are.equal("hostfile\n", pft.read_file(hostonly .. "/f"))
    pft.sh("rm -rf " .. rf .. "/srvdir " .. rf .. "/frozen " .. rf .. "/secret " .. rf .. "/evil")
    assert_gone("masked")
  end)

  it("puts the container in linux.cgroupsPath and writes net.* sysctls in its network namespace", function()
    local top = "pftest-oci-" .. math.random(100000, 999999)
    config({ args = { "sleep", "600" }, cwd = "/", env = { "PATH=/bin" } },
           { linux = { namespaces = { { type = "pid" }, { type = "mount" }, { type = "network" } },
                       cgroupsPath = "/" .. top .. "/c1", resources = { pids = { limit = 20 } },
                       sysctl = { ["net.ipv4.ping_group_range"] = "0 5" },
                       readonlyPaths = { "/proc/sys" } } })
    local r = oci({ "create", "--bundle", bundle, "cgp" })
    assert.are.equal(0, r.status, r.stderr)
    local dirs = private_state("cgp").cgroup_dirs
    finally(function()
      oci({ "delete", "--force", "cgp" })
      for _, dir in ipairs(dirs) do pft.sh("rmdir " .. pft.quote(dir) .. " " .. pft.quote(dir:match("^(.*)/c1$")) .. " 2>/dev/null") end
    end)
    local pid = math.tointeger(state("cgp").pid)
    local found = false
    for _, dir in ipairs(dirs) do
      local suffix = "/" .. top .. "/c1"
      assert.are.equal(suffix, dir:sub(-#suffix))
      if pft.read_file(dir .. "/pids.max") then
        found = true
        assert.are.equal("20", (pft.read_file(dir .. "/pids.max"):gsub("%s+$", "")))
        assert.matches("%f[%d]" .. pid .. "%f[%D]", pft.read_file(dir .. "/" .. "payload/cgroup.procs"))
      end
    end
    assert.is_true(found)
    assert.are.equal(0, oci({ "start", "cgp" }).status)
    r = oci({ "exec", "cgp", "cat", "/proc/sys/net/ipv4/ping_group_range" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^0%s+5\n$", r.stdout)
    -- /proc/sys stays read-only, net included, once they are written
    r = oci({ "exec", "cgp", "sh", "-c", "echo '0 1' > /proc/sys/net/ipv4/ping_group_range" })
    assert.are_not.equal(0, r.status)
    assert.are.equal(0, oci({ "delete", "--force", "cgp" }).status)
    assert_gone("cgp", dirs)
  end)

  it("loads linux.seccomp (compiled by the engine), and none without it", function()
    config({ args = { "sh", "-c", "mkdir /tmp/d 2>&1 && echo made; grep Seccomp: /proc/self/status" }, cwd = "/", env = { "PATH=/bin" } },
           { linux = { namespaces = { { type = "pid" }, { type = "mount" } },
                       seccomp = { defaultAction = "SCMP_ACT_ALLOW",
                                   syscalls = { { names = { "mkdir", "mkdirat", "pflask_unknown_call" }, action = "SCMP_ACT_ERRNO", errnoRet = 1 } } } } })
    local r = oci({ "run", "--bundle", bundle, "sc" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("Operation not permitted", r.stdout)
    assert.matches("Seccomp:%s+2", r.stdout)
    config({ args = { "sh", "-c", "mkdir /tmp/d && echo made; grep Seccomp: /proc/self/status" }, cwd = "/", env = { "PATH=/bin" } })
    r = oci({ "run", "--bundle", bundle, "sc" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("made\nSeccomp:%s+0", r.stdout)
    -- a filter the compiler refuses: one clear line, nothing left
    config(nil, { linux = { namespaces = { { type = "pid" }, { type = "mount" } },
                            seccomp = { defaultAction = "SCMP_ACT_ALLOW", architectures = { "SCMP_ARCH_NOPE" } } } })
    r = oci({ "create", "--bundle", bundle, "sc" })
    assert.are.equal(125, r.status)
    assert.matches("seccomp", r.stderr)
    assert_gone("sc")
  end)

  it("runs the hooks with the state on their stdin, and a failing one undoes create", function()
    local function hook(name)
      return { { path = "/bin/sh", args = { "sh", "-c", "cat > " .. tmp .. "/hook." .. name .. "; echo >> " .. tmp .. "/hook." .. name .. "; echo $HOOKVAR >> " .. tmp .. "/hook." .. name },
                 env = { "HOOKVAR=set-" .. name } } }
    end
    config(nil, { hooks = { createRuntime = hook("createRuntime"), createContainer = hook("createContainer"),
                            startContainer = hook("startContainer"), prestart = hook("prestart"),
                            poststart = hook("poststart"), poststop = hook("poststop") } })
    assert.are.equal(0, oci({ "create", "--bundle", bundle, "hooked" }).status)
    local pid = math.tointeger(state("hooked").pid)
    for _, name in ipairs{ "createRuntime", "createContainer" } do
      local text = assert(pft.read_file(tmp .. "/hook." .. name), name)
      local st = cjson.decode(text:match("^[^\n]+"))
      assert.are.equal("hooked", st.id)
      assert.are.equal("created", st.status)
      assert.are.equal(pid, math.tointeger(st.pid))
      assert.matches("\nset%-" .. name .. "\n$", text)
    end
    assert.is_nil(pft.read_file(tmp .. "/hook.poststart"))
    assert.are.equal(0, oci({ "start", "hooked" }).status)
    for _, name in ipairs{ "prestart", "startContainer", "poststart" } do
      assert.truthy(pft.read_file(tmp .. "/hook." .. name), name)
    end
    assert.are.equal(0, oci({ "delete", "--force", "hooked" }).status)
    local text = assert(pft.read_file(tmp .. "/hook.poststop"))
    assert.are.equal("stopped", cjson.decode(text:match("^[^\n]+")).status)
    assert_gone("hooked")
    -- A createRuntime hook that fails: create fails, nothing is left.
    config(nil, { hooks = { createRuntime = { { path = "/bin/false" } } } })
    local r = oci({ "create", "--bundle", bundle, "badhook" })
    assert.are.equal(125, r.status)
    assert.matches("createRuntime hook /bin/false", r.stderr)
    assert_gone("badhook")
  end)

  it("leaves a state delete --force cleans when create is killed (SIGKILL) half-way", function()
    -- A createRuntime hook kills create itself: the container exists, its
    -- process waits on the FIFO, nothing was undone.
    local killer = "kill -KILL $(cut -d' ' -f4 /proc/$PPID/stat)"
    config(nil, { hooks = { createRuntime = { { path = "/bin/sh", args = { "sh", "-c", killer } } } } })
    local r = oci({ "create", "--bundle", bundle, "crash" })
    assert.are.equal(137, r.status, r.stderr)
    local st = private_state("crash")
    assert.truthy(st.cgroup_dirs and #st.cgroup_dirs > 0)
    assert.are.equal("created", state("crash").status)
    local pid = math.tointeger(st.pid)
    assert.truthy(alive(pid))
    r = oci({ "delete", "--force", "crash" })
    assert.are.equal(0, r.status, r.stderr)
    wait_until("the process to go", function() return not alive(pid) end)
    assert_gone("crash", st.cgroup_dirs)
  end)

  it("exec --tty --console-socket --detach: a pty of the container's own, the reaper's pid in the pid file", function()
    config()
    assert.are.equal(0, oci({ "create", "--bundle", bundle, "xt" }).status)
    local cgroups = private_state("xt").cgroup_dirs
    assert.are.equal(0, oci({ "start", "xt" }).status)
    local sock, out, pidfile = tmp .. "/xt.sock", tmp .. "/xt.out", tmp .. "/xt.pid"
    console_receiver(sock, out)
    local r = oci({ "exec", "--tty", "--console-socket", sock, "--detach", "--pid-file", pidfile, "xt",
                    "sh", "-c", "tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; sleep 0.2; exit 3" })
    assert.are.equal(0, r.status, r.stderr)
    local pid = tonumber(pft.read_file(pidfile))
    assert.truthy(pid)
    wait_until("the console output", function() return pft.read_file(out) ~= nil end)
    local text = pft.read_file(out)
    -- the tty is named inside: the container's devpts
    assert.matches("\n/dev/pts/%d+\r?\nall%-tty", text)
    wait_until("the reaper to end", function() return not alive(pid) end)
    -- without --tty, --console-socket is refused; --tty needs it
    r = oci({ "exec", "--console-socket", sock, "xt", "true" })
    assert.matches("%-%-console%-socket: only with %-%-tty", r.stderr)
    r = oci({ "exec", "--tty", "xt", "true" })
    assert.matches("%-%-tty: needs %-%-console%-socket", r.stderr)
    assert.are.equal(0, oci({ "delete", "--force", "xt" }).status)
    assert_gone("xt", cgroups)
  end)

  it("refuses every operation in a wrong state, and on an unknown ID", function()
    config()
    local r = oci({ "create", "--bundle", bundle, "ws" })
    assert.are.equal(0, r.status, r.stderr)
    local cgroups = private_state("ws").cgroup_dirs
    -- created: no exec, pause, resume
    for _, args in ipairs{ { "exec", "ws", "true" }, { "pause", "ws" }, { "resume", "ws" } } do
      r = oci(args)
      assert.are.equal(125, r.status, args[1])
      assert.matches("is created", r.stderr)
    end
    assert.are.equal(0, oci({ "start", "ws" }).status)
    -- running: no second start, no resume, no delete without --force
    r = oci({ "start", "ws" })
    assert.are.equal(125, r.status)
    assert.matches("'ws' is running, not created", r.stderr)
    r = oci({ "resume", "ws" })
    assert.matches("is running, not paused", r.stderr)
    r = oci({ "delete", "ws" })
    assert.are.equal(125, r.status)
    assert.matches("is running: stop it first", r.stderr)
    assert.are.equal("running", state("ws").status)
    -- stopped: no start, kill, exec, pause
    assert.are.equal(0, oci({ "kill", "ws", "KILL" }).status)
    wait_until("the container to stop", function() return state("ws").status == "stopped" end)
    for _, args in ipairs{ { "start", "ws" }, { "kill", "ws", "TERM" }, { "exec", "ws", "true" }, { "pause", "ws" } } do
      r = oci(args)
      assert.are.equal(125, r.status, args[1])
      assert.matches("is stopped", r.stderr)
    end
    assert.are.equal(0, oci({ "delete", "ws" }).status)
    assert_gone("ws", cgroups)
    -- unknown ID, for every command that takes one
    for _, cmd in ipairs{ "start", "state", "kill", "delete", "ps", "pause", "resume", "exec" } do
      local args = { cmd, "nosuch" }
      if cmd == "exec" then args[3] = "true" end
      r = oci(args)
      assert.are.equal(125, r.status, cmd)
      assert.matches("container 'nosuch' does not exist", r.stderr)
    end
  end)

  it("deletes a created container (its waiting process killed) and cleans with --force", function()
    config(nil, { linux = { namespaces = { { type = "pid" }, { type = "mount" } },
                            resources = { pids = { limit = 50 }, memory = { limit = 64 * 1024 * 1024 },
                                          cpu = { quota = 50000, period = 100000 } } } })
    assert.are.equal(0, oci({ "create", "--bundle", bundle, "dc" }).status)
    local cgroups = private_state("dc").cgroup_dirs
    -- linux.resources, in the container's cgroups (v1 or v2)
    local seen = {}
    for _, dir in ipairs(cgroups) do
      for file, want in pairs{ ["pids.max"] = "50", ["memory.limit_in_bytes"] = "67108864",
                               ["memory.max"] = "67108864", ["cpu.cfs_quota_us"] = "50000",
                               ["cpu.max"] = "50000 100000" } do
        local v = pft.read_file(dir .. "/" .. file)
        if v then seen[file:match("^(%a+)")] = true; assert.are.equal(want, v:gsub("%s+$", ""), dir .. "/" .. file) end
      end
    end
    assert.are.same({ pids = true, memory = true, cpu = true }, seen)
    local pid = math.tointeger(state("dc").pid)
    local r = oci({ "delete", "dc" })
    assert.are.equal(0, r.status, r.stderr)
    wait_until("the waiting process to go", function() return not alive(pid) end)
    assert_gone("dc", cgroups)
    -- running, with --force
    assert.are.equal(0, oci({ "create", "--bundle", bundle, "df" }).status)
    cgroups = private_state("df").cgroup_dirs
    assert.are.equal(0, oci({ "start", "df" }).status)
    r = oci({ "delete", "--force", "df" })
    assert.are.equal(0, r.status, r.stderr)
    assert_gone("df", cgroups)
    -- a crash right after the directory was made: --force cleans it
    pft.sh("mkdir -p " .. pft.quote(root .. "/crashed"))
    assert.are.equal(0, oci({ "delete", "--force", "nosuch" }).status)
    r = oci({ "delete", "--force", "crashed" })
    assert.are.equal(0, r.status, r.stderr)
    assert_gone("crashed")
  end)

  describe("bad input", function()
    local function refused(id, pattern, args)
      local log = tmp .. "/log.json"
      os.remove(log)
      local argv = { "--log", log, "--log-format", "json", "create", "--bundle", bundle, id }
      if args then argv = args end
      local r = oci(argv)
      assert.are_not.equal(0, r.status)
      local lines = {}
      for l in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(1, #lines, r.stderr)
      assert.matches(pattern, lines[1])
      if not args then
        local entry = cjson.decode((assert(pft.read_file(log), "no log")))
        assert.are.equal("error", entry.level)
        assert.matches(pattern, entry.msg)
        assert.truthy(entry.time)
        assert_gone(id)
      end
    end

    it("a missing config.json", function()
      os.remove(bundle .. "/config.json")
      refused("b1", "config%.json: cannot be read")
    end)

    it("a malformed config.json", function()
      pft.write_file(bundle .. "/config.json", "{ \"process\": ")
      refused("b2", "config%.json: not valid JSON")
    end)

    it("a field of the wrong type", function()
      config({ args = "sleep 600", cwd = "/" })
      refused("b3", "process%.args: must be an array")
      config(nil, { hostname = 42 })
      refused("b3", "hostname: must be a string, not number")
      config(nil, { linux = { namespaces = { { type = "bogus" } } } })
      refused("b3", "linux%.namespaces%[0%]%.type: 'bogus' is not a namespace")
      config(nil, { mounts = { { destination = "/x", type = "nfs", source = "a:b" } } })
      refused("b3", "mount type 'nfs' at /x is not supported")
    end)

    it("a bundle without a rootfs", function()
      config(nil, { root = { path = "norootfs" } })
      refused("b4", "root%.path: '.*/norootfs' is not a directory")
    end)

    it("a terminal on create's stdio without process.terminal (attack: the host's terminal)", function()
      if pft.sh("command -v script >/dev/null") ~= 0 then pending("script(1) is not installed") end
      config()
      local out = pft.capture("script -qec " .. pft.quote(pft.quote(OCI) .. " --root " .. pft.quote(root)
        .. " create --bundle " .. pft.quote(bundle) .. " ttyin") .. " /dev/null 2>&1")
      assert.matches("standard input is a terminal and process%.terminal is false", out)
      assert_gone("ttyin")
    end)

    it("an ID in use", function()
      config()
      assert.are.equal(0, oci({ "create", "--bundle", bundle, "inuse" }).status)
      local pid = math.tointeger(state("inuse").pid)
      local r = oci({ "create", "--bundle", bundle, "inuse" })
      assert.are.equal(125, r.status)
      assert.matches("container 'inuse' already exists", r.stderr)
      -- the first one is untouched
      assert.are.equal("created", state("inuse").status)
      assert.truthy(alive(pid))
      assert.are.equal(0, oci({ "delete", "inuse" }).status)
      assert_gone("inuse")
    end)

    it("an invalid ID, an unknown command or option, a bad signal", function()
      config()
      refused("../x", "'%.%./x' is not a valid container ID")
      refused(nil, "'frobnicate' is not a command", { "frobnicate" })
      refused(nil, "%-%-bogus: unknown option", { "create", "--bogus", "x" })
      refused(nil, "%-%-log%-format: 'xml' is not text or json", { "--log-format", "xml", "list" })
      assert.are.equal(0, oci({ "create", "--bundle", bundle, "sig" }).status)
      refused(nil, "'SIGNOPE' is not a signal", { "kill", "sig", "SIGNOPE" })
      assert.are.equal(0, oci({ "delete", "sig" }).status)
      assert_gone("sig")
    end)
  end)

  describe("rootless", function()
    local user, uid, gid, exe, rbundle, xdg

    setup(function()
      if not cjson_ok then return end
      user, uid, gid = pft.create_user()
      local bin
      exe, bin = pft.public_pflask()
      assert.are.equal(0, pft.sh("ln -s pflask " .. bin .. "/pflask-oci"))
      exe = bin .. "/pflask-oci"
      rbundle = pft.tempdir("ocirl")
      pft.make_rootfs(rbundle .. "/rootfs", { uid = uid, gid = gid })
      xdg = rbundle .. "/xdg"
      pft.sh("mkdir -p " .. xdg .. " && chown -R " .. uid .. ":" .. gid .. " " .. rbundle)
    end)

    teardown(function()
      if not cjson_ok then return end
      pft.remove_user(user)
      pft.rm_rf(rbundle)
    end)

    local function as_user(args)
      local argv = { exe }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      return pft.run(argv, { user = user, env = { XDG_RUNTIME_DIR = xdg } })
    end

    local function rconfig(args)
      pft.write_file(rbundle .. "/config.json", cjson.encode{
        process = { args = args, cwd = "/", env = { "PATH=/bin" } },
        root = { path = "rootfs" }, hostname = "rl",
        linux = { namespaces = { { type = "user" }, { type = "pid" }, { type = "mount" }, { type = "uts" }, { type = "ipc" } },
                  uidMappings = { { containerID = 0, hostID = uid, size = 1 } },
                  gidMappings = { { containerID = 0, hostID = gid, size = 1 } } },
      })
      pft.sh("chown " .. uid .. " " .. rbundle .. "/config.json")
    end

    it("goes through the lifecycle as an unprivileged user, state under $XDG_RUNTIME_DIR", function()
      rconfig({ "sleep", "600" })
      local r = as_user({ "create", "--bundle", rbundle, "rl" })
      assert.are.equal(0, r.status, r.stderr)
      local st = cjson.decode((assert(pft.read_file(xdg .. "/pflask-oci/rl/state.json"))))
      local pid = math.tointeger(st.pid)
      -- the waiting process is the user's, outside
      assert.are.equal(uid, tonumber(pft.read_file("/proc/" .. pid .. "/status"):match("\nUid:%s+(%d+)")))
      r = as_user({ "state", "rl" })
      assert.are.equal("created", cjson.decode(r.stdout).status)
      assert.are.equal(0, as_user({ "start", "rl" }).status)
      r = as_user({ "exec", "rl", "sh", "-c", "id -u; cat /proc/self/uid_map; hostname" })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("^0\n%s+0%s+" .. uid .. "%s+1\nrl\n$", r.stdout)
      -- root's own containers are not the user's to see
      r = as_user({ "--root", root, "list" })
      assert.are_not.equal(0, r.status)
      assert.are.equal(0, as_user({ "kill", "rl", "KILL" }).status)
      wait_until("the container to stop", function()
        return cjson.decode(as_user({ "state", "rl" }).stdout).status == "stopped"
      end)
      assert.are.equal(0, as_user({ "delete", "rl" }).status)
      assert.are.equal(1, pft.sh("test -e " .. xdg .. "/pflask-oci/rl"))
      assert.are.equal(0, pft.count_processes(rbundle))
    end)

    it("runs to the end with run, with the exit status", function()
      rconfig({ "sh", "-c", "echo $$; exit 5" })
      local r = as_user({ "run", "--bundle", rbundle, "rlrun" })
      assert.are.equal(5, r.status, r.stderr)
      assert.are.equal("1\n", r.stdout)
      assert.are.equal(1, pft.sh("test -e " .. xdg .. "/pflask-oci/rlrun"))
    end)
  end)
end)
