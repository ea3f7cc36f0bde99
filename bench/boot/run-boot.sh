#!/usr/bin/env bash
# End-to-end guest boot figure (issue #20): bench/boot/boot.ps1 in one pwsh process, its BOOT
# lines to bench/boot/results/boot.csv, then report.py fills the boot table of docs/scale.md.
#
# usage: bash bench/boot/run-boot.sh [--reps N] [--append]   (BOOT_REPS, default 3)
# The module must be staged (build.ps1 -Task Build); qemu-system-x86_64 runs the guest (TCG).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/boot"
REPS="${BOOT_REPS:-3}"; APPEND=0
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift ;;
        --append) APPEND=1 ;;   # add reps to bench/boot/results/boot.csv instead of starting it anew
        *) echo "run-boot: unknown argument $1" >&2; exit 2 ;;
    esac; shift
done
[ -f "$ROOT/out/ShuruStore/ShuruStore.psd1" ] || { echo "run-boot: stage the module first (build.ps1 -Task Build)" >&2; exit 1; }
WORK="$(mktemp -d /var/tmp/shuru-boot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$HERE/results"
CSV="$HERE/results/boot.csv"
FIRST=1
if [ "$APPEND" = 1 ] && [ -f "$CSV" ]; then
    FIRST=$(( $(awk -F, 'NR>1 && $2>m {m=$2} END{print m+0}' "$CSV") + 1 ))
else
    echo "mode,rep,vda_s,booted_s,load1,date" > "$CSV"
fi
D="$(date -u '+%Y-%m-%d %H:%M')"
(cd "$ROOT" && dotnet pwsh -NoProfile -File "$HERE/boot.ps1" -WorkDir "$WORK" -Reps "$REPS" -FirstRep "$FIRST") | while read -r line; do
    case "$line" in
        "BOOT "*) read -r _ mode rep vda booted load <<<"$line"; echo "$mode,$rep,$vda,$booted,$load,$D" >> "$CSV"
                  printf '[%s] %s rep %s: /dev/vda ready %ss, booted (VERIFY-OK) %ss, load %s\n' "$(date -u +%H:%M:%S)" "$mode" "$rep" "$vda" "$booted" "$load" >&2 ;;
    esac
done
/usr/bin/python3 "$HERE/report.py" --csv "$CSV" --md "$ROOT/docs/scale.md"
