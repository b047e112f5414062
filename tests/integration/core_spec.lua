-- pflask.core used directly from stock lua5.4 (busted), as root: clone into
-- real namespaces, the sync channel, exec, wait, kill, id maps, and the
-- small system calls. CTest's LUA_CPATH makes `require "pflask.core"` load
-- build/lua/pflask/core.so.
local pft = require "pftest"
local core = require "pflask.core"

local ENV = { PATH = "/usr/sbin:/usr/bin:/sbin:/bin" }

local read_file = pft.read_file

local write_file = pft.write_file

local ns_id = pft.ns_id

local function alive(pid)
  return pft.sh("kill -0 " .. pid .. " 2>/dev/null") == 0
end

-- The child is a fork of this busted process: flush first, or the child's
-- exit would write busted's buffered output a second time.
local function clone(namespaces, fn)
  io.stdout:flush()
  io.stderr:flush()
  return core.clone(namespaces, fn)
end

-- A child body that waits for release, then execs `sh -c script`; an exec
-- failure is raised as a pflask.Error-like table.
local function sh_child(script)
  return function(ch)
    if not ch:wait() then return 125 end
    local _, msg, errno, status = core.exec("sh", { "sh", "-c", script }, ENV)
    error({ status = status, message = msg, errno = errno })
  end
end

describe("pflask.core", function()
  local dir
  local procs

  before_each(function()
    dir = pft.tempdir("core")
    procs = {}
  end)

  after_each(function()
    -- Whatever a failed test left running.
    for _, p in ipairs(procs) do
      if p.proc then p.proc:kill(core.signals.KILL); p.proc:wait() end
    end
    pft.rm_rf(dir)
  end)

  local function track(proc)
    procs[#procs + 1] = { proc = proc }
    return proc
  end

  describe("module", function()
    it("is the build tree's core.so", function()
      local path = package.searchpath("pflask.core", package.cpath)
      assert.is_not_nil(path)
      local build = os.getenv("PFLASK_BUILD_DIR")
      if build then assert.equal(build .. "/lua/pflask/core.so", path) end
      assert.equal("table", type(core))
      assert.equal("function", type(core.clone))
    end)

    it("loads in a stock lua5.4 subprocess with the same LUA_CPATH", function()
      local r = pft.run({ "lua5.4", "-e",
        "local c = require 'pflask.core'; io.write(c.version, ' ', package.searchpath('pflask.core', package.cpath))" },
        { env = { LUA_CPATH = os.getenv("LUA_CPATH") or "" } })
      assert.equal(0, r.status, r.stderr)
      assert.equal(core.version .. " " .. package.searchpath("pflask.core", package.cpath), r.stdout)
    end)

    it("has the project's version", function()
      assert.matches("^%d+%.%d+%.%d+$", core.version)
      local cmake = read_file(pft.SOURCE_DIR .. "/CMakeLists.txt")
      local v = cmake and cmake:match("project%s*%(%s*pflask[^)]-VERSION%s+([%d%.]+)")
      -- The pattern is part of the test: missing it is a failure, never a skip.
      assert.is_not_nil(v, "no project(pflask VERSION x.y.z) in CMakeLists.txt")
      assert.equal(v, core.version)
    end)

    it("lists the namespaces clone accepts", function()
      local set = {}
      for _, n in ipairs(core.namespaces) do
        assert.equal("string", type(n))
        assert.is_nil(set[n], "duplicate " .. n)
        set[n] = true
      end
      for _, n in ipairs({ "mount", "pid", "ipc", "uts", "net", "user", "cgroup" }) do
        assert.is_true(set[n], n)
      end
    end)

    it("lists signal numbers", function()
      assert.equal(15, core.signals.TERM)
      assert.equal(9, core.signals.KILL)
      assert.equal(1, core.signals.HUP)
      assert.equal(2, core.signals.INT)
      assert.equal(10, core.signals.USR1) -- x86 and arm
      assert.is_true(core.signals.RTMIN >= 32 and core.signals.RTMIN < core.signals.RTMAX)
    end)
  end)

  describe("clone", function()
    it("creates a real UTS namespace and execs in it", function()
      local host = pft.capture("hostname")
      local out = dir .. "/out"
      local proc, chan = clone({ "uts" }, function(ch)
        if not ch:wait() then return 125 end
        assert(core.sethostname("pft-core-uts"))
        local _, msg, errno, status = core.exec("sh",
          { "sh", "-c", "hostname > " .. out .. "; readlink /proc/self/ns/uts >> " .. out }, ENV)
        error({ status = status, message = msg, errno = errno })
      end)
      assert.is_truthy(proc, chan)
      track(proc)
      assert.is_true(core.getpid() ~= proc:pid())
      assert.is_true(chan:release())
      assert.is_true(chan:result())
      chan:close()
      local status, how, code = proc:wait()
      assert.equal(0, status)
      assert.equal("exited", how)
      assert.equal(0, code)
      local name, uts = read_file(out):match("^(%S+)\n(%S+)\n$")
      assert.equal("pft-core-uts", name)
      assert.matches("^uts:%[%d+%]$", uts)
      assert.are_not.equal(ns_id("uts"), uts)
      assert.equal(host, pft.capture("hostname"))
    end)

    it("execs by PATH search a command whose output is the caller's (lua5.4 subprocess)", function()
      -- The child's stdout is the caller's: run the caller as a subprocess
      -- to capture what `hostname` prints.
      local script = [=[
local core = require "pflask.core"
local proc, chan = core.clone({ "uts" }, function(ch)
  ch:wait()
  assert(core.sethostname("pft-exec"))
  local _, msg, errno, status = core.exec("hostname", { "hostname" }, { PATH = "/usr/bin:/bin" })
  error({ status = status, message = msg, errno = errno })
end)
assert(chan:release())
assert(chan:result() == true)
local status = proc:wait()
io.stdout:write("status ", status, "\n")
]=]
      local r = pft.run({ "lua5.4", "-e", script })
      assert.equal(0, r.status, r.stderr)
      assert.equal("pft-exec\nstatus 0\n", r.stdout)
    end)

    it("puts the child in a new pid namespace as pid 1", function()
      local out = dir .. "/pid"
      local proc, chan = clone({ "pid" }, function(ch)
        if not ch:wait() then return 125 end
        write_file(out, tostring(core.getpid()))
        return 0
      end)
      track(proc)
      chan:release()
      assert.equal(0, (proc:wait()))
      assert.equal("1", read_file(out))
      assert.is_true(proc:pid() > 1)
    end)

    it("creates every namespace it is asked for, and only those", function()
      local out = dir .. "/ns"
      local proc, chan = clone({ mount = true, ipc = true, net = true, cgroup = true, uts = false },
        sh_child("for n in mnt ipc net cgroup uts pid user; do echo $n $(readlink /proc/self/ns/$n); done > " .. out))
      track(proc)
      chan:release()
      assert.is_true(chan:result())
      assert.equal(0, (proc:wait()))
      local inside = {}
      for n, id in read_file(out):gmatch("(%S+) (%S+)") do inside[n] = id end
      for _, n in ipairs({ "mnt", "ipc", "net", "cgroup" }) do
        assert.matches("^" .. n .. ":%[%d+%]$", inside[n] or "", n .. " not read inside")
        assert.are_not.equal(ns_id(n), inside[n], n .. " should be new")
      end
      for _, n in ipairs({ "uts", "pid", "user" }) do
        assert.equal(ns_id(n), inside[n], n .. " should be the host's")
      end
    end)

    it("forks without namespaces given an empty list", function()
      local out = dir .. "/plain"
      local proc, chan = clone({}, sh_child("readlink /proc/self/ns/uts > " .. out))
      track(proc)
      chan:release()
      assert.is_true(chan:result())
      assert.equal(0, (proc:wait()))
      assert.equal(ns_id("uts") .. "\n", read_file(out))
    end)

    it("raises on a name that is not a namespace", function()
      local ok, err = pcall(core.clone, { "bogus" }, function() end)
      assert.is_false(ok)
      assert.matches("'bogus' is not a namespace", err, 1, true)
      assert.is_false((pcall(core.clone, { "uts" }, "not a function")))
    end)

    it("exits with the integer the child function returns", function()
      local proc, chan = clone({}, function() return 9 end)
      track(proc)
      chan:close()
      local status, how, code = proc:wait()
      assert.equal(9, status)
      assert.equal("exited", how)
      assert.equal(9, code)
    end)

    it("lets the child fail when the parent closes the channel without releasing it", function()
      local out = dir .. "/wait"
      local proc, chan = clone({}, function(ch)
        local ok, msg = ch:wait()
        write_file(out, tostring(ok) .. " " .. tostring(msg))
        return ok and 0 or 3
      end)
      track(proc)
      chan:close()
      assert.equal(3, (proc:wait()))
      assert.matches("^nil ", read_file(out))
    end)
  end)

  describe("channel", function()
    it("carries a pflask.Error-like failure from the child", function()
      local proc, chan = clone({}, function(ch)
        ch:wait()
        error({ status = 42, message = "boom", errno = 5 })
      end)
      track(proc)
      chan:release()
      local started, msg, errno, status = chan:result()
      assert.is_false(started)
      assert.equal("boom", msg)
      assert.equal(5, errno)
      assert.equal(42, status)
      chan:close()
      local st, how, code = proc:wait()
      assert.equal(42, st)
      assert.equal("exited", how)
      assert.equal(42, code)
    end)

    it("turns a plain error into status 125", function()
      local proc, chan = clone({}, function(ch)
        ch:wait()
        error("plain failure", 0)
      end)
      track(proc)
      chan:release()
      local started, msg, errno, status = chan:result()
      assert.is_false(started)
      assert.equal("plain failure", msg)
      assert.equal(0, errno)
      assert.equal(125, status)
      assert.equal(125, (proc:wait()))
    end)

    it("carries the child's explicit report", function()
      local proc, chan = clone({}, function(ch)
        ch:wait()
        ch:report(99, 13, "reported by hand")
        return 99
      end)
      track(proc)
      chan:release()
      local started, msg, errno, status = chan:result()
      assert.is_false(started)
      assert.equal("reported by hand", msg)
      assert.equal(13, errno)
      assert.equal(99, status)
      assert.equal(99, (proc:wait()))
    end)

    it("reports a missing command as 127 and an unexecutable one as 126", function()
      local proc, chan = clone({}, function(ch)
        ch:wait()
        local ok, msg, errno, status = core.exec("pftest-no-such-command", { "pftest-no-such-command" }, ENV)
        assert(ok == nil, "exec returned success")
        error({ status = status, message = msg, errno = errno })
      end)
      track(proc)
      chan:release()
      local started, msg, errno, status = chan:result()
      assert.is_false(started)
      assert.equal(127, status)
      assert.equal(2, errno) -- ENOENT
      assert.matches("pftest-no-such-command", msg, 1, true)
      assert.equal(127, (proc:wait()))

      local noexec = dir .. "/noexec"
      write_file(noexec, "#!/bin/sh\n")
      local proc2, chan2 = clone({}, function(ch)
        ch:wait()
        local _, msg2, errno2, status2 = core.exec(noexec, { noexec }, ENV)
        error({ status = status2, message = msg2, errno = errno2 })
      end)
      track(proc2)
      chan2:release()
      local started2, _, errno2, status2 = chan2:result()
      assert.is_false(started2)
      assert.equal(126, status2)
      assert.equal(13, errno2) -- EACCES
      assert.equal(126, (proc2:wait()))
    end)

    it("refuses use after close", function()
      local proc, chan = clone({}, function() return 0 end)
      track(proc)
      chan:close()
      chan:close() -- idempotent
      assert.matches("closed", tostring(chan))
      assert.has_error(function() chan:release() end)
      proc:wait()
    end)
  end)

  describe("process", function()
    it("waits for a command that exits with a status", function()
      local proc, chan = clone({}, sh_child("exit 7"))
      track(proc)
      chan:release()
      assert.is_true(chan:result())
      local status, how, code = proc:wait()
      assert.equal(7, status)
      assert.equal("exited", how)
      assert.equal(7, code)
      -- Waiting again returns the same result.
      local s2, h2, c2 = proc:wait()
      assert.equal(7, s2); assert.equal("exited", h2); assert.equal(7, c2)
    end)

    it("kills with a signal: 128+N, signaled, N", function()
      local proc, chan = clone({}, sh_child("exec sleep 100"))
      track(proc)
      chan:release()
      assert.is_true(chan:result())
      assert.is_true(alive(proc:pid()))
      assert.is_true(proc:kill(core.signals.TERM))
      local status, how, code = proc:wait()
      assert.equal(143, status)
      assert.equal("signaled", how)
      assert.equal(15, code)
      assert.is_false(alive(proc:pid()))
      -- A reaped process cannot be signalled.
      local ok, msg, errno = proc:kill(core.signals.TERM)
      assert.is_nil(ok)
      assert.equal("string", type(msg))
      assert.equal(3, errno) -- ESRCH
      assert.matches("reaped", tostring(proc))
    end)

    it("sends SIGTERM by default", function()
      local proc, chan = clone({}, sh_child("exec sleep 100"))
      track(proc)
      chan:release()
      assert.is_true(chan:result())
      assert.is_true(proc:kill())
      local status, how, code = proc:wait()
      assert.same({ 143, "signaled", 15 }, { status, how, code })
    end)

    it("kills and reaps its child when a <close> handle goes out of scope", function()
      local pid
      do
        local proc <close>, chan = clone({}, sh_child("exec sleep 100"))
        pid = proc:pid()
        chan:release()
        assert.is_true(chan:result())
        chan:close()
        assert.is_true(alive(pid))
      end
      -- Reaped, not a zombie: /proc/PID is gone.
      assert.is_false(alive(pid))
      assert.is_nil(read_file("/proc/" .. pid .. "/stat"))
    end)

    it("kills and reaps its child when the handle is collected", function()
      local pid
      do
        local proc, chan = clone({}, sh_child("exec sleep 100"))
        pid = proc:pid()
        chan:release()
        assert.is_true(chan:result())
        chan:close()
      end
      collectgarbage()
      collectgarbage()
      assert.is_false(alive(pid))
      assert.is_nil(read_file("/proc/" .. pid .. "/stat"))
    end)

    it("reaps the reaper's command and returns its status", function()
      local out = dir .. "/reaper"
      local proc, chan = clone({ "pid" }, function(ch)
        ch:wait()
        assert(core.fork_reaper(ch))
        local _, msg, errno, status = core.exec("sh", { "sh", "-c",
          "echo $$ > " .. out .. "; exit 5" }, ENV)
        error({ status = status, message = msg, errno = errno })
      end)
      track(proc)
      chan:release()
      assert.is_true(chan:result())
      assert.equal(5, (proc:wait()))
      -- The reaper is pid 1, the command its child.
      assert.equal("2\n", read_file(out))
    end)
  end)

  describe("user namespaces", function()
    it("writes id maps and denies setgroups for a child in a new user namespace", function()
      local out = dir .. "/maps"
      local proc, chan = clone({ "user" }, function(ch)
        if not ch:wait() then return 125 end
        local parts = {}
        for _, f in ipairs({ "uid_map", "gid_map", "setgroups" }) do
          parts[#parts + 1] = read_file("/proc/self/" .. f)
        end
        write_file(out, table.concat(parts, "--\n"))
        return 0
      end)
      track(proc)
      local pid = proc:pid()
      assert.is_true(core.deny_setgroups(pid))
      assert.is_true(core.write_id_map(pid, "uid", { { inside = 0, outside = 0, count = 4294967295 } }))
      assert.is_true(core.write_id_map(pid, "gid", {
        { inside = 0, outside = 0, count = 1000 },
        { inside = 1000, outside = 2000, count = 10 } }))
      chan:release()
      assert.equal(0, (proc:wait()))
      local uid_map, gid_map, setgroups = read_file(out):match("^(.-)%-%-\n(.-)%-%-\n(.*)$")
      assert.equal("0 0 4294967295", (uid_map:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")))
      local lines = {}
      for l in gid_map:gmatch("[^\n]+") do lines[#lines + 1] = l:gsub("%s+", " "):gsub("^ ", "") end
      assert.same({ "0 0 1000", "1000 2000 10" }, lines)
      assert.equal("deny\n", setgroups)
    end)

    it("refuses a second id map and bad ranges", function()
      local proc, chan = clone({ "user" }, function(ch) ch:wait(); return 0 end)
      track(proc)
      local pid = proc:pid()
      assert.is_true(core.write_id_map(pid, "uid", { { inside = 0, outside = 0, count = 1 } }))
      -- The kernel takes one map per namespace: the second write is EPERM.
      local ok, msg, errno = core.write_id_map(pid, "uid", { { inside = 0, outside = 0, count = 1 } })
      assert.is_nil(ok)
      assert.equal(1, errno) -- EPERM
      assert.matches("/proc/" .. pid .. "/uid_map: Operation not permitted$", msg)
      assert.has_error(function() core.write_id_map(pid, "uid", {}) end)
      assert.has_error(function() core.write_id_map(pid, "both", { { inside = 0, outside = 0, count = 1 } }) end)
      assert.has_error(function() core.write_id_map(pid, "gid", { { inside = -1, outside = 0, count = 1 } }) end)
      chan:release()
      assert.equal(0, (proc:wait()))
    end)

    it("joins another process's namespaces with core.join", function()
      -- A holds a UTS namespace with its own hostname; B joins it.
      local holder, hchan = clone({ "uts" }, function(ch)
        ch:wait()
        assert(core.sethostname("pft-joined"))
        local _, msg, errno, status = core.exec("sleep", { "sleep", "100" }, ENV)
        error({ status = status, message = msg, errno = errno })
      end)
      track(holder)
      hchan:release()
      assert.is_true(hchan:result())
      local out = dir .. "/joined"
      local hpid = holder:pid()
      local joiner, jchan = clone({}, function(ch)
        ch:wait()
        local ok, msg, errno = core.join(hpid, { "uts" })
        if not ok then error({ status = 77, message = msg, errno = errno }) end
        local _, msg2, errno2, status = core.exec("sh", { "sh", "-c",
          "hostname > " .. out .. "; readlink /proc/self/ns/uts >> " .. out }, ENV)
        error({ status = status, message = msg2, errno = errno2 })
      end)
      track(joiner)
      jchan:release()
      local started, msg = jchan:result()
      assert.is_true(started, msg)
      assert.equal(0, (joiner:wait()))
      local name, uts = read_file(out):match("^(%S+)\n(%S+)\n$")
      assert.equal("pft-joined", name)
      assert.equal(pft.capture("readlink /proc/" .. hpid .. "/ns/uts"), uts)
      assert.are_not.equal(ns_id("uts"), uts)
      holder:kill(core.signals.KILL)
      assert.equal(137, (holder:wait()))
      -- Joining a process that is gone fails with a message.
      local ok, jmsg, jerrno = core.join(hpid, { "uts" })
      assert.is_nil(ok)
      assert.equal(3, jerrno) -- ESRCH: core.join pins the process with a pidfd first
      assert.equal("no process " .. hpid .. ": No such process", jmsg)
    end)
  end)

  describe("system calls", function()
    it("stats and lstats files", function()
      local st = assert(core.stat("/"))
      assert.equal("directory", st.type)
      assert.equal(0, st.uid)
      assert.equal("number", type(st.mode))
      write_file(dir .. "/f", "12345")
      assert.equal(0, pft.sh("chmod 0640 " .. dir .. "/f && ln -s f " .. dir .. "/l"))
      local f = assert(core.stat(dir .. "/f"))
      assert.equal("file", f.type)
      assert.equal(5, f.size)
      assert.equal(tonumber("640", 8), f.mode)
      assert.equal("file", core.stat(dir .. "/l").type)
      assert.equal("link", core.lstat(dir .. "/l").type)
      assert.equal("char", core.stat("/dev/null").type)
      local ok, msg, errno = core.stat(dir .. "/missing")
      assert.is_nil(ok)
      assert.matches(dir .. "/missing", msg, 1, true)
      assert.equal(2, errno)
    end)

    it("reads inside a root without escaping it through a symlink", function()
      local root = dir .. "/root"
      assert.equal(0, pft.sh("mkdir -p " .. root .. "/etc " .. root .. "/sub"))
      write_file(root .. "/etc/hostname", "inside-root\n")
      assert.equal(0, pft.sh("ln -s /etc/hostname " .. root .. "/x && ln -s ../../../../../etc/hostname "
        .. root .. "/sub/up"))
      assert.equal("inside-root\n", core.read_in_root(root, "x"))
      assert.equal("inside-root\n", core.read_in_root(root, "/sub/up"))
      assert.equal("inside-root\n", core.read_in_root(root, "../../etc/hostname"))
      assert.equal("insi", core.read_in_root(root, "etc/hostname", 4))

      -- Without the file inside, the host's is never read.
      local empty = dir .. "/empty"
      assert.equal(0, pft.sh("mkdir -p " .. empty .. " && ln -s /etc/hostname " .. empty .. "/x"))
      for _, path in ipairs({ "x", "/etc/hostname", "../etc/hostname" }) do
        local data, msg, errno = core.read_in_root(empty, path)
        assert.is_nil(data, path)
        assert.equal("string", type(msg))
        assert.equal(2, errno)
      end
    end)

    it("looks up users in the host's database", function()
      local root = assert(core.getpwnam("root"))
      assert.equal("root", root.name)
      assert.equal(0, root.uid)
      assert.equal(0, root.gid)
      assert.equal("/root", root.home)
      assert.equal("string", type(root.shell))
      local by_uid = assert(core.getpwnam(0))
      assert.equal("root", by_uid.name)
      assert.is_nil((core.getpwnam("pftest-no-such-user")))
      local groups = core.getgrouplist("root", 0)
      assert.equal(0, groups[1])
    end)

    it("returns the whole environment", function()
      local env = core.environ()
      assert.equal(os.getenv("PATH"), env.PATH)
      assert.equal(os.getenv("LUA_CPATH"), env.LUA_CPATH)
      local n = 0
      for k, v in pairs(env) do
        assert.equal("string", type(k)); assert.equal("string", type(v))
        n = n + 1
      end
      -- Lua never changes the environment: it is the one we started with.
      local initial = 0
      for entry in read_file("/proc/self/environ"):gmatch("([^%z]*)%z") do
        local k, v = entry:match("^([^=]*)=(.*)$")
        if k then
          initial = initial + 1
          assert.equal(v, env[k], k)
        end
      end
      assert.equal(initial, n)
    end)

    it("reports identity", function()
      assert.equal(0, core.getuid())
      assert.equal(0, core.geteuid())
      assert.equal(0, core.getgid())
      assert.equal(0, core.getegid())
      assert.equal(tonumber(read_file("/proc/self/stat"):match("^%d+")), core.getpid())
      local cwd = assert(core.getcwd())
      assert.equal(pft.capture("pwd"), cwd)
    end)
  end)
end)
