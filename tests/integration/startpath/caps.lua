-- Run by startpath_spec as a pflask recipe: this process's bounding set as
-- core.caps_bounding reads it (CapBnd of /proc/self/status, or a prctl per
-- capability where /proc is not there), in hexadecimal.
local core = require "pflask.core"
print(string.format("%x", assert(core.caps_bounding())))
