#!/usr/bin/env bash
# Whether the per-chunk loops behind Get-ShuruChunkIndex run optimized: the same two calls in a
# fresh pwsh with .NET's default tiered compilation and with DOTNET_TieredCompilation=0 (every
# method fully optimized at its first call), on a 16 and a 64 GiB index, reps interleaved.
# usage: bash bench/scale/tiering/run.sh [REPS]   (default 2; output to stdout)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d /var/tmp/shuru-tiering.XXXXXX)"; trap 'rm -rf "$WORK"' EXIT
dotnet pwsh -NoProfile -File "$HERE/make-indexes.ps1" -Dir "$WORK"
for rep in $(seq 1 "${1:-2}"); do
    for tc in default TieredCompilation=0; do
        for d in 16 64; do
            if [ "$tc" = default ]; then env=(env -u DOTNET_TieredCompilation); else env=(env DOTNET_TieredCompilation=0); fi
            echo "rep $rep $tc ${d}GiB: $("${env[@]}" dotnet pwsh -NoProfile -File "$HERE/first-calls.ps1" -Idx "$WORK/disk-$d.idx" | tr '\n' ' ') load $(cut -d' ' -f1 /proc/loadavg)"
        done
    done
done
