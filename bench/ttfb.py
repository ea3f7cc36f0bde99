#!/usr/bin/python3
"""Time to first byte of an NBD export: connect + handshake (opt_go) + pread(4096, 0).

usage: ttfb.py URI [N]   prints one JSON object: median/p90/min/max in microseconds over N
fresh connections (default 20). Run with /usr/bin/python3 (python3-libnbd lives there).
"""
import json
import statistics
import sys
import time

import nbd


def one(uri):
    h = nbd.NBD()
    t0 = time.perf_counter_ns()
    h.connect_uri(uri)          # connect + NBD_OPT_GO
    h.pread(4096, 0)            # first byte(s) of the disk
    t1 = time.perf_counter_ns()
    try:
        h.shutdown()
    except nbd.Error:
        pass
    del h                       # closes the handle
    return (t1 - t0) / 1000.0


def main():
    uri = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    xs = [one(uri) for _ in range(n)]
    s = sorted(xs)
    print(json.dumps({
        "n": n,
        "first_us": xs[0],
        "median_us": statistics.median(xs),
        "p90_us": s[min(n - 1, int(round(0.9 * (n - 1))))],
        "min_us": s[0],
        "max_us": s[-1],
    }))


if __name__ == "__main__":
    main()
