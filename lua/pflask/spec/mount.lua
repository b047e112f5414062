-- Parse --mount values.
--
-- One mount: TYPE:FIELD[:FIELD...], where the character right after TYPE
-- (':' or ',') separates all the fields, so paths that contain ':' can be
-- written with commas (bind,/a:b,/c) and the other way round. Paths are
-- kept as given; they are resolved against the container root later.
--
-- A bind takes flags after its two paths: in the colon form one more
-- field, a comma list (bind:SRC:DST:nosuid,nodev); in the comma form the
-- fields after DST (bind,SRC,DST,nosuid,nodev).
--
-- A list (pflask 0.2's --mount=bind:/a:/b,tmp:/c): in the colon form, a
-- comma followed by a mount type and ':' starts the next mount. Any other
-- comma belongs to the mount it is in (a path, or a bind's flags), so
-- `bind:/a:/b:nosuid,nodev,tmp:/c` is a bind with two flags, then a tmp.
-- A value in the comma form is always one mount.

local error_ = require("pflask.error")

---@class pflask.Mount
---@field type "bind"|"tmp"|"overlay"|"dir"|"symlink"|"file"|"proc"|"dev"
---@field target string absolute path inside the container
---@field source string|nil bind: the host path; file: a host file to copy
---@field readonly boolean|nil bind: true for bind-ro
---@field nosuid boolean|nil bind: set-user-id bits and file capabilities ignored
---@field nodev boolean|nil bind: device nodes cannot be opened
---@field noexec boolean|nil bind: nothing can be executed
---@field optional boolean|nil bind: a missing source skips the mount
---@field upper string|nil overlay: the writable upper directory
---@field work string|nil overlay: overlayfs' work directory
---@field to string|nil symlink: what the link points to
---@field content string|nil file: the file's content
---@field mode integer|nil dir, file: permission bits

local M = {}

local TYPES = "bind, bind-ro, dir, overlay, symlink, tmp"

-- The flags a bind takes.
M.BIND_FLAGS = { nosuid = true, nodev = true, noexec = true, optional = true }

local function bind(readonly)
  return function(f)
    return { type = "bind", source = f[1], target = f[2], readonly = readonly }
  end
end

-- Per type: the field names in order, the usage shown on a wrong count, a
-- builder from the fields, and whether flags may follow (binds).
local KINDS = {
  bind = { fields = { "source", "target" }, usage = "bind:SRC:DST[:FLAGS]", build = bind(false), flags = true },
  ["bind-ro"] = { fields = { "source", "target" }, usage = "bind-ro:SRC:DST[:FLAGS]", build = bind(true),
                  flags = true },
  tmp = {
    fields = { "target" },
    usage = "tmp:DST",
    build = function(f) return { type = "tmp", target = f[1] } end,
  },
  overlay = {
    fields = { "upper", "target", "work" },
    usage = "overlay:UPPER:DST:WORK",
    build = function(f) return { type = "overlay", upper = f[1], target = f[2], work = f[3] } end,
  },
  dir = {
    fields = { "target" },
    usage = "dir:DST",
    build = function(f) return { type = "dir", target = f[1] } end,
  },
  symlink = {
    fields = { "to", "target" },
    usage = "symlink:TO:DST",
    build = function(f) return { type = "symlink", to = f[1], target = f[2] } end,
  },
}

-- The type words, for shell completion (pflask.complete).
M.KINDS = KINDS

local split = require("pflask.spec.fields").split

--- Parse one mount.
---@param value string e.g. "bind:/srv/data:/data", "tmp,/tmp", "bind:/a:/b:nosuid,nodev"
---@param option string the long option name for messages, e.g. "--mount"
---@return pflask.Mount
function M.parse(value, option)
  if value == "" then
    error_.option(option, "empty value (%s)", TYPES)
  end
  local sep = value:match("^[^:,]*([:,])")
  local fields = split(value)
  local word = table.remove(fields, 1)
  local kind = KINDS[word]
  if word == "" then
    error_.option(option, "'%s' does not start with a mount type (%s)", value, TYPES)
  elseif not kind then
    error_.option(option, "'%s' is not a mount type (%s)", word, TYPES)
  end
  local want = #kind.fields
  local flags = {}
  if kind.flags and #fields > want then
    if sep == ":" then
      -- One more field, a comma list.
      if #fields == want + 1 then
        for flag in (fields[want + 1] .. ","):gmatch("([^,]*),") do flags[#flags + 1] = flag end
        fields[want + 1] = nil
      end
    else
      for i = want + 1, #fields do flags[#flags + 1] = fields[i]; fields[i] = nil end
    end
  end
  if #fields ~= want then
    error_.option(option, "'%s' needs %d path%s (%s)", value, want, want == 1 and "" or "s", kind.usage)
  end
  for _, f in ipairs(fields) do
    if f == "" then
      error_.option(option, "'%s' has an empty path (%s)", value, kind.usage)
    end
  end
  local mount = kind.build(fields)
  for _, flag in ipairs(flags) do
    if not M.BIND_FLAGS[flag] then
      error_.option(option, "'%s' is not a bind flag (nosuid, nodev, noexec, optional)", flag)
    end
    mount[flag] = true
  end
  if mount.target:sub(1, 1) ~= "/" then
    error_.option(option, "%s target '%s' must be an absolute path", word, mount.target)
  end
  return mount
end

--- Split a --mount value into its mounts' texts (see the list rule above).
---@param value string
---@return string[]
function M.split_list(value)
  if value:match("^[^:,]*([:,])") ~= ":" then return { value } end
  local items, start = {}, 1
  local pos = 1
  while true do
    local comma = value:find(",", pos, true)
    if not comma then break end
    local word = value:match("^([^:,]*):", comma + 1)
    if word and KINDS[word] then
      items[#items + 1] = value:sub(start, comma - 1)
      start = comma + 1
    end
    pos = comma + 1
  end
  items[#items + 1] = value:sub(start)
  return items
end

--- Parse a --mount value: one mount or a list of them.
---@param value string e.g. "bind:/a:/b,tmp:/c"
---@param option string
---@return pflask.Mount[]
function M.parse_list(value, option)
  local out = {}
  for i, item in ipairs(M.split_list(value)) do out[i] = M.parse(item, option) end
  return out
end

return M
