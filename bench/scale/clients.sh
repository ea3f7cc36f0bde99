#!/usr/bin/env bash
# Throughput with 1, 4, 16 and 64 concurrent clients, one NBD connection each (fio's nbd engine:
# every job opens its own connection), against ShuruStore's chunk store (warm: started from the
# checkpoint of a 4 GiB disk with 2 GiB of random data written) and nbdkit's file plugin over a
# file with the same bytes. 4 KiB random reads, then 4 KiB random writes, queue depth 1 per
# client, inside the 2 GiB written; servers alternated, reps interleaved. Beside every figure the
# server's CPU time per I/O (utime+stime from /proc/PID/stat over the run) and its VmHWM.
#
# usage: bash bench/scale/clients.sh [--reps N] [--runtime S] [--raw FILE]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/scale"
REPS=2; RUNTIME="${SCALE_FIO_RUNTIME:-5}"; RAW="$HERE/results/raw.csv"
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift ;;
        --runtime) RUNTIME="$2"; shift ;;
        --raw) RAW="$2"; shift ;;
        *) echo "clients: unknown argument $1" >&2; exit 2 ;;
    esac; shift
done
mkdir -p "$(dirname "$RAW")"
[ -f "$RAW" ] || echo "series,disk_gib,written_gib,rep,metric,value,unit,load1" > "$RAW"
WORK="$(mktemp -d /var/tmp/shuru-clients.XXXXXX)"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
declare -a GROUPS_STARTED=()
cleanup() {
    local g
    for g in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
    sleep 2
    for g in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The disk: 2 GiB of random data in a 4 GiB chunk-store disk, checkpointed (write-point.ps1).
log "preparing the 4 GiB disk (2 GiB written) in $WORK"
(cd "$ROOT" && dotnet pwsh -NoProfile -File "$HERE/write-point.ps1" -WorkDir "$WORK" -DiskGiB 4 -WrittenGiB 2) >/dev/null
nbdcopy -- '[' nbdkit random size=2G ']' "$WORK/flat.raw"   # same seed, same bytes
truncate -s 4G "$WORK/flat.raw"

setsid nbdkit -U "$WORK/k.sock" -f file "$WORK/flat.raw" > "$WORK/nbdkit.log" 2>&1 &
GROUPS_STARTED+=($!)
( cd "$ROOT" && exec setsid dotnet pwsh -NoProfile -File "$ROOT/bench/serve.ps1" -SocketPath "$WORK/s.sock" -CasPath "$WORK/cas" -IndexPath "$WORK/disk.idx" ) > "$WORK/shuru.log" 2>&1 &
GROUPS_STARTED+=($!)
for i in $(seq 1 600); do grep -q '^READY ' "$WORK/shuru.log" && [ -S "$WORK/k.sock" ] && break; sleep 0.2; done
grep -q '^READY ' "$WORK/shuru.log" || { cat "$WORK/shuru.log" >&2; exit 1; }
SHURU_PID="$(pgrep -f "pwsh.dll.*$WORK/s.sock" | head -1)"
NBDKIT_PID="$(pgrep -f "nbdkit -U $WORK/k.sock" | head -1)"
sleep 3
declare -A URI=([shuru-chunk]="nbd+unix:///?socket=$WORK/s.sock" [nbdkit]="nbd+unix:///?socket=$WORK/k.sock")
declare -A PID=([shuru-chunk]="$SHURU_PID" [nbdkit]="$NBDKIT_PID")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK="$(getconf CLK_TCK)"

run() {   # rw clients server rep
    local rw="$1" n="$2" srv="$3" r="$4" out="$WORK/fio.json" c0 c1 load v
    c0="$(cpu_ticks "${PID[$srv]}")"
    fio --name="c$n" --ioengine=nbd --uri="${URI[$srv]}" --rw="$rw" --bs=4k --iodepth=1 --numjobs="$n" \
        --size=2g --runtime="$RUNTIME" --time_based --group_reporting --output-format=json --output="$out" >/dev/null
    c1="$(cpu_ticks "${PID[$srv]}")"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    v="$(/usr/bin/python3 - "$out" "$rw" <<'PY'
import json, sys
s = open(sys.argv[1]).read()
j = json.loads(s[s.index("{"):])
job = j["jobs"][0]
if job["error"]:
    sys.exit("fio error %d" % job["error"])
d = job["read" if "read" in sys.argv[2] else "write"]
pct = d["clat_ns"].get("percentile", {})
print("%.0f %.1f %.1f %d" % (d["iops"], d["clat_ns"]["mean"] / 1000.0, pct.get("99.000000", 0) / 1000.0, d["total_ios"]))
PY
)"
    read -r iops lat p99 ios <<<"$v"
    local cpu_us; cpu_us="$(awk -v a="$c0" -v b="$c1" -v t="$TICK" -v n="$ios" 'BEGIN{printf "%.1f", (b-a)/t*1e6/(n>0?n:1)}')"
    local hwm; hwm="$(awk '/^VmHWM:/{print int($2/1024)}' "/proc/${PID[$srv]}/status")"
    for m in "iops:$iops:IOPS" "lat-us:$lat:us" "p99-us:$p99:us" "cpu-us-per-io:$cpu_us:us" "rss:$hwm:MiB"; do
        IFS=: read -r name val unit <<<"$m"
        echo "clients-$rw-$srv,4,$n,$r,$name,$val,$unit,$load" >> "$RAW"
    done
    log "$rw $srv clients=$n rep $r: $iops IOPS, mean $lat us, p99 $p99 us, server CPU $cpu_us us/IO, VmHWM $hwm MiB (load $load)"
}

for r in $(seq 1 "$REPS"); do
    for rw in randread randwrite; do
        for n in 1 4 16 64; do
            if [ $(( r % 2 )) = 1 ]; then order="shuru-chunk nbdkit"; else order="nbdkit shuru-chunk"; fi
            for srv in $order; do run "$rw" "$n" "$srv" "$r"; done
        done
    done
done
