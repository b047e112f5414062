-- Attacks on the terminal (issue 11, 1): the command inside is hostile and
-- tries to type into the caller's shell with TIOCSTI, to reach the
-- caller's terminal through its stdio, /dev/tty or /dev/console. What must
-- hold: no terminal of the host ever enters the container (each standard
-- fd that is one is replaced by the container's own pty, the others pass
-- straight through), and the container runs in a session of its own. The
-- attacks are typed into a real shell in tmux, as a person would type
-- them, as root (the command then has CAP_SYS_ADMIN), as root with --user
-- and by an unprivileged user.
local pft = require "pftest"
local tmux = require "fixtures.tmux"

local PFLASK = pft.absolute(pft.PFLASK)

-- TIOCSTI (0x5412) of every character of a line into stdin, stdout,
-- stderr, /dev/tty and /dev/console, whichever lets it. The line, run by
-- a shell, creates FILE.
local function attack(file)
  return "perl -e 'for my $p (qw(<&=0 >&=1 >&=2 </dev/tty </dev/console)) "
    .. "{ open(my $f, $p) or next; ioctl($f, 0x5412, $_) for split //, \"id>" .. file .. "\\n\" }'"
end

-- A tmux server of our own, its one pane running `sh` (as user, when
-- given) in an 100x30 window.
local function shell(user)
  local sh = user and ("runuser -u " .. user .. " -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ sh")
    or "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TERM=screen sh"
  return tmux.new("cd /; " .. sh .. "; sleep 60", { width = 100, height = 30, history = 1000, join = true })
end

-- A busybox root with the host's /usr bound in (perl, stat, ps) and a
-- user nobody.
local function perl_root()
  local root = pft.make_rootfs(pft.tempdir("aroot"))
  assert(pft.sh("mkdir " .. root .. "/usr && ln -s usr/lib " .. root .. "/lib && ln -s usr/lib64 "
    .. root .. "/lib64") == 0)
  local f = assert(io.open(root .. "/etc/passwd", "a"))
  f:write("nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
  f:close()
  f = assert(io.open(root .. "/etc/group", "a"))
  f:write("nogroup:x:65534:\n")
  f:close()
  return root
end

local function usr(root)
  return "--chroot=" .. root .. " --mount=bind-ro:/usr:/usr"
end

local function exists(path) return pft.sh("test -e " .. path) == 0 end

describe("attacks on the terminal", function()
  local root, pwned
  local n = 0
  setup(function()
    root = perl_root()
    pwned = pft.tempdir("pwned")
    pft.sh("chmod 1777 " .. pwned)
  end)
  teardown(function()
    if root then pft.rm_rf(root) end
    if pwned then pft.rm_rf(pwned) end
  end)
  local function target()
    n = n + 1
    return pwned .. "/pwned-" .. n
  end

  if pft.read_file("/proc/sys/dev/tty/legacy_tiocsti") == "0\n" then
    -- Only CAP_SYS_ADMIN may push input then: the unprivileged cases
    -- fail whatever pflask does, the root ones still prove something.
    print("note: dev.tty.legacy_tiocsti=0 on this host")
  end

  it("the attack works on the host's terminal itself (the harness is sound)", function()
    local t = shell()
    finally(function() t:kill() end)
    local file = target()
    t:type(attack(file) .. " </dev/null")
    assert.is_true(exists(file), "the control attack did not type into the shell: " .. t:screen())
  end)

  for _, case in ipairs({
    { "as root, stdin from /dev/null", "", " </dev/null" },
    { "as root, stdin a terminal", "", "" },
    { "as root with --user nobody, stdin from /dev/null", "--user=nobody", " </dev/null" },
    { "as root with --user nobody, stdin a terminal", "--user=nobody", "" },
    { "as root with --no-pidns, output to a file", "--no-pidns", " </dev/null >/dev/null" },
  }) do
    it("TIOCSTI does not reach the host's shell: " .. case[1], function()
      local t = shell()
      finally(function() t:kill() end)
      local file = target()
      local screen = t:type(PFLASK .. " " .. usr(root) .. " " .. case[2] .. " -- " .. attack(file) .. case[3]
        .. "; echo status-$?")
      assert.matches("status%-0", screen)
      assert.is_false(exists(file), "the host's shell ran the injected line:\n" .. screen)
    end)
  end

  it("TIOCSTI does not reach the host's shell: terminal = false (pflask-debuild's containers)", function()
    local t = shell()
    finally(function() t:kill() end)
    local recipe = pft.write_file(pwned .. "/noterm.lua", string.format([[
local pflask = require "pflask"
os.exit(pflask.run{ root = %q, terminal = false, mounts = { { type = "bind", readonly = true, source = "/usr", target = "/usr" } },
  command = { "sh", "-c", arg[1] .. "; echo stdin-$(stat -L -c %%t:%%T /proc/self/fd/0)"
    .. " console-$(stat -L -c %%t:%%T /dev/console)-stdout-$(stat -L -c %%t:%%T /proc/$$/fd/1)" } })
]], root))
    local file = target()
    local screen = t:type(PFLASK .. " --recipe=" .. recipe .. " " .. pft.quote(attack(file)) .. "; echo status-$?")
    -- A terminal stdin nobody relays becomes /dev/null (1:3); stdout, a
    -- terminal, the container's pty, which is also its console.
    assert.matches("\nstdin%-1:3 ", screen)
    local console, stdout = screen:match("console%-(%x+:%x+)%-stdout%-(%x+:%x+)")
    assert.equal(stdout, console)
    assert.matches("status%-0", screen)
    assert.is_false(exists(file), "the host's shell ran the injected line:\n" .. screen)
  end)

  it("Ctrl-C still ends a container that has no terminal (its session is its own)", function()
    local t = shell()
    finally(function() t:kill() end)
    local ready = pwned .. "/ready-" .. math.random(0, 999999)
    t:keys(PFLASK .. " -- sh -c 'echo >" .. ready .. "; exec sleep 1000'"
      .. " </dev/null >/dev/null 2>&1; echo status-$((1+0))-$?", "Enter")
    for _ = 1, 200 do
      if exists(ready) then break end
      pft.sh("sleep 0.05")
    end
    assert.is_true(exists(ready), t:screen())
    t:keys("C-c")
    t:wait("status%-1%-130")
  end)

  describe("rootless", function()
    local user
    setup(function() user = pft.rootless_user() end)
    teardown(function() if user then user:remove() end end)

    for _, case in ipairs({ { "stdin from /dev/null", " </dev/null" }, { "stdin a terminal", "" } }) do
      it("TIOCSTI does not reach the user's shell: " .. case[1], function()
        local t = shell(user.name)
        finally(function() t:kill() end)
        -- The control: as this user, on its own terminal, it works.
        local control = target()
        t:type(attack(control) .. " </dev/null")
        assert.is_true(exists(control), "the control attack failed: " .. t:screen())
        local file = target()
        local screen = t:type(user.exe .. " " .. usr(root) .. " -- " .. attack(file) .. case[2] .. "; echo status-$?")
        assert.matches("status%-0", screen)
        assert.is_false(exists(file), "the user's shell ran the injected line:\n" .. screen)
      end)
    end
  end)
end)

-- What the container holds instead of the host's terminal, under
-- script(1): a real terminal on stdin, stdout and stderr.
describe("the container's terminal", function()
  local root, dir
  setup(function()
    root = perl_root()
  end)
  teardown(function()
    if root then pft.rm_rf(root) end
  end)
  before_each(function() dir = pft.tempdir("aterm") end)
  after_each(function() pft.rm_rf(dir) end)

  -- Run body (sh) on a terminal; $P is pflask, $U the --chroot options,
  -- $D a scratch directory. Returns the terminal's output without CRs.
  local function on_terminal(body)
    pft.write_file(dir .. "/run.sh", "P=" .. pft.quote(PFLASK) .. "\nU=" .. pft.quote(usr(root)) .. "\nD=" .. dir
      .. "\nexport D\n" .. body .. "\n")
    local status = pft.sh("timeout -k 2 30 script -qec 'sh " .. dir .. "/run.sh' /dev/null </dev/null >"
      .. dir .. "/output 2>&1")
    -- script(1) passes its end of input on as a control character, which
    -- a container's terminal echoes.
    local out = (pft.read_file(dir .. "/output") or ""):gsub("\r", ""):gsub("%^@", ""):gsub("%^D", "")
    assert.equal(0, status, out)
    return out
  end

  it("runs in a session of its own, without the host's terminal as controlling terminal", function()
    local out = on_terminal([[
echo "caller $(ps -o sid= -p $$) $(stat -L -c %t:%T /proc/self/fd/0)"
$P --no-pidns -- sh -c 'echo "inner $(ps -o sid= -p $$) $(stat -L -c %t:%T /proc/self/fd/0)"'
$P --no-pidns -- sh -c 'echo "plain $(ps -o sid= -p $$) $(ps -o tty= -p $$)"; cat /dev/tty 2>/dev/null || echo no-tty' </dev/null >$D/plain 2>&1
cat $D/plain
$P -- sh -c 'echo "pidns $(ps -o sid= -p $$)"'
]])
    local caller_sid, caller_tty = out:match("caller%s+(%d+) (%x+:%x+)")
    local inner_sid, inner_tty = out:match("inner%s+(%d+) (%x+:%x+)")
    assert.is_truthy(caller_sid, out)
    assert.is_truthy(inner_sid, out)
    assert.are_not.equal(caller_sid, inner_sid)
    assert.are_not.equal(caller_tty, inner_tty) -- its own pty, not the host's
    -- No terminal at all: still a session of its own, and no controlling
    -- terminal to open as /dev/tty.
    local plain_sid, plain_tty = out:match("plain%s+(%d+) (%S+)")
    assert.are_not.equal(caller_sid, plain_sid)
    assert.equal("?", plain_tty)
    assert.matches("\nno%-tty\n", out)
    -- In a pid namespace pid 1 leads the session.
    assert.matches("\npidns%s+1\n", out)
  end)

  it("/dev/console is the container's pty or absent, never the host's terminal", function()
    local out = on_terminal([[
echo "host $(stat -L -c %t:%T /proc/self/fd/0)"
$P $U -- sh -c 'echo "console $(stat -L -c %t:%T /dev/console) stdin $(stat -L -c %t:%T /proc/self/fd/0)"'
$P $U -- sh -c 'test -e /dev/console && echo console-there || echo no-console' </dev/null >$D/nopty 2>&1
cat $D/nopty
]])
    local host = out:match("host (%x+:%x+)")
    local console, stdin = out:match("console (%x+:%x+) stdin (%x+:%x+)")
    assert.is_truthy(console, out)
    assert.are_not.equal(host, console)
    assert.equal(stdin, console) -- the container's own pty
    assert.matches("\nno%-console\n", out)
  end)

  it("a pipe on stdin stays a clean pipe; the terminal on stdout becomes the container's pty", function()
    local out = on_terminal([[
echo "host $(stat -L -c %t:%T /proc/$$/fd/1)"
echo hi | $P -- sh -c 'readlink /proc/self/fd/0; cat; echo "out $(stat -L -c %t:%T /proc/$$/fd/1)"; test -t 1 && echo out-tty'
]])
    assert.matches("\npipe:%[%d+%]\nhi\n", out)
    local host, inner = out:match("host (%x+:%x+)"), out:match("out (%x+:%x+)")
    assert.is_truthy(inner, out)
    assert.are_not.equal(host, inner)
    assert.matches("\nout%-tty\n", out)
  end)

  it("with --no-pidns a writer left in the background does not keep pflask relaying", function()
    -- Before, the drain of the pty after the command's end looped as long
    -- as something kept writing: pflask never returned.
    local ok, out = pcall(on_terminal, [[
$P --no-pidns -- sh -c 'trap "" HUP; sh -c "echo \$\$ >$D/bgpid; while :; do echo bg-writer; sleep 0.05; done" & sleep 0.3; echo started'
echo "status $?"
]])
    local bgpid = tonumber(pft.read_file(dir .. "/bgpid") or "")
    if bgpid then pft.sh("kill -KILL " .. bgpid .. " 2>/dev/null") end
    assert.is_true(ok, tostring(out))
    assert.is_truthy(bgpid, out)
    assert.matches("started\n", out)
    assert.matches("\nstatus 0\n", out)
  end)

  it("stdout is a pty only when the host's stdout is a terminal", function()
    local out = on_terminal([[
$P -- tty
$P -- sh -c 'test -t 1 && echo out-tty; test -t 2 && echo err-tty; test -t 0 || echo in-not-tty' </dev/null
$P -- sh -c 'test -t 1 && echo out-tty || echo out-not-tty; test -t 0 && echo in-tty; test -t 2 && echo err-tty' >$D/file
cat $D/file
$P -- sh -c 'test -t 1 || echo out-not-tty; test -t 2 || echo err-not-tty; test -t 0 || echo in-not-tty' </dev/null >$D/file2 2>&1
cat $D/file2
]])
    assert.matches("^/dev/pts/%d+\nout%-tty\nerr%-tty\nin%-not%-tty\nout%-not%-tty\nin%-tty\nerr%-tty\n"
      .. "out%-not%-tty\nerr%-not%-tty\nin%-not%-tty\n$", out)
  end)
end)
