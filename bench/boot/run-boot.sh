#!/usr/bin/env bash
# End-to-end guest boot figure (issue #20): bench/boot/boot.ps1 in one pwsh process, its BOOT
# lines to bench/boot/results/boot.csv, then report.py fills the boot table of docs/scale.md.
#
# usage: bash bench/boot/run-boot.sh [--reps N]      (BOOT_REPS, default 3)
# The module must be staged (build.ps1 -Task Build); qemu-system-x86_64 runs the guest (TCG).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/boot"
REPS="${BOOT_REPS:-3}"
[ "${1:-}" = --reps ] && REPS="$2"
[ -f "$ROOT/out/ShuruStore/ShuruStore.psd1" ] || { echo "run-boot: stage the module first (build.ps1 -Task Build)" >&2; exit 1; }
WORK="$(mktemp -d /var/tmp/shuru-boot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$HERE/results"
CSV="$HERE/results/boot.csv"
echo "mode,rep,vda_s,booted_s,load1,date" > "$CSV"
D="$(date -u '+%Y-%m-%d %H:%M')"
(cd "$ROOT" && dotnet pwsh -NoProfile -File "$HERE/boot.ps1" -WorkDir "$WORK" -Reps "$REPS") | while read -r line; do
    case "$line" in
        "BOOT "*) read -r _ mode rep vda booted load <<<"$line"; echo "$mode,$rep,$vda,$booted,$load,$D" >> "$CSV"
                  printf '[%s] %s rep %s: /dev/vda ready %ss, booted (VERIFY-OK) %ss, load %s\n' "$(date -u +%H:%M:%S)" "$mode" "$rep" "$vda" "$booted" "$load" >&2 ;;
    esac
done
/usr/bin/python3 "$HERE/report.py" --csv "$CSV" --md "$ROOT/docs/scale.md"
