-- The filesystem concern (see container.lua, CONCERNS): --mount,
-- --ephemeral, --read-only, a root made from nothing (a first tmp on "/"),
-- and a usable system inside a --chroot (/proc, /sys, /dev, /run).
--
-- Everything is mounted by the child before pivot_root, in this order:
-- every host path the mounts take is opened first (a later mount cannot
-- hide it), then the root (ephemeral, from nothing, or bound on itself),
-- pflask's own filesystems, the user's mounts in order, and the root made
-- read-only last. Targets are resolved inside the new root (pflask.core
-- never follows a symlink of that tree out of it), so a hostile root
-- filesystem cannot make pflask mount or create anything on the host;
-- without a root, mount points are created only inside a tmp or overlay
-- this container mounted, never on the host's own filesystem.

local core = require "pflask.core"
local perr = require "pflask.error"
local absolute = require("pflask.path").absolute
local read_file = require("pflask.path").read_file

local M = {}

-- pflask.Mount: see pflask.spec.mount. A planned mount (plan.mounts[i])
-- keeps the spec's fields, with paths made absolute and targets taken
-- inside the root, plus:
--   kind  "directory"|"file": what its mount point is (a bind's source's)
--   base  without a root: the tmp or overlay pflask mounted earlier that
--         the target is inside (its mount point is created there), or nil
--         when the target must exist on the host

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

local TYPES = "bind, tmp, overlay, dir, symlink, file, proc, dev"

-- Types that create their target rather than mount on it.
local CREATES = { dir = true, symlink = true, file = true }

-- Default targets.
local DEFAULT_TARGET = { proc = "/proc", dev = "/dev" }

-- The most a file entry copies from its source.
local MAX_FILE = 16 * 1024 * 1024

local function optional_boolean(m, field)
  local v = m[field]
  if v ~= nil and type(v) ~= "boolean" then fail("%s field '%s' must be a boolean", m.type, field) end
  return v or nil
end

local function check_mode(m, default)
  local v = m.mode
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 0 or v > 4095 then
    fail("%s '%s': mode must be an integer from 0 to 07777", m.type, tostring(m.target))
  end
  return v
end

--- Is path under (or at) dir? Both absolute and normalised by the caller.
local function under(path, dir)
  if dir == "/" then return true end
  return path == dir or path:sub(1, #dir + 1) == dir .. "/"
end

--- Normalise an absolute path lexically: no "." components, no repeated
--- or trailing slashes, ".." removed with the component before it and
--- never above "/" (as resolving inside a root treats it). A target is
--- then judged "inside a tmp" on the path it is created at.
local function normalise(p)
  local parts = {}
  for c in p:gmatch("[^/]+") do
    if c == ".." then
      parts[#parts] = nil
    elseif c ~= "." then
      parts[#parts + 1] = c
    end
  end
  return "/" .. table.concat(parts, "/")
end

--- Check one mount and resolve its paths; nothing is created. Returns nil
--- for an optional bind whose source is missing. bases: the targets of the
--- tmp and overlay mounts planned so far (no root only).
local function plan_mount(m, plan, bases)
  if type(m) ~= "table" then fail("each mount must be a table") end
  if type(m.type) ~= "string" then fail("each mount needs a type (%s)", TYPES) end
  local target = m.target
  if target == nil then target = DEFAULT_TARGET[m.type] end
  if type(target) ~= "string" or target == "" then
    fail("%s needs a target", m.type)
  end
  if target:sub(1, 1) ~= "/" then fail("target '%s' must be an absolute path", target) end
  local out = { type = m.type, target = normalise(inside_root(target, plan.root)) }
  local rooted = plan.root or plan.tmp_root
  if m.type == "bind" then
    if type(m.source) ~= "string" or m.source == "" then fail("bind needs a source") end
    out.source = absolute(m.source)
    out.readonly = optional_boolean(m, "readonly") or false
    out.nosuid = optional_boolean(m, "nosuid")
    out.nodev = optional_boolean(m, "nodev")
    out.noexec = optional_boolean(m, "noexec")
    out.optional = optional_boolean(m, "optional")
    local st = core.stat(out.source)
    if not st then
      if out.optional then return nil end
      fail("bind source '%s' does not exist", m.source)
    end
    out.kind = st.type == "directory" and "directory" or "file"
    if out.target == "/" then
      local rst = plan.root and core.stat(plan.root)
      if rst and rst.dev == st.dev and rst.ino == st.ino and out.readonly
         and not (out.nosuid or out.nodev or out.noexec) then
        -- The classic way to ask for a read-only root: do just that.
        plan.readonly_root = true
        return nil
      end
      fail("bind target '/' would replace the root (use --chroot=%s, and --read-only for a read-only root)",
           m.source)
    end
  elseif m.type == "tmp" then
    if m.options ~= nil and type(m.options) ~= "string" then fail("tmp options must be a string") end
    out.options = m.options
    if out.target == "/" then
      fail("tmp on '/' makes a root from nothing: only as the first mount, without --chroot")
    end
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
  elseif m.type == "dir" then
    out.mode = check_mode(m, nil)
  elseif m.type == "symlink" then
    if type(m.to) ~= "string" or m.to == "" then fail("symlink '%s' needs 'to', what it points to", target) end
    out.to = m.to
  elseif m.type == "file" then
    if (m.content == nil) == (m.source == nil) then
      fail("file '%s' needs either content or source", target)
    end
    if m.content ~= nil and type(m.content) ~= "string" then fail("file '%s': content must be a string", target) end
    out.content = m.content
    if m.source ~= nil then
      if type(m.source) ~= "string" or m.source == "" then fail("file '%s': source must be a path", target) end
      out.source = absolute(m.source)
      local st = core.stat(out.source)
      if not st then fail("file source '%s' does not exist", m.source) end
      if st.type ~= "file" then fail("file source '%s' is not a regular file", m.source) end
      if st.size > MAX_FILE then fail("file source '%s' is larger than %d bytes", m.source, MAX_FILE) end
    end
    out.mode = check_mode(m, 420) -- 0644
  elseif m.type == "proc" or m.type == "dev" then
    -- Nothing else to check.
  else
    fail("'%s' is not a mount type (%s)", tostring(m.type), TYPES)
  end
  if CREATES[m.type] and out.target == "/" then fail("%s cannot be '/'", m.type) end
  if not rooted then
    -- Without a new root, a missing mount point could only be created on
    -- the host's own filesystem: it may be created inside a tmp or
    -- overlay pflask mounted for this container, else it must exist.
    local base
    for _, b in ipairs(bases) do
      if under(out.target, b) and (not base or #b > #base) then base = b end
    end
    if CREATES[m.type] then
      if not base or base == out.target then
        fail("%s '%s' can only be made inside --chroot or inside a tmp or overlay mounted before it",
             m.type, target)
      end
    elseif not base and not core.stat(out.target) then
      fail("%s target '%s' does not exist (mount points are created only inside --chroot, or inside a tmp or overlay mounted before it)",
           m.type, target)
    end
    out.base = base
    if m.type == "tmp" or m.type == "overlay" then bases[#bases + 1] = out.target end
  end
  return out
end

--- A root made from nothing: the spec's first mount is a tmp on "/".
local function plan_tmp_root(mounts, plan)
  local first = mounts[1]
  if type(first) ~= "table" or first.type ~= "tmp" or first.target ~= "/" then return false end
  if plan.root then
    fail("tmp on '/' makes a root from nothing: leave --chroot out")
  end
  if first.options ~= nil and type(first.options) ~= "string" then fail("tmp options must be a string") end
  plan.tmp_root = { options = first.options or "mode=0755" }
  return true
end

---@param spec pflask.Spec
---@param plan pflask.Plan
function M.plan(spec, plan)
  plan.mounts = {}
  local mounts = spec.mounts or {}
  if type(mounts) ~= "table" then fail("must be a list of mounts") end
  if #mounts > 0 and not plan.namespaces.mount then
    fail("needs a mount namespace (drop --no-mountns)")
  end
  if plan.root then
    -- pivot_root cannot make the current root the new one (EBUSY), and
    -- a "container" of the host's root would be the host.
    local st, rst = core.stat(plan.root), core.stat("/")
    if st and rst and st.dev == rst.dev and st.ino == rst.ino then
      perr.raise(perr.FAILURE, "--chroot: '%s' is the host's own root directory; leave --chroot out to run on the host's filesystem (in a mount namespace of its own)",
                 spec.root)
    end
  end
  local first = plan_tmp_root(mounts, plan) and 2 or 1
  local bases = {}
  for i = first, #mounts do
    local out = plan_mount(mounts[i], plan, bases)
    if out then plan.mounts[#plan.mounts + 1] = out end
  end
  if spec.readonly_root ~= nil and type(spec.readonly_root) ~= "boolean" then
    perr.raise(perr.FAILURE, "--read-only: readonly_root must be a boolean")
  end
  if spec.readonly_root then plan.readonly_root = true end
  -- OCI's linux.maskedPaths and readonlyPaths, on top of pflask's own.
  for _, field in ipairs{ "masked_paths", "readonly_paths" } do
    local list = spec[field]
    if list ~= nil then
      if type(list) ~= "table" then perr.raise(perr.FAILURE, "%s: must be a list of paths", field) end
      if #list > 0 and not plan.namespaces.mount then
        perr.raise(perr.FAILURE, "%s: needs a mount namespace", field)
      end
      for _, p in ipairs(list) do
        if type(p) ~= "string" or p:sub(1, 1) ~= "/" then
          perr.raise(perr.FAILURE, "%s: '%s' is not an absolute path", field, tostring(p))
        end
      end
      plan[field] = list
    end
  end
  if plan.readonly_root and not plan.namespaces.mount then
    perr.raise(perr.FAILURE, "--read-only: needs a mount namespace (drop --no-mountns)")
  end
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

--- A private /dev (at `at`, "/dev" unless a spec's dev entry says
--- otherwise): tmpfs with the standard nodes (where mknod is not allowed,
--- in user namespaces, the host's nodes bound on empty files), a devpts
--- instance, shm, the fd links, and the console when the container has a
--- pty. The nodes, directories and links are made in one core.populate
--- call: `at` resolved and opened once.
local function populate_dev(root, plan, at)
  at = at or "/dev"
  perr.check(at, core.mount{ root = root, target = at, fstype = "tmpfs",
                             options = "nosuid,mode=0755,size=65536k" })
  local entries = {}
  for _, d in ipairs(DEVICES) do entries[#entries + 1] = { "node", d[1], d[2], d[3] } end
  entries[#entries + 1] = { "dir", "pts" }
  entries[#entries + 1] = { "dir", "shm" }
  for _, link in ipairs(DEV_LINKS) do entries[#entries + 1] = { "link", link[1], link[2] } end
  perr.check(at, core.populate(root, at, entries))
  perr.check(at .. "/pts", core.mount{ root = root, target = at .. "/pts", fstype = "devpts", source = "devpts",
                                       options = "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620" })
  perr.check(at .. "/shm", core.mount{ root = root, target = at .. "/shm", fstype = "tmpfs",
                                       options = "nosuid,nodev,mode=1777" })
  -- The container's own pty when it has one (plan.console, set by the
  -- terminal concern), else none: never a terminal of the host.
  local tty = plan.console
  if tty then
    local console = at .. "/console"
    perr.check(console, core.mountpoint(root, console, "file"))
    perr.check(console, core.bind{ root = root, target = console, source = tty, recursive = false })
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

--- Masks of a tree inside root, in order, in one call (core.masks): each
--- path resolved inside root once, what does not exist skipped. "empty":
--- an empty tmpfs, then read-only (nothing can be created in it; no mount
--- options: without a --chroot nothing else needs libmount, whose loading
--- would double the start-up cost of a plain container); "null": the
--- host's /dev/null (the container's /dev is not there yet: a device node
--- ignores its mount's flags, so the bind stays writable; reads give
--- nothing, writes go nowhere); "readonly"/"writable": bound on itself,
--- that mount only, with that flag (a bind inherits the read-only flag of
--- the mount it copies).
local function mask(step, root, list)
  perr.check(step, core.masks(root, list))
end

--- Mask and freeze a freshly mounted /proc (inside root): /proc/sys
--- read-only, with the container's own /proc/sys/net writable when it has
--- a network namespace of its own (its sysctls then act on that
--- namespace only), then PROC_READONLY, PROC_MASKED_*. /proc/sys must be
--- there unless sys_optional (the host's /proc: none at all, nothing to
--- mask).
local function protect_proc(root, plan, at, sys_optional)
  at = at or "/proc"
  local function here(p) return at .. p:sub(6) end
  local masks = { { "readonly", here("/proc/sys"), required = not sys_optional } }
  -- A network namespace joined by path (OCI's namespaces[].path) is the
  -- container's own as much as a new one.
  local own_net = plan.namespaces.net
  for _, j in ipairs(plan.joins or {}) do if j.name == "net" then own_net = true end end
  if own_net then masks[#masks + 1] = { "writable", here("/proc/sys/net") } end
  for _, p in ipairs(PROC_READONLY) do masks[#masks + 1] = { "readonly", here(p) } end
  for _, p in ipairs(PROC_MASKED_FILES) do masks[#masks + 1] = { "null", here(p) } end
  for _, p in ipairs(PROC_MASKED_DIRS) do masks[#masks + 1] = { "empty", here(p) } end
  mask(at, root, masks)
end

--- /proc for the new pid namespace, masked (protect_proc).
local function mount_proc(root, plan, at)
  at = at or "/proc"
  perr.check(at, core.mount{ root = root, target = at, fstype = "proc",
                             options = "nosuid,nodev,noexec" })
  protect_proc(root, plan, at)
end

--- /sys read-only: a sysfs of our own where the kernel allows it (it
--- needs a network namespace owned by our user namespace), else the
--- host's, bound read-only; the firmware's and power capping's
--- directories masked.
local function mount_sys(root)
  if not core.mount{ root = root, target = "/sys", fstype = "sysfs", options = "ro,nosuid,nodev,noexec" } then
    perr.check("/sys", core.bind{ root = root, target = "/sys", source = "/sys", readonly = true })
  end
  local masks = {}
  for i, dir in ipairs(SYS_MASKED_DIRS) do masks[i] = { "empty", dir } end
  mask("/sys", root, masks)
end

local function tmpfs_options(m, plan)
  if m.options then return m.options end
  -- A tmp directory is shared by everyone; anything else (a home) belongs
  -- to the user the command runs as.
  if m.target:match("/tmp/*$") then return "mode=1777" end
  if plan.user then return string.format("mode=0755,uid=%d,gid=%d", plan.user.uid, plan.user.gid) end
  return "mode=0755"
end

local ENOENT = 2

--- Open what every mount takes from the host (bind sources, overlay
--- layers) and read the files to copy, before anything is mounted: a later
--- mount cannot hide them (--mount=tmp:$HOME --mount=bind:$HOME/p:$HOME/p).
--- Returns, per mount index, a table of handles (false: an optional
--- source that is gone).
local function open_sources(plan)
  local opened = {}
  for i, m in ipairs(plan.mounts) do
    if m.type == "bind" then
      local h, msg, errno = core.open_path(m.source)
      if h then
        opened[i] = { source = h }
      elseif m.optional and errno == ENOENT then
        opened[i] = false
      else
        perr.check("--mount: bind source " .. m.source, h, msg, errno)
      end
    elseif m.type == "overlay" then
      opened[i] = {
        upper = perr.check("--mount: overlay upper dir " .. m.upper, core.open_path(m.upper)),
        work = perr.check("--mount: overlay work dir " .. m.work, core.open_path(m.work)),
      }
    elseif m.type == "file" and m.source then
      local f, msg = io.open(m.source, "rb")
      if not f then perr.raise(perr.FAILURE, "--mount: file source %s", msg) end
      local data = f:read(MAX_FILE)
      f:close()
      opened[i] = { content = data or "" }
    end
  end
  return opened
end

local function close_sources(opened)
  for _, o in pairs(opened) do
    if o then
      for _, h in pairs(o) do
        if type(h) ~= "string" then h:close() end
      end
    end
  end
end

--- Where to create m's target from: (dir, path in it). Inside a root, the
--- root; without one, the tmp or overlay pflask mounted that holds it
--- (m.base), so that nothing is created on the host's filesystem.
local function creation_root(m, root)
  if m.base and m.base ~= "/" then
    local rel = m.target:sub(#m.base + 1)
    return m.base, rel == "" and "/" or rel
  end
  return root, m.target
end

local function parent_of(p)
  return p:match("^(.*)/[^/]*$") or ""
end

--- Make m's mount point (kind "directory" or "file") where pflask may
--- create one; elsewhere it must exist.
local function mount_point(m, root, plan, kind, step)
  if plan.root or m.base then
    local dir, rel = creation_root(m, root)
    perr.check(step, core.mountpoint(dir, rel, kind))
  elseif not core.lookup(root, m.target) then
    perr.raise(perr.FAILURE, "%s: target does not exist", step)
  end
end

local function apply_mount(m, root, plan, opened)
  local step = "--mount: " .. m.type .. " " .. m.target
  if m.type == "bind" then
    if not opened then return end -- optional, and its source is gone
    mount_point(m, root, plan, m.kind or "directory", step)
    perr.check(step, core.bind{ root = root, target = m.target, source = opened.source:path(),
                                readonly = m.readonly, nosuid = m.nosuid, nodev = m.nodev,
                                noexec = m.noexec })
  elseif m.type == "tmp" then
    mount_point(m, root, plan, "directory", step)
    perr.check(step, core.mount{ root = root, target = m.target, fstype = "tmpfs", source = "tmpfs",
                                 options = tmpfs_options(m, plan) })
  elseif m.type == "overlay" then
    mount_point(m, root, plan, "directory", step)
    perr.check(step, core.overlay{ root = root, target = m.target, upper = opened.upper:path(),
                                   work = opened.work:path() })
  elseif m.type == "dir" then
    local dir, rel = creation_root(m, root)
    perr.check(step, core.mountpoint(dir, rel, "directory"))
    if m.mode then perr.check(step, core.chmod_in_root(dir, rel, m.mode)) end
  elseif m.type == "symlink" then
    local dir, rel = creation_root(m, root)
    local parent = parent_of(rel)
    if parent ~= "" then perr.check(step, core.mountpoint(dir, parent, "directory")) end
    perr.check(step, core.symlink(dir, m.to, rel))
  elseif m.type == "file" then
    local dir, rel = creation_root(m, root)
    perr.check(step, core.write_in_root(dir, rel, m.content or opened.content))
    perr.check(step, core.chmod_in_root(dir, rel, m.mode))
  elseif m.type == "proc" then
    mount_point(m, root, plan, "directory", step)
    mount_proc(root, plan, m.target)
  elseif m.type == "dev" then
    mount_point(m, root, plan, "directory", step)
    populate_dev(root, plan, m.target)
  end
end

-- Where a root made from nothing is put together: a tmpfs mounted, in the
-- container's own mount namespace only, on the first of these host
-- directories (the sources it takes from the host are open by then).
local TMP_ROOT_AT = { "/tmp", "/mnt", "/media" }

--- A root made from nothing (plan.tmp_root): mount its tmpfs and make it
--- plan.root, in the child's copy of the plan.
local function make_tmp_root(plan)
  for _, at in ipairs(TMP_ROOT_AT) do
    if core.lookup("/", at) == "directory" then
      perr.check("--mount: tmp /", core.mount{ target = at, fstype = "tmpfs", source = "tmpfs",
                                               options = plan.tmp_root.options })
      plan.root = at
      return at
    end
  end
  perr.raise(perr.FAILURE, "--mount: tmp /: no directory to make the root in (%s)", table.concat(TMP_ROOT_AT, ", "))
end

--- pflask's own filesystems inside a --chroot: /proc, /sys, /dev and a
--- fresh /run, their mount points created inside the root when it has none
--- (a static-binary root), as pflask 0.2 and systemd-nspawn do. Something
--- else than a directory there is left alone.
local SYSTEM = {
  { "/proc", function(root, plan) mount_proc(root, plan) end },
  { "/sys", function(root) mount_sys(root) end },
  { "/dev", function(root, plan) populate_dev(root, plan) end },
  { "/run", function(root)
      perr.check("/run", core.mount{ root = root, target = "/run", fstype = "tmpfs", source = "tmpfs",
                                     options = "nosuid,nodev,mode=0755" })
    end },
}

-- Why a mount point may not be made, and the container goes without that
-- filesystem: a dangling symlink is there (resolved inside the root, it
-- leads nowhere), or the root cannot be written (a read-only image, or
-- one the caller does not own, rootless).
local GO_WITHOUT = { [20] = true, [30] = true, [13] = true, [1] = true } -- ENOTDIR, EROFS, EACCES, EPERM

local function mount_system(root, plan)
  for _, s in ipairs(SYSTEM) do
    local kind = core.lookup(root, s[1])
    if kind == nil then
      local ok, msg, errno = core.mountpoint(root, s[1], "directory")
      if ok then kind = "directory" elseif not GO_WITHOUT[errno] then perr.check(s[1], ok, msg, errno) end
    end
    if kind == "directory" then s[2](root, plan) end
  end
end

--- Child, before pivot_root: the sources opened, the root (ephemeral, made
--- from nothing, or bound on itself to be made read-only), pflask's own
--- /proc, /sys, /dev and /run, then the user's mounts in order, so that
--- they can put things into those (a device bound into /dev), and last
--- the root made read-only.
---@param plan pflask.Plan
function M.child_mounts(plan)
  local opened = open_sources(plan)
  if plan.tmp_root then make_tmp_root(plan) end
  local root = plan.root or "/"
  if plan.ephemeral then
    local dir = plan.ephemeral_dir
    perr.check("--ephemeral", core.ephemeral{ root = root, upper = dir and dir .. "/upper",
                                              work = dir and dir .. "/work" })
  elseif plan.readonly_root and plan.root and not plan.tmp_root then
    -- The root directory as a mount of its own: making it read-only then
    -- leaves the filesystem it is on alone.
    perr.check("--read-only", core.bind{ root = root, target = "/" })
  end
  -- The classic overlay on the root itself (overlay:UPPER:ROOT:WORK)
  -- becomes the root: it goes under pflask's filesystems, not over them.
  for i, m in ipairs(plan.mounts) do
    if m.target == "/" then apply_mount(m, root, plan, opened[i]) end
  end
  local ns = plan.namespaces
  -- A fresh /proc shows the new pid namespace; a root needs one anyway. It
  -- is mounted before pivot_root: in a user namespace the kernel allows a
  -- new proc only while another is fully visible in the mount namespace.
  if plan.root and not plan.tmp_root then
    mount_system(root, plan)
  elseif ns.mount and not plan.tmp_root then
    -- The host's /proc: no root of the container's to resolve it in.
    if ns.pid then perr.check("/proc", core.mount_proc("/proc")) end
    -- Without a pid namespace the host's own /proc, seen through the
    -- container's mount namespace: masked there, not on the host.
    protect_proc("/", plan, "/proc", true)
  end
  for i, m in ipairs(plan.mounts) do
    if m.target ~= "/" then apply_mount(m, root, plan, opened[i]) end
  end
  close_sources(opened)
  -- Resolved inside the root (core.lookup, core.bind: a symlink of the
  -- root cannot point them at the host); what does not exist is skipped.
  for _, p in ipairs(plan.readonly_paths or {}) do
    if exists(root, p) then perr.check(p, core.bind{ root = root, target = p, readonly = true }) end
  end
  -- A directory gets an empty tmpfs, anything else /dev/null.
  local hidden = {}
  for i, p in ipairs(plan.masked_paths or {}) do hidden[i] = { "hide", p } end
  if #hidden > 0 then mask("masked_paths", root, hidden) end
  if plan.readonly_root then
    -- The root's own mount, not its submounts (/proc, /dev, a tmp on /tmp).
    perr.check("--read-only", core.set_readonly{ root = root, target = "/" })
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
