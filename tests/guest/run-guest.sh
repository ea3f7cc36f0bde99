#!/usr/bin/env bash
# run-guest.sh --uri URI --mode write|verify [--timeout SECONDS] [--artifacts OUTDIR] [--log FILE] [--ro|--rw]
#
# Boots the ShuruStore test guest (Debian kernel + busybox initramfs, see build-guest.sh) under
# qemu TCG with the NBD export URI as its virtio disk /dev/vda, and waits for the guest's
# result marker on the serial console.
#
#   --uri URI          NBD URI as qemu understands it, e.g. nbd+unix:///export?socket=/tmp/s.sock
#                      or nbd://127.0.0.1:10809/export
#   --mode MODE        write | verify | trim (see init.sh); `shell` gives an interactive
#                      debug shell on the terminal (no log, no marker handling)
#   --timeout SECONDS  wall-clock limit for the whole boot+run (default 120); qemu is killed
#   --artifacts DIR    where build-guest.sh keeps its artifacts (default <repo>/out/guest);
#                      they are (re)built first if missing or stale
#   --log FILE         serial log file (default DIR/logs/guest-MODE-<time>.log)
#   --ro | --rw        attach the disk read-only (qemu readonly=on) or read-write; default:
#                      --ro for verify (works against read-only exports, proves no writes),
#                      --rw otherwise
#
# Output: the marker line (SHURU-RESULT: ...) and the log path, plus the elapsed time.
# Exit status: 0 only when the guest printed WRITE-OK (write) / VERIFY-OK (verify) / TRIM-OK;
#              1 guest reported a failure or qemu ended without a marker; 2 usage;
#              3 timeout (qemu killed).
# Environment: SHURU_QEMU (default qemu-system-x86_64), SHURU_GUEST_APPEND (extra kernel args).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
    sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

URI= MODE= TIMEOUT=120 ARTIFACTS=$REPO/out/guest LOG= READONLY=
while [ $# -gt 0 ]; do
    case "$1" in
        --uri)       URI=${2:?}; shift 2 ;;
        --mode)      MODE=${2:?}; shift 2 ;;
        --timeout)   TIMEOUT=${2:?}; shift 2 ;;
        --artifacts) ARTIFACTS=${2:?}; shift 2 ;;
        --log)       LOG=${2:?}; shift 2 ;;
        --ro)        READONLY=on; shift ;;
        --rw)        READONLY=off; shift ;;
        -h|--help)   usage ;;
        *) echo "run-guest: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$URI" ] || usage
case "$MODE" in
    write)  OK_MARKER='SHURU-RESULT: WRITE-OK' ;;
    verify) OK_MARKER='SHURU-RESULT: VERIFY-OK' ;;
    trim)   OK_MARKER='SHURU-RESULT: TRIM-OK' ;;
    shell)  OK_MARKER='' ;;
    *) echo "run-guest: --mode must be write, verify, trim or shell" >&2; usage ;;
esac
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -gt 0 ] || { echo "run-guest: bad --timeout" >&2; exit 2; }

# Build (or confirm up to date) the kernel + initramfs, then load their paths.
"$HERE/build-guest.sh" "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)   # absolute, so the printed log path is usable anywhere
# shellcheck source=/dev/null
. "$ARTIFACTS/build.env"

QEMU=${SHURU_QEMU:-qemu-system-x86_64}
# no_timer_check: under TCG on a busy host the kernel's boot-time check that timer interrupts
# arrive through the IO-APIC can time out and panic ("IO-APIC + timer doesn't work"); the timer
# works, it is only emulated slowly, so the check is skipped.
APPEND="console=ttyS0 quiet panic=-1 no_timer_check shuru.mode=$MODE ${SHURU_GUEST_APPEND:-}"
# qemu -drive option values use ',' as separator; a literal ',' in the URI must be doubled.
if [ -z "$READONLY" ]; then
    if [ "$MODE" = verify ]; then READONLY=on; else READONLY=off; fi
fi
DRIVE="file=${URI//,/,,},format=raw,if=virtio,cache=none,discard=unmap,readonly=$READONLY"
QEMU_ARGS=(
    -nodefaults -no-user-config
    -accel tcg -M q35 -m 256 -smp 1      # /dev/kvm is unusable here: TCG only
    -display none -serial stdio -monitor none
    -nic none -no-reboot                 # guest poweroff/panic => qemu exits
    -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
    -drive "$DRIVE"
)

if [ "$MODE" = shell ]; then   # interactive debugging, no marker handling
    exec "$QEMU" "${QEMU_ARGS[@]}"
fi

if [ -z "$LOG" ]; then
    mkdir -p "$ARTIFACTS/logs"
    LOG=$ARTIFACTS/logs/guest-$MODE-$(date -u +%Y%m%dT%H%M%SZ)-$$.log
fi
mkdir -p "$(dirname "$LOG")"
: > "$LOG"

# Start qemu in the background; the serial console (stdio) goes straight to the log file.
START=$(date +%s.%N)
"$QEMU" "${QEMU_ARGS[@]}" < /dev/null > "$LOG" 2>&1 &
QPID=$!

# Make sure qemu never outlives us (Ctrl-C, errors, timeout).
stop_qemu() {
    if kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$QPID" 2>/dev/null || true
    fi
    wait "$QPID" 2>/dev/null || true
}
trap stop_qemu EXIT
trap 'exit 130' INT TERM

# Not anchored at line start: a stray kernel message may precede the marker on its line.
marker() { tr -d '\r' < "$LOG" | grep -a -o -m1 'SHURU-RESULT: .*' || true; }
elapsed() { awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# Wait for the marker, qemu's exit or the timeout, whichever comes first.
DEADLINE=$(( $(date +%s) + TIMEOUT ))
RESULT= STATUS=
while :; do
    RESULT=$(marker)
    [ -z "$RESULT" ] || break
    if ! kill -0 "$QPID" 2>/dev/null; then
        RESULT=$(marker)   # it may have been written just before qemu exited
        break
    fi
    if [ "$(date +%s)" -ge "$DEADLINE" ]; then
        STATUS=timeout
        break
    fi
    sleep 0.1
done

# After the marker the guest powers off by itself; give it a few seconds, then kill qemu.
if [ -n "$RESULT" ]; then
    for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
fi
TIME=$(elapsed)
stop_qemu
trap - EXIT

if [ "$STATUS" = timeout ]; then
    echo "SHURU-RESULT: TIMEOUT after ${TIMEOUT}s (qemu killed)"
    echo "log: $LOG"
    tail -n 20 "$LOG" | sed 's/^/  | /' >&2
    exit 3
fi
if [ -z "$RESULT" ]; then
    echo "SHURU-RESULT: NONE (qemu exited without a result marker after ${TIME}s)"
    echo "log: $LOG"
    tail -n 20 "$LOG" | sed 's/^/  | /' >&2
    exit 1
fi
echo "$RESULT"
echo "log: $LOG"
echo "time: ${TIME}s"
if [ "$RESULT" = "$OK_MARKER" ]; then
    exit 0
fi
tail -n 20 "$LOG" | sed 's/^/  | /' >&2
exit 1
