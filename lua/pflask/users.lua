-- Users and groups, looked up where the command will run: in the
-- container's root (its /etc/passwd and /etc/group, read without leaving
-- that root) or, without one, in the host's user database.

local core = require "pflask.core"

local M = {}

---@class pflask.User
---@field name string
---@field uid integer
---@field gid integer
---@field home string
---@field shell string|nil
---@field groups integer[] supplementary group ids, the primary gid first

--- Split a colon-separated database line into its fields.
---@param line string
---@return string[]
local function fields(line)
  local out = {}
  for field in (line .. ":"):gmatch("([^:]*):") do out[#out + 1] = field end
  return out
end

--- Parse passwd text and find an entry by name or uid.
---@param text string contents of an /etc/passwd
---@param key string|integer
---@return pflask.User|nil
function M.find_in_passwd(text, key)
  for line in text:gmatch("[^\n]+") do
    local f = fields(line)
    local uid = tonumber(f[3])
    if #f >= 7 and uid and (f[1] == key or uid == key) then
      return { name = f[1], uid = uid, gid = tonumber(f[4]) or uid,
               home = f[6] ~= "" and f[6] or "/", shell = f[7] ~= "" and f[7] or nil }
    end
  end
  return nil
end

--- Groups that list `name` as a member in group text, after `primary`.
---@param text string contents of an /etc/group
---@param name string
---@param primary integer
---@return integer[]
function M.groups_in_group_file(text, name, primary)
  local groups, seen = { primary }, { [primary] = true }
  for line in text:gmatch("[^\n]+") do
    local f = fields(line)
    local gid = tonumber(f[3])
    if gid and not seen[gid] then
      for member in (f[4] or ""):gmatch("[^,]+") do
        if member == name then
          groups[#groups + 1] = gid
          seen[gid] = true
          break
        end
      end
    end
  end
  return groups
end

--- Look a user up by name (or numeric uid) in a root directory's files.
---@param root string
---@param key string|integer
---@return pflask.User|nil user
---@return string|nil why not found
local function lookup_in_root(root, key)
  local passwd, err = core.read_in_root(root, "/etc/passwd")
  if not passwd then return nil, err end
  local user = M.find_in_passwd(passwd, key)
  if not user then return nil, "no such user in " .. root .. "/etc/passwd" end
  local group = core.read_in_root(root, "/etc/group")
  user.groups = group and M.groups_in_group_file(group, user.name, user.gid) or { user.gid }
  return user
end

local function lookup_on_host(key)
  local pw, err = core.getpwnam(key)
  if not pw then return nil, err or "no such user on this host" end
  pw.groups = core.getgrouplist(pw.name, pw.gid)
  return pw
end

--- Resolve a user name or a numeric uid. A number with no entry is still a
--- valid user (uid = gid = the number, home "/"), as with other container
--- tools.
---@param name string user name or decimal uid
---@param root string|nil the container's root; nil for the host
---@return pflask.User|nil user
---@return string|nil why not found
function M.lookup(name, root)
  local key = name:match("^%d+$") and math.tointeger(tonumber(name)) or name
  local user, why
  if root then user, why = lookup_in_root(root, key) else user, why = lookup_on_host(key) end
  if user then return user end
  if math.type(key) == "integer" then
    return { name = name, uid = key, gid = key, home = "/", groups = { key } }
  end
  return nil, why
end

return M
