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
--
-- pflask-debuild runs as root (through sudo), but the package is hostile:
-- only the steps that install packages from the archive (apt-get update,
-- the build dependencies) run as root in the container. The build and
-- lintian run as an unprivileged build user in a user namespace of their
-- own whose ids are a subordinate range (never host root), with no
-- capability, no_new_privs, and (unless asked) no network. They see the
-- source tree through an overlay (the user's tree is never written) and
-- write their results to a directory of the build's own; pflask-debuild
-- copies the results and writes the log with the invoking user's
-- credentials (see pflask-debuild(1), SECURITY).

local pflask = require "pflask"
local core = require "pflask.core"
local perr = require "pflask.error"
local userns = require "pflask.userns"

local M = {}

M.PROGRAM = "pflask-debuild"
M.DEFAULT_CACHE = "/var/cache/pflask"
-- The build user inside the build's user namespace: its uid and gid
-- there, and the ids the namespace maps from 0 (a subordinate range).
M.BUILD_USER = "pflask-build"
M.BUILD_ID = 1000
M.BUILD_HOME = "/nonexistent"
M.ID_COUNT = 65536
-- Without a subordinate range of the invoking user's, the first block of
-- ID_COUNT ids from here that nobody's range in /etc/subuid, /etc/subgid
-- overlaps.
M.FALLBACK_ID_START = 100000
-- Where the build log's FIFO is bound inside the step containers.
M.LOG_INSIDE = "/run/pflask-debuild.log"
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
-- Acting as the invoking user
--
-- Root must not open paths in directories the user controls: a symlink
-- or a FIFO put there would make root write or read any file, or hang.
-- Those opens happen in a helper that has dropped to the user's ids
-- (setpriv, util-linux), with the exact flags (Perl, Essential on Debian:
-- sh redirections cannot say O_NOFOLLOW or O_NONBLOCK).

-- Reads at most ARGV[1] bytes of the regular file ARGV[0].
local PERL_READ = [[
use Fcntl;
sysopen(my $f, $ARGV[0], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY) or exit 1;
-f $f or exit 2;
my $n = sysread($f, my $buf, $ARGV[1]);
defined $n or exit 3;
print $buf;
]]

-- Opens the regular file ARGV[0] (created 0644, never through a symlink,
-- never a FIFO or device), truncates it, says "ok" (or why not) on
-- stdout, then copies stdin into it until EOF. Neither a write error nor
-- a ^C on the terminal ends the copy early: the writers of stdin
-- (pflask-debuild among them) would get SIGPIPE; it ends when they close.
local PERL_WRITE = [[
use Fcntl;
$SIG{$_} = "IGNORE" for qw(INT QUIT TERM HUP);
$| = 1;
sysopen(my $f, $ARGV[0], O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0644)
  or do { print "$!\n"; exit 1 };
-f $f or do { print "not a regular file\n"; exit 1 };
truncate($f, 0) or do { print "$!\n"; exit 1 };
print "ok\n";
close STDOUT;
my $ok = 1;
while (my $n = sysread(STDIN, my $buf, 65536)) {
  my $off = 0;
  while ($ok && $off < $n) {
    my $w = syswrite($f, $buf, $n - $off, $off);
    if (defined $w) { $off += $w } else { $ok = 0 }
  }
}
close($f) or $ok = 0;
exit($ok ? 0 : 1);
]]

-- Copies the regular file ARGV[0] to stdout (opened as PERL_READ does).
local PERL_CAT = [[
use Fcntl;
sysopen(my $f, $ARGV[0], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY) or die "$ARGV[0]: $!\n";
-f $f or die "$ARGV[0]: not a regular file\n";
while (1) {
  my $n = sysread($f, my $buf, 65536);
  defined $n or die "$ARGV[0]: $!\n";
  last if $n == 0;
  print $buf or die "write: $!\n";
}
]]

--- The command prefix that runs a command with the user's ids (and
--- groups), or none when pflask-debuild already runs with them.
---@param user {uid: integer, gid: integer, name: string|nil}
---@return string[]
function M.as_user(user)
  if core.geteuid() ~= 0 or user.uid == 0 then return {} end
  return { "setpriv", "--reuid=" .. user.uid, "--regid=" .. user.gid,
           user.name and "--init-groups" or "--clear-groups", "--" }
end

local function concat(...)
  local out = {}
  for _, t in ipairs({ ... }) do table.move(t, 1, #t, #out + 1, out) end
  return out
end

--- A configuration file's text, read as the user: nil unless it is a
--- regular file (not a symlink, FIFO or device). At most 1 MiB.
---@param user table
---@param path string
---@return string|nil
function M.read_as(user, path)
  local st = core.lstat(path)
  if not st or st.type ~= "file" then return nil end
  return capture(M.join(concat(M.as_user(user), { "perl", "-e", PERL_READ, path, "1048576" })) .. " 2>/dev/null")
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
--- ~/.devscripts, then the environment (which wins). The files are read
--- with the user's ids and only when they are regular files (M.read_as).
---@param env table<string,string> the environment
---@param user {uid: integer, gid: integer, name: string|nil, home: string|nil} the invoking user
---@param use_files boolean read the configuration files
---@return table<string,string>
function M.settings(env, user, use_files)
  local s = {}
  if use_files then
    for _, path in ipairs(M.CONFIG_FILES) do
      if path:sub(1, 2) == "~/" then path = user.home and (user.home .. path:sub(2)) end
      local text = path and M.read_as(user, path)
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
---@field log_fh file*|nil the build log's FIFO (see start_log)

--- Print a progress line (and add it to the build log).
---@param ctx pflask.DebuildContext|nil
function M.say(ctx, fmt, ...)
  local line = M.PROGRAM .. ": " .. string.format(fmt, ...) .. "\n"
  io.stderr:write(line)
  io.stderr:flush()
  if ctx and ctx.log_fh then
    ctx.log_fh:write(line)
    ctx.log_fh:flush()
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
  -- Without a mirror in the host's sources, debootstrap's own default.
  local mirror = settings.MIRROR or M.host_mirror()
  if os.execute("mkdir -p " .. M.quote(cache)) ~= true then fail("cannot create %s", cache) end
  -- mkdir claims DIR.new atomically: a second --create stops here.
  if os.execute("mkdir " .. M.quote(tmp)) ~= true then fail("cannot create %s", tmp) end
  local argv = { "debootstrap", "--variant=buildd", "--arch=" .. arch, "--include=" .. M.INCLUDE,
                 dist, tmp, mirror }
  M.say(nil, "creating %s from %s (%s)", base, mirror or "debootstrap's default mirror", M.join(argv))
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
-- The build user's ids

--- Does [start, start+count) overlap a range of ranges?
local function overlaps(ranges, start, count)
  for _, r in ipairs(ranges) do
    if start < r.start + r.count and r.start < start + count then return true end
  end
  return false
end

--- Every range of /etc/subuid or /etc/subgid text, whoever owns it.
local function all_subids(text)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local start, count = line:match("^%s*[^:#%s][^:]*:(%d+):(%d+)%s*$")
    if start then
      out[#out + 1] = { start = math.tointeger(tonumber(start)), count = math.tointeger(tonumber(count)) }
    end
  end
  return out
end

--- The first host id the build's user namespace maps (inside 0; the
--- build user is BUILD_ID above it): the invoking user's first
--- subordinate range of at least ID_COUNT ids, else the first block of
--- ID_COUNT ids from FALLBACK_ID_START that no subordinate range in either
--- file overlaps and whose root and build ids no host user has.
---@param user {uid: integer, name: string|nil}
---@param own string the text of the kind's file (/etc/subuid or /etc/subgid)
---@param other string the text of the other file
---@param taken fun(id: integer): boolean|nil is id a host user's (default: never)
---@return integer
function M.id_start(user, own, other, taken)
  for _, r in ipairs(userns.parse_subids(own or "", user.name, user.uid)) do
    if r.count >= M.ID_COUNT then return r.start end
  end
  local ranges = all_subids(own)
  table.move(all_subids(other), 1, #all_subids(other), #ranges + 1, ranges)
  local start = M.FALLBACK_ID_START
  while start + M.ID_COUNT <= 4294967295 do
    if not overlaps(ranges, start, M.ID_COUNT)
       and not (taken and (taken(start) or taken(start + M.BUILD_ID))) then
      return start
    end
    start = start + M.ID_COUNT
  end
  fail("no free range of %d ids for the build user (see /etc/subuid)", M.ID_COUNT)
end

--- The build's id ranges (uid and gid) for the invoking user.
---@return {uid: integer, gid: integer}
function M.build_ids(user)
  local subuid = read_file(userns.SUBUID) or ""
  local subgid = read_file(userns.SUBGID) or ""
  local function uid_taken(id) return core.getpwnam(id) ~= nil end
  return { uid = M.id_start(user, subuid, subgid, uid_taken), gid = M.id_start(user, subgid, subuid) }
end

---------------------------------------------------------------------------
-- A build

-- Runs "$@" with its output going to the terminal and appended to the log
-- ($1: the log's FIFO), and exits with its status.
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
---@field parent string its parent directory (host): results and log go there
---@field name string the source tree's directory name
---@field src pflask.DebuildSource
---@field dist string
---@field arch string
---@field base string
---@field layer string temporary directory (root's, 0700): upper/ and work/ of
---                    the base's overlay, results/ (the build's /build),
---                    src-upper/ and src-work/ (the source tree's overlay), log (FIFO)
---@field user {uid: integer, gid: integer, name: string|nil, home: string|nil}
---@field ids {uid: integer, gid: integer} first host ids of the build's user namespace
---@field settings table<string,string>
---@field log string host path of the build log
---@field log_fh file*|nil the log FIFO's write end
---@field log_writer file*|nil the helper that writes the log as the user
---@field network_in_build boolean
---@field origs table<string, boolean> upstream tarballs copied in from the results directory

--- The build user's host ids.
local function build_host_ids(b)
  return b.ids.uid + M.BUILD_ID, b.ids.gid + M.BUILD_ID
end

--- Append a line to a file of the container's (after pivot_root: the
--- build's overlay of the base) unless a line starts with prefix.
local function add_entry(file, prefix, line)
  local text = read_file(file) or ""
  if ("\n" .. text):find("\n" .. prefix, 1, true) then return end
  local f = perr.check(file, io.open(file, "a"))
  f:write((text == "" or text:sub(-1) == "\n") and "" or "\n", line, "\n")
  f:close()
end

--- A child_setup hook (in the step's container, root, after pivot_root)
--- that makes the container's first process the build user, without any
--- host privilege: the build user is added to the base's passwd (in the
--- build's layer); the files of the source tree (tree, an overlay) that
--- belong to the invoking user (all of them when that is root) are given
--- to the build user's host ids
--- (copied up: the user's tree keeps its owners); then the process
--- unshares a user namespace whose ids map to b.ids (a helper forked
--- before, still root outside, writes the maps: root may map any range)
--- and pflask switches to the build user with no capability left
--- (spec.caps = {"-all"}: the bounding set, then the process's sets).
---@param b pflask.DebuildBuild
---@param tree string|nil
local function become_build_user(b, tree)
  return function(plan)
    add_entry("/etc/passwd", M.BUILD_USER .. ":", string.format("%s:x:%d:%d:pflask-debuild build user:%s:/bin/sh",
      M.BUILD_USER, M.BUILD_ID, M.BUILD_ID, M.BUILD_HOME))
    add_entry("/etc/group", M.BUILD_USER .. ":", string.format("%s:x:%d:", M.BUILD_USER, M.BUILD_ID))
    if tree then
      -- Only what the invoking user owns (the build must not read through
      -- the copy what the user could not), everything when that is root.
      local uid, gid = build_host_ids(b)
      local argv = { "find", tree, "-xdev" }
      if b.user.uid ~= 0 then table.move({ "-user", tostring(b.user.uid) }, 1, 2, #argv + 1, argv) end
      table.move({ "-exec", "chown", "-h", uid .. ":" .. gid, "{}", "+" }, 1, 6, #argv + 1, argv)
      local ok = os.execute(M.join(argv))
      if not ok then perr.raise(perr.FAILURE, "giving the source tree to the build user failed") end
    end
    local pid = core.getpid()
    local step = "build user namespace"
    local helper, chan = core.clone({}, function(ch)
      if not ch:wait() then return perr.FAILURE end
      perr.check(step, core.write_id_map(pid, "uid", { { inside = 0, outside = b.ids.uid, count = M.ID_COUNT } }))
      perr.check(step, core.write_id_map(pid, "gid", { { inside = 0, outside = b.ids.gid, count = M.ID_COUNT } }))
      return 0
    end)
    if not helper then perr.raise(perr.FAILURE, "%s: %s", step, chan) end
    local ok, err = pcall(function()
      perr.check(step, core.unshare({ "user" }))
      perr.check(step, chan:release())
    end)
    if not ok then
      chan:close()
      helper:kill(core.signals.KILL)
      helper:wait()
      error(err, 0)
    end
    local done, msg, errno, status = chan:result()
    chan:close()
    local helper_status = helper:wait()
    if not done then error(perr.new(status or perr.FAILURE, msg, errno), 0) end
    if helper_status ~= 0 then perr.raise(perr.FAILURE, "%s: writing the id maps failed", step) end
    plan.user = { uid = M.BUILD_ID, gid = M.BUILD_ID, name = M.BUILD_USER, home = M.BUILD_HOME, groups = {} }
    plan.groups = {}
    plan.env.USER, plan.env.LOGNAME, plan.env.HOME = M.BUILD_USER, M.BUILD_USER, M.BUILD_HOME
  end
end

local function base_mounts(b, network)
  local mounts = {
    { type = "overlay", target = b.base, upper = b.layer .. "/upper", work = b.layer .. "/work" },
    { type = "bind", source = b.layer .. "/log", target = M.LOG_INSIDE },
  }
  if network then mounts[#mounts + 1] = resolv_mount(b.base) end
  return mounts
end

--- One step's container: the base under the build's own overlay layer,
--- output also written to the log.
---
--- kind "root": root in the container, the host's network, the source tree
--- read-only on /build/NAME (installing the build dependencies).
--- kind "build": the build user (become_build_user), its own network
--- namespace unless b.network_in_build, the build's results directory on
--- /build and the source tree on /build/NAME through an overlay.
--- kind "check": the build user, no network, the results read-only on
--- /build.
---@param b pflask.DebuildBuild
---@param script string sh script
---@param kind "root"|"build"|"check"
---@return integer status
function M.run_step(b, script, kind)
  local setenv = {}
  for i, e in ipairs(APT_ENV) do setenv[i] = e end
  for _, name in ipairs(PASS_ENV) do
    if b.settings[name] then setenv[#setenv + 1] = { name = name, value = b.settings[name] } end
  end
  local tree = "/build/" .. b.name
  local network = kind == "root" or (kind == "build" and b.network_in_build)
  local mounts = base_mounts(b, network)
  local chdir = tree
  if kind == "root" then
    mounts[#mounts + 1] = { type = "bind", source = b.dir, target = tree, readonly = true }
  elseif kind == "build" then
    mounts[#mounts + 1] = { type = "bind", source = b.layer .. "/results", target = "/build" }
    mounts[#mounts + 1] = { type = "bind", source = b.dir, target = tree, readonly = true }
    mounts[#mounts + 1] = { type = "overlay", target = tree, upper = b.layer .. "/src-upper",
                            work = b.layer .. "/src-work" }
  else
    mounts[#mounts + 1] = { type = "bind", source = b.layer .. "/results", target = "/build", readonly = true }
    chdir = "/build"
  end
  local spec = {
    root = b.base, mounts = mounts, terminal = false, chdir = chdir, setenv = setenv,
    command = { "/bin/sh", "-c", TEE, "sh", M.LOG_INSIDE, "/bin/sh", "-c", script },
  }
  if kind ~= "root" then
    spec.child_setup = become_build_user(b, kind == "build" and tree or nil)
    spec.caps = { "-all" }
    spec.no_new_privs = true
  end
  if not network then spec.netifs = { { type = "none" } } end
  return pflask.run(spec)
end

--- The upstream tarballs of a 3.0 (quilt) source next to the tree
--- (SOURCE_UPSTREAM.orig.tar.*, .orig-COMPONENT.tar.*, their .asc), which
--- dpkg-source -b wants in ../: copied into the build's results
--- directory, listed and read with the invoking user's ids (a link there
--- to a file of root's must not reach the build). Returns their names.
---@param b pflask.DebuildBuild
---@return table<string, boolean>
local function copy_in_origs(b)
  local upstream = b.src.upstream_version:gsub("%-[^%-]*$", "")
  local stem = b.src.source .. "_" .. upstream
  local listing = capture(M.join(concat(M.as_user(b.user), {
    "find", b.parent, "-maxdepth", "1", "-type", "f", "(", "-name", stem .. ".orig.tar.*", "-o",
    "-name", stem .. ".orig-*.tar.*", ")", "-printf", "%f\n" })) .. " 2>/dev/null") or ""
  local names = {}
  for name in listing:gmatch("[^\n]+") do
    if M.plain_name(name) then
      local to = b.layer .. "/results/" .. name
      local cmd = M.join(concat(M.as_user(b.user), { "perl", "-e", PERL_CAT, b.parent .. "/" .. name }))
        .. " >" .. M.quote(to)
      if os.execute(cmd) ~= true then fail("cannot read %s/%s", b.parent, name) end
      names[name] = true
    end
  end
  return names
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

--- A result's name is a plain file name of the build's results directory
--- (the .changes comes from the build: no "/", no "..").
---@param name string
---@return boolean
function M.plain_name(name)
  return name:match("^[%w][%w%.%+%-_~]*$") ~= nil
end

--- The .changes dpkg-buildpackage wrote (in the build's results
--- directory), as a file name, or nil.
function M.find_changes(b)
  local stem = b.src.source .. "_" .. b.src.upstream_version .. "_"
  for _, suffix in ipairs({ b.arch, "source", "all" }) do
    local name = stem .. suffix .. ".changes"
    local st = core.lstat(b.layer .. "/results/" .. name)
    if st and st.type == "file" then return name end
  end
end

--- Copy a file of the build's results directory to the results directory
--- (the source tree's parent), written as the invoking user. The build is
--- over (its pid namespace is gone) and the layer is root's: nothing can
--- change the file between the check and the open.
---@return boolean|nil ok, string|nil why not
local function copy_result(b, name)
  if not M.plain_name(name) then return nil, "not a plain file name" end
  local from = b.layer .. "/results/" .. name
  local st = core.lstat(from)
  if not st or st.type ~= "file" then return nil, "the build made no regular file of that name" end
  local to = (b.parent == "/" and "" or b.parent) .. "/" .. name
  local cmd = M.join(concat({ "sh", "-c", 'exec <"$1"; shift; exec "$@"', "sh", from }, M.as_user(b.user),
                            { "perl", "-e", PERL_WRITE, to }))
  local p = io.popen(cmd .. " 2>&1", "r")
  if not p then return nil, "cannot start the copy" end
  local out = p:read("a")
  local ok = p:close()
  if not ok or out ~= "ok\n" then return nil, (out:match("^([^\n]*)") or "failed") end
  return true
end

--- Copy the results named in the .changes (and the .changes) out.
---@return string[] files copied
---@return boolean all of them
local function copy_results(b, changes)
  local files = M.changes_files(read_file(b.layer .. "/results/" .. changes))
  table.insert(files, 1, changes)
  local copied, all = {}, true
  for _, name in ipairs(files) do
    -- The upstream tarballs came from there.
    local ok, why = true, nil
    if not b.origs[name] then ok, why = copy_result(b, name) end
    if ok then
      copied[#copied + 1] = name
    else
      M.say(b, "could not copy %s to %s: %s", name, b.parent, why)
      all = false
    end
  end
  return copied, all
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
  local b = {
    dir = dir, parent = parent, name = name, src = src, dist = dist, arch = arch, base = base,
    user = user, settings = settings, extra = extra,
    -- As sbuild: no network in the build unless asked for.
    network_in_build = truthy(settings.DEBUILD_NETWORK) == true,
    logname = src.source .. "_" .. src.upstream_version .. "_" .. arch .. ".build",
    ids = M.build_ids(user),
  }
  b.log = (parent == "/" and "" or parent) .. "/" .. b.logname
  local st = core.lstat(b.log)
  if st and st.type ~= "file" then
    fail("%s exists and is not a regular file (%s): remove it", b.log, st.type)
  end
  return b
end

--- A process as "PID STARTTIME" (its start time in clock ticks since
--- boot, /proc/PID/stat field 22: a pid alone may be reused), or nil when
--- there is no such process, or only its zombie.
---@param pid integer
---@return string|nil
function M.process_id(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  -- The command name (field 2) may hold blanks and parentheses.
  local rest = stat and stat:match("^.*%)%s+(.*)$")
  if not rest then return nil end
  local fields = M.words(rest)
  if fields[1] == "Z" or fields[1] == "X" then return nil end
  return fields[20] and (pid .. " " .. fields[20]) or nil
end

--- This process's owner line: "PID STARTTIME PIDNS" (the pid namespace's
--- inode: pids of another namespace cannot be checked from here).
local function owner_line()
  local ns = core.stat("/proc/self/ns/pid")
  return string.format("%s %d", M.process_id(core.getpid()), ns and ns.ino or 0)
end

--- Remove the temporary directories of builds whose pflask-debuild is
--- gone (killed with SIGKILL, or the machine stopped): root's
--- pflask-debuild.* directories in tmp whose owner file names a process of
--- this pid namespace that no longer exists. Those without an owner file
--- (a build that is just starting) or of another pid namespace are left
--- alone.
---@param tmp string
function M.sweep(tmp)
  local list = capture("find " .. M.quote(tmp) .. " -mindepth 1 -maxdepth 1 -type d -user 0 "
                       .. "-name 'pflask-debuild.*' 2>/dev/null") or ""
  local my_ns = owner_line():match("(%d+)$")
  for dir in list:gmatch("[^\n]+") do
    local owner = read_file(dir .. "/owner")
    local pid, start, ns = (owner or ""):match("^(%d+) (%d+) (%d+)\n$")
    if pid and ns == my_ns and M.process_id(math.tointeger(tonumber(pid))) ~= pid .. " " .. start then
      core.remove_tree(dir)
    end
  end
end

--- A temporary directory for the build ($TMPDIR, else /var/tmp: on disk,
--- builds can be large), root's and 0700; the base's upper layer takes the
--- base root's owner and mode, which overlayfs shows as those of "/", the
--- source's upper layer those of the source tree's top directory; the
--- results directory (the build's /build) is the build user's; the log
--- FIFO is writable by the build user (through its bind only: the
--- directory is closed to everyone else).
local function make_layer(b)
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/var/tmp" end
  M.sweep(tmp)
  local dir = perr.check("temporary layer", core.mkdtemp(tmp .. "/pflask-debuild.XXXXXX"))
  local ok, err = pcall(function()
    -- Who owns it, for M.sweep.
    local f = perr.check("temporary layer", io.open(dir .. "/owner", "w"))
    f:write(owner_line(), "\n")
    f:close()
    for _, sub in ipairs({ "/upper", "/work", "/results", "/src-upper", "/src-work" }) do
      perr.check("temporary layer", core.mountpoint(dir, sub, "directory"))
    end
    local st = perr.check("temporary layer", core.stat(b.base))
    perr.check("temporary layer", core.chmod(dir .. "/upper", st.mode & 4095))
    perr.check("temporary layer", core.chown(dir .. "/upper", st.uid, st.gid))
    local uid, gid = build_host_ids(b)
    perr.check("temporary layer", core.chown(dir .. "/results", uid, gid))
    -- The same for the source tree's upper layer, which overlayfs shows as
    -- the tree's top directory (then given to the build user with the rest).
    local tree = perr.check("temporary layer", core.stat(b.dir))
    perr.check("temporary layer", core.chmod(dir .. "/src-upper", tree.mode & 4095))
    perr.check("temporary layer", core.chown(dir .. "/src-upper", tree.uid, tree.gid))
    if os.execute("mkfifo -m 0622 " .. M.quote(dir .. "/log")) ~= true then
      fail("temporary layer: mkfifo %s/log failed", dir)
    end
  end)
  if not ok then core.remove_tree(dir); error(err, 0) end
  return dir
end

--- The build log: a helper (root's sh) opens the layer's FIFO for reading,
--- drops to the invoking user and opens the log once, with O_NOFOLLOW and
--- O_CREAT (PERL_WRITE); everything written to the FIFO (progress lines
--- from here, the steps' output from inside) lands in the log.
local function start_log(b)
  local fifo = b.layer .. "/log"
  local cmd = M.join(concat({ "sh", "-c", 'exec <"$1"; shift; exec "$@"', "sh", fifo }, M.as_user(b.user),
                            { "perl", "-e", PERL_WRITE, b.log }))
  b.log_writer = assert(io.popen(cmd, "r"))
  b.log_fh = perr.check("build log", io.open(fifo, "a")) -- meets the helper's open
  local answer = b.log_writer:read("l")
  if answer ~= "ok" then
    b.log_fh:close()
    b.log_fh = nil
    b.log_writer:close()
    b.log_writer = nil
    fail("cannot write the build log %s: %s", b.log, answer or "the helper failed")
  end
end

local function stop_log(b)
  if not b.log_fh then return end
  b.log_fh:close()
  b.log_fh = nil
  local ok = b.log_writer:close()
  b.log_writer = nil
  if not ok then M.say(nil, "writing the build log %s failed", b.log) end
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
    return M.run_step(b, "apt-get update", "root")
  end)
  if status ~= 0 then return status end

  status = step(2, "installing build dependencies (mk-build-deps)", function()
    return M.run_step(b, "set -e; d=$(mktemp -d); cd \"$d\"; "
      .. "mk-build-deps -i -r -t 'apt-get -y --no-install-recommends' "
      .. M.quote("/build/" .. b.name .. "/debian/control"), "root")
  end)
  if status ~= 0 then return status end

  local opts = M.buildpackage_options(b.settings, b.extra)
  b.origs = copy_in_origs(b)
  status = step(3, "building (dpkg-buildpackage " .. table.concat(opts, " ")
                .. (b.network_in_build and "" or ", without network") .. ", as " .. M.BUILD_USER .. ")", function()
    return M.run_step(b, "dpkg-buildpackage " .. M.join(opts), "build")
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
      local st = M.run_step(b, "lintian " .. M.join(lopts) .. " " .. M.quote("/build/" .. changes), "check")
      if st ~= 0 then return 0, string.format("lintian reported problems (exit %d), see above", st) end
      return 0
    end)
  end

  local files
  if changes then
    local all
    files, all = copy_results(b, changes)
    if not all then return perr.FAILURE end
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

  if files then M.say(b, "results in %s: %s", b.parent, table.concat(files, " ")) end
  return 0
end

--- Build the source tree described by b; returns the exit status.
---@param b pflask.DebuildBuild
---@return integer
function M.build(b)
  local t0 = now()
  b.layer = make_layer(b)
  local ok, status = pcall(function()
    start_log(b)
    M.say(b, "building %s %s for %s-%s in a throwaway container of %s", b.src.source, b.src.version,
          b.dist, b.arch, b.base)
    local st = run_steps(b)
    if st == 0 then
      M.say(b, "done in %s; log: %s", M.duration(now() - t0), b.log)
    else
      M.say(b, "build failed after %s; log: %s", M.duration(now() - t0), b.log)
    end
    return st
  end)
  stop_log(b)
  core.remove_tree(b.layer)
  if not ok then error(status, 0) end
  return status
end

return M
