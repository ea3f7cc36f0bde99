#!/usr/bin/env bash
# Harness self-test only: stands in for bench/serve.ps1 when run-bench.sh runs with
# BENCH_FAKE_SHURU=1, so the ShuruStore code path of the harness (READY line, process-group
# stop, cold/warm/cow modes, ratios in the report) can be exercised without the engine.
# Same arguments as serve.ps1; serves with nbdkit (chunk-store modes: the cow filter over the
# base, so writes never touch it). Its figures are nbdkit's, never ShuruStore's.
set -euo pipefail
sock="" image="" rootfs=""
while [ $# -gt 0 ]; do
    case "$1" in
        -SocketPath) sock="$2"; shift ;;
        -ImagePath) image="$2"; shift ;;
        -RootfsPath) rootfs="$2"; shift ;;
        -CasPath|-IndexPath|-StatePath|-DiskSize|-DirtyMemoryLimit) shift ;;
    esac
    shift
done
if [ -n "$image" ]; then
    nbdkit -U "$sock" -f --exit-with-parent file "$image" &
else
    nbdkit -U "$sock" -f --exit-with-parent --filter=cow file "$rootfs" &
fi
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' TERM INT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
echo "READY nbd+unix:///?socket=$sock"
wait $pid
