-- Parse one --mount value.
--
-- Grammar: TYPE:FIELD[:FIELD...], where the character right after TYPE
-- (':' or ',') separates all the fields, so paths that contain ':' can be
-- written with commas (bind,/a:b,/c) and the other way round. Paths are
-- kept as given; they are resolved against the container root later.

local error_ = require("pflask.error")

---@class pflask.Mount
---@field type "bind"|"tmp"|"overlay"
---@field target string absolute path inside the container
---@field source string|nil bind: the host path
---@field readonly boolean|nil bind: true for bind-ro
---@field upper string|nil overlay: the writable upper directory
---@field work string|nil overlay: overlayfs' work directory

local M = {}

local TYPES = "bind, bind-ro, overlay, tmp"

-- Per type: the field names in order, the usage shown on a wrong count and
-- a builder from the fields.
local KINDS = {
  bind = {
    fields = { "source", "target" },
    usage = "bind:SRC:DST",
    build = function(f) return { type = "bind", source = f[1], target = f[2], readonly = false } end,
  },
  ["bind-ro"] = {
    fields = { "source", "target" },
    usage = "bind-ro:SRC:DST",
    build = function(f) return { type = "bind", source = f[1], target = f[2], readonly = true } end,
  },
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
}

-- The type words, for shell completion (pflask.complete).
M.KINDS = KINDS

local split = require("pflask.spec.fields").split

--- Parse one mount.
---@param value string e.g. "bind:/srv/data:/data", "tmp,/tmp"
---@param option string the long option name for messages, e.g. "--mount"
---@return pflask.Mount
function M.parse(value, option)
  if value == "" then
    error_.option(option, "empty value (%s)", TYPES)
  end
  local fields = split(value)
  local word = table.remove(fields, 1)
  local kind = KINDS[word]
  if word == "" then
    error_.option(option, "'%s' does not start with a mount type (%s)", value, TYPES)
  elseif not kind then
    error_.option(option, "'%s' is not a mount type (%s)", word, TYPES)
  end
  local want = #kind.fields
  if #fields ~= want then
    error_.option(option, "'%s' needs %d path%s (%s)", value, want, want == 1 and "" or "s", kind.usage)
  end
  for _, f in ipairs(fields) do
    if f == "" then
      error_.option(option, "'%s' has an empty path (%s)", value, kind.usage)
    end
  end
  local mount = kind.build(fields)
  if mount.target:sub(1, 1) ~= "/" then
    error_.option(option, "%s target '%s' must be an absolute path", word, mount.target)
  end
  return mount
end

return M
