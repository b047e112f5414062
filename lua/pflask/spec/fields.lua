-- The separator rule shared by the spec options (--mount, --netif,
-- --user-map): users have seen both `bind:/a:/b` and `bind,/a,/b`
-- documented, so the character right after the first field (':' or ',')
-- splits the whole value. A path containing ':' can then be written with
-- commas, and the other way round.

local M = {}

--- Split value on the separator that follows its first field.
---@param value string
---@return string[] fields (one field when there is no separator)
function M.split(value)
  local sep = value:match("^[^:,]*([:,])")
  if not sep then
    return { value }
  end
  local fields = {}
  for field in (value .. sep):gmatch("([^" .. sep .. "]*)" .. sep) do
    fields[#fields + 1] = field
  end
  return fields
end

return M
