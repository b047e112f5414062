-- The exit status contract (pflask(1), EXIT STATUS): the command's own
-- status, 128+N when it dies of signal N, 127/126 when it cannot be run,
-- 125 when pflask itself fails; every error is one line on stderr.
local pft = require "pftest"

-- A string that only the processes of one test carry in their command
-- line, so that leftovers can be counted.
local function marker()
  return string.format("pftest-exit-%d-%06d", os.time() % 100000, math.random(0, 999999))
end

-- Exactly one line, starting with "pflask: ".
local function assert_one_error_line(stderr, pattern)
  assert.matches("^pflask: [^\n]+\n$", stderr)
  if pattern then assert.matches(pattern, stderr) end
end

-- Wait (briefly) until no process carries the marker any more.
local function assert_no_leftover(mark)
  assert.equal(0, pft.leftovers(mark), "processes left behind with " .. mark)
end

-- Run pflask with args, the marker appended to the command so that the
-- container's processes can be found; check nothing is left behind.
local function run(args, opts)
  local mark = marker()
  local argv = {}
  for i, a in ipairs(args) do argv[i] = a end
  argv[#argv + 1] = mark
  opts = opts or {}
  opts.timeout = opts.timeout or 20
  local r = pft.pflask(argv, opts)
  assert_no_leftover(mark)
  return r
end

-- A program that really faults: a signal raised by the kernel is delivered
-- even to a pid 1 (kill -SEGV $$ from pid 1 itself is ignored by design).
local function build_segfaulter(dir)
  local src = dir .. "/segv.c"
  local f = assert(io.open(src, "w"))
  f:write("int main(void) { *(volatile int *)0 = 1; return 0; }\n")
  f:close()
  local code = pft.sh("cc -O0 -o " .. dir .. "/segv " .. src .. " 2>/dev/null")
  assert.equal(0, code, "no C compiler to build the faulting program")
  return dir .. "/segv"
end

describe("exit status", function()
  local mounts_before
  before_each(function() mounts_before = pft.mounts() end)
  after_each(function() assert.equal(mounts_before, pft.mounts()) end)

  local modes = {
    { name = "the default reaper mode", args = {} },
    { name = "--as-pid1", args = { "--as-pid1" } },
    { name = "--no-pidns", args = { "--no-pidns" } },
  }

  for _, mode in ipairs(modes) do
    describe("in " .. mode.name, function()
      for _, code in ipairs({ 0, 7, 255 }) do
        it("is the command's own status " .. code, function()
          local args = {}
          for i, a in ipairs(mode.args) do args[i] = a end
          for _, a in ipairs({ "--", "sh", "-c", "echo out; echo err >&2; exit " .. code }) do
            args[#args + 1] = a
          end
          local r = run(args)
          assert.equal(code, r.status, r.stderr)
          assert.equal("out\n", r.stdout)
          assert.equal("err\n", r.stderr)
        end)
      end

      it("is 137 when the command is killed with SIGKILL", function()
        -- A pid 1 cannot be killed from inside its namespace, not even by
        -- itself, so the KILL comes from the host, as for the others.
        local duration = string.format("7.%d%06d", os.time() % 1000, math.random(0, 999999))
        local args = {}
        for i, a in ipairs(mode.args) do args[i] = a end
        for _, a in ipairs({ "--", "sleep", duration }) do args[#args + 1] = a end
        local r = pft.pflask(args, {
          timeout = 20,
          prefix = "(for i in $(seq 100); do pkill -KILL -f -x " .. pft.quote("sleep " .. duration)
            .. " && break; sleep 0.05; done) & ",
        })
        assert.equal(137, r.status, r.stderr)
        assert.equal("", r.stderr)
        assert_no_leftover("sleep " .. duration)
      end)

      it("is 139 when the command dies of a segmentation fault", function()
        local dir = pft.tempdir("segv")
        local segv = build_segfaulter(dir)
        local args = {}
        for i, a in ipairs(mode.args) do args[i] = a end
        for _, a in ipairs({ "--", segv }) do args[#args + 1] = a end
        local r = run(args, { prefix = "ulimit -c 0;" })
        pft.rm_rf(dir)
        assert.equal(139, r.status, r.stderr)
        assert.equal("", r.stderr)
      end)
    end)
  end

  it("is 128+N when the command signals itself (reaper mode)", function()
    for sig, code in pairs({ SEGV = 139, KILL = 137, TERM = 143, INT = 130, ABRT = 134 }) do
      local r = run({ "--", "sh", "-c", "kill -" .. sig .. " $$" }, { prefix = "ulimit -c 0;" })
      assert.equal(code, r.status, sig .. ": " .. r.stderr)
      assert.equal("", r.stderr)
    end
  end)

  it("is 128+N when the command signals itself (--no-pidns)", function()
    for sig, code in pairs({ SEGV = 139, KILL = 137, TERM = 143 }) do
      local r = run({ "--no-pidns", "--", "sh", "-c", "kill -" .. sig .. " $$" }, { prefix = "ulimit -c 0;" })
      assert.equal(code, r.status, sig .. ": " .. r.stderr)
      assert.equal("", r.stderr)
    end
  end)

  it("is 127 with one line for a missing command", function()
    local r = run({ "--", "nonexistent-cmd" })
    assert.equal(127, r.status)
    assert.equal("pflask: cannot run 'nonexistent-cmd': No such file or directory\n", r.stderr)
    assert.equal("", r.stdout)
  end)

  it("is 127 for a missing absolute path, also with --no-pidns and --as-pid1", function()
    for _, extra in ipairs({ {}, { "--no-pidns" }, { "--as-pid1" } }) do
      local args = {}
      for i, a in ipairs(extra) do args[i] = a end
      for _, a in ipairs({ "--", "/nonexistent/dir/cmd" }) do args[#args + 1] = a end
      local r = run(args)
      assert.equal(127, r.status, r.stderr)
      assert_one_error_line(r.stderr, "^pflask: cannot run '/nonexistent/dir/cmd': No such file or directory\n$")
    end
  end)

  it("is 126 for a file that is not executable", function()
    local dir = pft.tempdir("noexec")
    local file = dir .. "/script"
    local f = assert(io.open(file, "w"))
    f:write("#!/bin/sh\necho should not run\n")
    f:close()
    pft.sh("chmod 0644 " .. file)
    local r = run({ "--", file })
    pft.rm_rf(dir)
    assert.equal(126, r.status)
    assert.equal("", r.stdout)
    assert_one_error_line(r.stderr, "^pflask: cannot run '" .. file:gsub("%p", "%%%0") .. "': Permission denied\n$")
  end)

  it("is 126 for a directory given as the command", function()
    local dir = pft.tempdir("dircmd")
    local r = run({ "--", dir })
    pft.rm_rf(dir)
    assert.equal(126, r.status)
    assert_one_error_line(r.stderr, "^pflask: cannot run ")
  end)

  describe("is 125 with one line on stderr", function()
    it("for an unknown option", function()
      local r = run({ "--no-such-option", "--", "true" })
      assert.equal(125, r.status)
      assert_one_error_line(r.stderr, "^pflask: %-%-no%-such%-option: ")
      assert.equal("", r.stdout)
    end)

    it("for an unknown short option", function()
      local r = run({ "-Z", "--", "true" })
      assert.equal(125, r.status)
      assert_one_error_line(r.stderr, "^pflask: %-Z: ")
    end)

    it("for a missing --chroot directory", function()
      local r = run({ "--chroot=/nonexistent/pftest-root", "--", "true" })
      assert.equal(125, r.status)
      assert_one_error_line(r.stderr, "^pflask: %-%-chroot: .*/nonexistent/pftest%-root")
    end)

    it("for --chroot on a file", function()
      local dir = pft.tempdir("chrootfile")
      local file = dir .. "/file"
      pft.sh("touch " .. file)
      local r = run({ "--chroot=" .. file, "--", "true" })
      pft.rm_rf(dir)
      assert.equal(125, r.status)
      assert_one_error_line(r.stderr, "^pflask: %-%-chroot: ")
    end)

    it("for --attach to a pid that is no detached container", function()
      local r = run({ "--attach=1" })
      assert.equal(125, r.status)
      assert.equal("pflask: --attach: no detached container with pid 1\n", r.stderr)
      assert.equal("", r.stdout)
    end)

    it("for --chdir to a missing directory", function()
      local r = run({ "--chdir=/nonexistent/pftest-dir", "--", "sh", "-c", "echo ran" })
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert_one_error_line(r.stderr, "^pflask: %-%-chdir: .*/nonexistent/pftest%-dir")
    end)

    it("for a bad --user", function()
      local r = run({ "--user=pftest-no-such-user", "--", "sh", "-c", "echo ran" })
      assert.equal(125, r.status)
      assert.equal("", r.stdout)
      assert_one_error_line(r.stderr, "^pflask: %-%-user: .*pftest%-no%-such%-user")
    end)

    it("for an option that needs a value and has none", function()
      local r = pft.pflask({ "--chroot" })
      assert.equal(125, r.status)
      assert_one_error_line(r.stderr, "^pflask: %-%-chroot: ")
    end)
  end)
end)
