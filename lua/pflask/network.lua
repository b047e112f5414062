-- The network concern (see container.lua, CONCERNS): --netif and the
-- `netifs` spec field.
--
--   plan     checks every entry against the host before anything exists:
--            devices and masters exist, names are free, fields are sane
--   parent   opens the container's network namespace (and keeps it open),
--            then creates veths and macvlans/ipvlans directly in it under
--            their final names, moves host devices in (renamed in the same
--            request), and configures both ends
--   child_system   brings lo up (also for a rootless container)
--   cleanup  returns moved devices to the host under their original names,
--            deletes what pflask created, closes the namespace
--
-- Keeping the namespace open until cleanup matters: when its last process
-- dies the kernel destroys it, and with it every virtual device inside,
-- including a veth end or macvlan a user asked us to move in. Physical
-- devices would come back on their own, virtual ones would be lost.

local core = require "pflask.core"
local perr = require "pflask.error"
local netif_spec = require "pflask.spec.netif"

local M = {}

local OPTION = "--netif"

local function fail(fmt, ...)
  perr.option(OPTION, fmt, ...)
end

local TYPES = { none = true, move = true, macvlan = true, ipvlan = true, veth = true }

-- Fields each type needs, in the order they are reported.
local REQUIRED = {
  move = { "device", "name" },
  macvlan = { "master", "name" },
  ipvlan = { "master", "name" },
  veth = { "outside", "inside" },
}

local MACVLAN_MODES = { private = true, vepa = true, bridge = true, passthru = true, source = true }
local IPVLAN_MODES = { l2 = true, l3 = true, l3s = true }

--- How an entry reads on the command line, for messages.
local function describe(n)
  if n.type == "none" then return "(no interface)" end
  if n.type == "move" then return string.format("%s:%s", tostring(n.device), tostring(n.name)) end
  if n.type == "veth" then return string.format("veth:%s:%s", tostring(n.outside), tostring(n.inside)) end
  return string.format("%s:%s:%s", n.type, tostring(n.master), tostring(n.name))
end

--- The name the interface has inside the container.
local function inside_name(n)
  return n.type == "veth" and n.inside or n.name
end

local function valid_ipv4(s)
  local a, b, c, d, len = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/?(%d*)$")
  if not a then return false end
  for _, x in ipairs({ a, b, c, d }) do
    if tonumber(x) > 255 then return false end
  end
  return len == "" or tonumber(len) <= 32
end

local function valid_ipv6(s)
  local addr, len = s:match("^([%x:%.]+)/?(%d*)$")
  if not addr or not addr:find(":", 1, true) then return false end
  return len == "" or tonumber(len) <= 128
end

local function check_ip(s, what, n)
  if type(s) ~= "string" or not (valid_ipv4(s) or valid_ipv6(s)) then
    fail("%s: %s '%s' is not an IPv4 or IPv6 address (10.0.0.2/24, fd00::2/64)",
         describe(n), what, tostring(s))
  end
end

--- A string or an array of strings, as an array.
local function list(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  return v
end

local function check_mtu(v, what, n)
  if v ~= nil and (math.type(v) ~= "integer" or v < 68 or v > 65535) then
    fail("%s: %s must be an integer from 68 to 65535", describe(n), what)
  end
end

local function check_mac(v, n)
  if v ~= nil and (type(v) ~= "string" or not v:match("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$")) then
    fail("%s: mac '%s' is not a MAC address (02:00:00:00:00:01)", describe(n), tostring(v))
  end
end

--- One entry: fields, then what the host must have for it.
local function plan_entry(n, i, seen)
  if type(n) ~= "table" then fail("netifs[%d] is not a table", i) end
  if not TYPES[n.type] then
    fail("netifs[%d]: '%s' is not an interface type (none, move, macvlan, ipvlan, veth)", i, tostring(n.type))
  end
  if n.type == "none" then return { type = "none" } end
  for _, field in ipairs(REQUIRED[n.type]) do
    if n[field] == nil then fail("%s: missing field '%s'", describe(n), field) end
    if type(n[field]) ~= "string" then fail("%s: '%s' must be a string", describe(n), field) end
    netif_spec.check_name(n[field], OPTION)
  end
  local inside = inside_name(n)
  if inside == "lo" then fail("%s: 'lo' already exists in the container", describe(n)) end
  if seen.inside[inside] then
    fail("%s: '%s' is given twice inside the container", describe(n), inside)
  end
  seen.inside[inside] = true

  if n.mode ~= nil then
    local modes = n.type == "macvlan" and MACVLAN_MODES or n.type == "ipvlan" and IPVLAN_MODES or nil
    if not modes or not modes[n.mode] then
      fail("%s: '%s' is not a mode of %s", describe(n), tostring(n.mode), n.type)
    end
  end
  for _, a in ipairs(list(n.address)) do check_ip(a, "address", n) end
  for _, g in ipairs(list(n.gateway)) do check_ip(g, "gateway", n) end
  for _, r in ipairs(n.routes or {}) do
    if type(r) ~= "table" or (r.gateway == nil and r.dst == nil) then
      fail("%s: routes must be tables {dst=, gateway=}", describe(n))
    end
    if r.gateway ~= nil then check_ip(r.gateway, "route gateway", n) end
    if r.dst ~= nil and r.dst ~= "default" then check_ip(r.dst, "route destination", n) end
  end
  check_mtu(n.mtu, "mtu", n)
  check_mac(n.mac, n)
  if n.type ~= "veth" then
    for _, f in ipairs({ "outside_address", "outside_mtu", "outside_master", "outside_up" }) do
      if n[f] ~= nil then fail("%s: '%s' is only for veth", describe(n), f) end
    end
  else
    for _, a in ipairs(list(n.outside_address)) do check_ip(a, "outside_address", n) end
    check_mtu(n.outside_mtu, "outside_mtu", n)
  end

  -- The host side, as it is now.
  if n.type == "move" then
    if n.device == "lo" then fail("%s: lo cannot leave its namespace", describe(n)) end
    if seen.host[n.device] then fail("%s: '%s' is used twice", describe(n), n.device) end
    seen.host[n.device] = true
    if not core.link_get(n.device) then
      fail("%s: no interface '%s' on the host", describe(n), n.device)
    end
  elseif n.type == "macvlan" or n.type == "ipvlan" then
    if not core.link_get(n.master) then
      fail("%s: no master interface '%s' on the host", describe(n), n.master)
    end
  elseif n.type == "veth" then
    if seen.host[n.outside] then fail("%s: '%s' is used twice", describe(n), n.outside) end
    seen.host[n.outside] = true
    if core.link_get(n.outside) then
      fail("%s: interface name '%s' is already taken on the host", describe(n), n.outside)
    end
    if n.outside_master ~= nil then
      if type(n.outside_master) ~= "string" then
        fail("%s: 'outside_master' must be a string", describe(n))
      end
      local m = core.link_get(n.outside_master)
      if not m then fail("%s: no bridge '%s' on the host", describe(n), n.outside_master) end
      if m.kind ~= "bridge" then fail("%s: '%s' is not a bridge", describe(n), n.outside_master) end
    end
  end
  local out = {}
  for k, v in pairs(n) do out[k] = v end
  return out
end

---@class pflask.NetworkPlan
---@field netifs table[] checked copies of spec.netifs
---@field lo boolean bring lo up inside

--- Check spec.netifs against the host and put it in plan.network. Raises
--- on bad input; creates nothing.
---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  local netifs = spec.netifs or {}
  if type(netifs) ~= "table" then fail("netifs must be an array") end
  if #netifs > 0 then
    if spec.namespaces and spec.namespaces.net == false then
      fail("needs a network namespace (drop --no-netns)")
    end
    plan.namespaces.net = true
  end
  if not plan.namespaces.net then return end
  local seen = { inside = {}, host = {} }
  local out, creates = {}, false
  for i, n in ipairs(netifs) do
    out[i] = plan_entry(n, i, seen)
    creates = creates or out[i].type ~= "none"
  end
  if creates and core.geteuid() ~= 0 then
    fail("moving or creating interfaces needs root on the host; without it, --netif alone gives a network namespace with only lo")
  end
  plan.network = { netifs = out, lo = true }
end

--- Configure the container's end of n (in ns) and, for a veth, the host's.
local function configure(n, ns)
  local step = OPTION .. ": " .. describe(n)
  local inside = inside_name(n)
  local addresses, gateways = list(n.address), list(n.gateway)
  local up = n.up
  if up == nil then up = #addresses > 0 or #gateways > 0 or (n.routes ~= nil and #n.routes > 0) end
  if n.mtu or n.mac then
    perr.check(step, core.link_set(inside, { mtu = n.mtu, address = n.mac }, ns))
  end
  for _, a in ipairs(addresses) do perr.check(step, core.addr_add(inside, a, ns)) end
  if up then perr.check(step, core.link_set(inside, { up = true }, ns)) end
  for _, g in ipairs(gateways) do
    perr.check(step, core.route_add({ dst = "default", gateway = g, dev = inside }, ns))
  end
  for _, r in ipairs(n.routes or {}) do
    perr.check(step, core.route_add({ dst = r.dst or "default", gateway = r.gateway, dev = r.gateway == nil and inside or nil, metric = r.metric }, ns))
  end
  if n.type ~= "veth" then return end
  local outside_addresses = list(n.outside_address)
  local outside_up = n.outside_up
  if outside_up == nil then outside_up = #outside_addresses > 0 or n.outside_master ~= nil end
  if n.outside_mtu or n.outside_master then
    perr.check(step, core.link_set(n.outside, { mtu = n.outside_mtu, master = n.outside_master }))
  end
  for _, a in ipairs(outside_addresses) do perr.check(step, core.addr_add(n.outside, a)) end
  if outside_up then perr.check(step, core.link_set(n.outside, { up = true })) end
end

--- Create or move every interface into the container's namespace, then
--- configure them. What is done is recorded first thing, so cleanup undoes
--- exactly that even when a later step fails.
---@param plan pflask.Plan
---@param container pflask.Container
function M.parent(plan, container)
  local net = plan.network
  if not net or #net.netifs == 0 then return end
  local state = { moved = {}, host = {}, inside = {} }
  net.state = state
  state.ns = perr.check(OPTION, core.netns_open(container:pid()))
  state.host_ns = perr.check(OPTION, core.netns_open("/proc/self/ns/net"))
  for _, n in ipairs(net.netifs) do
    local step = OPTION .. ": " .. describe(n)
    if n.type == "move" then
      perr.check(step, core.link_set(n.device, { netns = state.ns, name = n.name }))
      local info = core.link_get(n.name, state.ns)
      state.moved[#state.moved + 1] = { device = n.device, name = n.name, index = info and info.index }
    elseif n.type == "macvlan" or n.type == "ipvlan" then
      local ok, msg, errno = core.link_add({ kind = n.type, name = n.name, master = n.master, mode = n.mode, netns = state.ns })
      if not ok and errno == 95 then -- EOPNOTSUPP: the kernel lacks the driver
        msg = msg .. " (this kernel has no " .. n.type .. " support)"
      end
      perr.check(step, ok, msg, errno)
      local info = core.link_get(n.name, state.ns)
      state.inside[#state.inside + 1] = { name = n.name, index = info and info.index }
    elseif n.type == "veth" then
      perr.check(step, core.link_add({ kind = "veth", name = n.outside, peer = n.inside, peer_netns = state.ns }))
      local info = core.link_get(n.outside)
      state.host[#state.host + 1] = { name = n.outside, index = info and info.index }
    end
    if n.type ~= "none" then configure(n, state.ns) end
  end
end

--- lo up, from inside (the only step a rootless container can do).
---@param plan pflask.Plan
function M.child_system(plan)
  if plan.network and plan.network.lo then
    perr.check("bring up lo", core.link_set("lo", { up = true }))
  end
end

--- Undo parent: moved devices go home under their old names, created ones
--- are deleted, the namespace is released. Never raises; each step is tried
--- on its own.
---@param plan pflask.Plan
function M.cleanup(plan)
  local state = plan.network and plan.network.state
  if not state then return end
  plan.network.state = nil
  local ns, host_ns = state.ns, state.host_ns
  if ns and host_ns then
    for i = #state.moved, 1, -1 do
      local m = state.moved[i]
      local done = false
      if m.index then
        local ok, res = pcall(core.link_set, m.index, { netns = host_ns, name = m.device }, ns)
        done = ok and res
      end
      if not done then pcall(core.link_set, m.name, { netns = host_ns, name = m.device }, ns) end
    end
  end
  for i = #state.host, 1, -1 do
    local h = state.host[i]
    -- Only the interface pflask made: same name and index.
    local info = core.link_get(h.name)
    if info and (h.index == nil or info.index == h.index) then pcall(core.link_del, info.index) end
  end
  if ns then
    for i = #state.inside, 1, -1 do
      local c = state.inside[i]
      if c.index then pcall(core.link_del, c.index, ns) end
    end
    ns:close()
  end
  if host_ns then host_ns:close() end
end

--- The container's network namespace while it runs (a NetNS handle for the
--- core.link_*/addr_*/route_* functions), or nil when pflask keeps none
--- (no interfaces given): then use core.netns_open(container:pid()).
---@param container pflask.Container
function M.netns(container)
  local net = container.plan.network
  return net and net.state and net.state.ns
end

return M
