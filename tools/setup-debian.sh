#!/bin/sh
# Install what pflask needs to build, test and benchmark on Debian 12.
# Run as root (CI does); idempotent.
set -eu
export DEBIAN_FRONTEND=noninteractive
packages="
  build-essential cmake pkg-config
  lua5.4 liblua5.4-dev libcap-dev libseccomp-dev libnl-3-dev libnl-route-3-dev libmount-dev
  scdoc lua-busted
  util-linux bsdutils procps iproute2 uidmap passwd busybox-static
  bubblewrap tmux python3 perl strace
  debootstrap systemd-container git
  libsystemd-dev bash-completion zsh
  lua-cjson runc crun podman containerd
"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
