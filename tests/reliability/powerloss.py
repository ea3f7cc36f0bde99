#!/usr/bin/python3
"""Power-loss test: the server's chunk store, live-state file and checkpoints live on plfs, a FUSE
file system that knows what is durable (plfs/plfs.cpp); at random moments the power is cut: plfs
drops everything not made durable (file data and sizes not fsynced, directory entries whose
directory was not fsynced), the server is killed with SIGKILL, and it restarts on what is left.

Durability calls the model sees: fsync/fdatasync of a file, fsync of a directory (FUSE requests),
and, under `plfs run` (seccomp user notification), every syncfs/sync of the server on the mount.
With --durability syncfs (the engine's default) a syncfs makes everything durable, as it does on
a real file system; with --durability fsync the server gets SHURUSTORE_DURABILITY=fsync and its
syncfs calls are counted but make nothing durable, so that mode must stand on fsyncs alone.

Promises checked after every cut (the model of crash.py: per-block generations):
  * every write answered before a FLUSH was sent, and every answered FUA write, is there;
    other blocks read as one of their possible generations (never garbage, never EIO);
  * every checkpoint reported SAVED reads back, straight from its files, exactly what it held;
    one interrupted by the cut is absent or complete;
  * a clean stop keeps every answered write, also across a power cut right after it.
Chunk files whose content does not hash to their name are counted (torn_chunk_names); the engine
allows them after a power loss as long as nothing references them, and any that is referenced
shows up as lost blocks.

Each round cuts after a random time, a few milliseconds into a checkpoint, or armed: as the k-th
durability call from then arrives (the states just before a sync point). After the cut the calls
in flight never return (power off) until the server is killed; --cut-errors fails them with EIO
instead (a dying disk). --cut-mode torn/mixed also keeps some of what was not durable (plfs.cpp).

Usage: powerloss.py --seconds 60 --seed 1 [--durability syncfs|fsync] [--cut-mode strict|torn|mixed] [--cut-errors]
       [--sabotage fsync,fsyncdir,syncfs] [--disk-mib 8] [--dir DIR] [--json OUT] [--keep] [--discard] [--trace]
The last line printed is a one-line JSON summary with `cuts` and `blocks_lost`; exit 0 only when
nothing was lost (2: skipped, FUSE unavailable).
"""
import argparse, json, os, random, shutil, struct, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash, plfsctl
from reliab import BLOCK, CHUNK, ChunkAudit, Server, close, connect, log, read_index_image
from crash import INF, Model, block_bytes, check_atomic, check_image, match, writer


EIO_MARK = b'EIO' + bytes(BLOCK - 3)   # what an unreadable block reads as here (matches no generation)
_describe = crash.describe
crash.describe = lambda content, b, base: 'unreadable (EIO)' if content == EIO_MARK else _describe(content, b, base)


def journal_records(path):
    """The good records of a live-state file (StateJournal's layout): [(chunk, hash hex or None)]."""
    import struct, zlib
    try:
        data = open(path, 'rb').read()
    except OSError:
        return None
    if data[:8] != b'SHRUSTJ1': return None
    pos = 8 + 4 + 8
    for _ in range(2):
        n, = struct.unpack_from('<I', data, pos); pos += 4 + n
    pos += 32 + 4
    out = []
    while pos + 45 <= len(data):
        chunk, kind = struct.unpack_from('<QB', data, pos)
        if kind > 1: break
        out.append((chunk, data[pos + 9:pos + 41].hex() if kind else None))
        pos += 45
    return out


def read_disk(h, size, stats, problems):
    """The whole disk; a range the server answers with an error reads as a marker that matches no
    generation (so those blocks count as lost) and is reported."""
    import nbd
    out = bytearray()
    for off in range(0, size, 1 << 20):
        n = min(1 << 20, size - off)
        try:
            out += h.pread(n, off)
            continue
        except nbd.Error:
            pass
        for b in range(off, off + n, BLOCK):
            try:
                out += h.pread(BLOCK, b)
            except nbd.Error as e:
                stats['eio_blocks'] += 1
                if stats['eio_blocks'] <= 3: problems.append('read of block %d failed: %s' % (b // BLOCK, e))
                out += EIO_MARK
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--durability', choices=('syncfs', 'fsync'), default='syncfs')
    ap.add_argument('--sabotage', default='', help='durability calls plfs ignores, to prove the suite fails: fsync,fsyncdir,syncfs')
    ap.add_argument('--cut-mode', choices=('strict', 'torn', 'mixed'), default='strict',
                    help='strict: everything not durable is lost; torn: also keep a prefix of the unsynced entry changes and '
                         'some unsynced data blocks, at random; mixed: either, per cut')
    ap.add_argument('--cut-errors', action='store_true',
                    help='requests in flight at the cut fail with EIO (a failing disk) instead of never returning (power off)')
    ap.add_argument('--disk-mib', type=int, default=8)
    ap.add_argument('--max-run', type=float, default=2.0, help='longest write phase before a cut (s)')
    ap.add_argument('--boot-checks', type=int, default=2, help='checkpoints booted by the engine at the end')
    ap.add_argument('--dir')
    ap.add_argument('--json')
    ap.add_argument('--trace', action='store_true', help='debugging: plfs traces its requests and the clients their requests, '
                                                          'with CLOCK_MONOTONIC times, into the work directory')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--discard', action='store_true', help='remove the work directory even when something was lost')
    ap.add_argument('--keep-going', action='store_true', help='go on cutting after a lost block (to measure how much is lost)')
    a = ap.parse_args()
    stats = dict(cuts=0, blocks_lost=0, seed=a.seed, seconds=a.seconds, durability=a.durability, sabotage=a.sabotage, cut_mode=a.cut_mode,
                 cut_errors=a.cut_errors,
                 torn_cuts=0, cuts_at_a_sync=0, entry_changes_kept_at_torn_cuts=0, files_torn=0, iterations=0,
                 cuts_in_checkpoint=0, writes_acked=0, fua_writes_acked=0, trims_acked=0, zeroes_acked=0, flushes=0,
                 checkpoints_saved=0, checkpoints_verified=0, checkpoints_booted=0, interrupted_checkpoints_complete=0,
                 interrupted_checkpoints_absent=0, restarts_refused=0, eio_blocks=0, blocks_verified=0,
                 straddling_writes_checked=0, torn_writes=0, chunks_audited=0, torn_chunk_names=0, temp_files_left=0,
                 fsyncs_seen=0, dir_fsyncs_seen=0, syncfs_seen=0, syncfs_ignored=0, files_not_synced_at_cuts=0,
                 entry_changes_not_synced_at_cuts=0, state_compactions_seen=0)
    problems = []

    def finish(code):
        stats['problems'] = problems[:20]
        stats['ok'] = code == 0
        if a.json:
            with open(a.json, 'w') as f: json.dump(stats, f, indent=1)
        print(json.dumps(stats))
        return code

    why = plfsctl.unavailable()
    if why:
        stats['skipped'] = why
        return finish(2)
    ignore = [x for x in a.sabotage.split(',') if x]
    if a.durability == 'fsync': ignore.append('syncfs')
    rng = random.Random(a.seed)
    work = a.dir or tempfile.mkdtemp(prefix='shuru-powerloss-', dir='/tmp')
    os.makedirs(work, exist_ok=True)
    backing, mnt, ctl = os.path.join(work, 'backing'), os.path.join(work, 'mnt'), os.path.join(work, 'plfs.ctl')
    os.makedirs(os.path.join(backing, 'ckpt'), exist_ok=True)   # present (so durable) before the first mount
    cas, state, ckdir = os.path.join(mnt, 'cas'), os.path.join(mnt, 'live.state'), os.path.join(mnt, 'ckpt')
    sock, base_path = os.path.join(work, 's.sock'), os.path.join(work, 'base.raw')
    on_backing = lambda p: os.path.join(backing, os.path.relpath(p, mnt))
    size = a.disk_mib << 20
    nblocks = size // BLOCK
    half = size // 2
    base = random.Random(a.seed ^ 0x5eed).randbytes(half) + bytes(size - half)   # data, then zeros
    with open(base_path, 'wb') as f: f.write(base)
    env = {'SHURUSTORE_WARMUP': '0'}
    if a.durability == 'fsync': env['SHURUSTORE_DURABILITY'] = 'fsync'
    model = Model(nblocks)
    audit = ChunkAudit(os.path.join(backing, 'cas'))
    torn_names = set()
    saved, straddle = [], {}
    log('powerloss: seed %d, %d s, durability %s, %s cuts, plfs ignores %s, disk %d MiB, dir %s' % (
        a.seed, a.seconds, a.durability, a.cut_mode, ignore or 'nothing', a.disk_mib, work))

    fs = [None]

    def mount():
        fs[0] = plfsctl.Plfs(backing, mnt, ctl, ignore=ignore, log=os.path.join(work, 'plfs.log'), cut_errors=a.cut_errors,
                             trace=os.path.join(work, 'plfs.trace') if a.trace else None)

    def count_plfs(st):
        o = st['ops']
        stats['fsyncs_seen'] += o.get('fsync', 0) + o.get('fdatasync', 0)
        stats['dir_fsyncs_seen'] += o.get('fsyncdir', 0) + o.get('fsyncdir_datasync', 0)
        stats['syncfs_seen'] += o.get('syncfs_seen', 0) + o.get('sync_seen', 0)
        stats['syncfs_ignored'] += o.get('syncfs_ignored', 0)

    def start():
        s = Server(sock, cas, rootfs=base_path, state=state, dirty_limit=1 << 20, wrapper=fs[0].runner(), env=env)
        if s.error:
            # A refused restart loses everything: count it, then start over from an empty state.
            problems.append('restart refused after cut %d: %s' % (stats['cuts'], s.error))
            stats['restarts_refused'] += 1
            stats['blocks_lost'] += nblocks
            os.unlink(state)
            model.rebase([('b',)] * nblocks)
            s = Server(sock, cas, rootfs=base_path, state=state, dirty_limit=1 << 20, wrapper=fs[0].runner(), env=env)
            if s.error: raise RuntimeError('server does not start on an empty state: ' + s.error)
        return s

    last_cut = {}   # how the last cut was made, and the state file it left (for a report on a loss)

    def recover_and_verify(s, what, strict=False):
        h = connect(s.uri)
        img = read_disk(h, size, stats, problems)
        close(h)
        with model.lock:
            t0 = INF if strict else model.durable_t
            cut = [model.allowed(b, t0, INF, fua=True) for b in range(nblocks)]
        before = stats['blocks_lost']
        check_image(img, cut, base, what, stats, problems)
        if stats['blocks_lost'] != before and last_cut:
            bad = [b for b in range(nblocks) if match(img[b * BLOCK:(b + 1) * BLOCK], b, cut[b], base) is None]
            chunk = bad[0] * BLOCK // CHUNK
            recs = journal_records(last_cut.get('state_copy', ''))
            mine = [h for c, h in (recs or []) if c == chunk]
            cf = os.path.join(backing, 'cas', 'chunks', mine[-1]) if mine and mine[-1] else None
            problems.append('%s: the cut was %s; the state file it left has %s good records, %d for chunk %d (last: %s, %s); '
                            'block %d reads %s, the model allows %s' % (
                what, json.dumps(last_cut.get('how')), len(recs) if recs is not None else 'no', len(mine), chunk,
                mine[-1] if mine else '-', ('file of %d bytes' % os.path.getsize(cf) if os.path.exists(cf) else 'no such file') if cf else '-',
                bad[0], crash.describe(img[bad[0] * BLOCK:(bad[0] + 1) * BLOCK], bad[0], base), cut[bad[0]]))
        model.rebase([key_of(img[b * BLOCK:(b + 1) * BLOCK], b, cut[b]) for b in range(nblocks)])

    def key_of(content, b, keys):
        """The generation a block holds now, so that one loss is not counted again at later cuts."""
        k = match(content, b, keys, base)
        if k: return k
        if content == bytes(BLOCK): return ('z',)
        g = crash.gen_of(content, b, base)
        return ('p', g) if g is not None and g >= 0 else ('b',)

    bad_checkpoints = set()   # counted once, not again at every later cut

    def verify_checkpoint(path, cut, what):
        if path in bad_checkpoints: return
        lost = stats['blocks_lost']
        try:
            img = read_index_image(on_backing(path), os.path.join(backing, 'cas'))
        except Exception as e:
            problems.append('%s %s cannot be read after the cut: %s' % (what, path, e))
            stats['blocks_lost'] += nblocks
            bad_checkpoints.add(path)
            return
        check_image(img, cut, base, '%s %s' % (what, path), stats, problems)
        check_atomic(img, straddle.get(path, []), base, '%s %s' % (what, path), stats, problems)
        stats['checkpoints_verified'] += 1
        if stats['blocks_lost'] != lost: bad_checkpoints.add(path)

    cutting = threading.Event()
    phase_now = ['start']

    def torn_seed():
        torn = a.cut_mode == 'torn' or (a.cut_mode == 'mixed' and rng.random() < 0.5)
        return rng.randrange(1 << 62) if torn else None

    def power_cut(srv, threads, stop):
        """Cut first (the instant of the power loss) unless an armed cut already happened, then
        kill the server and unmount."""
        cutting.set()
        if fs[0].dead():
            r = fs[0].request('lastcut')
            stats['cuts_at_a_sync'] += 1
        else:
            r = fs[0].cut(torn_seed())
        torn = bool(r.get('torn'))
        # Power off: calls in flight never return. SIGKILL first, then let them fail (the killed
        # process can no longer act on the result) so it can exit and plfs unmount.
        try:
            os.killpg(srv.proc.pid, 9)
        except ProcessLookupError:
            pass
        fs[0].thaw()
        srv.kill()
        stop.set()
        for t in threads: t.join(60)
        st = fs[0].stats()
        count_plfs(st)
        last_cut['how'] = dict(r, phase=phase_now[0], at=[k[len('armed_cut_at_'):] for k in st['ops'] if k.startswith('armed_cut_at_')])
        cutting.clear()
        rc = fs[0].unmount()
        if rc != 0: raise RuntimeError('plfs ended with status %s at cut %d (see %s/plfs.log)' % (rc, stats['cuts'] + 1, work))
        stats['cuts'] += 1
        stats['files_not_synced_at_cuts'] += r.get('files_not_synced', 0)
        stats['entry_changes_not_synced_at_cuts'] += r.get('entry_changes_not_synced', 0)
        stats['torn_cuts'] += torn
        stats['entry_changes_kept_at_torn_cuts'] += r.get('entry_changes_kept', 0)
        stats['files_torn'] += r.get('files_torn', 0)
        return r

    def audit_chunks():
        audit.bad = []
        stats['chunks_audited'] += audit.run()
        stats['temp_files_left'] = audit.temps
        for name, _ in audit.bad:
            if name not in torn_names:
                torn_names.add(name)
                audit.seen.pop(name, None)   # hash it again if the engine replaces it
        stats['torn_chunk_names'] = len(torn_names)

    import nbd
    if a.trace:
        # Every client request with its send and reply times, next to plfs's trace.
        events = open(os.path.join(work, 'client.trace'), 'a', buffering=1)
        ev_lock = threading.Lock()

        class Traced:
            def __init__(self, h): self.h = h
            def __getattr__(self, name):
                f = getattr(self.h, name)
                if name not in ('pwrite', 'flush', 'trim', 'zero', 'pread'): return f
                def call(*args):
                    t0 = time.monotonic_ns()
                    desc = '%s %s' % (name, ' '.join(str(x) for x in args if not isinstance(x, (bytes, bytearray))))
                    if name == 'pwrite': desc += ' gen=%d' % struct.unpack_from('<QQ', args[0])[1]
                    try:
                        r = f(*args); ok = 'ok'
                        return r
                    except Exception as e:
                        ok = 'ERR ' + str(e)[:60]; raise
                    finally:
                        with ev_lock: events.write('%d %d %s %s\n' % (t0, time.monotonic_ns(), desc, ok))
                return call
        _connect = crash.connect
        crash.connect = lambda uri: Traced(_connect(uri))
    mount()
    srv = start()
    last_state = 0
    t_end = time.time() + a.seconds
    try:
        while time.time() < t_end and (a.keep_going or not problems):
            stats['iterations'] += 1
            it = stats['iterations']
            recover_and_verify(srv, 'after cut %d' % stats['cuts'] if it > 1 else 'first start')
            stop, in_ckpt, pending = threading.Event(), threading.Event(), {}
            # A cut after a random time, as a checkpoint is being saved, or as the k-th durability
            # call from now arrives (the states just before a sync point).
            phase = rng.choice(('random', 'sync', 'sync', 'checkpoint'))
            phase_now[0] = phase
            ckrng = random.Random(rng.random())

            def take_checkpoint(m, it=it, srv=srv):
                path = os.path.join(ckdir, 'ck-%04d-%03d.idx' % (it, len(saved) + len(pending)))
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
                elif r is not None and not cutting.is_set() and not fs[0].dead():   # after the cut a failure is expected
                    problems.append('checkpoint %s failed before the cut: %s' % (path, r))
                time.sleep(ckrng.uniform(0, 0.2))

            halfb = nblocks // 2
            threads = [threading.Thread(target=writer, args=(i, srv.uri, model, reg, random.Random(rng.random()), stop,
                                                             {'checkpoints': take_checkpoint}, stats))
                       for i, reg in enumerate([(0, halfb), (halfb, nblocks)])]
            for t in threads: t.start()
            if phase == 'checkpoint':
                in_ckpt.wait(a.max_run * 3)
                time.sleep(rng.uniform(0, 0.05))
            elif phase == 'sync':
                fs[0].arm(rng.randint(1, 120), torn_seed())
                deadline = time.time() + a.max_run * 2
                while time.time() < deadline and not fs[0].dead():
                    time.sleep(0.02)
            else:
                time.sleep(rng.uniform(0.2, a.max_run))
            was_in = bool(pending)
            power_cut(srv, threads, stop)
            stats['cuts_in_checkpoint'] += was_in
            # Checkpoints, read straight from what the cut left (no engine, no plfs).
            for path, t0 in list(pending.items()):
                if os.path.exists(on_backing(path)):
                    stats['interrupted_checkpoints_complete'] += 1
                    verify_checkpoint(path, model.cut(t0, INF), 'interrupted checkpoint')
                else:
                    stats['interrupted_checkpoints_absent'] += 1
            for path, cut in saved[-8:]:
                verify_checkpoint(path, cut, 'checkpoint')
            audit_chunks()
            ssize = os.path.getsize(on_backing(state)) if os.path.exists(on_backing(state)) else 0
            if ssize < last_state: stats['state_compactions_seen'] += 1
            last_state = ssize
            if os.path.exists(on_backing(state)):
                shutil.copyfile(on_backing(state), os.path.join(work, 'state-after-last-cut'))
            last_cut['state_copy'] = os.path.join(work, 'state-after-last-cut')
            mount()
            srv = start()

        # Final: a clean stop keeps every answered write, even across a power cut right after it.
        recover_and_verify(srv, 'after cut %d' % stats['cuts'])
        h = connect(srv.uri)
        g = 10 ** 9
        failed = 0
        for b in range(0, nblocks, 7):
            recs = model.issue(b, 1, lambda b: ('p', g + b))
            try:
                h.pwrite(block_bytes(('p', g + b), b, base), b * BLOCK)
                model.answered(recs)
            except nbd.Error as e:   # a write over a chunk the cut destroyed: its read-modify-write fails
                failed += 1
                if failed <= 3: problems.append('write of block %d after the last restart failed: %s' % (b, e))
        close(h)
        srv.stop()
        phase_now[0] = 'after a clean stop'
        power_cut(srv, [], threading.Event())
        mount()
        srv = start()
        recover_and_verify(srv, 'after a clean stop and a power cut', strict=True)
        srv.stop()
        count_plfs(fs[0].stats())
        for path, cut in saved:
            verify_checkpoint(path, cut, 'checkpoint')
        for path, cut in rng.sample(saved, min(a.boot_checks, len(saved))):
            s = Server(os.path.join(work, 'ro.sock'), cas, index=path, read_only=True, env=env)
            if s.error:
                problems.append('checkpoint %s does not boot: %s' % (path, s.error)); continue
            h = connect(s.uri)
            check_image(read_disk(h, size, stats, problems), cut, base, 'booted checkpoint ' + path, stats, problems)
            close(h); s.stop()
            stats['checkpoints_booted'] += 1
        fs[0].unmount()
        fs[0] = None
        audit_chunks()
    except Exception as e:
        import traceback
        traceback.print_exc()
        problems.append('harness stopped: %s: %s' % (type(e).__name__, e))
    finally:
        try:
            srv.kill()
        except Exception:
            pass
        if fs[0] is not None:
            fs[0].unmount()
    ok = not problems and stats['blocks_lost'] == 0
    if (ok or a.discard) and not a.keep and not a.dir:
        shutil.rmtree(work, ignore_errors=True)
    elif not ok:
        log('kept for inspection: ' + work)
    return finish(0 if ok else 1)


if __name__ == '__main__':
    sys.exit(main())
