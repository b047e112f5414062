-- pflask-debuild: build a Debian package in a clean, throwaway container.
--
--   DIST=bookworm pflask-debuild --create   debootstrap the base once
--   DIST=bookworm pflask-debuild --update   refresh it
--   pflask-debuild [--network] [--no-conf] [-- DPKG-BUILDPACKAGE-OPTIONS]
--                                           in an unpacked source tree
--
-- See pflask-debuild(1); the work is in the pflask.debuild module.

local core = require "pflask.core"
local perr = require "pflask.error"
local debuild = require "pflask.debuild"

local USAGE = [[
Usage: pflask-debuild [OPTIONS] [-- DPKG-BUILDPACKAGE-OPTIONS]
       DIST=DIST pflask-debuild --create | --update

Builds the Debian source package in the current directory in a throwaway
container of a cached base system (PFLASK_CACHE, default /var/cache/pflask,
holds base-DIST-ARCH). The build runs as an unprivileged build user, without
network, and never modifies the source tree. Results and the build log land
next to the source directory, written as the invoking user.

Options:
  --create        debootstrap the base for DIST and ARCH
  --update        apt-get update, dist-upgrade, autoremove, autoclean in it
  --network       let the build reach the network (default: only the
                  build dependencies download)
  --no-network    build without network (the default)
  --no-conf       ignore /etc/devscripts.conf and ~/.devscripts
  -h, --help      this help

Variables (environment, else ~/.devscripts, else /etc/devscripts.conf):
  DIST, ARCH, MIRROR, PFLASK_CACHE, DEBUILD_DPKG_BUILDPACKAGE_OPTS,
  DEBUILD_LINTIAN, DEBUILD_LINTIAN_OPTS, DEBUILD_SIGN, DEBUILD_NETWORK,
  DEBSIGN_KEYID, DEB_BUILD_OPTIONS, DEB_BUILD_PROFILES
]]

local function main(...)
  local args = { ... }
  local action, use_conf, network, extra = "build", true, nil, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--create" or a == "--update" then
      if action ~= "build" then perr.raise(perr.FAILURE, "--create and --update do not go together") end
      action = a:sub(3)
    elseif a == "--no-network" then
      network = "no"
    elseif a == "--network" then
      network = "yes"
    elseif a == "--no-conf" or a == "--noconf" then
      use_conf = false
    elseif a == "-h" or a == "--help" then
      io.stdout:write(USAGE)
      return 0
    elseif a == "--" then
      table.move(args, i + 1, #args, 1, extra)
      break
    else
      perr.raise(perr.FAILURE, "unknown option '%s' (pass dpkg-buildpackage options after --; see --help)", a)
    end
    i = i + 1
  end
  if action ~= "build" and #extra > 0 then
    perr.raise(perr.FAILURE, "--%s takes no dpkg-buildpackage options", action)
  end

  local env = core.environ()
  local user = debuild.invoking_user(env)
  local settings = debuild.settings(env, user, use_conf)
  if network then settings.DEBUILD_NETWORK = network end

  if action == "create" or action == "update" then
    local dist = debuild.distribution(settings, nil)
    local arch = debuild.architecture(settings)
    return debuild[action](settings, dist, arch)
  end
  local dir = perr.check("getcwd", core.getcwd())
  return debuild.build(debuild.plan(dir, settings, user, extra))
end

-- Errors print as "pflask-debuild: ...", like the progress lines.
-- PFLASK_DEBUG=1 leaves them to pflask, which adds a traceback.
if os.getenv("PFLASK_DEBUG") == "1" then return main(...) end
local ok, result = pcall(main, ...)
if ok then return result end
if perr.is(result) then
  io.stderr:write(debuild.PROGRAM, ": ", result.message, "\n")
  return result.status
end
error(result, 0)
