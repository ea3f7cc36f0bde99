#!/usr/bin/python3
"""Soak: a long run of mixed load against one server, sampling its resources every second.

The load, all at once for --minutes:
  * eight fio jobs (ioengine=nbd, one connection each, iodepth 8) doing verified random writes and
    reads (verify=crc32c, verify_backlog) on their own 4 MiB regions, --fio-iops each (a steady
    load that leaves the two shared cores some room, so the samples show the server, not a queue);
  * a checkpoint every --checkpoint-every seconds (Save-ShuruCheckpoint, through crash-server.ps1);
    the newest --keep are kept, older ones deleted, so their chunks become garbage;
  * a collection every --collect-every seconds by a second pwsh process (collector.ps1), keeping
    only the kept checkpoints (the server's registration keeps what it serves), grace period 0;
  * a client that connects, checks its 1 MiB region, rewrites it, flushes and disconnects, in a loop;
  * kill -9 of the server every --kill-every seconds (+-20 %), and a restart on the same -StatePath
    (fio starts again on the new server; its killed run's errors are expected, a verify failure never).

Sampled every second from /proc: the server's RSS, open file descriptors and threads (and the load
average); every 15 s the store's size on disk (chunk files, registrations, state file).

Promises checked: no fio verify failure and no fio error outside a kill; the reconnecting client
always reads, per 4 KiB block, its last flushed generation (or the one a kill interrupted); every
checkpoint saves; every collection succeeds and every kept checkpoint still resolves afterwards
(all chunks present; the newest hashed and made of whole fio blocks); a clean stop at the end, and
a restart from the state file that reads back exactly. Flatness is measured, not asserted here: per
server lifetime (after --warmup s), the slope of each series (per minute) and its range are reported;
--svg plots them (soakplot.py).

Usage: soak.py --minutes 30 [--seed N] [--svg docs/soak.svg] [--docs] [--json OUT]
"""
import argparse, json, os, queue, random, shutil, signal, struct, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd
from reliab import BLOCK, HERE, REPO, Server, b3sum, close, connect, log, parse_index, pwsh_cmd, read_index_image
import soakplot

JOBS, REGION = 8, 4 << 20
CLIENT_OFF, CLIENT_LEN = JOBS * REGION, 1 << 20          # the reconnecting client's region
SIZE = CLIENT_OFF + CLIENT_LEN + (1 << 20)
DOC = os.path.join(REPO, 'docs', 'reliability.md')
BEGIN, END = '<!-- soak:begin -->', '<!-- soak:end -->'


def proc_sample(pid):
    """(rss MiB, open fds, threads) of a live process, or None."""
    try:
        rss = threads = None
        with open('/proc/%d/status' % pid) as f:
            for l in f:
                if l.startswith('VmRSS:'): rss = int(l.split()[1]) / 1024
                elif l.startswith('Threads:'): threads = int(l.split()[1])
        fds = len(os.listdir('/proc/%d/fd' % pid))
        return (round(rss, 1), fds, threads) if rss is not None else None
    except (OSError, ValueError):
        return None


def dir_bytes(path):
    """(files, bytes) directly under path."""
    n = b = 0
    try:
        for e in os.scandir(path):
            try:
                if e.is_file(follow_symlinks=False):
                    n += 1
                    b += e.stat(follow_symlinks=False).st_size
            except OSError:
                pass
    except OSError:
        pass
    return n, b


def block_pattern(gen, blk):
    """The reconnecting client's 4 KiB block `blk` of generation `gen` (gen 0 is the zeros it starts from)."""
    return bytes(BLOCK) if gen == 0 else struct.pack('<QQ', gen, blk) * (BLOCK // 16)


def block_gen(data, blk):
    """The generation a block holds, or None when it is no whole block of ours."""
    if data.count(0) == BLOCK: return 0
    gen, b = struct.unpack_from('<QQ', data)
    return gen if b == blk and data == block_pattern(gen, blk) else None


def fio_block_ok(data, off):
    """A 4 KiB block of the fio area is zeros or a whole fio block for its own offset."""
    if data.count(0) == BLOCK: return True
    magic, _, ln, _, boff = struct.unpack_from('<HHIQQ', data)
    return magic == 0xacca and ln == BLOCK and boff == off


class Sampler(threading.Thread):
    """Samples the current server process every second (and the store every 15 s)."""

    def __init__(self, t0, cas, state):
        super().__init__(daemon=True)
        self.t0, self.cas, self.state = t0, cas, state
        self.pid, self.life = None, 0
        self.samples, self.disk = [], []
        self.stop = threading.Event()

    def run(self):
        last_disk = 0
        while not self.stop.wait(1 - (time.time() - self.t0) % 1):
            t = round(time.time() - self.t0, 1)
            pid = self.pid
            s = proc_sample(pid) if pid else None
            load1 = float(open('/proc/loadavg').read().split()[0])
            if s: self.samples.append(dict(t=t, life=self.life, rss=s[0], fds=s[1], threads=s[2], load=load1))
            if t - last_disk >= 15:
                last_disk = t
                n, b = dir_bytes(os.path.join(self.cas, 'chunks'))
                ln, lb = dir_bytes(os.path.join(self.cas, 'leases'))
                sb = os.path.getsize(self.state) if os.path.exists(self.state) else 0
                self.disk.append(dict(t=t, chunks=n, chunk_mib=round(b / 2**20, 1), lease_files=ln, lease_mib=round(lb / 2**20, 2),
                                      state_mib=round(sb / 2**20, 2)))


class Reconnector(threading.Thread):
    """Connects, checks its region, rewrites it with the next generation, flushes, disconnects; again."""

    def __init__(self, uri, problems, pause):
        super().__init__(daemon=True)
        self.uri, self.problems, self.pause = uri, problems, pause
        self.durable, self.maybe, self.gen = 0, set(), 0
        self.connections = self.iterations = self.connect_failures = 0
        self.errors = []            # times of NBD errors (a kill explains those near it)
        self.stop = threading.Event()

    def check(self, data):
        allowed = {self.durable} | self.maybe
        for i in range(CLIENT_LEN // BLOCK):
            g = block_gen(data[i * BLOCK:(i + 1) * BLOCK], i)
            if g not in allowed:
                self.problems.append('reconnecting client: block %d holds generation %r, expected one of %s' % (i, g, sorted(allowed)))
                return False
        return True

    def run(self):
        while not self.stop.is_set():
            try:
                h = connect(self.uri)
            except nbd.Error:
                self.connect_failures += 1
                time.sleep(0.2)
                continue
            self.connections += 1
            try:
                if not self.check(bytes(h.pread(CLIENT_LEN, CLIENT_OFF))): return
                self.gen += 1
                self.maybe.add(self.gen)
                for off in range(0, CLIENT_LEN, 256 << 10):
                    h.pwrite(b''.join(block_pattern(self.gen, (off >> 12) + i) for i in range(64)), CLIENT_OFF + off)
                h.flush()
                self.durable, self.maybe = self.gen, set()
                self.iterations += 1
            except nbd.Error as e:
                self.errors.append((time.time(), str(e)))
            finally:
                close(h)
            self.stop.wait(self.pause)


class Fio:
    """One fio run of the eight verified jobs against the current server, until it ends or the server dies."""

    def __init__(self, uri, seconds, work, n, iops):
        self.out = os.path.join(work, 'fio-%03d.json' % n)
        self.err = os.path.join(work, 'fio-%03d.err' % n)
        self.started = time.time()
        cmd = ['fio', '--name=soak', '--ioengine=nbd', '--uri=' + uri, '--rw=randrw', '--rwmixread=50', '--bs=4k',
               '--size=%d' % REGION, '--offset_increment=%d' % REGION, '--numjobs=%d' % JOBS, '--iodepth=8',
               '--verify=crc32c', '--verify_backlog=64', '--verify_fatal=1', '--do_verify=1', '--verify_state_save=0',
               '--time_based', '--runtime=%d' % max(1, seconds), '--output-format=json', '--output=' + self.out]
        if iops: cmd.append('--rate_iops=%d' % iops)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.err, 'w'), cwd=work)

    def kill(self):
        """Kills fio and its job processes. After a kill -9 of the server the jobs of fio 3.33's nbd
        engine spin on the dead connection ("nothing to poll for in state DEAD") and never end; each
        job calls setsid, so they are found as fio's children, before fio itself goes."""
        for pid in children(self.proc.pid) + [self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def finish(self, killed, timeout=90):
        """Waits for fio; returns (ios, mib, problems). killed: the server died under it (errors
        expected; a fio whose jobs wait on the dead connections is ended after a short wait: only
        a verify failure it reported before the kill counts)."""
        try:
            self.proc.wait(5 if killed else timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            if not killed: return 0, 0, ['fio did not end within %d s of its run time' % timeout]
        self.kill()         # job processes left behind, if any
        problems, bad, err = [], [], ''
        # fio reports a verify failure as "verify: bad magic ..." / "... verify failed ..." and err=84 (EILSEQ).
        with open(self.err, errors='replace') as f:
            for i, l in enumerate(f):
                if i > 200000: break        # a killed run repeats its connection errors
                if 'verify' in l.lower() and ('bad' in l.lower() or 'fail' in l.lower()) or 'err=84' in l: bad.append(l.strip())
                err = (err + l)[-2000:]
        if bad: problems.append('fio verify failure: ' + ' | '.join(bad[:3]))
        ios = mib = 0
        try:
            text = open(self.out).read()
            res = json.loads(text[text.index('{'):])
            for j in res['jobs']:
                ios += j['read']['total_ios'] + j['write']['total_ios']
                mib += (j['read']['io_bytes'] + j['write']['io_bytes']) / 2**20
                if j['error'] and not killed: problems.append('fio job error %d without a kill' % j['error'])
        except (OSError, ValueError, KeyError) as e:
            if not killed: problems.append('fio output unreadable: %r %s' % (e, err[-300:]))
        if self.proc.returncode != 0 and not killed:
            problems.append('fio exited %d without a kill: %s' % (self.proc.returncode, err[-500:]))
        return ios, mib, problems


def children(pid):
    """The pids of a process's children (from /proc)."""
    out = []
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open('/proc/%s/stat' % d) as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == pid: out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def slope_per_minute(ts, ys):
    n = len(ts)
    if n < 2: return 0.0
    mt, my = sum(ts) / n, sum(ys) / n
    den = sum((t - mt) ** 2 for t in ts)
    return 0.0 if den == 0 else 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den


def lifetimes(samples, warmup):
    """Per server lifetime, after the warm-up: per series its start, min, median, max, end and slope per minute."""
    out = []
    for life in sorted({s['life'] for s in samples}):
        ss = [s for s in samples if s['life'] == life]
        t0 = ss[0]['t']
        steady = [s for s in ss if s['t'] - t0 >= warmup] or ss
        row = dict(life=life, start_min=round(t0 / 60, 1), minutes=round((ss[-1]['t'] - t0) / 60, 1))
        for k in ('rss', 'fds', 'threads'):
            ys = sorted(s[k] for s in steady)
            row[k] = dict(first=steady[0][k], min=ys[0], median=ys[len(ys) // 2], max=ys[-1], last=steady[-1][k],
                          slope_per_min=round(slope_per_minute([s['t'] for s in steady], [s[k] for s in steady]), 2))
        out.append(row)
    return out


def verify_checkpoint(path, cas, full):
    """Every chunk the checkpoint names exists; with full, they hash to their names and the disk it
    describes is whole fio blocks in the fio area and whole blocks of the client elsewhere."""
    entries = parse_index(path)[3]
    names = sorted({h for h in entries if h})
    paths = [os.path.join(cas, 'chunks', n) for n in names]
    missing = [n for n, p in zip(names, paths) if not os.path.isfile(p)]
    if missing: return ['%s names %d missing chunks, e.g. %s' % (os.path.basename(path), len(missing), missing[0])]
    if not full: return []
    bad = [os.path.basename(p) for p, h in b3sum(paths).items() if h != os.path.basename(p)]
    if bad: return ['%s: chunks do not hash to their names: %s' % (os.path.basename(path), bad[:3])]
    img = read_index_image(path, cas)
    torn = sum(1 for off in range(0, CLIENT_OFF, BLOCK) if not fio_block_ok(img[off:off + BLOCK], off))
    torn += sum(1 for i in range(CLIENT_LEN // BLOCK) if block_gen(img[CLIENT_OFF + i * BLOCK:CLIENT_OFF + (i + 1) * BLOCK], i) is None)
    return ['%s: %d blocks are not whole blocks' % (os.path.basename(path), torn)] if torn else []


class Collector:
    """collector.ps1 in its own pwsh process; one collection at a time."""

    def __init__(self, cas):
        cmd = pwsh_cmd()[:-1] + [os.path.join(HERE, 'collector.ps1'), '-CasPath', cas]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(l.rstrip('\n')) for l in self.proc.stdout], daemon=True).start()
        self.busy = None            # the indexes of the collection in progress
        line = self.lines.get(timeout=120)
        if not line.startswith('READY'): raise RuntimeError('collector: ' + line)

    def start(self, keep):
        self.busy = list(keep)
        self.proc.stdin.write('\t'.join(['collect'] + self.busy) + '\n')
        self.proc.stdin.flush()

    def poll(self):
        """The answer of the collection in progress, once it came."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return None
            if line.startswith('COLLECTED') or line.startswith('COLLECTFAILED'):
                return line

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--minutes', type=float, default=30)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--kill-every', type=float, default=300, help='seconds between kill -9s (+-20 %%)')
    ap.add_argument('--checkpoint-every', type=float, default=5)
    ap.add_argument('--collect-every', type=float, default=60)
    # Every FLUSH and checkpoint stores each chunk written since the last one anew, so the write rate
    # sets how many chunks a collection must remove each minute: a rate the shared disk keeps up with.
    ap.add_argument('--fio-iops', type=int, default=20, help='I/Os per second per fio job (0: as fast as it goes)')
    ap.add_argument('--client-pause', type=float, default=1.0, help='seconds between two rounds of the reconnecting client')
    ap.add_argument('--keep', type=int, default=4, help='checkpoints kept (older ones are deleted)')
    ap.add_argument('--warmup', type=float, default=120, help='seconds of each lifetime left out of the flatness figures '
                    '(the server fills its cache of open chunk files, up to 16384, in about that time)')
    ap.add_argument('--min-free-gib', type=int, default=5, help='end the run (a problem) when the disk has less free space')
    ap.add_argument('--svg')
    ap.add_argument('--samples', help='write every sample here (JSON; soakplot.py replots it)')
    ap.add_argument('--docs', action='store_true', help='write the figures into docs/reliability.md')
    ap.add_argument('--json')
    a = ap.parse_args()
    rng = random.Random(a.seed)
    seconds = a.minutes * 60
    work = tempfile.mkdtemp(prefix='shuru-soak-', dir='/tmp')
    base = os.path.join(work, 'base.raw')
    with open(base, 'wb') as f: f.truncate(SIZE)
    cas, state, sock = os.path.join(work, 'cas'), os.path.join(work, 'live.state'), os.path.join(work, 's.sock')
    problems = []
    loadavg_start = open('/proc/loadavg').read().split()[:3]
    t0 = time.time()
    end = t0 + seconds

    def start_server():
        s = Server(sock, cas, rootfs=base, state=state)
        if s.error: raise RuntimeError(s.error)
        return s

    srv = start_server()
    sampler = Sampler(t0, cas, state)
    sampler.pid = srv.pid
    sampler.start()
    collector = Collector(cas)
    client = Reconnector(srv.uri, problems, a.client_pause)
    client.start()
    fio_n = ck_n = 0
    fio = Fio(srv.uri, end - time.time(), work, fio_n, a.fio_iops)
    st = dict(minutes=a.minutes, seed=a.seed, kills=0, restart_seconds=[], checkpoints=0, collections=0, chunks_removed=0,
              chunks_rescued=0, collect_seconds=[], checkpoints_verified=0, fio_runs=0, fio_ios=0, fio_mib=0)
    events = []                     # (t, kind)
    checkpoints = []                # saved, oldest first
    next_kill = t0 + a.kill_every * rng.uniform(0.8, 1.2)
    next_ck, next_collect = t0 + a.checkpoint_every, t0 + a.collect_every
    log('soak: %.1f min, seed %d, server pid %d, kill -9 every ~%d s, in %s' % (a.minutes, a.seed, srv.pid, a.kill_every, work))

    def end_fio(killed):
        ios, mib, pr = fio.finish(killed)
        st['fio_runs'] += 1
        st['fio_ios'] += ios
        st['fio_mib'] += mib
        problems.extend(pr)

    while time.time() < end and len(problems) < 20:
        now = time.time()
        free = shutil.disk_usage(work).free
        if free < a.min_free_gib << 30:
            problems.append('stopped early: %.1f GiB left on the disk of %s (the store grew to %s)' % (
                free / 2**30, work, sampler.disk[-1] if sampler.disk else '?'))
            break
        if now >= next_kill and end - now > 30:
            srv.kill()
            st['kills'] += 1
            events.append((round(now - t0, 1), 'kill'))
            log('kill -9 #%d at %.0f s' % (st['kills'], now - t0))
            end_fio(killed=True)
            tr = time.time()
            srv = start_server()
            st['restart_seconds'].append(round(time.time() - tr, 1))
            sampler.life += 1
            sampler.pid = srv.pid
            fio_n += 1
            fio = Fio(srv.uri, end - time.time(), work, fio_n, a.fio_iops)
            next_kill = time.time() + a.kill_every * rng.uniform(0.8, 1.2)
            continue
        if now >= next_ck:
            ck_n += 1
            path = os.path.join(work, 'ck-%05d.idx' % ck_n)
            r = srv.checkpoint(path, timeout=120)
            if r == 'SAVED':
                checkpoints.append(path)
                st['checkpoints'] += 1
            else:
                problems.append('checkpoint %s: %s' % (os.path.basename(path), r))
            next_ck = time.time() + a.checkpoint_every
        answer = collector.poll() if collector.busy else None
        if answer:
            if answer.startswith('COLLECTED'):
                f = dict(kv.split('=') for kv in answer.split()[1:])
                st['collections'] += 1
                st['chunks_removed'] += int(f['removed'])
                st['chunks_rescued'] += int(f['rescued'])
                st['collect_seconds'].append(float(f['seconds']))
                log('collection: ' + answer)
                events.append((round(time.time() - t0, 1), 'collect'))
                # What the collection kept must still be whole: all chunks of every kept checkpoint, the newest in full.
                for i, ck in enumerate(collector.busy):
                    pr = verify_checkpoint(ck, cas, full=i == len(collector.busy) - 1)
                    problems.extend(pr)
                    st['checkpoints_verified'] += not pr
            else:
                problems.append('collection failed: ' + answer)
            collector.busy = None
        if not collector.busy and time.time() >= next_collect and checkpoints:
            # Only now, with no collection running, are old checkpoints deleted: their chunks become garbage.
            while len(checkpoints) > a.keep:
                os.unlink(checkpoints.pop(0))
            collector.start(checkpoints)
            next_collect = time.time() + a.collect_every
        time.sleep(0.1)

    log('soak: load ends')
    end_fio(killed=False)
    client.stop.set()
    client.join(60)
    deadline = time.time() + 300
    while collector.busy and time.time() < deadline:
        if collector.poll(): collector.busy = None
        time.sleep(0.5)
    collector.close()
    sampler.pid = None              # the samples show the server under load, not its stop
    tt = time.time()
    rc = srv.stop(120)
    st['stop_seconds'] = round(time.time() - tt, 1)
    if rc != 0: problems.append('clean stop failed (%r)' % rc)
    sampler.stop.set()
    sampler.join(5)
    # NBD errors of the reconnecting client are expected only around a kill.
    kills = [t0 + t for t, k in events if k == 'kill']
    unexplained = [e for t, e in client.errors if not any(-5 <= t - k <= 60 for k in kills)]
    if unexplained: problems.append('reconnecting client: %d NBD errors with no kill near them, e.g. %s' % (len(unexplained), unexplained[0]))
    # The state file alone: a restart reads back the client's last flushed generation and whole fio blocks.
    s = start_server()
    h = connect(s.uri)
    img = b''.join(bytes(h.pread(1 << 20, off)) for off in range(0, CLIENT_OFF + CLIENT_LEN, 1 << 20))
    close(h)
    s.stop()
    got = [block_gen(img[CLIENT_OFF + i * BLOCK:CLIENT_OFF + (i + 1) * BLOCK], i) for i in range(CLIENT_LEN // BLOCK)]
    # A clean stop keeps answered writes even without a FLUSH: a round cut short by an error may show.
    if any(g != client.durable and g not in client.maybe for g in got):
        problems.append('after the final restart the client region holds generations %s, not %d' % (sorted(set(map(str, got))), client.durable))
    torn = sum(1 for off in range(0, CLIENT_OFF, BLOCK) if not fio_block_ok(img[off:off + BLOCK], off))
    if torn: problems.append('after the final restart %d fio blocks are not whole' % torn)

    life = lifetimes(sampler.samples, a.warmup)
    loads = [s['load'] for s in sampler.samples]
    st.update(client_connections=client.connections, client_iterations=client.iterations, client_errors=len(client.errors),
              fio_mib=round(st['fio_mib']), samples=len(sampler.samples), lifetimes=life,
              load_mean=round(sum(loads) / max(1, len(loads)), 2), load_max=max(loads or [0]), loadavg_start=loadavg_start,
              loadavg_end=open('/proc/loadavg').read().split()[:3], disk_first=sampler.disk[0] if sampler.disk else None,
              disk_last=sampler.disk[-1] if sampler.disk else None, problems=problems[:20], ok=not problems,
              started=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0)))
    summary = dict(st)
    print(json.dumps(summary, indent=1))
    data = dict(samples=sampler.samples, disk=sampler.disk, events=events, summary=summary)
    if a.samples:
        with open(a.samples, 'w') as f: json.dump(data, f)
    if a.svg:
        soakplot.write_svg(a.svg, data)
    if a.json:
        with open(a.json, 'w') as f: json.dump(summary, f, indent=1)
    if a.docs: write_docs(summary, a)
    if not problems: shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1


def write_docs(s, a):
    def series(k, unit, fmt='%g'):
        return '; '.join(('%d: ' + fmt + '-' + fmt + ' %s, median ' + fmt + ', %+.2f/min') % (
            r['life'] + 1, r[k]['min'], r[k]['max'], unit, r[k]['median'], r[k]['slope_per_min']) for r in s['lifetimes'])
    d0, d1 = s['disk_first'] or {}, s['disk_last'] or {}
    lines = [BEGIN, '',
             'Last soak: %s, `%s` (%s). Load average %s at the start, %s at the end, %.2f on average over the run (max %.2f), '
             'two shared cores.' % (
                 s['started'], 'dotnet pwsh -NoProfile -File ./build.ps1 -Task Reliability -Soak %g' % a.minutes,
                 'all promises kept' if s['ok'] else 'FAILED', ' '.join(s['loadavg_start']), ' '.join(s['loadavg_end']), s['load_mean'], s['load_max']),
             '',
             '| what | figures |', '|---|---|',
             '| load | %d fio runs, %d I/Os (%d MiB) verified; %d checkpoints saved; %d collections (%d chunks removed, %d rescued, %.1f-%.1f s each); '
             'the reconnecting client connected %d times (%d write + flush rounds, %d NBD errors, all at kills) |' % (
                 s['fio_runs'], s['fio_ios'], s['fio_mib'], s['checkpoints'], s['collections'], s['chunks_removed'], s['chunks_rescued'],
                 min(s['collect_seconds'] or [0]), max(s['collect_seconds'] or [0]), s['client_connections'], s['client_iterations'], s['client_errors']),
             '| kills | %d kill -9, restart on the state file in %s s; clean stop at the end in %.1f s; %d kept checkpoints verified after collections |' % (
                 s['kills'], ', '.join('%g' % x for x in s['restart_seconds']), s['stop_seconds'], s['checkpoints_verified']),
             '| RSS per lifetime (after %d s) | %s |' % (a.warmup, series('rss', 'MiB')),
             '| open fds | %s |' % series('fds', ''),
             '| threads | %s |' % series('threads', ''),
             '| store on disk | chunks %s -> %s files (%s -> %s MiB); registrations %s -> %s MiB; state file %s -> %s MiB |' % (
                 d0.get('chunks'), d1.get('chunks'), d0.get('chunk_mib'), d1.get('chunk_mib'), d0.get('lease_mib'), d1.get('lease_mib'),
                 d0.get('state_mib'), d1.get('state_mib')),
             '']
    if s['problems']:
        lines += ['Problems:', ''] + ['- ' + p for p in s['problems']] + ['']
    lines.append(END)
    block = '\n'.join(lines)
    doc = open(DOC).read()
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
        open(DOC, 'w').write(doc)


if __name__ == '__main__':
    sys.exit(main())
