#!/usr/bin/env bash
# Prepares the software-emulated KVM lane (see scripts/lane/README.md): a Debian kernel and an
# initramfs that loads kvm_amd and the virtio-9p modules. Nothing is installed into the host's
# /boot or /lib/modules: the kernel package is downloaded with `apt-get download` and only
# vmlinuz and the needed modules are extracted into the cache.
#
# usage: scripts/lane/setup.sh          (idempotent; prints the cache directory)
# env:   KVMBOX_LANE_CACHE  cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/kvmbox/lane)
# Needs: qemu-system-x86_64, a static busybox (busybox-static), dpkg-deb, apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KVMBOX_LANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmbox/lane}
mkdir -p "$cache"
cd "$cache"

# The modules the VM loads, by name; their dependencies come from the package's modules.dep.
WANT="kvm_amd 9p 9pnet_virtio virtio_pci"

if [ ! -s vmlinuz ] || [ ! -s modules.list ]; then
  mkdir -p debs
  if ! ls debs/linux-image-*.deb >/dev/null 2>&1; then
    # linux-image-amd64 is a metapackage; its first linux-image-* dependency is the real kernel.
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$pkg" ]; then
      [ "$(id -u)" = 0 ] || { echo "lane: apt has no package list for linux-image-amd64; run: sudo apt-get update" >&2; exit 1; }
      apt-get update -qq
      pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    fi
    (cd debs && apt-get download -q "$pkg" >/dev/null 2>&1) || {
      [ "$(id -u)" = 0 ] && apt-get update -qq && (cd debs && apt-get download -q "$pkg" >/dev/null 2>&1)
    } || { echo "lane: could not download the Debian kernel package $pkg (apt-get download)" >&2; exit 1; }
  fi
  rm -rf kroot && mkdir kroot
  deb=$(ls debs/linux-image-*.deb | head -1)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C kroot --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/*'
  moddir=$(echo kroot/lib/modules/*)
  # modules.dep is made by depmod at install time, so read each module's own "depends=" field
  # (its .modinfo section) and order WANT and their dependencies, dependencies first.
  # Newer kernels compress their modules: decompress them in place first (a few seconds).
  find "$moddir/kernel" -name '*.ko.xz' -exec xz -d {} + ; find "$moddir/kernel" -name '*.ko.zst' -exec zstd -q --rm -d {} +
  find "$moddir/kernel" -name '*.ko.gz' -exec gzip -d {} +
  (cd "$moddir" && grep -a -o -r 'depends=[A-Za-z0-9_,-]*' kernel --include='*.ko') | awk -F: -v want="$WANT" '
    { n = $1; sub(".*/", "", n); sub("\\.ko$", "", n); gsub("-", "_", n); path[n] = $1; d = $2; sub("depends=", "", d); dep[n] = d }
    function visit(n,   d, k, i) { if (n in seen) return; seen[n] = 1
      k = split(dep[n], d, ","); for (i = 1; i <= k; i++) { gsub("-", "_", d[i]); visit(d[i]) } print path[n] }
    END { k = split(want, w, " "); for (i = 1; i <= k; i++) { if (!(w[i] in path)) { print "lane: no module " w[i] > "/dev/stderr"; exit 1 } visit(w[i]) } }
  ' > modules.list.tmp
  rm -rf modules && mkdir modules
  while read -r m; do cp "$moddir/$m" modules/; basename "$m"; done < modules.list.tmp > modules.list
  rm -f modules.list.tmp
  cp kroot/boot/vmlinuz-* vmlinuz
  rm -rf kroot
fi

# The initramfs: a static busybox, the modules and our init. Rebuilt when init changes.
# Debian's busybox-static installs /bin/busybox; the initramfs has no libc, so it must be static.
busybox=/bin/busybox
[ -x $busybox ] && ! ldd $busybox >/dev/null 2>&1 || { echo "lane: $busybox must be a static busybox: apt-get install busybox-static" >&2; exit 1; }
sum=$(cat "$here/init" modules.list | md5sum | cut -c1-12)
if [ ! -s "base-$sum.cpio.gz" ]; then
  rm -f base-*.cpio.gz
  r=$(mktemp -d); trap 'rm -rf "$r"' EXIT
  mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/mnt/host" "$r/mnt/out" "$r/lib/modules"
  cp "$busybox" "$r/bin/busybox"
  cp modules/*.ko "$r/lib/modules/"
  cp modules.list "$r/lib/modules/order"
  cp "$here/init" "$r/init"; chmod 755 "$r/init"
  (cd "$r" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "base-$sum.cpio.gz"
fi
ln -sf "base-$sum.cpio.gz" base.cpio.gz
echo "$cache"
