#!/usr/bin/env bash
# Prepares what test/e2e/qemu/usb-enforcement.test.ts boots: QEMU, a Debian 6.1 kernel and an
# initramfs (busybox, the USB/SCSI/HID/9p modules, guest-init.sh as /init).
#
# Idempotent: everything is cached in $MAMORI_QEMU_CACHE (default /tmp/mamori-qemu) and rebuilt
# only when missing or when guest-init.sh / this script change. Missing Debian packages are
# installed with apt-get (root only). Pin the kernel package with MAMORI_QEMU_KERNEL_PKG.
# Prints the cache directory as its last line; exits non-zero with a one-line reason otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${MAMORI_QEMU_CACHE:-/tmp/mamori-qemu}
mkdir -p "$cache"

die() {
  echo "prepare.sh: $*" >&2
  exit 1
}

# ---- Debian packages ------------------------------------------------------------------------
apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
}

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x cpio >/dev/null || need+=(busybox-static)
command -v udevadm >/dev/null 2>&1 || need+=(udev)
command -v depmod >/dev/null 2>&1 && command -v modprobe >/dev/null 2>&1 || need+=(kmod)
command -v blockdev >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root, or apt-get install -y --no-install-recommends ${need[*]}"
  echo "prepare.sh: installing ${need[*]}" >&2
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 is still missing after installing qemu-system-x86"
devices=$(qemu-system-x86_64 -device help 2>&1 || true)
for dev in usb-storage usb-mtp usb-ccid usb-kbd qemu-xhci; do
  case "$devices" in *"\"$dev\""*) ;; *) die "this QEMU has no $dev device" ;; esac
done

# ---- Kernel ---------------------------------------------------------------------------------
newest_kernel_pkg() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | awk '{print $1}' | sort -V | tail -n 1
}

if [ ! -f "$cache/vmlinuz" ] || [ ! -f "$cache/kernel.version" ]; then
  pkg=${MAMORI_QEMU_KERNEL_PKG:-$(newest_kernel_pkg)}
  if [ -z "$pkg" ]; then
    [ "$(id -u)" = 0 ] && apt_update
    pkg=$(newest_kernel_pkg)
  fi
  [ -n "$pkg" ] || die "no linux-image-6.1.0-*-amd64 package in the apt lists (run apt-get update; is Debian 12's archive reachable?)"
  echo "prepare.sh: downloading $pkg" >&2
  rm -rf "$cache/dl" "$cache/kernel"
  mkdir -p "$cache/dl"
  # apt-get download warns when _apt cannot write the directory; the download still succeeds.
  if ! (cd "$cache/dl" && apt-get download "$pkg" >/dev/null 2>&1); then
    # Old package lists can name a kernel the archive no longer has: refresh them once.
    [ "$(id -u)" = 0 ] || die "apt-get download $pkg failed (run apt-get update as root?)"
    apt_update
    pkg=${MAMORI_QEMU_KERNEL_PKG:-$(newest_kernel_pkg)}
    (cd "$cache/dl" && apt-get download "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
  fi
  deb=$(ls "$cache"/dl/*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
  dpkg-deb -x "$deb" "$cache/kernel" || die "dpkg-deb -x $deb failed"
  version=$(ls "$cache/kernel/lib/modules" | head -n 1)
  [ -n "$version" ] && [ -f "$cache/kernel/boot/vmlinuz-$version" ] || die "$deb holds no kernel image"
  depmod -b "$cache/kernel" "$version" || die "depmod failed for $version"
  cp "$cache/kernel/boot/vmlinuz-$version" "$cache/vmlinuz"
  rm -rf "$cache/dl"
  echo "$version" > "$cache/kernel.version"
fi
version=$(cat "$cache/kernel.version")
moddir="$cache/kernel/lib/modules/$version"
[ -d "$moddir" ] || die "$moddir is missing; delete $cache and run again"

# ---- Initramfs ------------------------------------------------------------------------------
# Modules to load, with their dependencies first (modprobe --show-depends gives that order):
# the xHCI controller, usb-storage and the SCSI disk driver, HID for a keyboard, virtio + 9p to
# mount the host's root read-only. usb-ccid and usb-mtp need no kernel driver (class 0b and 06
# interfaces stay driverless, which is what a real reader without pcscd / a phone look like).
MODULES="xhci-pci usb-storage sd_mod usbhid hid-generic virtio_pci 9pnet_virtio 9p"

stamp=$( (cat "$here/guest-init.sh" "$0"; echo "$version $MODULES") | sha256sum | cut -c1-16)
if [ ! -f "$cache/initrd.gz" ] || [ "$(cat "$cache/initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "prepare.sh: building initramfs for $version" >&2
  stage="$cache/initramfs"
  rm -rf "$stage"
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,newroot,mods}
  cp /bin/busybox "$stage/bin/busybox"
  cp "$here/guest-init.sh" "$stage/init"
  chmod 755 "$stage/init"
  # The kernel opens /dev/console for /init before anything is mounted.
  mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
  : > "$stage/modules.list"
  for m in $MODULES; do
    modprobe -d "$cache/kernel" -S "$version" --show-depends "$m" \
      || die "module $m not found for $version"
  done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' | while read -r ko; do
    name=$(basename "$ko")
    cp "$ko" "$stage/mods/$name"
    echo "$name" >> "$stage/modules.list"
  done
  [ -s "$stage/modules.list" ] || die "no modules were collected"
  (cd "$stage" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$cache/initrd.gz.tmp") \
    || die "packing the initramfs failed"
  mv "$cache/initrd.gz.tmp" "$cache/initrd.gz"
  echo "$stamp" > "$cache/initrd.stamp"
fi

echo "prepare.sh: kernel $version, $(wc -l < "$cache/initramfs/modules.list" 2>/dev/null || echo '?') modules" >&2
echo "$cache"
