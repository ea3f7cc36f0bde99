#!/usr/bin/env bash
# make-sample-ext4.sh IMG SIZE_MB [-d DIR]
#
# Creates IMG as a sparse raw disk image of SIZE_MB MiB holding an ext4 file system (whole
# disk, no partition table: the guest mounts /dev/vda directly). No root and no loop mounts:
# mkfs.ext4 writes the file directly; with -d DIR the file system is populated from DIR.
# An existing IMG is overwritten.
set -euo pipefail

usage() { echo "usage: $0 IMG SIZE_MB [-d DIR]" >&2; exit 2; }
[ $# -eq 2 ] || [ $# -eq 4 ] || usage
IMG=$1 SIZE_MB=$2 DIR=
if [ $# -eq 4 ]; then
    [ "$3" = -d ] || usage
    DIR=$4
    [ -d "$DIR" ] || { echo "make-sample-ext4: $DIR is not a directory" >&2; exit 2; }
fi
[[ "$SIZE_MB" =~ ^[0-9]+$ ]] && [ "$SIZE_MB" -ge 8 ] || { echo "make-sample-ext4: SIZE_MB must be an integer >= 8" >&2; exit 2; }

PATH=$PATH:/sbin:/usr/sbin   # mkfs.ext4 lives in /sbin on Debian
mkdir -p "$(dirname "$IMG")"
rm -f "$IMG"
truncate -s "${SIZE_MB}M" "$IMG"     # sparse: only written blocks use space
# -F: IMG is a regular file; -b 4096: 4 KiB blocks like a real VM disk (mke2fs would pick
# 1 KiB for small images); root_owner=0:0: root dir owned by root even when run unprivileged.
mkfs.ext4 -F -q -b 4096 -L shuru-sample -E root_owner=0:0 ${DIR:+-d "$DIR"} "$IMG"
echo "$IMG: ext4, ${SIZE_MB} MiB"
