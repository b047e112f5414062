-- A router lab: two bridges, a container on each, a third routing between them; a ping and a traceroute across.
--   pflask --recipe=lab.lua [PREFIX]   (bridges PREFIXa, PREFIXb, default pflab; needs root and busybox)
local pflask = require "pflask"
local core, p = pflask.core, arg[1] or "pflab"
local function veth(i, br, addr, gw) return { type = "veth", outside = p .. i, inside = "eth" .. (i % 2), address = addr, gateway = gw, outside_master = p .. br } end
for _, br in ipairs({ "a", "b" }) do
  assert(core.link_add{ kind = "bridge", name = p .. br }); assert(core.link_set(p .. br, { up = true }))
  pflask.defer(function() core.link_del(p .. br) end)
end
local sleep = { "busybox", "sleep", "600" }
local a = pflask.container{ netifs = { veth(2, "a", "10.71.1.2/24", "10.71.1.1") }, command = sleep }:start()
local r = pflask.container{ netifs = { veth(3, "a", "10.71.1.1/24"), veth(4, "b", "10.71.2.1/24") }, command = sleep }:start()
local b = pflask.container{ netifs = { veth(5, "b", "10.71.2.2/24", "10.71.2.1") }, command = sleep }:start()
assert(r:exec({ "busybox", "sysctl", "-w", "net.ipv4.ip_forward=1" }, { stdout = "null" }) == 0)
local ping = a:exec{ "busybox", "ping", "-c", "1", "-W", "5", "10.71.2.2" }
return ping == 0 and a:exec{ "busybox", "traceroute", "-n", "-w", "2", "-q", "1", "10.71.2.2" } or ping
