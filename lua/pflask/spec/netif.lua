-- Parse one --netif value.
--
-- Grammar: DEV:NAME moves a host device into the container under NAME;
-- macvlan:MASTER:NAME, ipvlan:MASTER:NAME and veth:OUTSIDE:INSIDE create
-- one. The character after the first word (':' or ',') separates all the
-- fields. No value at all means a network namespace with only lo.

local error_ = require("pflask.error")

---@class pflask.Netif
---@field type "none"|"move"|"macvlan"|"ipvlan"|"veth"
---@field device string|nil move: the host device
---@field name string|nil move, macvlan, ipvlan: the name inside
---@field master string|nil macvlan, ipvlan: the host device to attach to
---@field outside string|nil veth: the host end
---@field inside string|nil veth: the container end

local M = {}

-- IFNAMSIZ is 16 including the terminating NUL.
M.NAME_MAX = 15

local FORMS = "DEV:NAME, macvlan:MASTER:NAME, ipvlan:MASTER:NAME or veth:OUTSIDE:INSIDE"

-- Types created by pflask: the usage shown on a wrong count and a builder.
local KINDS = {
  macvlan = {
    usage = "macvlan:MASTER:NAME",
    build = function(f) return { type = "macvlan", master = f[1], name = f[2] } end,
  },
  ipvlan = {
    usage = "ipvlan:MASTER:NAME",
    build = function(f) return { type = "ipvlan", master = f[1], name = f[2] } end,
  },
  veth = {
    usage = "veth:OUTSIDE:INSIDE",
    build = function(f) return { type = "veth", outside = f[1], inside = f[2] } end,
  },
}

-- The type words, for shell completion (pflask.complete).
M.KINDS = KINDS

local split = require("pflask.spec.fields").split

--- Check an interface name the way the kernel's dev_valid_name does, so the
--- user hears about it before any namespace exists (',' is refused too, as
--- it is a separator here).
---@param name string
---@param option string
function M.check_name(name, option)
  if name == "" then
    error_.option(option, "empty interface name")
  elseif #name > M.NAME_MAX then
    error_.option(option, "interface name '%s' is longer than %d characters", name, M.NAME_MAX)
  elseif name == "." or name == ".." then
    error_.option(option, "interface name '%s' is not allowed", name)
  end
  local bad = name:match("[/:,]")
  if bad then
    error_.option(option, "interface name '%s' contains '%s'", name, bad)
  elseif name:match("%s") or name:find("\0", 1, true) then
    error_.option(option, "interface name '%s' contains whitespace", name)
  end
end

--- Parse one --netif value.
---@param value string|nil nil for a bare --netif
---@param option string the long option name for messages, e.g. "--netif"
---@return pflask.Netif
function M.parse(value, option)
  if value == nil then
    return { type = "none" }
  end
  if value == "" then
    error_.option(option, "empty value (use --netif alone for a namespace with only lo)")
  end
  local fields = split(value)
  for _, f in ipairs(fields) do
    if f == "" then
      error_.option(option, "'%s' has an empty interface name (%s)", value, FORMS)
    end
  end
  local kind = KINDS[fields[1]]
  local netif
  if kind then
    if #fields ~= 3 then
      error_.option(option, "'%s' needs 2 interface names (%s)", value, kind.usage)
    end
    netif = kind.build({ fields[2], fields[3] })
  elseif #fields == 2 then
    netif = { type = "move", device = fields[1], name = fields[2] }
  else
    error_.option(option, "'%s' is not %s", value, FORMS)
  end
  for _, key in ipairs({ "device", "master", "outside", "name", "inside" }) do
    if netif[key] then
      M.check_name(netif[key], option)
    end
  end
  return netif
end

return M
