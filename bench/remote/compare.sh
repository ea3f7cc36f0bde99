#!/usr/bin/env bash
# Raw object-store rates through boto3 (raw_rate.py) and through ShuruStore's S3ObjectStore
# (ObjectStoreBench), run alternately so that both see the same machine load, then one table
# of medians (summarize.py). Starts the test cluster when it is not running.
#
#   bash bench/remote/compare.sh [ROUNDS] [OUTDIR] [-- extra arguments for both harnesses]
#
# ROUNDS (default 3) pairs of runs, one rep each; results in OUTDIR (default
# out/bench-remote): boto3-N.json, net-N.json, summary.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
out=${2:-out/bench-remote}
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
bash tools/ceph/cluster.sh start
eval "$(bash tools/ceph/cluster.sh env)"
dotnet build -c Release bench/remote/ObjectStoreBench --nologo -v quiet >/dev/null
for i in $(seq 1 "$rounds"); do
  echo "round $i/$rounds: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  /usr/bin/python3 bench/remote/raw_rate.py --reps 1 --out "$out/boto3-$i.json" "$@" >/dev/null
  dotnet run -c Release --no-build --project bench/remote/ObjectStoreBench -- --reps 1 --out "$out/net-$i.json" "$@" >/dev/null
done
/usr/bin/python3 bench/remote/summarize.py "$out" | tee "$out/summary.md"
