-- Parse --caps lists and name Linux capabilities.
--
-- The names and numbers are those of <linux/capability.h> in Linux 6.x; the
-- C side works with numbers, users and messages with lowercase names
-- without the CAP_ prefix (as capsh and systemd spell them).

local error_ = require("pflask.error")

---@class pflask.CapOp
---@field op "+"|"-" add (keep) or drop the capability
---@field name string lowercase, without "cap_"; "all" for every capability

local M = {}

--- Capability names in number order: `M.names[n + 1]` is capability n.
---@type string[]
M.names = {
  "chown", "dac_override", "dac_read_search", "fowner", "fsetid", -- 0..4
  "kill", "setgid", "setuid", "setpcap", "linux_immutable", -- 5..9
  "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", -- 10..14
  "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", -- 15..19
  "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", -- 20..24
  "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", -- 25..29
  "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", -- 30..34
  "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", -- 35..39
  "checkpoint_restore", -- 40
}

--- Highest capability number known here (CAP_LAST_CAP of Linux 6.x).
M.LAST = #M.names - 1

--- Capability number by name (lowercase, no "cap_").
---@type table<string, integer>
M.numbers = {}
for i, name in ipairs(M.names) do
  M.numbers[name] = i - 1
end

--- The number of a capability, accepting any case and an optional CAP_ prefix.
---@param name string e.g. "chown", "CAP_CHOWN"
---@return integer|nil number nil when the name is unknown
function M.number(name)
  return M.numbers[M.normalize(name)]
end

--- Lowercase a capability name and strip a CAP_ prefix.
---@param name string
---@return string
function M.normalize(name)
  local lower = name:lower()
  return (lower:gsub("^cap_", "", 1))
end

--- Parse one entry of a list: "[+|-]name".
---@param entry string
---@param option string
---@return pflask.CapOp
local function parse_entry(entry, option)
  local op, rest = entry:match("^([+-]?)(.*)$")
  if rest == "" then
    error_.option(option, "'%s' has no capability name after the sign", entry)
  end
  local name = M.normalize(rest)
  if name ~= "all" and not M.numbers[name] then
    error_.option(option, "'%s' is not a capability", rest)
  end
  return { op = op == "" and "+" or op, name = name }
end

--- Parse a --caps value, a comma-separated list such as "-all,+chown,kill",
--- appending to the entries of earlier --caps options when `into` is given,
--- because "all" is only meaningful as the very first entry overall.
---@param value string
---@param option string the long option name for messages, e.g. "--caps"
---@param into pflask.CapOp[]|nil entries from earlier --caps options
---@return pflask.CapOp[] into the same list with the new entries appended
function M.parse(value, option, into)
  local list = into or {}
  if value == "" then
    error_.option(option, "empty list (names like chown or -all,+net_admin)")
  end
  for entry in (value .. ","):gmatch("([^,]*),") do
    if entry == "" then
      error_.option(option, "empty entry in '%s'", value)
    end
    local cap = parse_entry(entry, option)
    if cap.name == "all" and #list > 0 then
      error_.option(option, "'all' must come first")
    end
    list[#list + 1] = cap
  end
  return list
end

return M
