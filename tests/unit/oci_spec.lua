-- pflask.oci without containers: config.json into a pflask spec (and what
-- it refuses), OCI's linux.seccomp into core.seccomp_compile's table.
local oci = require "pflask.oci"

describe("pflask.oci", function()
  local bundle

  setup(function()
    bundle = os.tmpname()
    os.remove(bundle)
    assert(os.execute("mkdir -p " .. bundle .. "/rootfs"))
  end)

  teardown(function()
    os.execute("rm -rf " .. bundle)
  end)

  local function base()
    return {
      process = { args = { "sh" }, cwd = "/", env = { "PATH=/bin", "A=b=c" } },
      root = { path = "rootfs" },
      linux = { namespaces = { { type = "pid" }, { type = "network", path = "/proc/1/ns/net" } } },
    }
  end

  local function refused(cfg, pattern)
    local ok, err = pcall(oci.spec_from_config, cfg, bundle)
    assert.is_false(ok)
    assert.are.equal(125, err.status)
    assert.matches(pattern, err.message)
  end

  it("turns config.json into a spec", function()
    local cfg = base()
    cfg.process.user = { uid = 1000, gid = 1001, additionalGids = { 4 } }
    cfg.process.rlimits = { { type = "RLIMIT_NOFILE", soft = 10, hard = 20 } }
    cfg.process.capabilities = { bounding = { "CAP_KILL" }, effective = { "CAP_KILL", "CAP_CHOWN" } }
    cfg.linux.uidMappings = { { containerID = 0, hostID = 100000, size = 65536 } }
    cfg.linux.resources = { memory = { limit = 1048576 }, pids = { limit = 7 }, cpu = { quota = 150000, period = 100000 } }
    cfg.mounts = { { destination = "/proc", type = "proc", source = "proc" },
                   { destination = "/data", type = "bind", source = "/srv", options = { "rbind", "ro", "nosuid" } },
                   { destination = "/run", type = "tmpfs", source = "tmpfs", options = { "nosuid", "mode=755", "size=1m" } } }
    local spec = oci.spec_from_config(cfg, bundle)
    assert.are.equal(bundle .. "/rootfs", spec.root)
    assert.are.same({ "sh" }, spec.command)
    assert.are.same({ { name = "PATH", value = "/bin" }, { name = "A", value = "b=c" } }, spec.setenv)
    assert.are.equal("pid1", spec.init)
    assert.is_false(spec.boot)
    assert.is_true(spec.namespaces.pid)
    assert.are.equal("/proc/1/ns/net", spec.namespaces.net)
    assert.is_false(spec.namespaces.mount)
    assert.are.equal("1000", spec.user)
    assert.are.equal(1001, spec.gid)
    assert.are.same({ 4 }, spec.groups)
    assert.are.same({ nofile = { soft = 10, hard = 20 } }, spec.rlimits)
    assert.are.same({ "-all", "+kill", "+chown" }, spec.caps)
    assert.are.same({ { inside = 0, outside = 100000, count = 65536 } }, spec.uid_map)
    assert.are.same({ memory = 1048576, pids = 7, cpus = 1.5 }, spec.limits)
    cfg.linux.resources.devices = { { allow = false, access = "rwm" }, { allow = true, type = "c", major = 10, minor = 200, access = "rw" },
                                    { allow = true, type = "b", major = 8, access = "r" } }
    cfg.linux.devices = { { path = "/dev/null", type = "c", major = 1, minor = 3 } }
    cfg.linux.cgroupsPath = "/oci/x"
    cfg.linux.sysctl = { ["net.ipv4.ping_group_range"] = "0 0" }
    cfg.process.user.umask = 18
    local spec2 = oci.spec_from_config(cfg, bundle)
    assert.are.equal("/oci/x", spec2.cgroup_path)
    assert.are.equal(18, spec2.umask)
    assert.are.same({ ["net.ipv4.ping_group_range"] = "0 0" }, spec2.sysctls)
    assert.is_false(spec2.seccomp) -- no filter unless the config has one
    assert.are.same({ "c 10:200 rw", "b 8:* r" }, spec2.devices)
    assert.are.same({ type = "bind", source = "/dev/null", target = "/dev/null" }, spec2.mounts[1])
    cfg.linux.resources.devices = nil
    cfg.linux.devices = nil
    assert.are.same({
      { type = "bind", source = "/srv", target = "/data", readonly = true, nosuid = true },
      { type = "tmp", target = "/run", options = "mode=755,size=1m" },
    }, spec.mounts)
  end)

  it("refuses what it cannot do, naming the field", function()
    local cfg = base(); cfg.process.args = "sh"
    refused(cfg, "process%.args: must be an array")
    cfg = base(); cfg.process.env = { "NOEQUALS" }
    refused(cfg, "process%.env: 'NOEQUALS' is not NAME=VALUE")
    cfg = base(); cfg.root.path = "missing"
    refused(cfg, "root%.path: '.*/missing' is not a directory")
    cfg = base(); cfg.linux.namespaces[1].type = "bogus"
    refused(cfg, "linux%.namespaces%[0%]%.type: 'bogus' is not a namespace")
    cfg = base(); cfg.mounts = { { destination = "/x", type = "nfs", source = "h:/x" } }
    refused(cfg, "mount type 'nfs' at /x is not supported")
    cfg = base(); cfg.mounts = { { destination = "/x", type = "tmpfs", options = { "huge=always" } } }
    refused(cfg, "'huge=always' is not supported for tmpfs")
    cfg = base(); cfg.process.rlimits = { { type = "NOFILE", soft = 1, hard = 1 } }
    refused(cfg, "process%.rlimits%[0%]%.type: 'NOFILE' is not an rlimit")
    cfg = base(); cfg.linux.sysctl = { ["kernel.shmmax"] = 1 }
    refused(cfg, "linux%.sysctl%.kernel%.shmmax: must be a string")
    cfg = base(); cfg.linux.cgroupsPath = "machine.slice:libpod:abc"
    refused(cfg, "systemd cgroup paths are not supported")
    cfg = base(); cfg.process.user = { uid = 0, umask = 1024 }
    refused(cfg, "process%.user%.umask: 1024 is not a mask")
    cfg = base(); cfg.linux.devices = { { path = "/dev/null", type = "c", major = 10, minor = 229 } }
    refused(cfg, "linux%.devices%[0%]: the host has no char device 10:229 at /dev/null")
    cfg = base(); cfg.linux.resources = { devices = { { allow = false, type = "c", major = 1, minor = 3, access = "rwm" } } }
    refused(cfg, "a deny rule other than deny%-all is not supported")
    cfg = base(); cfg.process.user = { uid = 1.5 }
    refused(cfg, "process%.user%.uid: must be an integer")
  end)

  it("converts linux.seccomp into the compiler's table", function()
    local t = oci.seccomp_table{
      defaultAction = "SCMP_ACT_ERRNO", defaultErrnoRet = 1,
      architectures = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86" },
      syscalls = {
        { names = { "read", "write" }, action = "SCMP_ACT_ALLOW" },
        { names = { "personality" }, action = "SCMP_ACT_ALLOW",
          args = { { index = 0, value = 8, valueTwo = 0, op = "SCMP_CMP_EQ" } } },
        { names = { "mkdir" }, action = "SCMP_ACT_ERRNO", errnoRet = 13 },
        { names = { "pflask_no_such_call" }, action = "SCMP_ACT_KILL_THREAD" },
      },
    }
    assert.are.same({
      default = "errno", errno = 1, arch = { "x86_64", "x86" },
      rules = {
        { action = "allow", syscalls = { "read", "write" }, args = {} },
        { action = "allow", syscalls = { "personality" }, args = { { index = 0, op = "eq", value = 8, value2 = 0 } } },
        { action = "errno", errno = 13, syscalls = { "mkdir" }, args = {} },
      },
    }, t)
    local ok, err = pcall(oci.seccomp_table, { defaultAction = "SCMP_ACT_NOTIFY" })
    assert.is_false(ok)
    assert.matches("action 'SCMP_ACT_NOTIFY' is not supported", err.message)
    ok, err = pcall(oci.seccomp_table, { defaultAction = "SCMP_ACT_ALLOW",
      syscalls = { { names = { "read" }, action = "SCMP_ACT_ALLOW", args = { { index = 0, value = 1, op = "SCMP_CMP_LIKE" } } } } })
    assert.is_false(ok)
    assert.matches("'SCMP_CMP_LIKE' is not a comparison", err.message)
  end)

  it("hands linux.seccomp to plan() as spec.seccomp, which the engine compiles", function()
    local cfg = base()
    cfg.linux.seccomp = { defaultAction = "SCMP_ACT_ALLOW", syscalls = { { names = { "mkdir" }, action = "SCMP_ACT_ERRNO" } } }
    local spec = oci.spec_from_config(cfg, bundle)
    assert.are.same({ default = "allow", rules = { { action = "errno", syscalls = { "mkdir" }, args = {} } } }, spec.seccomp)
    assert.is_string((require("pflask.core").seccomp_compile(spec.seccomp)))
  end)
end)
