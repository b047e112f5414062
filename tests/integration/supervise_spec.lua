-- The supervisor loop (doc/architecture.md, Process model; doc/lua-api.md,
-- Supervisor): a signal pflask receives reaches every container a recipe
-- started, through each one's translate table; no signal stays blocked in
-- what a recipe runs with os.execute or io.popen; Container:wait{timeout},
-- pflask.wait_any, pflask.kill_all, pflask.sleep; a regular file as the
-- relayed or attached input. As root and as an unprivileged user.
local pft = require "pftest"

local PFLASK = pft.absolute(pft.PFLASK)

local marker = pft.marker

local PRELUDE = [[
set -u
cd /
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
]] .. pft.SH_WAIT -- waitfile

local leftovers = pft.leftovers

-- Run a shell script in its own session under a timeout guard, as user
-- (nil: root), with $P the pflask executable, $D a scratch directory
-- holding the files of `files` (name -> content) and $M a marker. Returns
-- its output (stdout+stderr) and status, and how many processes carrying
-- the marker were left.
local function script(body, opts)
  local dir = pft.tempdir("sup")
  pft.sh("chmod 0777 " .. dir)
  local mark = marker()
  for name, content in pairs(opts.files or {}) do
    pft.write_file(dir .. "/" .. name, content)
    pft.sh("chmod 0644 " .. dir .. "/" .. name)
  end
  pft.write_file(dir .. "/run.sh", "P=" .. pft.quote(opts.pflask or PFLASK) .. "\nD=" .. dir
    .. "\nM=" .. mark .. "\n" .. PRELUDE .. body .. "\n")
  pft.sh("chmod 0644 " .. dir .. "/run.sh")
  local as = opts.user and ("runuser -u " .. opts.user .. " -- ") or ""
  local status = pft.sh("timeout -k 2 " .. (opts.limit or 20) .. " setsid -w " .. as .. "sh " .. dir
    .. "/run.sh >" .. dir .. "/output 2>&1 </dev/null")
  local out = (pft.read_file(dir .. "/output") or ""):gsub("\n$", "")
  local left = leftovers(mark)
  if left > 0 then pft.sh("pkill -KILL -f -- " .. mark) end
  pft.rm_rf(dir)
  return out, status, left
end

-- Three containers; the recipe waits on the first. The second traps TERM,
-- the third USR1, which its translate table sends instead of TERM.
local THREE = [[
local pflask = require "pflask"
local core = pflask.core
local D, M = ...
local function trapping(sig, code, i)
  return { "sh", "-c", string.format("trap 'exit %d' %s; echo > %s/ready%d; while :; do sleep 0.05; done # %s",
    code, sig, D, i, M) }
end
local cs = {
  pflask.container{ command = { "sh", "-c", "echo > " .. D .. "/ready1; exec sleep " .. M } },
  pflask.container{ command = trapping("TERM", 3, 2) },
  pflask.container{ command = trapping("USR1", 4, 3) },
}
for _, c in ipairs(cs) do c:start() end
local s, why = cs[3]:wait{ timeout = 0, translate = { [core.signals.TERM] = core.signals.USR1 } }
assert(s == nil and why == "timeout")
io.open(D .. "/started", "w"):close()
local status = cs[1]:wait()
io.write(string.format("others %d %d\n", cs[2]:wait(), cs[3]:wait()))
return status
]]

local THREE_SCRIPT = [[
$P --recipe=$D/three.lua $D $M >$D/out 2>&1 &
pid=$!
for f in ready1 ready2 ready3 started; do waitfile $D/$f || exit 1; done
kill -TERM $pid
wait $pid
echo "status $?"
cat $D/out
]]

-- A container runs while the recipe runs: pflask blocks no signal then
-- (dash clears the mask it inherits, so the programs os.execute and
-- io.popen start would not show it: pflask's own mask is the one to look
-- at), the programs inherit none, and SIGINT ends a sleep they start.
local EXECUTE = [[
local pflask = require "pflask"
local D, M = ...
local c = pflask.container{ command = { "sleep", M } }
c:start()
local f = assert(io.open("/proc/self/status"))
io.write("pflask ", f:read("a"):match("SigBlk:[^\n]*"), "\n")
f:close()
local CHECK = "grep '^SigBlk' /proc/self/status; timeout -k 2 -s INT 0.2 sleep 30; echo \"sleep $?\""
local p = io.popen(CHECK)
io.write("popen ", p:read("a"))
p:close()
io.stdout:flush()
os.execute(CHECK)
c:kill(pflask.core.signals.KILL)
io.write("container ", c:wait(), "\n")
]]

local WAITING = [[
local pflask = require "pflask"
local D, M = ...
local c1 = pflask.container{ command = { "sleep", M } }
local c2 = pflask.container{ command = { "sh", "-c", "exit 7 # " .. M } }
c1:start()
c2:start()
local s, why = c1:wait{ timeout = 0.1 }
local alive = os.execute("kill -0 " .. c1:pid())
io.write("c1 ", tostring(s), " ", why, " ", alive and "running" or "gone", "\n")
local c, st = pflask.wait_any({ c1, c2 })
io.write("any ", c == c2 and "c2" or tostring(c), " ", st, "\n")
local none, why2 = pflask.wait_any({ c1 }, 0.1)
io.write("any ", tostring(none), " ", why2, "\n")
io.write("kill_all ", pflask.kill_all(), "\n")
io.write("c1 ", c1:wait(), "\n")
io.write("c2 again ", c2:wait(), "\n")
]]

-- pflask.sleep: the whole time, or early on a signal that it passes on.
local SLEEP = [[
local pflask = require "pflask"
local D, M = ...
local c = pflask.container{ command = { "sh", "-c",
  "trap 'exit 5' USR1; echo > " .. D .. "/ready; while :; do sleep 0.05; done # " .. M } }
c:start()
local full = pflask.sleep(0.05)
io.open(D .. "/sleeping", "w"):close()
local left, sig = pflask.sleep(60)
io.write("full ", full, "\n")
io.write("early ", (left > 0 and left < 60) and "yes" or tostring(left), " ", sig, "\n")
io.write("container ", c:wait(), "\n")
]]

-- The older call form, c:wait(translate).
local OLD_FORM = [[
local pflask = require "pflask"
local core = pflask.core
local D, M = ...
local c = pflask.container{ command = { "sh", "-c",
  "trap 'exit 6' USR1; trap 'exit 9' TERM; echo > " .. D .. "/ready; while :; do sleep 0.05; done # " .. M } }
c:start()
return c:wait({ [core.signals.TERM] = core.signals.USR1 })
]]

-- A signal that arrives while the recipe runs its own code (here a
-- program, through os.execute) is kept and passed on at the next wait.
local BETWEEN = [[
local pflask = require "pflask"
local D, M = ...
local c = pflask.container{ command = { "sleep", M } }
c:start()
io.open(D .. "/ready", "w"):close()
os.execute("n=0; until [ -e " .. D .. "/sent ] || [ $n -ge 500 ]; do n=$((n + 1)); sleep 0.02; done")
io.write("after execute\n")
io.write("waited ", c:wait(), "\n")
]]

-- A container flooding its terminal does not keep the loop from seeing
-- another one end.
local FLOOD = [[
local pflask = require "pflask"
local D, M = ...
local flood = pflask.container{ command = { "sh", "-c", "while :; do echo flood flood flood; done # " .. M },
                                terminal = true }
local quick = pflask.container{ command = { "sh", "-c", "sleep 0.3; exit 3 # " .. M } }
flood:start()
quick:start()
local c, status = pflask.wait_any({ flood, quick })
local f = assert(io.open(D .. "/result", "w"))
f:write(c == quick and "quick" or "flood", " ", status, "\n")
flood:kill(pflask.core.signals.KILL)
f:write("flood ", flood:wait(), "\n")
f:close()
]]

-- Two containers that ended before the recipe waits: the loop reaps both
-- in one go; waiting on the second, then the first, gets each status
-- (Process:wait, then Container:wait).
local TOGETHER = [[
local pflask = require "pflask"
local D, M = ...
local a = pflask.container{ command = { "sh", "-c", "exit 1 # " .. M } }
local b = pflask.container{ command = { "sh", "-c", "exit 2 # " .. M } }
a:start()
b:start()
os.execute("sleep 0.3")
io.write("b ", (b.process:wait()), " a ", (a.process:wait()), "\n")
io.write("b ", b:wait(), " a ", a:wait(), "\n")
]]

-- A container that lives on: its supervisor drops what only the plan
-- needed and gives the heap back (Container:wait after M.SHED_AFTER);
-- what comes after still works: the registry, a new plan (the command
-- line parser loaded again), the teardown, the deferred function. Read
-- from the supervisor's own smaps and collector, no timing: the wait on a
-- `sleep` container can only time out.
local SHED = [[
local pflask = require "pflask"
local core = pflask.core
local D, M = ...
local function heap_kb()
  local kb, inheap = 0, false
  for l in io.lines("/proc/self/smaps") do
    if l:match("^%x+%-%x+ ") then
      inheap = l:match("%[heap%]$") ~= nil
    elseif inheap and l:match("^Rss:") then
      kb = kb + tonumber(l:match("(%d+)"))
    end
  end
  return kb
end
require "pflask.cli" -- loaded, held by nothing: dropped
local schema = require "pflask.schema" -- held by this local: kept
pflask.defer(function() io.write("deferred\n") end)
local name = "shed-" .. M:gsub("%.", "-")
-- Seen through a weak table: held by package.loaded alone.
local sandbox = setmetatable({ require "pflask.sandbox" }, { __mode = "v" })
local c = pflask.container{ command = { "sleep", M }, name = name }
c:start()
local record = core.state_dir(false) .. "/" .. name .. ".pflask"
collectgarbage()
collectgarbage()
local lua_kb, heap = collectgarbage("count"), heap_kb()
local s, why = c:wait{ timeout = 0.3 }
io.write("wait ", tostring(s), " ", why, "\n")
io.write("cli ", package.loaded["pflask.cli"] == nil and "dropped" or "kept", "\n")
io.write("schema ", package.loaded["pflask.schema"] == schema and "same" or "other", "\n")
-- A recipe may have changed a setting of the plan-time concerns: kept.
io.write("sandbox ", sandbox[1] ~= nil and package.loaded["pflask.sandbox"] == sandbox[1] and "same" or "other", "\n")
-- Of each concern, the stages still to run.
local kept = {}
for _, concern in ipairs(c.plan.concerns) do
  local stages = {}
  for stage in pairs(concern) do stages[#stages + 1] = stage end
  table.sort(stages)
  kept[#kept + 1] = table.concat(stages, ",")
end
io.write("concerns ", table.concat(kept, " "), "\n")
io.write("lua ", collectgarbage("count") < lua_kb - 20 and "smaller" or lua_kb .. " " .. collectgarbage("count"), "\n")
io.write("heap ", heap_kb() < heap and "smaller" or heap .. " " .. heap_kb(), "\n")
io.write("found ", require("pflask.registry").find(name).pid == c:pid() and "yes" or "no", "\n")
local spec = require("pflask.cli").parse({ "--", "sh", "-c", "exit 3" })
io.write("again ", pflask.run(spec), "\n")
c:kill()
io.write("container ", c:wait(), "\n")
io.write("record ", io.open(record) and "left" or "removed", "\n")
]]

-- The classic command line lets the concerns' modules go too (its recipe
-- adds them to SHED_MODULES, as here): the teardown still runs from the
-- stages the plan kept, and a later container loads them afresh.
local SHED_CLI = [[
local pflask = require "pflask"
local core = pflask.core
local D, M = ...
local shed = require("pflask.container").SHED_MODULES
local MODULES = { "pflask", "pflask.privileges", "pflask.sandbox", "pflask.mounts", "pflask.registry",
                  "pflask.terminal" }
for _, name in ipairs(MODULES) do shed[#shed + 1] = name end
local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end
local name = "shedcli-" .. M:gsub("%.", "-")
local c = pflask.container{ command = { "sleep", M }, name = name }
pflask = nil
c:start()
local record = core.state_dir(false) .. "/" .. name .. ".pflask"
local s, why = c:wait{ timeout = 0.3 }
local gone = {}
for _, n in ipairs(MODULES) do
  if package.loaded[n] == nil then gone[#gone + 1] = n end
end
io.write("wait ", tostring(s), " ", why, "\n")
io.write("dropped ", table.concat(gone, " "), "\n")
io.write("record ", exists(record) and "there" or "missing", "\n")
c:kill()
io.write("container ", c:wait(), "\n")
io.write("record ", exists(record) and "left" or "removed", "\n")
local again = require("pflask").run{ command = { "sh", "-c", "exit 4" }, name = name }
io.write("again ", again, ", record ", exists(record) and "left" or "removed", "\n")
]]

local function worlds(body)
  describe("as root", function() body(nil) end)
  describe("rootless", function()
    local ctx = {}
    setup(function()
      ctx.rootless = pft.rootless_user()
      ctx.user, ctx.pflask = ctx.rootless.name, ctx.rootless.exe
    end)
    teardown(function()
      if ctx.rootless then ctx.rootless:remove() end
    end)
    body(ctx)
  end)
end

describe("supervisor loop", function()
  worlds(function(ctx)
    local function run(body, files)
      return script(body, { files = files, user = ctx and ctx.user, pflask = ctx and ctx.pflask })
    end

    it("passes SIGTERM to every container, each through its translate table", function()
      local out, status, left = run(THREE_SCRIPT, { ["three.lua"] = THREE })
      assert.equal(0, status, out)
      assert.equal("status 143\nothers 3 4", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("leaves no signal blocked in what os.execute and io.popen run", function()
      local out, status, left = run("$P --recipe=$D/execute.lua $D $M", { ["execute.lua"] = EXECUTE })
      assert.equal(0, status, out)
      local zero = "SigBlk:\t0000000000000000"
      assert.equal("pflask " .. zero .. "\npopen " .. zero .. "\nsleep 124\n" .. zero .. "\nsleep 124\ncontainer 137", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("waits with a timeout, for any of several, and signals them all", function()
      local out, status, left = run("$P --recipe=$D/waiting.lua $D $M", { ["waiting.lua"] = WAITING })
      assert.equal(0, status, out)
      assert.equal("c1 nil timeout running\nany c2 7\nany nil timeout\nkill_all 1\nc1 143\nc2 again 7", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("sleeps, and wakes early on a signal it passes on", function()
      local out, status, left = run([[
$P --recipe=$D/sleep.lua $D $M >$D/out 2>&1 &
pid=$!
waitfile $D/ready && waitfile $D/sleeping || exit 1
kill -USR1 $pid
wait $pid
echo "status $?"
cat $D/out
]], { ["sleep.lua"] = SLEEP })
      assert.equal(0, status, out)
      assert.equal("status 0\nfull 0\nearly yes 10\ncontainer 5", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("keeps the older c:wait(translate) form", function()
      local out, status, left = run([[
$P --recipe=$D/old.lua $D $M >$D/out 2>&1 &
pid=$!
waitfile $D/ready || exit 1
kill -TERM $pid
wait $pid
echo "status $?"
cat $D/out
]], { ["old.lua"] = OLD_FORM })
      assert.equal(0, status, out)
      assert.equal("status 6", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("passes on a signal that arrived between waits", function()
      local out, status, left = run([[
$P --recipe=$D/between.lua $D $M >$D/out 2>&1 &
pid=$!
waitfile $D/ready || exit 1
kill -TERM $pid
touch $D/sent
wait $pid
echo "status $?"
cat $D/out
]], { ["between.lua"] = BETWEEN })
      assert.equal(0, status, out)
      assert.equal("status 0\nafter execute\nwaited 143", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("sees a container end while another floods its terminal", function()
      local out, status, left = run([[
$P --recipe=$D/flood.lua $D $M </dev/null >/dev/null 2>$D/err
echo "status $?"
cat $D/result $D/err
]], { ["flood.lua"] = FLOOD })
      assert.equal(0, status, out)
      assert.equal("status 0\nquick 3\nflood 137", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("gives back the plan's memory while a container runs, and goes on as before", function()
      local out, status, left = run("$P --recipe=$D/shed.lua $D $M", { ["shed.lua"] = SHED })
      assert.equal(0, status, out)
      assert.equal("wait nil timeout\ncli dropped\nschema same\nsandbox same\n"
        .. "concerns cleanup,ended,waiting cleanup cleanup\nlua smaller\nheap smaller\nfound yes\n"
        .. "again 3\ncontainer 143\nrecord removed\ndeferred", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("lets the concerns' modules go as the command line does, and still tears down", function()
      local out, status, left = run("$P --recipe=$D/shed_cli.lua $D $M", { ["shed_cli.lua"] = SHED_CLI })
      assert.equal(0, status, out)
      assert.equal("wait nil timeout\ndropped pflask pflask.privileges pflask.sandbox pflask.mounts pflask.registry "
        .. "pflask.terminal\nrecord there\ncontainer 143\nrecord removed\nagain 4, record removed", out)
      assert.equal(0, left, "processes left behind")
    end)

    it("gets the status of containers that ended together, in any order", function()
      local out, status = run("$P --recipe=$D/together.lua $D $M", { ["together.lua"] = TOGETHER })
      assert.equal(0, status, out)
      assert.equal("b 2 a 1\nb 2 a 1", out)
    end)

    it("relays a regular file as the container's terminal input", function()
      local out, status = run([[
printf 'one\ntwo\n' >$D/in
$P --recipe=$D/relay.lua <$D/in
echo "status $?"
]], { ["relay.lua"] = [[
local pflask = require "pflask"
return pflask.run{ command = { "sh", "-c", "read a; read b; echo \"got $a $b\"; exit 3" }, terminal = true }
]] })
      assert.equal(0, status, out)
      assert.matches("got one two\r?\nstatus 3$", out)
    end)

    it("gives --attach a regular file as input", function()
      local out, status = run([[
printf 'one\ntwo\n' >$D/in
$P --detach -- sh -c 'read a; read b; echo "got $a $b"; exit 4 # '$M >$D/detached || exit 1
pid=$(sed -n 's/.*pid \([0-9]*\) .*/\1/p' $D/detached)
$P --attach=$pid <$D/in
echo "status $?"
]])
      assert.equal(0, status, out)
      assert.matches("got one two\r?\nstatus 4$", out)
    end)
  end)
end)
