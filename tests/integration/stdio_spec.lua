-- Standard I/O in specs: stdin/stdout/stderr as "null", a path (opened by
-- the supervisor with the caller's rights), a core.pipe() end or
-- "capture" (pflask.capture, Container:output), looked at from inside the
-- container and from the host.
local pft = require "pftest"

local recipe = pft.recipe

describe("stdio in specs", function()
  local dir
  setup(function()
    dir = pft.tempdir("stdio")
    pft.sh("chmod 0777 " .. dir)
  end)
  teardown(function() pft.rm_rf(dir) end)

  it("captures 10 MiB on stdout and stderr at once, without deadlock", function()
    local r = pft.pflask({ "--recipe=" .. recipe(dir, [[
local pflask = require "pflask"
local st, out, err = pflask.capture{ command = { "sh", "-c",
  "head -c 10485760 /dev/zero | tr '\\0' o & head -c 10485760 /dev/zero | tr '\\0' e >&2; wait; exit 7" } }
assert(not out:find("[^o]") and not err:find("[^e]"), "mixed output")
io.write(st, " ", #out, " ", #err, "\n")
]]) }, { timeout = 120 })
    assert.equal(0, r.status, r.stderr)
    assert.equal("7 10485760 10485760\n", r.stdout)
  end)

  it("gives a pipe end, a path and null as the command's 0, 1, 2, nothing else of them", function()
    local r = pft.pflask({ "--recipe=" .. recipe(dir, string.format([[
local pflask = require "pflask"
local core = pflask.core
local rd, wr = core.pipe()
local ird, iwr = core.pipe()
iwr:write("from the recipe\n"); iwr:close()
local c = pflask.container{ stdin = ird, stdout = wr, stderr = %q,
  command = { "sh", "-c", "read l; echo \"got $l\"; echo to-stderr >&2; ls /proc/self/fd | sort -n | tr '\\n' ' '" } }:start()
wr:close(); ird:close()
local out = rd:read("a")
assert(c:wait() == 0)
local st, o, e = pflask.capture{ stdin = "null", command = { "cat" } }
io.write(out, "|", io.open(%q):read("a"), "|", st, #o, #e, "\n")
]], dir .. "/err", dir .. "/err")) })
    assert.equal(0, r.status, r.stderr)
    -- fds 0, 1, 2 and the one ls opened for /proc/self/fd: no supervisor fd.
    assert.equal("got from the recipe\n0 1 2 3 |to-stderr\n|000\n", r.stdout)
  end)

  it("opens paths with the caller's rights, outside: a rootless caller cannot write root's file", function()
    local u = pft.rootless_user()
    finally(function() u:remove() end)
    local user, exe = u.name, u.exe
    pft.write_file(dir .. "/roots", "root's\n")
    pft.sh("chmod 0644 " .. dir .. "/roots")
    local r = pft.pflask({ "--recipe=" .. recipe(dir, string.format([[
local pflask = require "pflask"
return pflask.run{ stdout = %q, command = { "echo", "overwritten" } }
]], dir .. "/roots")) }, { user = user, pflask = exe })
    assert.equal(125, r.status)
    assert.matches("^pflask: stdout: .*Permission denied\n$", r.stderr)
    assert.equal("root's\n", pft.read_file(dir .. "/roots"))
    -- The same caller's own file is written; the container's root (uid 0
    -- inside) gets no further than the caller.
    r = pft.pflask({ "--recipe=" .. recipe(dir, string.format([[
local pflask = require "pflask"
local st, out, err = pflask.capture{ command = { "sh", "-c", "id -u; echo e >&2" } }
io.write(st, out, err)
return pflask.run{ stdout = %q, command = { "echo", "mine" } }
]], dir .. "/mine")) }, { user = user, pflask = exe })
    if r.status ~= 0 and r.stderr:find("user namespace") then pending("no user namespaces: " .. r.stderr) return end
    assert.equal(0, r.status, r.stderr)
    assert.equal("00\ne\n", r.stdout)
    assert.equal("mine\n", pft.read_file(dir .. "/mine"))
  end)

  it("refuses a terminal as a file, and bad values, as one line naming the field", function()
    local r = pft.pflask({ "--recipe=" .. recipe(dir, [[
local pflask = require "pflask"
local ok, e = pcall(pflask.run, { stdout = 3, command = { "true" } })
io.write(tostring(e), "\n")
ok, e = pcall(pflask.run, { stdin = "capture", command = { "true" } })
io.write(tostring(e), "\n")
ok, e = pcall(pflask.run, { stdout = "/nonexistent/dir/x", command = { "true" } })
io.write(tostring(e), "\n")
local pty = assert(pflask.core.open_pty())
ok, e = pcall(pflask.run, { stdout = pty:name(), command = { "true" } })
io.write(tostring(e), "\n")
]]) })
    assert.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("stdout: must be a string or an open file, not an integer", lines[1])
    assert.equal('stdin: cannot be "capture"', lines[2])
    assert.matches("^stdout: /nonexistent/dir/x: No such file or directory$", lines[3])
    assert.matches("^stdout: '/dev/pts/%d+' is a terminal", lines[4])
  end)
end)
