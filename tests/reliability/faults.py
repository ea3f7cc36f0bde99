#!/usr/bin/python3
"""Fault tests: the chunk-store filesystem fills up; chunk files deleted or altered under a
running server; a missing or unreadable base image at start.

  full     a tmpfs of --full-mib MiB (mounted by the test; needs root) holds the chunk store and
           the live-state file. Writes + flushes go on until the server answers ENOSPC or EIO;
           then: flushed data and a saved checkpoint are intact, every chunk file hashes to its
           name, reads keep working, a checkpoint attempt fails cleanly; the tmpfs is grown and
           the same flush succeeds with nothing dropped; a clean restart reads it all back.
  chunk    a chunk file deleted / altered under a running server: EIO for that 64 KiB range
           only, the neighbours read fine, the server keeps serving; rewriting the chunk heals it.
  base     a missing base image, a directory as base, an index whose base is gone: refused at
           start with BaseImageMissing naming the path; a FIFO or device where a base image, an
           index, a parent index or a state file is expected: refused, never a hang in open().

Usage: faults.py [--seed N] [--rounds N] [--json OUT]   (exit 0 = every promise kept)
"""
import argparse, errno, json, os, random, shutil, struct, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliab import BLOCK, CHUNK, ChunkAudit, Server, close, connect, log, parse_index, read_index_image
import nbd

EIO, ENOSPC = 5, 28
stats = dict(full_rounds=0, enospc_replies=0, eio_replies=0, chunk_faults=0, base_faults=0, checks=0)
problems = []


def check(cond, what):
    stats['checks'] += 1
    if not cond:
        problems.append(what)
        log('FAIL', what)
    return cond


def err_of(fn):
    """None when fn() succeeds, else the NBD error number."""
    try:
        fn()
        return None
    except nbd.Error as e:
        n = e.errno
        if isinstance(n, str): n = getattr(errno, n, -1)   # python3-libnbd gives the name ('EIO')
        return n or -1


def read_err(h, length, offset, timeout=10):
    """Like err_of(pread) but never waits more than timeout s: 'hang' when no reply came."""
    buf = nbd.Buffer(length)
    try:
        cookie = h.aio_pread(buf, offset)
        deadline = time.time() + timeout
        while time.time() < deadline:
            h.poll(100)
            if h.aio_command_completed(cookie):
                return None
        return 'hang'
    except nbd.Error as e:
        n = e.errno
        if isinstance(n, str): n = getattr(errno, n, -1)
        return n or -1


def scenario_full(work, rng, full_mib, rnd):
    mnt = os.path.join(work, 'full%d' % rnd)
    os.makedirs(mnt)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dm' % full_mib, 'tmpfs', mnt], check=True)
    srv = None
    try:
        cas, state, sock = os.path.join(mnt, 'cas'), os.path.join(mnt, 'live.state'), os.path.join(work, 'f.sock')
        size = 64 << 20
        base_path = os.path.join(work, 'base-full.raw')
        base = rng.randbytes(1 << 20) + bytes(size - (1 << 20))
        with open(base_path, 'wb') as f: f.write(base)
        srv = Server(sock, cas, rootfs=base_path, state=state, dirty_limit=2 << 20)
        check(srv.error is None, 'full: server starts (%s)' % srv.error)
        h = connect(srv.uri)
        # Phase 1: a flushed region and a checkpoint, before the filesystem is full.
        a = rng.randbytes(1 << 20)
        h.pwrite(a, 2 << 20); h.flush()
        ck1 = os.path.join(work, 'full-ck1-%d.idx' % rnd)
        check(srv.checkpoint(ck1) == 'SAVED', 'full: checkpoint before the disk is full')
        img_ck1 = read_index_image(ck1, cas)
        # Phase 2: distinct data, 256 KiB at a time, flushed, until the server says no.
        expect = {}                   # offset -> bytes: answered writes (must survive once space returns)
        maybe = {}                    # offset -> (old, new): a write that got an error
        off, err = 4 << 20, None
        while off + (256 << 10) <= size:
            d = rng.randbytes(256 << 10)
            old = bytes(h.pread(256 << 10, off))
            err = err_of(lambda: h.pwrite(d, off))
            if err is not None:
                maybe[off] = (old, d); break
            expect[off] = d
            err = err_of(h.flush)
            off += 256 << 10
            if err is not None: break
        check(err in (ENOSPC, EIO), 'full: the server answers ENOSPC or EIO when the store is full (got %r after %d KiB)' % (err, (off - (4 << 20)) >> 10))
        if err == ENOSPC: stats['enospc_replies'] += 1
        if err == EIO: stats['eio_replies'] += 1
        # Still serving: reads of flushed and unflushed data, a second connection, a clean checkpoint failure.
        check(h.pread(1 << 20, 2 << 20) == a, 'full: flushed data reads back while full')
        for o, d in expect.items():
            check(h.pread(len(d), o) == d, 'full: answered write at %d reads back while full' % o)
        h2 = connect(srv.uri)
        check(h2.pread(1 << 20, 0) == base[:1 << 20], 'full: a new client reads the base while full')
        close(h2)
        ck2 = os.path.join(work, 'full-ck2-%d.idx' % rnd)
        r = srv.checkpoint(ck2)
        check(r is not None and (r.startswith('FAILED') or r == 'SAVED'), 'full: checkpoint while full answers (%s)' % r)
        if r and r.startswith('FAILED'):
            check(not os.path.exists(ck2), 'full: a failed checkpoint leaves no file')
            check('space' in r.lower() or 'No space' in r, 'full: the checkpoint error says the disk is full (%s)' % r)
        check(read_index_image(ck1, cas) == img_ck1, 'full: the earlier checkpoint is intact')
        audit = ChunkAudit(cas); audit.run()
        check(not audit.bad, 'full: every chunk file hashes to its name (%s)' % audit.bad[:3])
        check(srv.alive(), 'full: server alive while full')
        # Phase 3: space returns; the same data flushes, nothing dropped.
        subprocess.run(['mount', '-o', 'remount,size=%dm' % (full_mib * 16), mnt], check=True)
        e = err_of(h.flush)
        check(e is None, 'full: flush succeeds once space returns (errno %r)' % e)
        d = rng.randbytes(256 << 10)
        check(err_of(lambda: h.pwrite(d, 40 << 20)) is None and err_of(h.flush) is None, 'full: new writes succeed once space returns')
        expect[40 << 20] = d
        ck3 = os.path.join(work, 'full-ck3-%d.idx' % rnd)
        check(srv.checkpoint(ck3) == 'SAVED', 'full: checkpoint succeeds once space returns')
        close(h)
        check(srv.stop() == 0, 'full: clean stop')
        # Restart from the state file: everything answered is there.
        srv = Server(sock, cas, rootfs=base_path, state=state)
        check(srv.error is None, 'full: restart after the episode (%s)' % srv.error)
        h = connect(srv.uri)
        check(h.pread(1 << 20, 2 << 20) == a, 'full: phase-1 data after restart')
        for o, d in expect.items():
            check(h.pread(len(d), o) == d, 'full: answered write at %d after restart' % o)
        for o, (old, new) in maybe.items():
            got = h.pread(len(new), o)
            for i in range(0, len(new), BLOCK):
                blk = got[i:i + BLOCK]
                if blk not in (old[i:i + BLOCK], new[i:i + BLOCK]):
                    check(False, 'full: the failed write at %d left garbage in block %d' % (o, i // BLOCK)); break
        img3 = read_index_image(ck3, cas)
        check(img3[2 << 20:3 << 20] == a and img3[40 << 20:(40 << 20) + len(d)] == d, 'full: the checkpoint after recovery holds the data')
        close(h)
        srv.stop(); srv = None
        audit.run()
        check(not audit.bad, 'full: chunk audit after recovery')
        stats['full_rounds'] += 1
    finally:
        if srv: srv.kill()
        subprocess.run(['umount', mnt])


def fill(path):
    """Fills the filesystem of path's directory with one file until ENOSPC."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    blk = bytes(4096)
    try:
        while True:
            os.write(fd, blk)
    except OSError:
        pass
    os.close(fd)
    return path


def scenario_journal(work, rng):
    """The live-state file's filesystem fills up while the chunk store has room: the FLUSH that
    cannot append its records answers ENOSPC/EIO; once space returns the next FLUSH appends them,
    and after a kill -9 every write answered before that FLUSH is there."""
    mnt = os.path.join(work, 'statefs')
    os.makedirs(mnt)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], check=True)
    srv = None
    try:
        cas, state, sock = os.path.join(work, 'cas-journal'), os.path.join(mnt, 'live.state'), os.path.join(work, 'j.sock')
        size = 32 << 20
        base_path = os.path.join(work, 'base-journal.raw')
        with open(base_path, 'wb') as f: f.truncate(size)
        srv = Server(sock, cas, rootfs=base_path, state=state)
        h = connect(srv.uri)
        a = rng.randbytes(4 * CHUNK)
        h.pwrite(a, 0); h.flush()
        filler = fill(os.path.join(mnt, 'filler'))
        data = rng.randbytes(256 * CHUNK)          # 256 new entries: 11 KiB of records, more than a page
        h.pwrite(data, 1 << 20)
        e = err_of(h.flush)
        check(e in (ENOSPC, EIO), 'journal: FLUSH answers ENOSPC/EIO when the state file cannot grow (got %r)' % e)
        check(bytes(h.pread(len(data), 1 << 20)) == data, 'journal: the data still reads back')
        ckf = os.path.join(mnt, 'ck-on-full.idx')
        r = srv.checkpoint(ckf)
        check(r is not None and r.startswith('FAILED'), 'journal: a checkpoint onto the full filesystem fails (%s)' % r)
        left = [n for n in os.listdir(mnt) if n not in ('live.state', 'filler')]
        check(not left, 'journal: a failed checkpoint leaves no file behind (%s)' % left)
        os.unlink(filler)
        e = err_of(h.flush)
        check(e is None, 'journal: FLUSH succeeds once space returns (got %r)' % e)
        b = rng.randbytes(8 * CHUNK)
        h.pwrite(b, 20 << 20); h.flush()
        close(h)
        srv.kill(); srv = None
        srv = Server(sock, cas, rootfs=base_path, state=state)
        check(srv.error is None, 'journal: restart after kill (%s)' % srv.error)
        h = connect(srv.uri)
        check(bytes(h.pread(len(a), 0)) == a, 'journal: data flushed before the episode survives kill -9')
        got = bytes(h.pread(len(data), 1 << 20))
        lost = sum(got[i:i + CHUNK] != data[i:i + CHUNK] for i in range(0, len(data), CHUNK))
        check(lost == 0, 'journal: data flushed after space returned survives kill -9 (%d of 256 chunks lost)' % lost)
        check(bytes(h.pread(len(b), 20 << 20)) == b, 'journal: later flushed data survives kill -9')
        close(h)
        srv.stop(); srv = None
        stats['journal_rounds'] = stats.get('journal_rounds', 0) + 1
    finally:
        if srv: srv.kill()
        subprocess.run(['umount', mnt])


def scenario_chunk(work, rng):
    cas, sock = os.path.join(work, 'cas-chunk'), os.path.join(work, 'c.sock')
    size = 4 << 20
    base_path = os.path.join(work, 'base-chunk.raw')
    with open(base_path, 'wb') as f: f.write(rng.randbytes(size))
    srv = Server(sock, cas, rootfs=base_path)
    h = connect(srv.uri)
    data = rng.randbytes(16 * CHUNK)
    h.pwrite(data, 0); h.flush()
    ck = os.path.join(work, 'chunk.idx')
    check(srv.checkpoint(ck) == 'SAVED', 'chunk: checkpoint')
    entries = parse_index(ck)[3]
    for victim, how in ((3, 'deleted'), (7, 'altered'), (9, 'truncated'), (11, 'replaced by a directory'), (13, 'replaced by a FIFO')):
        p = os.path.join(cas, 'chunks', entries[victim])
        if how == 'deleted': os.unlink(p)
        elif how == 'altered':
            b = bytearray(open(p, 'rb').read()); b[rng.randrange(len(b))] ^= 0x40
            os.chmod(p, 0o644); open(p, 'wb').write(b)
        elif how == 'truncated': os.truncate(p, 1000)
        elif how == 'replaced by a FIFO': os.unlink(p); os.mkfifo(p)
        else: os.unlink(p); os.mkdir(p)
        e = read_err(h, CHUNK, victim * CHUNK)
        if e == 'hang':
            check(False, 'chunk %s: reading it hangs' % how)
            return
        check(e == EIO, 'chunk %s: reading it is EIO (got %r)' % (how, e))
        e = err_of(lambda: h.pread(4096, victim * CHUNK + CHUNK - 4096))
        check(e == EIO, 'chunk %s: any part of its range is EIO (got %r)' % (how, e))
        for n in (victim - 1, victim + 1):
            check(bytes(h.pread(CHUNK, n * CHUNK)) == data[n * CHUNK:(n + 1) * CHUNK], 'chunk %s: neighbour %d reads fine' % (how, n))
        check(bytes(h.pread(CHUNK, 15 * CHUNK)) == data[15 * CHUNK:], 'chunk %s: other ranges read fine' % how)
        stats['chunk_faults'] += 1
    # The engine keeps serving; a new client connects and a whole-chunk rewrite heals the range.
    h2 = connect(srv.uri)
    new = rng.randbytes(CHUNK)
    h2.pwrite(new, 3 * CHUNK); h2.flush()
    check(bytes(h2.pread(CHUNK, 3 * CHUNK)) == new, 'chunk: a rewritten chunk reads back')
    close(h2); close(h)
    check(srv.alive(), 'chunk: server alive after chunk faults')
    srv.stop()
    # A checkpoint naming a missing chunk boots, and only that range is EIO.
    os.rmdir(os.path.join(cas, 'chunks', entries[11]))
    ro = Server(os.path.join(work, 'c2.sock'), cas, index=ck, read_only=True)
    h = connect(ro.uri)
    check(err_of(lambda: h.pread(CHUNK, 3 * CHUNK)) == EIO, 'chunk: booted checkpoint, missing chunk is EIO')
    check(bytes(h.pread(CHUNK, 4 * CHUNK)) == data[4 * CHUNK:5 * CHUNK], 'chunk: booted checkpoint, neighbour fine')
    close(h); ro.stop()


def scenario_base_shrinks(work, rng):
    """The base image truncated under a running server: EIO past the new end, never zeros."""
    cas, sock = os.path.join(work, 'cas-shrink'), os.path.join(work, 'k.sock')
    bp = os.path.join(work, 'base-shrink.raw')
    data = rng.randbytes(4 << 20)
    with open(bp, 'wb') as f: f.write(data)
    srv = Server(sock, cas, rootfs=bp)
    h = connect(srv.uri)
    check(bytes(h.pread(CHUNK, 0)) == data[:CHUNK], 'shrink: reads the base')
    os.truncate(bp, 2 << 20)
    e = read_err(h, CHUNK, 3 << 20)
    check(e == EIO, 'shrink: a read past the base image\'s new end is EIO, not zeros (got %r)' % e)
    check(bytes(h.pread(CHUNK, 1 << 20)) == data[1 << 20:(1 << 20) + CHUNK], 'shrink: the rest of the base still reads')
    check(bytes(h.pread(CHUNK, 0)) == data[:CHUNK], 'shrink: an ingested piece still reads')
    close(h)
    check(srv.alive(), 'shrink: server alive')
    srv.stop()
    stats['base_faults'] += 1


def scenario_base(work, rng):
    cas, sock = os.path.join(work, 'cas-base'), os.path.join(work, 'b.sock')
    missing = os.path.join(work, 'no-such-base.raw')
    s = Server(sock, cas, rootfs=missing)
    check(s.error is not None and 'BaseImageMissing' in s.error and missing in s.error, 'base: missing base refused, named (%s)' % s.error)
    d = os.path.join(work, 'a-directory'); os.mkdir(d)
    s = Server(sock, cas, rootfs=d)
    check(s.error is not None and 'BaseImageMissing' in s.error, 'base: a directory as base refused (%s)' % s.error)
    dangling = os.path.join(work, 'dangling.raw'); os.symlink(missing, dangling)
    s = Server(sock, cas, rootfs=dangling)
    check(s.error is not None and 'BaseImageMissing' in s.error, 'base: a dangling symlink refused (%s)' % s.error)
    # An index whose base is gone.
    bp = os.path.join(work, 'base-b.raw')
    with open(bp, 'wb') as f: f.write(rng.randbytes(1 << 20))
    s = Server(sock, cas, rootfs=bp)
    ck = os.path.join(work, 'base.idx')
    check(s.checkpoint(ck) == 'SAVED', 'base: checkpoint')
    s.stop()
    os.rename(bp, bp + '.gone')
    s = Server(sock, cas, index=ck)
    check(s.error is not None and 'BaseImageMissing' in s.error and bp in s.error, 'base: index whose base is gone refused (%s)' % s.error)
    check(not os.path.exists(sock), 'base: no socket left behind by a refused start')
    stats['base_faults'] += 4
    # Special files where a file is expected: refused at once, never a start that hangs in open().
    os.rename(bp + '.gone', bp)
    fifo = os.path.join(work, 'a.fifo'); os.mkfifo(fifo)
    for what, kw, kind in (('a FIFO as base image', dict(rootfs=fifo), 'BaseImageMissing'),
                           ('a character device as base image', dict(rootfs='/dev/zero'), 'BaseImageMissing'),
                           ('a FIFO as index', dict(rootfs=bp, index=fifo), 'IndexInvalid'),
                           ('a FIFO as live-state file', dict(rootfs=bp, state=fifo), 'StateInvalid')):
        try:
            s = Server(sock, cas, timeout=30, **kw)
        except RuntimeError:
            check(False, 'base: %s hangs the start' % what); continue
        check(s.error is not None and kind in s.error, 'base: %s refused with %s (%s)' % (what, kind, s.error))
        if s.error is None: s.stop()
        stats['base_faults'] += 1
    # An index whose parent is a FIFO.
    idx = os.path.join(work, 'fifo-parent.idx')
    with open(idx, 'wb') as f:
        p = fifo.encode()
        f.write(struct.pack('<QQI', 1 << 20, 16, len(p)) + p + struct.pack('<I', 0) + struct.pack('<I4s', 4, b'ZERO') * 16)
    try:
        s = Server(sock, cas, rootfs=bp, index=idx, timeout=30)
        check(s.error is not None and 'IndexInvalid' in s.error, 'base: an index whose parent is a FIFO refused (%s)' % s.error)
        if s.error is None: s.stop()
    except RuntimeError:
        check(False, 'base: an index whose parent is a FIFO hangs the start')
    stats['base_faults'] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--rounds', type=int, default=1, help='rounds of the disk-full scenario')
    ap.add_argument('--full-mib', type=int, default=6)
    ap.add_argument('--only', choices=('full', 'chunk', 'base', 'journal'))
    ap.add_argument('--json')
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix='shuru-faults-', dir='/tmp')
    t = time.time()
    try:
        if a.only in (None, 'base'): scenario_base(work, rng); scenario_base_shrinks(work, rng)
        if a.only in (None, 'chunk'): scenario_chunk(work, rng)
        if a.only in (None, 'journal'): scenario_journal(work, rng)
        if a.only in (None, 'full'):
            for r in range(a.rounds): scenario_full(work, rng, a.full_mib, r)
    except Exception as e:
        import traceback; traceback.print_exc()
        problems.append('exception: %r' % e)
    stats['seconds'] = round(time.time() - t, 1)
    stats['seed'] = a.seed
    stats['problems'] = problems
    stats['ok'] = not problems
    print(json.dumps(stats, indent=1))
    if a.json:
        with open(a.json, 'w') as f: json.dump(stats, f, indent=1)
    if not problems: shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
