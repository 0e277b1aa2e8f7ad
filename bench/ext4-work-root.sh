#!/usr/bin/env bash
# A journaled ext4 for the benchmark's simulated hosts, on a loop device (root only).
#
#   bash bench/ext4-work-root.sh up     # prints the DFTFS_BENCH_WORK_ROOT to use
#   bash bench/ext4-work-root.sh down   # unmounts it and deletes the image
#
# Why: this project's machines have an ext4 root without a journal, where a file created within
# minutes of many deletions costs ~0.8 ms of CPU in the inode allocator (recently_deleted(), only
# checked when there is no journal). A benchmark of many small files then measures that, for
# every system alike, more than the systems. Cluster hosts have a journal (ext4's default); so
# does this file system. It is sparse: its size is what the benchmark writes.
set -euo pipefail
IMG=${DFTFS_BENCH_EXT4_IMAGE:-/var/tmp/dftfs-bench-ext4.img}
MNT=${DFTFS_BENCH_EXT4_MOUNT:-/var/tmp/dftfs-bench-ext4}
case "${1:-}" in
  up)
    if ! mountpoint -q "$MNT"; then
      truncate -s "${DFTFS_BENCH_EXT4_SIZE:-16G}" "$IMG"
      mkfs.ext4 -q -F "$IMG"
      mkdir -p "$MNT"
      mount -o loop "$IMG" "$MNT"
    fi
    echo "$MNT/work"
    ;;
  down)
    if mountpoint -q "$MNT"; then umount "$MNT"; fi
    rmdir "$MNT" 2>/dev/null || true
    rm -f "$IMG"
    ;;
  *)
    echo "usage: bash bench/ext4-work-root.sh up|down" >&2
    exit 2
    ;;
esac
