-- --chroot (pivot_root into a busybox tree), the command's environment,
-- --user resolved in the container's root, the working directory, the
-- default command and standard streams (pflask(1), OPTIONS, ENVIRONMENT).
local pft = require "pftest"

local DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

-- Lines of text as a set.
local function line_set(text)
  local set = {}
  for line in text:gmatch("[^\n]+") do set[line] = true end
  return set
end

-- NAME=VALUE lines as a table (values without newlines only).
local function parse_env(text)
  local env = {}
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^([^=]+)=(.*)$")
    if k then env[k] = v end
  end
  return env
end

local write_file = pft.write_file

-- Everything about a tree that a container could change: names, types,
-- modes, owners, sizes, link targets and modification times.
local snapshot = pft.snapshot

-- The host's root mount: "major:minor" of the file system on /.
local function host_root_device()
  for line in io.lines("/proc/self/mountinfo") do
    local dev, mountpoint = line:match("^%S+ %S+ (%S+) %S+ (%S+)")
    if mountpoint == "/" then return dev end
  end
end

describe("--chroot and the environment", function()
  local mounts_before, root
  before_each(function()
    mounts_before = pft.mounts()
    root = pft.tempdir("root")
    pft.make_rootfs(root)
  end)
  after_each(function()
    pft.rm_rf(root)
    assert.equal(mounts_before, pft.mounts())
  end)

  describe("--chroot", function()
    it("runs the command inside the root directory", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c",
        "ls -a /; test -x /bin/busybox && echo busybox; test -e /usr || echo no-usr" })
      assert.equal(0, r.status, r.stderr)
      local expected = pft.capture("ls -a " .. root)
      assert.equal(expected .. "\nbusybox\nno-usr\n", r.stdout)
      assert.equal("", r.stderr)
    end)

    it("also with the short option -r and a relative path", function()
      local parent, name = root:match("^(.*)/([^/]+)$")
      local r = pft.pflask({ "-r", name, "--", "sh", "-c", "ls /" },
        { prefix = "cd " .. pft.quote(parent) .. " &&" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(pft.capture("ls " .. root) .. "\n", r.stdout)
    end)

    it("uses pivot_root: the old root is unreachable", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c",
        "cat /proc/self/mountinfo; echo ==; ls -a /proc/1/root; echo ==; cd /..; ls -a ." })
      assert.equal(0, r.status, r.stderr)
      local mountinfo, proc1root, dotdot = r.stdout:match("^(.-)==\n(.-)==\n(.*)$")
      assert.is_not_nil(mountinfo, r.stdout)
      local host_dev = host_root_device()
      local roots = 0
      for line in mountinfo:gmatch("[^\n]+") do
        local dev, fsroot, mountpoint = line:match("^%S+ %S+ (%S+) (%S+) (%S+)")
        assert.is_not_nil(mountpoint, line)
        if mountpoint == "/" then
          roots = roots + 1
          assert.are_not.equal("/", fsroot, "the root mount is the host's root: " .. line)
        else
          -- Only the container's own mounts (/proc, /dev...) under its root;
          -- nothing of the host's root file system anywhere but at /.
          assert.are_not.equal(host_dev, dev, "a mount of the host's root device: " .. line)
          assert.is_nil(mountpoint:match("old"), line)
        end
      end
      -- Exactly one mount is the root: nothing stacked or left from the pivot.
      assert.equal(1, roots, mountinfo)
      local expected = pft.capture("ls -a " .. root) .. "\n"
      assert.equal(expected, proc1root)
      assert.equal(expected, dotdot)
    end)

    it("leaves the root directory on disk as it was", function()
      local before = snapshot(root)
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", "ls /; cat /etc/passwd; id" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(before, snapshot(root))
    end)

    it("keeps what the command writes in the root directory", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "sh", "-c", "echo data >/tmp/written" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("data", (pft.capture("cat " .. root .. "/tmp/written")))
    end)

    it("starts in / by default", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "pwd" }, { prefix = "cd /usr/share &&" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("/\n", r.stdout)
    end)

    it("starts in --chdir inside the root", function()
      local r = pft.pflask({ "--chroot=" .. root, "--chdir=/tmp", "--", "pwd" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("/tmp\n", r.stdout)
      local short = pft.pflask({ "-r", root, "-c", "/home/alice", "--", "sh", "-c", "pwd; ls -d ../alice" })
      assert.equal(0, short.status, short.stderr)
      assert.equal("/home/alice\n../alice\n", short.stdout)
    end)

    it("refuses a --chdir that exists on the host but not in the root", function()
      local r = pft.pflask({ "--chroot=" .. root, "--chdir=/usr", "--", "sh", "-c", "echo ran" })
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert.matches("^pflask: %-%-chdir: [^\n]*\n$", r.stderr)
    end)
  end)

  describe("environment", function()
    it("is cleared with --chroot except TERM, and set for root", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "env" },
        { env = { TERM = "xterm", FOO = "bar", SHELL = "/bin/false", PFTEST_X = "1" } })
      assert.equal(0, r.status, r.stderr)
      local env = parse_env(r.stdout)
      -- busybox env prints what it got; sh is not involved, so no PWD/SHLVL
      assert.same({
        TERM = "xterm",
        PATH = DEFAULT_PATH,
        USER = "root",
        LOGNAME = "root",
        HOME = "/root",
        container = "pflask",
      }, env)
    end)

    it("has no TERM with --chroot when pflask has none", function()
      local r = pft.pflask({ "--chroot=" .. root, "--", "env" }, { prefix = "env -u TERM" })
      assert.equal(0, r.status, r.stderr)
      local env = parse_env(r.stdout)
      assert.is_nil(env.TERM)
      assert.equal("pflask", env.container)
      assert.equal(DEFAULT_PATH, env.PATH)
    end)

    it("is kept with --chroot and --keepenv", function()
      local r = pft.pflask({ "--chroot=" .. root, "--keepenv", "--", "env" },
        { env = { TERM = "xterm", FOO = "bar" } })
      assert.equal(0, r.status, r.stderr)
      local env = parse_env(r.stdout)
      assert.equal("bar", env.FOO)
      assert.equal("xterm", env.TERM)
      assert.equal("pflask", env.container)
      local k = pft.pflask({ "-k", "-r", root, "--", "env" }, { env = { FOO = "baz" } })
      assert.equal("baz", parse_env(k.stdout).FOO)
    end)

    it("gets --setenv variables, in every case", function()
      local r = pft.pflask({ "--chroot=" .. root, "--setenv=A=1,B=2", "-s", "C=x=y", "--setenv", "D=",
        "--", "env" }, { env = { FOO = "bar" } })
      assert.equal(0, r.status, r.stderr)
      local env = parse_env(r.stdout)
      assert.equal("1", env.A)
      assert.equal("2", env.B)
      assert.equal("x=y", env.C)
      assert.equal("", env.D)
      assert.is_nil(env.FOO)
      assert.equal("pflask", env.container)

      local host = pft.pflask({ "--setenv=A=1,B=2", "-s", "FOO=over", "--", "env" }, { env = { FOO = "bar" } })
      assert.equal(0, host.status, host.stderr)
      local henv = parse_env(host.stdout)
      assert.equal("1", henv.A)
      assert.equal("2", henv.B)
      assert.equal("over", henv.FOO)
    end)

    it("is the host's, plus container=pflask, without --chroot", function()
      local opts = { env = { FOO = "bar", TERM = "vt100" } }
      local inside = pft.pflask({ "--", "env" }, opts)
      assert.equal(0, inside.status, inside.stderr)
      local outside = pft.run({ "env" }, opts)
      local expected = line_set(outside.stdout)
      expected["container=pflask"] = true
      assert.same(expected, line_set(inside.stdout))
    end)
  end)

  describe("--user inside the root", function()
    it("resolves the user from the root's /etc/passwd", function()
      local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--", "sh", "-c",
        "id -u; id -g; echo $HOME $USER $LOGNAME; pwd" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("1000\n1000\n/home/alice alice alice\n/\n", r.stdout)
    end)

    it("with the root's /etc/group supplementary groups (no user namespace)", function()
      local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--no-userns", "--", "sh", "-c",
        "id; echo $HOME $USER $LOGNAME" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("uid=1000(alice) gid=1000(alice) groups=1000(alice),1001(staff)\n"
        .. "/home/alice alice alice\n", r.stdout)
    end)

    it("with the supplementary groups when --user-map maps them", function()
      local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--user-map=0:0:65536", "--", "id" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("uid=1000(alice) gid=1000(alice) groups=1000(alice),1001(staff)\n", r.stdout)
    end)

    it("uses the root's passwd, not the host's", function()
      -- a uid that the rootfs gives to alice but the host may give to anyone
      local other = pft.tempdir("root2")
      pft.make_rootfs(other, { uid = 4321, gid = 4322 })
      local r = pft.pflask({ "--chroot=" .. other, "--user=alice", "--no-userns", "--", "sh", "-c", "id -u; id -g" })
      pft.rm_rf(other)
      assert.equal(0, r.status, r.stderr)
      assert.equal("4321\n4322\n", r.stdout)
    end)

    it("refuses a user that is not in the root's passwd (125, one line naming --user)", function()
      local r = pft.pflask({ "--chroot=" .. root, "--user=pftest-nobody", "--", "sh", "-c", "echo ran" })
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert.matches("^pflask: %-%-user: [^\n]*pftest%-nobody[^\n]*\n$", r.stderr)
    end)

    it("does not follow a symlinked /etc/passwd out of the root", function()
      -- A passwd on the host with a user that must stay invisible.
      local evil = pft.tempdir("evil")
      write_file(evil .. "/passwd", "evil:x:4242:4242:Evil:/:/bin/sh\n")
      write_file(evil .. "/group", "evil:x:4242:\n")
      assert.equal(0, pft.sh("rm " .. root .. "/etc/passwd " .. root .. "/etc/group"))
      local cases = {
        -- absolute, climbing above the root
        "/etc/../../../../../../.." .. evil .. "/passwd",
        -- relative, climbing above the root
        "../../../../../../../.." .. evil .. "/passwd",
        -- absolute, straight at the host path
        evil .. "/passwd",
      }
      for _, target in ipairs(cases) do
        assert.equal(0, pft.sh("ln -sfn " .. pft.quote(target) .. " " .. root .. "/etc/passwd"))
        -- --no-userns: were the host file read, the command would run as 4242
        local r = pft.pflask({ "--chroot=" .. root, "--user=evil", "--no-userns", "--", "id", "-u" })
        assert.equal(125, r.status, target .. ": " .. r.stdout .. r.stderr)
        assert.equal("", r.stdout)
        assert.matches("^pflask: %-%-user: [^\n]*\n$", r.stderr)
        assert.is_nil(r.stderr:find("4242", 1, true))
      end
      pft.rm_rf(evil)
    end)

    it("follows a symlinked /etc/passwd inside the root", function()
      assert.equal(0, pft.sh("mv " .. root .. "/etc/passwd " .. root .. "/etc/passwd.real && ln -s /etc/passwd.real "
        .. root .. "/etc/passwd"))
      local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--no-userns", "--", "id", "-u" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("1000\n", r.stdout)
    end)
  end)

  describe("without a command", function()
    it("runs the root user's shell from the root's passwd, as a login shell (argv[0] -ash)", function()
      -- a shell only the rootfs knows, given to root in its passwd
      local other = pft.tempdir("root3")
      pft.make_rootfs(other, { shell = "/bin/ash" })
      assert.equal(0, pft.sh("ln -s busybox " .. other .. "/bin/ash"))
      local r = pft.pflask({ "--chroot=" .. other }, { stdin = "echo $0; echo $$ $HOME\n" })
      pft.rm_rf(other)
      assert.equal(0, r.status, r.stderr)
      assert.equal("-ash\n2 /root\n", r.stdout)
    end)

    it("runs --user's shell from the root's passwd", function()
      local r = pft.pflask({ "--chroot=" .. root, "--user=alice", "--no-userns" },
        { stdin = "echo $0; id -u; tr '\\0' ' ' </proc/$$/cmdline; readlink /proc/$$/exe\nexit 9\n" })
      assert.equal(9, r.status, r.stderr)
      -- The file exec'd is the shell; only argv[0] says "login".
      assert.equal("-sh\n1000\n-sh /bin/busybox\n", r.stdout)
    end)
  end)

  describe("standard streams", function()
    it("pass stdin and stdout through a pipe", function()
      local out, status = pft.capture("echo hi | timeout 20 " .. pft.quote(pft.PFLASK) .. " -- cat | wc -c")
      assert.equal(0, status)
      assert.equal("3", out:match("%d+"))
      local out2 = pft.capture("printf 'a\\nb\\n' | timeout 20 " .. pft.quote(pft.PFLASK)
        .. " --chroot=" .. root .. " -- wc -l")
      assert.equal("2", out2:match("%d+"))
    end)

    it("pass files for stdin, stdout and stderr, with and without --chroot", function()
      local dir = pft.tempdir("streams")
      write_file(dir .. "/in", "line1\nline2\n")
      for _, extra in ipairs({ "", " --chroot=" .. root }) do
        local cmd = "timeout 20 " .. pft.quote(pft.PFLASK) .. extra
          .. " -- sh -c 'cat; echo to-err >&2; echo to-out' <" .. dir .. "/in >" .. dir .. "/out 2>" .. dir .. "/err"
        assert.equal(0, pft.sh(cmd))
        assert.equal("line1\nline2\nto-out", (pft.capture("cat " .. dir .. "/out")))
        assert.equal("to-err", (pft.capture("cat " .. dir .. "/err")))
      end
      pft.rm_rf(dir)
    end)

    it("pass /dev/null as it is", function()
      local dir = pft.tempdir("null")
      local cmd = "timeout 20 " .. pft.quote(pft.PFLASK)
        .. " -- sh -c 'readlink /proc/self/fd/0; cat; echo err >&2' </dev/null >" .. dir .. "/out 2>/dev/null"
      assert.equal(0, pft.sh(cmd))
      assert.equal("/dev/null", (pft.capture("cat " .. dir .. "/out")))
      local out = pft.capture("timeout 20 " .. pft.quote(pft.PFLASK)
        .. " -- sh -c 'l=$(readlink /proc/$$/fd/1); echo $l >&2; echo hidden' </dev/null 2>&1 >/dev/null")
      assert.equal("/dev/null", out)
      -- In a chroot without /dev (a root whose /dev is a link that leads
      -- nowhere: nothing to mount it on, and nothing is made through it),
      -- the inherited descriptors still work: stdin is the host's
      -- /dev/null, stdout and stderr reach their files.
      local nodev = pft.tempdir("nodev")
      finally(function() pft.rm_rf(nodev) end)
      pft.make_rootfs(nodev)
      assert.equal(0, pft.sh("rmdir " .. nodev .. "/dev && ln -s /nonexistent-pftest-dev " .. nodev .. "/dev"))
      local inroot, status = pft.capture("timeout 20 " .. pft.quote(pft.PFLASK) .. " --chroot=" .. nodev
        .. " -- sh -c 'test -e /dev || echo no-dev; cat; echo visible; echo to-err >&2' </dev/null 2>"
        .. dir .. "/err")
      assert.equal(0, status, pft.read_file(dir .. "/err"))
      assert.equal("no-dev\nvisible", inroot)
      assert.equal("to-err\n", pft.read_file(dir .. "/err"))
      assert.equal(1, pft.sh("test -e " .. nodev .. "/dev"), "a /dev was made in the root on disk")
      pft.rm_rf(dir)
    end)
  end)
end)
