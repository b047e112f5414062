-- The terminal concern (see container.lua, CONCERNS): the container's pty,
-- the relay, --detach and --attach (issue 5).

local M = {}

return M
