#!/usr/bin/python3
"""Medians of the runs in a compare.sh output folder, as a Markdown table: boto3 and
S3ObjectStore side by side per phase, with the ratio of S3ObjectStore to boto3."""
import glob
import json
import os
import statistics
import sys


def load(folder, prefix):
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, f"{prefix}-*.json"))):
        with open(path) as f:
            runs.extend(json.load(f)["runs"])
    return runs


def medians(runs):
    out = {}
    for phase in dict.fromkeys(r["phase"] for r in runs):
        rows = [r for r in runs if r["phase"] == phase]
        out[phase] = {k: statistics.median(r[k] for r in rows) for k in
                      ("mib_per_s", "objects_per_s", "latency_ms_p50", "latency_ms_p99", "cpu_s")}
        out[phase]["n"] = len(rows)
        out[phase]["requests"] = rows[0]["requests"]
        out[phase]["bytes"] = rows[0]["bytes_per_request"]
    return out


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "out/bench-remote"
    py, net = medians(load(folder, "boto3")), medians(load(folder, "net"))
    print("| phase | requests x size | boto3 MiB/s | S3ObjectStore MiB/s | ratio | boto3 obj/s | S3ObjectStore obj/s "
          "| p50 / p99 ms boto3 | p50 / p99 ms S3ObjectStore | CPU s boto3 / S3ObjectStore | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase in py:
        a, b = py[phase], net.get(phase)
        if b is None:
            continue
        size = f"{a['bytes'] // 1024} KiB" if a["bytes"] < 1 << 20 else f"{a['bytes'] >> 20} MiB"
        print(f"| {phase} | {a['requests']} x {size} | {a['mib_per_s']:.1f} | {b['mib_per_s']:.1f} | "
              f"{b['mib_per_s'] / a['mib_per_s']:.2f} | {a['objects_per_s']:.0f} | {b['objects_per_s']:.0f} | "
              f"{a['latency_ms_p50']:.1f} / {a['latency_ms_p99']:.1f} | {b['latency_ms_p50']:.1f} / {b['latency_ms_p99']:.1f} | "
              f"{a['cpu_s']:.2f} / {b['cpu_s']:.2f} | {a['n']} / {b['n']} |")


if __name__ == "__main__":
    main()
