-- The filesystem: --mount, /dev, /proc, /sys, --ephemeral, pivot_root (issue 3) concern (see container.lua, CONCERNS).
-- Its steps are added by the issue that implements it.

local M = {}

return M
