-- Users and groups, looked up where the command will run: in the
-- container's root (its /etc/passwd and /etc/group, read without leaving
-- that root) or, without one, in the host's user database.

local core = require "pflask.core"
local ids = require "pflask.spec.id"

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

--- Parse passwd text and find an entry by name or uid. An entry whose
--- uid or gid is not a valid id (pflask.spec.id: decimal, 0 to
--- 4294967294) is skipped as malformed: an image's "-1" or "0x0" must not
--- become some other id.
---@param text string contents of an /etc/passwd
---@param key string|integer
---@return pflask.User|nil
function M.find_in_passwd(text, key)
  for line in text:gmatch("[^\n]+") do
    local f = fields(line)
    local uid, gid = ids.parse(f[3]), ids.parse(f[4])
    if #f >= 7 and uid and gid and (f[1] == key or uid == key) then
      return { name = f[1], uid = uid, gid = gid,
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
    local gid = ids.parse(f[3])
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

--- Look a user up in the text of a passwd and (optional) group file:
--- what spec.mounts puts at /etc/passwd and /etc/group.
---@param key string|integer
---@param passwd string
---@param group string|nil
---@param where string what the text is, for the message
---@return pflask.User|nil user
---@return string|nil why not found
local function lookup_in_text(key, passwd, group, where)
  local user = M.find_in_passwd(passwd, key)
  if not user then return nil, "no such user in " .. where end
  user.groups = group and M.groups_in_group_file(group, user.name, user.gid) or { user.gid }
  return user
end

--- Resolve a user name or a numeric uid. A number with no entry is still a
--- valid user (uid = gid = the number, home "/"), as with other container
--- tools; a number out of range (pflask.spec.id) is no user at all.
---@param name string|integer user name or decimal uid
---@param root string|nil the container's root; nil for the host
---@param db {passwd: string, group: string|nil, where: string}|nil the
---  user database the mounts put in place, which wins over root's
---@return pflask.User|nil user
---@return string|nil why not found
function M.lookup(name, root, db)
  if math.type(name) == "integer" then name = tostring(name) end
  if type(name) ~= "string" or name == "" then return nil, "not a user name or id" end
  local key = name
  if ids.numeric(name) then
    key = ids.parse(name)
    if not key then return nil, ids.RANGE end
  end
  local user, why
  if db then
    user, why = lookup_in_text(key, db.passwd, db.group, db.where)
  elseif root then
    user, why = lookup_in_root(root, key)
  else
    user, why = lookup_on_host(key)
  end
  if user then return user end
  if math.type(key) == "integer" then
    return { name = name, uid = key, gid = key, home = "/", groups = { key } }
  end
  return nil, why
end

return M
