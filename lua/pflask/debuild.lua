-- pflask-debuild: build Debian packages in a clean, throwaway container of
-- a cached base system. The recipe (recipes/debuild.lua) is the command
-- line; this module is the work, split into small functions the specs can
-- call one by one. See pflask-debuild(1).
--
-- A build never writes to the base: every build gets its own overlay layer
-- in a temporary directory, mounted over the base in each of the build's
-- step containers (the same layer for all of them, so the build
-- dependencies installed by one step are there for the next), and removed
-- at the end. (spec.ephemeral would give each container a layer of its
-- own, which is why the recipe mounts the overlay itself.)

local pflask = require "pflask"
local core = require "pflask.core"
local perr = require "pflask.error"

local M = {}

M.PROGRAM = "pflask-debuild"
M.DEFAULT_CACHE = "/var/cache/pflask"
M.DEFAULT_MIRROR = "http://deb.debian.org/debian"
-- perl-openssl-defaults: debootstrap does not resolve the virtual
-- perl-openssl-abi-3 that libnet-ssleay-perl (devscripts, lintian) needs.
M.INCLUDE = "devscripts,equivs,fakeroot,lintian,perl-openssl-defaults"
M.DEFAULT_LINTIAN_OPTS = "-IE --pedantic"
M.DEFAULT_BUILDPACKAGE_OPTS = "-us -uc"
M.CONFIG_FILES = { "/etc/devscripts.conf", "~/.devscripts" }
-- The variables the configuration files may set (the environment wins).
M.VARIABLES = { "DIST", "ARCH", "MIRROR", "PFLASK_CACHE", "DEBUILD_DPKG_BUILDPACKAGE_OPTS",
                "DEBUILD_LINTIAN", "DEBUILD_LINTIAN_OPTS", "DEBUILD_SIGN", "DEBUILD_NETWORK",
                "DEBSIGN_KEYID", "DEB_BUILD_OPTIONS", "DEB_BUILD_PROFILES" }
-- Passed into the build containers when set.
local PASS_ENV = { "DEB_BUILD_OPTIONS", "DEB_BUILD_PROFILES" }
M.STEPS = 5

local function fail(fmt, ...)
  perr.raise(perr.FAILURE, fmt, ...)
end

--- Quote a string for sh.
---@param s string
---@return string
function M.quote(s)
  if s ~= "" and s:match("^[%w%-%./_=:,+@%%]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

---@param argv string[]
---@return string
function M.join(argv)
  local out = {}
  for i, a in ipairs(argv) do out[i] = M.quote(a) end
  return table.concat(out, " ")
end

--- Split an options string on blanks (no quoting, as debuild does).
---@param s string|nil
---@return string[]
function M.words(s)
  local t = {}
  for w in (s or ""):gmatch("%S+") do t[#t + 1] = w end
  return t
end

local read_file = require("pflask.path").read_file

--- A command's standard output, without the last newline, or nil when it
--- failed.
local function capture(cmdline)
  local p = io.popen(cmdline, "r")
  if not p then return nil end
  local out = p:read("a")
  local ok = p:close()
  if not ok then return nil end
  return (out:gsub("\n$", ""))
end

local function truthy(v)
  if v == nil then return nil end
  v = v:lower()
  return not (v == "no" or v == "0" or v == "false" or v == "off" or v == "")
end

---------------------------------------------------------------------------
-- Configuration

--- Parse a devscripts configuration file without running it: lines
--- `VAR=value`, `VAR="value"`, `VAR='value'` (also after `export `);
--- comments and anything else (shell code) are ignored. No expansion.
---@param text string
---@return table<string,string>
function M.parse_config(text)
  local vars = {}
  for line in (text or ""):gmatch("[^\n]*") do
    line = line:gsub("^%s+", ""):gsub("^export%s+", "")
    local name, rest = line:match("^([%a_][%w_]*)=(.*)$")
    if name then
      local value
      if rest:sub(1, 1) == '"' then
        value = rest:match('^"(.-)"%s*$') or rest:match('^"(.-)"%s*[;#]')
        if value then value = value:gsub('\\(["\\$`])', "%1") end
      elseif rest:sub(1, 1) == "'" then
        value = rest:match("^'(.-)'%s*$") or rest:match("^'(.-)'%s*[;#]")
      else
        value = rest:match("^([^%s;#]*)")
      end
      if value then vars[name] = value end
    end
  end
  return vars
end

--- The settings: /etc/devscripts.conf, then the invoking user's
--- ~/.devscripts, then the environment (which wins).
---@param env table<string,string> the environment
---@param home string|nil the invoking user's home
---@param use_files boolean read the configuration files
---@return table<string,string>
function M.settings(env, home, use_files)
  local s = {}
  if use_files then
    for _, path in ipairs(M.CONFIG_FILES) do
      if path:sub(1, 2) == "~/" then path = home and (home .. path:sub(2)) end
      local text = path and read_file(path)
      if text then
        local vars = M.parse_config(text)
        for _, name in ipairs(M.VARIABLES) do
          if vars[name] then s[name] = vars[name] end
        end
      end
    end
  end
  for _, name in ipairs(M.VARIABLES) do
    if env[name] and env[name] ~= "" then s[name] = env[name] end
  end
  return s
end

--- Who results belong to: SUDO_UID/SUDO_GID when root runs us through
--- sudo, else the real ids.
---@param env table<string,string>
---@return {uid: integer, gid: integer, name: string|nil, home: string|nil}
function M.invoking_user(env)
  local uid, gid = core.getuid(), core.getgid()
  if uid == 0 and env.SUDO_UID and env.SUDO_UID:match("^%d+$") then
    uid = math.tointeger(tonumber(env.SUDO_UID))
    gid = env.SUDO_GID and env.SUDO_GID:match("^%d+$") and math.tointeger(tonumber(env.SUDO_GID))
    local pw = core.getpwnam(uid)
    gid = gid or (pw and pw.gid) or uid
  end
  local pw = core.getpwnam(uid)
  return { uid = uid, gid = gid, name = pw and pw.name, home = pw and pw.home or (uid == core.getuid() and env.HOME) }
end

---------------------------------------------------------------------------
-- The source tree

---@class pflask.DebuildSource
---@field source string
---@field version string
---@field upstream_version string the version without its epoch
---@field distribution string the first distribution named

--- Parse the first entry's header of a debian/changelog.
---@param text string
---@return pflask.DebuildSource|nil
---@return string|nil why not
function M.parse_changelog(text)
  local line = (text or ""):match("^%s*([^\n]*)")
  if not line or line == "" then return nil, "it is empty" end
  local source, version, dists = line:match("^([%w][%w%.%+%-]*) %(([^%s%)]+)%)%s+([^;]+);")
  if not source then
    return nil, string.format("its first line is not 'SOURCE (VERSION) DISTRIBUTION; urgency=...': '%s'",
                              #line > 80 and line:sub(1, 77) .. "..." or line)
  end
  if not version:match("^[%w%.%+%-:~]+$") or not version:match("^%d") then
    return nil, string.format("'%s' is not a Debian version", version)
  end
  local dist = dists:match("^%s*(%S+)")
  return {
    source = source, version = version, distribution = dist,
    upstream_version = version:gsub("^%d+:", ""),
  }
end

--- The source tree in dir: its changelog and control file.
---@param dir string absolute
---@return pflask.DebuildSource
function M.read_source(dir)
  local path = dir .. "/debian/changelog"
  local st = core.stat(dir .. "/debian")
  if not st or st.type ~= "directory" then
    fail("%s is not a Debian source tree: it has no debian/ directory (run pflask-debuild in an unpacked source package)", dir)
  end
  local text = read_file(path)
  if not text then
    fail("%s is not a Debian source tree: it has no debian/changelog (run pflask-debuild in an unpacked source package)", dir)
  end
  if not core.stat(dir .. "/debian/control") then
    fail("%s is not a Debian source tree: it has no debian/control", dir)
  end
  local src, why = M.parse_changelog(text)
  if not src then fail("debian/changelog is malformed: %s (see deb-changelog(5))", why) end
  return src
end

---------------------------------------------------------------------------
-- The host

--- The host's release: VERSION_CODENAME from /etc/os-release.
---@return string|nil
function M.host_release(text)
  text = text or read_file("/etc/os-release") or read_file("/usr/lib/os-release") or ""
  local name = text:match("\nVERSION_CODENAME=\"?([%w%-]+)") or text:match("^VERSION_CODENAME=\"?([%w%-]+)")
  return name
end

--- The architecture dpkg builds for.
---@return string|nil
function M.host_arch()
  return capture("dpkg --print-architecture 2>/dev/null")
end

--- The distribution to build for: DIST, else the changelog's (UNRELEASED
--- means the host's release), else the host's release.
---@param settings table<string,string>
---@param src pflask.DebuildSource|nil
---@return string
function M.distribution(settings, src)
  local dist = settings.DIST
  if not dist and src and src.distribution ~= "UNRELEASED" then dist = src.distribution end
  dist = dist or M.host_release()
  if not dist then fail("cannot tell which distribution to build for: set DIST (e.g. DIST=bookworm)") end
  if not dist:match("^[%w][%w%.%-]*$") then fail("DIST: '%s' is not a distribution name", dist) end
  return dist
end

---@param settings table<string,string>
---@return string
function M.architecture(settings)
  local arch = settings.ARCH or M.host_arch()
  if not arch then fail("cannot tell the architecture (dpkg --print-architecture failed): set ARCH") end
  if not arch:match("^[%w%-]+$") then fail("ARCH: '%s' is not an architecture name", arch) end
  return arch
end

--- The first Debian mirror in the host's apt sources (one-line .list
--- files and deb822 .sources), skipping security archives.
---@param text string|nil the sources' text (default: read the host's)
---@return string|nil
function M.host_mirror(text)
  text = text or capture("cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
                         .. "/etc/apt/sources.list.d/*.sources 2>/dev/null; true") or ""
  local function usable(uri)
    return uri and uri:match("^https?://") and not uri:match("security") and uri
  end
  local stanza = {}
  local function flush()
    if stanza.uris and (stanza.types or "deb"):match("%f[%w]deb%f[^%w%-]")
       and not (stanza.suites or ""):match("%-security") and stanza.enabled ~= "no" then
      for uri in stanza.uris:gmatch("%S+") do
        if usable(uri) then return uri end
      end
    end
    stanza = {}
  end
  for line in (text .. "\n\n"):gmatch("([^\n]*)\n") do
    if line:match("^%s*$") then
      local uri = flush()
      if uri then return (uri:gsub("/+$", "")) end
    elseif not line:match("^%s*#") then
      local key, value = line:match("^([%w%-]+):%s*(.-)%s*$")
      if key then
        stanza[key:lower()] = value
      else
        local rest = line:match("^%s*deb%s+(.*)$")
        if rest then
          rest = rest:gsub("^%[[^%]]*%]%s*", "")
          local uri, suite = rest:match("^(%S+)%s+(%S+)")
          if usable(uri) and not suite:match("%-security") then return (uri:gsub("/+$", "")) end
        end
      end
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- Progress

local function now()
  local up = read_file("/proc/uptime")
  return tonumber(up and up:match("^(%S+)")) or os.time()
end

--- A duration as "4.2s" or "3m05s".
---@param seconds number
---@return string
function M.duration(seconds)
  if seconds < 60 then return string.format("%.1fs", seconds) end
  return string.format("%dm%02ds", seconds // 60, math.floor(seconds % 60))
end

---@class pflask.DebuildContext
---@field log string|nil host path of the build log

--- Print a progress line (and add it to the build log).
---@param ctx pflask.DebuildContext|nil
function M.say(ctx, fmt, ...)
  local line = M.PROGRAM .. ": " .. string.format(fmt, ...) .. "\n"
  io.stderr:write(line)
  io.stderr:flush()
  if ctx and ctx.log then
    local f = io.open(ctx.log, "a")
    if f then f:write(line); f:close() end
  end
end

---------------------------------------------------------------------------
-- The base

--- base-DIST-ARCH under the cache root.
function M.base_dir(settings, dist, arch)
  local cache = settings.PFLASK_CACHE or M.DEFAULT_CACHE
  if cache:sub(1, 1) ~= "/" then cache = perr.check("getcwd", core.getcwd()) .. "/" .. cache end
  cache = cache:gsub("/+$", "")
  return cache .. "/base-" .. dist .. "-" .. arch, cache
end

local function require_root(what)
  if core.geteuid() ~= 0 then
    fail("%s needs root (run it with sudo)", what)
  end
end

local function is_dir(path)
  local st = core.stat(path)
  return st and st.type == "directory"
end

--- debootstrap a buildd base into DIR.new, then rename it to DIR.
function M.create(settings, dist, arch)
  require_root("--create")
  local base, cache = M.base_dir(settings, dist, arch)
  if core.lstat(base) then
    fail("%s already exists: run DIST=%s pflask-debuild --update to refresh it, or remove it to start over", base, dist)
  end
  local tmp = base .. ".new"
  if core.lstat(tmp) then
    fail("%s exists: another --create is running, or one was interrupted (remove it and retry)", tmp)
  end
  if os.execute("command -v debootstrap >/dev/null 2>&1") ~= true then
    fail("--create needs debootstrap on the host (apt-get install debootstrap)")
  end
  local mirror = settings.MIRROR or M.host_mirror() or M.DEFAULT_MIRROR
  if os.execute("mkdir -p " .. M.quote(cache)) ~= true then fail("cannot create %s", cache) end
  -- mkdir claims DIR.new atomically: a second --create stops here.
  if os.execute("mkdir " .. M.quote(tmp)) ~= true then fail("cannot create %s", tmp) end
  local argv = { "debootstrap", "--variant=buildd", "--arch=" .. arch, "--include=" .. M.INCLUDE,
                 dist, tmp, mirror }
  M.say(nil, "creating %s from %s (%s)", base, mirror, M.join(argv))
  local t0 = now()
  local ok, how, code = os.execute(M.join(argv))
  if not ok then
    M.say(nil, "debootstrap failed (%s %s) after %s; %s is left for inspection: remove it before retrying",
          how, tostring(code), M.duration(now() - t0), tmp)
    return how == "signal" and 128 + code or (code ~= 0 and code or 1)
  end
  local renamed, err = os.rename(tmp, base)
  if not renamed then fail("--create: renaming %s: %s", tmp, err) end
  M.say(nil, "created %s in %s", base, M.duration(now() - t0))
  return 0
end

--- A bind of the host's resolv.conf on the root's, when both are plain
--- files, so name resolution follows the host's current settings.
local function resolv_mount(root)
  local host = core.stat("/etc/resolv.conf")
  local inside = core.lstat(root .. "/etc/resolv.conf")
  if host and host.type == "file" and inside and inside.type == "file" then
    return { type = "bind", source = "/etc/resolv.conf", target = "/etc/resolv.conf", readonly = true }
  end
end

local APT_ENV = {
  { name = "DEBIAN_FRONTEND", value = "noninteractive" },
  { name = "LC_ALL", value = "C.UTF-8" },
}

--- apt-get update, dist-upgrade, autoremove, autoclean in the base itself.
function M.update(settings, dist, arch)
  require_root("--update")
  local base, cache = M.base_dir(settings, dist, arch)
  M.require_base(base, cache, dist, arch)
  local script = "set -e; apt-get update; apt-get -y dist-upgrade; apt-get -y autoremove; apt-get autoclean"
  M.say(nil, "updating %s", base)
  local t0 = now()
  local status = pflask.run{
    root = base, mounts = { resolv_mount(base) }, terminal = false,
    command = { "/bin/sh", "-c", script }, setenv = APT_ENV,
  }
  if status ~= 0 then
    M.say(nil, "updating %s failed (exit %d) after %s", base, status, M.duration(now() - t0))
  else
    M.say(nil, "updated %s in %s", base, M.duration(now() - t0))
  end
  return status
end

function M.require_base(base, cache, dist, arch)
  if not is_dir(base) then
    fail("no base for %s-%s in %s: run DIST=%s pflask-debuild --create", dist, arch, cache, dist)
  end
end

---------------------------------------------------------------------------
-- A build

-- Runs "$@" with its output going to the terminal and appended to the log
-- ($1), and exits with its status.
local TEE = [[log=$1; shift
st=$(mktemp)
{ "$@"; echo $? >"$st"; } 2>&1 | tee -a "$log"
rc=$(cat "$st"); rm -f "$st"
exit "${rc:-1}"]]

--- dpkg-buildpackage's options: the configured ones, never signing inside
--- (keys stay on the host; debsign signs afterwards).
---@param settings table<string,string>
---@param extra string[] options from the command line
---@return string[]
function M.buildpackage_options(settings, extra)
  local opts = M.words(settings.DEBUILD_DPKG_BUILDPACKAGE_OPTS or M.DEFAULT_BUILDPACKAGE_OPTS)
  for _, o in ipairs(extra or {}) do opts[#opts + 1] = o end
  local unsigned = false
  for _, o in ipairs(opts) do
    if o == "--no-sign" or o == "-us" or o == "--unsigned-source" then unsigned = true end
  end
  if not unsigned then opts[#opts + 1] = "--no-sign" end
  return opts
end

---@class pflask.DebuildBuild
---@field dir string the source tree (host)
---@field parent string its parent directory (host), bound on /build
---@field name string the source tree's directory name
---@field src pflask.DebuildSource
---@field dist string
---@field arch string
---@field base string
---@field layer string temporary directory: upper/ and work/ of the overlay
---@field user {uid: integer, gid: integer, name: string|nil, home: string|nil}
---@field settings table<string,string>
---@field log string host path of the build log
---@field network_in_build boolean

--- One step's container: the base under the build's own overlay layer,
--- the parent directory on /build, output also appended to the log.
---@param b pflask.DebuildBuild
---@param script string sh script run in /build/NAME
---@param isolated boolean|nil a network namespace of its own (lo only)
---@return integer status
function M.run_step(b, script, isolated)
  local setenv = {}
  for i, e in ipairs(APT_ENV) do setenv[i] = e end
  for _, name in ipairs(PASS_ENV) do
    if b.settings[name] then setenv[#setenv + 1] = { name = name, value = b.settings[name] } end
  end
  local mounts = {
    { type = "overlay", target = b.base, upper = b.layer .. "/upper", work = b.layer .. "/work" },
    { type = "bind", source = b.parent, target = "/build" },
  }
  mounts[#mounts + 1] = resolv_mount(b.base)
  local spec = {
    root = b.base, mounts = mounts, terminal = false,
    chdir = "/build/" .. b.name, setenv = setenv,
    command = { "/bin/sh", "-c", TEE, "sh", "/build/" .. b.logname, "/bin/sh", "-c", script },
  }
  if isolated then spec.netifs = { { type = "none" } } end
  return pflask.run(spec)
end

--- Files named in a .changes' Files: field.
---@param text string
---@return string[]
function M.changes_files(text)
  local files = {}
  local section = (text or ""):match("\nFiles:%s*\n(.-)\n%S") or (text or ""):match("\nFiles:%s*\n(.*)$") or ""
  for line in section:gmatch("[^\n]+") do
    local name = line:match("^%s+%x+%s+%d+%s+%S+%s+%S+%s+(%S+)%s*$")
    if name then files[#files + 1] = name end
  end
  return files
end

--- The .changes dpkg-buildpackage wrote, as a file name, or nil.
function M.find_changes(b)
  local stem = b.src.source .. "_" .. b.src.upstream_version .. "_"
  for _, suffix in ipairs({ b.arch, "source", "all" }) do
    local name = stem .. suffix .. ".changes"
    if core.stat(b.parent .. "/" .. name) then return name end
  end
end

--- Signing on the host with debsign, as the invoking user; or why not.
---@return integer|nil status, string|nil why skipped
function M.sign(b, changes)
  local s = b.settings
  if truthy(s.DEBUILD_SIGN) == false then return nil, "DEBUILD_SIGN=" .. s.DEBUILD_SIGN end
  if not changes then return nil, "no .changes file" end
  if os.execute("command -v debsign >/dev/null 2>&1") ~= true then
    return nil, "debsign is not installed on the host (apt-get install devscripts)"
  end
  if os.execute("command -v gpg >/dev/null 2>&1") ~= true then
    return nil, "gpg is not installed on the host"
  end
  local as = ""
  if b.user.uid ~= core.getuid() then
    if not b.user.name then return nil, "the invoking user (uid " .. b.user.uid .. ") has no name" end
    as = "runuser -u " .. M.quote(b.user.name) .. " -- env HOME=" .. M.quote(b.user.home or "/") .. " "
  end
  local keys = capture(as .. "gpg --batch --list-secret-keys --with-colons "
                       .. (s.DEBSIGN_KEYID and M.quote(s.DEBSIGN_KEYID) or "") .. " 2>/dev/null")
  if not keys or not keys:match("\nsec:") and not keys:match("^sec:") then
    return nil, "no secret key for " .. (b.user.name or ("uid " .. b.user.uid))
      .. (s.DEBSIGN_KEYID and " matching DEBSIGN_KEYID=" .. s.DEBSIGN_KEYID or "")
  end
  local argv = { "debsign" }
  if s.DEBSIGN_KEYID then argv[#argv + 1] = "-k" .. s.DEBSIGN_KEYID end
  argv[#argv + 1] = b.parent .. "/" .. changes
  local ok, how, code = os.execute(as .. M.join(argv))
  if ok then return 0 end
  return how == "signal" and 128 + code or code
end

--- Prepare a build in dir (checks everything, creates nothing).
---@param dir string the source tree, absolute
---@param settings table<string,string>
---@param user table
---@param extra string[] extra dpkg-buildpackage options
---@return pflask.DebuildBuild
function M.plan(dir, settings, user, extra)
  local src = M.read_source(dir)
  local dist = M.distribution(settings, src)
  local arch = M.architecture(settings)
  local base, cache = M.base_dir(settings, dist, arch)
  M.require_base(base, cache, dist, arch)
  require_root("building")
  local parent, name = dir:match("^(.*)/([^/]+)$")
  if not name then fail("%s: a source tree cannot be /", dir) end
  if parent == "" then parent = "/" end
  local network = settings.DEBUILD_NETWORK
  local b = {
    dir = dir, parent = parent, name = name, src = src, dist = dist, arch = arch, base = base,
    user = user, settings = settings, extra = extra,
    network_in_build = truthy(network) ~= false,
    logname = src.source .. "_" .. src.upstream_version .. "_" .. arch .. ".build",
  }
  b.log = (parent == "/" and "" or parent) .. "/" .. b.logname
  return b
end

--- A temporary directory for the build's overlay layer ($TMPDIR, else
--- /var/tmp: on disk, builds can be large); the upper layer takes the
--- base root's owner and mode, which overlayfs shows as those of "/".
local function make_layer(base)
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/var/tmp" end
  local dir = perr.check("temporary layer", core.mkdtemp(tmp .. "/pflask-debuild.XXXXXX"))
  local ok, err = pcall(function()
    perr.check("temporary layer", core.mountpoint(dir, "/upper", "directory"))
    perr.check("temporary layer", core.mountpoint(dir, "/work", "directory"))
    local st = perr.check("temporary layer", core.stat(base))
    perr.check("temporary layer", core.chmod(dir .. "/upper", st.mode & 4095))
    perr.check("temporary layer", core.chown(dir .. "/upper", st.uid, st.gid))
  end)
  if not ok then core.remove_tree(dir); error(err, 0) end
  return dir
end

local function start_log(b)
  os.remove(b.log) -- never write through a link left there
  local f, err = io.open(b.log, "w")
  if not f then fail("cannot write the build log: %s", err) end
  f:close()
  perr.check("build log", core.chown(b.log, b.user.uid, b.user.gid))
end

--- The steps of a build, in the build's temporary layer.
local function run_steps(b)
  local n = M.STEPS
  local function step(i, title, fn)
    M.say(b, "[%d/%d] %s", i, n, title)
    local t0 = now()
    local status, note = fn()
    local took = M.duration(now() - t0)
    if status == 0 then
      M.say(b, "[%d/%d] done in %s%s", i, n, took, note and ("; " .. note) or "")
    elseif status then
      M.say(b, "[%d/%d] %s failed (exit %d) after %s", i, n, title, status, took)
    end
    return status
  end

  local status = step(1, "updating package lists (apt-get update)", function()
    return M.run_step(b, "apt-get update")
  end)
  if status ~= 0 then return status end

  status = step(2, "installing build dependencies (mk-build-deps)", function()
    return M.run_step(b, "set -e; d=$(mktemp -d); cd \"$d\"; "
      .. "mk-build-deps -i -r -t 'apt-get -y --no-install-recommends' "
      .. M.quote("/build/" .. b.name .. "/debian/control"))
  end)
  if status ~= 0 then return status end

  local opts = M.buildpackage_options(b.settings, b.extra)
  -- Results (new files in /build owned by root) and whatever the build
  -- left in the source tree go back to the invoking user, even when the
  -- build failed.
  local give_back = ""
  if b.user.uid ~= 0 or b.user.gid ~= 0 then
    local owner = string.format("%d:%d", b.user.uid, b.user.gid)
    give_back = "find /build -mindepth 1 -maxdepth 1 -user 0 -newer /tmp/pflask-debuild.stamp "
      .. "-exec chown -h " .. owner .. " {} +; "
      .. "find " .. M.quote("/build/" .. b.name) .. " -user 0 -newer /tmp/pflask-debuild.stamp "
      .. "-exec chown -h " .. owner .. " {} +; "
  end
  status = step(3, "building (dpkg-buildpackage " .. table.concat(opts, " ")
                .. (b.network_in_build and "" or ", without network") .. ")", function()
    return M.run_step(b, "touch /tmp/pflask-debuild.stamp; sleep 0.01; dpkg-buildpackage " .. M.join(opts)
      .. "; rc=$?; " .. give_back .. "exit $rc", not b.network_in_build)
  end)
  if status ~= 0 then return status end

  local changes = M.find_changes(b)
  if truthy(b.settings.DEBUILD_LINTIAN) == false then
    M.say(b, "[4/%d] lintian skipped: DEBUILD_LINTIAN=%s", n, b.settings.DEBUILD_LINTIAN)
  elseif not changes then
    M.say(b, "[4/%d] lintian skipped: no .changes file", n)
  else
    local lopts = M.words(b.settings.DEBUILD_LINTIAN_OPTS or M.DEFAULT_LINTIAN_OPTS)
    step(4, "checking with lintian " .. table.concat(lopts, " "), function()
      local st = M.run_step(b, "lintian " .. M.join(lopts) .. " " .. M.quote("/build/" .. changes))
      if st ~= 0 then return 0, string.format("lintian reported problems (exit %d), see above", st) end
      return 0
    end)
  end

  local t0 = now()
  local signed, why = M.sign(b, changes)
  if signed == nil then
    M.say(b, "[5/%d] signing skipped: %s", n, why)
  elseif signed == 0 then
    M.say(b, "[5/%d] signed %s with debsign in %s", n, changes, M.duration(now() - t0))
  else
    M.say(b, "[5/%d] debsign failed (exit %d): the results are unsigned", n, signed)
  end

  if changes then
    local files = M.changes_files(read_file(b.parent .. "/" .. changes))
    table.insert(files, 1, changes)
    M.say(b, "results in %s: %s", b.parent, table.concat(files, " "))
  end
  return 0
end

--- Build the source tree described by b; returns the exit status.
---@param b pflask.DebuildBuild
---@return integer
function M.build(b)
  local t0 = now()
  start_log(b)
  M.say(b, "building %s %s for %s-%s in a throwaway container of %s", b.src.source, b.src.version,
        b.dist, b.arch, b.base)
  b.layer = make_layer(b.base)
  local ok, status = pcall(run_steps, b)
  core.remove_tree(b.layer)
  if not ok then error(status, 0) end
  if status == 0 then
    M.say(b, "done in %s; log: %s", M.duration(now() - t0), b.log)
  else
    M.say(b, "build failed after %s; log: %s", M.duration(now() - t0), b.log)
  end
  return status
end

return M
