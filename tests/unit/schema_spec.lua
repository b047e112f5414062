-- Strict specs (pflask.schema): an unknown field anywhere in a spec, or
-- a value of the wrong type, is a pflask.Error (125) that names it and
-- suggests the closest known field, raised by plan() before anything
-- else looks at the spec. No root needed: the schema check comes first.
local pflask = require "pflask"
local perr = require "pflask.error"
local schema = require "pflask.schema"

local function message(spec)
  local ok, err = pcall(pflask.container, spec)
  assert.is_false(ok, "spec accepted")
  assert.is_true(perr.is(err), "raw Lua error: " .. tostring(err))
  assert.equal(125, err.status)
  return err.message
end

describe("strict specs", function()
  it("names an unknown field of a mount and suggests the known one", function()
    assert.equal("mounts[1]: unknown field 'readOnly' (did you mean 'readonly'?)",
      message{ command = { "true" }, mounts = { { type = "bind", source = "/usr", target = "/usr", readOnly = true } } })
  end)

  it("names unknown fields at the top level, in a netif, a route, namespaces, limits, rlimits", function()
    assert.equal("spec: unknown field 'hostnme' (did you mean 'hostname'?)", message{ hostnme = "x" })
    assert.equal("netifs[1]: unknown field 'adress' (did you mean 'address'?)",
      message{ netifs = { { type = "none", adress = "10.0.0.1/24" } } })
    assert.equal("netifs[1].routes[2]: unknown field 'dest' (did you mean 'dst'?)",
      message{ netifs = { { type = "none", routes = { { dst = "10.0.0.0/8" }, { dest = "x" } } } } })
    assert.equal("namespaces: unknown field 'network' (did you mean 'net'?)",
      message{ namespaces = { network = true } })
    assert.equal("limits: unknown field 'mem' (did you mean 'memory'?)", message{ limits = { mem = 1 } })
    assert.equal("rlimits: unknown field 'nofiles' (did you mean 'nofile'?)", message{ rlimits = { nofiles = 1 } })
    assert.equal("setenv[1]: unknown field 'val' (did you mean 'value'?)",
      message{ setenv = { { name = "A", val = "b" } } })
  end)

  it("lists the known fields when nothing is close", function()
    assert.matches("^limits: unknown field 'zzzzzzzz' %(known: cpus, memory, pids%)$", message{ limits = { zzzzzzzz = 1 } })
  end)

  it("names wrong types at plan time, not as a raw error later", function()
    assert.equal("namespaces.net: must be a boolean or a string, not an integer", message{ namespaces = { net = 1 } })
    assert.equal("mounts[2].readonly: must be a boolean, not a string",
      message{ mounts = { { type = "tmp", target = "/tmp" }, { type = "bind", source = "/", target = "/mnt", readonly = "yes" } } })
    assert.equal("command[2]: must be a string, not an integer", message{ command = { "echo", 1 } })
    assert.equal("command: must be a list, not a string", message{ command = "echo hi" })
    assert.equal("mounts: must be a list (an array), not a table with key 'target'",
      message{ mounts = { type = "tmp", target = "/tmp" } })
    assert.equal("uid_map: must be a string or a list, not an integer", message{ uid_map = 0 })
    assert.equal("uid_map[1].count: must be an integer, not a string",
      message{ uid_map = { { inside = 0, outside = 1000, count = "1" } } })
    assert.equal("rlimits.nofile: must be an integer or a string or a table, not a boolean", message{ rlimits = { nofile = true } })
    assert.equal("child_setup: must be a function, not a string", message{ child_setup = "x" })
    assert.equal("spec: must be a table, not a string", message("hostname"))
    assert.equal("spec: unexpected key 1 (only named fields)", message{ "true" })
  end)

  it("accepts what the classic command line builds", function()
    local cli = require "pflask.cli"
    local spec = assert(cli.parse{ "--hostname=box", "--mount=tmp:/tmp", "--keep-fd=1", "--", "true" })
    -- Only the schema: plan() itself would look at the host.
    assert.has_no.errors(function() schema.check(spec) end)
    spec = assert(cli.parse{ "--netif=veth:pfx0:eth0", "--user-map=0:1000:1", "--caps=-all,+chown",
                              "--memory=64M", "--pids-max=10", "--cpus=1.5", "--cgroup=memory", "--setenv=A=b", "true" })
    assert.has_no.errors(function() schema.check(spec) end)
  end)

  it("refuses a setenv entry without a name or a value", function()
    assert.matches("^%-%-setenv: entry 1 needs a name", message{ setenv = { { value = "x" } } })
    assert.matches("^%-%-setenv: entry 2 needs a name", message{ setenv = { { name = "A", value = "b" }, { name = "1x", value = "b" } } })
  end)

  -- schema.check decides with a quick walk (no sorting, no field paths)
  -- and walks again in key order only to name a fault: both must agree
  -- on every spec, or a bad spec would pass unnamed.
  it("gives the same verdict and message through its quick path as in key order", function()
    local g = require "fuzzgen"
    local cli = require "pflask.cli"
    local r = g.rng(15)
    local counts = { pass = 0, fail = 0 }
    local function compare(spec, case)
      local ok_fast, err_fast = pcall(schema.check, spec)
      local ok_slow, err_slow = pcall(schema.check_ordered, spec)
      assert.equal(ok_slow, ok_fast, case)
      assert.equal(ok_slow, schema.conforms(spec), case)
      if not ok_slow then
        assert.is_true(perr.is(err_slow), tostring(err_slow))
        assert.equal(err_slow.message, err_fast.message, case)
      end
      counts[ok_slow and "pass" or "fail"] = counts[ok_slow and "pass" or "fail"] + 1
    end
    for i = 1, 3000 do
      compare(g.spec(r), "random spec " .. i)
      -- A spec the command line built, then one field changed.
      local ok, spec = pcall(cli.parse, g.argv(r))
      if ok and type(spec) == "table" then
        compare(spec, "cli spec " .. i)
        local keys = {}
        for k in pairs(spec) do keys[#keys + 1] = k end
        table.sort(keys)
        if #keys > 0 then
          local k = r.pick(keys)
          local v = spec[k]
          if type(v) == "table" and next(v) ~= nil and r.chance(0.5) then
            local inner = next(v)
            v[inner] = g.value(r, 2)
          else
            spec[k] = g.value(r, 2)
          end
          compare(spec, "edited cli spec " .. i)
        end
      end
    end
    assert.is_true(counts.pass > 500 and counts.fail > 500, counts.pass .. " passed, " .. counts.fail .. " failed")
  end)

  it("suggests only close names", function()
    assert.equal("readonly", schema.closest("readOnly", { "readonly", "nosuid" }))
    assert.equal("hostname", schema.closest("hostnam", { "hostname", "root" }))
    assert.is_nil(schema.closest("x", { "hostname", "root" }))
  end)
end)
