-- Run by startpath_spec as a pflask recipe: this process's bounding set as
-- core.caps_bounding reads it, in hexadecimal (the spec runs it with and
-- without /proc, and compares with CapBnd).
local core = require "pflask.core"
print(string.format("%x", assert(core.caps_bounding())))
