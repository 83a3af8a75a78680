#!/usr/bin/env bash
# docker/mkbase.sh - makes the local Debian 12 base image the Dockerfile
# starts FROM (shardwire-base:bookworm) without any image registry:
# debootstrap --variant=minbase of bookworm from the Debian mirror this host's
# apt uses, then `docker import`. Does nothing when the image exists
# (`--force` rebuilds it). Takes about 2 minutes.
#
# Environment: SW_DEBIAN_MIRROR overrides the mirror (default: the first
# Debian URI in /etc/apt/sources.list.d/* or /etc/apt/sources.list).
set -euo pipefail
IMAGE=shardwire-base:bookworm

die() { echo "mkbase: $*" >&2; exit 1; }

if [ "${1:-}" != --force ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "mkbase: $IMAGE exists"
    exit 0
fi
command -v debootstrap >/dev/null || die "no debootstrap (install Debian's debootstrap: tools/deps.sh)"
[ "$(id -u)" = 0 ] || die "debootstrap needs root"

mirror=${SW_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    # deb822 .sources files ("URIs: ...") and one-line .list files ("deb URI suite ...").
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
             awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' |
             grep -v -- '-security' | grep '/debian/\{0,1\}$' | head -n 1 || true)
fi
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' |
             grep -v -- '-security' | grep '/debian/\{0,1\}$' | head -n 1 || true)
fi
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; set SW_DEBIAN_MIRROR"

rootfs=$(mktemp -d /var/tmp/shardwire-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "mkbase: debootstrap bookworm from $mirror (log $rootfs.log)"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    die "debootstrap failed (full log: $rootfs.log)"
fi
# Keep images small: no apt package lists or caches in the base layer.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
rm -f "$rootfs.log"
echo "mkbase: $IMAGE built"
