#!/usr/bin/env bash
# First throughput comparison of ShuruStore's NBD server (flat raw image) against nbdkit's
# file plugin and qemu-nbd, all on a Unix socket, all on the same image and machine.
# Workloads: nbdcopy sequential write and read (4 connections), fio 4k randread/randwrite.
# Usage: bench/nbd-peers.sh [SIZE_MIB] [FIO_SECONDS] > results.md
set -euo pipefail
SIZE_MIB=${1:-512}
FIO_SECS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/nbdbench.XXXXXX)
SOCK=$WORK/s.sock
IMG=$WORK/disk.img
SRC=$WORK/src.img
export NUGET_CERT_REVOCATION_MODE=offline
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

dotnet build -c Release "$ROOT/tools/ShuruStore.ServeFlat" -o "$WORK/serveflat" >/dev/null
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$SRC"
URI="nbd+unix:///export?socket=$SOCK"

start_server() {
  rm -f "$SOCK"
  truncate -s 0 "$IMG"; truncate -s "${SIZE_MIB}M" "$IMG"
  case "$1" in
    shurustore) "$WORK/serveflat/ShuruStore.ServeFlat" "$IMG" "$SOCK" >/dev/null & ;;
    nbdkit)     nbdkit -f -U "$SOCK" -e export file "$IMG" & ;;
    qemu-nbd)   qemu-nbd -k "$SOCK" -f raw -t -e 16 -x export "$IMG" & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && nbdinfo --size "$URI" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server $1 did not come up" >&2; exit 1
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

mibps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'; }
fio_iops() {
  fio --name=b --ioengine=nbd --uri="$URI" --rw="$1" --bs=4k --iodepth=16 --size="${SIZE_MIB}M" \
      --time_based --runtime="$FIO_SECS" --output-format=json 2>/dev/null |
    python3 -c "import json,sys; t=sys.stdin.read(); d=json.loads(t[t.index('{'):])['jobs'][0]; print(round(d['$2']['iops']))"
}

echo "| server | nbdcopy seq write MiB/s | nbdcopy seq read MiB/s | fio 4k randread IOPS | fio 4k randwrite IOPS |"
echo "|---|---|---|---|---|"
for s in shurustore nbdkit qemu-nbd; do
  start_server "$s"
  # Warm-up (same for every server): lets .NET's JIT tier up before anything is measured.
  fio --name=warm --ioengine=nbd --uri="$URI" --rw=randrw --bs=64k --iodepth=8 --size=64M \
      --time_based --runtime=2 >/dev/null 2>&1
  w=$(timed nbdcopy -C 4 "$SRC" "$URI")
  r=$(timed nbdcopy -C 4 "$URI" null:)
  rr=$(fio_iops randread read)
  rw=$(fio_iops randwrite write)
  stop_server
  echo "| $s | $(mibps $((SIZE_MIB * 1048576)) "$w") | $(mibps $((SIZE_MIB * 1048576)) "$r") | $rr | $rw |"
done
