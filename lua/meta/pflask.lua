---@meta pflask

-- LuaCATS declarations of the `pflask` module and the spec types, for
-- editors (lua-language-server: add this directory to
-- Lua.workspace.library). The reference is doc/lua-api.md; the spec's
-- fields are checked against pflask.schema by tests/unit/meta_spec.lua.

---@class pflask.Error
---@field status integer exit status pflask ends with (125, 126, 127, 128+N)
---@field message string one line, without the "pflask: " prefix
---@field errno integer|nil the system error behind it

---@class pflask.IdRange
---@field inside integer first id in the container
---@field outside integer first id on the host
---@field count integer number of ids

---@class pflask.Mount
---@field type "bind"|"tmp"|"overlay"|"proc"|"dev"|"dir"|"symlink"|"file"
---@field target string path inside the root
---@field source? string host path (bind, file)
---@field readonly? boolean
---@field nosuid? boolean
---@field nodev? boolean
---@field noexec? boolean
---@field optional? boolean bind: skip when source is missing
---@field options? string tmp: mount(8) options
---@field upper? string overlay
---@field work? string overlay
---@field mode? integer dir, file
---@field to? string symlink: what it points to
---@field content? string file

---@class pflask.Route
---@field dst? string
---@field gateway? string
---@field metric? integer

---@class pflask.Netif
---@field type "none"|"veth"|"move"|"macvlan"|"ipvlan"
---@field inside? string veth: name inside
---@field outside? string veth: name on the host
---@field device? string move: the host's interface
---@field name? string move, macvlan, ipvlan: name inside
---@field master? string macvlan, ipvlan
---@field mode? string macvlan, ipvlan
---@field address? string|string[] CIDR
---@field gateway? string|string[]
---@field routes? pflask.Route[]
---@field mtu? integer
---@field mac? string
---@field up? boolean
---@field outside_address? string|string[]
---@field outside_mtu? integer
---@field outside_master? string a bridge on the host
---@field outside_up? boolean

---@class pflask.Namespaces
---@field user? boolean
---@field mount? boolean
---@field pid? boolean
---@field ipc? boolean
---@field uts? boolean|string
---@field net? boolean|string a path joins that namespace
---@field cgroup? boolean|string
---@field time? boolean

---@class pflask.Limits
---@field memory? integer|string bytes or "512M"
---@field pids? integer|string
---@field cpus? number|string

---@class pflask.Spec
---@field command? string[]
---@field namespaces? pflask.Namespaces
---@field root? string
---@field chdir? string
---@field hostname? string
---@field user? string|integer
---@field gid? integer with user: the primary gid as given (OCI process.user.gid)
---@field groups? integer[] with user: the supplementary gids as given
---@field uid_map? pflask.IdRange[]|"subordinate"
---@field gid_map? pflask.IdRange[]|"subordinate"
---@field keepenv? boolean
---@field pass_fds? (integer|string)[]
---@field terminal? boolean
---@field detach? boolean
---@field setenv? {name: string, value: string}[]
---@field init? "auto"|"pid1"|"reaper"
---@field boot? boolean false: an init as pid 1 of a root is not an OS booting
---@field console_socket? string a pty whose master goes to this unix socket (OCI --console-socket)
---@field console_size? {width: integer, height: integer}
---@field child_setup? fun(plan: table)
---@field parent_setup? fun(container: pflask.Container)
---@field mounts? pflask.Mount[]
---@field readonly_root? boolean
---@field masked_paths? string[] inside the container: masked after every mount (OCI linux.maskedPaths)
---@field readonly_paths? string[] inside the container: made read-only after every mount
---@field ephemeral? boolean
---@field ephemeral_dir? string
---@field netifs? pflask.Netif[]
---@field caps? (string|{op: "+"|"-", name: string})[]
---@field no_new_privs? boolean
---@field rlimits? table<string, integer|string|{soft: integer|string, hard: integer|string}>
---@field seccomp_bpf? string
---@field seccomp? boolean|pflask.Seccomp absent or true: the default filter; false: none
---@field syscalls? string[] edits of the default filter: "-name", "+name", "@group"
---@field timeout? number|{seconds: number, grace?: number}
---@field cpuset? string|integer[]
---@field sysctls? table<string, string|number> namespaced sysctls only
---@field start_fifo? string
---@field start_orphan? boolean with start_fifo: the command outlives the supervisor once created (OCI create)
---@field cgroups? string[]
---@field cgroup_path? string where the container's cgroups go (OCI linux.cgroupsPath)
---@field devices? string[]
---@field limits? pflask.Limits
---@field name? string
---@field register? boolean
---@field stdin? "inherit"|"null"|string|file* a path is opened outside; a file: a core.pipe() end
---@field stdout? "inherit"|"null"|"capture"|string|file*
---@field stderr? "inherit"|"null"|"capture"|string|file*

---@class pflask.ExecOptions
---@field user? string|integer
---@field cwd? string
---@field env? table<string, string>
---@field stdin? string|file* "inherit", "null", a path or an open file
---@field stdout? string|file*
---@field stderr? string|file*

---@class pflask.Container
---@field plan table the resolved plan
---@field status integer|nil once it ended
---@field created boolean|nil started with start_fifo, waiting for it
local Container = {}

---@return pflask.Container
function Container:start() end

---@param opts? {timeout?: number, translate?: table<integer, integer>}
---@return integer|nil status
---@return string|nil "timeout"
function Container:wait(opts) end

---@return integer status
function Container:run() end

---@return integer
function Container:pid() end

---@param sig? integer
---@return boolean|nil ok
---@return string|nil message
function Container:kill(sig) end

---@param argv string[]
---@param opts? pflask.ExecOptions
---@return integer status
function Container:exec(argv, opts) end

--- Wait, then status and what stdout/stderr = "capture" got.
---@param opts? {timeout?: number}
---@return integer|nil status
---@return string|nil stdout
---@return string|nil stderr
function Container:output(opts) end

--- Kill if running, reap, clean up (also __close and __gc).
function Container:close() end

function Container:supervise() end

---@class pflask
local pflask = {}

---@type string
pflask.version = nil
pflask.core = require "pflask.core"
pflask.error = nil

---@param spec pflask.Spec
---@return pflask.Container
function pflask.container(spec) end

---@param spec pflask.Spec
---@return integer status
function pflask.run(spec) end

---@param list pflask.Container[]
---@param timeout? number
---@return pflask.Container|nil
---@return integer|string status or "timeout"
function pflask.wait_any(list, timeout) end

---@param sig? integer
---@return integer count
function pflask.kill_all(sig) end

---@param fn fun()
function pflask.defer(fn) end

--- Run spec with stdout and stderr captured.
---@param spec pflask.Spec
---@return integer status
---@return string|nil stdout
---@return string|nil stderr
function pflask.capture(spec) end

---@param seconds number
---@return number left
---@return integer|nil signo
function pflask.sleep(seconds) end

---@param fifo string
---@param timeout? number
---@return true|nil ok
---@return string|nil message
function pflask.start_fifo(fifo, timeout) end

return pflask
