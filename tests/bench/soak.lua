-- Soak from one recipe (issue 15): N sequential containers (default
-- 10,000) planned and run by one Lua state, printing every STEP (default
-- 1,000) this process's open fds, its RSS and the host's used memory
-- (MemTotal - MemAvailable), so that a leak shows as a trend:
--
--   pflask --recipe=tests/bench/soak.lua [N [STEP]]
--
-- Each container runs /bin/true in the default namespaces and must exit 0.
-- The last line says "soak: done". tests/bench/soak runs this and the
-- same count from the command line; tests/integration/soak_spec.lua a
-- short one.

local pflask = require("pflask")

local n = math.tointeger(tonumber(arg[1] or "10000"))
local step = math.tointeger(tonumber(arg[2] or "1000"))
if not n or n < 1 or not step or step < 1 then
  pflask.error.raise(pflask.error.FAILURE, "soak: N and STEP must be positive integers")
end

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Counted from inside, without a helper process: `ls /proc/PID/fd` run
-- by io.popen could see the pipe end popen had not closed yet (one fd
-- more now and then).
local function fds()
  local count = 0
  for fd = 0, 1023 do
    if pflask.core.stat("/proc/self/fd/" .. fd) then count = count + 1 end
  end
  return count
end

-- Records of this soak's containers still there once they ended: each
-- must be gone with its container.
local ended, left = {}, 0
local function check_records()
  local dir = pflask.core.state_dir(false)
  for _, pid in ipairs(ended) do
    if dir and io.open(dir .. "/" .. pid .. ".pflask") then left = left + 1 end
  end
  ended = {}
end

local function report(i)
  local rss = read("/proc/self/status"):match("VmRSS:%s*(%d+)")
  local mi = read("/proc/meminfo")
  local used = tonumber(mi:match("MemTotal:%s*(%d+)")) - tonumber(mi:match("MemAvailable:%s*(%d+)"))
  check_records()
  -- Lua's own heap, after a full collection: what the state holds on to.
  collectgarbage()
  io.stdout:write(string.format("soak: %d containers fds %d rss_kb %s lua_kb %d host_used_kb %d records_left %d\n",
    i, fds(), rss, math.floor(collectgarbage("count")), used, left))
  io.stdout:flush()
end

report(0)
for i = 1, n do
  local c = pflask.container({ command = { "/bin/true" } })
  local status = c:run()
  ended[#ended + 1] = c:pid()
  if status ~= 0 then
    pflask.error.raise(pflask.error.FAILURE, "soak: container %d exited %d", i, status)
  end
  if i % step == 0 then report(i) end
end
io.stdout:write("soak: done\n")
return 0
