"""Growing a running node's root filesystem when its disk grew (docs/lifecycle.md).

bpg grows the disk in place (resize API, no reboot: disk hotplug is on by default; bpg v0.111.1
proxmoxtf/resource/vm/vm.go:7277-7303), and the guest kernel sees the larger virtio disk at once, but
the partition and the filesystem stay as they were until cloud-init's growpart runs at the next
boot. This script, run inside the guest through the QEMU guest agent, grows the root partition
(growpart, from cloud-guest-utils, which the Ubuntu cloud images carry) and then the filesystem,
online. It is idempotent: a partition that already fills the disk is left alone.
"""

from __future__ import annotations


def grow_root_script(node_name: str, disk_gb: int) -> str:
    """Inside the guest, as root. `NETSTAB_MOUNT` (default /) names the filesystem to grow, for tests."""
    return f"""#!/bin/sh
# netstab grow the root filesystem of {node_name} to its {disk_gb} GB disk
set -u
mount_point="${{NETSTAB_MOUNT:-/}}"
source=$(findmnt -n -o SOURCE -M "$mount_point")
fstype=$(findmnt -n -o FSTYPE -M "$mount_point")
name=$(basename "$(readlink -f "$source")")
if [ ! -f "/sys/class/block/$name/partition" ]; then
  echo "netstab: {node_name}'s root filesystem is on $source, not a disk partition: grow it by hand" >&2
  exit 1
fi
part=$(cat "/sys/class/block/$name/partition")
disk=/dev/$(basename "$(readlink -f "/sys/class/block/$name/..")")
out=$(growpart "$disk" "$part" 2>&1)
case $? in
  0) echo "netstab: {node_name}: $out" ;;
  1) case "$out" in
       *NOCHANGE*) echo "netstab: {node_name}: partition $part of $disk already fills the disk" ;;
       *) echo "netstab: growpart $disk $part failed: $out" >&2; exit 1 ;;
     esac ;;
  *) echo "netstab: growpart $disk $part failed: $out" >&2; exit 1 ;;
esac
case "$fstype" in
  ext2|ext3|ext4) resize2fs "$source" >/dev/null 2>&1 || {{ echo "netstab: resize2fs $source failed" >&2; resize2fs "$source" >&2; exit 1; }} ;;
  xfs) xfs_growfs "$mount_point" >/dev/null ;;
  btrfs) btrfs filesystem resize max "$mount_point" >/dev/null ;;
  *) echo "netstab: {node_name}: cannot grow a $fstype filesystem in place" >&2; exit 1 ;;
esac
echo "netstab: {node_name}: the root filesystem on $source is $(df -B1G --output=size "$mount_point" | tail -n 1 | tr -d ' ') GB"
"""
