-- A small network of containers on a bridge, the last one pinging the others.
--
-- Containers 1..N-1 wait, the last one pings each of them.
--
--   pflask --recipe=recipes/examples/network.lua [N [BRIDGE [SUBNET]]]
--
-- N containers (default 2), the bridge BRIDGE (default pfdemo0, created on
-- the host and deleted afterwards; it must not exist yet), addresses
-- SUBNET.1 ... SUBNET.N/24 (default 10.199.0). Every container gets a veth
-- pair: eth0 inside, "pfdemoK" outside, enslaved to the bridge. Nothing is
-- routed to or from the host's own network: the bridge has no address and
-- no uplink. Needs root (it creates interfaces on the host); run it inside
-- `ip netns exec NAME` to keep even the bridge out of the host's sight.

local pflask = require "pflask"
local core = pflask.core
local perr = pflask.error

local n = math.tointeger(tonumber(arg[1] or "2"))
local bridge = arg[2] or "pfdemo0"
local subnet = arg[3] or "10.199.0"
if not n or n < 2 or n > 50 then
  perr.raise(perr.FAILURE, "network: the number of containers must be 2 to 50")
end
if core.link_get(bridge) then
  perr.raise(perr.FAILURE, "network: interface '%s' already exists", bridge)
end

-- busybox's ping when the host has no ping of its own.
local PING = "p() { if command -v ping >/dev/null; then ping \"$@\"; else busybox ping \"$@\"; fi; }; "

local function spec(i, command)
  return {
    hostname = "box" .. i,
    command = command,
    netifs = { {
      type = "veth", outside = "pfdemo" .. i, inside = "eth0",
      address = string.format("%s.%d/24", subnet, i), outside_master = bridge,
    } },
  }
end

perr.check("network: create bridge " .. bridge, core.link_add({ kind = "bridge", name = bridge }))
local waiting = {}
local ok, result = pcall(function()
  perr.check("network: bring up " .. bridge, core.link_set(bridge, { up = true }))
  for i = 1, n - 1 do
    -- They wait until killed; each one's veth goes when it ends.
    waiting[i] = pflask.container(spec(i, { "sleep", "600" })):start()
  end
  local pings = {}
  for i = 1, n - 1 do
    pings[#pings + 1] = string.format("p -c 1 -W 5 %s.%d || exit 1", subnet, i)
  end
  local script = PING .. "ip -o -4 addr show dev eth0; " .. table.concat(pings, "; ")
  local last = pflask.container(spec(n, { "sh", "-c", script }))
  return last:run()
end)
for _, c in ipairs(waiting) do
  c:kill(core.signals.KILL)
  c:wait()
end
core.link_del(bridge)
if not ok then error(result, 0) end
print(result == 0 and "network: every container answered" or "network: ping failed")
return result
