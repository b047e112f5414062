-- A throwaway build: a root left untouched, the source bound at /src, an unprivileged user inside, output captured.
--   pflask --recipe=build.lua ROOT SRC [COMMAND...]   (default: make -C /src; the log goes to build.log)
--   PFLASK_BUILD_USER: the user inside (default nobody)
local pflask = require "pflask"
local root, src = arg[1], arg[2]
if not root or not src then pflask.error.raise(125, "build: usage: --recipe=build.lua ROOT SRC [COMMAND...]") end
local status, out, err = pflask.capture{ root = root, ephemeral = true, user = os.getenv("PFLASK_BUILD_USER") or "nobody",
  mounts = { { type = "bind", source = src, target = "/src" } }, chdir = "/src",
  command = #arg > 2 and table.move(arg, 3, #arg, 1, {}) or { "make", "-C", "/src" } }
local log = assert(io.open("build.log", "w"))
log:write(out, err)
log:close()
io.write(string.format("build: status %d, %d bytes of output, %d of errors (build.log)\n", status, #out, #err))
return status
