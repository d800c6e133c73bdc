#!/bin/sh
# Builds the stack's image without a registry: a busybox-static root filesystem imported into the local podman
# storage (run it on each host, inside that host's storage). Usage: build.sh [tag]   (default localhost/app:1)
set -eu
tag=${1:-localhost/app:1}
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox || echo /bin/busybox)
# The image has no libc: only a static busybox runs in it (Debian: busybox-static).
if ldd "$busybox" >/dev/null 2>&1; then
  echo "build.sh: $busybox is not statically linked; install busybox-static" >&2
  exit 1
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/app" "$rootfs/www" "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh httpd wget sha256sum cut printf mkdir kill; do ln -s busybox "$rootfs/bin/$applet"; done
cp "$here/entrypoint.sh" "$rootfs/app/entrypoint.sh"
chmod 755 "$rootfs/app/entrypoint.sh"
tar -C "$rootfs" -c . | podman import --change 'CMD ["/app/entrypoint.sh"]' - "$tag" >/dev/null
echo "built $tag"
