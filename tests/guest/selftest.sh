#!/usr/bin/env bash
# selftest.sh [--server nbdkit|qemu-nbd] [--artifacts OUTDIR] [--keep] [--with-trim]
#
# End-to-end proof of the guest harness against a PEER NBD server (not ShuruStore):
#   1. make a 64 MiB ext4 image (make-sample-ext4.sh)
#   2. serve it read-write on a unix socket, boot the guest with --mode write  -> WRITE-OK
#   3. stop the server; `e2fsck -fn IMG` must pass (the guest left a clean file system)
#   4. serve it again read-only, boot the guest with --mode verify           -> VERIFY-OK
#   5. negative control: verify against a fresh, empty image                -> VERIFY-FAIL
#   6. (--with-trim) serve rw again, guest --mode trim -> TRIM-OK, the image must get sparser
#      (nbdkit's file plugin punches holes), e2fsck -fn must still pass
# Exit 0 only if every step behaves. --keep leaves the work dir (image, logs) in place.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SERVER=nbdkit ARTIFACTS=$REPO/out/guest KEEP=0 TRIM=0
while [ $# -gt 0 ]; do
    case "$1" in
        --server)    SERVER=${2:?}; shift 2 ;;
        --artifacts) ARTIFACTS=${2:?}; shift 2 ;;
        --keep)      KEEP=1; shift ;;
        --with-trim) TRIM=1; shift ;;
        *) echo "usage: $0 [--server nbdkit|qemu-nbd] [--artifacts OUTDIR] [--keep] [--with-trim]" >&2; exit 2 ;;
    esac
done
case "$SERVER" in nbdkit|qemu-nbd) ;; *) echo "selftest: unknown server $SERVER" >&2; exit 2 ;; esac
PATH=$PATH:/sbin:/usr/sbin

mkdir -p "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)
WORK=$(mktemp -d "$ARTIFACTS/selftest.XXXXXX")
IMG=$WORK/disk.img
SOCK=$WORK/nbd.sock
URI="nbd+unix:///export?socket=$SOCK"
SPID=

step() { echo "=== selftest: $*"; }
die()  { echo "selftest: FAILED: $*" >&2; exit 1; }

# Start the peer server in the foreground of a background job so that $! is its pid.
# $1 = image, $2 = ro|rw. Waits until the socket exists.
start_server() {
    local img=$1 ro=()
    rm -f "$SOCK"
    if [ "$SERVER" = nbdkit ]; then
        [ "$2" = ro ] && ro=(-r)
        # nbdkit serves every export name, so /export in the URI is accepted.
        nbdkit -f "${ro[@]}" -U "$SOCK" file "$img" &
    else
        [ "$2" = ro ] && ro=(-r)
        # qemu-nbd only accepts the name given by -x; -t: keep serving after a disconnect;
        # --discard=unmap: pass TRIMs to the file (the default ignores them).
        qemu-nbd "${ro[@]}" -k "$SOCK" -f raw -x export -t --discard=unmap "$img" &
    fi
    SPID=$!
    for _ in $(seq 100); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$SPID" 2>/dev/null || die "$SERVER exited at start"
        sleep 0.05
    done
    die "$SERVER did not create $SOCK"
}
stop_server() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
        SPID=
    fi
    rm -f "$SOCK"
}
cleanup() {
    stop_server
    if [ "$KEEP" = 1 ]; then echo "selftest: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

T0=$(date +%s)
step "build artifacts into $ARTIFACTS"
"$HERE/build-guest.sh" "$ARTIFACTS"

step "64 MiB ext4 image, served by $SERVER (rw)"
"$HERE/make-sample-ext4.sh" "$IMG" 64
start_server "$IMG" rw
step "guest write"
"$HERE/run-guest.sh" --uri "$URI" --mode write --artifacts "$ARTIFACTS" --log "$WORK/write.log" \
    || die "guest write (log $WORK/write.log)"
stop_server

step "e2fsck -fn on the image"
e2fsck -fn "$IMG" || die "e2fsck reports problems after the guest write"

step "guest verify (server $SERVER, read-only)"
start_server "$IMG" ro
"$HERE/run-guest.sh" --uri "$URI" --mode verify --artifacts "$ARTIFACTS" --log "$WORK/verify.log" \
    || die "guest verify (log $WORK/verify.log)"
stop_server

step "negative control: verify on an empty image must fail"
"$HERE/make-sample-ext4.sh" "$WORK/empty.img" 16
start_server "$WORK/empty.img" ro
rc=0
"$HERE/run-guest.sh" --uri "$URI" --mode verify --artifacts "$ARTIFACTS" --log "$WORK/negative.log" || rc=$?
stop_server
[ "$rc" = 1 ] && grep -q 'SHURU-RESULT: VERIFY-FAIL' "$WORK/negative.log" \
    || die "verify on an empty image did not report VERIFY-FAIL (rc=$rc)"

if [ "$TRIM" = 1 ]; then
    step "guest trim (server $SERVER, rw): discards must reach the image"
    before=$(du -k "$IMG" | cut -f1)
    start_server "$IMG" rw
    "$HERE/run-guest.sh" --uri "$URI" --mode trim --artifacts "$ARTIFACTS" --log "$WORK/trim.log" \
        || die "guest trim (log $WORK/trim.log)"
    stop_server
    after=$(du -k "$IMG" | cut -f1)
    echo "image allocation: ${before} KiB -> ${after} KiB"
    [ "$after" -lt "$before" ] || die "image did not get sparser after fstrim (${before} -> ${after} KiB)"
    e2fsck -fn "$IMG" || die "e2fsck reports problems after the guest trim"
fi

echo "selftest: OK ($SERVER, $(( $(date +%s) - T0 )) s total)"
