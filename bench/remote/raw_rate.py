#!/usr/bin/python3
"""Raw object-store rates through an independent client (Debian's python3-boto3): the yardstick
the remote chunk tier is measured against.

Phases, each with --threads requests in flight (default 32), each run --reps times:
  put-64k   PUT of 64 KiB objects          get-64k   GET of the same objects
  put-4m    PUT of 4 MiB objects           get-4m    GET of the same objects
  range-64k GET of a 64 KiB range of a 4 MiB object (random 64 KiB-aligned offset)
  range-1m  GET of a 1 MiB range of a 4 MiB object (random 1 MiB-aligned offset)
  get-4m-files  GET of the 4 MiB objects, each kept as 64 files of 64 KiB in a new directory
            (--files-dir): what a reader that keeps shuru's layout, a file per chunk, must do
  get-published  GET of every object of at least 1 MiB under --published PREFIX (a published
            checkpoint's packs): the same objects a cold read fetches, in the same state. Objects
            just written (the phases above) are served faster by this cluster than objects
            written minutes before under other writes (docs/remote.md)
  latency-64k  one GET of a 64 KiB object at a time (per-request latency, no queueing)
  latency-put-64k  one PUT of a 64 KiB object at a time
Reports MiB/s, objects/s and per-request latency percentiles as JSON (stdout, and --out FILE).

Endpoint, keys and region come from the environment as tools/ceph/cluster.sh env prints them:
  eval "$(tools/ceph/cluster.sh env)" && bench/remote/raw_rate.py
The objects go under a fresh prefix in the bucket and are deleted afterwards.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

last_cpu = 0.0  # CPU seconds (all threads) of the last phase
KIB = 1024
MIB = 1024 * KIB


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def run_phase(pool, count, fn):
    """Runs fn(i) for i in range(count) on the pool; returns (seconds, per-request latencies)."""
    def timed(i):
        t = time.perf_counter()
        fn(i)
        return time.perf_counter() - t
    global last_cpu
    cpu0 = time.process_time()
    start = time.perf_counter()
    latencies = list(pool.map(timed, range(count)))
    seconds = time.perf_counter() - start
    last_cpu = time.process_time() - cpu0
    return seconds, latencies


def summarize(name, seconds, latencies, bytes_each):
    n = len(latencies)
    return {
        "phase": name,
        "requests": n,
        "bytes_per_request": bytes_each,
        "seconds": round(seconds, 3),
        "mib_per_s": round(n * bytes_each / MIB / seconds, 1),
        "objects_per_s": round(n / seconds, 1),
        "latency_ms_p50": round(percentile(latencies, 50) * 1000, 2),
        "latency_ms_p90": round(percentile(latencies, 90) * 1000, 2),
        "latency_ms_p99": round(percentile(latencies, 99) * 1000, 2),
        "cpu_s": round(last_cpu, 2),
    }


def main():
    global last_cpu
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    ap.add_argument("--bucket", default=os.environ.get("SHURU_TEST_BUCKET", "shurustore-test"))
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--small-count", type=int, default=1024, help="64 KiB objects per phase (default 1024 = 64 MiB)")
    ap.add_argument("--large-count", type=int, default=64, help="4 MiB objects per phase (default 64 = 256 MiB)")
    ap.add_argument("--range-count", type=int, default=1024, help="ranged GETs per range phase")
    ap.add_argument("--latency-count", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--phases", help="comma-separated subset of the phases (put phases run when a get needs their objects)")
    ap.add_argument("--published", help="the prefix (in the bucket) of a published checkpoint, for get-published")
    ap.add_argument("--files-dir", default="/var/tmp", help="where get-4m-files makes its directory (removed afterwards)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not args.endpoint:
        sys.exit("no endpoint: set AWS_ENDPOINT_URL_S3 (eval \"$(tools/ceph/cluster.sh env)\") or pass --endpoint")

    # boto3 1.26 (Debian 12) does not read AWS_ENDPOINT_URL_S3 itself: the endpoint is passed.
    # Path-style addressing as for any custom endpoint; one pooled connection per thread.
    s3 = boto3.client("s3", endpoint_url=args.endpoint,
                      config=Config(max_pool_connections=args.threads, s3={"addressing_style": "path"},
                                    retries={"max_attempts": 1, "mode": "standard"}))
    prefix = f"bench/raw-{uuid.uuid4().hex[:12]}/"
    small = os.urandom(64 * KIB)
    large = os.urandom(4 * MIB)
    small_keys = [f"{prefix}s/{i:06d}" for i in range(args.small_count)]
    large_keys = [f"{prefix}l/{i:06d}" for i in range(args.large_count)]
    rng = random.Random(1)

    def put(key, body):
        s3.put_object(Bucket=args.bucket, Key=key, Body=body)

    def get(key, expect):
        body = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read()
        if len(body) != expect:
            raise RuntimeError(f"{key}: {len(body)} bytes, expected {expect}")

    files_dirs = []
    published = []  # (key, length) of the published checkpoint's packs
    if args.published:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.published.rstrip("/") + "/"):
            published += [(o["Key"], o["Size"]) for o in page.get("Contents", []) if o["Size"] >= MIB]
    published_bytes = sum(size for _, size in published)

    def get_files(key, directory, expect):
        body = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read()
        if len(body) != expect:
            raise RuntimeError(f"{key}: {len(body)} bytes, expected {expect}")
        name = key.rsplit("/", 1)[-1]
        for at in range(0, len(body), 64 * KIB):
            fd = os.open(os.path.join(directory, f"{name}-{at // (64 * KIB):02d}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, body[at:at + 64 * KIB])
            finally:
                os.close(fd)

    def new_files_dir():
        d = os.path.join(args.files_dir, f"raw-rate-files-{uuid.uuid4().hex[:12]}")
        os.mkdir(d)
        files_dirs.append(d)
        return d

    def get_range(key, offset, length):
        body = s3.get_object(Bucket=args.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")["Body"].read()
        if len(body) != length:
            raise RuntimeError(f"{key}: {len(body)} bytes of range, expected {length}")

    results = []
    try:
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            for rep in range(args.reps):
                phases = [
                    ("put-64k", args.small_count, 64 * KIB, lambda i: put(small_keys[i], small)),
                    ("get-64k", args.small_count, 64 * KIB, lambda i: get(small_keys[i], 64 * KIB)),
                    ("put-4m", args.large_count, 4 * MIB, lambda i: put(large_keys[i], large)),
                    ("get-4m", args.large_count, 4 * MIB, lambda i: get(large_keys[i], 4 * MIB)),
                    ("range-64k", args.range_count, 64 * KIB,
                     lambda i: get_range(large_keys[i % args.large_count], rng.randrange(64) * 64 * KIB, 64 * KIB)),
                    ("range-1m", args.range_count // 4, MIB,
                     lambda i: get_range(large_keys[i % args.large_count], rng.randrange(4) * MIB, MIB)),
                    ("get-4m-files", args.large_count, 4 * MIB, None),
                    # Objects of different sizes: the rate is of their bytes, so "each" is their mean.
                    ("get-published", len(published), published_bytes / max(1, len(published)),
                     lambda i: get(published[i][0], published[i][1])),
                ]
                wanted = set(args.phases.split(",")) if args.phases else None
                if wanted:
                    if wanted & {"get-64k", "latency-64k"}: wanted.add("put-64k")
                    if wanted & {"get-4m", "range-64k", "range-1m", "get-4m-files"}: wanted.add("put-4m")
                for name, count, size, fn in phases:
                    if wanted and name not in wanted or not wanted and fn is None:
                        continue  # the files phase runs only when asked for
                    if name == "get-published" and not published:
                        continue
                    if fn is None:
                        d = new_files_dir()
                        fn = lambda i, d=d: get_files(large_keys[i], d, 4 * MIB)
                    seconds, lat = run_phase(pool, count, fn)
                    r = summarize(name, seconds, lat, size)
                    r["rep"] = rep + 1
                    results.append(r)
                    print(json.dumps(r), file=sys.stderr)
                if wanted and not wanted & {"latency-64k", "latency-put-64k"}:
                    continue
                lat = []
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                for i in range(args.latency_count):
                    t = time.perf_counter()
                    get(small_keys[i % args.small_count], 64 * KIB)
                    lat.append(time.perf_counter() - t)
                seconds = time.perf_counter() - t0
                last_cpu = time.process_time() - cpu0
                r = summarize("latency-64k", seconds, lat, 64 * KIB)
                r["rep"] = rep + 1
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
                lat = []
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                for i in range(args.latency_count):
                    t = time.perf_counter()
                    put(small_keys[i % args.small_count], small)
                    lat.append(time.perf_counter() - t)
                seconds = time.perf_counter() - t0
                last_cpu = time.process_time() - cpu0
                r = summarize("latency-put-64k", seconds, lat, 64 * KIB)
                r["rep"] = rep + 1
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
    finally:
        for d in files_dirs:
            shutil.rmtree(d, ignore_errors=True)
        keys = small_keys + large_keys
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=args.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})

    medians = {}
    for name in dict.fromkeys(r["phase"] for r in results):
        rows = [r for r in results if r["phase"] == name]
        medians[name] = {
            "mib_per_s": statistics.median(r["mib_per_s"] for r in rows),
            "objects_per_s": statistics.median(r["objects_per_s"] for r in rows),
            "latency_ms_p50": statistics.median(r["latency_ms_p50"] for r in rows),
            "latency_ms_p99": statistics.median(r["latency_ms_p99"] for r in rows),
        }
    report = {
        "client": f"boto3 {boto3.__version__}",
        "endpoint": args.endpoint,
        "threads": args.threads,
        "loadavg_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "reps": args.reps,
        "median": medians,
        "runs": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
