-- The capabilities and no_new_privs: --caps, --no-new-privs (issue 6) concern (see container.lua, CONCERNS).
-- Its steps are added by the issue that implements it.

local M = {}

return M
