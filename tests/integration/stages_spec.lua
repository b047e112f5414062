-- The process model's stages (doc/architecture.md, "Process model"): the
-- exec plan in the command's own process right before execve (fds,
-- rlimits, no_new_privs, seccomp, not in pid 1), namespaces joined by
-- path, the start FIFO as a second source of "go", and exec into a
-- running container (c:exec, --exec), as root and rootless.
local pft = require "pftest"

local PFLASK = pft.absolute(pft.PFLASK)

local function unique(tag)
  return string.format("pft-%s-%d-%d", tag, os.time() % 100000, math.random(0, 999999))
end

local wait_until = pft.wait_until

local recipe = pft.recipe

local one_line = pft.one_line

-- A filter that makes mkdir and mkdirat fail with EPERM on x86_64 and
-- allows everything else (and everything on any other architecture).
local function pack(code, jt, jf, k) return string.pack("<I2BBI4", code, jt, jf, k) end
local BPF = table.concat({
  pack(0x20, 0, 0, 4),             -- ld [arch]
  pack(0x15, 0, 4, 0xC000003E),    -- jeq AUDIT_ARCH_X86_64, else allow
  pack(0x20, 0, 0, 0),             -- ld [nr]
  pack(0x15, 1, 0, 83),            -- jeq mkdir -> errno
  pack(0x15, 0, 1, 258),           -- jeq mkdirat -> errno, else allow
  pack(0x06, 0, 0, 0x00050001),    -- ret ERRNO(EPERM)
  pack(0x06, 0, 0, 0x7fff0000),    -- ret ALLOW
})
local X86_64 = (pft.capture("uname -m")) == "x86_64"
local function bpf_literal()
  return "(" .. string.format("%q", BPF):gsub("\n", "\\n") .. ")"
end

local INSIDE = [[
ls /proc/self/fd | tr '\n' ' '; echo
ulimit -n; ulimit -Hn
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\t' ' '
grep -E '^(NoNewPrivs|Seccomp):' /proc/1/status | sed 's/^/pid1 /' | tr -s '\t' ' '
grep 'Max open files' /proc/1/limits | tr -s ' ' | sed 's/^/pid1 /'
mkdir /tmp/pft-stages-nope-$$ 2>&1 || echo mkdir failed
]]

local function confined_recipe(extra)
  return string.format([[
local pflask = require "pflask"
os.exit(pflask.run{ command = { "sh", "-c", %q }, pass_fds = { 7 }, no_new_privs = true,
  rlimits = { nofile = { soft = 100, hard = 200 } }, seccomp_bpf = %s %s })
]], INSIDE, bpf_literal(), extra or "")
end

for _, world in ipairs({ "root", "rootless" }) do
  describe("the exec plan (" .. world .. ")", function()
    local u, user, pflask, dir
    setup(function()
      dir = pft.tempdir("stages")
      if world == "rootless" then
        u = pft.rootless_user()
        user, pflask = u.name, u.exe
      else
        pflask = PFLASK
      end
    end)
    teardown(function()
      if u then u:remove() end
      pft.rm_rf(dir)
    end)

    it("closes fds, sets rlimits, no_new_privs and seccomp in the command, not in pid 1", function()
      if not X86_64 then return pending("the test filter is written for x86_64") end
      local file = recipe(dir, confined_recipe())
      local r = pft.pflask({ "--recipe=" .. file }, { pflask = pflask, user = user, prefix = "exec 7</dev/null;" })
      assert.are.equal(0, r.status, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      -- 0-2, the passed fd 7, and ls's own directory fd.
      assert.matches("^0 1 2 3 7 $", lines[1])
      assert.are.equal("100", lines[2])
      assert.are.equal("200", lines[3])
      assert.matches("NoNewPrivs: 1\nSeccomp: 2\n", r.stdout, 1, true)
      assert.matches("pid1 NoNewPrivs: 0\npid1 Seccomp: 0\n", r.stdout, 1, true)
      -- pid 1 keeps the limits it started with.
      assert.is_nil(r.stdout:match("pid1 Max open files 100 200"), r.stdout)
      assert.matches("Operation not permitted", r.stdout)
      assert.matches("mkdir failed", r.stdout)
    end)

    it("runs the exec plan in pid 1 itself when it is the command (init = \"pid1\")", function()
      if not X86_64 then return pending("the test filter is written for x86_64") end
      local file = recipe(dir, confined_recipe(', init = "pid1"'))
      local r = pft.pflask({ "--recipe=" .. file }, { pflask = pflask, user = user, prefix = "exec 7</dev/null;" })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("pid1 NoNewPrivs: 1\npid1 Seccomp: 2\n", r.stdout, 1, true)
      assert.matches("mkdir failed", r.stdout)
    end)

    it("refuses bad rlimits and seccomp programs with one line, exit 125", function()
      for _, bad in ipairs({ "rlimits = { nofiles = 1 }", "rlimits = { nofile = -1 }",
                             "rlimits = { nofile = { soft = 10, hard = 5 } }", "seccomp_bpf = 'abc'" }) do
        local file = recipe(dir, "require('pflask').run{ command = { 'true' }, " .. bad .. " }")
        local r = pft.pflask({ "--recipe=" .. file }, { pflask = pflask, user = user })
        assert.are.equal(125, r.status, bad)
        assert.is_true(one_line(r.stderr), r.stderr)
        assert.matches("^pflask: [%w_-]+: ", r.stderr)
      end
    end)

    if world == "rootless" then
      it("a hard limit above the caller's fails in the command with one line, exit 125", function()
        local file = recipe(dir, "os.exit(require('pflask').run{ command = { 'true' }, rlimits = { nofile = 'infinity' } })")
        local r = pft.pflask({ "--recipe=" .. file }, { pflask = pflask, user = user })
        assert.are.equal(125, r.status, r.stderr)
        assert.matches("^pflask: rlimits: nofile: Operation not permitted\n$", r.stderr)
      end)
    end
  end)
end

describe("namespaces joined by path", function()
  local netns, dir
  setup(function()
    dir = pft.tempdir("stagesns")
    netns = unique("ns"):sub(1, 30)
    assert.are.equal(0, pft.sh("ip netns add " .. netns))
    assert.are.equal(0, pft.sh("ip -n " .. netns .. " link add pftstgdummy type veth peer name pftstgpeer"))
  end)
  teardown(function()
    pft.sh("ip netns del " .. netns .. " 2>/dev/null")
    pft.rm_rf(dir)
  end)

  it("joins a network namespace made with ip netns add and sees its interface", function()
    local file = recipe(dir, string.format([[
os.exit(require("pflask").run{ namespaces = { net = %q }, command = { "sh", "-c", "ip -o link; readlink /proc/self/ns/net" } })
]], "/run/netns/" .. netns))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("pftstgdummy", r.stdout)
    local ino = (pft.capture("stat -L -c %i /run/netns/" .. netns))
    assert.matches("net:%[" .. ino .. "%]", r.stdout)
  end)

  it("rootless: a host namespace cannot be joined from the container's own user namespace; one clear line", function()
    local u = pft.rootless_user()
    finally(function() u:remove() end)
    local user, pflask = u.name, u.exe
    local file = recipe(dir, string.format(
      "os.exit(require('pflask').run{ namespaces = { net = %q }, command = { 'true' } })", "/run/netns/" .. netns))
    local r = pft.pflask({ "--recipe=" .. file }, { pflask = pflask, user = user })
    assert.are.equal(125, r.status)
    assert.are.equal("pflask: namespaces.net: join /run/netns/" .. netns .. ": Operation not permitted\n", r.stderr)
  end)

  it("refuses a path that is no namespace of that kind, and netifs with it", function()
    for bad, why in pairs({ ["/etc/passwd"] = "is not a namespace", ["/proc/self/ns/uts"] = "is not a net namespace",
                            ["relative"] = "must be an absolute path" }) do
      local file = recipe(dir, string.format("require('pflask').run{ namespaces = { net = %q }, command = { 'true' } }", bad))
      local r = pft.pflask({ "--recipe=" .. file })
      assert.are.equal(125, r.status, bad)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.matches("^pflask: namespaces.net: .*" .. why, r.stderr)
    end
    local file = recipe(dir, string.format("require('pflask').run{ namespaces = { mount = %q }, command = { 'true' } }", "/proc/self/ns/mnt"))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(125, r.status)
    assert.matches("^pflask: namespaces.mount: joining by path is supported for net, ipc, uts and cgroup", r.stderr)
  end)
end)

describe("the start FIFO", function()
  local dir
  setup(function() dir = pft.tempdir("fifo") end)
  teardown(function() pft.rm_rf(dir) end)

  it("a created container runs its command only once another pflask opens the FIFO", function()
    local fifo, marker = dir .. "/start", dir .. "/ran"
    local name = unique("fifo")
    -- The supervisor detaches: the process that created the container
    -- exits, and nothing it holds releases the command.
    local create = pft.write_file(dir .. "/create.lua", string.format([[
local c = require("pflask").container{ name = %q, detach = true, start_fifo = %q,
  command = { "sh", "-c", "touch %s; sleep 30" } }:start()
assert(c.created)
os.exit(c:wait())
]], name, fifo, marker))
    local r = pft.pflask({ "--recipe=" .. create }, { timeout = 10 })
    assert.are.equal(0, r.status, r.stderr)
    local pid = tonumber(r.stdout:match("pid (%d+)"))
    finally(function() pft.sh("kill -KILL " .. pid .. " 2>/dev/null") end)
    assert.are.equal("fifo", (pft.capture("stat -c %F " .. fifo)):match("fifo"))
    pft.sh("sleep 0.3")
    assert.are.equal(1, pft.sh("test -e " .. marker), "the command ran before start")
    -- Listed (its record is written once created).
    assert.matches(name:gsub("%p", "%%%0"), pft.pflask({ "--list" }).stdout)
    local start = pft.write_file(dir .. "/start.lua", string.format(
      "assert(require('pflask').start_fifo(%q, 10)); os.exit(0)", fifo))
    local s = pft.pflask({ "--recipe=" .. start }, { timeout = 20 })
    assert.are.equal(0, s.status, s.stderr)
    wait_until("the command", function() return pft.sh("test -e " .. marker) == 0 end)
    assert.are.equal(0, pft.sh("kill " .. pid))
    wait_until("the FIFO to go", function() return pft.sh("test -e " .. fifo) ~= 0 end)
  end)

  it("rootless: created by one pflask, started by another of the same user", function()
    local u = pft.rootless_user()
    local user, pflask = u.name, u.exe
    local udir = pft.tempdir("fifo-user")
    local sup
    -- One finally per test: busted keeps only the last one given.
    finally(function()
      if sup then pft.sh("kill -KILL " .. sup .. " 2>/dev/null") end
      u:remove(); pft.rm_rf(udir)
    end)
    pft.sh("chown " .. user .. " " .. udir)
    local fifo, marker, created = udir .. "/start", udir .. "/ran", udir .. "/created"
    local create = pft.write_file(udir .. "/create.lua", string.format([[
local c = require("pflask").container{ start_fifo = %q, command = { "sh", "-c", "touch %s" } }:start()
assert(c.created)
io.open(%q, "w"):close()
os.exit(c:wait())
]], fifo, marker, created))
    local start = pft.write_file(udir .. "/start.lua", string.format(
      "assert(require('pflask').start_fifo(%q, 10)); os.exit(0)", fifo))
    pft.sh("chmod 0644 " .. create .. " " .. start)
    sup = tonumber((pft.capture("runuser -u " .. user .. " -- sh -c " .. pft.quote(pft.quote(pflask) ..
      " --recipe=" .. create .. " </dev/null >" .. udir .. "/out 2>&1 & echo $!"))))
    wait_until("the container to be created", function() return pft.sh("test -e " .. created) == 0 end)
    assert.are.equal(1, pft.sh("test -e " .. marker), "the command ran before start")
    local s = pft.pflask({ "--recipe=" .. start }, { pflask = pflask, user = user, timeout = 20 })
    assert.are.equal(0, s.status, s.stderr)
    wait_until("the command", function() return pft.sh("test -e " .. marker) == 0 end)
    wait_until("the supervisor's end", function() return pft.sh("kill -0 " .. sup .. " 2>/dev/null") ~= 0 end)
    assert.are.equal(1, pft.sh("test -e " .. fifo))
  end)

  it("the FIFO is reopened from inside a --chroot, as a user of the root, after pivot_root", function()
    local rootfs = pft.make_rootfs(dir .. "/root")
    local fifo = dir .. "/inroot"
    local file = pft.write_file(dir .. "/inroot.lua", string.format([[
local pflask = require "pflask"
local c = pflask.container{ root = %q, user = "alice", start_fifo = %q, command = { "sh", "-c", "echo ran as $(id -un)" } }:start()
assert(c.created)
assert(pflask.start_fifo(%q, 10))
os.exit(c:wait())
]], rootfs, fifo, fifo))
    local r = pft.pflask({ "--recipe=" .. file }, { timeout = 20 })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("ran as alice\n", r.stdout)
  end)

  it("a created container that was never started ends on SIGTERM, and its FIFO goes", function()
    local fifo = dir .. "/stopme"
    local file = pft.write_file(dir .. "/stop.lua", string.format([[
local c = require("pflask").container{ start_fifo = %q, command = { "sh", "-c", "echo ran" } }:start()
assert(c.created)
c:kill()
print("status", c:wait())
]], fifo))
    local r = pft.pflask({ "--recipe=" .. file }, { timeout = 20 })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("status\t143\n", r.stdout)
    assert.are.equal(1, pft.sh("test -e " .. fifo))
  end)

  it("refuses a start_fifo that exists or has no directory, with one line, nothing made", function()
    for bad, why in pairs({ ["/etc/passwd"] = "'/etc/passwd' already exists",
                            [dir .. "/no/such/fifo"] = "'" .. dir .. "/no/such' is not a directory" }) do
      local file = recipe(dir, string.format("require('pflask').run{ start_fifo = %q, command = { 'true' } }", bad))
      local r = pft.pflask({ "--recipe=" .. file })
      assert.are.equal(125, r.status, bad)
      assert.are.equal("pflask: start_fifo: " .. why .. "\n", r.stderr)
    end
    assert.are.equal(1, pft.sh("test -e " .. dir .. "/no"))
  end)

  it("start fails with one line when no container waits, and refuses what is no FIFO", function()
    local fifo = dir .. "/lonely"
    assert.are.equal(0, pft.sh("mkfifo " .. fifo))
    local start = pft.write_file(dir .. "/start2.lua", string.format([[
local ok, msg = require('pflask').start_fifo(%q, 0.2)
print(ok, msg)
local ok2, msg2 = require('pflask').start_fifo("/etc/passwd", 0.2)
print(ok2, msg2)]], fifo))
    local s = pft.pflask({ "--recipe=" .. start }, { timeout = 10 })
    assert.are.equal(0, s.status, s.stderr)
    assert.matches("nil\tstart " .. fifo:gsub("%p", "%%%0") .. ": no container answered: Connection timed out", s.stdout)
    assert.matches("nil\tstart /etc/passwd: not a FIFO", s.stdout)
  end)
end)

describe("exec into a running container", function()
  local dir, rootfs
  setup(function()
    dir = pft.tempdir("exec")
    rootfs = pft.make_rootfs(dir .. "/root")
    pft.write_file(rootfs .. "/etc/pft-marker", "inside\n")
  end)
  teardown(function() pft.rm_rf(dir) end)

  it("c:exec sees the container's hostname, pid namespace, mounts, cgroup and bounding set", function()
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local c = pflask.container{ root = %q, hostname = "pftbox", cgroups = { "pids" }, caps = { "-net_raw" },
  command = { "sleep", "30" } }:start()
local status = c:exec({ "sh", "-c", "hostname; echo pid $$; ls /proc | grep -c '^1$'; cat /etc/pft-marker; " ..
  "grep pids /proc/self/cgroup; grep CapBnd /proc/self/status; grep CapBnd /proc/1/status" },
  { cwd = "/tmp", env = { PFT = "x" } })
c:kill()
c:wait()
os.exit(status)
]], rootfs))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^pftbox\npid (%d+)\n1\ninside\n", r.stdout)
    local pid = tonumber(r.stdout:match("pid (%d+)"))
    assert.is_true(pid > 1)
    assert.matches("pids:/\n", r.stdout)
    local own, pid1 = r.stdout:match("CapBnd:%s*(%x+)\nCapBnd:%s*(%x+)")
    assert.are.equal(pid1, own)
    -- net_raw (13) dropped from the container's set: gone in exec too.
    assert.are.equal(0, math.tointeger(tonumber(own, 16)) & (1 << 13))
  end)

  it("c:exec takes user, stdout and stdin; a failure after joining leaves the recipe in its own namespaces", function()
    local out = dir .. "/exec-out"
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local core = require "pflask.core"
local function ns()
  local t = {}
  for _, n in ipairs({ "user", "mnt", "pid", "ipc", "uts", "net", "cgroup" }) do
    t[#t + 1] = tostring(core.stat("/proc/self/ns/" .. n).ino)
  end
  return table.concat(t, " ") .. " " .. core.stat("/").ino
end
local c = pflask.container{ root = %q, hostname = "pftbox", command = { "sleep", "30" } }:start()
local before = ns()
assert(c:exec({ "sh", "-c", "id -u; echo $HOME; cat" }, { user = "alice", stdout = %q, stdin = "/etc/hostname" }) == 0)
-- Joined every namespace, then failed on the working directory.
local ok, err = pcall(c.exec, c, { "true" }, { cwd = "/no/such/dir" })
print(ok, err.status, err.message)
print(ns() == before)
c:kill()
c:wait()
]], rootfs, out))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^false\t125\texec: cwd: [^\n]*No such file or directory\ntrue\n$", r.stdout)
    local host = pft.read_file("/etc/hostname")
    assert.are.equal("1000\n/home/alice\n" .. host, pft.read_file(out))
  end)

  it("c:exec joins the cgroup below pflask's where the container's init moved itself (as systemd to init.scope)", function()
    local moved = dir .. "/moved"
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local c = pflask.container{ cgroups = { "pids" }, namespaces = { cgroup = false }, init = "pid1",
  command = { "sh", "-c", "d=/sys/fs/cgroup/pids$(grep :pids: /proc/self/cgroup | cut -d: -f3); " ..
    "mkdir $d/sub && echo $$ > $d/sub/cgroup.procs && touch %s; exec sleep 30" } }:start()
for _ = 1, 200 do
  local f = io.open(%q)
  if f then f:close() break end
  os.execute("sleep 0.05")
end
local status = c:exec({ "sh", "-c", "grep :pids: /proc/self/cgroup; grep :pids: /proc/1/cgroup" })
c:kill(9) -- sleep as pid 1 has no handler for SIGTERM
c:wait()
os.exit(status)
]], moved, moved))
    if pft.sh("test -d /sys/fs/cgroup/pids") ~= 0 then return pending("no v1 pids hierarchy on this host") end
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(0, r.status, r.stderr)
    local own, pid1 = r.stdout:match("^%d+:pids:(%S+)\n%d+:pids:(%S+)\n$")
    assert.is_not_nil(own, r.stdout)
    assert.matches("/pflask%.%d+%.%d+/[%w/]*sub$", own)
    assert.are.equal(pid1, own)
  end)

  it("exec keeps the container's no_new_privs, rlimits and seccomp filter, from the plan and from the record", function()
    if not X86_64 then return pending("the test filter is written for x86_64") end
    local name = unique("conf")
    local file = recipe(dir, string.format([[
local pflask = require "pflask"
local c = pflask.container{ name = %q, command = { "sleep", "30" }, no_new_privs = true,
  rlimits = { nofile = 123 }, seccomp_bpf = %s }:start()
local script = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\t' ' '; ulimit -n; " ..
  "mkdir /tmp/pft-stages-nope-$$ 2>/dev/null || echo mkdir failed"
print(c:exec({ "sh", "-c", script }))
print(require("pflask.exec").by_id(%q, { "sh", "-c", script }))
c:kill()
c:wait()
]], name, bpf_literal(), name))
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(0, r.status, r.stderr)
    local once = "NoNewPrivs: 1\nSeccomp: 2\n123\nmkdir failed\n0\n"
    assert.are.equal(once .. once, r.stdout)
  end)

  it("attack: a container's init that moves to another mount namespace does not get exec there", function()
    local file = recipe(dir, [[
local pflask = require "pflask"
local core = require "pflask.core"
local c = pflask.container{ init = "pid1", command = { "unshare", "-m", "sleep", "30" } }:start()
local recorded = c.plan.registry.record.ns_mount
for _ = 1, 200 do
  if core.stat("/proc/" .. c:pid() .. "/ns/mnt").ino ~= recorded then break end
  os.execute("sleep 0.05")
end
local ok, err = pcall(c.exec, c, { "true" })
print(ok, err.status, err.message)
c:kill(9)
c:wait()
]])
    local r = pft.pflask({ "--recipe=" .. file })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^false\t125\texec: %d+ no longer has the mount namespace it was started with\n$", r.stdout)
  end)

  it("--exec=NAME and --exec=PID find the container in the registry; unknown ones fail with one line", function()
    local name = unique("ex")
    local sup = tonumber((pft.capture(pft.quote(PFLASK) .. " --name=" .. name .. " --hostname=pftnamed --chroot=" ..
      rootfs .. " -- sleep 30 </dev/null >/dev/null 2>&1 & echo $!")))
    finally(function() pft.sh("kill " .. sup .. " 2>/dev/null") end)
    local line
    wait_until("the record", function()
      for l in pft.pflask({ "--list" }).stdout:gmatch("[^\n]+") do
        if l:match("^" .. name:gsub("%p", "%%%0") .. " ") then line = l end
      end
      return line
    end)
    local pid = line:match("^%S+%s+(%d+)")
    local r = pft.pflask({ "--exec=" .. name, "--setenv=PFT=hello", "--chdir=/etc", "--user=alice", "--", "sh", "-c",
      "hostname; cat pft-marker; echo $PFT; id -un; exit 3" })
    assert.are.equal(3, r.status, r.stderr)
    assert.are.equal("pftnamed\ninside\nhello\nalice\n", r.stdout)
    -- Shell completion offers it for --exec.
    local words = pft.pflask({ "--complete=running" }).stdout
    assert.matches("\n" .. name:gsub("%p", "%%%0") .. "\n", "\n" .. words)
    assert.matches("\n" .. pid .. "\n", "\n" .. words)
    r = pft.pflask({ "--exec=" .. pid, "--", "hostname" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("pftnamed\n", r.stdout)
    r = pft.pflask({ "--exec=" .. pid, "--", "pft-no-such-command" })
    assert.are.equal(127, r.status)
    r = pft.pflask({ "--exec=" .. unique("none"), "--", "true" })
    assert.are.equal(125, r.status)
    assert.matches("^pflask: %-%-exec: no running container named '[^']+'\n$", r.stderr)
    r = pft.pflask({ "--exec=1", "--", "true" })
    assert.are.equal(125, r.status)
    assert.are.equal("pflask: --exec: 1 is not a running container of yours (pflask --list)\n", r.stderr)
  end)

  describe("rootless", function()
    local u, user, pflask
    setup(function()
      u = pft.rootless_user()
      user, pflask = u.name, u.exe
    end)
    teardown(function()
      if u then u:remove() end
    end)

    it("--exec joins an unprivileged user's container, user namespace first", function()
      local name = unique("rl")
      local sup = tonumber((pft.capture("runuser -u " .. user .. " -- sh -c " .. pft.quote(pft.quote(pflask) ..
        " --name=" .. name .. " --hostname=pftrootless --chroot=" .. rootfs ..
        " -- sleep 30 </dev/null >/dev/null 2>&1 & echo $!"))))
      finally(function() pft.sh("kill " .. sup .. " 2>/dev/null") end)
      wait_until("the record", function()
        return pft.pflask({ "--list" }, { pflask = pflask, user = user }).stdout:match(name:gsub("%p", "%%%0"))
      end)
      local r = pft.pflask({ "--exec=" .. name, "--", "sh", "-c",
        "hostname; id -u; echo $$; cat /etc/pft-marker; ls /proc | grep -c '^1$'; " ..
        "grep CapBnd /proc/self/status; grep CapBnd /proc/1/status" },
        { pflask = pflask, user = user })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("^pftrootless\n0\n(%d+)\ninside\n1\n", r.stdout)
      assert.is_true(tonumber(r.stdout:match("^pftrootless\n0\n(%d+)")) > 1)
      local own, pid1 = r.stdout:match("CapBnd:%s*(%x+)\nCapBnd:%s*(%x+)")
      assert.are.equal(pid1, own)
    end)

    it("a container it may not join fails cleanly and the caller stays in its own namespaces", function()
      local sup = tonumber((pft.capture(pft.quote(PFLASK) .. " -- sleep 30 </dev/null >/dev/null 2>&1 & echo $!")))
      finally(function() pft.sh("kill " .. sup .. " 2>/dev/null") end)
      local child
      wait_until("root's container", function()
        child = tonumber((pft.capture("pgrep -P " .. sup .. " | head -1")))
        return child
      end)
      local file = pft.write_file(dir .. "/half.lua", string.format([[
local function ns()
  local out = {}
  for _, n in ipairs({ "user", "mnt", "pid", "ipc", "uts", "net", "cgroup" }) do
    local st = require("pflask.core").stat("/proc/self/ns/" .. n)
    out[#out + 1] = st and tostring(st.ino) or n
  end
  return table.concat(out, " ")
end
local before = ns()
local ok, err = pcall(require("pflask.exec").run, { pid = %d }, { "true" })
assert(not ok)
print(err.status, err.message)
assert(ns() == before)
print("still here")
]], child))
      pft.sh("chmod 0644 " .. file)
      local r = pft.pflask({ "--recipe=" .. file }, { pflask = pflask, user = user })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("^125\texec: [^\n]+\nstill here\n$", r.stdout)
    end)
  end)
end)
