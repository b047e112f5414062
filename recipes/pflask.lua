-- The classic pflask command line, the default recipe:
--   pflask [OPTIONS] [--] [COMMAND [ARGS...]]
-- See pflask(1).

-- Hidden: word lists for the shell completion scripts (pflask.complete).
local first = ...
if type(first) == "string" and first:sub(1, 11) == "--complete=" then
  io.stdout:write(require("pflask.complete").text(first:sub(12)))
  return 0
end

local cli = require "pflask.cli"

local spec, action = cli.parse({ ... })
if action == "help" then
  io.stdout:write(cli.usage())
  return 0
elseif action == "version" then
  io.stdout:write(cli.version_text())
  return 0
end
if action == "list" or action == "list-json" then
  local registry = require "pflask.registry"
  io.stdout:write(registry.format(registry.list(), action == "list-json"))
  return 0
end
if spec.attach then return require("pflask.terminal").attach(spec.attach) end
if spec.exec then
  local env = {}
  for _, var in ipairs(spec.setenv) do env[var.name] = var.value end
  return require("pflask.exec").by_id(spec.exec, spec.command, { user = spec.user, cwd = spec.chdir, env = env })
end
-- No other Lua code runs in this supervisor: once the container runs, it
-- lets the concerns' modules go too, keeping their stages still to run
-- (pflask.container, shed).
local shed = require("pflask.container").SHED_MODULES
for _, name in ipairs({ "pflask", "pflask.privileges", "pflask.sandbox", "pflask.mounts", "pflask.registry",
                        "pflask.terminal", "pflask.cgroups", "pflask.network", "pflask.userns",
                        "pflask.boot", "pflask.machined" }) do
  shed[#shed + 1] = name
end
return require("pflask").run(spec)
