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
# /var/cache/pflask-test. The Debian mirror: $PFLASK_TEST_MIRROR, else the
# host's own for bookworm (its apt sources), else debootstrap's default.
# PFLASK_TEST_BOOT_INCLUDE adds packages (comma-separated) to a new root:
# give such a root a DIR of its own (a cached root is never rebuilt).
# Needs root and debootstrap (tools/setup-debian.sh installs it).
set -eu
CACHE=${PFLASK_TEST_CACHE:-/var/cache/pflask-test}
DIR=${1:-$CACHE/bookworm-systemd}

# The first URI of the host's apt sources that serves bookworm itself (not
# bookworm-security or -updates), from a network or file archive (not a
# cdrom): one-line "deb [opts] URI bookworm ..." in
# sources.list and sources.list.d/*.list, deb822 stanzas (Types: deb,
# Suites: ... bookworm ..., URIs:) in sources.list.d/*.sources. Empty when
# there is none.
host_mirror() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == "bookworm" && $i ~ /^(https?|ftp|file):/) { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() {
			if (deb && suite && enabled && uri != "") print uri
			deb = 0; suite = 0; enabled = 1; uri = ""
		}
		BEGIN { enabled = 1 }
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
		tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
		tolower($1) == "uris:" && $2 ~ /^(https?|ftp|file):/ { uri = $2 }
		tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
		END { flush() }' "$f"
	done
}
MIRROR=${PFLASK_TEST_MIRROR:-$(host_mirror | head -n 1)}

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
	# No mirror known: debootstrap's own default (no URL argument).
	if ! debootstrap --variant=minbase --include=systemd,dbus,systemd-sysv${PFLASK_TEST_BOOT_INCLUDE:+,$PFLASK_TEST_BOOT_INCLUDE} \
		bookworm "$DIR.new" ${MIRROR:+"$MIRROR"} >"$DIR.log" 2>&1; then
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
