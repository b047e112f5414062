-- `pflask --recipe=list`: the bundled recipes and the installed examples,
-- each with the one-line description its source starts with.

local core = require "pflask.core"

local M = {}

--- The description of a recipe file: its first comment line, without
--- the "-- " and a final ":".
---@param file string
---@return string|nil
function M.describe_file(file)
  local f = io.open(file, "r")
  if not f then return nil end
  local line = f:read("l")
  if line and line:match("^#!") then line = f:read("l") end
  f:close()
  if not line or not line:match("^%-%-") then return "" end
  return (line:gsub("^%-%-+%s*", ""):gsub("[:%s]+$", ""))
end

--- name, description rows: bundled first (run as --recipe=NAME), then
--- the examples (run as --recipe=PATH), each sorted by name.
---@return {name: string, description: string}[]
function M.recipes()
  local rows = {}
  local names = {}
  for _, n in ipairs(core.recipes or {}) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    rows[#rows + 1] = { name = n, description = (core.recipe_descriptions or {})[n] or "" }
  end
  -- PFLASK_EXAMPLES_DIR: another directory of examples (a build tree's).
  local dir = os.getenv("PFLASK_EXAMPLES_DIR")
  if not dir or dir == "" then dir = core.examples_dir end
  local files = {}
  if dir then
    for _, name in ipairs(core.dir_entries(dir) or {}) do
      if name:match("%.lua$") then files[#files + 1] = name end
    end
  end
  table.sort(files)
  for _, name in ipairs(files) do
    rows[#rows + 1] = { name = dir .. "/" .. name, description = M.describe_file(dir .. "/" .. name) or "" }
  end
  return rows
end

--- Print the list, one recipe a line; returns 0.
function M.print()
  local rows = M.recipes()
  local width = 0
  for _, r in ipairs(rows) do
    if #r.name <= 40 then width = math.max(width, #r.name) end
  end
  for _, r in ipairs(rows) do
    io.stdout:write(string.format("%-" .. width .. "s  %s\n", r.name, r.description))
  end
  return 0
end

return M
