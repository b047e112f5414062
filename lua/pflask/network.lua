-- The network interfaces: --netif and the network API (issue 4) concern (see container.lua, CONCERNS).
-- Its steps are added by the issue that implements it.

local M = {}

return M
