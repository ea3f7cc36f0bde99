#!/usr/bin/env bash
# ShuruStore benchmark: ShuruStore against the NBD servers people would use instead
# (nbdkit file plugin, qemu-nbd), same image, same machine, one invocation, interleaved rep by
# rep. Only ratios from one run mean anything: these machines are noisy.
#
# usage: bash bench/run-bench.sh [Configuration] [--quick] [--peers-only] [--reps N]
#                                [--size-mib N] [--fio-runtime S] [--out FILE] [--keep]
#
#   Configuration   Release|Debug, recorded in the report (build.ps1 -Task Bench passes it and
#                   stages out/ShuruStore before calling this script)
#   --quick         smoke test: 128 MiB disks, 1 rep, 2 s fio runs; report to the work dir
#   --peers-only    skip every ShuruStore mode (also BENCH_PEERS_ONLY=1)
#   --reps N        repetitions: every server restarted fresh (default 3; BENCH_REPS)
#   --rounds N      rounds per rep: each workload runs N times on every server, alternating
#                   (default 3; BENCH_ROUNDS). Samples = reps x rounds per figure.
#   --size-mib N    disk size in MiB (default 1024; BENCH_SIZE_MIB)
#   --fio-runtime S seconds per fio run (default 3; BENCH_FIO_RUNTIME)
#   --out FILE      Markdown report (default docs/benchmarks.md; with --quick: WORK/benchmarks.md)
#   --keep          keep the work dir's images and chunk stores (results are always kept)
#   --workloads L   only these workloads, comma-separated (default all; BENCH_WORKLOADS), for a
#                   focused comparison while profiling; the cold read always runs
#   --engine        the engine-level figures (bench/engine.ps1; on by default, BENCH_ENGINE=0 skips them):
#                   checkpoint of a 4 GiB full disk, start from its index, peak RSS writing it
#
# Work dir: BENCH_WORKDIR or a fresh /var/tmp/shuru-bench.XXXXXX (disk-backed: images are 1 GiB+).
# Raw results stay in WORK/results (raw.csv, fio JSON, server logs); the report is Markdown.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"

CONFIGURATION=Release
QUICK=0
PEERS_ONLY="${BENCH_PEERS_ONLY:-0}"
REPS="${BENCH_REPS:-}"
ROUNDS="${BENCH_ROUNDS:-}"
SIZE_MIB="${BENCH_SIZE_MIB:-}"
FIO_RUNTIME="${BENCH_FIO_RUNTIME:-}"
OUT=""
KEEP="${BENCH_KEEP:-0}"
WORKLOADS="${BENCH_WORKLOADS:-}"
ENGINE="${BENCH_ENGINE:-1}"   # engine figures are part of the default run (BENCH_ENGINE=0 skips them)
ENGINE_GIB="${BENCH_ENGINE_GIB:-4}"

die() { echo "run-bench: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --peers-only) PEERS_ONLY=1 ;;
        --reps) REPS="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        --size-mib) SIZE_MIB="$2"; shift ;;
        --fio-runtime) FIO_RUNTIME="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --keep) KEEP=1 ;;
        --workloads) WORKLOADS="$2"; shift ;;
        --engine) ENGINE=1 ;;
        -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}"; exit 0 ;;
        Release|Debug) CONFIGURATION="$1" ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    REPS="${REPS:-1}"; ROUNDS="${ROUNDS:-1}"; SIZE_MIB="${SIZE_MIB:-128}"; FIO_RUNTIME="${FIO_RUNTIME:-2}"
else
    REPS="${REPS:-3}"; ROUNDS="${ROUNDS:-3}"; SIZE_MIB="${SIZE_MIB:-1024}"; FIO_RUNTIME="${FIO_RUNTIME:-3}"
fi
FIO_RAMP=0   # short runs alternated between servers beat long ones on a noisy machine
[ "$SIZE_MIB" -ge 64 ] || die "--size-mib must be at least 64"
TTFB_N=20
REP=0; ROUND=0

for t in nbdkit qemu-nbd nbdcopy nbdinfo fio setsid; do
    command -v "$t" >/dev/null || die "$t not found (tools/install-deps.sh installs it)"
done
PY=/usr/bin/python3   # python3-libnbd is a Debian package: use Debian's python, not one from PATH
"$PY" -c 'import nbd' 2>/dev/null || die "python3-libnbd missing (import nbd failed in $PY)"
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd engine"

SHURU=1
[ "$PEERS_ONLY" = 1 ] && SHURU=0
FAKE="${BENCH_FAKE_SHURU:-0}"   # harness self-test: bench/fake-serve.sh (nbdkit) instead of serve.ps1
if [ "$SHURU" = 1 ] && [ "$FAKE" != 1 ]; then
    [ -f "$ROOT/out/ShuruStore/ShuruStore.psd1" ] \
        || die "out/ShuruStore is not staged: run 'dotnet pwsh -NoProfile -File build.ps1 -Task Bench', or pass --peers-only"
    command -v dotnet >/dev/null || die "dotnet not found"
fi

WORK="${BENCH_WORKDIR:-$(mktemp -d /var/tmp/shuru-bench.XXXXXX)}"
mkdir -p "$WORK"/{img,sock,cas,results/fio,results/logs}
# Room for every chunk store of the run (kept to the end, see fresh_write_target): per rep about
# 2 read stores and 7 write layers of the disk size, plus the images and the engine's 4 GiB disk.
NEED_MIB=$(( SIZE_MIB * (REPS * 9 + 6) + ENGINE_GIB * 2048 ))
FREE_MIB=$(( $(df -Pk "$WORK" | awk 'NR==2{print $4}') / 1024 ))
[ "$FREE_MIB" -ge "$NEED_MIB" ] || die "the work dir has $FREE_MIB MiB free; this run needs about $NEED_MIB MiB"
RES="$WORK/results"
RAW="$RES/raw.csv"
echo "sample,workload,server,value,unit,aux" > "$RAW"   # sample = rep.round
[ -n "$OUT" ] || { if [ "$QUICK" = 1 ]; then OUT="$WORK/benchmarks.md"; else OUT="$ROOT/docs/benchmarks.md"; fi; }

# ---------------------------------------------------------------------------------------------
# Servers. Each one runs in its own process group (setsid), so SIGTERM reaches the whole tree
# (dotnet muxer + pwsh for ShuruStore). GROUP[key] = pgid, URI[key] = its NBD URI.
declare -A URI=() GROUP=() SPEC=()
RESTARTS=0
declare -A STARTED=()   # pgids of the groups this run started and has not yet stopped

stop_group() {   # pgid: SIGTERM, wait up to 15 s, then SIGKILL
    local g="$1" i
    [ -n "${STARTED[$g]:-}" ] || return 0      # never signal a group this run did not start
    unset "STARTED[$g]"
    kill -TERM -- "-$g" 2>/dev/null || return 0
    for i in $(seq 1 150); do
        kill -0 -- "-$g" 2>/dev/null || return 0
        sleep 0.1
    done
    log "server group $g ignored SIGTERM for 15 s: SIGKILL"
    kill -KILL -- "-$g" 2>/dev/null || true
}

stop_all() {     # SIGTERM to every group first (ShuruStore flushes on exit), then wait for each
    local k
    for k in "${!GROUP[@]}"; do kill -TERM -- "-${GROUP[$k]}" 2>/dev/null || true; done
    for k in "${!GROUP[@]}"; do stop_group "${GROUP[$k]}"; done
    URI=(); GROUP=()
}

cleanup() {
    local rc=$?
    set +e
    for g in "${!STARTED[@]}"; do stop_group "$g"; done
    if [ "$KEEP" != 1 ]; then rm -rf "$WORK/img" "$WORK/cas" "$WORK/sock"; fi
    if [ $rc -ne 0 ]; then log "failed (rc=$rc); logs in $RES/logs"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_nbd() {     # key uri pgid: until the export answers (30 s)
    local key="$1" uri="$2" g="$3" i
    for i in $(seq 1 300); do
        if nbdinfo --size "$uri" >/dev/null 2>&1; then return 0; fi
        kill -0 -- "-$g" 2>/dev/null || { cat "$RES/logs/$key".log >&2 || true; die "$key exited before serving"; }
        sleep 0.1
    done
    die "$key did not serve $uri within 30 s"
}

sockpath() { echo "$WORK/sock/${1//\//-}.sock"; }

# start_peer key nbdkit|qemu-nbd IMAGE
start_peer() {
    local key="$1" kind="$2" img="$3" sock g
    sock="$(sockpath "$key")"; rm -f "$sock"
    case "$kind" in
        nbdkit)   setsid nbdkit -U "$sock" -f --exit-with-parent file "$img" >"$RES/logs/${key//\//-}.log" 2>&1 & ;;
        qemu-nbd) setsid qemu-nbd -k "$sock" -f raw -t -e 16 "$img" >"$RES/logs/${key//\//-}.log" 2>&1 & ;;
    esac
    g=$!; STARTED[$g]=1; GROUP[$key]=$g
    URI[$key]="nbd+unix:///?socket=$sock"
    SPEC[$key]="$(printf '%q ' start_peer "$key" "$kind" "$img")"
}

# start_shuru key serve.ps1-args...   (-SocketPath is added here). The one place ShuruStore is
# started: bench/serve.ps1 prints "READY <uri>" once it listens and stops cleanly on SIGTERM.
start_shuru() {
    local key="$1"; shift
    local sock logf g
    sock="$(sockpath "$key")"; rm -f "$sock"
    logf="$RES/logs/${key//\//-}.log"
    if [ "$FAKE" = 1 ]; then
        setsid bash "$BENCH/fake-serve.sh" -SocketPath "$sock" "$@" >"$logf" 2>&1 &
    else
        ( cd "$ROOT" && exec setsid dotnet pwsh -NoProfile -File "$BENCH/serve.ps1" -SocketPath "$sock" "$@" ) >"$logf" 2>&1 &
    fi
    g=$!; STARTED[$g]=1; GROUP[$key]=$g
    URI[$key]=""
    SPEC[$key]="$(printf '%q ' start_shuru "$key" "$@")"
    echo "$*" > "$logf.args"
}

wait_shuru() {   # key: until READY <uri> (120 s: pwsh start-up on a busy 2-core machine)
    local key="$1" g="${GROUP[$1]}" logf="$RES/logs/${1//\//-}.log" i line
    for i in $(seq 1 1200); do
        line="$(grep -m1 '^READY ' "$logf" 2>/dev/null || true)"
        if [ -n "$line" ]; then URI[$key]="${line#READY }"; URI[$key]="${URI[$key]%$'\r'}"; return 0; fi
        kill -0 -- "-$g" 2>/dev/null || { cat "$logf" >&2; die "$key exited before READY"; }
        sleep 0.1
    done
    cat "$logf" >&2; die "$key printed no READY within 120 s"
}

peak_rss_mib() { # pgid: the largest VmHWM among the group's processes, in MiB
    local g="$1" p m best=0
    for p in $(pgrep -g "$g" 2>/dev/null || true); do
        m="$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
        [ -n "$m" ] && [ "$m" -gt "$best" ] && best="$m"
    done
    echo $(( best / 1024 ))
}

# ---------------------------------------------------------------------------------------------
# Images (page-cache resident for everyone: 24 GiB RAM here; the cold path is ShuruStore's CAS).
SIZE=$(( SIZE_MIB * 1024 * 1024 ))
IMG="$WORK/img/disk.raw"        # incompressible, every 8th MiB written as zeros (allocated)
SPARSE="$WORK/img/sparse.raw"   # sparse file, SIZE/32 of random data in 1 MiB extents, rest holes
WSRC="$WORK/img/wsrc.raw"       # source of the sequential writes: incompressible, no zeros
IMG_DATA_CHUNKS=$(( (SIZE_MIB - SIZE_MIB / 8) * 16 ))   # non-zero 64 KiB chunks of IMG (see below)
log "work dir $WORK; ${SIZE_MIB} MiB disks, $REPS reps x $ROUNDS rounds, fio ${FIO_RUNTIME}s; ShuruStore: $([ $SHURU = 1 ] && echo yes || echo 'no (--peers-only)')$([ "$FAKE" = 1 ] && echo ' FAKE (BENCH_FAKE_SHURU=1: nbdkit stands in)')"
T_START=$EPOCHREALTIME
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$IMG" "$SPARSE" "$WSRC" "$SIZE_MIB" <<'EOF'
import os, random, sys
img, sparse, wsrc, mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
M = 1 << 20
with open(img, "wb") as f:
    for i in range(mib):
        f.write(bytes(M) if i % 8 == 7 else os.urandom(M))
with open(wsrc, "wb") as f:
    for i in range(mib):
        f.write(os.urandom(M))
rnd = random.Random(42)
with open(sparse, "wb") as f:
    f.truncate(mib * M)
    for i in sorted(rnd.sample(range(mib), max(1, mib // 32))):
        f.seek(i * M); f.write(os.urandom(M))
EOF
PEER_KINDS=(nbdkit qemu-nbd)
W_TARGETS=(nbdkit qemu-nbd)
[ "$SHURU" = 1 ] && W_TARGETS+=(shuru-flat)
fresh_image() { rm -f "$1"; truncate -s "${SIZE_MIB}M" "$1"; }
for s in "${W_TARGETS[@]}"; do fresh_image "$WORK/img/w-$s.raw"; done   # write targets: see fresh_write_target
sync

# ---------------------------------------------------------------------------------------------
# Workloads. Every measurement is one line of raw.csv: rep,workload,server,value,unit,aux.
COMMANDS="$RES/commands.tsv"; : > "$COMMANDS"
declare -A SEEN_CMD=()
note_cmd() {     # workload command-template (URI replaced by $URI): recorded once for the report
    [ -n "${SEEN_CMD[$1]:-}" ] && return 0
    SEEN_CMD[$1]=1; printf '%s\t%s\n' "$1" "$2" >> "$COMMANDS"
}
record() { echo "$REP.$ROUND,$1,$2,$3,$4,${5:-}" >> "$RAW"; log "$REP.$ROUND $1 $2: $3 $4 ${5:-}"; }

# nbdcopy_time workload server MiB src dst [nbdcopy options]: MiB/s over wall time
nbdcopy_run() {
    local wl="$1" srv="$2" mib="$3" src="$4" dst="$5"; shift 5
    local t0 t1 secs
    t0=$EPOCHREALTIME
    nbdcopy "$@" "$src" "$dst" || return 1
    t1=$EPOCHREALTIME
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}')"
    echo "$secs"
}

w_seqread() {    # wl conns key server
    local wl="$1" c="$2" key="$3" srv="$4" secs
    note_cmd "$wl" "nbdcopy -C $c \"\$URI\" null:"
    secs="$(nbdcopy_run "$wl" "$srv" "$SIZE_MIB" "${URI[$key]}" null: -C "$c")" || return 1
    record "$wl" "$srv" "$(awk -v m="$SIZE_MIB" -v s="$secs" 'BEGIN{printf "%.1f", m/s}')" MiB/s "${secs}s"
}

# Writes that reached the work dir's disk (writes completed, MiB) from /proc/diskstats: recorded
# beside every sequential write, because the disk under these VMs swings several-fold.
DISK_DEV="$(basename "$(df --output=source "$WORK" | tail -1)")"
disk_writes() { awk -v d="$DISK_DEV" '$3==d{print $8, $10; f=1} END{if(!f) print 0, 0}' /proc/diskstats; }

w_seqwrite() {   # wl conns key server
    local wl="$1" c="$2" key="$3" srv="$4" secs w0 s0 w1 s1
    note_cmd "$wl" "nbdcopy -C $c --flush \$WSRC \"\$URI\"   # WSRC: ${SIZE_MIB} MiB of random data, page-cached"
    read -r w0 s0 < <(disk_writes)
    secs="$(nbdcopy_run "$wl" "$srv" "$SIZE_MIB" "$WSRC" "${URI[$key]}" -C "$c" --flush)" || return 1
    read -r w1 s1 < <(disk_writes)
    record "$wl" "$srv" "$(awk -v m="$SIZE_MIB" -v s="$secs" 'BEGIN{printf "%.1f", m/s}')" MiB/s \
        "${secs}s disk: $((w1 - w0)) writes $(( (s1 - s0) / 2048 )) MiB"
}

w_readafterwrite() {   # wl conns key server: a fresh target written whole (+ flush), then read back; MiB/s of the read
    local wl="$1" c="$2" key="$3" srv="$4" secs
    note_cmd "$wl" "nbdcopy -C $c --flush \$WSRC \"\$URI\"; nbdcopy -C $c \"\$URI\" null:   # fresh target; the read is measured"
    nbdcopy -C "$c" --flush "$WSRC" "${URI[$key]}" || return 1
    secs="$(nbdcopy_run "$wl" "$srv" "$SIZE_MIB" "${URI[$key]}" null: -C "$c")" || return 1
    record "$wl" "$srv" "$(awk -v m="$SIZE_MIB" -v s="$secs" 'BEGIN{printf "%.1f", m/s}')" MiB/s "${secs}s"
}

w_sparse() {     # key server: whole sparse disk to null:, block status + zero handling; ms
    local key="$1" srv="$2" secs
    note_cmd sparse-copy "nbdcopy \"\$URI\" null:   # sparse disk: $(( SIZE_MIB / 32 )) MiB of data in ${SIZE_MIB} MiB"
    secs="$(nbdcopy_run sparse-copy "$srv" "$SIZE_MIB" "${URI[$key]}" null:)" || return 1
    record sparse-copy "$srv" "$(awk -v s="$secs" 'BEGIN{printf "%.1f", s*1000}')" ms
}

FIO_COMMON="--bs=4k --runtime=$FIO_RUNTIME --ramp_time=$FIO_RAMP --time_based --output-format=json"
w_fio() {        # wl rw depth key server
    local wl="$1" rw="$2" qd="$3" key="$4" srv="$5" out
    out="$RES/fio/$wl-$srv-$REP.$ROUND.json"
    note_cmd "$wl" "fio --name=$wl --ioengine=nbd --uri=\"\$URI\" --rw=$rw --iodepth=$qd $FIO_COMMON"
    # shellcheck disable=SC2086
    fio --name="$wl" --ioengine=nbd --uri="${URI[$key]}" --rw="$rw" --iodepth="$qd" $FIO_COMMON --output="$out" >/dev/null || return 1
    local v
    v="$("$PY" - "$out" "$rw" "$qd" <<'EOF'
import json, sys
s = open(sys.argv[1]).read()
j = json.loads(s[s.index("{"):])          # the nbd engine prints a line before the JSON
job = j["jobs"][0]
d = job["read" if "read" in sys.argv[2] else "write"]
if job["error"]:
    sys.exit("fio error %d" % job["error"])
pct = d["clat_ns"].get("percentile", {})
p99 = pct.get("99.000000", 0) / 1000.0
if sys.argv[3] == "1":                    # latency: mean total latency (submit + complete), us
    print("%.1f,us,p50=%.1fus p99=%.1fus iops=%.0f" % (d["lat_ns"]["mean"] / 1000.0,
          pct.get("50.000000", 0) / 1000.0, p99, d["iops"]))
else:
    print("%.0f,IOPS,%.1fMiB/s p99=%.1fus" % (d["iops"], d["bw"] / 1024.0, p99))
EOF
)" || return 1
    record "$wl" "$srv" "${v%%,*}" "$(echo "$v" | cut -d, -f2)" "$(echo "$v" | cut -d, -f3-)"
}

w_ttfb() {       # key server
    local key="$1" srv="$2" j
    note_cmd ttfb "/usr/bin/python3 bench/ttfb.py \"\$URI\" $TTFB_N   # connect + opt_go + pread(4096, 0), median of $TTFB_N"
    j="$("$PY" "$BENCH/ttfb.py" "${URI[$key]}" "$TTFB_N")" || return 1
    record ttfb "$srv" "$(echo "$j" | "$PY" -c 'import json,sys;print("%.0f"%json.load(sys.stdin)["median_us"])')" us \
        "$(echo "$j" | "$PY" -c 'import json,sys;d=json.load(sys.stdin);print("first=%.0fus p90=%.0fus"%(d["first_us"],d["p90_us"]))')"
}

w_coldread() {   # key: first full read of a lazy chunk-store server
    local key="$1" secs
    note_cmd cold-read "nbdcopy -C 4 \"\$URI\" null:   # first full read, lazy ingestion into an empty CAS"
    secs="$(nbdcopy_run cold-read shuru-cold "$SIZE_MIB" "${URI[$key]}" null: -C 4)" || return 1
    record cold-read shuru-cold "$(awk -v m="$SIZE_MIB" -v s="$secs" 'BEGIN{printf "%.1f", m/s}')" MiB/s "${secs}s"
}

# Warm = every non-zero chunk of the base stored. Lazy ingestion runs in the background after
# the reads that queued it, yielding to client I/O (found in review: the "warm" rows once read
# mostly from the base). Wait until the chunk store holds every non-zero chunk of the image, and
# record how long that took after the cold read; if it never completes, read the disk again.
w_warm() {       # key cas-dir
    local key="$1" cas="$2" t0=$EPOCHREALTIME have reads=0
    while :; do
        have="$(find "$cas/chunks" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)"
        [ "$have" -ge "$IMG_DATA_CHUNKS" ] && break
        if awk -v a="$t0" -v b="$EPOCHREALTIME" -v r="$reads" 'BEGIN{exit !(b-a > 60*(1+r))}'; then
            [ "$reads" -lt 3 ] || { log "$key: only $have of $IMG_DATA_CHUNKS chunks stored"; break; }
            nbdcopy -C 4 "${URI[$key]}" null: || return 1
            reads=$(( reads + 1 ))
        fi
        sleep 0.2
    done
    record ingest-wait shuru-warm "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')" s "$have/$IMG_DATA_CHUNKS chunks, $reads extra reads"
}

# Servers can die under the harness: other jobs on these shared machines have been seen killing
# every nbdkit by name. A server found dead is restarted (the chunk server re-read in full so it
# is warm again) and the measurement retried once; a second failure ends the run.
restart_server() {   # key
    local key="$1"
    RESTARTS=$(( RESTARTS + 1 ))
    log "server $key is gone (killed from outside?): restarting it"
    stop_group "${GROUP[$key]}"
    eval "${SPEC[$key]}"
    case "$key" in */shuru-*) wait_shuru "$key" ;; esac
    wait_nbd "$key" "${URI[$key]}" "${GROUP[$key]}"
    if [ "$key" = r/shuru-chunk ] && [ "${CHUNK_STATE:-}" = shuru-warm ]; then
        w_warm "$key" "$WORK/cas/r-$REP" || die "re-warming $key failed"
    fi
}

# Every write measurement starts its server on fresh storage, right before it runs: nbdkit,
# qemu-nbd and ShuruStore's flat mode on a new sparse image, ShuruStore's copy-on-write mode on a
# new empty chunk store over the base. Writing new storage is what a fresh copy-on-write layer
# does; measured on these VMs, overwriting an allocated, page-cached file is 6-10x faster than
# writing a new one (fresh pages, block allocation), so peers writing over a copy of the image
# while ShuruStore created chunk files compared two different jobs. Each server's previous target
# is released just before (the image deleted; the old chunk store's files truncated), so each
# finds the same ~1 GiB of just-freed memory: when all targets were renewed at the start of a
# round, whichever server ran first wrote 2-3x faster than the others. Chunk stores are never
# deleted during the run: on ext4 without a journal (these VMs' root) the inode allocator skips
# inodes deleted in the last seconds one by one, so creating files right after deleting
# thousands costs several times more (truncating frees their pages and blocks, not the inodes).
fresh_write_target() {   # key workload
    local key="$1" wl="$2" kind="${1#*/}"
    stop_group "${GROUP[$key]}"
    case "$kind" in
        shuru-cow)
            [ -n "${COW_CAS:-}" ] && [ -d "$COW_CAS" ] && find "$COW_CAS" -type f -exec truncate -s 0 {} + 2>/dev/null
            COW_CAS="$WORK/cas/w-$REP-$ROUND-$wl"
            start_shuru "$key" -RootfsPath "$IMG" -CasPath "$COW_CAS" ;;
        shuru-flat)
            fresh_image "$WORK/img/w-$kind.raw"; start_shuru "$key" -ImagePath "$WORK/img/w-$kind.raw" ;;
        *)
            fresh_image "$WORK/img/w-$kind.raw"; start_peer "$key" "$kind" "$WORK/img/w-$kind.raw" ;;
    esac
    case "$key" in */shuru-*) wait_shuru "$key" ;; esac
    wait_nbd "$key" "${URI[$key]}" "${GROUP[$key]}"
    # Nobody's dirty data is left for the next flush to write: a chunk store's flush is one
    # syncfs, which writes every dirty page of the filesystem, so the lazy server's ingested
    # chunks or the previous layer's truncation were written inside ShuruStore's measurement
    # (seen: 1930 MiB reached the disk for a 1024 MiB copy), while a peer's fdatasync writes
    # only its own file.
    sync
    settle
}

# A server that just printed READY may still be finishing its start-up on another thread (the
# runtime recompiling hot code, ShuruStore's hash warm-up): measured, that took the CPU another
# server's measurement needed (at a rep's start, five ShuruStore processes settle at once beside
# the cold read; each ShuruStore process also rehearses its request paths once, ProcessWarmUp).
# Wait until the machine is quiet again after starting servers: at least BENCH_SETTLE_S seconds,
# then until the CPUs are at least 80 % idle over half a second (at most 30 s more). Native peers
# have nothing to settle, so this costs them nothing and only keeps servers out of each other's
# measurements. Time from start to first byte is measured separately (ttfb, engine-start).
cpu_idle_pct() { # over 0.5 s, from /proc/stat: (idle + iowait) / total
    local a b
    a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
    awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN{n=split(a,x," "); split(b,y," "); t=0;
        for(i=2;i<=n;i++) t+=y[i]-x[i]; i=(y[5]-x[5])+(y[6]-x[6]); printf "%d", (t>0 ? 100*i/t : 100)}'
}
settle() {
    local i
    sleep "${BENCH_SETTLE_S:-2}"
    for i in $(seq 1 60); do
        [ "$(cpu_idle_pct)" -ge 80 ] && return 0
    done
    log "settle: the machine did not become quiet within 30 s"
}

on() {           # key function args...: run a measurement on a live server, retry once
    local key="$1"; shift
    kill -0 -- "-${GROUP[$key]}" 2>/dev/null || restart_server "$key"
    if "$@"; then return 0; fi
    log "$1 failed on $key"
    if ! kill -0 -- "-${GROUP[$key]}" 2>/dev/null || ! nbdinfo --size "${URI[$key]}" >/dev/null 2>&1; then
        restart_server "$key"
    fi
    "$@" || die "$1 failed twice on $key"
}

# rotate the server order by rep, so no server always runs first or last after a pause
rotated() {      # prints "$@" rotated left by one more at every round
    local n=$# r i; local a=("$@")
    r=$(( ((REP - 1) * ROUNDS + ROUND - 1) % n ))
    for (( i = 0; i < n; i++ )); do echo "${a[$(( (i + r) % n ))]}"; done
}

# ---------------------------------------------------------------------------------------------
# Engine-level figures (one-off, not interleaved, after the reps). They need the module
# in-process (Save-ShuruCheckpoint has no bash front end), so bench/engine.ps1 does the work and
# prints "ENGINE <workload> <value> <unit> <detail>" lines; every "engine-*" workload is reported
# in its own table:
#   engine-rss-write-4g    peak RSS of the pwsh process while nbdcopy writes 4 GiB of random data
#                          into a fresh copy-on-write layer (sparse base, empty CAS), MiB
#   engine-checkpoint-4g   Save-ShuruCheckpoint of that fully written disk, ms
#   engine-start-4g        Start-ShuruNbdServer -IndexPath <that index> until nbdinfo answers, ms
engine_figures() {
    [ "$ENGINE" = 1 ] || return 0
    [ "$FAKE" != 1 ] || { log "engine figures skipped: BENCH_FAKE_SHURU=1"; return 0; }
    log "=== engine figures (${ENGINE_GIB} GiB)"
    local line wl v u d
    REP=engine; ROUND=0
    note_cmd engine "dotnet pwsh -NoProfile -File bench/engine.ps1 -WorkDir WORK -SizeGiB $ENGINE_GIB"
    while read -r line; do
        case "$line" in
            "ENGINE "*) read -r _ wl v u d <<<"$line"; record "$wl" shuru "$v" "$u" "$d" ;;
        esac
    done < <(cd "$ROOT" && dotnet pwsh -NoProfile -File "$BENCH/engine.ps1" -WorkDir "$WORK/img" -SizeGiB "$ENGINE_GIB" 2>>"$RES/logs/engine.log" | tee -a "$RES/logs/engine.log")
}

# ---------------------------------------------------------------------------------------------
# The run: each rep starts every server fresh (ShuruStore's cold mode needs a fresh CAS), then
# runs each workload ROUNDS times, every round on every server of its group in an order rotated
# at every round, before going on to the next workload. Samples of one round are seconds apart,
# so the report pairs them (ShuruStore sample / best peer's sample of the same round).
for REP in $(seq 1 "$REPS"); do
    log "=== rep $REP/$REPS: starting servers"
    R_KEYS=(); W_KEYS=(); S_KEYS=()
    for k in "${PEER_KINDS[@]}"; do
        start_peer "r/$k" "$k" "$IMG";              R_KEYS+=("r/$k")
        start_peer "w/$k" "$k" "$WORK/img/w-$k.raw"; W_KEYS+=("w/$k")
        start_peer "s/$k" "$k" "$SPARSE";           S_KEYS+=("s/$k")
    done
    if [ "$SHURU" = 1 ]; then
        # Chunk stores are never deleted during the run (see fresh_write_target): each rep gets new ones.
        # flat image
        start_shuru r/shuru-flat -ImagePath "$IMG";                  R_KEYS+=(r/shuru-flat)
        start_shuru w/shuru-flat -ImagePath "$WORK/img/w-shuru-flat.raw"; W_KEYS+=(w/shuru-flat)
        start_shuru s/shuru-flat -ImagePath "$SPARSE";               S_KEYS+=(s/shuru-flat)
        # chunk store, lazy on the base: fresh empty CAS, no index (cold; warm after a full read)
        start_shuru r/shuru-chunk -RootfsPath "$IMG" -CasPath "$WORK/cas/r-$REP";    R_KEYS+=(r/shuru-chunk)
        start_shuru s/shuru-chunk -RootfsPath "$SPARSE" -CasPath "$WORK/cas/s-$REP"; S_KEYS+=(s/shuru-chunk)
        # writes into a fresh copy-on-write layer over the base
        COW_CAS="$WORK/cas/w-$REP"
        start_shuru w/shuru-cow -RootfsPath "$IMG" -CasPath "$COW_CAS";      W_KEYS+=(w/shuru-cow)
    fi
    for key in "${!GROUP[@]}"; do
        case "$key" in
            */shuru-*) wait_shuru "$key"; wait_nbd "$key" "${URI[$key]}" "${GROUP[$key]}" ;;
            *) wait_nbd "$key" "${URI[$key]}" "${GROUP[$key]}" ;;
        esac
    done
    BENCH_SETTLE_S=$(( ${BENCH_SETTLE_S:-2} + 3 )) settle   # many servers started at once
    name() {     # key -> server name in the report (chunk servers: cold until read once)
        case "$1" in
            */shuru-chunk) echo "${CHUNK_STATE:-shuru-warm}" ;;
            *) echo "${1#*/}" ;;
        esac
    }

    ROUND=1
    # ShuruStore chunk store, cold: first connection and first full read of the base
    if [ "$SHURU" = 1 ]; then
        CHUNK_STATE=shuru-cold
        on r/shuru-chunk w_ttfb r/shuru-chunk shuru-cold
        on r/shuru-chunk w_coldread r/shuru-chunk
        on r/shuru-chunk w_warm r/shuru-chunk "$WORK/cas/r-$REP"
        CHUNK_STATE=shuru-warm
    fi

    for wl in seq-read-c1 seq-read-c4 randread-qd32 randread-qd1 ttfb sparse-copy \
              seq-write-c1 seq-write-c4 randwrite-qd32 read-after-write-c1 read-after-write-c4; do
        if [ -n "$WORKLOADS" ] && [[ ",$WORKLOADS," != *",$wl,"* ]]; then continue; fi
        for ROUND in $(seq 1 "$ROUNDS"); do
            case "$wl" in
                seq-read-c1)   for key in $(rotated "${R_KEYS[@]}"); do on "$key" w_seqread "$wl" 1 "$key" "$(name "$key")"; done ;;
                seq-read-c4)   for key in $(rotated "${R_KEYS[@]}"); do on "$key" w_seqread "$wl" 4 "$key" "$(name "$key")"; done ;;
                randread-qd32) for key in $(rotated "${R_KEYS[@]}"); do on "$key" w_fio "$wl" randread 32 "$key" "$(name "$key")"; done ;;
                randread-qd1)  for key in $(rotated "${R_KEYS[@]}"); do on "$key" w_fio "$wl" randread 1 "$key" "$(name "$key")"; done ;;
                ttfb)          for key in $(rotated "${R_KEYS[@]}"); do on "$key" w_ttfb "$key" "$(name "$key")"; done ;;
                sparse-copy)
                    for key in $(rotated "${S_KEYS[@]}"); do
                        if [ "${key#*/}" = shuru-chunk ]; then
                            # first copy of the rep on the lazy server is cold, every later one warm
                            if [ "$ROUND" = 1 ]; then on "$key" w_sparse "$key" shuru-cold; fi
                            on "$key" w_sparse "$key" shuru-warm
                        else
                            on "$key" w_sparse "$key" "$(name "$key")"
                        fi
                    done ;;
                seq-write-c1)  for key in $(rotated "${W_KEYS[@]}"); do fresh_write_target "$key" "$wl"; on "$key" w_seqwrite "$wl" 1 "$key" "$(name "$key")"; done ;;
                seq-write-c4)  for key in $(rotated "${W_KEYS[@]}"); do fresh_write_target "$key" "$wl"; on "$key" w_seqwrite "$wl" 4 "$key" "$(name "$key")"; done ;;
                randwrite-qd32) for key in $(rotated "${W_KEYS[@]}"); do fresh_write_target "$key" "$wl"; on "$key" w_fio "$wl" randwrite 32 "$key" "$(name "$key")"; done ;;
                read-after-write-c1) for key in $(rotated "${W_KEYS[@]}"); do fresh_write_target "$key" "$wl"; on "$key" w_readafterwrite "$wl" 1 "$key" "$(name "$key")"; done ;;
                read-after-write-c4) for key in $(rotated "${W_KEYS[@]}"); do fresh_write_target "$key" "$wl"; on "$key" w_readafterwrite "$wl" 4 "$key" "$(name "$key")"; done ;;
            esac
        done
    done
    ROUND=0

    # peak RSS of every server over the whole rep (informational, not a target)
    for key in "${R_KEYS[@]}" "${W_KEYS[@]}"; do
        record "peak-rss-${key%%/*}" "$(name "$key")" "$(peak_rss_mib "${GROUP[$key]}")" MiB
    done
    stop_all
done

if [ "$SHURU" = 1 ]; then engine_figures; fi
REP=0; ROUND=0
T_END=$EPOCHREALTIME
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# Report
META="$RES/meta.json"
"$PY" - "$META" <<EOF
import json, sys
json.dump({
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "host": "$(uname -n)", "kernel": "$(uname -sr)", "nproc": "$(nproc)",
  "cpu": """$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')""",
  "mem": "$(free -g | awk '/^Mem:/{print $2 " GiB"}')",
  "fs": "$(df -T "$WORK" | awk 'NR==2{print $2}') ($WORK)",
  "configuration": "$CONFIGURATION", "quick": $QUICK, "peers_only": $PEERS_ONLY, "fake": $FAKE,
  "reps": $REPS, "rounds": $ROUNDS, "size_mib": $SIZE_MIB, "fio_runtime": $FIO_RUNTIME, "fio_ramp": $FIO_RAMP,
  "ttfb_n": $TTFB_N, "restarts": $RESTARTS, "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER", "elapsed_s": $(awk -v a="$T_START" -v b="$T_END" 'BEGIN{printf "%.0f", b-a}'),
  "versions": {
    "nbdkit": "$(nbdkit --version | head -1)",
    "qemu-nbd": "$(qemu-nbd --version | head -1)",
    "nbdcopy": "$(nbdcopy --version | head -1)",
    "fio": "$(fio --version)",
    "ShuruStore": "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)",
  },
  "peer_cmds": {
    "nbdkit": "nbdkit -U SOCK -f --exit-with-parent file IMG",
    "qemu-nbd": "qemu-nbd -k SOCK -f raw -t -e 16 IMG",
  },
  "shuru_cmds": {
    "shuru-flat": "dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath SOCK -ImagePath IMG",
    "shuru-cold": "dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath SOCK -RootfsPath IMG -CasPath EMPTYDIR   (first full read)",
    "shuru-warm": "same server as shuru-cold, after its first full read",
    "shuru-cow": "dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath SOCK -RootfsPath IMG -CasPath EMPTYDIR   (writes only; every write measurement: a new empty CAS; peers and shuru-flat: a new sparse image)",
  },
}, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$(dirname "$OUT")"
"$PY" "$BENCH/report.py" --raw "$RAW" --meta "$META" --commands "$COMMANDS" --out "$OUT"
cp "$RAW" "${OUT%.md}-raw.csv"
log "done in $(awk -v a="$T_START" -v b="$T_END" 'BEGIN{printf "%.0f", b-a}') s: $OUT (raw: ${OUT%.md}-raw.csv, $RES)"
