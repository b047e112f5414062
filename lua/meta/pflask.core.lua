---@meta pflask.core

-- LuaCATS declarations of pflask.core, the C engine (src/l_*.c), for
-- editors (lua-language-server). Generated once from doc/lua-api.md, kept
-- by hand: tests/unit/meta_spec.lua fails when the module and this file
-- disagree on what is exported. Each function is described in
-- doc/lua-api.md; most return `fail, "what: strerror", errno` on failure.

---@class pflask.core
local core = {}

--- IPv4 or IPv6 address with prefix length (without one, a host address).
--- IPv6 addresses skip duplicate address detection: usable at once.
---@param dev any
---@param cidr any
---@param ns? any
---@return any ...
function core.addr_add(dev, cidr, ns) end

--- IPv4 or IPv6 address with prefix length (without one, a host address).
--- IPv6 addresses skip duplicate address detection: usable at once.
---@param dev any
---@param cidr any
---@param ns? any
---@return any ...
function core.addr_del(dev, cidr, ns) end

--- bind-mounts the host path `source` (without it: `target` on itself);
--- `readonly`, `nosuid`, `nodev`, `noexec` cover the submounts too when
--- `recursive` (mount_setattr, or a remount of each mount found in
--- mountinfo). With `source_in_root`, `source` is a path inside `root`,
--- resolved there like `target` (never on the host; no `nosuid`, `nodev`,
--- `noexec` then).
---@param opts table
---@return any ...
function core.bind(opts) end

--- child, right before exec: permitted, effective, inheritable = `keep`
--- (within what is permitted); ambient cleared, then `ambient` raised.
---@param keep any
---@param ambient? any
---@return any ...
function core.caps_apply(keep, ambient) end

--- this process's bounding set, or only its part in `which` (a prctl per
--- capability read; the others are reported absent).
---@param which? integer
---@return any ...
function core.caps_bounding(which) end

--- child, before the user switch: drops every capability not in `keep` from
--- the bounding set; `keepcaps` arms PR_SET_KEEPCAPS.
---@param keep any
---@param keepcaps? any
---@return any ...
function core.caps_drop_bounding(keep, keepcaps) end

--- the highest capability the kernel knows; this process's bounding set.
---@return any ...
function core.caps_last() end

--- parent. mkdir (EEXIST is an error), one write(2), move a process, names
--- of sub-cgroups.
---@param dir any
---@param pid any
---@return any ...
function core.cgroup_attach(dir, pid) end

--- parent. mkdir (EEXIST is an error), one write(2), move a process, names
--- of sub-cgroups.
---@param dir any
---@return any ...
function core.cgroup_children(dir) end

--- parent. The cgroups pflask.PID.N directly below path whose supervisor
--- PID is gone; known (pid string -> alive) is read and filled, so the
--- parents of one start ask about each supervisor once.
---@param path string
---@param known table<string, boolean>
---@return string[]|nil names
---@return string|nil message
---@return integer|nil errno
function core.cgroup_stale(path, known) end

--- parent. The census of supervisors that made cgroups (kind "cgroups",
--- the default: pflask.cgroups) or that hold a registry record (kind
--- "records": pflask.registry): the System V semaphore set of runtime
--- directory dir, made if missing (created: true); EPERM for a set with
--- its key that pflask did not make.
---@param dir string
---@param kind "cgroups"|"records"|nil
---@return integer|nil id
---@return boolean|string created, or the message
---@return integer|nil errno
function core.census_open(dir, kind) end

--- parent. Join (1) or leave (-1) the census: the live count with
--- SEM_UNDO (the kernel undoes it when the process dies), the registered
--- count without.
---@param id integer
---@param delta 1|-1
---@return true|nil ok
---@return string|nil message
---@return integer|nil errno
function core.census_join(id, delta) end

--- parent. Deaths not settled yet: registered - live.
---@param id integer
---@return integer|nil deaths
---@return string|nil message
---@return integer|nil errno
function core.census_deaths(id) end

--- parent. Take (waiting) or give back the sweep mutex (SEM_UNDO: given
--- back by the kernel if its holder dies).
---@param id integer
---@param lock boolean
---@return true|nil ok
---@return string|nil message
---@return integer|nil errno
function core.census_lock(id, lock) end

--- parent. Settle n deaths whose cgroups are gone (holding the mutex).
---@param id integer
---@param n integer
---@return true|nil ok
---@return string|nil message
---@return integer|nil errno
function core.census_settle(id, n) end

--- parent. mkdir (EEXIST is an error), one write(2), move a process, names
--- of sub-cgroups.
---@param dir any
---@return any ...
function core.cgroup_create(dir) end

--- parent. Removes the cgroup and those below it; with `kill`, SIGKILLs
--- what is left in them (cgroup.kill or each pid) and retries for about 2
--- s.
---@param dir any
---@param kill? any
---@return any ...
function core.cgroup_remove(dir, kill) end

--- parent. mkdir (EEXIST is an error), one write(2), move a process, names
--- of sub-cgroups.
---@param dir any
---@param file any
---@param value any
---@return any ...
function core.cgroup_write(dir, file, value) end

--- as their system calls.
---@param dir any
---@return any ...
function core.chdir(dir) end

--- mkdir(2): `fail` with errno EEXIST when it exists (a reservation: OCI
--- create's per-id state directory).
---@param path any
---@param mode any
---@return any ...
function core.mkdir(path, mode) end

--- kill(2) of one process (pid > 0) that this one may not have started
--- (OCI `kill`).
---@param pid any
---@param sig any
---@return any ...
function core.kill(pid, sig) end

--- umask(2); returns the previous mask, which the container's processes
--- inherit through clone (OCI process.user.umask).
---@param mask any
---@return any ...
function core.umask(mask) end

--- as their system calls (`chown` does not follow a symlink).
---@param path any
---@param mode any
---@return any ...
function core.chmod(path, mode) end

--- `chmod` of `path` resolved inside `root`; `mode` 0 to 07777.
---@param root any
---@param path any
---@param mode any
---@return any ...
function core.chmod_in_root(root, path, mode) end

--- as their system calls (`chown` does not follow a symlink).
---@param path any
---@param uid any
---@param gid any
---@return any ...
function core.chown(path, uid, gid) end

--- `chroot(2)` and `chdir("/")`; `keep_libmount` as for `core.pivot_root`.
---@param dir any
---@param keep_libmount? boolean
---@return any ...
function core.chroot(dir, keep_libmount) end

--- parent. Forks into new namespaces (`namespaces`: array of names or a set
--- `{pid=true}`). Returns `process, channel, placed` in the parent; with
--- `cgroup`, a v2 cgroup directory, the child starts in it
--- (CLONE_INTO_CGROUP) and `placed` is true, unless the kernel is older
--- than 5.7. The child runs `fn(channel)` and exits with its integer result
--- (0 otherwise); it never returns into the caller's frames. An error in
--- `fn` is sent to the parent as a failure record: a table's `status`,
--- (see doc/lua-api.md)
---@param namespaces any
---@param fn any
---@param cgroup? any
---@return any ...
function core.clone(namespaces, fn, cgroup) end

--- child, right before exec: closes every fd from 3 up except those listed
--- in `pass` (which lose FD_CLOEXEC: the command inherits them at their
--- numbers) and `channel`'s (kept close-on-exec). `close_range(2)`, or
--- `/proc/self/fd` on kernels before 5.9. `fork_reaper` and `exec_reaped`
--- close every fd from 3 up but their signalfd in pid 1 once the command
--- started.
---@param pass any
---@param channel? any
---@return any ...
function core.close_fds(pass, channel) end

--- `--detach`: fork; the new process gets `"daemon", report`, and after
--- starting the container calls `report:done(pid)` (stderr then goes to
--- /dev/null); the original gets `"detached", pid` or `"failed", status`.
---@return any ...
function core.daemonize() end

--- parent. Writes `deny` to `/proc/PID/setgroups` (needed before an
--- unprivileged gid map).
---@param pid any
---@return any ...
function core.deny_setgroups(pid) end

--- `"char"|"block", major, minor` of a device node (following symlinks),
--- `false` for anything else, `fail` if it cannot be stat'ed.
---@param path any
---@return any ...
function core.device_number(path) end

--- `true`, or `fail` with "'RULE' is not a device rule (...)".
---@param rule any
---@return any ...
function core.device_rule_check(rule) end

--- parent, root. Attaches to the v2 cgroup `dir` a BPF device program
--- (BPF_PROG_TYPE_CGROUP_DEVICE, written instruction by instruction, raw
--- bpf(2), BPF_F_ALLOW_MULTI) that allows what one of `rules` (`{"c 1:3
--- rwm", ...}`, the `devices.allow` syntax) allows and denies every other
--- device access. Lives as long as the cgroup. Raises on a bad rule.
---@param dir any
---@param rules any
---@return any ...
function core.devices_attach(dir, rules) end

--- the names in directory `path` (not `.` and `..`), unsorted; `path` must
--- not be a symlink.
---@param path any
---@return any ...
function core.dir_entries(path) end

--- `from` (an fd or an io file) onto fd `to`, inheritable.
---@param from any
---@param to any
---@return any ...
function core.dup2(from, to) end

--- the current environment as a map.
---@return any ...
function core.environ() end

--- child: `root` becomes an overlay on itself. Without `upper` and `work`
--- its writable layer is a tmpfs mounted on `root` in the caller's mount
--- namespace (under the overlay, out of reach); with them, those host
--- directories (one filesystem). The upper layer takes `root`'s mode and
--- owner (an owner the user namespace does not map is left to root inside).
---@param opts table
---@return any ...
function core.ephemeral(opts) end

--- child. Runs `exec_plan` first (status 125 when it fails; `channel` is
--- where it says "created" before a start FIFO). Executes `file` (searched
--- in `env`'s `PATH` when it has no `/`) with `argv` (`argv[1]` is the
--- command's `argv[0]`) and `env` (array of `"K=V"` or map). Clears the
--- signal mask. An empty `LISTEN_PID` in `env` is given the pid of the
--- process that execs (`exec_reaped` too: the command's pid in its
--- namespace). Returns only on failure: `nil, msg, errno, status` with
--- status 127 (not found) or 126 (cannot execute).
---@param file any
---@param argv any
---@param env any
---@param exec_plan? any
---@param channel? any
---@return any ...
function core.exec(file, argv, env, exec_plan, channel) end

--- child: builds the exec plan, what runs in the command's own process
--- right before execve (src/exec.c, allocation-free): close every fd from 3
--- up but `pass_fds` (made inheritable), set `rlimits` (array of
--- `{resource, soft, hard}`, resource a name of `core.rlimit_names` or a
--- number, limits integers or `"infinity"`), `no_new_privs`, with
--- `start_fifo` (a path, opened O_PATH now: build it before pivot_root)
--- send "created" on the channel and block opening the FIFO for writing
--- (see doc/lua-api.md)
---@param opts table
---@return any ...
function core.exec_plan(opts) end

--- child, as pid 1, after every other step: starts the command (as
--- `core.exec` would run it, its `exec_plan` run in the command's process,
--- never in pid 1, with `CLONE_VM|CLONE_VFORK` so nothing is copied) and
--- stays behind as its init, like `fork_reaper`'s parent; an exec failure
--- is sent on `channel` by the command (126/127). Returns only if the
--- command cannot be started: `nil, msg, errno`. This is what containers
--- use: cheaper than `fork_reaper` by a copy of the Lua process.
---@param channel any
---@param file any
---@param argv any
---@param env any
---@param exec_plan? any
---@return any ...
function core.exec_reaped(channel, file, argv, env, exec_plan) end

--- flushes stdio and `_exit`s (for children).
---@param status any
---@return any ...
function core.exit(status) end

--- With on, SIGINT, SIGTERM, SIGHUP and SIGQUIT raise {status = 128+N,
--- message = "interrupted by SIGTERM"} in the running Lua code; without,
--- they act by default. pflask.defer turns it on.
---@param on boolean
---@return true
function core.interrupt_on_signals(on) end

--- boolean, and for an open fd what it is: `"directory"`, `"file"`,
--- `"char"`, `"block"`, `"fifo"`, `"socket"` or `"other"`.
---@param fd any
---@return any ...
function core.fd_is_open(fd) end

--- what this build has, in `pflask --version`'s order: an array of
--- `"+name"` (built in) or `"-name"` (not): `netlink`, `libmount`, `caps`,
--- `seccomp` (always `-` for now), `machined`.
---@type table
core.features = nil

--- child, as pid 1. Forks; returns `true` in the new child, which goes on
--- to exec the command. The caller never returns: it closes `channel`,
--- forwards signals to the command, reaps zombies, and exits with the
--- command's status (128+N for signal N) — which ends the pid namespace.
---@param channel? any
---@return any ...
function core.fork_reaper(channel) end

--- as their system calls.
---@return any ...
function core.getcwd() end

---@param ... any
---@return any ...
function core.getegid(...) end

---@param ... any
---@return any ...
function core.geteuid(...) end

---@param ... any
---@return any ...
function core.getgid(...) end

--- the host's group ids of a user.
---@param name any
---@param gid any
---@return any ...
function core.getgrouplist(name, gid) end

---@param ... any
---@return any ...
function core.getpid(...) end

--- host user database: `{name=, uid=, gid=, home=, shell=}` or `nil`.
---@param name any
---@return any ...
function core.getpwnam(name) end

--- ids.
---@return any ...
function core.getuid() end

--- boolean.
---@param fd any
---@return any ...
function core.isatty(fd) end

--- joins those of the namespaces (default all) that `pid` has of its own,
--- then its root: a pidfd pins `pid` (with `start`, `core.start_time`'s, a
--- reused pid is refused), every `/proc/PID/ns/*` is opened first (and
--- `pid` must not have ended meanwhile), one the caller shares is skipped
--- (same inode), user first, mount last (then `chroot` to
--- `/proc/PID/root`). Returns the list of names joined. Leaves the caller
--- half-joined on failure: call it in a child made for it (`core.clone({},
--- fn)`, as `c:exec`).
---@param pid any
---@param namespaces? any
---@param start? any
---@return any ...
function core.join(pid, namespaces, start) end

--- creates an interface. `spec`: `kind` (`"veth"`, `"macvlan"`, `"ipvlan"`,
--- `"bridge"`, or any kind the kernel knows without options), `name`,
--- `netns` (a `NetNS` to create it in directly), `master` (macvlan, ipvlan:
--- the lower device, in `ns`), `mode`, `peer` (veth: the other end's name),
--- `peer_netns` (veth: where the other end goes). A veth is created with
--- both ends in their namespaces under their final names in one request: no
--- temporary names, nothing half-made.
---@param spec any
---@param ns? any
---@return any ...
function core.link_add(spec, ns) end

--- deletes an interface (a veth takes its peer with it).
---@param dev any
---@param ns? any
---@return any ...
function core.link_del(dev, ns) end

--- `{index=, name=, kind=, mtu=, address=, up=, master=, link=}` (`kind`:
--- `"veth"`, `"macvlan"`, `"bridge"`... or `nil` for a physical device or
--- `lo`; `master`, `link`: indexes) or `nil, msg, errno` (`ENODEV` when
--- there is none).
---@param dev any
---@param ns? any
---@return any ...
function core.link_get(dev, ns) end

--- array of those tables.
---@param ns? any
---@return any ...
function core.link_list(ns) end

--- `changes`: `up` (boolean), `mtu`, `address` (MAC), `name` (rename),
--- `master` (a bridge name; `false` releases), `netns` (a `NetNS`: move
--- there; with `name`, renamed in the same request, so the name is checked
--- only where it lands). Up is applied last.
---@param dev any
---@param changes any
---@param ns? any
---@return any ...
function core.link_set(dev, changes, ns) end

--- `"directory"`, `"file"` or `"other"` for an existing path.
---@param root any
---@param path any
---@return any ...
function core.lookup(root, path) end

--- `{type=, mode=, uid=, gid=, size=, dev=, ino=}`; type is `directory`,
--- `file`, `link`, `char`, `block`, `fifo` or `socket`.
---@param path any
---@return any ...
function core.lstat(path) end

--- parent: registers a machine of class `container`, service `pflask`, with
--- leader pid `leader` and root directory `root` (`""`: none) with
--- systemd-machined; `create_scope`: CreateMachine (machined moves the
--- leader into a scope unit of its own), else RegisterMachine (it stays in
--- its cgroups). Loads libsystemd on first use; blocks on the system bus.
--- `fail` with ENOSYS when built without machined support.
---@param name any
---@param leader any
---@param root any
---@param create_scope any
---@return any ...
function core.machined_register(name, leader, root, create_scope) end

--- parent: UnregisterMachine; its processes are left alone. `fail` with
--- errno ENOENT when machined does not know `name`.
---@param name any
---@return any ...
function core.machined_unregister(name) end

--- makes every mount private, recursively.
---@return any ...
function core.make_private() end

--- a new directory (mode 0700) from a template ending in `XXXXXX`; returns
--- its path.
---@param template any
---@return any ...
function core.mkdtemp(template) end

--- a new FIFO, mode 0622, for `start_fifo`.
---@param path any
---@return any ...
function core.mkfifo(path) end

--- a device node (fails in a user namespace: bind one instead).
---@param root any
---@param path any
---@param char any
---@param major any
---@param minor any
---@param mode? any
---@return any ...
function core.mknod(root, path, char, major, minor, mode) end

--- seconds (fractional) of `CLOCK_MONOTONIC`, for deadlines.
---@return any ...
function core.monotonic() end

--- mounts a filesystem; `options` in mount(8) style
--- (`"ro,nosuid,size=64M,mode=0755"`), split by libmount into flags and
--- filesystem data. `source` defaults to `fstype`.
---@param opts table
---@return any ...
function core.mount(opts) end

--- a fresh proc (nosuid, nodev, noexec) at the path `target`.
---@param target any
---@return any ...
function core.mount_proc(target) end

--- creates what is missing of `path` (parents 0755, then a directory or an
--- empty file); an existing path of the other kind is an error.
---@param root any
---@param path any
---@param directory any
---@return any ...
function core.mountpoint(root, path, directory) end

--- array of namespace names.
---@type table
core.namespaces = nil

--- parent. A `NetNS` handle on `/proc/PID/ns/net` or a file
--- (`/run/netns/NAME`). It keeps the namespace, and the virtual interfaces
--- in it, alive until `ns:close()` (also `<close>` and garbage collection);
--- `ns:fileno()`.
---@param pid any
---@return any ...
function core.netns_open(pid) end

--- child. PR_SET_NO_NEW_PRIVS.
---@return any ...
function core.no_new_privs() end

--- `true` when `path` is a namespace of kind `name` (ioctl NS_GET_NSTYPE),
--- else `fail` ("PATH is not a net namespace").
---@param path any
---@param name any
---@return any ...
function core.ns_check(path, name) end

--- child: setns into the namespace of kind `name` that `path` is.
---@param path any
---@param name any
---@return any ...
function core.ns_enter(path, name) end

--- `{name = inode}` of `/proc/PID/ns/*`, or of those in `names` (a list or
--- a set); one that cannot be looked at is left out. The registry records
--- those a container has of its own.
---@param pid any
---@param names? any
---@return any ...
function core.ns_inodes(pid, names) end

--- child: `/dev/null`, opened now (before `pivot_root`: the host's node),
--- as fd 0.
---@return any ...
function core.null_stdin() end

--- a `PathHandle`: the host path `path` (symlinks followed) opened
--- `O_PATH`, close-on-exec, or `nil, msg, errno`. `h:path()` is
--- `"/proc/self/fd/N"`, which mount calls follow to the opened file (a
--- source a later mount cannot hide); `h:close()` (also `<close>` and
--- garbage collection).
---@param path any
---@return any ...
function core.open_path(path) end

--- a new `Pty` (both ends O_CLOEXEC) with the window size of terminal `fd`.
---@param fd? any
---@return any ...
function core.open_pty(fd) end

--- overlayfs on `target`, with `target` itself as the lower layer. `target
--- = "/"` overlays the whole root.
---@param opts table
---@return any ...
function core.overlay(opts) end

--- `dir` becomes `/` (bind-mounted on itself, `pivot_root`, old root
--- detached); cwd becomes `/`. libmount is loaded first unless
--- `keep_libmount` is false: then it is never loaded afterwards (mount
--- options beyond the common flags, mode=, size=, uid=, gid= fail), and
--- either way never from the new root.
---@param dir any
---@param keep_libmount? boolean
---@return any ...
function core.pivot_root(dir, keep_libmount) end

--- an `Attachment` to detached container `pid`, or `fail` with why;
--- `attachment:relay()` → `"exited", status, how, code` or `"detached"`
--- (Ctrl-@). A stdin epoll cannot watch (a regular file) is read directly
--- and sent as fast as the container takes it.
---@param pid any
---@return any ...
function core.pty_connect(pid) end

--- the `Listener` socket of detached container `pid` (closing it removes
--- the socket); `listener:path()`.
---@param pid any
---@return any ...
function core.pty_listen(pid) end

--- contents of `path` resolved inside `root` (openat2 `RESOLVE_IN_ROOT`: no
--- symlink or `..` leaves it); at most `max` bytes (1 MiB).
---@param root any
---@param path any
---@param max? any
---@return any ...
function core.read_in_root(root, path, max) end

--- `rm -r` that follows no symlink and crosses no mount; a missing path is
--- fine.
---@param path any
---@return any ...
function core.remove_tree(path) end

--- the resource names `exec_plan` and `spec.rlimits` know.
---@type table
core.rlimit_names = nil

--- `route`: `dst` (`"default"` or a CIDR), `gateway`, `dev` (at least one
--- of them), `metric`; main table.
---@param route any
---@param ns? any
---@return any ...
function core.route_add(route, ns) end

--- `route`: `dst` (`"default"` or a CIDR), `gateway`, `dev` (at least one
--- of them), `metric`; main table.
---@param route any
---@param ns? any
---@return any ...
function core.route_del(route, ns) end

--- child: clears the parent death signal `core.clone` armed, so the
--- process outlives its parent (`exec`'s `detach`).
---@return any ...
function core.keep_after_parent() end

--- a `Console`: a unix socket connected to `path` now (OCI
--- `--console-socket`); `console:attach()` in a child inside the
--- container: a pty of its own devpts on fds 0-2, master sent on it.
---@param path any
---@return any ...
function core.console_connect(path) end

--- prctl PR_SET_DUMPABLE: `c:exec`'s child is non-dumpable until it execs,
--- so the container's root cannot ptrace it or read its memory meanwhile.
---@param on any
---@return any ...
function core.set_dumpable(on) end

--- makes the mount whose root is `target` read-only or (`readonly=false`)
--- writable again, that mount only, not its submounts. A bind inherits the
--- read-only flag of what it copies: this makes the container's own
--- _/proc/sys/net_ writable inside a read-only _/proc/sys_.
---@param opts table
---@return any ...
function core.set_readonly(opts) end

--- child: masks paths inside `root`, in order, in one call: `root` opened
--- once, each path resolved inside it once; one that does not exist is
--- skipped unless `required`. how: "readonly" or "writable" (bound on
--- itself with that flag, that mount only), "null" (the host's /dev/null
--- bound on it), "empty" (an empty read-only tmpfs), "hide" ("empty" for
--- a directory, else "null"). `legacy` takes the mount(2) path of kernels
--- without open_tree (the same mounts; tests compare).
---@param root string
---@param masks { [1]: "readonly"|"writable"|"null"|"empty"|"hide", [2]: string, required: boolean|nil }[]
---@param legacy boolean|nil
---@return any ...
function core.masks(root, masks, legacy) end

--- child: creates entries in the directory `dir` inside `root`, resolved
--- and opened once, in order: {"node", name, major, minor} a character
--- device 0666 (where mknod is refused, as in a user namespace, the host's
--- /dev/NAME bound on an empty file), {"dir", name} a directory 0755,
--- {"link", name, target} a symlink.
---@param root string
---@param dir string
---@param entries table[]
---@return any ...
function core.populate(root, dir, entries) end

--- as their system calls.
---@param name any
---@return any ...
function core.sethostname(name) end

--- child: a session of its own without a controlling terminal (a container
--- without a pty).
---@return any ...
function core.setsid() end

--- signal numbers by name (`TERM`, `INT`, ..., `RTMIN`, `RTMAX`).
---@type table
core.signals = nil

--- see `pflask.sleep`.
---@param seconds any
---@return any ...
function core.sleep(seconds) end

--- the other side: see `pflask.start_fifo`.
---@param path any
---@param timeout_ms? any
---@return any ...
function core.start_fifo(path, timeout_ms) end

--- when process `pid` started (clock ticks since boot): with the pid, it
--- names one process for good; `fail` with errno ESRCH when there is none.
---@param pid any
---@return any ...
function core.start_time(pid) end

--- `{type=, mode=, uid=, gid=, size=, dev=, ino=}`; type is `directory`,
--- `file`, `link`, `char`, `block`, `fifo` or `socket`.
---@param path any
---@return any ...
function core.stat(path) end

--- the caller's runtime directory: `/run/pflask` for root,
--- `/run/user/UID/pflask` when the user has `/run/user/UID`, else
--- `/tmp/pflask-UID`; with `create`, made (mode 0700), and `fail` when it
--- is not a private directory of the caller.
---@param create? any
---@return any ...
function core.state_dir(create) end

--- names of the regular files of `dir` ending in `suffix` (not those
--- starting with `.`).
---@param dir any
---@param suffix any
---@return any ...
function core.state_list(dir, suffix) end

--- the contents of regular file `name` of `dir` (at most 64 KiB; a symlink,
--- FIFO or device is refused without opening it for reading).
---@param dir any
---@param name any
---@return any ...
function core.state_read(dir, name) end

--- removes it; a missing one is fine.
---@param dir any
---@param name any
---@return any ...
function core.state_remove(dir, name) end

--- writes file `name` (one path component) of `dir`, mode 0600, never
--- following a symlink: with `exclusive` created new (`fail` with errno
--- EEXIST when it exists: a reservation), else replaced atomically
--- (temporary file and rename).
---@param dir any
---@param name any
---@param data any
---@param exclusive? any
---@return any ...
function core.state_write(dir, name, data, exclusive) end

--- this process's `Supervisor` (created on first use; a new one after a
--- fork).
---@return any ...
function core.supervisor() end

--- child. Sets groups, gid, uid; keeps the parent-death signal armed.
---@param uid any
---@param gid any
---@param groups? any
---@return any ...
function core.switch_user(uid, gid, groups) end

--- a symlink at `path` pointing to `target`.
---@param root any
---@param target any
---@param path any
---@return any ...
function core.symlink(root, target, path) end

--- one line to syslog as `pflask[pid]`.
---@param message any
---@return any ...
function core.syslog(message) end

--- a `Termios` holding fd's settings, fd made raw; `:restore()` (also
--- `__close`, `__gc`) puts them back.
---@param fd any
---@return any ...
function core.tty_raw(fd) end

--- the path of the terminal on `fd`.
---@param fd any
---@return any ...
function core.ttyname(fd) end

--- child. unshare(2) into new namespaces (pflask.cgroups unshares the
--- cgroup namespace once the parent placed the child).
---@param namespaces any
---@return any ...
function core.unshare(namespaces) end

--- pflask's version.
---@type string
core.version = nil

--- parent. Writes `/proc/PID/uid_map` or `gid_map` from `{{inside=,
--- outside=, count=}, ...}`.
---@param pid any
---@param uid any
---@param ranges any
---@return any ...
function core.write_id_map(pid, uid, ranges) end

--- writes `data` to `path` inside `root` (created 0644 if missing,
--- truncated).
---@param root any
---@param path any
---@param data any
---@return any ...
function core.write_in_root(root, path, data) end

--- A pipe as two Lua io files, close-on-exec: a spec's stdin/stdout/stderr.
---@return file*|nil read_end
---@return file*|string write_end, or the message
function core.pipe() end

--- An anonymous file in memory (memfd, close-on-exec), read and write.
---@param name? string
---@return file*|nil
function core.memfd(name) end

--- The fd of an open Lua io file.
---@param file file*
---@return integer
function core.fileno(file) end

--- A seccomp filter table (spec.seccomp, OCI's linux.seccomp converted).
---@class pflask.SeccompRule
---@field action "allow"|"errno"|"kill"|"kill_process"|"trap"|"log"
---@field errno? integer
---@field syscalls string[]
---@field args? {index: integer, op: "eq"|"ne"|"lt"|"le"|"gt"|"ge"|"masked_eq", value: integer, value2?: integer}[]

---@class pflask.Seccomp
---@field default "allow"|"errno"|"kill"|"kill_process"|"trap"|"log"
---@field errno? integer
---@field arch? string[]
---@field rules? pflask.SeccompRule[]

--- Compile a filter with libseccomp into a BPF program (a `struct
--- sock_filter` array as a string) for `exec_plan`'s `seccomp` /
--- `spec.seccomp_bpf`; loads nothing. Never raises on a bad table. The
--- program is the one compiled at build time ("builtin") when the pflask
--- executable carries one for the filter's key, else compiled now.
---@param t pflask.Seccomp
---@param opts? {builtin?: boolean, kill_thread?: boolean} builtin = false: always compile; kill_thread: a foreign architecture's call kills the thread only
---@return string|nil bpf
---@return string|nil source "builtin"|"compiled", or the message on failure
---@return string|integer|nil key the filter's canonical key (opaque bytes), or errno on failure
function core.seccomp_compile(t, opts) end

--- Load a compiled filter into the calling process now (needs
--- no_new_privs or CAP_SYS_ADMIN).
---@param bpf string
---@return true|nil
---@return string|nil message
---@return integer|nil errno
function core.seccomp_load(bpf) end

--- Whether libseccomp knows a system call name (on any architecture).
---@param name string
---@return boolean
function core.seccomp_syscall_known(name) end

--- Whether libseccomp knows an architecture name.
---@param name string
---@return boolean
function core.seccomp_arch_known(name) end

--- Pin pid (0: the caller) to these CPUs.
---@param pid integer
---@param cpus integer[]
---@return true|nil
---@return string|nil message
---@return integer|nil errno
function core.sched_setaffinity(pid, cpus) end

--- setdomainname(2).
---@param name string
---@return true|nil
---@return string|nil message
---@return integer|nil errno
function core.setdomainname(name) end

-- In the pflask executable only (src/main.c), not in core.so:

---@type string[] the bundled recipes' names
core.recipes = nil

---@type table<string, string> a bundled recipe's description (its first line)
core.recipe_descriptions = nil

---@type string where the example recipes are installed
core.examples_dir = nil

--- The start-up is over (pflask.container calls it once the first command
--- runs): the garbage collector goes back to Lua's default pause. Until
--- then it runs at a slower pace (src/main.c), unless the recipe set the
--- collector's mode or parameters itself.
function core.startup_done() end

return core
