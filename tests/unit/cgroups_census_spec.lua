-- The census of supervisors (core.census_*, see pflask.cgroups "The
-- census") against the real kernel: System V semaphores need no root.
-- What the cgroup sweep relies on: a process that joined and is killed
-- with SIGKILL shows as one death, the sweep mutex it held is given back,
-- and a set that is not pflask's is refused. Each test removes its set.
local core = require "pflask.core"

local function sh(cmd) return os.execute(cmd) == true end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

--- Run Lua code in a new process (it gets pflask.core as this one does);
--- true when it ended with status 0.
local function lua(code)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local ok = sh("{ lua5.4 " .. file .. "; } 2>/dev/null")
  os.remove(file)
  return ok
end

describe("core.census", function()
  local dir, id

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -m 0700 " .. dir))
    id = nil
  end)

  after_each(function()
    if id then sh("ipcrm -s " .. id) end
    sh("rm -rf " .. dir)
  end)

  it("counts a joined process killed with SIGKILL as a death, and gives back the mutex it held", function()
    local created
    id, created = assert(core.census_open(dir))
    assert.is_true(created)
    assert.equal(0, core.census_deaths(id))
    assert.is_true(core.census_join(id, 1))
    -- Another process joins, takes the sweep mutex and is killed.
    assert.is_false(lua(string.format([[
      local core = require "pflask.core"
      local id = assert(core.census_open(%q))
      assert(core.census_join(id, 1))
      assert(core.census_lock(id, true))
      os.execute("kill -KILL $PPID")
      os.exit(0)]], dir)))
    assert.equal(1, core.census_deaths(id))
    -- The mutex is free again (this would wait for ever otherwise).
    assert.is_true(core.census_lock(id, true))
    assert.is_true(core.census_settle(id, 1))
    assert.is_true(core.census_lock(id, false))
    assert.equal(0, core.census_deaths(id))
    -- A process that leaves before it ends is no death.
    assert.is_true(lua(string.format([[
      local core = require "pflask.core"
      local id = assert(core.census_open(%q))
      assert(core.census_join(id, 1))
      assert(core.census_join(id, -1))]], dir)))
    assert.equal(0, core.census_deaths(id))
    assert.is_true(core.census_join(id, -1))
    -- The same set for the same directory.
    local again, made = core.census_open(dir)
    assert.equal(id, again)
    assert.is_false(made)
  end)

  it("gives up waiting for a mutex whose holder does not go on (stopped), rather than hang a start", function()
    id = assert(core.census_open(dir))
    assert.is_true(core.census_lock(id, true))
    local ok, msg, errno = core.census_lock(id, true) -- as a second start would
    assert.is_nil(ok)
    assert.equal(11, errno, msg) -- EAGAIN
    assert.is_true(core.census_lock(id, false))
  end)

  it("refuses a set with the directory's key that pflask did not make", function()
    -- Planted first, with ftok(dir, 'c') as pf_census_open computes it,
    -- readable by all (perl-base has semget).
    local made = capture("perl -e '@s = stat($ARGV[0]); "
      .. "$k = (ord(\"c\") << 24) | (($s[0] & 0xff) << 16) | ($s[1] & 0xffff); "
      .. "$id = semget($k, 4, 01000 | 02000 | 0644); print defined $id ? $id : \"\"' " .. dir)
    if made == "" then
      pending("perl could not make a semaphore set")
      return
    end
    id = tonumber(made)
    local ok, msg, errno = core.census_open(dir)
    assert.is_nil(ok)
    assert.equal(1, errno) -- EPERM
    assert.matches("is not pflask's", msg)
  end)

  it("refuses a set shaped as pflask makes it but owned by another user (a planted one would blind the sweep)", function()
    if core.geteuid() ~= 0 then return pending("needs root to plant as another user") end
    -- Made as nobody, mode 0600 and four semaphores, as pflask makes
    -- them, with the key of root's directory.
    assert(sh("chmod 0755 " .. dir))
    local made = capture("runuser -u nobody -- perl -e '@s = stat($ARGV[0]); "
      .. "$k = (ord(\"c\") << 24) | (($s[0] & 0xff) << 16) | ($s[1] & 0xffff); "
      .. "$id = semget($k, 4, 01000 | 02000 | 0600); print defined $id ? $id : \"\"' " .. dir)
    if made == "" then return pending("perl could not make a semaphore set as nobody") end
    id = tonumber(made)
    local ok, msg, errno = core.census_open(dir)
    assert.is_nil(ok)
    assert.equal(1, errno, msg) -- EPERM
  end)
end)
