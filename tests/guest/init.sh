#!/bin/sh
# /init of the ShuruStore test guest (busybox sh, runs as PID 1 in the initramfs).
#
# Installed by build-guest.sh. It loads the kernel modules listed in /etc/modules.order,
# waits for /dev/vda, reads `shuru.mode=` from the kernel command line and runs:
#   write  : mount /dev/vda rw, write /guest/hello.txt + a 5 MiB random file and their
#            checksums (/guest/sums = sha256sum format, /guest/sums.md5 = md5sum format),
#            sync, umount, print "SHURU-RESULT: WRITE-OK"
#   verify : mount /dev/vda ro, check hello.txt and both checksum files,
#            print "SHURU-RESULT: VERIFY-OK" or "SHURU-RESULT: VERIFY-FAIL <reason>"
#   trim   : mount rw, delete /guest, fstrim, umount, print "SHURU-RESULT: TRIM-OK"
#   shell  : debugging aid, drops to a busybox shell on the console
# Any other failure prints "SHURU-RESULT: FAIL <reason>". The guest always ends with
# `poweroff -f`; qemu runs with -no-reboot so a kernel panic (panic=-1) also ends it.
#
# The marker lines are the only contract with run-guest.sh: keep them stable.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

HELLO_CONTENT='Hello from the ShuruStore test guest. 0123456789 abcdefghijklmnopqrstuvwxyz'
MNT=/mnt/vda

# Print the marker, flush the console and power off. Never returns.
finish() {
    echo "shuru-guest: uptime $(cut -d' ' -f1 /proc/uptime 2>/dev/null) s at result"
    echo "SHURU-RESULT: $*"
    # Leave the console a moment to drain before the machine disappears.
    sync
    sleep 0.2 2>/dev/null || true
    poweroff -f
    # poweroff -f should not return; if it does, panic (panic=-1 + -no-reboot ends qemu).
    echo o > /proc/sysrq-trigger 2>/dev/null
    exit 1
}

fail() { finish "FAIL $*"; }
vfail() {
    umount "$MNT" 2>/dev/null
    finish "VERIFY-FAIL $*"
}

mkdir -p /proc /sys /dev /tmp "$MNT"
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true   # may be auto-mounted already

# Mode from the kernel command line (dotted parameters are not passed to init's argv/env).
MODE=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        shuru.mode=*) MODE="${arg#shuru.mode=}" ;;
    esac
done
echo "shuru-guest: mode=${MODE:-<none>} kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)s"

# Load the modules in dependency order (build-guest.sh resolved the order from modules.dep).
while read -r ko; do
    [ -n "$ko" ] || continue
    name=$(basename "$ko" .ko)
    # Skip modules already present (e.g. pulled in by an earlier insmod); errors are fatal
    # only for the modules we really need, which we detect by waiting for /dev/vda below.
    if ! grep -q "^$(echo "$name" | tr - _) " /proc/modules 2>/dev/null; then
        insmod "/$ko" 2>/tmp/insmod.err || echo "shuru-guest: insmod $name failed: $(cat /tmp/insmod.err)"
    fi
done < /etc/modules.order

# Wait (up to ~15 s) for the virtio disk to appear.
i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1))
    [ "$i" -le 150 ] || fail "no /dev/vda after 15 s (modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' '))"
    sleep 0.1
done

echo "shuru-guest: /dev/vda ready, uptime=$(cut -d' ' -f1 /proc/uptime)s"

case "$MODE" in
write)
    mount -t ext4 -o rw /dev/vda "$MNT" || fail "mount rw /dev/vda"
    rm -rf "$MNT/guest" || fail "remove old /guest"
    mkdir -p "$MNT/guest" || fail "mkdir /guest"
    echo "$HELLO_CONTENT" > "$MNT/guest/hello.txt" || fail "write hello.txt"
    # 5 MiB of pseudo-random data (urandom does not block on 6.1).
    dd if=/dev/urandom of="$MNT/guest/random.bin" bs=1048576 count=5 2>/dev/null \
        || fail "write random.bin"
    (cd "$MNT/guest" && sha256sum hello.txt random.bin > sums) || fail "sha256sum"
    (cd "$MNT/guest" && md5sum hello.txt random.bin > sums.md5) || fail "md5sum"
    sync || fail "sync"
    umount "$MNT" || fail "umount"
    finish "WRITE-OK"
    ;;
verify)
    mount -t ext4 -o ro /dev/vda "$MNT" || fail "mount ro /dev/vda"
    [ -f "$MNT/guest/hello.txt" ] || vfail "hello.txt missing"
    [ "$(cat "$MNT/guest/hello.txt")" = "$HELLO_CONTENT" ] || vfail "hello.txt content differs"
    size=$(wc -c < "$MNT/guest/random.bin" 2>/dev/null) || vfail "random.bin missing"
    [ "$size" -eq 5242880 ] || vfail "random.bin has $size bytes, expected 5242880"
    (cd "$MNT/guest" && sha256sum -c -s sums) || vfail "sha256 mismatch"
    (cd "$MNT/guest" && md5sum -c -s sums.md5) || vfail "md5 mismatch"
    umount "$MNT" || fail "umount"
    finish "VERIFY-OK"
    ;;
trim)
    # Optional: delete /guest and fstrim, so the guest's discards (qemu discard=unmap) reach
    # the server as NBD_CMD_TRIM. The host can then check the image got sparser.
    mount -t ext4 -o rw /dev/vda "$MNT" || fail "mount rw /dev/vda"
    rm -rf "$MNT/guest" || fail "remove /guest"
    sync || fail "sync"
    fstrim -v "$MNT" || fail "fstrim (does the export support TRIM?)"
    umount "$MNT" || fail "umount"
    finish "TRIM-OK"
    ;;
shell)
    echo "shuru-guest: debug shell; 'poweroff -f' to leave"
    setsid cttyhack sh
    finish "FAIL shell exited"
    ;;
*)
    fail "unknown shuru.mode='$MODE' (want write|verify|trim|shell)"
    ;;
esac
