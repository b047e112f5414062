-- The cgroups and resource limits: --cgroup, --memory, --pids-max, --cpus (issue 6) concern (see container.lua, CONCERNS).
-- Its steps are added by the issue that implements it.

local M = {}

return M
