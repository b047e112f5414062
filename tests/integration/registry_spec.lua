-- Names and the registry (pflask(1), --name, --list): every running
-- container has a record in its owner's runtime directory, found by name
-- or pid, listed by --list, gone with the container, swept when pflask was
-- killed; hostile files in that directory are not followed; a name is
-- unique per user.
local pft = require "pftest"

local PFLASK = pft.absolute(pft.PFLASK)

local RUNDIR = "/run/pflask"

local function unique(tag)
  return string.format("pft-%s-%d-%d", tag, os.time() % 100000, math.random(0, 999999))
end

local exists = pft.exists

local wait_until = pft.wait_until

--- Start `pflask ARGS` in the background; returns the supervisor's pid.
local function background(args, user)
  local cmd = { pft.quote(PFLASK) }
  for _, a in ipairs(args) do cmd[#cmd + 1] = pft.quote(a) end
  local line = table.concat(cmd, " ") .. " </dev/null >/dev/null 2>&1 & echo $!"
  if user then line = "runuser -u " .. user .. " -- sh -c " .. pft.quote(line) end
  return tonumber((pft.capture(line)))
end

local function list_line(out, name)
  for line in out:gmatch("[^\n]+") do
    if line:match("^" .. name:gsub("%p", "%%%0") .. " ") then return line end
  end
end

describe("--name and --list", function()
  it("lists a running container by name with its pid, root and command, then forgets it", function()
    local name = unique("list")
    local sup = background({ "--name=" .. name, "--", "sleep", "30" })
    finally(function() pft.sh("kill " .. sup .. " 2>/dev/null") end)
    local line
    wait_until("the record", function()
      line = list_line(pft.pflask({ "--list" }).stdout, name)
      return line ~= nil
    end)
    local pid = tonumber(line:match("^%S+%s+(%d+)"))
    assert.is_not_nil(pid, line)
    -- The pid listed is the container's first process, a child of pflask.
    assert.are.equal(tostring(sup), (pft.capture("ps -o ppid= -p " .. pid)):match("%d+"))
    assert.matches("sleep 30$", line)
    assert.is_true(exists(RUNDIR .. "/" .. name .. ".pflask"))
    -- JSON, checked by a real parser.
    local json = pft.pflask({ "--list", "--json" }).stdout
    local check = pft.run({ "python3", "-c", string.format([[
import json, sys
entries = [e for e in json.load(sys.stdin) if e["name"] == %q]
assert len(entries) == 1, entries
e = entries[0]
assert e["pid"] == %d and e["command"] == ["sleep", "30"] and e["root"] is None, e
print("ok")]], name, pid) }, { stdin = json })
    assert.are.equal(0, check.status, check.stderr .. json)

    assert.are.equal(0, pft.sh("kill " .. sup))
    wait_until("the container's end", function() return not exists(RUNDIR .. "/" .. name .. ".pflask") end)
    assert.is_nil(list_line(pft.pflask({ "--list" }).stdout, name))
  end)

  it("refuses a second container of the same name, and leaves the first alone", function()
    local name = unique("dup")
    local sup = background({ "--name=" .. name, "--", "sleep", "30" })
    finally(function() pft.sh("kill " .. sup .. " 2>/dev/null") end)
    wait_until("the record", function() return list_line(pft.pflask({ "--list" }).stdout, name) end)
    local r = pft.pflask({ "--name=" .. name, "--", "true" })
    assert.are.equal(125, r.status)
    assert.matches("^pflask: %-%-name: '" .. name:gsub("%p", "%%%0") .. "' is already the name of a running container %(pid %d+%)\n$", r.stderr)
    assert.is_not_nil(list_line(pft.pflask({ "--list" }).stdout, name))
  end)

  it("sweeps the record of a container whose pflask was killed", function()
    local name = unique("kill")
    local sup = background({ "--name=" .. name, "--", "sleep", "30" })
    local line
    wait_until("the record", function()
      line = list_line(pft.pflask({ "--list" }).stdout, name)
      return line
    end)
    local pid = tonumber(line:match("^%S+%s+(%d+)"))
    assert.are.equal(0, pft.sh("kill -KILL " .. sup))
    -- The container dies with its supervisor (parent-death signal).
    wait_until("the container's death", function() return pft.sh("kill -0 " .. pid .. " 2>/dev/null") ~= 0 end)
    -- pflask could not remove its record; the next reader does (or the
    -- next start of any container, other specs' too: the census).
    assert.is_nil(list_line(pft.pflask({ "--list" }).stdout, name))
    assert.is_false(exists(RUNDIR .. "/" .. name .. ".pflask"))
    -- And the name is free again.
    assert.are.equal(0, pft.pflask({ "--name=" .. name, "--", "true" }).status)
  end)

  it("the next container's start removes the record of one whose pflask was killed, without --list", function()
    local name = unique("census")
    local sup = background({ "--name=" .. name, "--", "sleep", "30" })
    local record = RUNDIR .. "/" .. name .. ".pflask"
    -- Running: its record names the container's pid (read directly:
    -- --list would sweep on its own).
    wait_until("the container's record", function()
      return exists(record) and (pft.read_file(record) or ""):match("\npid=%d+") ~= nil
    end)
    local pid = tonumber(pft.read_file(record):match("\npid=(%d+)"))
    assert.are.equal(0, pft.sh("kill -KILL " .. sup))
    wait_until("the container's death", function() return not pft.alive(pid) end)
    -- (Still there, unless another container's start, another spec's
    -- running beside this one, already removed it: the same census.)
    -- A plain start, of another container: it learns of the death from the
    -- census of records and removes what is left.
    assert.are.equal(0, pft.pflask({ "--", "true" }).status)
    assert.is_false(exists(record), "the killed pflask's record is still there")
  end)

  it("attaches to a detached container by name", function()
    local name = unique("att")
    local r = pft.pflask({ "--detach", "--name=" .. name, "--", "sh", "-c", "read x; exit 7" }, { timeout = 10 })
    assert.are.equal(0, r.status, r.stderr)
    local pid = tonumber(r.stdout:match("pid (%d+)"))
    finally(function() pft.sh("kill -KILL " .. pid .. " 2>/dev/null") end)
    local line = list_line(pft.pflask({ "--list" }).stdout, name)
    assert.is_not_nil(line)
    assert.are.equal(pid, tonumber(line:match("^%S+%s+(%d+)")))
    -- The attached client types a line; the container's status comes back.
    -- (Through a pipe: the client does not poll a regular file.)
    local a = pft.run({ "sh", "-c", "echo go | " .. pft.quote(PFLASK) .. " --attach=" .. name }, { timeout = 10 })
    assert.are.equal(7, a.status, a.stderr)
    wait_until("the record to go", function() return not exists(RUNDIR .. "/" .. name .. ".pflask") end)
  end)

  it("refuses bad names and unknown names with one line", function()
    for _, bad in ipairs({ "", "12345", "-x", "a/b", "a b", ("x"):rep(65), "é" }) do
      local r = pft.pflask({ "--name=" .. bad, "--", "true" })
      assert.are.equal(125, r.status, bad)
      assert.matches("^pflask: %-%-name: [^\n]+\n$", r.stderr)
    end
    local r = pft.pflask({ "--attach=" .. unique("none") })
    assert.are.equal(125, r.status)
    assert.matches("^pflask: %-%-attach: no running container named 'pft%-none%-[%d-]+'\n$", r.stderr)
    r = pft.pflask({ "--json" })
    assert.are.equal(125, r.status)
    assert.are.equal("pflask: --json: needs --list\n", r.stderr)
  end)

  it("does not judge or remove the host's records from inside a container", function()
    local name = unique("inside")
    local sup = background({ "--name=" .. name, "--", "sleep", "30" })
    finally(function() pft.sh("kill " .. sup .. " 2>/dev/null") end)
    wait_until("the record", function() return list_line(pft.pflask({ "--list" }).stdout, name) end)
    -- A new pid namespace sees none of the host's pids.
    local r = pft.pflask({ "--", PFLASK, "--list" })
    assert.are.equal(0, r.status, r.stderr)
    assert.is_nil(list_line(r.stdout, name))
    assert.is_true(exists(RUNDIR .. "/" .. name .. ".pflask"))
    assert.is_not_nil(list_line(pft.pflask({ "--list" }).stdout, name))
  end)

  it("does not follow a symlink or read a FIFO planted as a record", function()
    local secret = pft.tempdir("registry")
    finally(function()
      pft.rm_rf(secret)
      os.remove(RUNDIR .. "/planted-link.pflask")
      os.remove(RUNDIR .. "/planted-fifo.pflask")
    end)
    pft.write_file(secret .. "/record", "name=planted-link\nsupervisor=1\nsupervisor_start=0\n")
    assert.are.equal(0, pft.sh("mkdir -p " .. RUNDIR .. " && ln -sf " .. secret .. "/record " .. RUNDIR .. "/planted-link.pflask"))
    assert.are.equal(0, pft.sh("mkfifo " .. RUNDIR .. "/planted-fifo.pflask"))
    local r = pft.pflask({ "--list" }, { timeout = 10 })
    assert.are.equal(0, r.status, r.stderr) -- no hang on the FIFO
    assert.is_nil(list_line(r.stdout, "planted%-link"))
    -- Not ours to remove either: neither was a record.
    assert.is_true(exists(secret .. "/record"))
  end)
end)

describe("--name rootless", function()
  local user
  setup(function() user = pft.create_user() end)
  teardown(function() if user then pft.remove_user(user) end end)

  it("keeps a user's records in the user's own private directory, apart from root's", function()
    local pflask, bindir = pft.public_pflask()
    local root_sup, sup
    -- One finally per test: busted keeps only the last one given.
    finally(function()
      if root_sup then pft.sh("kill " .. root_sup .. " 2>/dev/null") end
      if sup then pft.sh("kill " .. sup .. " 2>/dev/null") end
      pft.rm_rf(bindir)
    end)
    local uid = tonumber((pft.capture("id -u " .. user)))
    local name = unique("user")
    local root_name = unique("root")
    root_sup = background({ "--name=" .. root_name, "--", "sleep", "30" })
    sup = tonumber((pft.capture("runuser -u " .. user .. " -- sh -c " ..
      pft.quote(pft.quote(pflask) .. " --name=" .. name .. " -- sleep 30 </dev/null >/dev/null 2>&1 & echo $!"))))
    local out
    wait_until("the user's record", function()
      out = pft.pflask({ "--list" }, { pflask = pflask, user = user }).stdout
      return list_line(out, name)
    end)
    -- The user sees their own container and not root's.
    assert.is_nil(list_line(out, root_name))
    wait_until("root's record", function() return list_line(pft.pflask({ "--list" }).stdout, root_name) end)
    assert.is_nil(list_line(pft.pflask({ "--list" }).stdout, name))
    -- The directory is private to the user.
    local dir = exists("/run/user/" .. uid) and ("/run/user/" .. uid .. "/pflask") or ("/tmp/pflask-" .. uid)
    assert.are.equal(string.format("%d 700", uid), (pft.capture("stat -c '%u %a' " .. dir)))
    assert.is_true(exists(dir .. "/" .. name .. ".pflask"))
  end)

  it("a user's next start removes the record of the user's killed pflask", function()
    local pflask, bindir = pft.public_pflask()
    local sup
    finally(function()
      if sup then pft.sh("kill -KILL " .. sup .. " 2>/dev/null") end
      pft.rm_rf(bindir)
    end)
    local uid = tonumber((pft.capture("id -u " .. user)))
    local name = unique("ucensus")
    sup = tonumber((pft.capture("runuser -u " .. user .. " -- sh -c " ..
      pft.quote(pft.quote(pflask) .. " --name=" .. name .. " -- sleep 30 </dev/null >/dev/null 2>&1 & echo $!"))))
    local dir = exists("/run/user/" .. uid) and ("/run/user/" .. uid .. "/pflask") or ("/tmp/pflask-" .. uid)
    local record = dir .. "/" .. name .. ".pflask"
    wait_until("the user's container's record", function()
      return exists(record) and (pft.read_file(record) or ""):match("\npid=%d+") ~= nil
    end)
    local pid = tonumber(pft.read_file(record):match("\npid=(%d+)"))
    assert.are.equal(0, pft.sh("kill -KILL " .. sup))
    wait_until("the container's death", function() return not pft.alive(pid) end)
    -- (Still there, unless another container's start, another spec's
    -- running beside this one, already removed it: the same census.)
    local r = pft.pflask({ "--", "true" }, { pflask = pflask, user = user })
    assert.are.equal(0, r.status, r.stderr)
    assert.is_false(exists(record), "the killed pflask's record is still there")
  end)

  it("does not use a runtime directory in /tmp that another user made", function()
    local pflask, bindir = pft.public_pflask()
    local uid = tonumber((pft.capture("id -u " .. user)))
    if exists("/run/user/" .. uid) then
      pending("the user has /run/user/" .. uid .. ": /tmp is not used")
      return
    end
    local dir = "/tmp/pflask-" .. uid
    pft.sh("rm -rf " .. dir)
    finally(function() pft.rm_rf(bindir); pft.sh("rm -rf " .. dir) end)
    -- Root (here: any other user) plants the directory first.
    assert.are.equal(0, pft.sh("mkdir -m 0777 " .. dir))
    -- A name needs a record: refused, and nothing written there.
    local r = pft.pflask({ "--name=" .. unique("squat"), "--", "true" }, { pflask = pflask, user = user })
    assert.are.equal(125, r.status)
    assert.matches("^pflask: %-%-name: /tmp/pflask%-" .. uid .. ": not a private directory of uid " .. uid .. "\n$", r.stderr)
    assert.are.equal("", (pft.capture("ls -A " .. dir)))
    -- Without a name the container still runs (the squatter cannot stop
    -- the user's containers), with no record.
    r = pft.pflask({ "--", "true" }, { pflask = pflask, user = user })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", (pft.capture("ls -A " .. dir)))
  end)
end)

describe("the registry and reused pids", function()
  it("replaces a stale record left under the pid a new container gets", function()
    -- A record of a container that had some pid and whose pflask was
    -- killed; plant one for every pid the next containers could get.
    local planted = {}
    finally(function() for _, f in ipairs(planted) do os.remove(f) end end)
    local next_pid = tonumber((pft.capture("cat /proc/sys/kernel/ns_last_pid"))) + 1
    for pid = next_pid, next_pid + 40 do
      local f = RUNDIR .. "/" .. pid .. ".pflask"
      if not exists(f) then
        pft.write_file(f, string.format("name=%d\nsupervisor=1\nsupervisor_start=1\npid=%d\nstart=1\n", pid, pid))
        planted[#planted + 1] = f
      end
    end
    local r = pft.pflask({ "--", "true" })
    assert.are.equal(0, r.status, r.stderr)
  end)
end)
