-- The start path's short ways (issue 15) give what the long ways gave:
-- the /proc masks made with the new mount API (open_tree, mount_setattr on
-- the detached copy, move_mount) are the mounts mount(2) makes on kernels
-- without it, seen in /proc/self/mountinfo, in a real container and side
-- by side, as root and rootless; the bounding set core.caps_bounding reads
-- is the one CapBnd shows, and dropping without reading first still fails
-- only for a capability that is there.
local pft = require "pftest"

local CHECK = pft.SOURCE_DIR .. "/tests/integration/startpath/check.lua"
local CAPS = pft.SOURCE_DIR .. "/tests/integration/startpath/caps.lua"
local PATH = pft.USER_PATH
local SETPCAP = 8

--- Mount entries of a mountinfo text: the topmost mount on `at` and every
--- mount under it (by parent id), in order, each as one comparable line:
--- its mount point relative to `at`, its parent's, the filesystem's root,
--- mount options, optional fields (propagation), type, source and super
--- options. Mount ids and device numbers differ from one instance to
--- the next and are left out.
local function tree(text, at)
  local entries, by_id, top = {}, {}, nil
  for line in text:gmatch("[^\n]+") do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    local sep
    for i = 7, #f do if f[i] == "-" then sep = i break end end
    if sep then
      local e = { id = f[1], parent = f[2], root = f[4], point = f[5], options = f[6],
        optional = sep > 7 and table.concat(f, ",", 7, sep - 1) or "none", fstype = f[sep + 1], source = f[sep + 2],
        super = f[sep + 3] }
      entries[#entries + 1] = e
      by_id[e.id] = e
      if e.point == at then top = e end
    end
  end
  assert(top, "no mount on " .. at .. " in:\n" .. text)
  local inside = { [top.id] = "" }
  local out = {}
  for _, e in ipairs(entries) do
    local parent = inside[e.parent]
    if e == top or parent then
      local rel = e == top and "" or e.point:sub(#at + 1)
      inside[e.id] = rel
      out[#out + 1] = table.concat({ rel == "" and "." or rel, e == top and "-" or (parent == "" and "." or parent),
          e.root, e.options, e.optional, e.fstype, e.source, e.super }, " ")
    end
  end
  return out, by_id
end

local function find(list, rel)
  for _, line in ipairs(list) do
    if line:sub(1, #rel + 1) == rel .. " " then return line end
  end
end

local status_field = pft.status_field

local function host_bounding()
  return status_field(pft.read_file("/proc/self/status"), "CapBnd")
end

describe("start path", function()
  local user, name, home, exe, dirs

  setup(function()
    user = pft.rootless_user()
    name, home, exe = user.name, user.home, user.exe
  end)

  teardown(function()
    if user then user:remove() end
  end)

  local mounts_before
  before_each(function()
    dirs = {}
    mounts_before = pft.mounts()
  end)
  after_each(function()
    for _, d in ipairs(dirs) do pft.rm_rf(d) end
    assert.equal(mounts_before, pft.mounts())
  end)

  local WORLDS = {
    root = {},
    rootless = {},
  }

  -- Run argv as root, or as the throwaway user with a public pflask.
  local function run(world, argv, opts)
    opts = opts or {}
    if world == "rootless" then
      opts.user = name
      opts.env = { PATH = PATH, HOME = home, USER = name }
      opts.prefix = "cd / &&"
    end
    return pft.run(argv, opts)
  end

  local function pflask(world)
    return world == "rootless" and exe or pft.PFLASK
  end

  -- Four mount points, for the side-by-side script.
  local function points(world)
    local out = {}
    for i = 1, 4 do
      local d = pft.tempdir("mp")
      dirs[#dirs + 1] = d
      if world == "rootless" then assert(pft.sh("chown " .. name .. ": " .. d) == 0) end
      out[i] = d
    end
    return out
  end

  -- The script in a mount and pid namespace of its own (and a user
  -- namespace, rootless): its four proc mounts go with it.
  local function side_by_side(world)
    local p = points(world)
    local unshare = world == "rootless" and { "unshare", "-U", "-r", "-m", "-p", "-f" }
      or { "unshare", "-m", "-p", "-f", "--propagation", "private" }
    local argv = unshare
    for _, a in ipairs({ pflask(world), "--recipe=" .. CHECK, p[1], p[2], p[3], p[4] }) do argv[#argv + 1] = a end
    local r = run(world, argv)
    assert.equal(0, r.status, r.stderr)
    return r.stdout, p
  end

  for world in pairs(WORLDS) do
    describe(world, function()
      it("makes the same /proc masks with the new mount API and with mount(2)", function()
        local out, p = side_by_side(world)
        local new, legacy = tree(out, p[1]), tree(out, p[2])
        assert.same(legacy, new)
        -- What the masks are: read-only binds of /proc's own tree, the
        -- host's /dev/null, an empty read-only tmpfs.
        assert.matches("^/sys %. /sys ro,", find(new, "/sys"))
        assert.matches("^/kallsyms %. /null ", find(new, "/kallsyms"))
        if pft.sh("test -d /proc/acpi") == 0 then
          assert.matches("^/acpi %. / ro,%S* none tmpfs tmpfs ", find(new, "/acpi"))
        end
        if pft.sh("test -e /proc/kcore") == 0 then
          assert.matches("^/kcore %. /null ", find(new, "/kcore"))
        else
          assert.is_nil(find(new, "/kcore"))
        end
        -- A writable part of the read-only tree, "hide" of a file and of
        -- directories; what does not exist is skipped either way.
        new, legacy = tree(out, p[3]), tree(out, p[4])
        assert.same(legacy, new)
        assert.matches("^/sys %. /sys ro,", find(new, "/sys"))
        assert.matches("^/sys/net /sys /sys/net rw,", find(new, "/sys/net"))
        assert.matches("^/keys %. /null ", find(new, "/keys"))
        assert.matches("^/tty %. / ro,%S* none tmpfs tmpfs ", find(new, "/tty"))
        assert.matches("^/bus %. / ro,%S* none tmpfs tmpfs ", find(new, "/bus"))
        assert.is_nil(find(new, "/no-such-path"))
        -- A required path that is not there: the same error either way.
        local required = {}
        for how, line in out:gmatch("required (%a+): ([^\n]*)") do required[how] = line end
        assert.equal("nil /no-such-path: No such file or directory 2", required.new)
        assert.equal(required.new, required.legacy)
      end)

      it("gives a container the /proc masks mount(2) makes", function()
        local out, p = side_by_side(world)
        local r = run(world, { pflask(world), "--", "cat", "/proc/self/mountinfo" })
        assert.equal(0, r.status, r.stderr)
        assert.same(tree(out, p[2]), tree(r.stdout, "/proc"))
      end)

      it("reads the bounding set CapBnd shows, with or without /proc", function()
        local with_proc = run(world, { pflask(world), "--recipe=" .. CAPS })
        assert.equal(0, with_proc.status, with_proc.stderr)
        -- /proc covered by an empty tmpfs in a mount namespace of its own
        -- (rootless: a user namespace's full set, compared with itself).
        local unshare = world == "rootless" and { "unshare", "-U", "-r", "-m" } or { "unshare", "-m" }
        local argv = {}
        for _, a in ipairs(unshare) do argv[#argv + 1] = a end
        for _, a in ipairs({ "sh", "-c", 'grep CapBnd /proc/self/status; mount -t tmpfs none /proc && '
          .. 'test ! -e /proc/self/status && exec "$0" --recipe="$1"', pflask(world), CAPS }) do
          argv[#argv + 1] = a
        end
        local without = run(world, argv)
        assert.equal(0, without.status, without.stderr)
        local inside_ns = status_field(without.stdout, "CapBnd")
        assert.equal(inside_ns, tonumber(without.stdout:match("\n(%x+)\n$"), 16), without.stdout)
        if world == "root" then
          assert.equal(host_bounding(), tonumber(with_proc.stdout, 16))
          assert.equal(host_bounding(), inside_ns)
        else
          assert.equal(host_bounding(), tonumber(with_proc.stdout, 16)) -- the user's own: the host's
        end
      end)

      it("makes a --chroot's /dev in one call: nodes (bound rootless), pts, shm and the links", function()
        local root = pft.tempdir("root")
        dirs[#dirs + 1] = root
        pft.make_rootfs(root)
        for _, a in ipairs({ "stat", "readlink" }) do pft.sh("ln -sf busybox " .. root .. "/bin/" .. a) end
        local r = run(world, { pflask(world), "--chroot=" .. root, "--", "sh", "-c",
          'cd /dev && for f in *; do if [ -L $f ]; then echo "$f -> $(readlink $f)"; '
          .. 'else stat -c "%n %F %a %t:%T" $f; fi; done; grep " /dev" /proc/self/mountinfo' })
        assert.equal(0, r.status, r.stderr)
        local listing = r.stdout:gsub("\n[^\n]* /dev[^\n]*", "")
        assert.equal(table.concat({
          "fd -> /proc/self/fd", "full character special file 666 1:7",
          "null character special file 666 1:3", "ptmx -> pts/ptmx", "pts directory 755 0:0",
          "random character special file 666 1:8", "shm directory 1777 0:0",
          "stderr -> /proc/self/fd/2", "stdin -> /proc/self/fd/0", "stdout -> /proc/self/fd/1",
          "tty character special file 666 5:0", "urandom character special file 666 1:9",
          "zero character special file 666 1:5", "" }, "\n"), listing)
        local mounts = {}
        for point, fstype in r.stdout:gmatch("%S+ %S+ %S+ %S+ (/dev%S*) [^\n]* %- (%S+) ") do mounts[point] = fstype end
        assert.equal("tmpfs", mounts["/dev"])
        assert.equal("devpts", mounts["/dev/pts"])
        assert.equal("tmpfs", mounts["/dev/shm"])
        -- Rootless, mknod is refused: the host's nodes, bound.
        assert.equal(world == "rootless" and "devtmpfs" or nil, mounts["/dev/null"])
      end)
    end)
  end

  it("loads libmount in a container only when a mount option needs it, never from the root", function()
    local root = pft.tempdir("root")
    dirs[#dirs + 1] = root
    pft.make_rootfs(root)
    -- pflask-init (pid 1, pflask itself) with the --chroot's mounts done
    -- (all with options) and no child_setup: libmount never loaded.
    local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", "grep -c libmount /proc/1/maps || true" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("0\n", r.stdout)
    -- A recipe's child_setup runs after pivot_root and may mount with any
    -- option: libmount is loaded before, from the host.
    local recipe_dir = pft.tempdir("recipe")
    dirs[#dirs + 1] = recipe_dir
    local recipe = pft.write_file(recipe_dir .. "/r.lua",
      'return require("pflask").run{ root = ' .. string.format("%q", root) .. ', command = { "sh", "-c", '
      .. '"grep -c libmount /proc/1/maps" }, child_setup = function() end }\n')
    r = pft.pflask({ "--recipe=" .. recipe })
    assert.equal(0, r.status, r.stderr)
    assert.is_true(tonumber(r.stdout) > 0, r.stdout)
  end)

  it("never loads a libmount planted in the new root, kept or not (attack)", function()
    if pft.sh("command -v cc >/dev/null") ~= 0 then pending("no C compiler to build the planted library") end
    for _, keep in ipairs({ "keep", "seal" }) do
      local root = pft.tempdir("root")
      dirs[#dirs + 1] = root
      pft.make_rootfs(root)
      -- A libmount.so.1 wherever the loader would look inside the root:
      -- its constructor leaves /pwned there.
      local src = pft.write_file(root .. "/evil.c",
        '#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void pwn(void) '
        .. '{ close(open("/pwned", O_WRONLY | O_CREAT, 0644)); }\n')
      assert.equal(0, pft.sh("mkdir -p " .. root .. "/mnt " .. root .. "/lib/x86_64-linux-gnu "
        .. root .. "/usr/lib/x86_64-linux-gnu && cc -shared -fPIC -o " .. root .. "/lib/libmount.so.1 " .. src
        .. " && cp " .. root .. "/lib/libmount.so.1 " .. root .. "/lib/x86_64-linux-gnu/ && cp "
        .. root .. "/lib/libmount.so.1 " .. root .. "/usr/lib/x86_64-linux-gnu/"))
      local r = pft.run({ "unshare", "-m", "--propagation", "private", pft.PFLASK,
        "--recipe=" .. pft.SOURCE_DIR .. "/tests/integration/startpath/seal.lua", root, keep })
      assert.equal(0, r.status, r.stderr)
      if keep == "keep" then
        assert.equal("mounted\n", r.stdout) -- the host's, loaded before
      else
        assert.matches("^refused: load libmount.so.1: not loaded before the root changed", r.stdout)
      end
      assert.is_nil(pft.read_file(root .. "/pwned"), keep .. ": the planted libmount ran")
    end
  end)

  it("without CAP_SETPCAP drops nothing that is not there, and fails on what is", function()
    -- setpriv takes CAP_SETPCAP from pflask's bounding set: it can no
    -- longer drop anything. --caps=+all asks to drop only what is not
    -- there: it runs, with that set inside.
    local LESS = "setpriv --bounding-set -setpcap"
    local r = pft.pflask({ "--caps=+all", "--", "grep", "CapBnd", "/proc/self/status" }, { prefix = LESS })
    assert.equal(0, r.status, r.stderr)
    assert.equal(host_bounding() & ~(1 << SETPCAP), status_field(r.stdout, "CapBnd"))
    -- The default set drops capabilities that are there: one line, 125.
    r = pft.pflask({ "--", "true" }, { prefix = LESS })
    assert.equal(125, r.status)
    assert.matches("^pflask: [^\n]*drop cap_[%w_]+ from the bounding set: Operation not permitted\n$", r.stderr)
  end)
end)
