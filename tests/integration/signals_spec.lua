-- Signals (pflask(1), SIGNALS and PID 1): what is sent to pflask reaches the
-- command, a terminal's Ctrl-C ends it, SIGKILL to pflask takes the whole
-- container down, and pid 1 reaps orphans and takes daemons with it.
local pft = require "pftest"

local PFLASK = pft.absolute(pft.PFLASK)

local marker = pft.marker

-- Shell prelude of the scripts below. $P is pflask, $D a scratch directory;
-- waitfor and waitproc (pft.SH_WAIT).
-- A non-interactive shell starts `&` jobs with SIGINT and SIGQUIT ignored,
-- and an ignored signal stays ignored across exec, so $PF starts pflask
-- with them back to default, as from a terminal.
local PRELUDE = [[
set -u
echo $$ >$D/pgid
PF="env --default-signal=INT,QUIT $P"
]] .. pft.SH_WAIT

local leftovers = pft.leftovers

-- Run a shell script (written to a file, so that no command line but the
-- container's carries the test's marker) under a timeout guard, in its own
-- process group. Output goes to a file, not a pipe that a leftover process
-- could hold open. When mark is given, count the processes left with it,
-- then kill the process group so that a pflask or a command that failed to
-- end cannot outlive the test. Returns the script's stdout+stderr, its
-- status and the leftover count.
local function script(body, limit, mark)
  local dir = pft.tempdir("sig")
  local path = dir .. "/run.sh"
  local f = assert(io.open(path, "w"))
  f:write("P=", pft.quote(PFLASK), "\nD=", dir, "\n", PRELUDE, body, "\n")
  f:close()
  local status = pft.sh("timeout -k 2 " .. (limit or 10) .. " setsid -w sh " .. path
    .. " >" .. dir .. "/output 2>&1 </dev/null")
  f = assert(io.open(dir .. "/output"))
  local out = f:read("a"):gsub("\n$", "")
  f:close()
  local left = mark and leftovers(mark) or 0
  local pgid = io.open(dir .. "/pgid")
  if pgid then
    local id = pgid:read("n")
    pgid:close()
    if id and id > 1 then pft.sh("pkill -KILL -g " .. id) end
  end
  pft.rm_rf(dir)
  return out, status, left
end

local function assert_no_leftover(mark)
  assert.equal(0, leftovers(mark), "processes left behind with " .. mark)
end

-- A command that traps SIG, says it is ready, then waits in short sleeps
-- (a shell runs a trap only between commands).
local function trapping_command(sig, action)
  return string.format(
    [['trap "echo got %s; %s" %s; echo ready; while :; do sleep 0.05; done']],
    sig, action or "exit 3", sig)
end

describe("signals", function()
  local mounts_before
  before_each(function() mounts_before = pft.mounts() end)
  after_each(function() assert.equal(mounts_before, pft.mounts()) end)

  describe("sent to pflask reach the command", function()
    for _, sig in ipairs({ "TERM", "INT", "HUP", "QUIT", "USR1", "USR2" }) do
      it("SIG" .. sig, function()
        local out, status = script([[
$PF -- sh -c ]] .. trapping_command(sig) .. [[ >$D/out 2>&1 &
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

    it("SIGWINCH, and the command goes on", function()
      local out, status = script([[
$PF -- sh -c 'trap "echo got WINCH" WINCH; trap "echo got TERM; exit 4" TERM; echo ready; while :; do sleep 0.05; done' >$D/out 2>&1 &
pid=$!
waitfor $D/out ready
kill -WINCH $pid
waitfor $D/out WINCH
kill -WINCH $pid
sleep 0.2
kill -TERM $pid
wait $pid 2>/dev/null
echo "status $?"
cat $D/out
]])
      assert.equal(0, status, out)
      assert.equal("status 4\nready\ngot WINCH\ngot WINCH\ngot TERM", out)
    end)

    it("with --as-pid1, to a shell as pid 1 that traps them", function()
      for _, sig in ipairs({ "TERM", "INT", "USR1" }) do
        local out, status = script([[
$PF --as-pid1 -- sh -c 'trap "echo got ]] .. sig .. [[ as \$\$; exit 5" ]] .. sig
          .. [[; echo ready; while :; do sleep 0.05; done' >$D/out 2>&1 &
pid=$!
waitfor $D/out ready
kill -]] .. sig .. [[ $pid
wait $pid 2>/dev/null
echo "status $?"
cat $D/out
]])
        assert.equal(0, status, out)
        assert.equal("status 5\nready\ngot " .. sig .. " as 1", out)
      end
    end)

    it("with --no-pidns", function()
      for _, sig in ipairs({ "TERM", "INT", "HUP", "USR2" }) do
        local out, status = script([[
$PF --no-pidns -- sh -c ]] .. trapping_command(sig) .. [[ >$D/out 2>&1 &
pid=$!
waitfor $D/out ready
kill -]] .. sig .. [[ $pid
wait $pid 2>/dev/null
echo "status $?"
cat $D/out
]])
        assert.equal(0, status, out)
        assert.equal("status 3\nready\ngot " .. sig, out)
      end
    end)
  end)

  describe("end a command that does not handle them", function()
    local cases = {
      { mode = "the default reaper mode", args = "", sig = "TERM", code = 143 },
      { mode = "the default reaper mode", args = "", sig = "INT", code = 130 },
      { mode = "the default reaper mode", args = "", sig = "HUP", code = 129 },
      { mode = "--no-pidns", args = "--no-pidns", sig = "TERM", code = 143 },
      { mode = "--no-pidns", args = "--no-pidns", sig = "INT", code = 130 },
    }
    for _, c in ipairs(cases) do
      it("SIG" .. c.sig .. " to pflask running sleep exits " .. c.code .. " in " .. c.mode, function()
        local mark = marker()
        local t0 = os.time()
        local out, status, left = script([[
$PF ]] .. c.args .. [[ -- sleep ]] .. mark .. [[ &
pid=$!
waitproc '^sleep ]] .. mark .. [[$'
kill -]] .. c.sig .. [[ $pid
wait $pid 2>/dev/null
echo "status $?"
]], 10, mark)
        assert.equal(0, status, out)
        assert.equal("status " .. c.code, out)
        assert.is_true(os.time() - t0 <= 4, "took too long")
        assert.equal(0, left, "processes left behind")
      end)
    end
  end)

  it("Ctrl-C on a real terminal ends the command quickly", function()
    local mark = marker()
    local t0 = os.time()
    local out, status, left = script([[
(waitproc '^sleep ]] .. mark .. [[$' >/dev/null; printf '\003') | script -qec "$P -- sleep ]] .. mark .. [[" /dev/null >$D/out 2>&1
echo "status $?"
]], 15, mark)
    assert.equal(0, status, out)
    assert.equal("status 130", out)
    assert.is_true(os.time() - t0 <= 5, "Ctrl-C did not end the command quickly")
    assert.equal(0, left, "processes left behind")
  end)

  it("Ctrl-C on a real terminal with --as-pid1 reaches a pid 1 that traps it", function()
    local out, status = script([[
(waitfor $D/out ready; printf '\003') | script -qec "$P --as-pid1 -- sh -c 'trap \"echo got INT; exit 6\" INT; echo ready; while :; do sleep 0.05; done'" /dev/null >$D/out 2>&1
echo "status $?"
tr -d '\r' <$D/out | sed 's/\^C//g' | grep -v '^$'
]], 15)
    assert.equal(0, status, out)
    assert.equal("status 6\nready\ngot INT", out)
  end)

  describe("SIGKILL to pflask kills every container process", function()
    for _, mode in ipairs({ { "the default reaper mode", "" }, { "--as-pid1", "--as-pid1" } }) do
      it("in " .. mode[1], function()
        local mark = marker()
        local out, status, left = script([[
$PF ]] .. mode[2] .. [[ -- sh -c 'sleep ]] .. mark .. [[ & sleep ]] .. mark .. [[; true' &
pid=$!
waitproc '^sleep ]] .. mark .. [[$'
sleep 0.1
echo "running $(pgrep -c -f -x 'sleep ]] .. mark .. [[')"
kill -KILL $pid
wait $pid 2>/dev/null
echo "status $?"
]], 10, mark)
        assert.equal(0, status, out)
        assert.equal("running 2\nstatus 137", out)
        assert.equal(0, left, "container processes left behind")
      end)
    end

    -- Without a pid namespace nothing holds the command's descendants
    -- together; the command itself must still die with pflask.
    it("and the command itself with --no-pidns", function()
      local mark = marker()
      local out, status, left = script([[
$PF --no-pidns -- sleep ]] .. mark .. [[ &
pid=$!
waitproc '^sleep ]] .. mark .. [[$'
kill -KILL $pid
wait $pid 2>/dev/null
echo "status $?"
]], 10, mark)
      assert.equal(0, status, out)
      assert.equal("status 137", out)
      assert.equal(0, left, "the command outlived pflask")
    end)
  end)

  it("reaps orphaned children: no zombie in the container", function()
    local r = pft.pflask({ "--", "sh", "-c", "(sleep 0.1 &); sleep 0.5; ps -e -o pid=,stat=,comm=" }, { timeout = 10 })
    assert.equal(0, r.status, r.stderr)
    local procs = 0
    for line in r.stdout:gmatch("[^\n]+") do
      local pid, stat, comm = line:match("^%s*(%d+)%s+(%S+)%s+(%S+)")
      assert.is_not_nil(pid, line)
      procs = procs + 1
      assert.is_nil(stat:find("Z", 1, true), "zombie: " .. line)
      assert.are_not.equal("sleep", comm, "the orphan is still there: " .. line)
    end
    -- pflask-init, sh and ps: the orphan was reparented to pid 1 and reaped
    assert.equal(3, procs, r.stdout)
  end)

  it("kills a daemon left running when the command exits (the pid namespace ends)", function()
    for _, args in ipairs({ {}, { "--as-pid1" } }) do
      local mark = marker()
      local argv = {}
      for i, a in ipairs(args) do argv[i] = a end
      for _, a in ipairs({ "--", "sh", "-c",
        "setsid sleep " .. mark .. " </dev/null >/dev/null 2>&1 & echo started" }) do
        argv[#argv + 1] = a
      end
      finally(function() pft.sh("pkill -KILL -f -x " .. pft.quote("sleep " .. mark)) end)
      local t0 = os.time()
      local r = pft.pflask(argv, { timeout = 10 })
      assert.equal(0, r.status, r.stderr)
      assert.equal("started\n", r.stdout)
      assert.is_true(os.time() - t0 <= 4, "pflask waited for the daemon")
      assert_no_leftover(mark)
    end
  end)
end)
