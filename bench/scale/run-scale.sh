#!/usr/bin/env bash
# How ShuruStore's costs grow with the work: the scale section of the bench (issue #20).
#
# usage: bash bench/scale/run-scale.sh [--series disk,written,clients] [--reps N]
#                                      [--written-max GIB] [--out-dir DIR]
#
#   disk     sparse disks of 1, 4, 16, 64 GiB, 1 GiB written (SCALE_FIXED_GIB)
#   written  a 64 GiB sparse disk with 1, 2, 4, 8, 16 (, 32, 64) GiB written: points whose chunk
#            files would not leave SCALE_MARGIN_GIB (default 12) free on the work dir are
#            skipped and recorded as skipped
#   clients  fio with 1, 4, 16, 64 concurrent clients, one NBD connection each (clients.sh)
#   SCALE_REP_BASE=N numbers the disk series' reps from N+1 (more reps into the same raw.csv)
#
# Each disk/written point is two pwsh processes (write-point.ps1: write + checkpoint, its VmHWM;
# start-point.ps1: start from the index + Get-ShuruChunkIndex), reps interleaved point by point.
# Raw lines go to DIR/raw.csv (default bench/scale/results), then plot.py draws docs/scale-*.svg
# and fills the tables of docs/scale.md. The module must be staged (build.ps1 -Task Build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/scale"
SERIES="disk,written,clients"; REPS="${SCALE_REPS:-2}"; WRITTEN_MAX="${SCALE_WRITTEN_MAX:-64}"
OUTDIR="$HERE/results"; FIXED="${SCALE_FIXED_GIB:-1}"; MARGIN="${SCALE_MARGIN_GIB:-12}"
while [ $# -gt 0 ]; do
    case "$1" in
        --series) SERIES="$2"; shift ;;
        --reps) REPS="$2"; shift ;;
        --written-max) WRITTEN_MAX="$2"; shift ;;
        --out-dir) OUTDIR="$2"; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "run-scale: unknown argument $1" >&2; exit 2 ;;
    esac; shift
done
[ -f "$ROOT/out/ShuruStore/ShuruStore.psd1" ] || { echo "run-scale: stage the module first (build.ps1 -Task Build)" >&2; exit 1; }
WORK="${SCALE_WORKDIR:-$(mktemp -d /var/tmp/shuru-scale.XXXXXX)}"
mkdir -p "$OUTDIR" "$WORK"
RAW="$OUTDIR/raw.csv"
[ -f "$RAW" ] || echo "series,disk_gib,written_gib,rep,metric,value,unit,load1" > "$RAW"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
trap 'rm -rf "$WORK"' EXIT

free_gib() { df -Pk "$WORK" | awk 'NR==2{print int($4/1048576)}'; }

point() {   # series disk written rep
    local s="$1" d="$2" w="$3" r="$4" dir="$WORK/p" load line
    rm -rf "$dir"; mkdir -p "$dir"
    if [ $(( $(free_gib) - w - 1 )) -lt "$MARGIN" ]; then
        log "skip $s D=$d W=$w rep $r: $(free_gib) GiB free, needs $w + ${MARGIN} margin"
        echo "$s,$d,$w,$r,skipped,$(free_gib),GiB-free,$(cut -d' ' -f1 /proc/loadavg)" >> "$RAW"
        return 0
    fi
    log "$s D=${d}G W=${w}G rep $r (load $(cut -d' ' -f1-3 /proc/loadavg))"
    for script in write-point.ps1 start-point.ps1; do
        local args=(-WorkDir "$dir")
        [ "$script" = write-point.ps1 ] && args+=(-DiskGiB "$d" -WrittenGiB "$w")
        while read -r line; do
            case "$line" in
                "SCALE "*) read -r _ m v u <<<"$line"; load="$(cut -d' ' -f1 /proc/loadavg)"
                           echo "$s,$d,$w,$r,$m,$v,$u,$load" >> "$RAW"; log "  $m $v $u" ;;
            esac
        done < <(cd "$ROOT" && dotnet pwsh -NoProfile -File "$HERE/$script" "${args[@]}" 2>>"$OUTDIR/stderr.log")
    done
    echo "$s,$d,$w,$r,cas-bytes,$(du -sb "$dir/cas" | cut -f1),B,$(cut -d' ' -f1 /proc/loadavg)" >> "$RAW"
    rm -rf "$dir"
}

BASE="${SCALE_REP_BASE:-0}"   # rep numbers start after this (to add reps to an existing raw.csv)
for r in $(seq $((BASE + 1)) $((BASE + REPS))); do
    if [[ ",$SERIES," == *",disk,"* ]]; then
        for d in 1 4 16 64; do point disk "$d" "$FIXED" "$r"; done
    fi
done
if [[ ",$SERIES," == *",written,"* ]]; then
    # the 1 GiB point is repeated; the big ones once (minutes each, and disk space)
    for r in $(seq 1 "$REPS"); do point written 64 1 "$r"; done
    for w in 2 4 8 16 32 64; do
        [ "$w" -le "$WRITTEN_MAX" ] || continue
        point written 64 "$w" 1
    done
fi
if [[ ",$SERIES," == *",clients,"* ]]; then
    bash "$HERE/clients.sh" --reps "$REPS" --raw "$RAW"
fi
/usr/bin/python3 "$HERE/plot.py" --raw "$RAW" --docs "$ROOT/docs"
log "done: $RAW"
