-- The boot concern (see container.lua, CONCERNS): what an init system such
-- as systemd expects of a container manager when it runs as pid 1 of a root
-- filesystem (plan.boot), after systemd's container interface: a tmpfs on
-- /run, a writable cgroup2 hierarchy that is the container's own (a
-- delegated v2 cgroup and a cgroup namespace, see pflask.cgroups), the
-- POSIX message queues of its IPC namespace on /dev/mqueue,
-- SIGRTMIN+3 for a clean poweroff when pflask is asked to stop, and the
-- container's end through poweroff or reboot turned into an exit status.
-- The rest of the interface (container=pflask, read-only /sys and
-- /proc/sys, a private /dev with /dev/console) is every container's; a
-- boot gets a pty for its console even without a terminal (pflask.terminal).

local core = require "pflask.core"
local perr = require "pflask.error"
local basename = require("pflask.path").basename

local M = {}

-- In a pid namespace the kernel ends pid 1 with SIGINT on poweroff or halt
-- and with SIGHUP on reboot (pid_namespaces(7)).
local POWEROFF_SIGNAL, REBOOT_SIGNAL = core.signals.INT, core.signals.HUP
-- What systemd-nspawn exits with when the container rebooted, so that a
-- loop around pflask can restart it.
M.REBOOT_STATUS = 133

--- Is the init systemd? /sbin/init is a symlink to it on systemd systems.
local function is_systemd(root, init)
  if basename(init) == "systemd" then return true end
  return core.lookup(root, "/lib/systemd/systemd") == "file"
    and core.lookup(root, "/sbin/init") == "file" and init == "/sbin/init"
end

---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  if not plan.boot then return end
  local init = plan.argv[1]
  if init:sub(1, 1) ~= "/" or core.lookup(plan.root, init) ~= "file" then
    perr.raise(perr.FAILURE, "--chroot: '%s' has no init '%s': not a bootable root filesystem",
               spec.root, init)
  end
  if is_systemd(plan.root, init) then
    local stop = core.signals.RTMIN + 3
    plan.translate = { [core.signals.TERM] = stop, [core.signals.INT] = stop }
  end
  -- systemd writes its boot messages to the console only when it knows
  -- the terminal type; vt220 is what systemd-nspawn gives too.
  if not plan.env.TERM or plan.env.TERM == "" then plan.env.TERM = "vt220" end
  plan.map_status = function(status)
    if status == 128 + POWEROFF_SIGNAL then return 0 end
    if status == 128 + REBOOT_SIGNAL then return M.REBOOT_STATUS end
    return status
  end
end

--- Does the container have an IPC namespace of its own, new or joined
--- by path (OCI's namespaces[].path)?
---@param plan pflask.Plan
---@return boolean
local function own_ipc(plan)
  if plan.namespaces.ipc then return true end
  for _, j in ipairs(plan.joins or {}) do if j.name == "ipc" then return true end end
  return false
end

--- Child, after the root's own filesystems are mounted.
---@param plan pflask.Plan
function M.child_mounts(plan)
  if not plan.boot then return end
  local root = plan.root
  -- /run is already a tmpfs of the container's (pflask.mounts, which runs
  -- first and makes it in a root that has none).
  local run = core.lookup(root, "/run") == "directory"
  -- An init names the machine after /etc/hostname: show it the name asked
  -- for, from a file on the /run just mounted, bound read-only over it.
  -- Both paths are resolved inside the root (a /run that is a symlink in
  -- the image must not lead to a host file); without a /run of its own
  -- pflask writes nothing into the image.
  if plan.hostname and run and core.lookup(root, "/etc/hostname") == "file" then
    perr.check("--hostname", core.write_in_root(root, "/run/pflask/hostname", plan.hostname .. "\n"))
    perr.check("--hostname", core.bind{ root = root, target = "/etc/hostname", source = "/run/pflask/hostname",
                                       source_in_root = true, readonly = true, recursive = false })
  end
  -- POSIX message queues on /dev/mqueue, as systemd-nspawn mounts them:
  -- systemd then finds dev-mqueue.mount active instead of forking
  -- mount(8) for it during the boot. Only with an IPC namespace of the
  -- container's own (the instance is the mounter's), and only in
  -- pflask's private /dev (pflask.mounts made it a tmpfs wherever /dev is
  -- a directory; where it is not, pflask writes nothing into the image):
  -- otherwise systemd mounts it as it always did.
  if own_ipc(plan) and core.lookup(root, "/dev") == "directory" and core.lookup(root, "/dev/mqueue") == nil
    and core.mountpoint(root, "/dev/mqueue", "directory") then
    perr.check("/dev/mqueue", core.mount{ root = root, target = "/dev/mqueue", fstype = "mqueue", source = "mqueue",
                                          options = "nosuid,nodev,noexec" })
  end
  if core.lookup(root, "/sys/fs/cgroup") == "directory" then
    perr.check("/sys/fs/cgroup", core.mount{ root = root, target = "/sys/fs/cgroup", fstype = "cgroup2",
                                             source = "cgroup2", options = "nosuid,nodev,noexec" })
  end
end

return M
