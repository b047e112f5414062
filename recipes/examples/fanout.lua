-- One command in N containers at once, with a deadline: each one's status and output.
--   pflask --recipe=fanout.lua N SECONDS COMMAND [ARGS...]   ($NODE is 1..N inside)
local pflask = require "pflask"
local n, secs = math.tointeger(tonumber(arg[1])), tonumber(arg[2])
if not n or not secs or #arg < 3 then pflask.error.raise(125, "fanout: usage: --recipe=fanout.lua N SECONDS COMMAND...") end
local deadline, list, worst = pflask.core.monotonic() + secs, {}, 0
for i = 1, n do
  list[i] = pflask.container{ hostname = "node" .. i, command = table.move(arg, 3, #arg, 1, {}), stdout = "capture",
    stderr = "capture", setenv = { { name = "NODE", value = tostring(i) } } }:start()
end
for i, c in ipairs(list) do
  local status, out, err = c:output{ timeout = math.max(0, deadline - pflask.core.monotonic()) }
  if not status then c:close(); status, out, err = "timeout", "", "" end
  worst = status == "timeout" and 124 or math.max(worst, status)
  io.write(string.format("node%d: %s\n", i, status), out, err)
end
return worst
