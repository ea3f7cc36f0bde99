#!/usr/bin/python3
"""Turns bench/run-bench.sh's raw.csv into docs/benchmarks.md (+ an SVG chart beside it).

Samples are rep.round. Best peer = the peer with the best median (highest for MiB/s and IOPS,
lowest for us and ms). Ratio = median over the samples of (ShuruStore sample / best peer's sample
of the same rep.round), which cancels the machine's slow drifts; the ratio of the medians is
shown too. For lower-is-better figures the target reads "<= x".
"""
import argparse
import csv
import json
import os
import statistics
from collections import defaultdict

PEERS = ["nbdkit", "qemu-nbd"]
SHURU = ["shuru-flat", "shuru-cold", "shuru-warm", "shuru-cow"]
LOWER_BETTER = {"us", "ms"}

WORKLOADS = [  # id, title
    ("seq-read-c1", "sequential read, nbdcopy, 1 connection"),
    ("seq-read-c4", "sequential read, nbdcopy, 4 connections"),
    ("cold-read", "first full read of the base (ShuruStore lazy ingestion), nbdcopy -C 4"),
    ("randread-qd32", "fio 4 KiB random read, QD 32"),
    ("randread-qd1", "fio 4 KiB random read, QD 1 (mean latency)"),
    ("seq-write-c1", "sequential write + flush, nbdcopy, 1 connection"),
    ("seq-write-c4", "sequential write + flush, nbdcopy, 4 connections"),
    ("randwrite-qd32", "fio 4 KiB random write, QD 32"),
    ("read-after-write-c1", "sequential read of what was just written (fresh target, nbdcopy write + flush, then read), 1 connection"),
    ("read-after-write-c4", "sequential read of what was just written (fresh target, nbdcopy write + flush, then read), 4 connections"),
    ("sparse-copy", "sparse copy (block status, zeros), nbdcopy to null:"),
    ("ttfb", "time to first byte: connect + opt_go + pread 4 KiB (median of N)"),
    ("ingest-wait", "seconds after the cold read until lazy ingestion had stored every base chunk (informational)"),
    ("peak-rss-r", "peak RSS of the read servers over a rep (informational)"),
    ("peak-rss-w", "peak RSS of the write servers over a rep (informational)"),
]

# (server, workload, op, threshold, baseline): baseline "peer" = best peer of the same workload,
# or (server, workload) of another row
TARGETS = [  # round two (issue #20): every workload, chunk store included, at least level with the best peer
    ("shuru-warm", "seq-read-c1", ">=", 1.0, "peer"),
    ("shuru-warm", "seq-read-c4", ">=", 1.0, "peer"),
    ("shuru-warm", "randread-qd32", ">=", 1.0, "peer"),
    ("shuru-warm", "randread-qd1", "<=", 1.0, "peer"),
    ("shuru-cow", "seq-write-c1", ">=", 1.0, "peer"),
    ("shuru-cow", "seq-write-c4", ">=", 1.0, "peer"),
    ("shuru-cow", "randwrite-qd32", ">=", 1.0, "peer"),
    ("shuru-cow", "read-after-write-c1", ">=", 1.0, "peer"),
    ("shuru-cow", "read-after-write-c4", ">=", 1.0, "peer"),
    ("shuru-warm", "sparse-copy", "<=", 1.0, "peer"),
    ("shuru-warm", "ttfb", "<=", 1.0, "peer"),
    ("shuru-cold", "cold-read", ">=", 0.8, ("shuru-flat", "seq-read-c4")),
] + [
    ("shuru-flat", w, "<=" if w in ("randread-qd1", "sparse-copy", "ttfb") else ">=", 1.0, "peer")
    for w in ("seq-read-c1", "seq-read-c4", "randread-qd32", "randread-qd1", "seq-write-c1",
              "seq-write-c4", "randwrite-qd32", "read-after-write-c1", "read-after-write-c4", "sparse-copy", "ttfb")
]


def quartiles(xs):
    xs = sorted(xs)
    def q(p):
        i = p * (len(xs) - 1)
        lo = int(i)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)
    return q(0.25), q(0.75)


def fmt(v, unit):
    if v is None:
        return "—"
    if unit in ("IOPS", "MiB"):
        return f"{v:,.0f}"
    if unit in ("MiB/s",):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--commands", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    meta = json.load(open(a.meta))
    vals = defaultdict(list)     # (workload, server) -> [values]
    by_sample = defaultdict(dict)  # (workload, server) -> {sample: value}
    units = {}
    for r in csv.DictReader(open(a.raw)):
        k = (r["workload"], r["server"])
        vals[k].append(float(r["value"]))
        by_sample[k][r["sample"]] = float(r["value"])
        units[r["workload"]] = r["unit"]
    med = {k: statistics.median(v) for k, v in vals.items()}
    cmds = {}
    for line in open(a.commands):
        if "\t" in line:
            w, c = line.rstrip("\n").split("\t", 1)
            cmds[w] = c

    iqr = {}

    def lower(w):
        return units.get(w) in LOWER_BETTER

    def best_peer(w):
        xs = [(med[(w, p)], p) for p in PEERS if (w, p) in med]
        if not xs:
            return None, None
        return (min(xs) if lower(w) else max(xs))

    def ratio(srv, w, base="peer"):
        """(paired ratio, ratio of medians, baseline name, number of pairs)"""
        if (w, srv) not in med:
            return None, None, None, 0
        if base == "peer":
            b, bn = best_peer(w)
            bk = (w, bn)
        else:
            bn = f"{base[0]} {base[1]}"
            bk = (base[1], base[0])
            b = med.get(bk)
        if b in (None, 0):
            return None, None, bn, 0
        mine, theirs = by_sample[(w, srv)], by_sample.get(bk, {})
        pairs = [mine[k] / theirs[k] for k in mine if theirs.get(k)]
        rom = med[(w, srv)] / b
        iqr[(srv, w)] = quartiles(pairs) if len(pairs) >= 4 else None
        return (statistics.median(pairs) if pairs else rom), rom, bn, len(pairs)

    L = []
    L.append("# ShuruStore benchmarks")
    L.append("")
    L.append("Generated by `bench/run-bench.sh` (`build.ps1 -Task Bench`). ShuruStore against the servers "
             "people would use instead — nbdkit's file plugin and qemu-nbd — on the same image, the same "
             "machine and in the same run, interleaved (every rep starts every server fresh; within a rep each "
             "workload runs for a few rounds, each round on every server in an order rotated at every round, "
             "before the next workload). Every write measurement starts its server on fresh storage "
             "(peers and shuru-flat: a new sparse image; shuru-cow: a new empty chunk store), and servers "
             "get a few seconds to finish starting up before anything is measured (`settle` in the script). "
             "These machines are noisy: only the ratios within one run mean anything; compare runs by "
             "their ratios, never by their absolute numbers.")
    L.append("")
    m = meta
    L.append(f"- date: {m['date']}; host: {m['host']}; {m['kernel']}; nproc {m['nproc']}; {m['cpu']}; RAM {m['mem']}")
    L.append(f"- work dir filesystem: {m['fs']}")
    L.append(f"- disks: {m['size_mib']} MiB; reps (servers restarted): {m['reps']}; rounds per rep: {m['rounds']}; "
             f"fio: {m['fio_runtime']} s per run; "
             f"build configuration {m['configuration']}; ShuruStore commit {m['versions']['ShuruStore']}"
             + ("; **quick smoke run (--quick): not a measurement**" if m["quick"] else ""))
    L.append("- " + "; ".join(f"{k} {v}" for k, v in m["versions"].items() if k != "ShuruStore"))
    L.append(f"- whole run: {m['elapsed_s']} s; load average before / after: {m['load_before']} / {m['load_after']}")
    if m.get("restarts"):
        L.append(f"- **{m['restarts']} server(s) died during the run and were restarted** (a measurement "
                 "that failed because of it was retried once; see the run's log)")
    if m.get("fake") and not m["peers_only"]:
        L.append("- **HARNESS SELF-TEST (BENCH_FAKE_SHURU=1): the \"ShuruStore\" figures are nbdkit's "
                 "(bench/fake-serve.sh), not ShuruStore's. Do not publish.**")
    if m["peers_only"]:
        L.append("- **ShuruStore was not measured in this run (`--peers-only`)**: the peer columns are real, "
                 "every ShuruStore figure and ratio is \"—\".")
    L.append("")

    # --- targets
    L.append("## Targets (ratio ShuruStore / best peer)")
    L.append("")
    L.append("Throughput ratios (MiB/s, IOPS) must be at least the target; latency and time ratios (µs, ms) "
             "at most. \"ratio (paired)\" is the median over samples of ShuruStore's sample divided by the "
             "best peer's sample of the same rep and round (seconds apart), the figure the result is judged "
             "on; \"paired IQR\" is the interquartile range of those per-sample ratios, and a result is marked "
             "\"within noise\" when the target lies inside it; \"ratio of medians\" divides the two medians. The cold read is compared with ShuruStore's "
             "flat `seq-read-c4` of the same rep (its first round, right after the cold read).")
    L.append("")
    L.append("| mode | workload | ShuruStore | baseline | ratio (paired) | paired IQR | ratio of medians | target | result |")
    L.append("|---|---|---:|---:|---:|---|---:|---:|---|")
    chart = []
    for srv, w, op, th, base in TARGETS:
        u = units.get(w, "")
        r, rom, bn, npairs = ratio(srv, w, base)
        if base == "peer":
            b, bn2 = best_peer(w)
            bstr = f"{fmt(b, u)} {u} ({bn2})" if b is not None else "—"
        else:
            b = med.get((base[1], base[0]))
            bstr = f"{fmt(b, u)} {u} ({base[0]} {base[1]})" if b is not None else "—"
        v = med.get((w, srv))
        if r is None:
            res = "not measured"
        else:
            ok = r >= th if op == ">=" else r <= th
            res = "pass" if ok else "**miss**"
            q = iqr.get((srv, w))
            if q and q[0] <= th <= q[1]:
                res += " (within noise)"
            chart.append((f"{srv} {w}", r if op == ">=" else 1 / r, th if op == ">=" else 1 / th, ok))
        L.append(f"| {srv} | {w} | {fmt(v, u) + ' ' + u if v is not None else '—'} | {bstr} | "
                 f"{'—' if r is None else f'{r:.2f}'} | "
                 f"{'—' if not iqr.get((srv, w)) else '%.2f–%.2f' % iqr[(srv, w)]} | {'—' if rom is None else f'{rom:.2f}'} | {op.replace('>=', '≥').replace('<=', '≤')} {th} | {res} |")
    L.append("")

    # --- all figures
    L.append("## All figures (medians over reps)")
    L.append("")
    L.append("| workload | server | median | unit | min–max | samples | ratio vs best peer (paired) |")
    L.append("|---|---|---:|---|---|---:|---:|")
    for w, _ in WORKLOADS:
        u = units.get(w)
        if u is None:
            continue
        for srv in PEERS + SHURU:
            if (w, srv) not in vals:
                continue
            xs = vals[(w, srv)]
            if w.startswith("peak-rss") or w == "ingest-wait":
                rs = "—"
            else:
                r, _, _, _ = ratio(srv, w)
                rs = "—" if r is None else f"{r:.2f}"
                if srv in PEERS and best_peer(w)[1] == srv:
                    rs = "1.00 (best peer)"
            L.append(f"| {w} | {srv} | {fmt(med[(w, srv)], u)} | {u} | {fmt(min(xs), u)}–{fmt(max(xs), u)} | {len(xs)} | {rs} |")
    L.append("")

    engine = sorted(k for k in med if k[0].startswith("engine-"))
    L.append("## Engine-level figures")
    L.append("")
    if engine:
        L.append("ShuruStore alone, once per run, after the reps (`bench/engine.ps1`):")
        L.append("")
        L.append("| figure | value | unit |")
        L.append("|---|---:|---|")
        for w, srv in engine:
            L.append(f"| {w} | {fmt(med[(w, srv)], units[w])} | {units[w]} |")
    else:
        L.append("Not measured in this run (`bench/run-bench.sh --engine` or `BENCH_ENGINE=1` runs "
                 "`bench/engine.ps1`): checkpoint of a 4 GiB full disk, start from a 4 GiB index, peak RSS "
                 "while writing 4 GiB into a fresh copy-on-write layer.")
    L.append("")

    # --- what was run
    L.append("## What was run")
    L.append("")
    L.append("Servers (one process each per rep, on Unix sockets, all started before the rep's first workload):")
    L.append("")
    for k, c in m["peer_cmds"].items():
        L.append(f"- {k}: `{c}`")
    for k, c in m["shuru_cmds"].items():
        L.append(f"- {k}: `{c}`")
    L.append("")
    L.append("Disks: `IMG` = incompressible random data in which every 8th MiB is written as zeros "
             "(allocated, so every server really reads it and lazy ingestion both stores and skips); the "
             "read servers serve `IMG` itself, each write server a copy of it of its own (ShuruStore "
             "chunk store: a fresh copy-on-write layer over `IMG` in an empty CAS); the sparse disk is "
             "a sparse file of the same size with 1/32 of it random data in 1 MiB extents, the rest holes. "
             "Every file is page-cache resident: the servers are measured, not the disk.")
    L.append("")
    L.append("Workloads (`$URI` = the server's `nbd+unix:///?socket=...` URI):")
    L.append("")
    L.append("| workload | what | command |")
    L.append("|---|---|---|")
    titles = dict(WORKLOADS)
    for w, c in cmds.items():
        if w == "engine":
            continue
        L.append(f"| {w} | {titles.get(w, '')} | `{c}` |")
    L.append("| peak-rss-r / -w | " + titles["peak-rss-r"].replace(" of the read servers", "") +
             " | largest `VmHWM` in the server's process group at the end of a rep |")
    L.append("")
    L.append("Raw results: the CSV beside this file (`rep,workload,server,value,unit,aux`).")
    L.append("")

    svg = os.path.splitext(a.out)[0] + ".svg"
    if chart:
        write_svg(svg, chart)
        L.insert(L.index("## All figures (medians over reps)"),
                 f"![ratios vs best peer]({os.path.basename(svg)})\n")
    with open(a.out, "w") as f:
        f.write("\n".join(L))


def write_svg(path, rows):
    """Horizontal bars: 'goodness' ratio (>1 better than the best peer), target as a tick."""
    h, bh, left, width = 24, 16, 260, 420
    top = 30
    mx = max(2.0, max(max(r, t) for _, r, t, _ in rows) * 1.05)
    sx = lambda v: left + v / mx * width
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{top + h * len(rows) + 30}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="18">ShuruStore vs best peer (&gt; 1 = better; latencies inverted); | = target</text>',
           f'<line x1="{sx(1)}" y1="{top - 4}" x2="{sx(1)}" y2="{top + h * len(rows)}" stroke="#888" stroke-dasharray="3,3"/>']
    for i, (label, r, t, ok) in enumerate(rows):
        y = top + i * h
        out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1, sx(r) - left):.1f}" height="{bh}" '
                   f'fill="{"#4a8" if ok else "#d54"}"/>')
        out.append(f'<line x1="{sx(t):.1f}" y1="{y - 2}" x2="{sx(t):.1f}" y2="{y + bh + 2}" stroke="#000" stroke-width="2"/>')
        out.append(f'<text x="{sx(r) + 4:.1f}" y="{y + 12}">{r:.2f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
