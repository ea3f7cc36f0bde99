#!/usr/bin/env bash
# build-guest.sh OUTDIR
#
# Builds the boot artifacts of the ShuruStore test guest into OUTDIR:
#   OUTDIR/kernel             the kernel qemu boots: an unpacked ELF vmlinux (PVH entry, boots
#                             faster under TCG) or, if unpacking fails, a copy of the bzImage
#   OUTDIR/initramfs.cpio.gz  busybox-static + ext4/virtio modules + /init (tests/guest/init.sh)
#   OUTDIR/build.env          KERNEL_VERSION / KERNEL / INITRD / STAMP, sourced by run-guest.sh
#   OUTDIR/stamp              fingerprint of the inputs; when it matches, the build is skipped
#
# Inputs: the newest /boot/vmlinuz-* that has /lib/modules/<ver>/modules.dep (override with
# SHURU_KERNEL_VERSION=<ver>), /bin/busybox (must be static: busybox-static) and init.sh.
# Needs no root: the cpio archive is written with --owner=0:0 and device nodes come from
# devtmpfs at boot. Set SHURU_FORCE_BUILD=1 to rebuild unconditionally.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
OUTDIR=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT_SRC=$HERE/init.sh
BUSYBOX=${SHURU_BUSYBOX:-/bin/busybox}

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

# Modules the guest needs: virtio PCI transport + virtio block disk + ext4 and the crc32c
# implementation ext4/jbd2 ask the crypto API for (there is no modprobe in the guest to
# autoload it). Their dependencies are resolved from modules.dep below. Names are matched with
# '-' and '_' treated alike; modules missing from this kernel or built in are skipped.
ROOT_MODULES=(virtio_pci virtio_blk crc32c_generic libcrc32c ext4)

# --- pick the kernel --------------------------------------------------------------------
pick_kernel() {
    if [ -n "${SHURU_KERNEL_VERSION:-}" ]; then
        echo "$SHURU_KERNEL_VERSION"; return
    fi
    local v best=
    # sort -V so that the newest version wins
    for v in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
        [ -f "/lib/modules/$v/modules.dep" ] && best=$v
    done
    [ -n "$best" ] || die "no /boot/vmlinuz-* with matching /lib/modules/<ver>/modules.dep (apt-get install linux-image-amd64)"
    echo "$best"
}
KVER=$(pick_kernel)
VMLINUZ=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -f "$VMLINUZ" ] || die "$VMLINUZ not found"
[ -f "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep not found"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
[ -f "$INIT_SRC" ] || die "$INIT_SRC not found"
# A dynamically linked busybox would not run in the initramfs (no libc there).
if command -v file >/dev/null && file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
    die "$BUSYBOX is dynamically linked; install busybox-static"
fi

# --- up to date? ------------------------------------------------------------------------
# Serialize concurrent builds into the same OUTDIR (parallel run-guest.sh calls): the second
# caller waits for the first and then finds the artifacts up to date.
mkdir -p "$OUTDIR"
exec 9> "$OUTDIR/.lock"
flock 9
# The stamp covers everything the artifacts are made from: this script, init.sh, busybox,
# the kernel image and modules.dep (changes with every kernel package update).
STAMP=$(cat "$0" "$INIT_SRC" "$BUSYBOX" "$VMLINUZ" "$MODDIR/modules.dep" | sha256sum | cut -d' ' -f1)
STAMP="$KVER $STAMP"
if [ "${SHURU_FORCE_BUILD:-0}" != 1 ] && [ -f "$OUTDIR/stamp" ] \
   && [ "$(cat "$OUTDIR/stamp")" = "$STAMP" ] \
   && [ -s "$OUTDIR/kernel" ] && [ -s "$OUTDIR/initramfs.cpio.gz" ] && [ -f "$OUTDIR/build.env" ]; then
    log "artifacts in $OUTDIR are up to date (kernel $KVER), skipping"
    exit 0
fi

OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
rm -f "$OUTDIR/stamp"   # an interrupted build must not look up to date

# --- kernel: try to unpack vmlinux from the bzImage (extract-vmlinux logic) ---------------
# Scan for the magic of each compressor, decompress from there and keep the first result that
# is an ELF file. qemu boots an ELF vmlinux through its PVH note (CONFIG_PVH=y on Debian).
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
try_unpack() { # $1 = magic as grep -P pattern, $2.. = decompress command reading stdin
    local magic=$1; shift
    local off
    for off in $(LC_ALL=C grep -aboP "$magic" "$VMLINUZ" 2>/dev/null | cut -d: -f1 | head -5); do
        tail -c +$((off + 1)) "$VMLINUZ" | "$@" > "$WORK/vmlinux" 2>/dev/null || true
        if is_elf "$WORK/vmlinux"; then return 0; fi
    done
    return 1
}
KERNEL_KIND=bzImage
if [ "${SHURU_USE_BZIMAGE:-0}" != 1 ] && grep -q '^CONFIG_PVH=y' "/boot/config-$KVER" 2>/dev/null; then
    if   try_unpack '\xFD7zXZ\x00' xz -dc --single-stream; then KERNEL_KIND=vmlinux
    elif try_unpack '\x28\xB5\x2F\xFD' zstd -dc; then KERNEL_KIND=vmlinux
    elif try_unpack '\x1F\x8B\x08' gzip -dc; then KERNEL_KIND=vmlinux
    fi
fi
if [ "$KERNEL_KIND" = vmlinux ]; then
    log "unpacked ELF vmlinux from $VMLINUZ ($(du -h "$WORK/vmlinux" | cut -f1))"
    mv "$WORK/vmlinux" "$OUTDIR/kernel.new"
else
    log "using the bzImage $VMLINUZ as is"
    cp "$VMLINUZ" "$OUTDIR/kernel.new"
fi

# --- resolve the module list from modules.dep (dependencies first) ----------------------
# modules.dep lines: "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko ..."
declare -A DEP_OF=() PATH_OF=() SEEN=()
while IFS= read -r line; do
    mod=${line%%:*}
    name=$(basename "$mod"); name=${name%%.ko*}; name=${name//-/_}
    PATH_OF[$name]=$mod
    DEP_OF[$name]=${line#*:}
done < "$MODDIR/modules.dep"
ORDER=()
visit() { # depth-first post-order = dependencies before dependents
    local name=$1 d dn
    [ -z "${SEEN[$name]:-}" ] || return 0
    SEEN[$name]=1
    for d in ${DEP_OF[$name]}; do
        dn=$(basename "$d"); dn=${dn%%.ko*}; dn=${dn//-/_}
        visit "$dn"
    done
    ORDER+=("${PATH_OF[$name]}")
}
for m in "${ROOT_MODULES[@]}"; do
    m=${m//-/_}
    if [ -n "${PATH_OF[$m]:-}" ]; then
        visit "$m"
    elif grep -qE "/${m}\.ko" "$MODDIR/modules.builtin" 2>/dev/null \
         || grep -qE "/${m//_/-}\.ko" "$MODDIR/modules.builtin" 2>/dev/null; then
        log "module $m is built in"
    else
        log "module $m not found for $KVER, skipped"
    fi
done

# --- initramfs tree ----------------------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt/vda,lib/modules}
cp "$BUSYBOX" "$ROOT/bin/busybox"
# One symlink per applet, at the path busybox reports (bin/, sbin/, usr/bin/, usr/sbin/).
while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    [ -e "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done < <("$BUSYBOX" --list-full)
[ -e "$ROOT/bin/sh" ] || ln -s busybox "$ROOT/bin/sh"

# Copy the modules, decompressed (busybox insmod may not read .ko.xz/.ko.zst/.ko.gz).
: > "$ROOT/etc/modules.order"
for mod in "${ORDER[@]}"; do
    src=$MODDIR/$mod
    base=$(basename "$mod"); name=${base%%.ko*}
    dst=lib/modules/$name.ko
    case "$mod" in
        *.ko)     cp "$src" "$ROOT/$dst" ;;
        *.ko.xz)  xz -dc "$src" > "$ROOT/$dst" ;;
        *.ko.zst) zstd -qdc "$src" > "$ROOT/$dst" ;;
        *.ko.gz)  gzip -dc "$src" > "$ROOT/$dst" ;;
        *) die "unknown module format: $mod" ;;
    esac
    echo "$dst" >> "$ROOT/etc/modules.order"
done
log "modules (load order): $(sed 's|.*/||; s|\.ko$||' "$ROOT/etc/modules.order" | tr '\n' ' ')"

install -m 0755 "$INIT_SRC" "$ROOT/init"

# cpio newc, owned by root, gzip. Sorted for a reproducible archive.
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio --quiet -o -H newc --owner=0:0 --reproducible) | gzip -9n > "$OUTDIR/initramfs.cpio.gz.new"

# --- publish atomically --------------------------------------------------------------------
mv "$OUTDIR/kernel.new" "$OUTDIR/kernel"
mv "$OUTDIR/initramfs.cpio.gz.new" "$OUTDIR/initramfs.cpio.gz"
cat > "$OUTDIR/build.env" <<EOF
# written by build-guest.sh
KERNEL_VERSION=$KVER
KERNEL_KIND=$KERNEL_KIND
KERNEL=$OUTDIR/kernel
INITRD=$OUTDIR/initramfs.cpio.gz
EOF
echo "$STAMP" > "$OUTDIR/stamp"
log "built $OUTDIR (kernel $KVER as $KERNEL_KIND, initramfs $(du -h "$OUTDIR/initramfs.cpio.gz" | cut -f1))"
