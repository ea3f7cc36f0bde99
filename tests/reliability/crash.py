#!/usr/bin/python3
"""Crash test: kill -9 the serving process at random moments while two clients write (on two
connections) and while checkpoints are being saved; restart with the same -StatePath; verify.

Promises checked after every kill:
  * every chunk file's name is the BLAKE3 of its content (b3sum);
  * every checkpoint reported SAVED reads back exactly what it held at the cut (read straight
    from the .idx and chunk files; a sample also booted by the engine, read-only, over NBD);
    a checkpoint file left by a kill in the middle of Save-ShuruCheckpoint is absent or complete;
  * with the live-state file, every write answered before a FLUSH was sent is there after the
    restart; later writes read, per 4 KiB block, as one of the generations the block could hold
    (never garbage, never older than the flushed one).

Usage: crash.py --seconds 60 --seed 1 [--dir DIR] [--json OUT]   (exit 0 = every promise kept)
"""
import argparse, json, os, random, shutil, struct, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliab import BLOCK, CHUNK, ChunkAudit, Server, close, connect, log, read_index_image

INF = float('inf')


class Model:
    """What each 4 KiB block may hold. Keys: ('b',) base content, ('z',) zeros, ('p', g) pattern g."""

    def __init__(self, nblocks):
        self.lock = threading.Lock()
        self.t = 0
        self.baseline = [('b',)] * nblocks
        self.writes = [[] for _ in range(nblocks)]
        self.durable_t = 0   # send time of the last FLUSH whose reply arrived
        self.gen = 0
        self.wlog = []       # (gen, first block, blocks, record): multi-block pattern writes

    def tick(self):
        with self.lock:
            self.t += 1
            return self.t

    def issue(self, first, count, key_of, fua=False):
        with self.lock:
            self.t += 1
            recs = []
            for b in range(first, first + count):
                r = [key_of(b), self.t, None, fua]
                self.writes[b].append(r)
                recs.append(r)
            return recs

    def answered(self, recs):
        with self.lock:
            self.t += 1
            for r in recs:
                r[2] = self.t

    def allowed(self, b, t0, t1, fua=False):
        """Keys block b may show in a cut taken between t0 (request sent) and t1 (reply seen).
        With fua (crash recovery), an answered FUA write is durable by itself."""
        last = self.baseline[b]
        maybe = []
        for key, issued, ans, is_fua in self.writes[b]:
            if ans is not None and (ans < t0 or (fua and is_fua)):
                last = key
                maybe = []          # a newer durable/answered write supersedes earlier maybes
            elif issued < t1:
                maybe.append(key)
        return tuple(dict.fromkeys([last] + maybe))

    def cut(self, t0, t1):
        with self.lock:
            return [self.allowed(b, t0, t1) for b in range(len(self.baseline))]

    def rebase(self, keys):
        with self.lock:
            self.baseline = list(keys)
            self.writes = [[] for _ in keys]
            self.durable_t = 0
            self.wlog = []

    def straddling(self, t0, t1):
        """Multi-block writes that may or may not be in a cut taken between t0 and t1."""
        with self.lock:
            return [(g, first, n) for g, first, n, r in self.wlog
                    if r[1] < t1 and not (r[2] is not None and r[2] < t0)]


def block_bytes(key, b, base):
    if key[0] == 'b':
        return base[b * BLOCK:(b + 1) * BLOCK]
    if key[0] == 'z':
        return bytes(BLOCK)
    return struct.pack('<QQ', b, key[1]) * (BLOCK // 16)


def match(content, b, keys, base):
    for k in keys:
        if content == block_bytes(k, b, base):
            return k
    return None


def describe(content, b, base):
    if content == bytes(BLOCK): return 'zeros'
    if content == base[b * BLOCK:(b + 1) * BLOCK]: return 'base'
    blk, g = struct.unpack_from('<QQ', content)
    if content == struct.pack('<QQ', blk, g) * (BLOCK // 16): return 'pattern(block %d, gen %d)' % (blk, g)
    return 'garbage'


def read_disk(h, size):
    out = bytearray()
    for off in range(0, size, 1 << 20):
        out += h.pread(min(1 << 20, size - off), off)
    return bytes(out)


def check_image(img, cut, base, what, stats, problems, limit=5):
    bad = 0
    for b, keys in enumerate(cut):
        c = img[b * BLOCK:(b + 1) * BLOCK]
        if match(c, b, keys, base) is None:
            bad += 1
            if bad <= limit:
                problems.append('%s: block %d holds %s, expected one of %s' % (what, b, describe(c, b, base), keys))
    stats['blocks_verified'] += len(cut)
    stats['blocks_lost'] += bad
    return bad


def gen_of(content, b, base):
    """The pattern generation a block holds, -1 for base content, None for zeros or other."""
    if content == base[b * BLOCK:(b + 1) * BLOCK] and content != bytes(BLOCK): return -1
    blk, g = struct.unpack_from('<QQ', content)
    if blk == b and content == struct.pack('<QQ', blk, g) * (BLOCK // 16): return g
    return None


def check_atomic(img, straddling, base, what, stats, problems):
    """A checkpoint is a cut between whole writes: a multi-block write is all in or all out."""
    for g, first, n in straddling:
        gens = [gen_of(img[b * BLOCK:(b + 1) * BLOCK], b, base) for b in range(first, first + n)]
        stats['straddling_writes_checked'] += 1
        if g in gens and any(x is not None and x < g for x in gens):
            stats['torn_writes'] += 1
            problems.append('%s: write gen %d (blocks %d..%d) is half in the cut: %s' % (what, g, first, first + n - 1, gens))
            return


def writer(idx, uri, model, region, rng, stop, ctl, stats):
    """Sequential writes/zeroes/flushes in its own region; writer 0 also asks for checkpoints."""
    import nbd
    try:
        h = connect(uri)
    except Exception:
        return
    lo, hi = region
    try:
        while not stop.is_set():
            op = rng.random()
            if op < 0.70:
                n = rng.choice((1, 1, 2, 4, 8, 16, 32))
                first = rng.randrange(lo, hi - n + 1)
                with model.lock:
                    model.gen += 1
                    g = model.gen
                fua = rng.random() < 0.15
                recs = model.issue(first, n, lambda b: ('p', g), fua)
                if n > 1:
                    with model.lock: model.wlog.append((g, first, n, recs[0]))
                data = b''.join(struct.pack('<QQ', b, g) * (BLOCK // 16) for b in range(first, first + n))
                h.pwrite(data, first * BLOCK, nbd.CMD_FLAG_FUA if fua else 0)
                model.answered(recs)
                stats['writes_acked'] += 1
                stats['fua_writes_acked'] += fua
            elif op < 0.73:
                # TRIM of whole 64 KiB chunks: they read as zeros (partial chunks are left alone).
                per = CHUNK // BLOCK
                c = rng.randrange(lo // per, hi // per)
                n = per * rng.choice((1, 1, 2))
                if (c * per + n) > hi: n = per
                recs = model.issue(c * per, n, lambda b: ('z',))
                h.trim(n * BLOCK, c * CHUNK)
                model.answered(recs)
                stats['trims_acked'] += 1
            elif op < 0.78:
                n = rng.choice((1, 16, 32))
                first = rng.randrange(lo, hi - n + 1)
                recs = model.issue(first, n, lambda b: ('z',))
                h.zero(n * BLOCK, first * BLOCK)
                model.answered(recs)
                stats['zeroes_acked'] += 1
            elif op < 0.93:
                t = model.tick()
                h.flush()
                with model.lock:
                    model.durable_t = max(model.durable_t, t)
                stats['flushes'] += 1
            elif idx == 0 and ctl['checkpoints']:
                ctl['checkpoints'](model)
    except nbd.Error:
        pass  # the server was killed
    finally:
        try: close(h)
        except Exception: pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--disk-mib', type=int, default=8)
    ap.add_argument('--max-run', type=float, default=3.0, help='longest write phase before a kill (s)')
    ap.add_argument('--boot-checks', type=int, default=3, help='checkpoints booted by the engine at the end')
    ap.add_argument('--dir')
    ap.add_argument('--json')
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = a.dir or tempfile.mkdtemp(prefix='shuru-crash-', dir='/tmp')
    os.makedirs(work, exist_ok=True)
    cas, state, sock = os.path.join(work, 'cas'), os.path.join(work, 'live.state'), os.path.join(work, 's.sock')
    base_path = os.path.join(work, 'base.raw')
    size = a.disk_mib << 20
    nblocks = size // BLOCK
    half = size // 2
    base = random.Random(a.seed ^ 0x5eed).randbytes(half) + bytes(size - half)   # data, then zeros
    with open(base_path, 'wb') as f:
        f.write(base)
    model = Model(nblocks)
    audit = ChunkAudit(cas)
    stats = dict(iterations=0, kills=0, kills_in_checkpoint=0, writes_acked=0, fua_writes_acked=0, trims_acked=0, zeroes_acked=0, flushes=0,
                 checkpoints_saved=0, checkpoints_verified=0, checkpoints_booted=0, unreported_checkpoints_complete=0,
                 chunks_audited=0, bad_chunks=0, state_max_bytes=0, state_compactions_seen=0, temp_files=0, blocks_verified=0, blocks_lost=0, straddling_writes_checked=0, torn_writes=0)
    problems = []
    saved = []   # (path, cut)
    straddle = {}  # path -> multi-block writes in flight during its checkpoint
    t_end = time.time() + a.seconds
    log('crash: seed %d, %d s, disk %d MiB, dir %s' % (a.seed, a.seconds, a.disk_mib, work))

    def start():
        s = Server(sock, cas, rootfs=base_path, state=state, dirty_limit=1 << 20)
        if s.error: raise RuntimeError('restart refused: ' + s.error)
        return s

    def recover_and_verify(s, what, strict=False):
        h = connect(s.uri)
        img = read_disk(h, size)
        close(h)
        with model.lock:
            t0 = INF if strict else model.durable_t
            cut = [model.allowed(b, t0, INF, fua=True) for b in range(nblocks)]
        check_image(img, cut, base, what, stats, problems)
        model.rebase([match(img[b * BLOCK:(b + 1) * BLOCK], b, cut[b], base) or ('b',) for b in range(nblocks)])

    iteration = 0
    last_state = [0]
    srv = start()
    while time.time() < t_end and not problems:
        iteration += 1
        stats['iterations'] = iteration
        recover_and_verify(srv, 'after kill %d' % (iteration - 1) if iteration > 1 else 'first start')
        stop = threading.Event()
        in_ckpt = threading.Event()
        pending = {}
        mode = rng.choice(('random', 'random', 'checkpoint'))
        ckrng = random.Random(rng.random())

        def take_checkpoint(m, iteration=iteration):
            path = os.path.join(work, 'ck-%04d-%03d.idx' % (iteration, len(saved) + len(pending)))
            t0 = m.tick()
            pending[path] = t0
            in_ckpt.set()
            r = srv.checkpoint(path)
            t1 = m.tick()
            if r == 'SAVED':
                del pending[path]
                saved.append((path, m.cut(t0, t1)))
                straddle[path] = m.straddling(t0, t1)
                stats['checkpoints_saved'] += 1
            elif r is not None:
                problems.append('checkpoint %s failed: %s' % (path, r))
            time.sleep(ckrng.uniform(0, 0.2))

        ctl = {'checkpoints': take_checkpoint}
        halfb = nblocks // 2
        threads = [threading.Thread(target=writer, args=(i, srv.uri, model, reg, random.Random(rng.random()), stop, ctl, stats))
                   for i, reg in enumerate([(0, halfb), (halfb, nblocks)])]
        for t in threads: t.start()
        if mode == 'checkpoint':
            in_ckpt.wait(a.max_run * 3)
            time.sleep(rng.uniform(0, 0.03))
        else:
            time.sleep(rng.uniform(0.2, a.max_run))
        was_in = bool(pending)
        srv.kill()
        stats['kills'] += 1
        stats['kills_in_checkpoint'] += was_in
        stop.set()
        for t in threads: t.join(60)
        # A checkpoint interrupted by the kill: the file is absent or complete (temp + rename).
        for path, t0 in pending.items():
            if os.path.exists(path):
                stats['unreported_checkpoints_complete'] += 1
                try:
                    img = read_index_image(path, cas)
                    check_image(img, model.cut(t0, INF), base, 'unreported checkpoint ' + path, stats, problems)
                except Exception as e:
                    problems.append('interrupted checkpoint %s is damaged: %s' % (path, e))
        stats['chunks_audited'] += audit.run()
        ssize = os.path.getsize(state) if os.path.exists(state) else 0
        stats['state_max_bytes'] = max(stats['state_max_bytes'], ssize)
        if ssize < last_state[0]: stats['state_compactions_seen'] += 1
        last_state[0] = ssize
        for path, cut in saved[-8:]:    # the newest ones every time, all of them at the end
            img = read_index_image(path, cas)
            check_image(img, cut, base, 'checkpoint ' + path, stats, problems)
            check_atomic(img, straddle.get(path, []), base, 'checkpoint ' + path, stats, problems)
            stats['checkpoints_verified'] += 1
        srv = start()

    # Final: verify, stop cleanly (a clean stop with a state file keeps every answered write), restart, compare exactly.
    recover_and_verify(srv, 'after kill %d' % iteration)
    h = connect(srv.uri)
    g = 10 ** 9
    for b in range(0, nblocks, 7):
        recs = model.issue(b, 1, lambda b: ('p', g + b))
        h.pwrite(block_bytes(('p', g + b), b, base), b * BLOCK)
        model.answered(recs)
    close(h)
    srv.stop()
    srv = start()
    recover_and_verify(srv, 'after a clean stop', strict=True)   # no FLUSH: the clean stop flushes
    srv.stop()
    stats['chunks_audited'] += audit.run()
    for path, cut in saved:
        img = read_index_image(path, cas)
        check_image(img, cut, base, 'checkpoint ' + path, stats, problems)
        check_atomic(img, straddle.get(path, []), base, 'checkpoint ' + path, stats, problems)
        stats['checkpoints_verified'] += 1
    # A sample of checkpoints booted by the engine (read-only) and read over NBD.
    for path, cut in rng.sample(saved, min(a.boot_checks, len(saved))):
        s = Server(os.path.join(work, 'ro.sock'), cas, index=path, read_only=True)
        if s.error:
            problems.append('checkpoint %s does not boot: %s' % (path, s.error)); continue
        h = connect(s.uri)
        check_image(read_disk(h, size), cut, base, 'booted checkpoint ' + path, stats, problems)
        close(h); s.stop()
        stats['checkpoints_booted'] += 1
    stats['bad_chunks'] = len(audit.bad)
    stats['temp_files'] = audit.temps
    for name, h in audit.bad[:5]:
        problems.append('chunk file %s hashes to %s' % (name, h))
    stats['seconds'] = round(a.seconds, 1)
    stats['seed'] = a.seed
    stats['problems'] = problems[:20]
    stats['ok'] = not problems
    print(json.dumps(stats, indent=1))
    if a.json:
        with open(a.json, 'w') as f: json.dump(stats, f, indent=1)
    if not a.keep and not problems and not a.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
