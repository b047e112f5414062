-- Helpers for pflask's integration specs: run commands and pflask, make
-- throwaway root filesystems and users, and snapshot host state so specs
-- can check that nothing was left behind.

local M = {}

M.PFLASK = os.getenv("PFLASK") or "build/pflask"
M.SOURCE_DIR = os.getenv("PFLASK_SOURCE_DIR") or "."
M.BUILD_DIR = os.getenv("PFLASK_BUILD_DIR") or "build"

--- path made absolute against the current directory (CTest runs specs
--- from the source tree; a script or a tmux pane starts elsewhere).
---@param path string
---@return string
function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return (M.capture("pwd")) .. "/" .. path
end

--- Quote a string for sh.
---@param s string
---@return string
function M.quote(s)
  if s:match("^[%w%-%./_=:,+@%%]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- argv as one line of sh, each word quoted.
---@param argv string[]
---@return string
function M.join_quoted(argv)
  local out = {}
  for i, a in ipairs(argv) do out[i] = M.quote(a) end
  return table.concat(out, " ")
end
local join_quoted = M.join_quoted

--- Contents of a file, or nil when it cannot be read.
---@param path string
---@return string|nil
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Write (replace) a file; returns its path.
---@param path string
---@param data string
---@return string path
function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

--- Run a shell command line; returns its exit code (128+N for signal N).
---@param cmdline string
---@return integer
function M.sh(cmdline)
  local ok, how, code = os.execute(cmdline)
  if how == "signal" then return 128 + code end
  return code or (ok and 0 or 1)
end

--- Run a shell command line and return its stdout, stripped of the final
--- newline, and its exit code.
function M.capture(cmdline)
  local p = assert(io.popen(cmdline, "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  if how == "signal" then code = 128 + code end
  return (out:gsub("\n$", "")), code
end

---@class pftest.Result
---@field status integer
---@field stdout string
---@field stderr string

---@class pftest.RunOptions
---@field stdin string|nil data for standard input (default: /dev/null)
---@field env table<string,string>|nil variables added to the environment
---@field user string|nil run as this user (runuser)
---@field timeout number|nil seconds, default 60
---@field prefix string|nil raw shell text put before the command

--- Run argv with output captured.
---@param argv string[]
---@param opts pftest.RunOptions|nil
---@return pftest.Result
function M.run(argv, opts)
  opts = opts or {}
  local out, err, input = os.tmpname(), os.tmpname(), os.tmpname()
  M.write_file(input, opts.stdin or "")
  local env = {}
  -- What a run leaves in $TMPDIR (pflask-debuild's layers; a disk-backed
  -- --ephemeral layer, should one land there) goes to this run's own, so
  -- that runs at the same time never see, nor remove, each other's.
  local vars = { TMPDIR = M.run_tmpdir() }
  for k, v in pairs(opts.env or {}) do vars[k] = v end
  for k, v in pairs(vars) do env[#env + 1] = M.quote(k .. "=" .. v) end
  local parts = { "timeout", "-k", "5", tostring(opts.timeout or 60) }
  if opts.user then parts[#parts + 1] = "runuser -u " .. M.quote(opts.user) .. " --" end
  if #env > 0 then parts[#parts + 1] = "env " .. table.concat(env, " ") end
  parts[#parts + 1] = join_quoted(argv)
  local cmdline = table.concat(parts, " ")
  if opts.prefix then cmdline = opts.prefix .. " " .. cmdline end
  -- Files readable by a throwaway user too.
  os.execute("chmod 0666 " .. out .. " " .. err .. " " .. input)
  local status = M.sh(cmdline .. " <" .. input .. " >" .. out .. " 2>" .. err)
  local result = { status = status, stdout = assert(M.read_file(out)), stderr = assert(M.read_file(err)) }
  os.remove(out); os.remove(err); os.remove(input)
  return result
end

--- Run pflask with args (a table; opts as for run, plus opts.pflask to use
--- another executable).
---@param args string[]
---@param opts pftest.RunOptions|nil
---@return pftest.Result
function M.pflask(args, opts)
  local argv = { (opts and opts.pflask) or M.PFLASK }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return M.run(argv, opts)
end

-- Paths this process made (tempdir, run_tmpdir, own): M.mounts() compares
-- only the mounts under them among the shared scratch areas.
local owned = {}

--- Count path as this process's own: mounts under it are compared by
--- M.mounts() even in a shared scratch area such as /tmp.
---@param path string
function M.own(path)
  owned[#owned + 1] = path
  return path
end

--- Poll check every 50 ms until it holds, for about seconds (15 by
--- default); returns whether it held at the last try. For checks a test
--- asserts itself, with its own message.
---@param check fun(): any
---@param seconds number|nil
---@return boolean
function M.eventually(check, seconds)
  for _ = 1, math.ceil((seconds or 15) * 20) do
    if check() then return true end
    M.sh("sleep 0.05")
  end
  return not not check()
end

--- Whether pid is a live process (a zombie is dead: it runs nothing and
--- waits only for its parent, or for a slow init, to reap it).
---@param pid integer|string
---@return boolean
function M.alive(pid)
  local stat = M.read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %(.*%) (%a)") ~= "Z"
end

--- Write a recipe file, recipe.lua in dir, readable by any user; returns
--- its path.
---@param dir string
---@param text string
---@return string
function M.recipe(dir, text)
  local file = dir .. "/recipe.lua"
  M.write_file(file, text)
  M.sh("chmod 0644 " .. file)
  return file
end

--- Poll check every 50 ms for up to 10 s; raise "timeout waiting for
--- WHAT" if it never holds.
---@param what string
---@param check fun(): any
function M.wait_until(what, check)
  for _ = 1, 200 do
    if check() then return end
    M.sh("sleep 0.05")
  end
  error("timeout waiting for " .. what)
end

--- A new empty directory under /tmp (mode 0755).
-- Every directory M.tempdir made, removed when this busted process ends
-- (a finalizer: busted closes its Lua state on exit), so that a spec that
-- fails before its own cleanup, or forgets it, leaves nothing in /tmp. A
-- directory with anything still mounted in it is left alone: removing it
-- would reach into what is mounted there.
local made_dirs = {}

local function has_mounts(dir)
  for line in io.lines("/proc/self/mountinfo") do
    local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
    if mp and (mp == dir or mp:sub(1, #dir + 1) == dir .. "/") then return true end
  end
  return false
end

M._tempdir_sweeper = setmetatable({}, { __gc = function()
  for _, dir in ipairs(made_dirs) do
    if not has_mounts(dir) then os.execute("rm -rf '" .. dir .. "' 2>/dev/null") end
  end
end })

function M.tempdir(tag)
  local dir = M.capture("mktemp -d /tmp/pftest-" .. (tag or "x") .. ".XXXXXX")
  assert(dir:match("^/tmp/pftest%-[%w_-]+%.[%w]+$"), "mktemp gave " .. dir)
  made_dirs[#made_dirs + 1] = dir
  M.sh("chmod 0755 " .. dir)
  return M.own(dir)
end

local run_tmpdir
-- Removes the run's $TMPDIR when busted ends (it closes the Lua state):
-- --one-file-system, so that a mount leaked into it is never descended.
local run_tmpdir_guard = setmetatable({}, { __gc = function()
  if run_tmpdir then os.execute("rm -rf --one-file-system " .. M.quote(run_tmpdir)) end
end })
M._run_tmpdir_guard = run_tmpdir_guard

--- This process's own $TMPDIR (mode 1777, made on first use): every
--- command run through M.run gets it, so whatever pflask puts in $TMPDIR
--- lands there and not among other runs' in /tmp.
---@return string
function M.run_tmpdir()
  if not run_tmpdir then
    run_tmpdir = M.own(M.capture("mktemp -d /tmp/pftest-run.XXXXXX"))
    M.sh("chmod 1777 " .. run_tmpdir)
  end
  return run_tmpdir
end

--- pflask-ephemeral.* directories now in this run's $TMPDIR, as a set
--- (--ephemeral layers are a tmpfs of the container's own unless
--- --ephemeral-dir says otherwise: none belongs there).
---@return table<string,boolean>
function M.ephemeral_dirs()
  local set = {}
  local out = M.capture("ls -d " .. M.run_tmpdir() .. "/pflask-ephemeral.* 2>/dev/null")
  for d in out:gmatch("[^\n]+") do set[d] = true end
  return set
end

--- Whether path names an existing file, following symlinks (test -e).
---@param path string
---@return boolean
function M.exists(path)
  return M.sh("test -e " .. M.quote(path)) == 0
end

--- Whether path names anything, a dangling symlink too (test -e || test -L):
--- what a hostile tree or a container could have left.
---@param path string
---@return boolean
function M.lexists(path)
  return M.sh("test -e " .. M.quote(path) .. " || test -L " .. M.quote(path)) == 0
end

--- Everything about a tree that a container could change, one sorted line
--- an entry: path, type, mode, owner, group, size, modification time (not
--- with opts.times = false) and link target.
---@param dir string
---@param opts {times: boolean|nil}|nil
---@return string
function M.snapshot(dir, opts)
  local fmt = (opts and opts.times == false) and "%p %y %m %U %G %s %l\\n" or "%p %y %m %U %G %s %T@ %l\\n"
  return (M.capture("cd " .. M.quote(dir) .. " && find . -printf '" .. fmt .. "' | sort"))
end

--- mountinfo text -> { [mountpoint] = {root=, options=, fstype=, source=,
--- super=, line=} }; a mount point mounted over again: the last one wins.
---@param text string
---@return table<string, table>
function M.parse_mountinfo(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    local sep
    for i = 7, #f do if f[i] == "-" then sep = i break end end
    if sep then
      t[f[5]] = { root = f[4], options = f[6], fstype = f[sep + 1], source = f[sep + 2], super = f[sep + 3],
        line = line }
    end
  end
  return t
end

--- Whether s is exactly one line ending in a newline: the shape of every
--- error pflask reports.
---@param s string
---@return boolean
function M.one_line(s)
  return select(2, s:gsub("\n", "")) == 1 and s:sub(-1) == "\n"
end

--- The host's (this process's) namespace of a kind, "mnt:[4026531841]".
---@param kind string mnt, pid, net, user, ...
---@return string
function M.ns_id(kind)
  return (M.capture("readlink /proc/self/ns/" .. kind))
end

--- A hexadecimal field of a /proc/PID/status text (CapEff, SigBlk, ...) as
--- a number; nil when absent.
---@param text string|nil
---@param field string
---@return integer|nil
function M.status_field(text, field)
  return tonumber((text or ""):match(field .. ":%s*(%x+)"), 16)
end

--- Remove a tree made by a test. Refuses anything outside /tmp/pftest-.
function M.rm_rf(path)
  assert(path:match("^/tmp/pftest%-"), "refusing to remove " .. path)
  M.sh("rm -rf " .. M.quote(path))
end

local BUSYBOX = "/bin/busybox"
local APPLETS = { "sh", "cat", "echo", "env", "id", "hostname", "ls", "pwd", "readlink",
                  "sleep", "true", "false", "kill", "ps", "mount", "grep", "test", "touch", "wc" }

--- A minimal root filesystem made of a static busybox: /bin with applets,
--- /etc/passwd and /etc/group with root and a user "alice" (uid 1000 by
--- default), /proc, /sys, /dev, /run, /tmp, /root, /home/alice.
---@param dir string
---@param opts {uid: integer|nil, gid: integer|nil, shell: string|nil}|nil
function M.make_rootfs(dir, opts)
  opts = opts or {}
  local uid, gid = opts.uid or 1000, opts.gid or 1000
  assert(M.sh("mkdir -p " .. dir .. "/bin " .. dir .. "/etc " .. dir .. "/proc " .. dir .. "/dev " .. dir .. "/sys " .. dir .. "/run "
    .. dir .. "/tmp " .. dir .. "/root " .. dir .. "/home/alice") == 0)
  assert(M.sh("cp " .. BUSYBOX .. " " .. dir .. "/bin/busybox") == 0)
  for _, applet in ipairs(APPLETS) do
    M.sh("ln -sf busybox " .. dir .. "/bin/" .. applet)
  end
  M.write_file(dir .. "/etc/passwd", table.concat({
    "root:x:0:0:root:/root:" .. (opts.shell or "/bin/sh"),
    string.format("alice:x:%d:%d:Alice:/home/alice:/bin/sh", uid, gid),
    "", }, "\n"))
  M.write_file(dir .. "/etc/group", table.concat({
    "root:x:0:", string.format("alice:x:%d:", gid),
    string.format("staff:x:%d:alice", gid + 1), "", }, "\n"))
  M.sh(string.format("chown %d:%d %s/home/alice && chmod 1777 %s/tmp", uid, gid, dir, dir))
  return dir
end

-- Places where other test runs (other specs under `ctest -j`, other
-- checkouts) mount and unmount at any time: /tmp (their tempdirs, and
-- pflask's --ephemeral layers), /run/netns (`ip netns add`), the
-- debootstrap cache (debootstrap mounts /proc in its target), and the
-- container engines' storage (podman and containerd, which the OCI specs
-- drive, mount their containers' roots and shm there).
local SCRATCH = { "/tmp/", "/var/tmp/", "/run/netns/", "/var/cache/pflask-test/",
                  "/run/containers/", "/var/lib/containers/", "/run/containerd/",
                  "/var/lib/containerd/" }

local function under(path, dir)
  if dir:sub(-1) ~= "/" then dir = dir .. "/" end
  return path == dir:sub(1, -2) or path:sub(1, #dir) == dir
end

-- mountinfo escapes blanks and backslashes as \ooo.
local function unescape(s)
  return (s:gsub("\\(%d%d%d)", function(o) return string.char(tonumber(o, 8)) end))
end

--- Whether a mount at mountpoint could be this run's doing: anywhere but
--- the shared scratch areas, and there only under this process's own paths.
---@param mountpoint string
---@return boolean
function M.mine(mountpoint)
  for _, d in ipairs(owned) do if under(mountpoint, d) then return true end end
  for _, d in ipairs(SCRATCH) do if under(mountpoint, d) then return false end end
  return true
end

--- The host's mounts as a sorted list of "mountpoint fstype source" lines,
--- to compare before and after a container. Only the mounts this run could
--- have made (M.mine): the whole table outside the shared scratch areas,
--- and this process's own directories inside them; so specs running at the
--- same time do not see each other's mounts.
---@return string
function M.mounts()
  local lines = {}
  for line in io.lines("/proc/self/mountinfo") do
    local fields = {}
    for f in line:gmatch("%S+") do fields[#fields + 1] = f end
    local sep
    for i, f in ipairs(fields) do if f == "-" then sep = i break end end
    if M.mine(unescape(fields[5])) then
      lines[#lines + 1] = table.concat({ fields[5], fields[sep + 1], fields[sep + 2] }, " ")
    end
  end
  table.sort(lines)
  return table.concat(lines, "\n")
end

--- Pids of processes whose command line contains marker.
---@param marker string
---@return integer count
function M.count_processes(marker)
  -- An extended regex that matches marker but not its own text: the first
  -- character in brackets, the rest escaped. So neither the shell running
  -- pgrep nor the copies of it that a pipeline forks (same command line,
  -- other pids: `grep -vx $$` missed them under load) count.
  local re = marker:sub(2):gsub("[%.%[%]%(%)%*%+%?{}|%^%$\\]", "\\%0")
  local first = marker:sub(1, 1)
  if first:match("[%]%^\\]") then first = "\\" .. first else first = "[" .. first .. "]" end
  local out = M.capture("pgrep -f -- " .. M.quote(first .. re) .. " | wc -l")
  return tonumber(out) or 0
end

--- A string that only the processes of one test carry in their command
--- line, usable as a sleep duration: `sleep 1000.<digits>`.
---@return string
function M.marker()
  return string.format("1000.%d%06d", os.time() % 100000, math.random(0, 999999))
end

--- Processes whose command line contains mark, after giving them up to
--- 5 s to go (a killed container's processes end at the scheduler's pace,
--- which a loaded machine slows; 1 s in the copies this replaced).
---@param mark string
---@return integer
function M.leftovers(mark)
  local n = M.count_processes(mark)
  for _ = 1, 100 do
    if n == 0 then break end
    M.sh("sleep 0.05")
    n = M.count_processes(mark)
  end
  return n
end

--- Shell functions for test scripts that wait on what a container does,
--- each giving up after 10 s with "timeout waiting for ..." on stdout and
--- status 1:
---   waitfor FILE TEXT   until FILE contains TEXT (grep)
---   waitproc PATTERN    until a process's command line matches (pgrep -f)
---   waitfile FILE       until FILE exists
M.SH_WAIT = [[
waitfor() {
  n=0
  until grep -q "$2" "$1" 2>/dev/null; do
    n=$((n + 1)); [ $n -ge 500 ] && { echo "timeout waiting for $2"; return 1; }
    sleep 0.02
  done
}
waitproc() {
  n=0
  until pgrep -f -- "$1" >/dev/null; do
    n=$((n + 1)); [ $n -ge 500 ] && { echo "timeout waiting for process $1"; return 1; }
    sleep 0.02
  done
}
waitfile() {
  n=0
  until [ -e "$1" ]; do
    n=$((n + 1)); [ $n -ge 500 ] && { echo "timeout waiting for $1"; return 1; }
    sleep 0.02
  done
}
]]

--- A throwaway unprivileged user, removed with remove_user. Returns its
--- name, uid and gid.
function M.create_user()
  -- useradd fails while another useradd/userdel/usermod holds
  -- /etc/passwd's lock (specs running at the same time): try again, with
  -- a new name in case the clash was the name.
  for attempt = 1, 40 do
    local name = string.format("pft%d%05d", os.time() % 100000, math.random(0, 99999))
    if M.sh("useradd --create-home --shell /bin/sh " .. name .. " 2>/dev/null") == 0 then
      local uid = tonumber((M.capture("id -u " .. name)))
      local gid = tonumber((M.capture("id -g " .. name)))
      return name, uid, gid
    end
    M.sh("sleep 0." .. math.random(1, 9))
  end
  error("useradd failed 40 times")
end

function M.remove_user(name)
  -- pflask's runtime directory of a user without /run/user/UID, and the
  -- user's tmux sockets (tests/fixtures/tmux.lua with opts.user).
  local uid = (M.capture("id -u " .. name .. " 2>/dev/null")):match("^%d+$")
  if uid then M.sh("rm -rf /tmp/pflask-" .. uid .. " /tmp/tmux-" .. uid) end
  M.sh("pkill -KILL -u " .. name .. " 2>/dev/null")
  -- And the System V semaphore set of that directory (pflask's cgroup
  -- census), as logind's RemoveIPC does when a user logs out.
  if uid then
    for id in M.capture("awk '$5 == " .. uid .. " { print $2 }' /proc/sysvipc/sem 2>/dev/null"):gmatch("%d+") do
      M.sh("ipcrm -s " .. id .. " 2>/dev/null")
    end
  end
  for _ = 1, 40 do
    -- 6: no such user (already gone); anything else but 0: a lock, retry.
    local code = M.sh("userdel --remove " .. name .. " 2>/dev/null")
    if code == 0 or code == 6 then return end
    -- 8: a process still has the user's uid. When every one left is a
    -- zombie (a killed pflask's child, orphaned to an init that reaps
    -- slowly or never, as on some test machines), nothing runs as the
    -- user any more: remove it anyway, or it is left behind for good.
    if code == 8 and M.capture("ps -o stat= -u " .. name .. " 2>/dev/null | grep -vc '^Z'") == "0" then
      code = M.sh("userdel --force --remove " .. name .. " 2>/dev/null")
      if code == 0 or code == 6 then return end
    end
    M.sh("pkill -KILL -u " .. name .. " 2>/dev/null; sleep 0." .. math.random(1, 9))
  end
end

-- usermod, retried while another user tool holds the lock.
local function usermod(args)
  for _ = 1, 40 do
    if M.sh("usermod " .. args .. " 2>/dev/null") == 0 then return true end
    M.sh("sleep 0." .. math.random(1, 9))
  end
  return false
end

--- A user's ranges in /etc/subuid (or /etc/subgid) as { {start, count} }.
---@param name string
---@param file string|nil default /etc/subuid
function M.subids(name, file)
  local list = {}
  for line in io.lines(file or "/etc/subuid") do
    local owner, start, count = line:match("^([^:]+):(%d+):(%d+)$")
    if owner == name then list[#list + 1] = { tonumber(start), tonumber(count) } end
  end
  return list
end

--- Give a user exactly these subordinate uid and gid ranges (none: nil),
--- through usermod, which takes shadow's locks on /etc/subuid and
--- /etc/subgid: specs and user tools running at the same time never lose
--- each other's edits. The gid range starts at gid_start if given, else
--- at start.
---@param name string
---@param start integer|nil
---@param count integer|nil
---@param gid_start integer|nil
function M.set_subids(name, start, count, gid_start)
  local del = {}
  for _, r in ipairs(M.subids(name, "/etc/subuid")) do
    del[#del + 1] = string.format("--del-subuids %d-%d", r[1], r[1] + r[2] - 1)
  end
  for _, r in ipairs(M.subids(name, "/etc/subgid")) do
    del[#del + 1] = string.format("--del-subgids %d-%d", r[1], r[1] + r[2] - 1)
  end
  if #del > 0 then assert(usermod(table.concat(del, " ") .. " " .. name), "usermod --del-subuids failed") end
  if start then
    local range = string.format("%d-%d", start, start + count - 1)
    gid_start = gid_start or start
    local granges = string.format("%d-%d", gid_start, gid_start + count - 1)
    assert(usermod("--add-subuids " .. range .. " --add-subgids " .. granges .. " " .. name),
      "usermod --add-subuids failed")
  end
end

--- A copy of the pflask executable that any user can run, wherever the
--- build tree is (the executable embeds its Lua, so it is self-contained).
---@return string path
---@return string dir to remove afterwards
function M.public_pflask()
  local dir = M.tempdir("bin")
  assert(M.sh("cp " .. M.quote(M.PFLASK) .. " " .. dir .. "/pflask && chmod 0755 " .. dir .. "/pflask") == 0)
  return dir .. "/pflask", dir
end

--- PATH for commands run as a throwaway user: the caller's own would be
--- root's (runuser keeps the environment), with directories under /root
--- the user may not search, where execvp reports EACCES (126) for a
--- missing command instead of ENOENT (127).
M.USER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

---@class pftest.RootlessUser
---@field name string
---@field uid integer
---@field gid integer
---@field home string its home directory (from the passwd database)
---@field exe string a copy of pflask it can run (pft.public_pflask)
---@field bindir string the directory of that copy
local RootlessUser = {}
RootlessUser.__index = RootlessUser

--- A throwaway unprivileged user and a copy of pflask it can run: the
--- scaffolding of every rootless spec. Make it in setup (or in the test),
--- remove it with :remove() in teardown (or the test's one finally); if
--- the copy cannot be made, the user is removed before the error goes on.
---@return pftest.RootlessUser
function M.rootless_user()
  local u = setmetatable({}, RootlessUser)
  u.name, u.uid, u.gid = M.create_user()
  local ok, err = pcall(function()
    u.home = M.capture("getent passwd " .. u.name .. " | cut -d: -f6")
    u.exe, u.bindir = M.public_pflask()
  end)
  if not ok then
    M.remove_user(u.name)
    error(err, 0)
  end
  return u
end

---@class pftest.UserRunOptions
---@field env table<string,string|false>|nil added to PATH=M.USER_PATH; false drops a variable
---@field login boolean|nil HOME and USER of the user too
---@field stdin string|nil as for M.run
---@field timeout number|nil as for M.run
---@field prefix string|nil shell text between `cd /` and the command (setpriv ...)

--- Run the user's copy of pflask with args, as the user, from /.
---@param args string[]
---@param opts pftest.UserRunOptions|nil
---@return pftest.Result
function RootlessUser:pflask(args, opts)
  opts = opts or {}
  local env = { PATH = M.USER_PATH }
  if opts.login then env.HOME, env.USER = self.home, self.name end
  for k, v in pairs(opts.env or {}) do env[k] = v or nil end
  return M.pflask(args, { user = self.name, pflask = self.exe, env = env, stdin = opts.stdin, timeout = opts.timeout,
    prefix = "cd / &&" .. (opts.prefix and (" " .. opts.prefix) or "") })
end

--- Shell text that runs argv as the user, from /, with PATH and HOME.
---@param argv string[]
---@return string
function RootlessUser:shell(argv)
  return "cd / && runuser -u " .. self.name .. " -- env PATH=" .. M.USER_PATH .. " HOME=" .. M.quote(self.home)
    .. " " .. join_quoted(argv)
end

--- A temporary directory owned by the user (pft.tempdir: swept when
--- busted ends, unless something is mounted in it).
---@param tag string|nil
---@return string
function RootlessUser:dir(tag)
  local d = M.tempdir(tag)
  assert(M.sh("chown " .. self.name .. ": " .. d) == 0)
  return d
end

--- Remove the user (its processes, files, runtime directories) and the
--- copy of pflask; idempotent.
function RootlessUser:remove()
  if self.name then M.remove_user(self.name) end
  if self.bindir then M.rm_rf(self.bindir) end
  self.name, self.bindir = nil, nil
end

--- Run fn holding a host-wide lock named name (flock on
--- /run/lock/pftest-NAME.lock), for the few steps that change shared host
--- state for a moment (a mode of /run/pflask): other runs of the same
--- spec, in this ctest or another checkout's, wait for it. Errors in fn
--- are raised again after the lock is released.
---@param name string
---@param fn fun()
function M.host_lock(name, fn)
  local dir = M.tempdir("lock")
  local lockfile = "/run/lock/pftest-" .. name .. ".lock"
  -- A holder process keeps the lock from when it has it until told to let go.
  M.sh("(flock -x 9 && touch " .. dir .. "/held && while [ -d " .. dir .. " ] && [ ! -e " .. dir
    .. "/release ]; do sleep 0.05; done) 9>"
    .. M.quote(lockfile) .. " </dev/null >/dev/null 2>&1 &")
  local held = M.sh("i=0; while [ ! -e " .. dir .. "/held ] && [ $i -lt 3000 ]; do sleep 0.05; i=$((i+1)); done; "
    .. "test -e " .. dir .. "/held") == 0
  local ok, err = true, nil
  if held then ok, err = pcall(fn) end
  -- The holder ends (and the lock goes) once release exists or dir is gone.
  M.sh("touch " .. dir .. "/release")
  M.rm_rf(dir)
  if not held then error("could not take the host lock " .. lockfile, 2) end
  if not ok then error(err, 0) end
end

--- The version the project declares, project(pflask VERSION x.y.z) in the
--- source tree's CMakeLists.txt, parsed here: the independent source that
--- the built executable, module and recipes are checked against. Raises
--- when the pattern misses (a test must fail then, not skip).
---@return string
function M.project_version()
  local cmake = M.read_file(M.SOURCE_DIR .. "/CMakeLists.txt")
  local v = cmake and cmake:match("project%s*%(%s*pflask[^)]-VERSION%s+(%d+%.%d+%.%d+)")
  if not v then error("no project(pflask VERSION x.y.z) in " .. M.SOURCE_DIR .. "/CMakeLists.txt", 2) end
  return v
end

--- The live processes of a user (uid) on the host, as a decimal string
--- ("0" when none). Zombies are not counted: a process that has ended and
--- whose parent is gone waits for the host's pid 1 to reap it, which some
--- inits (this VM's) do late; it runs nothing and holds nothing.
---@param uid integer|string
---@return string
function M.user_processes(uid)
  return (M.capture("ps -o stat= -u " .. uid .. " | grep -vc '^Z'"))
end

return M
