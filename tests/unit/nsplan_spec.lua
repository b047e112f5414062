-- The namespace plan (container.namespace_plan): clone, late, join and
-- fork decided in one place, from a plan alone (no root needed).
local container = require "pflask.container"

local function ns(t)
  local out = { user = false, mount = true, pid = true, ipc = true, uts = true, cgroup = true, net = false, time = false }
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

describe("namespace_plan", function()
  it("clones what the plan creates, and pid 1 reaps unless it is the command", function()
    local p = container.namespace_plan({ namespaces = ns(), joins = {}, init = "reaper" })
    assert.is_true(p.clone.cgroup)
    assert.is_true(p.clone.pid)
    assert.is_false(p.clone.net)
    assert.same({}, p.late)
    assert.same({}, p.join)
    assert.is_true(p.fork)
    assert.is_false(container.namespace_plan({ namespaces = ns(), joins = {}, init = "pid1" }).fork)
    assert.is_false(container.namespace_plan({ namespaces = ns({ pid = false }), joins = {}, init = "none" }).fork)
  end)

  it("unshares the cgroup namespace late when pflask makes cgroups, so its root is the container's", function()
    local p = container.namespace_plan({ namespaces = ns(), joins = {}, init = "reaper", cgroups = { { dir = "/x" } } })
    assert.is_false(p.clone.cgroup)
    assert.same({ "cgroup" }, p.late)
    -- Without a cgroup namespace there is nothing to unshare.
    p = container.namespace_plan({ namespaces = ns({ cgroup = false }), joins = {}, init = "reaper", cgroups = { {} } })
    assert.same({}, p.late)
  end)

  it("joins by path what it does not create", function()
    local joins = { { name = "net", path = "/run/netns/x" } }
    local p = container.namespace_plan({ namespaces = ns({ net = false }), joins = joins, init = "reaper" })
    assert.same(joins, p.join)
    assert.is_false(p.clone.net)
  end)
end)
