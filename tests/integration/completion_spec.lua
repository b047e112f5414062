-- Shell completion (issue 16): completion/pflask.bash driven the way bash
-- drives it (COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD, then the
-- function; COMPREPLY is what bash would put in place of the word after its
-- last COMP_WORDBREAKS character), then for real in an interactive bash and
-- zsh under tmux. The word lists come from the pflask under test
-- (`pflask --complete=...`), checked here against the host and the source
-- tree they must stay in sync with.
local pft = require "pftest"
local tmux = require "fixtures.tmux"

local BASH_SCRIPT = pft.SOURCE_DIR .. "/completion/pflask.bash"
local ZSH_SCRIPT = pft.SOURCE_DIR .. "/completion/_pflask"

local absolute = pft.absolute

local PFLASK = absolute(pft.PFLASK)

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function lines(s)
  local out = {}
  for l in (s or ""):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- COMP_WORDS as bash splits the line: at blanks, and COMP_WORDBREAKS
-- characters (= and : here) are words of their own.
local function comp_words(line)
  local words = {}
  for w in line:gmatch("%S+") do
    for piece, brk in w:gmatch("([^=:]*)([=:]?)") do
      if piece ~= "" then words[#words + 1] = piece end
      if brk ~= "" then words[#words + 1] = brk end
    end
  end
  if line == "" or line:match("%s$") then words[#words + 1] = "" end
  return words
end

--- COMPREPLY for `line` (the cursor at its end), the executable being
--- `exe` (PFLASK by default) and the script at `script`.
---@return string[] replies
---@return pftest.Result
local function complete(line, opts)
  opts = opts or {}
  line = (opts.exe or PFLASK) .. " " .. line
  local words = comp_words(line)
  local quoted = {}
  for i, w in ipairs(words) do quoted[i] = pft.quote(w) end
  local script = table.concat({
    "source " .. pft.quote(opts.script or BASH_SCRIPT),
    "COMP_LINE=" .. pft.quote(line),
    "COMP_POINT=${#COMP_LINE}",
    "COMP_WORDS=(" .. table.concat(quoted, " ") .. ")",
    "COMP_CWORD=" .. (#words - 1),
    "_pflask pflask " .. pft.quote(words[#words]) .. " " .. pft.quote(words[#words - 1] or ""),
    "printf '%s\\n' \"${COMPREPLY[@]}\"",
  }, "\n")
  local r = pft.run({ "bash", "-c", script }, { user = opts.user, prefix = opts.prefix })
  assert.equal(0, r.status, r.stderr)
  return lines(r.stdout), r
end

local function assert_offers(line, want, opts)
  local got = complete(line, opts)
  local have = set_of(got)
  for _, w in ipairs(want) do
    assert.is_true(have[w] ~= nil, string.format("'%s' does not offer '%s' (got: %s)", line, w, table.concat(got, " ")))
  end
  return got
end

local function complete_list(kind)
  local r = pft.pflask({ "--complete=" .. kind })
  assert.equal(0, r.status, r.stderr)
  return lines(r.stdout)
end

describe("bash completion", function()
  it("offers every option of the executable's own table, with '=' where a value follows", function()
    local opts = complete_list("options")
    assert.is_true(#opts > 20, "too few options")
    local want = {}
    for _, l in ipairs(opts) do
      local long, arg = l:match("^(%S+) (%S+)")
      if arg == "required" then want[#want + 1] = long .. "=" else want[#want + 1] = long end
      if arg == "optional" then want[#want + 1] = long .. "=" end
    end
    local got = assert_offers("--", want)
    assert.equal(#want, #got, table.concat(got, " "))
    -- The hidden word-list mode is not an option users see.
    assert.is_nil(set_of(got)["--complete="])
    assert.same({ "--register=" }, complete("--regi"))
    assert.same({ "--chdir=", "--chroot=" }, (function() local g = complete("--ch"); table.sort(g); return g end)())
  end)

  it("completes --caps entries: a sign, then every capability name and all", function()
    assert.same({ "+", "-" }, complete("--caps="))
    -- After the "=": bash replaces only the text after it.
    assert.same({ "-all,+net_bind_service", "-all,+net_broadcast" }, complete("--caps=-all,+net_b"))
    assert.same({ "-all" }, complete("--caps -al"))
    assert.same({ "+chown" }, complete("-b +cho"))
    local names = complete_list("caps")
    local source = pft.read_file(pft.SOURCE_DIR .. "/lua/pflask/spec/caps.lua")
    for _, n in ipairs(names) do
      if n ~= "all" then assert.is_not_nil(source:find('"' .. n .. '"', 1, true), n) end
    end
    assert.equal(#complete("--caps=+"), #names)
  end)

  it("completes --mount types, then host paths", function()
    local got = complete("--mount=")
    table.sort(got)
    assert.same({ "bind-ro:", "bind:", "dir:", "overlay:", "symlink:", "tmp:" }, got)
    assert_offers("--mount=bind:/us", { "/usr" })
    assert_offers("--mount=bind-ro:/usr:/m", { "/mnt" })
    assert_offers("-m bi", { "bind:", "bind-ro:" })
  end)

  it("completes --netif types and the host's interfaces, and macvlan's master", function()
    assert_offers("--netif=", { "macvlan:", "ipvlan:", "veth:", "lo:" })
    assert_offers("--netif=macvlan:l", { "lo:" })
    -- "," is no word break: the whole value is the word.
    assert_offers("--netif=ipvlan,l", { "ipvlan,lo:" })
    -- Only lo: other specs add and remove interfaces on this host.
  end)

  it("completes --cgroup with the host's controllers, v1 and v2", function()
    local want = {}
    -- v1 hierarchies this process is in, and the v2 root's controllers.
    for line in io.lines("/proc/self/cgroup") do
      local ctrls = line:match("^%d+:([^:]+):")
      if ctrls then for c in ctrls:gmatch("[^,]+") do want[#want + 1] = c end end
    end
    for l in io.lines("/proc/self/mountinfo") do
      local dir = l:match("^%S+ %S+ %S+ %S+ (%S+) .* %- cgroup2 ")
      if dir then
        for c in (pft.read_file(dir .. "/cgroup.controllers") or ""):gmatch("%S+") do want[#want + 1] = c end
        break
      end
    end
    if #want == 0 then return pending("no cgroup controller on this host") end
    local got = assert_offers("--cgroup=", want)
    local want_set = set_of(want)
    for _, c in ipairs(got) do assert.is_true(want_set[c], c .. " is no controller of this host") end
    assert_offers("-g " .. want[1]:sub(1, 2), { want[1] })
  end)

  it("completes --recipe with the bundled recipes of the source tree", function()
    local want = {}
    for f in pft.capture("ls " .. pft.SOURCE_DIR .. "/recipes"):gmatch("(%S+)%.lua") do want[#want + 1] = f end
    local got = complete("--recipe=")
    table.sort(got)
    table.sort(want)
    assert.same(want, got)
    assert.same({ "yes", "no", "auto" }, complete("--register="))
  end)

  it("completes the command after the options, and its arguments as files", function()
    assert_offers("-- ech", { "echo" })
    assert_offers("-w --chroot=/ ech", { "echo" })
    assert_offers("--chroot /tmp sh /us", { "/usr" })
    assert_offers("-r /tmp sh /us", { "/usr" })
  end)

  it("never runs what the line holds", function()
    local dir = pft.tempdir("compl")
    local marker = dir .. "/ran"
    for _, line in ipairs({ "--caps=$(touch " .. marker .. ")", "--attach=`touch " .. marker .. "`",
                            "--mount=bind:$(touch " .. marker .. ")", "$(touch " .. marker .. ")",
                            "--cgroup=;touch " .. marker }) do
      complete(line)
    end
    local ran = pft.sh("test -e " .. marker) == 0
    pft.rm_rf(dir)
    assert.is_false(ran, "a completion ran a command of the line")
  end)

  describe("of --attach", function()
    local started = {}
    after_each(function()
      for _, pid in ipairs(started) do pft.sh("kill -KILL " .. pid .. " 2>/dev/null") end
      for _, pid in ipairs(started) do
        for _ = 1, 100 do
          if pft.sh("test -e /run/pflask/" .. pid .. ".sock") ~= 0 then break end
          pft.sh("sleep 0.05")
        end
      end
      started = {}
    end)

    it("offers the pid and name of a detached container, and forgets them when it ends", function()
      if pft.capture("id -u") ~= "0" then return pending("runs as root: /run/pflask") end
      local name = string.format("pftest-cmpl-%d", math.random(100000, 999999))
      local r = pft.pflask({ "--detach", "--name=" .. name, "--", "sleep", "60" }, { timeout = 10 })
      assert.equal(0, r.status, r.stderr)
      local pid = r.stdout:match("detached, pid (%d+)")
      assert.is_not_nil(pid, r.stdout)
      started[#started + 1] = pid
      assert_offers("--attach=", { pid, name })
      assert.same({ name }, complete("--attach " .. name:sub(1, -3)))
      assert_offers("-a " .. pid, { pid })
      -- A running container that is not detached has no terminal to attach.
      local plain = pft.run({ "sh", "-c", pft.quote(PFLASK) .. " --name=" .. name .. "-plain -- sleep 60 & "
        .. "for i in $(seq 100); do " .. pft.quote(PFLASK) .. " --list | grep -q " .. name .. "-plain && break; sleep 0.05; done; "
        .. "echo $!" })
      local sup = plain.stdout:match("(%d+)")
      local got = complete("--attach=")
      if sup then pft.sh("kill " .. sup .. "; sleep 0.1") end
      assert.is_nil(set_of(got)[name .. "-plain"], table.concat(got, " "))
      pft.sh("kill -KILL " .. pid)
      local gone
      for _ = 1, 100 do
        gone = not set_of(complete("--attach="))[pid]
        if gone then break end
        pft.sh("sleep 0.05")
      end
      assert.is_true(gone, "the pid of a container that ended is still offered")
      assert.is_nil(set_of(complete("--attach="))[name])
    end)

    it("as an unprivileged user: completes, and offers none of root's containers", function()
      if pft.capture("id -u") ~= "0" then return pending("runs as root, to create a throwaway user") end
      local r = pft.pflask({ "--detach", "--", "sleep", "60" }, { timeout = 10 })
      assert.equal(0, r.status, r.stderr)
      local pid = r.stdout:match("detached, pid (%d+)")
      started[#started + 1] = pid
      local u = pft.rootless_user()
      local user, exe, bindir = u.name, u.exe, u.bindir
      assert.equal(0, pft.sh("cp " .. pft.quote(BASH_SCRIPT) .. " " .. bindir .. "/pflask.bash && chmod 0644 "
        .. bindir .. "/pflask.bash"))
      local ok, err = pcall(function()
        local opts = { user = user, exe = exe, script = bindir .. "/pflask.bash", prefix = "cd / &&" }
        assert.same({ "--register=" }, complete("--regi", opts))
        assert_offers("--caps=+net_b", { "+net_bind_service" }, opts)
        assert_offers("--netif=", { "lo:" }, opts)
        local got = complete("--attach=", opts)
        assert.is_nil(set_of(got)[pid], table.concat(got, " "))
        -- The user's own detached container is offered, by pid and name.
        local own = pft.pflask({ "--detach", "--name=pftest-mine", "--", "sleep", "60" },
          { user = user, pflask = exe, prefix = "cd / &&", timeout = 10 })
        assert.equal(0, own.status, own.stderr)
        local own_pid = own.stdout:match("detached, pid (%d+)")
        assert.is_not_nil(own_pid, own.stdout)
        got = complete("--attach=", opts)
        pft.sh("kill -KILL " .. own_pid)
        table.sort(got)
        assert.same({ own_pid, "pftest-mine" }, got)
      end)
      -- (With the user goes its runtime directory, which its detached
      -- container made.)
      u:remove()
      assert(ok, err)
    end)
  end)
end)

-- The scripts in real shells: tmux runs an interactive shell, the test
-- types a line and Tab, and reads the screen.
describe("completion in an interactive shell", function()
  local t, dir

  -- The shell in a 200x30 window; the screen is read without scrollback.
  local function start(cmd)
    t = tmux.new(cmd, { width = 200, height = 30, remain = true, history = 0 })
  end

  local function keys(...) t:keys(...) end

  local function wait_for(text) return t:wait_text(text) end

  before_each(function()
    dir = pft.tempdir("complsh")
    -- `pflask` on PATH: the scripts complete that command name.
    assert.equal(0, pft.sh("ln -s " .. pft.quote(PFLASK) .. " " .. dir .. "/pflask"))
  end)

  after_each(function()
    if t then t:kill() end
    pft.rm_rf(dir)
    t = nil
  end)

  it("bash completes --caps names and --mount types through its own word splitting", function()
    pft.write_file(dir .. "/rc", "PS1='BP> '\nPATH=" .. dir .. ":$PATH\nsource " .. pft.quote(absolute(BASH_SCRIPT)) .. "\n")
    start("env -i HOME=/tmp TERM=xterm PATH=/usr/bin:/bin bash --noprofile --rcfile " .. dir .. "/rc -i")
    wait_for("BP>")
    -- Typed, completed, never run (C-u clears the line).
    keys("pflask --caps=-all,+net_bind_s", "Tab")
    wait_for("BP> pflask --caps=-all,+net_bind_service")
    keys("C-u", "pflask --mount=bind-r", "Tab")
    wait_for("BP> pflask --mount=bind-ro:")
    keys("C-u", "pflask --netif=macvlan:l", "Tab")
    wait_for("BP> pflask --netif=macvlan:lo:")
    keys("C-u")
  end)

  it("bash-completion finds the installed script by itself (its XDG data dirs)", function()
    if pft.sh("test -r /usr/share/bash-completion/bash_completion") ~= 0 then
      return pending("bash-completion is not installed")
    end
    local r = pft.run({ "cmake", "--install", absolute(pft.BUILD_DIR), "--prefix", dir .. "/prefix" }, { timeout = 300 })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- The installed pflask as `pflask`, and nothing that defines _pflask
    -- but bash-completion's loader.
    pft.write_file(dir .. "/rc", table.concat({
      "PS1='BC> '", "PATH=" .. dir .. "/prefix/bin:$PATH", "XDG_DATA_DIRS=" .. dir .. "/prefix/share:/usr/share",
      "source /usr/share/bash-completion/bash_completion", "" }, "\n"))
    start("env -i HOME=/tmp TERM=xterm PATH=/usr/bin:/bin bash --noprofile --rcfile " .. dir .. "/rc -i")
    wait_for("BC>")
    keys("pflask --caps=-all,+net_bind_s", "Tab")
    wait_for("BC> pflask --caps=-all,+net_bind_service")
    keys("C-u", "complete -p pflask", "Enter")
    wait_for("complete -F _pflask pflask")
  end)

  it("zsh: the script parses, and completes options and --mount types", function()
    if pft.sh("command -v zsh >/dev/null") ~= 0 then return pending("zsh is not installed") end
    local r = pft.run({ "zsh", "-n", absolute(ZSH_SCRIPT) })
    assert.equal(0, r.status, r.stderr)
    assert.equal(0, pft.sh("cp " .. pft.quote(ZSH_SCRIPT) .. " " .. dir .. "/_pflask"))
    pft.write_file(dir .. "/.zshrc", table.concat({
      "PS1='ZP> '", "PATH=" .. dir .. ":$PATH", "fpath=(" .. dir .. " $fpath)",
      "autoload -Uz compinit", "compinit -u -D", "" }, "\n"))
    start("env -i HOME=" .. dir .. " ZDOTDIR=" .. dir .. " TERM=xterm PATH=/usr/bin:/bin zsh -i")
    wait_for("ZP>")
    keys("pflask --regis", "Tab")
    wait_for("ZP> pflask --register=")
    keys("C-u", "pflask --mount=bind-r", "Tab")
    wait_for("ZP> pflask --mount=bind-ro:")
    keys("C-u", "pflask --caps=+net_bind_s", "Tab")
    wait_for("ZP> pflask --caps=+net_bind_service")
    keys("C-u")
  end)
end)
