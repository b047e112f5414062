-- Run by startpath_spec as a pflask recipe, as root, in a mount namespace
-- of its own (unshare -m): pivot into ROOT, keeping libmount or not, then
-- ask for a mount option only libmount knows (x-... is a userspace
-- option, left out of the data). Prints what core.mount said.
local core = require "pflask.core"
local root, keep = ...
assert(core.pivot_root(root, keep == "keep"))
-- Mounts go through /proc/self/fd: a proc of this mount namespace.
assert(core.mount_proc("/proc"))
local ok, msg = core.mount{ target = "/mnt", fstype = "tmpfs", options = "x-pftest.seal,mode=0711" }
print(ok and "mounted" or ("refused: " .. tostring(msg)))
