#!/bin/bash
# The flat image's write place in the benchmark, taken alternately by ShuruStore and by nbdkit
# standing in for it (BENCH_FAKE_SHURU=1), each beside nbdkit in its own place: shows whether
# the flat write ratio measures the server or the place. Each run is a focused
# `run-bench.sh --reps 1 --rounds 3 --workloads $WL` of the staged out/ShuruStore.
REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$REPO"
OUT=${OUT:-/var/tmp/flatslot}; mkdir -p "$OUT"
for i in $(seq 1 ${N:-2}); do for fake in 0 1; do
  f="$OUT/run-$i-fake$fake"
  BENCH_FAKE_SHURU=$fake BENCH_ENGINE=0 bash bench/run-bench.sh Release --reps 1 --rounds 3 \
      --workloads ${WL:-seq-write-c1} --out "$f.md" > "$f.log" 2>&1 || { echo "run $f failed"; continue; }
  awk -F, -v wl=${WL:-seq-write-c1} -v who=$([ $fake = 1 ] && echo "nbdkit-in-flat-place" || echo "shuru-flat") '
      $2!=wl { next } $3=="nbdkit" { nk[$1]=$4 } $3=="shuru-flat" { fl[$1]=$4 }
      END { for (r in fl) if (r in nk) printf "%s round %s: flat place %s MiB/s, nbdkit %s MiB/s, ratio %.2f\n", who, r, fl[r], nk[r], fl[r]/nk[r] }' \
      "$f-raw.csv" | sort
done; done
