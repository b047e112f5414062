-- --detach and --attach (pflask(1), TERMINAL): a detached container keeps
-- running on its own pty served on a unix socket; --attach by pid, Ctrl-@
-- detaches again, the exit status reaches the attached client, one client
-- at a time, only the same user or root, and the socket goes away with the
-- container.
local pft = require "pftest"
local tmux = require "fixtures.tmux"

local PFLASK = pft.absolute(pft.PFLASK)

local exists = pft.exists

-- Start a detached container; returns its pid.
local function detach(cmd)
  local r = pft.pflask({ "--detach", "--", "sh", "-c", cmd }, { timeout = 10 })
  assert.equal(0, r.status, r.stderr)
  local pid = tonumber(r.stdout:match("^pflask: detached, pid (%d+) %(reattach: pflask %-%-attach=%d+%)\n$"))
  assert.is_not_nil(pid, r.stdout)
  return pid
end

local function socket_of(pid)
  return "/run/pflask/" .. pid .. ".sock"
end

local wait_until = pft.wait_until

-- A real terminal running pflask --attach=pid; the pane prints
-- "attach-status N" when it ends.
local function attach(pid)
  return tmux.new(PFLASK .. " --attach=" .. pid .. "; echo attach-status $?; sleep 30", { remain = true })
end

describe("--detach and --attach", function()
  local pids = {}
  local function detached(cmd)
    local pid = detach(cmd)
    pids[#pids + 1] = pid
    return pid
  end
  after_each(function()
    for _, pid in ipairs(pids) do pft.sh("kill -KILL " .. pid .. " 2>/dev/null") end
    pids = {}
  end)

  it("detach, attach by pid, Ctrl-@ detaches, attach again, the exit status, the socket removed", function()
    local pid = detached("echo started; exec sh")
    assert.is_true(exists(socket_of(pid)))
    local t = attach(pid)
    finally(function() t:kill() end)
    t:wait("started") -- what it wrote while nobody was attached
    t:keys("echo one-$((40+2))", "Enter")
    t:wait("\none%-42\n")
    t:keys("C-@")
    t:wait("pflask: detached, pid " .. pid .. " %(reattach: pflask %-%-attach=" .. pid .. "%)\nattach%-status 0")
    assert.equal(0, pft.sh("kill -0 " .. pid), "the container ended on detach")
    t:kill()

    t = attach(pid)
    t:wait("one%-42") -- the last output again
    t:keys("stty size; echo two", "Enter")
    t:wait("\n24 80\ntwo\n")
    t:keys("C-@")
    t:wait("attach%-status 0")
    t:kill()

    t = attach(pid)
    t:wait("two")
    t:keys("exit 5", "Enter")
    t:wait("attach%-status 5")
    wait_until("the socket to go", function() return not exists(socket_of(pid)) end)
  end)

  it("refuses a second client while one is attached", function()
    local pid = detached("sleep 30")
    local t = attach(pid)
    finally(function() t:kill() end)
    pft.sh("sleep 0.3")
    local r = pft.pflask({ "--attach=" .. pid }, { timeout = 10 })
    assert.equal(125, r.status)
    assert.equal("pflask: --attach: container " .. pid .. " already has a client attached", r.stderr:match("^(.-) %(pid"))
  end)

  it("refuses another user, by the socket's permissions and by its credentials", function()
    local pid = detached("sleep 30")
    local user = pft.create_user()
    local public, bindir = pft.public_pflask()
    finally(function()
      pft.remove_user(user)
      pft.rm_rf(bindir)
    end)
    -- /run/pflask is opened (0711) for a moment, shared by every detached
    -- container of the host: other runs of this spec wait, so that their
    -- first check sees it 0700.
    pft.host_lock("run-pflask", function()
      local ok, err = pcall(function()
        local r = pft.run({ public, "--attach=" .. pid }, { user = user, timeout = 10 })
        assert.equal(125, r.status)
        assert.equal("pflask: --attach: container " .. pid .. " belongs to uid 0: permission denied\n", r.stderr)
        -- Past the directory's permissions, the supervisor checks who connects.
        pft.sh("chmod 0711 /run/pflask; chmod 0777 " .. socket_of(pid))
        r = pft.run({ public, "--attach=" .. pid }, { user = user, timeout = 10 })
        assert.equal(125, r.status)
        assert.matches("^pflask: %-%-attach: container " .. pid
          .. " belongs to uid 0, not to uid %d+: permission denied\n$", r.stderr)
      end)
      pft.sh("chmod 0700 /run/pflask")
      if not ok then error(err, 0) end
    end)
  end)

  it("a container writing a lot while detached is not blocked; the last 64 KiB are shown", function()
    local dir = pft.tempdir("det")
    finally(function() pft.rm_rf(dir) end)
    local pid = detached("i=0; while [ $i -lt 100000 ]; do echo line $i; i=$((i+1)); done; touch " .. dir
      .. "/written; while [ ! -e " .. dir .. "/go ]; do sleep 0.05; done; exit 4")
    wait_until("the container to write everything", function() return exists(dir .. "/written") end)
    pft.sh("(sleep 1; touch " .. dir .. "/go) &")
    local r = pft.pflask({ "--attach=" .. pid }, { timeout = 20 })
    assert.equal(4, r.status, r.stderr)
    assert.matches("line 99999\r?\n$", r.stdout)
    assert.is_true(#r.stdout <= 65536, "more than the ring: " .. #r.stdout)
    assert.is_true(#r.stdout > 60000, "less than the ring: " .. #r.stdout)
    wait_until("the socket to go", function() return not exists(socket_of(pid)) end)
  end)

  it("a detached container whose command exits removes its socket", function()
    local pid = detached("sleep 0.3; exit 3")
    wait_until("the socket to go", function() return not exists(socket_of(pid)) end)
    local r = pft.pflask({ "--attach=" .. pid })
    assert.equal(125, r.status)
    assert.equal("pflask: --attach: no detached container with pid " .. pid .. "\n", r.stderr)
  end)

  it("--attach to a pid that is no detached pflask, or a dead one, exits 125", function()
    for _, pid in ipairs({ 1, 999999 }) do
      local r = pft.pflask({ "--attach=" .. pid })
      assert.equal(125, r.status)
      assert.equal("pflask: --attach: no detached container with pid " .. pid .. "\n", r.stderr)
    end
    local p = io.popen("sleep 5 & echo $!")
    local pid = tonumber(p:read("l"))
    local r = pft.pflask({ "--attach=" .. pid })
    pft.sh("kill " .. pid)
    p:close()
    assert.equal(125, r.status)
    assert.equal("pflask: --attach: no detached container with pid " .. pid .. "\n", r.stderr)
  end)

  it("--detach that cannot start the container says why and exits with its status", function()
    local r = pft.pflask({ "--detach", "--", "/nonexistent/command" }, { timeout = 10 })
    assert.equal(127, r.status)
    assert.equal("", r.stdout)
    assert.matches("nonexistent", r.stderr)
  end)
end)
