#!/bin/sh
# The root filesystem the boot specs and tests/bench/boot start: a minimal
# Debian 12 with systemd, cached between runs, built with debootstrap when
# missing. Prints its path. This script is the only thing that writes into
# it: tests boot it with --ephemeral and talk to it through a host directory
# bound on /pftest (see pftest-up below).
#
#   tests/boot_rootfs.sh [DIR]
#
# DIR defaults to $PFLASK_TEST_CACHE/bookworm-systemd, PFLASK_TEST_CACHE to
# /var/cache/pflask-test; PFLASK_TEST_MIRROR picks the Debian mirror;
# PFLASK_TEST_BOOT_INCLUDE adds packages (comma-separated) to a new root:
# give such a root a DIR of its own (a cached root is never rebuilt).
# Needs root and debootstrap (tools/setup-debian.sh installs it).
set -eu
CACHE=${PFLASK_TEST_CACHE:-/var/cache/pflask-test}
DIR=${1:-$CACHE/bookworm-systemd}
MIRROR=${PFLASK_TEST_MIRROR:-http://deb.debian.org/debian}

die() { echo "boot_rootfs: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
mkdir -p "$(dirname "$DIR")"

# One builder at a time (specs and the bench may start together).
exec 9>"$DIR.lock"
flock 9

if [ ! -x "$DIR/lib/systemd/systemd" ]; then
	command -v debootstrap >/dev/null || die "debootstrap is missing (tools/setup-debian.sh installs it)"
	# Built aside and renamed, so that an interrupted build is never taken
	# for a root filesystem.
	rm -rf "$DIR.new"
	echo "boot_rootfs: debootstrapping Debian 12 into $DIR (about 90 s)" >&2
	if ! debootstrap --variant=minbase --include=systemd,dbus,systemd-sysv${PFLASK_TEST_BOOT_INCLUDE:+,$PFLASK_TEST_BOOT_INCLUDE} \
		bookworm "$DIR.new" "$MIRROR" >"$DIR.log" 2>&1; then
		tail -n 20 "$DIR.log" >&2
		rm -rf "$DIR.new"
		die "debootstrap failed (full log: $DIR.log)"
	fi
	apt_lists="$DIR.new/var/lib/apt/lists"
	find "$apt_lists" -maxdepth 1 -type f ! -name lock -delete 2>/dev/null || true
	rm -rf "$DIR.new/var/cache/apt/archives/"*.deb
	# A broken leftover (no init) is moved away, never booted.
	[ -e "$DIR" ] && rm -rf "$DIR"
	mv "$DIR.new" "$DIR"
fi

# The test unit. Type=simple: a oneshot ordered after multi-user.target
# would keep the boot job open and `is-system-running --wait` would wait for
# itself forever.
install_file() { # MODE PATH, content on stdin; written only when it differs
	tmp="$DIR/$2.pftest-new"
	mkdir -p "$(dirname "$tmp")"
	cat >"$tmp"
	chmod "$1" "$tmp"
	if cmp -s "$tmp" "$DIR/$2"; then rm -f "$tmp"; else mv "$tmp" "$DIR/$2"; fi
}

install_file 0755 /usr/local/lib/pftest/up <<'EOF'
#!/bin/sh
# pftest-up.service: once the boot is done, record what the system thinks of
# itself, run the test's probe, then power off (or run the command in
# /pftest/action: `poweroff`, `systemctl reboot`, ..., or `stay` up).
# The test binds a host directory on /pftest: its way in (probe, action) and
# out (state, failed, probe.out, ready). Without one, results go to /run.
out=/pftest
[ -w "$out/." ] || { out=/run/pftest; mkdir -p "$out"; }
systemctl is-system-running --wait >"$out/state" 2>&1
systemctl --failed --no-legend --plain >"$out/failed" 2>&1
[ -f "$out/probe" ] && sh "$out/probe" >"$out/probe.out" 2>&1
action="systemctl poweroff"
[ -f "$out/action" ] && action=$(cat "$out/action")
: >"$out/ready"
# "stay": the test stops the container from outside.
[ "$action" = stay ] || exec $action
EOF

install_file 0644 /etc/systemd/system/pftest-up.service <<'EOF'
[Unit]
Description=pflask test: record the state once the system is up, then power off
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/lib/pftest/up

[Install]
WantedBy=multi-user.target
EOF

mkdir -p "$DIR/etc/systemd/system/multi-user.target.wants" "$DIR/pftest"
ln -sfn /etc/systemd/system/pftest-up.service "$DIR/etc/systemd/system/multi-user.target.wants/pftest-up.service"
# Left by hand-made boots of an earlier unit.
rm -f "$DIR/pftest-state"
echo "$DIR"
