-- systemd-machined registration (issue 16), for real: a Debian 12 with
-- systemd-container boots under pflask (systemd as pid 1, machined
-- bus-activated), and the pflask under test runs inside it, bound on
-- /pftest/pflask (it embeds its Lua and loads libmount and libsystemd from
-- the booted root). The probe script starts containers there and reports
-- what machinectl says, as key=value lines. CTest label "boot".
local pft = require "pftest"

local INIT = "/lib/systemd/systemd"
local GUARD = 180

local function parse(text)
  local t = {}
  for k, v in (text or ""):gmatch("([%w_.]+)=([^\n]*)") do t[k] = v end
  return t
end

-- Wait for a machine of ours, print its properties, stop its supervisor,
-- print what is left. $1: key prefix, $2: pid of the pflask supervisor.
local PROBE_LIB = [[
P=/pftest/pflask
ours() { machinectl list --no-legend 2>/dev/null | awk '$1 ~ /^(pflask-|pftest-)/ {print $1}'; }
wait_machine() {
	for i in $(seq 100); do [ -n "$(ours)" ] && break; sleep 0.1; done
}
report() {
	k=$1 pf=$2
	wait_machine
	name=$(ours | head -n 1)
	echo "$k.count=$(ours | wc -l)"
	echo "$k.name=$name"
	for p in Class Service Leader RootDirectory Unit; do
		echo "$k.$p=$(machinectl show -p $p --value "$name" 2>&1)"
	done
	leader=$(machinectl show -p Leader --value "$name")
	echo "$k.leader_ppid=$(awk '/^PPid:/ {print $2}' /proc/$leader/status)"
	echo "$k.leader_nspid=$(awk '/^NSpid:/ {print $NF}' /proc/$leader/status)"
	echo "$k.supervisor=$pf"
	machinectl status "$name" --no-pager >/dev/null 2>&1 && echo "$k.status=ok"
	kill "$pf"; wait "$pf"
	echo "$k.exit=$?"
	echo "$k.after=$(ours | wc -l)"
}
]]

describe("machined registration in a booted Debian", function()
  -- io_dir: the host side of /pftest of the current test, made before
  -- the test so that it may put files there (io_dir_next) first.
  local rootfs, io_dir, io_dir_next

  setup(function()
    if pft.capture("id -u") ~= "0" then return end
    local cache = os.getenv("PFLASK_TEST_CACHE") or "/var/cache/pflask-test"
    local out, code = pft.capture("PFLASK_TEST_BOOT_INCLUDE=systemd-container "
      .. pft.quote(pft.SOURCE_DIR .. "/tests/boot_rootfs.sh") .. " " .. cache .. "/bookworm-machined 2>&1")
    assert(code == 0, "the boot root filesystem could not be made:\n" .. out)
    rootfs = out:match("([^\n]+)$")
  end)

  local mounts_before
  before_each(function() mounts_before = pft.mounts() end)

  -- The host is as it was: mounts, and no pflask left running the probe.
  after_each(function()
    assert.equal(mounts_before, pft.mounts())
    if io_dir_next then
      assert.equal(0, pft.count_processes(io_dir_next), "processes left behind")
      pft.rm_rf(io_dir_next)
    end
    io_dir, io_dir_next = nil, nil
  end)

  before_each(function() io_dir_next = pft.tempdir("machined") end)

  -- Boot the root with the probe, return its output parsed.
  local function boot(probe)
    io_dir = io_dir_next
    assert(pft.sh("cp " .. pft.quote(pft.PFLASK) .. " " .. io_dir .. "/pflask") == 0)
    pft.make_rootfs(io_dir .. "/root")
    pft.write_file(io_dir .. "/probe", PROBE_LIB .. probe)
    local r = pft.pflask({ "--chroot=" .. rootfs, "--ephemeral", "--mount=bind:" .. io_dir .. ":/pftest",
                           -- bpf: the inner root --chroot container's
                           -- device policy (pflask(1), SECCOMP).
                           "--register=no", "--syscalls=+bpf", INIT }, { timeout = GUARD })
    assert.equal(0, r.status, r.stderr)
    local out = pft.read_file(io_dir .. "/probe.out") or ""
    return parse(out), out
  end

  it("registers a container with machinectl's view of it, and forgets it at the end", function()
    if not rootfs then return pending("needs root: boots a Debian root") end
    local p, out = boot([[
echo "features=$($P --version | tail -n 1)"
$P --register=yes -- sleep 600 & report yes $!
$P -- sleep 600 & report auto $!
$P --register=yes --chroot=/pftest/root -- sleep 600 & report chroot $!
$P --name=pftest-box -- sleep 600 & report named $!
$P --name=pftest_box -- sleep 600 & report underscore $!
echo "no=$($P --register=no -- sh -c 'machinectl list --no-legend | grep -c pflask-')"
# Detached: the supervisor that stays behind registers and unregisters.
$P --detach --register=yes -- sleep 600 >/pftest/detach.out 2>&1
pid=$(sed -n 's/.*detached, pid \([0-9]*\).*/\1/p' /pftest/detach.out)
wait_machine
echo "detach.pid=$pid"
echo "detach.name=$(ours | head -n 1)"
kill -KILL "$pid"
for i in $(seq 100); do [ -z "$(ours)" ] && break; sleep 0.1; done
echo "detach.after=$(ours | wc -l)"
]])
    assert.matches("+machined", p.features, 1, true)
    for _, k in ipairs({ "yes", "auto", "chroot", "named", "underscore" }) do
      assert.equal("1", p[k .. ".count"], out)
      -- pflask-PID, PID the container's first process: pid 1 inside,
      -- a child of the supervisor outside; or its --name.
      local want = k == "named" and "pftest-box" or "pflask-" .. p[k .. ".Leader"]
      assert.equal(want, p[k .. ".name"], out)
      assert.equal("container", p[k .. ".Class"], out)
      assert.equal("pflask", p[k .. ".Service"], out)
      assert.equal(p[k .. ".supervisor"], p[k .. ".leader_ppid"], out)
      assert.equal("1", p[k .. ".leader_nspid"], out)
      assert.equal("ok", p[k .. ".status"], out)
      if k == "chroot" then
        -- A root --chroot container is in pflask's own cgroups (its
        -- device policy): RegisterMachine leaves it there, in the unit
        -- that ran pflask.
        assert.equal("pftest-up.service", p[k .. ".Unit"], out)
      else
        -- CreateMachine: a scope of its own.
        assert.matches("^machine%-.*%.scope$", p[k .. ".Unit"], out)
      end
      -- SIGTERM to the supervisor ends the container (143), and the
      -- machine goes with it.
      assert.equal("143", p[k .. ".exit"], out)
      assert.equal("0", p[k .. ".after"], out)
    end
    assert.equal("/pftest/root", p["chroot.RootDirectory"], out)
    assert.equal("0", p.no, out)
    assert.matches("^%d+$", p["detach.pid"], out)
    assert.equal("pflask-" .. p["detach.pid"], p["detach.name"], out)
    assert.equal("0", p["detach.after"], out)
  end)

  it("a container in a scope of its own goes away with pflask killed; RegisterMachine keeps the unit", function()
    if not rootfs then return pending("needs root: boots a Debian root") end
    -- RegisterMachine is what containers in pflask's own cgroups get; the
    -- booted root has no controller to give one, so the binding is driven
    -- directly, with a process of the probe's unit as the leader.
    pft.write_file(io_dir_next .. "/reg.lua", [=[
local core = require "pflask.core"
local p = io.popen("sleep 600 >/dev/null 2>&1 & echo $!")
local pid = math.tointeger(tonumber(p:read("l")))
p:close()
print("reg.pid=" .. pid)
print("reg.ok=" .. tostring(core.machined_register("pftest-reg", pid, "/", false)))
local f = io.popen("machinectl show -p Unit --value pftest-reg; machinectl show -p Leader --value pftest-reg;"
  .. " machinectl show -p Class --value pftest-reg")
print("reg.unit=" .. tostring(f:read("l")))
print("reg.leader=" .. tostring(f:read("l")))
print("reg.class=" .. tostring(f:read("l")))
f:close()
print("unreg.ok=" .. tostring(core.machined_unregister("pftest-reg")))
local _, msg, errno = core.machined_unregister("pftest-reg")
print("unreg2.errno=" .. tostring(errno))
print("unreg2.msg=" .. tostring(msg))
print("reg.alive=" .. tostring(os.execute("kill -0 " .. pid) == true))
os.execute("kill " .. pid)
]=])
    local p, out = boot([[
$P --register=yes -- sleep 600 & pf=$!
wait_machine
echo "killed.before=$(ours | wc -l)"
kill -KILL $pf; wait $pf
for i in $(seq 100); do [ -z "$(ours)" ] && break; sleep 0.1; done
echo "killed.after=$(ours | wc -l)"
$P --recipe=/pftest/reg.lua
echo "reg.after=$(ours | wc -l)"
]])
    assert.equal("1", p["killed.before"], out)
    assert.equal("0", p["killed.after"], out)
    assert.equal("true", p["reg.ok"], out)
    assert.equal("pftest-up.service", p["reg.unit"], out)
    assert.equal(p["reg.pid"], p["reg.leader"], out)
    assert.equal("container", p["reg.class"], out)
    assert.equal("true", p["unreg.ok"], out)
    assert.equal("2", p["unreg2.errno"], out) -- ENOENT: machined knows it no more
    assert.matches("^UnregisterMachine: ", p["unreg2.msg"], out)
    -- Unregistering leaves the processes alone.
    assert.equal("true", p["reg.alive"], out)
    assert.equal("0", p["reg.after"], out)
  end)

  it("refuses --register=yes without root, in one line, and skips auto quietly", function()
    if not rootfs then return pending("needs root: boots a Debian root") end
    local p, out = boot([[
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody $P --register=yes -- true 2>/pftest/yes.err; echo "yes.status=$?"
echo "yes.lines=$(wc -l </pftest/yes.err)"
echo "auto=$(as_nobody $P --no-mountns --no-pidns -- sh -c 'machinectl list --no-legend | grep -c pflask-' 2>/pftest/auto.err)"
echo "auto.stderr=$(wc -c </pftest/auto.err)"
echo "left=$(ours | wc -l)"
$P --register=yes --name=pftest_box -- true 2>/pftest/named.err; echo "named.status=$?"
]])
    if p["auto"] == "" and (pft.read_file(io_dir .. "/auto.err") or ""):match("namespace") then
      return pending("no unprivileged user namespaces in the booted root: " .. pft.read_file(io_dir .. "/auto.err"))
    end
    local err = pft.read_file(io_dir .. "/yes.err") or ""
    local named = pft.read_file(io_dir .. "/named.err") or ""
    assert.equal("125", p["yes.status"], out .. err)
    assert.equal("1", p["yes.lines"], err)
    assert.matches("^pflask: %-%-register: machined: ", err)
    assert.equal("0", p.auto, out .. (pft.read_file(io_dir .. "/auto.err") or ""))
    assert.equal("0", p["auto.stderr"], out)
    assert.equal("0", p.left, out)
    -- A --name machined would refuse, with --register=yes: refused up front.
    assert.equal("125", p["named.status"], out .. named)
    assert.equal("pflask: --register: 'pftest_box' is not a name machined accepts (letters, digits, inner '-', dots between)\n", named)
  end)
end)
