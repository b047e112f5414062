-- plan() decides from a spec and the host's facts (container.host_facts),
-- which these specs fake: the decisions that depend on who runs pflask
-- and on its terminal are tested without root and without a terminal.
local container = require "pflask.container"

local function host(over)
  local h = container.host_facts()
  -- Unprivileged unless a test says otherwise (no machined, no device
  -- policy: nothing the build host's own setup decides).
  h.euid, h.egid, h.uid, h.pid = 1000, 1000, 1000, 4242
  h.isatty = function() return false end
  h.fd_is_open = function(fd) return fd <= 2, fd <= 2 and "char" or nil end
  h.environ = function() return { HOME = "/caller", USER = "caller", PATH = "/bin" } end
  for k, v in pairs(over or {}) do h[k] = v end
  return h
end

local function plan_error(spec, h)
  local ok, e = pcall(container.plan, spec, h)
  assert.is_false(ok, "plan accepted")
  assert.equal(125, e.status)
  return e.message
end

describe("plan() with faked host facts", function()
  it("creates a user namespace for an unprivileged caller, not for root", function()
    assert.is_true(container.plan({ command = { "true" } }, host{ euid = 1000, egid = 1000, uid = 1000 }).namespaces.user)
    assert.is_false(container.plan({ command = { "true" }, register = false }, host{ euid = 0, egid = 0, uid = 0 }).namespaces.user)
    -- The unprivileged caller is root inside, mapped to its own uid.
    local p = container.plan({ command = { "true" } }, host{ euid = 1000, egid = 1000, uid = 1000 })
    assert.same({ inside = 0, outside = 1000, count = 1 }, p.uid_map[1])
  end)

  it("replaces a terminal among 0, 1, 2 by a pty, unless the spec replaces that fd", function()
    local tty1 = host{ isatty = function(fd) return fd == 1 end }
    assert.same({ 1 }, container.plan({ command = { "true" } }, tty1).pty_fds)
    assert.same({}, container.plan({ command = { "true" }, stdout = "null" }, tty1).pty_fds)
  end)

  it("refuses a terminal or a closed fd to pass on, and a directory as a standard fd", function()
    local tty5 = host{ isatty = function(fd) return fd == 5 end, fd_is_open = function(fd) return fd <= 5, "char" end }
    assert.equal("--keep-fd: fd 5 is a terminal (a terminal of the host never enters the container)",
      plan_error({ command = { "true" }, pass_fds = { 5 } }, tty5))
    assert.equal("--keep-fd: fd 7 is not open", plan_error({ command = { "true" }, pass_fds = { 7 } }, tty5))
    local dir0 = host{ fd_is_open = function(fd) return fd <= 2, fd == 0 and "directory" or "char" end }
    assert.matches("^standard input: is a directory", plan_error({ command = { "true" } }, dir0))
    -- Replaced by the spec: the directory never reaches the container.
    assert.has_no.errors(function() container.plan({ command = { "true" }, stdin = "null" }, dir0) end)
  end)

  it("takes the environment, and socket activation meant for this pflask, from the facts", function()
    local function activated(pid)
      return host{ pid = pid, fd_is_open = function(fd) return fd <= 3, "socket" end,
        environ = function() return { HOME = "/caller", USER = "caller", LISTEN_FDS = "1", LISTEN_PID = "4242" } end }
    end
    local p = container.plan({ command = { "true" }, keepenv = true }, activated(4242))
    assert.equal("/caller", p.env.HOME)
    assert.equal("", p.env.LISTEN_PID) -- the command's own pid, set at exec
    assert.same({ 3 }, p.pass_fds)
    p = container.plan({ command = { "true" } }, activated(1))
    assert.is_nil(p.env.LISTEN_FDS)
  end)

  it("puts the rules in plan(): the classic option named, for a spec too", function()
    assert.equal("--chroot: needs a mount namespace (drop --no-mountns)",
      plan_error({ root = "/nonexistent", namespaces = { mount = false } }, host()))
    assert.equal("--user-map: needs a user namespace (drop --no-userns)",
      plan_error({ uid_map = { { inside = 0, outside = 0, count = 1 } }, namespaces = { user = false } }, host()))
    assert.equal("--as-pid1: needs a PID namespace (drop --no-pidns)",
      plan_error({ init = "pid1", namespaces = { pid = false } }, host()))
    assert.equal("--hostname: needs a UTS namespace (drop --no-utsns)",
      plan_error({ hostname = "x", namespaces = { uts = false } }, host()))
  end)
end)
