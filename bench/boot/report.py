#!/usr/bin/env python3
"""bench/boot/results/boot.csv -> the boot table of docs/scale.md (between the scale:boot
markers): per mode the median (min-max) of the time to /dev/vda ready and to the booted guest,
and the ratio of the medians to nbdkit's. Standard library only.
usage: report.py --csv FILE --md docs/scale.md
"""
import argparse
import csv
import os
import re
import statistics
from collections import defaultdict

ORDER = ["flat", "cold", "warm", "nbdkit"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()
    vda, booted, loads, dates = defaultdict(list), defaultdict(list), [], set()
    by_rep = defaultdict(dict)    # rep -> mode -> booted
    with open(a.csv) as f:
        for r in csv.DictReader(f):
            by_rep[r["rep"]][r["mode"]] = float(r["booted_s"])
            vda[r["mode"]].append(float(r["vda_s"]))
            booted[r["mode"]].append(float(r["booted_s"]))
            loads.append(float(r["load1"]))
            dates.add(r["date"])
    modes = [m for m in ORDER if m in booted] + [m for m in booted if m not in ORDER]
    ref = statistics.median(booted["nbdkit"]) if booted.get("nbdkit") else None
    lines = ["| mode | /dev/vda ready (s) | booted, files verified (s) | disk part: booted - vda (s) | booted / nbdkit (medians) | paired: median of booted / nbdkit of the same rep (min-max) | boots |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for m in modes:
        v, b = vda[m], booted[m]
        d = [y - x for x, y in zip(v, b)]
        pr = [reps[m] / reps["nbdkit"] for reps in by_rep.values() if m in reps and "nbdkit" in reps]
        lines.append("| %s | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %s | %s | %d |" % (
            m, statistics.median(v), min(v), max(v), statistics.median(b), min(b), max(b),
            statistics.median(d), min(d), max(d),
            "%.2f" % (statistics.median(b) / ref) if ref else "-",
            "%.2f (%.2f-%.2f)" % (statistics.median(pr), min(pr), max(pr)) if pr else "-", len(b)))
    body = "\n".join(lines) + "\n\nMedian (min-max) over the reps, measured %s UTC; load average (1 min) at the end of each boot %.1f-%.1f (median %.1f) on 2 cores.\n" % (
        ", ".join(sorted(dates)), min(loads), max(loads), statistics.median(loads))
    begin, end = "<!-- scale:boot -->", "<!-- /scale:boot -->"
    block = "%s\n%s%s" % (begin, body, end)
    text = open(a.md).read() if os.path.exists(a.md) else ""
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    with open(a.md, "w") as f:
        f.write(text)
    print(body)


if __name__ == "__main__":
    main()
