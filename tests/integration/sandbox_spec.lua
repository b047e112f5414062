-- The command's confinement seen from inside real containers: the default
-- seccomp filter and its edits, --rlimit, --timeout; as root and
-- rootless. System calls are made with perl's syscall() by number
-- (x86_64's), so that no libc wrapper stands in between.
local pft = require "pftest"

local x86_64 = pft.capture("uname -m"):match("^x86_64") ~= nil
local NR = { keyctl = 250, add_key = 248, getpid = 39, ioctl = 16 }

local one_line = pft.one_line

-- perl: call syscall nr with args, print "ret errno-text".
local function perl_call(nr, args)
  return { "perl", "-e", string.format('my $r = syscall(%d, %s); print "$r ", ($r < 0 ? "$!" : "ok"), "\\n"',
    nr, args or "0, 0, 0, 0, 0") }
end

local function run(args, opts)
  return pft.pflask(args, opts)
end

-- TIOCSTI (and the same request with junk in the upper 32 bits, which the
-- kernel drops) and TIOCLINUX on a pty the container opened itself.
local STI = [[
open(my $t, "+<", "/dev/ptmx") or die "ptmx: $!";
my $fd = fileno($t);
for my $req (0x5412, 0xdead00005412, 0x541C) {
  my $c = "x";
  my $r = syscall(16, $fd, $req, $c);
  printf("%#x %s\n", $req, $r < 0 ? $! + 0 : "ok");
}]]

-- A 64-bit program that makes keyctl as an i386 system call (int 0x80,
-- number 288): the way around a filter that checks x86_64 numbers only.
local INT80 = [[
#include <stdio.h>
int main(void)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(288L), "b"(0L), "c"(0L), "d"(0L) : "memory");
	printf("%ld\n", ret);
	return 0;
}
]]
local int80_dir, int80
local function build_int80()
  if int80 ~= nil then return int80 end
  int80 = false
  if not x86_64 or pft.sh("command -v cc >/dev/null 2>&1") ~= 0 then return int80 end
  int80_dir = pft.tempdir("int80")
  pft.write_file(int80_dir .. "/k.c", INT80)
  if pft.sh("cc -O1 -o " .. int80_dir .. "/k " .. int80_dir .. "/k.c 2>/dev/null") == 0
      and pft.capture(int80_dir .. "/k"):match("^%-?%d+") == "-22" then
    int80 = int80_dir .. "/k"
  end
  return int80
end
teardown(function() if int80_dir then pft.rm_rf(int80_dir) end end)

local function seccomp_fields(text)
  local out = {}
  for who, mode in text:gmatch("(%S+):Seccomp:%s*(%d)") do out[who] = tonumber(mode) end
  return out
end

local function both_worlds(label, runner)
  describe(label, function()
    before_each(function()
      if not x86_64 then pending("the syscall numbers below are x86_64's") end
    end)

    it("binds the command, never pid 1, with the default filter", function()
      local r = runner({ "--", "sh", "-c", "grep -H ^Seccomp: /proc/1/status /proc/self/status" })
      assert.equal(0, r.status, r.stderr)
      local f = seccomp_fields(r.stdout)
      assert.equal(0, f["/proc/1/status"], r.stdout)
      assert.equal(2, f["/proc/self/status"], r.stdout)
      r = runner({ "--seccomp=none", "--", "grep", "^Seccomp:", "/proc/self/status" })
      assert.equal(0, r.status, r.stderr)
      assert.truthy(r.stdout:match("Seccomp:%s*0"), r.stdout)
    end)

    it("refuses the keyring calls with EPERM, and --syscalls=+@keyring lets them through", function()
      for _, call in ipairs{ "keyctl", "add_key" } do
        local r = runner(perl_call(NR[call]))
        assert.equal(0, r.status, r.stderr)
        assert.equal("-1 Operation not permitted\n", r.stdout, call)
      end
      -- keyctl(0, ...): no such operation, from the kernel this time.
      local r = runner({ "--syscalls=+@keyring", "--", table.unpack(perl_call(NR.keyctl)) })
      assert.equal(0, r.status, r.stderr)
      assert.equal("-1 Invalid argument\n", r.stdout)
    end)

    it("attack: a 32-bit system call (int 0x80) meets the same rules", function()
      local k = build_int80()
      if not k then return pending("no cc, or this kernel runs no i386 system calls") end
      local r = runner({ "--", k })
      assert.equal(0, r.status, r.stderr)
      assert.equal("-1\n", r.stdout) -- -EPERM, not the kernel's -EINVAL
      r = runner({ "--seccomp=none", "--", k })
      assert.equal("-22\n", r.stdout)
    end)

    it("adds a call with --syscalls=-name", function()
      local r = runner({ "--syscalls=-getpid", "--", table.unpack(perl_call(NR.getpid, "")) })
      assert.equal(0, r.status, r.stderr)
      assert.equal("-1 Operation not permitted\n", r.stdout)
    end)

    it("refuses TIOCSTI and TIOCLINUX even on a terminal the container owns", function()
      local r = runner({ "--", "perl", "-e", STI })
      assert.equal(0, r.status, r.stderr)
      assert.equal("0x5412 1\n0xdead00005412 1\n0x541c 1\n", r.stdout)
    end)

    it("sets --rlimit in the command, seen by ulimit", function()
      local hard = pft.capture("sh -c 'ulimit -Hn'"):match("%d+")
      local r = runner({ "--rlimit=nofile=64:128", "--rlimit=RLIMIT_CORE=0", "--", "sh", "-c",
        "ulimit -Sn; ulimit -Hn; ulimit -c" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("64\n128\n0\n", r.stdout)
      -- Up to exactly the current hard limit is allowed without
      -- CAP_SYS_RESOURCE; above it is not.
      r = runner({ "--rlimit=NOFILE=" .. hard, "--", "sh", "-c", "ulimit -Sn; ulimit -Hn" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(hard .. "\n" .. hard .. "\n", r.stdout)
      r = runner({ "--rlimit=nofile=" .. (tonumber(hard) + 1), "true" })
      assert.equal(125, r.status)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.truthy(r.stderr:find("nofile", 1, true), r.stderr)
    end)

    it("pins the container with --cpuset, seen in Cpus_allowed_list by pid 1 and the command", function()
      local r = runner({ "--cpuset=0", "--", "sh", "-c", "grep Cpus_allowed_list /proc/1/status /proc/self/status" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(2, select(2, r.stdout:gsub("Cpus_allowed_list:%s*0\n", "")), r.stdout)
      -- The host (and pflask's own process) keep theirs.
      assert.truthy(pft.capture("grep Cpus_allowed_list /proc/self/status"):match("Cpus_allowed_list:%s*(%S+)"))
    end)

    it("writes namespaced --sysctl values inside and leaves the host's", function()
      local before = pft.capture("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/domainname")
      local inside_fwd = before:match("^(%d)") == "1" and "0" or "1"
      local r = runner({ "--netif", "--sysctl=net.ipv4.ip_forward=" .. inside_fwd, "--sysctl=kernel/shmmax=65536",
        "--sysctl=kernel.domainname=sandbox.test", "--", "sh", "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/domainname; "
        .. "(echo 1 > /proc/sys/kernel/shmmax) 2>/dev/null && echo writable; true" })
      assert.equal(0, r.status, r.stderr)
      assert.equal(inside_fwd .. "\n65536\nsandbox.test\n", r.stdout)
      assert.equal(before, pft.capture("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/domainname"))
    end)

    it("ends the command after --timeout with status 124, SIGKILL after the grace", function()
      local r = runner({ "--timeout=1", "--", "sleep", "60" })
      assert.equal(124, r.status, r.stderr)
      -- SIGTERM ignored: SIGKILL after the grace.
      r = runner({ "--timeout=1:1", "--", "sh", "-c", "trap '' TERM; sleep 60; echo survived" })
      assert.equal(124, r.status, r.stderr)
      assert.equal("", r.stdout)
      -- In time: the command's own status.
      r = runner({ "--timeout=30", "--", "sh", "-c", "exit 3" })
      assert.equal(3, r.status, r.stderr)
    end)
  end)
end

both_worlds("as root", run)

describe("as root, a non-root --user", function()
  it("is bound by the filter without no_new_privs: setuid keeps working", function()
    if not x86_64 then return pending("the syscall numbers below are x86_64's") end
    local r = run({ "--user=nobody", "--", "sh", "-c",
      "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; " .. table.concat(perl_call(NR.keyctl), " "):gsub("^perl %-e (.*)$", function(x) return "perl -e '" .. x .. "'" end) })
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:match("NoNewPrivs:%s*0"), r.stdout)
    assert.truthy(r.stdout:match("Seccomp:%s*2"), r.stdout)
    assert.truthy(r.stdout:find("-1 Operation not permitted", 1, true), r.stdout)
  end)

  it("binds a command run in the container with --exec the same way", function()
    if not x86_64 then return pending("the syscall numbers below are x86_64's") end
    local name = string.format("sbx%d", math.random(100000, 999999))
    pft.sh(pft.quote(pft.PFLASK) .. " --name=" .. name .. " -- sleep 60 </dev/null >/dev/null 2>&1 &")
    local pid
    for _ = 1, 200 do
      pid = pft.capture(pft.quote(pft.PFLASK) .. " --list"):match(name .. "%s+(%d+)")
      if pid then break end
      pft.sh("sleep 0.05")
    end
    assert.truthy(pid, "the container did not start")
    local ok, err = pcall(function()
      local r = pft.pflask({ "--exec=" .. name, "--", table.unpack(perl_call(NR.keyctl)) })
      assert.equal(0, r.status, r.stderr)
      assert.equal("-1 Operation not permitted\n", r.stdout)
      r = pft.pflask({ "--exec=" .. name, "--user=nobody", "--", "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status" })
      assert.equal(0, r.status, r.stderr)
      assert.truthy(r.stdout:match("NoNewPrivs:%s*0") and r.stdout:match("Seccomp:%s*2"), r.stdout)
    end)
    pft.sh("kill " .. pid)
    if not ok then error(err, 0) end
  end)

  it("confines --cpuset with a cpuset cgroup as root: root inside cannot widen it", function()
    local online = pft.capture("cat /sys/devices/system/cpu/online")
    if not online:match("^0%-%d") then return pending("one CPU only: nothing to widen to") end
    local r = run({ "--cpuset=0", "--", "sh", "-c",
      "taskset -pc " .. online:gsub("%s+$", "") .. " $$ >/dev/null 2>&1; grep Cpus_allowed_list /proc/self/status" })
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:match("Cpus_allowed_list:%s*0\n"), r.stdout)
  end)

  it("lets the calls of a capability given back with --caps through", function()
    local r = run({ "--caps=+syslog", "--", "perl", "-e",
      'my $r = syscall(103, 10, 0, 0); print(($r < 0 ? $! + 0 : "ok"), "\\n")' })
    assert.equal(0, r.status, r.stderr)
    assert.equal("ok\n", r.stdout)
    r = run({ "--", "perl", "-e", 'my $r = syscall(103, 10, 0, 0); print(($r < 0 ? $! + 0 : "ok"), "\\n")' })
    assert.equal("1\n", r.stdout)
  end)
end)

describe("rootless", function()
  local user
  setup(function() user = pft.rootless_user() end)
  teardown(function() if user then user:remove() end end)
  both_worlds("as an unprivileged user", function(args)
    -- (The caller's PATH, as it always was here.)
    return user:pflask(args, { env = { PATH = false } })
  end)
end)

describe("bad input", function()
  local cases = {
    { { "--seccomp=maybe", "true" }, "--seccomp: 'maybe' is not default or none" },
    { { "--syscalls=@nope", "true" }, "--syscalls: '@nope' is not a group" },
    { { "--syscalls=-Bad", "true" }, "--syscalls: 'Bad' is not a system call name" },
    { { "--syscalls=-no_such_call", "true" }, "--seccomp: 'no_such_call' is not a system call" },
    { { "--syscalls=,", "true" }, "--syscalls: empty entry" },
    { { "--seccomp=none", "--syscalls=-keyctl", "true" }, "--syscalls: edits the default filter" },
    { { "--rlimit=nofile", "true" }, "--rlimit: 'nofile' is not NAME=SOFT[:HARD]" },
    { { "--rlimit=files=1", "true" }, "--rlimit: 'files' is not a resource" },
    { { "--rlimit=nofile=10:5", "true" }, "--rlimit: nofile: soft limit above the hard one" },
    { { "--rlimit=as=1X", "true" }, "--rlimit: as: soft limit '1X'" },
    { { "--rlimit=core=0", "--rlimit=core=1", "true" }, "--rlimit: 'core' given twice" },
    { { "--timeout=0", "true" }, "--timeout: '0' is not a number of seconds > 0" },
    { { "--timeout=soon", "true" }, "--timeout: 'soon' is not a number" },
    { { "--timeout=5:x", "true" }, "--timeout: grace 'x'" },
    { { "--cpuset=4096", "true" }, "--cpuset: CPU 4096 is not one of this host's" },
    { { "--cpuset=1-0", "true" }, "--cpuset: '1-0' is not a CPU list" },
    { { "--cpuset=x", "true" }, "--cpuset: 'x' is not a CPU list" },
    { { "--sysctl=vm.swappiness=1", "true" }, "--sysctl: 'vm.swappiness' is not namespaced" },
    { { "--sysctl=kernel.modprobe=/x", "true" }, "--sysctl: 'kernel.modprobe' is not namespaced" },
    { { "--sysctl=net.ipv4.ip_forward=1", "true" }, "--sysctl: net.ipv4.ip_forward needs a network namespace" },
    { { "--no-ipcns", "--sysctl=kernel.shmmax=1", "true" }, "--sysctl: kernel.shmmax needs an IPC namespace" },
    { { "--sysctl=kernel.shmmax", "true" }, "--sysctl: 'kernel.shmmax' is not NAME=VALUE" },
    { { "--sysctl=net..x=1", "--netif", "true" }, "--sysctl: 'net..x' is not a sysctl name" },
    { { "--sysctl=kernel.shmmax=x", "true" }, "--sysctl: kernel.shmmax=x: Invalid argument" },
  }
  for _, c in ipairs(cases) do
    it("answers " .. table.concat(c[1], " ") .. " with one line and 125", function()
      local r = pft.pflask(c[1])
      assert.equal(125, r.status, r.stderr)
      assert.is_true(one_line(r.stderr), r.stderr)
      assert.truthy(r.stderr:find("pflask: " .. c[2], 1, true), r.stderr)
    end)
  end
end)

describe("spec.seccomp", function()
  it("kills a call of an architecture the filter leaves out (arch = {\"x86_64\"} and int 0x80)", function()
    local k = build_int80()
    if not k then return pending("no cc, or this kernel runs no i386 system calls") end
    local script = [[
      os.exit(require("pflask").run{ command = { ]] .. string.format("%q", k) .. [[ },
        seccomp = { arch = { "x86_64" }, rules = { { action = "errno", syscalls = { "keyctl" } } } } })]]
    local r = pft.run({ "lua5.4", "-e", script })
    assert.equal(128 + 31, r.status, r.stderr) -- SIGSYS
    assert.equal("", r.stdout)
  end)

  it("loads a recipe's own filter table", function()
    if not x86_64 then return pending("the syscall numbers below are x86_64's") end
    local script = [[
      local status = require("pflask").run{ command = { "perl", "-e",
        'my $r = syscall(39); print "$r ", ($r < 0 ? "$!" : "ok"), "\n"' },
        seccomp = { default = "allow", rules = { { action = "errno", errno = 13, syscalls = { "getpid" } } } } }
      os.exit(status)]]
    local r = pft.run({ "lua5.4", "-e", script })
    assert.equal(0, r.status, r.stderr)
    assert.equal("-1 Permission denied\n", r.stdout)
  end)
end)
