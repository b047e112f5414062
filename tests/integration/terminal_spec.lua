-- The terminal (pflask(1), TERMINAL): on a terminal the container gets its
-- own pty, the user's terminal is raw meanwhile and restored after, the
-- window size follows, job control works; without one the fds pass
-- straight through. Real terminals: script(1) and tmux.
local pft = require "pftest"
local tmux = require "fixtures.tmux"

local PFLASK = pft.absolute(pft.PFLASK)

local read_file = pft.read_file

local write_file = pft.write_file

-- Run a shell script under script(1): a real terminal on stdin, stdout and
-- stderr. $P is pflask, $D a scratch directory. Returns the terminal's
-- output (CRs removed), the script's status and the directory (removed by
-- the caller with pft.rm_rf).
local function on_terminal(body, limit)
  local dir = pft.tempdir("term")
  write_file(dir .. "/run.sh", "P=" .. pft.quote(PFLASK) .. "\nD=" .. dir .. "; export D\n" .. body .. "\n")
  local status = pft.sh("timeout -k 2 " .. (limit or 15) .. " script -qec 'sh " .. dir
    .. "/run.sh' /dev/null </dev/null >" .. dir .. "/output 2>&1")
  -- script(1) passes its end of input on as a control character, which
  -- the container's terminal echoes.
  local out = (read_file(dir .. "/output") or ""):gsub("\r", ""):gsub("%^@", ""):gsub("%^D", "")
  return out, status, dir
end

describe("terminal", function()
  it("without a terminal: no pty, fds straight through, EOF on stdin is not the end", function()
    local r = pft.pflask({ "--", "sh", "-c", "cat; tty; sleep 0.2; echo after" }, { stdin = "input\n" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("input\nnot a tty\nafter\n", r.stdout)
  end)

  it("on a terminal: a pty of its own with the window size, the exit status, /dev/console", function()
    local root = pft.make_rootfs(pft.tempdir("root"))
    finally(function() pft.rm_rf(root) end)
    local out, status, dir = on_terminal([[
stty rows 37 cols 101
$P -- sh -c 'stty size; test -t 0 && test -t 1 && test -t 2 && echo all ttys; exit 3'
echo "status $?"
$P --chroot=]] .. root .. [[ -- sh -c 'readlink /proc/self/fd/0; ls /dev/console && echo console'
]])
    pft.rm_rf(dir)
    assert.equal(0, status, out)
    assert.matches("^37 101\nall ttys\nstatus 3\n/dev/pts/%d+\n/dev/console\nconsole\n$", out)
  end)

  it("restores the terminal settings exactly, also when pflask is killed with SIGTERM", function()
    local out, status, dir = on_terminal([[
stty -a >$D/before
$P -- sh -c 'stty -a >/dev/null; echo inside'
stty -a >$D/after1
$P -- sh -c 'trap "exit 9" TERM; echo ready >$D/ready; while :; do sleep 0.05; done' &
pid=$!
n=0; until [ -s $D/ready ] || [ $n -ge 200 ]; do sleep 0.05; n=$((n+1)); done
kill -TERM $pid
wait $pid
echo "status $?"
stty -a >$D/after2
cmp $D/before $D/after1 && cmp $D/before $D/after2 && echo same
]])
    local before = read_file(dir .. "/before")
    pft.rm_rf(dir)
    assert.equal(0, status, out)
    assert.matches("inside\nstatus 9\nsame\n$", out)
    assert.matches("icanon", before) -- a cooked terminal to begin with
  end)

  it("the window size follows resizes", function()
    local t = tmux.new(PFLASK .. " -- sh", { width = 90, height = 30, status = true })
    finally(function() t:kill() end)
    t:wait("#")
    t:keys("trap 'echo WINCH' WINCH; stty size", "Enter")
    t:wait("\n30 90\n")
    t:run("resize-window -t 0 -x 120 -y 40")
    t:wait("WINCH")
    t:keys("stty size", "Enter")
    t:wait("\n40 120\n")
    t:keys("exit 4", "Enter")
    t:wait("exit%-status 4")
  end)

  it("job control in an interactive shell: background jobs, Ctrl-Z, fg", function()
    local t = tmux.new(PFLASK .. " -- bash --norc -i", { width = 100, height = 30, status = true })
    finally(function() t:kill() end)
    t:wait("bash[^\n]*#")
    t:keys("sleep 100 &", "Enter")
    t:keys("jobs", "Enter")
    t:wait("%[1%]%+%s+Running%s+sleep 100 &")
    t:keys("sleep 200", "Enter")
    pft.sh("sleep 0.3")
    t:keys("C-z")
    t:wait("%[2%]%+%s+Stopped%s+sleep 200")
    t:keys("kill %1 %2; fg", "Enter")
    t:wait("Terminated")
    -- line editing: readline's Ctrl-A and Ctrl-K
    t:keys("echo x", "C-a", "C-k", "echo edited-$((6*7))", "Enter")
    t:wait("\nedited%-42\n")
    t:keys("exit 0", "Enter")
    t:wait("exit%-status 0")
  end)

  it("Ctrl-C reaches the command through the pty", function()
    local t = tmux.new(PFLASK .. " -- sh -c 'echo ready; sleep 100'", { status = true })
    finally(function() t:kill() end)
    t:wait("ready")
    t:keys("C-c")
    t:wait("exit%-status 130")
  end)
end)
