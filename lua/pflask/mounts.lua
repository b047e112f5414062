-- The filesystem concern (see container.lua, CONCERNS): --mount,
-- --ephemeral, and a usable system inside a --chroot (/proc, /sys, /dev).
--
-- Everything is mounted by the child before pivot_root, with targets
-- resolved inside the new root (pflask.core never follows a symlink of
-- that tree out of it), so a hostile root filesystem cannot make pflask
-- mount or create anything on the host.

local core = require "pflask.core"
local perr = require "pflask.error"
local absolute = require("pflask.path").absolute
local read_file = require("pflask.path").read_file

local M = {}

---@class pflask.Mount
---@field type "bind"|"tmp"|"overlay"
---@field target string absolute path inside the container
---@field source string|nil bind: the host path
---@field readonly boolean|nil bind: read-only, submounts included
---@field options string|nil tmp: mount options ("size=64M,mode=1777")
---@field upper string|nil overlay: the host directory that takes the changes
---@field work string|nil overlay: overlayfs' work directory, on upper's filesystem

-- Device nodes of a container's /dev: name, major, minor.
local DEVICES = {
  { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
  { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
}

local DEV_LINKS = {
  { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
  { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
  { "ptmx", "pts/ptmx" },
}

local function fail(fmt, ...)
  perr.raise(perr.FAILURE, "--mount: " .. fmt, ...)
end

--- A target as a path inside the root. With --chroot=ROOT, a target that
--- names ROOT itself or a path under it (as in the classic
--- `--mount=overlay:UPPER:ROOT:WORK`) is taken relative to ROOT.
local function inside_root(target, root)
  if root then
    if target == root then return "/" end
    if target:sub(1, #root + 1) == root .. "/" then return target:sub(#root + 1) end
  end
  return target
end

local function check_directory(path, what)
  local st = core.stat(path)
  if not st then fail("%s '%s' does not exist", what, path) end
  if st.type ~= "directory" then fail("%s '%s' is not a directory", what, path) end
  return st
end

--- Check one mount and resolve its paths; nothing is created.
local function plan_mount(m, plan)
  if type(m) ~= "table" or type(m.target) ~= "string" then
    fail("each mount needs a target")
  end
  if m.target:sub(1, 1) ~= "/" then fail("target '%s' must be an absolute path", m.target) end
  local out = { type = m.type, target = inside_root(m.target, plan.root) }
  if m.type == "bind" then
    if type(m.source) ~= "string" or m.source == "" then fail("bind needs a source") end
    out.source = absolute(m.source)
    local st = core.stat(out.source)
    if not st then fail("source '%s' does not exist", m.source) end
    out.kind = st.type == "directory" and "directory" or "file"
    out.readonly = m.readonly and true or false
  elseif m.type == "tmp" then
    out.options = m.options
  elseif m.type == "overlay" then
    if type(m.upper) ~= "string" or type(m.work) ~= "string" then
      fail("overlay needs an upper and a work directory")
    end
    out.upper, out.work = absolute(m.upper), absolute(m.work)
    local upper = check_directory(out.upper, "overlay upper dir")
    local work = check_directory(out.work, "overlay work dir")
    if upper.dev ~= work.dev then
      fail("overlay work dir '%s' is not on the filesystem of upper dir '%s'", m.work, m.upper)
    end
  else
    fail("'%s' is not a mount type (bind, bind-ro, overlay, tmp)", tostring(m.type))
  end
  -- Without a new root, a missing mount point would be created on the
  -- host's own filesystem: refuse instead.
  if not plan.root then
    local st = core.stat(out.target)
    if not st then
      fail("target '%s' does not exist (mount points are created only inside --chroot)", m.target)
    end
  end
  return out
end

---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  plan.mounts = {}
  local mounts = spec.mounts or {}
  if #mounts > 0 and not plan.namespaces.mount then
    fail("needs a mount namespace (drop --no-mountns)")
  end
  for i, m in ipairs(mounts) do plan.mounts[i] = plan_mount(m, plan) end
  if spec.ephemeral then
    if not plan.root then perr.raise(perr.FAILURE, "--ephemeral: needs --chroot") end
    plan.ephemeral = true
    plan.ephemeral_base = M.plan_ephemeral_dir(spec.ephemeral_dir, os.getenv("PFLASK_EPHEMERAL_DIR"))
  elseif spec.ephemeral_dir ~= nil then
    perr.raise(perr.FAILURE, "--ephemeral-dir: needs --ephemeral")
  end
end

--- Where a disk-backed ephemeral layer goes: the spec's ephemeral_dir,
--- else PFLASK_EPHEMERAL_DIR, else nil (a tmpfs of the container's own).
---@param field string|nil spec.ephemeral_dir
---@param env string|nil the environment variable's value
---@return string|nil absolute directory
function M.plan_ephemeral_dir(field, env)
  local dir, what = field, "--ephemeral-dir"
  if dir == nil and env ~= nil and env ~= "" then dir, what = env, "PFLASK_EPHEMERAL_DIR" end
  if dir == nil then return nil end
  if type(dir) ~= "string" or dir == "" then
    perr.raise(perr.FAILURE, "%s: must be a directory", what)
  end
  local st = core.stat(dir)
  if not st then perr.raise(perr.FAILURE, "%s: '%s' does not exist", what, dir) end
  if st.type ~= "directory" then perr.raise(perr.FAILURE, "%s: '%s' is not a directory", what, dir) end
  return absolute(dir)
end

-- A disk-backed layer's directory: EPHEMERAL_PREFIX .. PID .. "." .. NS ..
-- ".XXXXXX", PID the supervisor's in the pid namespace whose inode is NS:
-- only a run in the same pid namespace can tell whether PID is gone.
local EPHEMERAL_PREFIX = "pflask-ephemeral."

--- Our pid namespace, as the inode number of /proc/self/ns/pid.
local function pid_namespace()
  local st = core.stat("/proc/self/ns/pid")
  return st and st.ino or 0
end

--- Is process `pid` (of this pid namespace) alive? A zombie is gone too.
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %(.*%) (%a)") ~= "Z"
end

--- Remove the disk-backed layers in base that a run which is no longer
--- there left behind (a SIGKILLed supervisor): directories named after
--- their supervisor's pid in our pid namespace, owned by us. A live
--- run's, or one of another pid namespace, is never touched.
---@param base string
function M.sweep_ephemeral(base)
  local euid, ns = core.geteuid(), tostring(pid_namespace())
  for _, name in ipairs(core.dir_entries(base) or {}) do
    local pid, its_ns = name:match("^pflask%-ephemeral%.(%d+)%.(%d+)%.[%w_]+$")
    if pid and its_ns == ns and tonumber(pid) ~= core.getpid() and not alive(pid) then
      local st = core.lstat(base .. "/" .. name)
      if st and st.type == "directory" and st.uid == euid then
        core.remove_tree(base .. "/" .. name)
      end
    end
  end
end

--- A disk-backed ephemeral layer (plan.ephemeral_base): a directory named
--- after this supervisor, holding upper (with the root directory's owner
--- and mode, which overlayfs shows as those of "/") and work. The default
--- layer, a tmpfs, is made by the child (M.child_mounts): nothing on the
--- host.
---@param plan pflask.Plan
function M.prepare(plan)
  local base = plan.ephemeral and plan.ephemeral_base
  if not base then return end
  M.sweep_ephemeral(base)
  local dir = perr.check("--ephemeral-dir",
    core.mkdtemp(string.format("%s/%s%d.%d.XXXXXX", base, EPHEMERAL_PREFIX, core.getpid(), pid_namespace())))
  plan.ephemeral_dir = dir
  perr.check("--ephemeral-dir", core.mountpoint(dir, "/upper", "directory"))
  perr.check("--ephemeral-dir", core.mountpoint(dir, "/work", "directory"))
  local st = perr.check("--ephemeral", core.stat(plan.root))
  perr.check("--ephemeral-dir", core.chmod(dir .. "/upper", st.mode))
  if core.geteuid() == 0 then
    perr.check("--ephemeral-dir", core.chown(dir .. "/upper", st.uid, st.gid))
  end
end

--- Bind a host device node where mknod is not allowed (user namespaces).
local function make_device(root, name, major, minor)
  local path = "/dev/" .. name
  if core.mknod(root, path, "char", major, minor, 438) then return end -- 0666
  perr.check("/dev", core.mountpoint(root, path, "file"))
  perr.check("/dev", core.bind{ root = root, target = path, source = path, recursive = false })
end

--- A private /dev: tmpfs with the standard nodes, a devpts instance, shm,
--- the fd links, and the console when the container has a pty.
local function populate_dev(root, plan)
  perr.check("/dev", core.mount{ root = root, target = "/dev", fstype = "tmpfs",
                                 options = "nosuid,mode=0755,size=65536k" })
  for _, d in ipairs(DEVICES) do make_device(root, d[1], d[2], d[3]) end
  perr.check("/dev/pts", core.mountpoint(root, "/dev/pts", "directory"))
  perr.check("/dev/pts", core.mount{ root = root, target = "/dev/pts", fstype = "devpts", source = "devpts",
                                     options = "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620" })
  perr.check("/dev/shm", core.mountpoint(root, "/dev/shm", "directory"))
  perr.check("/dev/shm", core.mount{ root = root, target = "/dev/shm", fstype = "tmpfs",
                                     options = "nosuid,nodev,mode=1777" })
  for _, link in ipairs(DEV_LINKS) do
    perr.check("/dev", core.symlink(root, link[2], "/dev/" .. link[1]))
  end
  -- The container's own pty when it has one (plan.console, set by the
  -- terminal concern), else none: never a terminal of the host.
  local tty = plan.console
  if tty then
    perr.check("/dev/console", core.mountpoint(root, "/dev/console", "file"))
    perr.check("/dev/console", core.bind{ root = root, target = "/dev/console", source = tty, recursive = false })
  end
end

-- Kernel interfaces a container has no business with, left as the OCI
-- default profile (runc, crun, podman) and systemd-nspawn leave them, in
-- every container whatever its user namespace maps: these files leak
-- kernel memory, keys or the host's timing (masked by /dev/null), these
-- directories describe or drive the host's hardware (masked by an empty
-- read-only tmpfs), and the kernel's tunables are read-only (the
-- container's own /proc/sys/net excepted, see protect_proc). Kernels
-- differ in what they have: only what exists is masked.
local PROC_MASKED_FILES = {
  "/proc/kcore", "/proc/kallsyms", "/proc/keys", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/proc/latency_stats",
}
local PROC_MASKED_DIRS = { "/proc/acpi", "/proc/asound", "/proc/scsi" }
local PROC_READONLY = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/apm", "/proc/sysrq-trigger" }
local SYS_MASKED_DIRS = { "/sys/firmware", "/sys/devices/virtual/powercap" }

--- Does path exist inside root (resolved there, nothing created)?
local function exists(root, path)
  return core.lookup(root, path) ~= nil
end

--- An empty tmpfs, then read-only: nothing can be created in it. (No
--- mount options: without a --chroot nothing else needs libmount, whose
--- loading would double the start-up cost of a plain container.)
local function mask_dirs(root, list)
  for _, dir in ipairs(list) do
    if exists(root, dir) then
      perr.check(dir, core.mount{ root = root, target = dir, fstype = "tmpfs", source = "tmpfs" })
      perr.check(dir, core.set_readonly{ root = root, target = dir })
    end
  end
end

--- Mask and freeze a freshly mounted /proc (inside root): /proc/sys
--- read-only, with the container's own /proc/sys/net writable when it has
--- a network namespace of its own (its sysctls then act on that
--- namespace only), then PROC_READONLY, PROC_MASKED_*.
local function protect_proc(root, plan)
  perr.check("/proc/sys", core.bind{ root = root, target = "/proc/sys", readonly = true, recursive = false })
  if plan.namespaces.net and exists(root, "/proc/sys/net") then
    -- A bind inherits the read-only flag of the mount it copies.
    perr.check("/proc/sys/net", core.bind{ root = root, target = "/proc/sys/net", recursive = false })
    perr.check("/proc/sys/net", core.set_readonly{ root = root, target = "/proc/sys/net", readonly = false })
  end
  for _, p in ipairs(PROC_READONLY) do
    if exists(root, p) then
      perr.check(p, core.bind{ root = root, target = p, readonly = true, recursive = false })
    end
  end
  -- /dev/null of the host (the container's /dev is not there yet): a
  -- device node ignores its mount's flags, so the bind stays writable;
  -- reads give nothing, writes go nowhere.
  for _, p in ipairs(PROC_MASKED_FILES) do
    if exists(root, p) then
      perr.check(p, core.bind{ root = root, target = p, source = "/dev/null", recursive = false })
    end
  end
  mask_dirs(root, PROC_MASKED_DIRS)
end

--- /proc for the new pid namespace, masked (protect_proc).
local function mount_proc(root, plan)
  perr.check("/proc", core.mount{ root = root, target = "/proc", fstype = "proc",
                                  options = "nosuid,nodev,noexec" })
  protect_proc(root, plan)
end

--- /sys read-only: a sysfs of our own where the kernel allows it (it
--- needs a network namespace owned by our user namespace), else the
--- host's, bound read-only; the firmware's and power capping's
--- directories masked.
local function mount_sys(root)
  if not core.mount{ root = root, target = "/sys", fstype = "sysfs", options = "ro,nosuid,nodev,noexec" } then
    perr.check("/sys", core.bind{ root = root, target = "/sys", source = "/sys", readonly = true })
  end
  mask_dirs(root, SYS_MASKED_DIRS)
end

local function tmpfs_options(m, plan)
  if m.options then return m.options end
  -- A tmp directory is shared by everyone; anything else (a home) belongs
  -- to the user the command runs as.
  if m.target:match("/tmp/*$") then return "mode=1777" end
  if plan.user then return string.format("mode=0755,uid=%d,gid=%d", plan.user.uid, plan.user.gid) end
  return "mode=0755"
end

local function apply_mount(m, root, plan)
  local step = "--mount: " .. m.type .. " " .. m.target
  if plan.root then
    perr.check(step, core.mountpoint(root, m.target, m.kind or "directory"))
  end
  if m.type == "bind" then
    perr.check(step, core.bind{ root = root, target = m.target, source = m.source, readonly = m.readonly })
  elseif m.type == "tmp" then
    perr.check(step, core.mount{ root = root, target = m.target, fstype = "tmpfs", source = "tmpfs",
                                 options = tmpfs_options(m, plan) })
  else
    perr.check(step, core.overlay{ root = root, target = m.target, upper = m.upper, work = m.work })
  end
end

--- Is path a directory inside root (resolved there)?
local function has_directory(root, path)
  return core.lookup(root, path) == "directory"
end

--- Child, before pivot_root: the ephemeral layer, the user's mounts in
--- order, then /proc, and with a root /dev and /sys.
---@param plan pflask.Plan
function M.child_mounts(plan)
  local root = plan.root or "/"
  if plan.ephemeral then
    local dir = plan.ephemeral_dir
    perr.check("--ephemeral", core.ephemeral{ root = root, upper = dir and dir .. "/upper",
                                              work = dir and dir .. "/work" })
  end
  -- A mount into /dev (a device bound in: --mount=bind:/dev/fuse:/dev/fuse)
  -- goes onto the container's /dev, after it is made below.
  local function in_dev(m) return plan.root and (m.target == "/dev" or m.target:sub(1, 5) == "/dev/") end
  for _, m in ipairs(plan.mounts) do
    if not in_dev(m) then apply_mount(m, root, plan) end
  end
  local ns = plan.namespaces
  -- A fresh /proc shows the new pid namespace; a root needs one anyway. It
  -- is mounted before pivot_root: in a user namespace the kernel allows a
  -- new proc only while another is fully visible in the mount namespace.
  if plan.root then
    -- pflask adds nothing to the root filesystem itself: a root without
    -- one of these directories goes without that filesystem.
    if has_directory(root, "/proc") then mount_proc(root, plan) end
    if has_directory(root, "/sys") then mount_sys(root) end
    if has_directory(root, "/dev") then populate_dev(root, plan) end
    for _, m in ipairs(plan.mounts) do
      if in_dev(m) then apply_mount(m, root, plan) end
    end
  elseif ns.mount then
    -- The host's /proc: no root of the container's to resolve it in.
    if ns.pid then perr.check("/proc", core.mount_proc("/proc")) end
    -- Without a pid namespace the host's own /proc, seen through the
    -- container's mount namespace: masked there, not on the host.
    if exists("/", "/proc/sys") then protect_proc("/", plan) end
  end
end

--- Remove a disk-backed ephemeral layer (a tmpfs one went with the
--- container's mount namespace).
---@param plan pflask.Plan
function M.cleanup(plan)
  if plan.ephemeral_dir then
    core.remove_tree(plan.ephemeral_dir)
    plan.ephemeral_dir = nil
  end
end

return M
