#!/usr/bin/env bash
# Boots a real Linux guest (Debian's kernel under TCG, busybox initramfs) whose virtio disk is
# the NBD export at URI. The guest writes 1 MiB of random data with fsync, discards 1 MiB
# elsewhere, drops its page cache, reads the data back and prints
#   GUEST-RESULT <md5 written> <md5 read back>
# then powers off. Usage: guest-boot.sh URI WORKDIR   (exit 0 when the marker was printed)
set -euo pipefail
URI=$1
WORK=$2
KVER=$(ls /usr/lib/modules | sort -V | tail -1)
KERNEL=/boot/vmlinuz-$KVER
MODS=/usr/lib/modules/$KVER/kernel
ROOT=$WORK/initramfs
rm -rf "$ROOT"; mkdir -p "$ROOT"/{bin,proc,sys,dev,lib/modules}
cp /bin/busybox "$ROOT/bin/busybox"
# Dependency order from modules.dep: ring, core, the two pci transports, pci, blk.
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev \
         virtio/virtio_pci block/virtio_blk; do
  cp "$MODS/drivers/$m.ko" "$ROOT/lib/modules/"
done
cat > "$ROOT/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  insmod /lib/modules/$m.ko
done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
dd if=/dev/urandom of=/pat bs=65536 count=16 2>/dev/null
dd if=/pat of=/dev/vda bs=65536 conv=fsync 2>/dev/null
blkdiscard -o 2097152 -l 1048576 /dev/vda 2>/dev/null || echo "GUEST-NOTE blkdiscard failed"
sync
echo 3 > /proc/sys/vm/drop_caches
W=$(md5sum /pat | cut -d' ' -f1)
R=$(dd if=/dev/vda bs=65536 count=16 2>/dev/null | md5sum | cut -d' ' -f1)
echo "GUEST-RESULT $W $R"
poweroff -f
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1 > "$WORK/initrd.gz")
timeout 150 qemu-system-x86_64 -M q35 -accel tcg -m 256 -nodefaults -display none -serial stdio \
  -no-reboot -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1" \
  -drive "file=$URI,format=raw,if=virtio,cache=none,discard=unmap" | tee "$WORK/console.log" | grep -E "GUEST-" || true
grep -q "GUEST-RESULT" "$WORK/console.log"
