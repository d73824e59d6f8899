#!/bin/sh
# Prepare a Debian/Ubuntu CI runner for the network-share tests
# (tests/netshare.py: sshfs mounts of a loopback sshd, see ENGINEERING.md §4).
# Run as root.  Under CI=true the tests FAIL rather than skip if this is missing.
set -eu

missing=""
command -v sshfs >/dev/null 2>&1 || missing="$missing sshfs"
{ command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; } || missing="$missing openssh-server"
{ command -v fusermount3 >/dev/null 2>&1 || command -v fusermount >/dev/null 2>&1; } || missing="$missing fuse3"
{ command -v smbd >/dev/null 2>&1 || [ -x /usr/sbin/smbd ]; } || missing="$missing samba"
command -v smbnetfs >/dev/null 2>&1 || missing="$missing smbnetfs"
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi

# Privilege-separation directory sshd insists on when started as root.
mkdir -p /run/sshd
chmod 0755 /run/sshd

if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
fi
if [ ! -e /dev/fuse ]; then
    echo "netshare-setup: no /dev/fuse (containers need --device /dev/fuse --cap-add SYS_ADMIN)" >&2
    exit 1
fi

# The tests start their own sshd on a free 127.0.0.1 port with their own keys;
# nothing here touches ~/.ssh or the system sshd. Whether a mount really works is
# checked by the tests themselves: under CI=true, require_netshare() fails with the
# reason (tests/netshare.py), so this script needs no Python packages and can run
# before `pip install`.
echo "netshare-setup: ok"
