-- The machined concern's decisions, with the host's facts faked
-- (registration itself: tests/integration/machined_spec.lua).
local machined = require "pflask.machined"

local HOST = { supported = true, systemd = true, machined = true }

local function plan_of(spec, host, concerns)
  local plan = { concerns = concerns or {} }
  machined.plan(spec, plan, host or HOST)
  return plan
end

local function fails(fn, message)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  assert.equal(125, err.status)
  assert.equal(message, err.message)
end

describe("pflask.machined", function()
  it("accepts hostnames as machine names, and nothing else", function()
    for _, n in ipairs({ "a", "pflask-12", "web.example", "A1-b2", string.rep("x", 64) }) do
      assert.is_true(machined.valid_name(n), n)
    end
    for _, n in ipairs({ "", "a_b", "-a", "a-", ".a", "a.", "a..b", "a b", "a/b", string.rep("x", 65), "é" }) do
      assert.is_false(machined.valid_name(n), n)
    end
  end)

  it("registers by default on a host with machined, and never with --register=no", function()
    local p = plan_of({})
    assert.same({ name = nil, required = false, create_scope = true }, p.machine)
    assert.is_nil(plan_of({ register = false }).machine)
  end)

  it("in auto mode, skips a host without machined without a word", function()
    for _, host in ipairs({
      { supported = false, systemd = true, machined = true },
      { supported = true, systemd = false, machined = true },
      { supported = true, systemd = true, machined = false },
    }) do
      assert.is_nil(plan_of({}, host).machine)
    end
  end)

  it("with --register=yes, refuses a host without machined in one line", function()
    fails(function() plan_of({ register = true }, { supported = true, systemd = false, machined = true }) end,
      "--register: systemd is not running on this host (no /run/systemd/system), so neither is machined")
    fails(function() plan_of({ register = true }, { supported = true, systemd = true, machined = false }) end,
      "--register: machined is not installed on this host (systemd-container)")
    fails(function() plan_of({ register = true }, { supported = false, systemd = true, machined = true }) end,
      "--register: this pflask was built without machined support (see pflask --version)")
  end)

  it("uses --name when machined accepts it, else pflask-PID (auto) or refuses (yes)", function()
    assert.equal("box-1", plan_of({ name = "box-1" }).machine.name)
    assert.is_nil(plan_of({ name = "box_1" }).machine.name)
    fails(function() plan_of({ name = "box_1", register = true }) end,
      "--register: 'box_1' is not a name machined accepts (letters, digits, inner '-', dots between)")
  end)

  it("leaves a container in pflask's own cgroups where it is (RegisterMachine)", function()
    local cgroups = require "pflask.cgroups"
    assert.is_false(plan_of({}, HOST, { cgroups }).machine.create_scope)
    assert.is_true(plan_of({}, HOST, { {} }).machine.create_scope)
  end)

  it("--register parses to spec.register: yes true, no false, auto nil; anything else refused", function()
    local cli = require "pflask.cli"
    assert.is_true(cli.parse({ "--register=yes", "true" }).register)
    assert.is_false(cli.parse({ "--register", "no", "true" }).register)
    assert.is_nil(cli.parse({ "--register=auto", "true" }).register)
    assert.is_nil(cli.parse({ "true" }).register)
    fails(function() cli.parse({ "--register=maybe" }) end, "--register: 'maybe' is not yes, no or auto")
    fails(function() cli.parse({ "--register=yes", "--register=no" }) end, "--register: given more than once")
  end)

  it("reads the host's facts without creating anything", function()
    local h = machined.host()
    assert.is_boolean(h.supported)
    assert.is_boolean(h.systemd)
    assert.is_boolean(h.machined)
  end)
end)
