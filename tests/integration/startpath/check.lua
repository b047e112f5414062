-- Run by startpath_spec as a pflask recipe (pflask --recipe=FILE), in a
-- mount and pid namespace of its own (unshare -m -p -f, with -U -r when
-- rootless): a fresh proc on each of four directories, masked with
-- core.masks, the new mount API's path on the first and third, the
-- mount(2) path of kernels without open_tree (legacy) on the second and
-- fourth; prints this namespace's mountinfo for the spec to compare, then
-- what a required missing path gives either way.
local core = require "pflask.core"

local a, b, c, d = ...

-- A plain container's masks of its /proc (lua/pflask/mounts.lua,
-- protect_proc), with root the proc mount itself.
local DEFAULT = {
  { "readonly", "/sys", required = true },
  { "readonly", "/bus" }, { "readonly", "/fs" }, { "readonly", "/irq" }, { "readonly", "/apm" },
  { "readonly", "/sysrq-trigger" },
  { "null", "/kcore" }, { "null", "/kallsyms" }, { "null", "/keys" }, { "null", "/timer_list" },
  { "null", "/timer_stats" }, { "null", "/sched_debug" }, { "null", "/latency_stats" },
  { "empty", "/acpi" }, { "empty", "/asound" }, { "empty", "/scsi" },
}

-- The other kinds: a writable part of a read-only tree (a container's own
-- /proc/sys/net), "hide" of a file and of a directory (OCI maskedPaths),
-- a path that does not exist, one under a file (ENOTDIR).
local OTHERS = {
  { "readonly", "/sys", required = true }, { "writable", "/sys/net" },
  { "hide", "/keys" }, { "hide", "/tty" }, { "hide", "/bus" },
  { "readonly", "/no-such-path" }, { "null", "/keys/under-a-file" },
}

for _, set in ipairs{ { a, DEFAULT, false }, { b, DEFAULT, true }, { c, OTHERS, false }, { d, OTHERS, true } } do
  assert(core.mount_proc(set[1]))
  assert(core.masks(set[1], set[2], set[3]))
end
io.write(assert(io.open("/proc/self/mountinfo")):read("a"))
for _, legacy in ipairs{ false, true } do
  local ok, msg, errno = core.masks(a, { { "readonly", "/no-such-path", required = true } }, legacy)
  print(string.format("required %s: %s %s %s", legacy and "legacy" or "new", tostring(ok), msg, errno))
end
