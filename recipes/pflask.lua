-- The classic pflask command line, the default recipe:
--   pflask [OPTIONS] [--] [COMMAND [ARGS...]]
-- See pflask(1).

local pflask = require "pflask"
local cli = require "pflask.cli"

local spec, action = cli.parse({ ... })
if action == "help" then
  io.stdout:write(cli.usage())
  return 0
elseif action == "version" then
  io.stdout:write("pflask ", cli.VERSION, "\n")
  return 0
end
if action == "list" or action == "list-json" then
  local registry = require "pflask.registry"
  io.stdout:write(registry.format(registry.list(), action == "list-json"))
  return 0
end
if spec.attach then return require("pflask.terminal").attach(spec.attach) end
return pflask.run(spec)
