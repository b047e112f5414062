-- Run a program with the host's /usr read-only, an empty home but for the current project, no network.
--   pflask --recipe=sandbox.lua COMMAND [ARGS...]   (bubblewrap's most common wrapper)
local pflask = require "pflask"
local core = pflask.core
local home, project = os.getenv("HOME") or "/root", core.getcwd()
local mounts = { { type = "tmp", target = "/" }, { type = "bind", source = "/usr", target = "/usr", readonly = true },
  { type = "bind", source = "/etc", target = "/etc", readonly = true }, { type = "proc" }, { type = "dev" },
  { type = "tmp", target = "/tmp" }, { type = "tmp", target = home }, { type = "bind", source = project, target = project } }
for _, d in ipairs({ "bin", "sbin", "lib", "lib32", "lib64" }) do
  local st = core.lstat("/" .. d)
  if st and st.type == "symlink" then mounts[#mounts + 1] = { type = "symlink", target = "/" .. d, to = "usr/" .. d }
  elseif st then mounts[#mounts + 1] = { type = "bind", source = "/" .. d, target = "/" .. d, readonly = true } end
end
return pflask.run{ mounts = mounts, chdir = project, namespaces = { net = true }, keepenv = true,
  command = #arg > 0 and { ... } or { os.getenv("SHELL") or "/bin/sh" } }
