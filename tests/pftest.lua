-- Helpers for pflask's integration specs: run commands and pflask, make
-- throwaway root filesystems and users, and snapshot host state so specs
-- can check that nothing was left behind.

local M = {}

M.PFLASK = os.getenv("PFLASK") or "build/pflask"
M.SOURCE_DIR = os.getenv("PFLASK_SOURCE_DIR") or "."
M.BUILD_DIR = os.getenv("PFLASK_BUILD_DIR") or "build"

--- Quote a string for sh.
---@param s string
---@return string
function M.quote(s)
  if s:match("^[%w%-%./_=:,+@%%]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function join_quoted(argv)
  local out = {}
  for i, a in ipairs(argv) do out[i] = M.quote(a) end
  return table.concat(out, " ")
end

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
  for k, v in pairs(opts.env or {}) do env[#env + 1] = M.quote(k .. "=" .. v) end
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

--- A new empty directory under /tmp (mode 0755).
function M.tempdir(tag)
  local dir = M.capture("mktemp -d /tmp/pftest-" .. (tag or "x") .. ".XXXXXX")
  M.sh("chmod 0755 " .. dir)
  return dir
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

--- The host's mounts as a sorted list of "mountpoint fstype source" lines,
--- to compare before and after a container.
---@return string
function M.mounts()
  local lines = {}
  for line in io.lines("/proc/self/mountinfo") do
    local fields = {}
    for f in line:gmatch("%S+") do fields[#fields + 1] = f end
    local sep
    for i, f in ipairs(fields) do if f == "-" then sep = i break end end
    -- `ip netns add`, in a network spec running alongside, pins its
    -- namespaces with mounts under /run/netns; pflask never mounts there.
    if not fields[5]:match("^/run/netns") then
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
  local out = M.capture("pgrep -f -- " .. M.quote(marker) .. " | grep -vx $$ | wc -l")
  return tonumber(out) or 0
end

--- A throwaway unprivileged user, removed with remove_user. Returns its
--- name, uid and gid.
function M.create_user()
  local name = string.format("pft%d%03d", os.time() % 100000, math.random(0, 999))
  assert(M.sh("useradd --create-home --shell /bin/sh " .. name) == 0, "useradd failed")
  local uid = tonumber((M.capture("id -u " .. name)))
  local gid = tonumber((M.capture("id -g " .. name)))
  return name, uid, gid
end

function M.remove_user(name)
  M.sh("pkill -KILL -u " .. name .. " 2>/dev/null; userdel --remove " .. name .. " 2>/dev/null")
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

return M
