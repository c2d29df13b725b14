#!/usr/bin/env bash
# Builds the libvirt tier's test guest: a small bootable qcow2 whose /init reads
# the cloud-init NoCloud seed and prints one serial line,
#   vmplane-guest ready instance-id=<id> keys=<comment>,<comment>
# then stays up (and powers off on the ACPI power button, so a graceful stop works).
#
# Made from Debian packages without root-only mounts or loop devices: the kernel
# that linux-image-cloud-amd64 depends on, busybox-static as the initramfs, and
# syslinux on a FAT image filled with mtools. Cached: a second run only prints
# the path. The LAST line printed is the image's path.
#
# Needs: apt-get (download only), dpkg-deb, depmod (kmod), cpio, gzip,
# mkfs.fat (dosfstools), syslinux + syslinux-common, mtools, qemu-img.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cache_root="${VMPLANE_TEST_GUEST_DIR:-$repo_root/data/test-guest}"
# The cache key covers this script, so a change to the guest rebuilds it.
script_hash="$(sha256sum "$0" | cut -c1-12)"
out_dir="$cache_root/$script_hash"
image="$out_dir/vmplane-test-guest.qcow2"

if [[ -s "$image" ]]; then
  echo "test guest: cached" >&2
  echo "$image"
  exit 0
fi

for tool in apt-get dpkg-deb depmod cpio gzip mkfs.fat syslinux mcopy qemu-img; do
  command -v "$tool" >/dev/null || { echo "test guest: '$tool' is missing (see docs/libvirt.md for the packages)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

kernel_pkg="$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)"
[[ -n "$kernel_pkg" ]] || { echo "test guest: cannot resolve the kernel package of linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
echo "test guest: downloading $kernel_pkg and busybox-static" >&2
apt-get -q -o APT::Sandbox::User=root download "$kernel_pkg" busybox-static >&2

mkdir kernel busybox
dpkg-deb -x "$kernel_pkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
kver="${kernel_pkg#linux-image-}"
vmlinuz="kernel/boot/vmlinuz-$kver"
[[ -f "$vmlinuz" ]] || { echo "test guest: $vmlinuz not found in $kernel_pkg" >&2; exit 1; }

# The package ships no modules.dep; depmod on the extracted tree needs no root.
depmod -b "$work/kernel" "$kver"

root="$work/initramfs"
mkdir -p "$root"/{bin,dev,proc,sys,mnt/seed,tmp,lib/modules}
cp busybox/bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  # A link named busybox over the binary itself makes the kernel fail to run /init (ELOOP).
  [[ "$applet" == busybox ]] && continue
  ln -sf busybox "$root/bin/$applet"
done

modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk scsi_common scsi_mod libata ata_piix cdrom sr_mod isofs button evdev"
moddir="lib/modules/$kver"
mkdir -p "$root/$moddir"
for name in $modules; do
  path="$(sed -n "s|^\(kernel/[^:]*/$name\.ko[^:]*\):.*|\1|p" "kernel/$moddir/modules.dep" | head -n1)"
  if [[ -z "$path" ]]; then
    echo "test guest: module $name is built in or missing; skipping" >&2
    continue
  fi
  mkdir -p "$root/$moddir/$(dirname "$path")"
  cp "kernel/$moddir/$path" "$root/$moddir/$path"
done
cp kernel/"$moddir"/modules.{order,builtin,builtin.modinfo} "$root/$moddir/" 2>/dev/null || true
depmod -b "$root" "$kver"

cat > "$root/init" <<EOF
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Kernel messages would interleave with the marker line on ttyS0.
echo 1 > /proc/sys/kernel/printk
for m in $modules; do modprobe "\$m" 2>/dev/null; done

# Power off on the ACPI power button (virsh shutdown): any event from that input device will do.
for dev in /sys/class/input/event*; do
  if [ "\$(cat "\$dev/device/name" 2>/dev/null)" = "Power Button" ]; then
    ( head -c 1 "/dev/input/\${dev##*/}" >/dev/null; sync; poweroff -f ) &
  fi
done

seed=""
i=0
while [ \$i -lt 100 ]; do
  seed="\$(findfs LABEL=cidata 2>/dev/null)" && [ -n "\$seed" ] && break
  i=\$((i + 1))
  sleep 0.1
done
id="none"
keys=""
if [ -n "\$seed" ] && mount -t iso9660 -o ro "\$seed" /mnt/seed; then
  id="\$(sed -n 's/^instance-id:[ "]*\([^ "]*\).*/\1/p' /mnt/seed/meta-data | head -n1)"
  # Key lines, wherever they sit in the user data (plain cloud-config or a MIME part): the comment is what follows the key.
  keys="\$(grep -E '^[ ]*-[ ]+"?(ssh-|ecdsa-|sk-)' /mnt/seed/user-data \
    | sed -e 's/^[ ]*-[ ]*"\{0,1\}//' -e 's/"[ ]*\$//' \
    | awk '{ c = ""; for (f = 3; f <= NF; f++) c = c (f > 3 ? " " : "") \$f; print c }' \
    | paste -s -d, -)"
fi
echo "vmplane-guest ready instance-id=\$id keys=\$keys" > /dev/ttyS0
while true; do sleep 3600; done
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > initrd.gz

cat > syslinux.cfg <<'EOF'
SERIAL 0 115200
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet
EOF

mkfs.fat -C disk.img 65536 >/dev/null
syslinux --install disk.img
mcopy -i disk.img "$vmlinuz" ::vmlinuz
mcopy -i disk.img initrd.gz ::initrd.gz
mcopy -i disk.img syslinux.cfg ::syslinux.cfg

mkdir -p "$out_dir"
qemu-img convert -q -f raw -O qcow2 disk.img "$image.partial"
mv "$image.partial" "$image"
echo "test guest: built $(du -h "$image" | cut -f1) from $kernel_pkg" >&2
echo "$image"
