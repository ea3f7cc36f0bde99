#!/usr/bin/env python3
"""bench/scale/results/raw.csv -> docs/scale-disk.svg, docs/scale-written.svg,
docs/scale-clients.svg and the tables of docs/scale.md (between the scale:tables markers).

Every panel is log-log: the measured medians (over reps) beside the linear expectation, a line
of slope 1 through the smallest point (cost proportional to the work). A curve steeper than that
line grows faster than the work. The tables give the same medians, the cost per unit of work
and the log-log slope between the first and the last point (1.0 = linear).

Standard library only (the SVG is written by hand).
usage: plot.py --raw FILE --docs DIR
"""
import argparse
import csv
import math
import os
import re
import statistics
from collections import defaultdict

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def load(path):
    data = defaultdict(list)       # (series, x, metric) -> [values]
    loads = defaultdict(list)      # series -> [load1]
    skipped = []
    per_rep = defaultdict(dict)    # (series, x, rep) -> {metric: value}
    with open(path) as f:
        for row in csv.DictReader(f):
            s = row["series"]
            if row["metric"] == "skipped":
                skipped.append(row)
                continue
            x = float(row["disk_gib"]) if s == "disk" else float(row["written_gib"])
            try:
                data[(s, x, row["metric"])].append(float(row["value"]))
                per_rep[(s, x, row["rep"])][row["metric"]] = float(row["value"])
                loads[s].append(float(row["load1"]))
            except ValueError:
                pass
    # Memory the disk costs: the VmHWM above the same process's VmHWM before the server started.
    for (s, x, r), m in list(per_rep.items()):
        for derived, top, base in (("rss-write-net", "rss-write", "rss-idle"), ("rss-started-net", "rss-started", "rss-idle2")):
            if top in m and base in m:
                data[(s, x, derived)].append(m[top] - m[base])
    return data, loads, skipped


def med(v):
    return statistics.median(v) if v else None


def xs_of(data, series, metric):
    return sorted({x for (s, x, m) in data if s == series and m == metric})


def curve(data, series, metric, scale=1.0):
    pts = []
    for x in xs_of(data, series, metric):
        v = data[(series, x, metric)]
        pts.append((x, med(v) * scale, min(v) * scale, max(v) * scale, len(v)))
    return pts


def slope(pts):
    """log-log slope between the first and the last point (1.0 = cost proportional to work)."""
    if len(pts) < 2 or pts[0][1] <= 0 or pts[-1][1] <= 0:
        return None
    return math.log(pts[-1][1] / pts[0][1]) / math.log(pts[-1][0] / pts[0][0])


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


class Panel:
    def __init__(self, title, unit, curves, xlabel):
        self.title, self.unit, self.curves, self.xlabel = title, unit, curves, xlabel


def svg_panels(panels, cols, path, heading):
    pw, ph = 330, 250          # panel size
    ml, mr, mt, mb = 58, 12, 30, 40
    rows = (len(panels) + cols - 1) // cols
    W, H = cols * pw, rows * ph + 46
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="11">' % (W, H, W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="18" font-size="14" font-weight="bold">%s</text>' % heading,
           '<text x="10" y="34" fill="#555">solid: measured median (bars: min-max over reps); '
           'dashed: linear expectation (slope 1 through the smallest point); log-log axes</text>']
    for i, p in enumerate(panels):
        ox, oy = (i % cols) * pw, 46 + (i // cols) * ph
        x0, y0, x1, y1 = ox + ml, oy + mt, ox + pw - mr, oy + ph - mb
        allx = [pt[0] for _, pts in p.curves for pt in pts]
        ally = [v for _, pts in p.curves for pt in pts for v in (pt[2], pt[3]) if v > 0]
        # linear expectations
        lin = []
        for name, pts in p.curves:
            if pts and pts[0][1] > 0:
                a = pts[0]
                lin.append([(x, a[1] * x / a[0]) for x in sorted({pt[0] for pt in pts})])
                ally += [v for _, v in lin[-1]]
            else:
                lin.append([])
        if not allx or not ally:
            continue
        lxmin, lxmax = math.log10(min(allx)), math.log10(max(allx))
        if lxmax == lxmin:
            lxmax += 1
        lymin, lymax = math.floor(math.log10(min(ally))), math.ceil(math.log10(max(ally)))
        if lymax == lymin:
            lymax += 1
        X = lambda x: x0 + (math.log10(x) - lxmin) / (lxmax - lxmin) * (x1 - x0)
        Y = lambda y: y1 - (math.log10(y) - lymin) / (lymax - lymin) * (y1 - y0)
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (x0, oy + 18, p.title))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (x0, y0, x1 - x0, y1 - y0))
        for e in range(lymin, lymax + 1):
            for k in (1, 2, 5) if lymax - lymin <= 3 else (1,):
                v = k * 10 ** e
                if 10 ** lymin <= v <= 10 ** lymax:
                    yy = Y(v)
                    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>' % (x0, yy, x1, yy))
                    out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#333">%s</text>' % (x0 - 4, yy + 4, fmt(v) if v < 1e5 else "%.0e" % v))
        for x in sorted(set(allx)):
            xx = X(x)
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (xx, y0, xx, y1))
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (xx, y1 + 14, "%g" % x))
        out.append('<text x="%d" y="%d" text-anchor="middle" fill="#333">%s</text>' % ((x0 + x1) / 2, y1 + 30, p.xlabel))
        out.append('<text x="%d" y="%d" fill="#333" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>'
                   % (ox + 12, (y0 + y1) / 2, ox + 12, (y0 + y1) / 2, p.unit))
        for j, (name, pts) in enumerate(p.curves):
            c = COLORS[j % len(COLORS)]
            if lin[j]:
                out.append('<polyline fill="none" stroke="%s" stroke-dasharray="5,4" stroke-width="1.2" points="%s"/>'
                           % (c, " ".join("%.1f,%.1f" % (X(x), Y(y)) for x, y in lin[j])))
            good = [pt for pt in pts if pt[1] > 0]
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (c, " ".join("%.1f,%.1f" % (X(pt[0]), Y(pt[1])) for pt in good)))
            for pt in good:
                out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (X(pt[0]), Y(pt[1]), c))
                if pt[4] > 1 and pt[2] > 0:
                    out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>'
                               % (X(pt[0]), Y(pt[2]), X(pt[0]), Y(pt[3]), c))
            out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (x0 + 6, y0 + 14 + 13 * j, c, name))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# Panels: title, unit, [(curve label, metric, scale)]
ENGINE_PANELS = [
    ("Save-ShuruCheckpoint, nothing new", "ms", [("wall", "checkpoint-ms", 1.0), ("CPU", "checkpoint-cpu-ms", 1.0)]),
    ("Save-ShuruCheckpoint after the write", "ms", [("wall", "checkpoint-first-ms", 1.0), ("CPU", "checkpoint-first-cpu-ms", 1.0)]),
    ("index file size", "MiB", [("index", "index-bytes", 1 / 1048576)]),
    ("start from the index", "ms", [("wall", "start-ms", 1.0), ("CPU", "start-cpu-ms", 1.0)]),
    ("Get-ShuruChunkIndex", "ms", [("wall (median)", "getindex-ms", 1.0), ("CPU (1st call)", "getindex-first-cpu-ms", 1.0)]),
    ("Get-ShuruChunkIndex -AllChunks", "ms", [("wall", "getindex-all-ms", 1.0), ("CPU", "getindex-all-cpu-ms", 1.0)]),
    ("peak RSS above the idle pwsh", "MiB", [("writing server", "rss-write-net", 1.0), ("started from index", "rss-started-net", 1.0)]),
    ("bytes allocated", "MiB", [("checkpoint", "checkpoint-alloc-mib", 1.0), ("start", "start-alloc-mib", 1.0),
                                ("Get-ShuruChunkIndex", "getindex-first-alloc-mib", 1.0)]),
    ("write (nbdcopy --flush)", "s", [("wall", "write-s", 1.0)]),
]

# Table columns: heading, metric, scale
ENGINE_COLUMNS = [
    ("checkpoint ms", "checkpoint-ms", 1.0), ("checkpoint CPU ms", "checkpoint-cpu-ms", 1.0),
    ("1st checkpoint ms", "checkpoint-first-ms", 1.0), ("1st checkpoint CPU ms", "checkpoint-first-cpu-ms", 1.0),
    ("index MiB", "index-bytes", 1 / 1048576),
    ("start ms", "start-ms", 1.0), ("start CPU ms", "start-cpu-ms", 1.0), ("start alloc MiB", "start-alloc-mib", 1.0),
    ("Get-ShuruChunkIndex ms", "getindex-ms", 1.0), ("its CPU ms (1st)", "getindex-first-cpu-ms", 1.0),
    ("-AllChunks ms", "getindex-all-ms", 1.0), ("-AllChunks CPU ms", "getindex-all-cpu-ms", 1.0),
    ("RSS writing MiB", "rss-write", 1.0), ("RSS started MiB", "rss-started", 1.0), ("RSS idle pwsh MiB", "rss-idle", 1.0),
    ("RSS started - idle MiB", "rss-started-net", 1.0),
    ("write s", "write-s", 1.0),
]


def engine_section(data, loads, series, xname, docs, skipped):
    panels = []
    for title, unit, metrics in ENGINE_PANELS:
        curves = [(label, curve(data, series, m, sc)) for label, m, sc in metrics]
        curves = [(l, c) for l, c in curves if c]
        if curves:
            panels.append(Panel(title, unit, curves, xname))
    if not panels:
        return ""
    svg = "scale-%s.svg" % series
    svg_panels(panels, 3, os.path.join(docs, svg), "ShuruStore: cost against %s" % xname)
    xs = xs_of(data, series, "checkpoint-ms")
    lines = ["| %s | " % xname + " | ".join(h for h, _, _ in ENGINE_COLUMNS) + " | reps |",
             "|---:|" + "---:|" * len(ENGINE_COLUMNS) + "---:|"]
    for x in xs:
        cells = []
        for _, metric, sc in ENGINE_COLUMNS:
            v = data.get((series, x, metric))
            cells.append(fmt(med(v) * sc) if v else "-")
        n = len(data.get((series, x, "checkpoint-ms"), []))
        lines.append("| %g | %s | %d |" % (x, " | ".join(cells), n))
    sl = []
    for _, metric, sc in ENGINE_COLUMNS:
        s = slope(curve(data, series, metric, sc))
        sl.append("%.2f" % s if s is not None else "-")
    lines.append("| **log-log slope** | %s | |" % " | ".join(sl))
    ld = loads.get(series, [])
    text = ["![%s](%s)" % (svg, svg), "", "\n".join(lines), ""]
    if ld:
        text.append("Medians over the reps. Load average (1 min) while these points ran: %.1f-%.1f (median %.1f) on 2 cores." % (min(ld), max(ld), med(ld)))
    sk = [r for r in skipped if r["series"] == series]
    for r in sk:
        text.append("Skipped: %s GiB disk, %s GiB written (%s GiB free on the work dir, short of the data plus the margin)."
                    % (r["disk_gib"], r["written_gib"], r["value"]))
    return "\n".join(text) + "\n"


def clients_section(data, loads, docs):
    servers = sorted({s.split("-", 2)[2] for (s, _, _) in data if s.startswith("clients-")})
    rws = [rw for rw in ("randread", "randwrite") if any(s.startswith("clients-%s-" % rw) for (s, _, _) in data)]
    if not rws:
        return ""
    panels = []
    for rw in rws:
        panels.append(Panel("%s 4K: aggregate IOPS" % rw, "IOPS",
                            [(srv, curve(data, "clients-%s-%s" % (rw, srv), "iops")) for srv in servers], "clients"))
        panels.append(Panel("%s: mean latency" % rw, "us",
                            [(srv, curve(data, "clients-%s-%s" % (rw, srv), "lat-us")) for srv in servers], "clients"))
        panels.append(Panel("%s: server CPU per I/O" % rw, "us",
                            [(srv, curve(data, "clients-%s-%s" % (rw, srv), "cpu-us-per-io")) for srv in servers], "clients"))
    svg = "scale-clients.svg"
    svg_panels(panels, 3, os.path.join(docs, svg), "Concurrent clients, one NBD connection each (fio, QD1 per client)")
    lines = ["| workload | server | clients | IOPS | x 1 client | mean latency (us) | p99 (us) | server CPU / I/O (us) | server VmHWM (MiB) | reps |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rw in rws:
        for srv in servers:
            s = "clients-%s-%s" % (rw, srv)
            one = med(data.get((s, 1.0, "iops"), []))
            for x in xs_of(data, s, "iops"):
                g = lambda m: med(data.get((s, x, m), []))
                lines.append("| %s | %s | %g | %s | %s | %s | %s | %s | %s | %d |" % (
                    rw, srv, x, fmt(g("iops")), "%.2f" % (g("iops") / one) if one else "-", fmt(g("lat-us")),
                    fmt(g("p99-us")), fmt(g("cpu-us-per-io")), fmt(g("rss")), len(data[(s, x, "iops")])))
    ld = [v for k, v in loads.items() if k.startswith("clients-") for v in v]
    text = ["![%s](%s)" % (svg, svg), "", "\n".join(lines), ""]
    if ld:
        text.append("Load average (1 min) while these points ran: %.1f-%.1f (median %.1f) on 2 cores." % (min(ld), max(ld), med(ld)))
    return "\n".join(text) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--docs", required=True)
    a = ap.parse_args()
    data, loads, skipped = load(a.raw)
    parts = {
        "disk": engine_section(data, loads, "disk", "disk size (GiB)", a.docs, skipped),
        "written": engine_section(data, loads, "written", "GiB written", a.docs, skipped),
        "clients": clients_section(data, loads, a.docs),
    }
    md = os.path.join(a.docs, "scale.md")
    text = open(md).read() if os.path.exists(md) else ""
    for key, body in parts.items():
        begin, end = "<!-- scale:%s -->" % key, "<!-- /scale:%s -->" % key
        block = "%s\n%s%s" % (begin, body, end)
        if begin in text:
            text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        else:
            text += "\n" + block + "\n"
    with open(md, "w") as f:
        f.write(text)
    print("wrote %s and its SVGs" % md)


if __name__ == "__main__":
    main()
