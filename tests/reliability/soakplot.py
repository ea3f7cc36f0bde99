#!/usr/bin/python3
"""Plots a soak's samples (soak.py --samples) as one SVG: the server's RSS, open file descriptors
and threads against time, one line per server lifetime (a kill -9 ends one), and the store's size
on disk. Every y axis starts at 0, so a slope reads as large as it is. Plain SVG written here: no
plotting library needed.

Usage: soakplot.py SAMPLES.json OUT.svg
"""
import json, math, sys
from xml.sax.saxutils import escape

W, LEFT, RIGHT, PANEL_H, GAP, TOP = 900, 70, 20, 150, 45, 40


def nice_step(span, ticks=4):
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def fmt(v):
    return ('%d' % v) if v == int(v) else ('%g' % round(v, 2))


def panel(out, y0, title, series, t_max, events):
    """series: [(label, colour, [[(t, v), ...] per segment])]."""
    v_max = max([v for _, _, segs in series for seg in segs for _, v in seg] + [1])
    step = nice_step(v_max * 1.1)
    top = step * math.ceil(v_max * 1.1 / step)
    pw = W - LEFT - RIGHT
    x = lambda t: LEFT + pw * t / t_max
    y = lambda v: y0 + PANEL_H - PANEL_H * v / top
    out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (LEFT, y0 - 8, escape(title)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>' % (LEFT, y0, pw, PANEL_H))
    v = 0.0
    while v <= top + 1e-9:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (LEFT, LEFT + pw, y(v), y(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end" font-size="11">%s</text>' % (LEFT - 5, y(v) + 4, fmt(v)))
        v += step
    for t, kind in events:
        if kind == 'kill':
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#c00" stroke-dasharray="4,3"/>' % (x(t), x(t), y0, y0 + PANEL_H))
        elif kind == 'collect':
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/>' % (x(t), x(t), y0 + PANEL_H - 6, y0 + PANEL_H))
    lx = LEFT + pw - 10
    for label, colour, segs in reversed(series):
        for seg in segs:
            if seg:
                pts = ' '.join('%.1f,%.1f' % (x(t), y(v)) for t, v in seg)
                out.append('<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>' % (colour, pts))
        if label:
            out.append('<text x="%d" y="%d" text-anchor="end" font-size="11" fill="%s">%s</text>' % (lx, y0 + 14, colour, escape(label)))
            lx -= 9 * len(label) + 10


def write_svg(path, data):
    samples, disk, events, s = data['samples'], data['disk'], data['events'], data['summary']
    t_max = max([x['t'] for x in samples] + [1])
    lives = sorted({x['life'] for x in samples})
    by_life = lambda k: [[(x['t'] / 60, x[k]) for x in samples if x['life'] == l] for l in lives]
    ev = [(t / 60, k) for t, k in events]
    panels = [
        ('Server RSS (MiB)', [('', '#1f5fa8', by_life('rss'))]),
        ('Open file descriptors', [('', '#2a8a2a', by_life('fds'))]),
        ('Threads', [('', '#8a4a00', by_life('threads'))]),
        ('Chunk files on disk (MiB)', [('', '#555', [[(d['t'] / 60, d['chunk_mib']) for d in disk]])]),
        ('Registrations and state file (MiB)', [('registrations (leases/)', '#b05090', [[(d['t'] / 60, d['lease_mib']) for d in disk]]),
                                                ('state file', '#d08000', [[(d['t'] / 60, d['state_mib']) for d in disk]])]),
    ]
    height = TOP + len(panels) * (PANEL_H + GAP) + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">%s</text>' % (LEFT, escape(
               'Soak %s: %g min, %d kill -9 (red dashes), %d collections (grey ticks); load average %.2f mean' % (
                   s.get('started', ''), s.get('minutes', 0), s.get('kills', 0), s.get('collections', 0), s.get('load_mean', 0))))]
    t_min = t_max / 60
    for i, (title, series) in enumerate(panels):
        panel(out, TOP + 20 + i * (PANEL_H + GAP), title, series, t_min, ev)
    y_axis = TOP + 20 + len(panels) * (PANEL_H + GAP) - GAP + 16
    step = nice_step(t_min, 6)
    m = 0.0
    while m <= t_min + 1e-9:
        xx = LEFT + (W - LEFT - RIGHT) * m / t_min
        out.append('<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>' % (xx, y_axis, fmt(m)))
        m += step
    out.append('<text x="%d" y="%d" text-anchor="middle">minutes</text>' % (LEFT + (W - LEFT - RIGHT) // 2, y_axis + 16))
    out.append('</svg>')
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    write_svg(sys.argv[2], json.load(open(sys.argv[1])))
