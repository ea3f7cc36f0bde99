#!/usr/bin/python3
"""Protocol fuzzer: random and mutated handshakes and requests, one fresh connection per input
(--parallel connections at a time), for a bounded time, while a canary client does verified writes and reads on its own range.

Stalled clients (hogs.py) stay connected all along: --hogs of them, replaced when the server cuts
one off. Promises checked: the server never crashes (process alive), never hangs (every fuzz
connection is closed or answered within a few seconds after the fuzzer's EOF; one whose input the
server has not finished reading by then, because a request of it waits for payload memory, is
counted as backpressured, the bound's intended effect, not as a hang), the canary never
waits longer than --max-canary-ms between two operations, a clean stop at the end returns within
--max-stop-seconds with the hogs still connected), memory stays bounded (VmRSS grows by at most
--max-rss-mib over its value before the hogs), and the canary never sees an error or a wrong byte.

Usage: fuzz.py --seconds 60 --seed 1 [--hogs 4] [--parallel 2] [--json OUT]   (exit 0 = every promise kept)
"""
import argparse, json, os, random, shutil, socket, struct, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliab import CHUNK, Server, close, connect, log
from hogs import Hogs

SIZE = 16 << 20
CANARY = (12 << 20, 16 << 20)      # the fuzzer never writes here
MAX_CONNECTIONS = 64               # the server's default connection limit
NBDMAGIC, IHAVEOPT, REQ_MAGIC = 0x4e42444d41474943, 0x49484156454F5054, 0x25609513
U64 = (0, 1, 511, 4095, 4096, 65535, 65536, SIZE - 1, SIZE, SIZE + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
       2**63 - 1, 2**63, 2**64 - 4096, 2**64 - 1)
U32 = (0, 1, 2, 511, 512, 4095, 4096, 65535, 65536, 65537, 32 << 20, (32 << 20) + 1, 64 << 20, 2**31 - 1, 2**31, 2**32 - 1)


def pick(rng, interesting, bits):
    return rng.choice(interesting) if rng.random() < 0.6 else rng.getrandbits(bits)


def option(rng, code=None, data=None, length=None):
    code = rng.choice((1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 0, 12, 0x80000000, rng.getrandbits(32))) if code is None else code
    if data is None:
        name = rng.choice((b'export', b'', b'nope', b'x' * rng.randrange(5000), bytes(rng.randrange(256) for _ in range(rng.randrange(40)))))
        kind = rng.random()
        if code in (6, 7) and kind < 0.7:
            n = pick(rng, (0, 1, 2, 3, 65535), 16)
            infos = b''.join(struct.pack('>H', rng.choice((0, 1, 2, 3, 4, rng.getrandbits(16)))) for _ in range(min(n, rng.randrange(8))))
            data = struct.pack('>I', pick(rng, (len(name), 0, 2**32 - 1, 65536), 32)) + name + struct.pack('>H', n) + infos
        elif code in (9, 10) and kind < 0.7:
            qs = [rng.choice((b'base:allocation', b'base:', b'qemu:dirty-bitmap:x', b'', b'\xff' * 10)) for _ in range(rng.randrange(4))]
            data = struct.pack('>I', len(name)) + name + struct.pack('>I', pick(rng, (len(qs), 0, 2**32 - 1), 32)) + \
                b''.join(struct.pack('>I', pick(rng, (len(q),), 32) if rng.random() < 0.2 else len(q)) + q for q in qs)
        else:
            data = rng.randbytes(rng.choice((0, 0, 1, 4, 16, 200)))
    if length is None:
        length = len(data) if rng.random() < 0.8 else pick(rng, U32, 32)
    return struct.pack('>QII', IHAVEOPT, code, length) + data


def handshake(rng, go=True):
    flags = 3 if rng.random() < 0.85 else pick(rng, (0, 1, 2, 4, 0xffffffff), 32)
    out = struct.pack('>I', flags)
    for _ in range(rng.choice((0, 0, 1, 2, 5))):
        out += option(rng)
    if go:
        if rng.random() < 0.6: out += option(rng, 8, b'')           # structured replies
        if rng.random() < 0.3: out += option(rng, 10, struct.pack('>I', 6) + b'export' + struct.pack('>I', 1) + struct.pack('>I', 15) + b'base:allocation')
        if rng.random() < 0.8: out += option(rng, 7, struct.pack('>I', 6) + b'export' + struct.pack('>H', 0))
        else: out += option(rng, 1, b'export')                   # legacy EXPORT_NAME
    return out


def request(rng):
    typ = rng.choice((0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 7, rng.getrandbits(16)))
    flags = rng.choice((0, 0, 0, 1, 2, 4, 8, 16, rng.getrandbits(16)))
    off = pick(rng, U64, 64) if rng.random() < 0.5 else rng.randrange(0, SIZE) & ~511
    ln = pick(rng, U32, 32) if rng.random() < 0.5 else rng.choice((512, 4096, 65536, rng.randrange(1, 200000)))
    if typ in (1, 4, 6) and off < CANARY[1] and off + ln > CANARY[0]:
        off = rng.choice((rng.randrange(0, 8 << 20), SIZE + rng.randrange(1 << 20), 2**63 + 5))
    magic = REQ_MAGIC if rng.random() < 0.97 else rng.getrandbits(32)
    hdr = struct.pack('>IHHQQI', magic, flags, typ, rng.getrandbits(64), off, ln)
    if typ == 1:
        n = ln if ln <= (1 << 20) else rng.choice((0, 100, 1 << 20))   # a huge write: send less (server must not wait forever)
        payload = bytes([0xa5]) * n
        if rng.random() < 0.1: payload = payload[:rng.randrange(len(payload) + 1)]
        return hdr + payload, typ == 1 and len(payload) < ln
    return hdr, False


def mutate(rng, data, protected=()):
    """Flips, overwrites, deletes and inserts bytes, but never changes a byte in `protected`
    (the type and offset fields of the requests): one flipped bit there turned a write below the
    canary range into a write inside it (offset + 8 MiB), and the canary saw the fuzzer's bytes.
    Deletions and insertions still shift everything after them; a header then read from shifted
    bytes has a random offset, which lands in the canary range with negligible probability."""
    data = bytearray(data)
    guarded = set()
    for a, b in protected: guarded.update(range(a, b))
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        if not data: break
        i = rng.randrange(len(data))
        r = rng.random()
        width = 4 if 0.6 <= r < 0.75 else 1
        if r < 0.85 and any(j in guarded for j in range(i, i + width)): continue
        if r < 0.4: data[i] ^= 1 << rng.randrange(8)
        elif r < 0.6: data[i] = rng.choice((0, 0xff, 0x7f, 0x80))
        elif r < 0.75: data[i:i + 4] = struct.pack('>I', pick(rng, U32, 32))
        else:
            if r < 0.85: del data[i:i + rng.randrange(1, 16)]
            else: data[i:i] = rng.randbytes(rng.randrange(1, 16))
            guarded = {j for j in guarded if j < i}   # what follows is shifted: its fields are random now
    return bytes(data)


def make_input(rng):
    kind = rng.random()
    protected = []
    if kind < 0.3:                     # handshake only
        d = handshake(rng, go=rng.random() < 0.5)
    elif kind < 0.9:                   # handshake + requests
        d = handshake(rng)
        for _ in range(rng.choice((1, 2, 5, 20))):
            r, short = request(rng)
            protected += [(len(d) + 6, len(d) + 8), (len(d) + 16, len(d) + 24)]   # type, offset
            d += r
            if short: break
    else:                              # raw noise
        d = rng.randbytes(rng.choice((1, 4, 8, 100, 5000)))
    if rng.random() < 0.5:
        d = mutate(rng, d, protected)
    if rng.random() < 0.15:
        d = d[:rng.randrange(len(d) + 1)]           # truncated
    return d


def run_input(path, data, eof_wait):
    """Sends one input on a fresh connection, half-closes, drains replies. Returns 'closed'
    (server closed after EOF), 'open' (server still holds it eof_wait s after the EOF),
    'backpressured' (after eof_wait s the server has still not read all of the input, so the EOF
    could not even be sent: a request waits for payload memory, which is the server's
    backpressure, not a hang) or 'refused'."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(eof_wait)
    try:
        s.connect(path)
    except OSError:
        return 'refused', False
    err = []
    eof_sent = threading.Event()

    def sender():
        try:
            s.sendall(data)     # the socket's timeout bounds this too: a server that reads nothing times it out
            s.shutdown(socket.SHUT_WR)
            eof_sent.set()
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    result = 'closed'
    deadline = time.time() + eof_wait + 30
    seen = b''
    try:
        while True:
            b = s.recv(1 << 20)
            if not b: break
            if len(seen) < 4096: seen += b[:4096]
            if time.time() > deadline:
                result = 'open'; break
    except socket.timeout:
        # Neither answering nor closing. If our sender could not send everything (still blocked, or
        # timed out), the server is not reading our input (backpressure); otherwise it has our EOF
        # and keeps the connection.
        t.join(1)
        result = 'open' if eof_sent.is_set() else 'backpressured'
    except OSError:
        pass
    t.join(5)
    s.close()
    replied = b'\x67\x44\x66\x98' in seen or b'\x66\x8e\x33\xef' in seen
    return result, replied


def canary(uri, stop, st, problems, rng):
    try:
        h = connect(uri)
    except Exception as e:
        problems.append('canary cannot connect: %r' % e); return
    model = {}
    try:
        while not stop.is_set():
            off = rng.randrange(CANARY[0], CANARY[1] - CHUNK, 4096)
            d = rng.randbytes(rng.choice((4096, 65536)))
            h.pwrite(d, off)
            for i in range(0, len(d), 4096): model[off + i] = d[i:i + 4096]
            if rng.random() < 0.2: h.flush()
            o = rng.choice(list(model))
            if bytes(h.pread(4096, o)) != model[o]:
                problems.append('canary read a wrong block at %d' % o)
            st['canary_ops'] += 1
            now = time.time()
            st['canary_max_ms'] = max(st['canary_max_ms'], round((now - st['canary_last']) * 1000))
            st['canary_last'] = now
        # Final full verification of the canary range.
        for o, d in model.items():
            if bytes(h.pread(4096, o)) != d:
                problems.append('canary final check: wrong block at %d' % o); break
    except Exception as e:
        problems.append('canary failed: %r' % e)
    finally:
        close(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--max-rss-mib', type=int, default=512, help='bound on the server RSS growth over its RSS before the stalled clients')
    ap.add_argument('--eof-wait', type=float, default=3.0, help='how long the server may keep a fuzz connection after EOF')
    ap.add_argument('--parallel', type=int, default=2, help='fuzzing connections at a time')
    ap.add_argument('--hogs', type=int, default=4, help='stalled clients held open during the run (reads, writes and silent ones in turn)')
    ap.add_argument('--max-canary-ms', type=int, default=30000, help='longest the canary may wait between two operations')
    ap.add_argument('--max-stop-seconds', type=float, default=10, help='bound on Stop-ShuruNbdServer with the hogs connected (its grace is 5 s)')
    ap.add_argument('--json')
    a = ap.parse_args()
    # The server takes 64 clients; one spare, for a replaced hog whose predecessor the server has
    # not forgotten yet: a fuzz connection refused at the limit would count as a problem.
    if a.hogs + a.parallel + 1 > MAX_CONNECTIONS - 1:
        ap.error('--hogs + --parallel + the canary must leave one of the server\'s %d connections free' % MAX_CONNECTIONS)
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix='shuru-fuzz-', dir='/tmp')
    base = os.path.join(work, 'base.raw')
    with open(base, 'wb') as f: f.write(random.Random(a.seed).randbytes(4 << 20) + bytes(SIZE - (4 << 20)))
    sock = os.path.join(work, 'f.sock')
    srv = Server(sock, os.path.join(work, 'cas'), rootfs=base)
    problems = []
    st = dict(inputs=0, transmission_replies=0, closed=0, still_open=0, backpressured=0, refused=0, canary_ops=0, canary_last=time.time(), max_rss_mib=0,
              canary_max_ms=0)
    stop = threading.Event()
    ct = threading.Thread(target=canary, args=(srv.uri, stop, st, problems, random.Random(a.seed + 1)))
    ct.start()
    log('fuzz: seed %d, %d s, server pid %d' % (a.seed, a.seconds, srv.pid))
    time.sleep(1)
    st['rss_start_mib'] = srv.rss_kib() // 1024
    hogs = Hogs(sock, a.hogs, ('read', 'write', 'silent') if a.hogs > 4 else ('read', 'write'))
    st['hogs_min_live'] = st['hogs_at_start'] = hogs.count()
    time.sleep(1)
    st['rss_with_hogs_mib'] = srv.rss_kib() // 1024
    t_end = time.time() + a.seconds
    open_seeds = []
    lock = threading.Lock()

    def fuzzer(frng):
        while time.time() < t_end and not problems:
            seed = frng.getrandbits(32)
            data = make_input(random.Random(seed))
            r, replied = run_input(sock, data, a.eof_wait)
            with lock:
                st['inputs'] += 1
                st['transmission_replies'] += replied
                st[{'closed': 'closed', 'open': 'still_open', 'backpressured': 'backpressured', 'refused': 'refused'}[r]] += 1
                if r == 'open' and len(open_seeds) < 5: open_seeds.append(seed)
                if r == 'refused': problems.append('connection refused (input seed %d)' % seed)

    fz = [threading.Thread(target=fuzzer, args=(random.Random(rng.getrandbits(64)),), daemon=True) for _ in range(a.parallel)]
    for t in fz: t.start()
    while any(t.is_alive() for t in fz):
        time.sleep(0.5)
        rss = srv.rss_kib() // 1024
        st['max_rss_mib'] = max(st['max_rss_mib'], rss)
        if not srv.alive():
            problems.append('server died'); break
        if rss - st['rss_start_mib'] > a.max_rss_mib:
            problems.append('server RSS grew %d MiB > %d MiB' % (rss - st['rss_start_mib'], a.max_rss_mib)); break
        st['hogs_min_live'] = min(st['hogs_min_live'], hogs.count())
        if time.time() - st['canary_last'] > a.max_canary_ms / 1000:
            problems.append('canary stalled for %d ms' % a.max_canary_ms); break
    for t in fz: t.join(a.eof_wait + 60)
    stop.set()
    ct.join(120)
    if ct.is_alive(): problems.append('canary hung')
    st['max_rss_mib'] = max(st['max_rss_mib'], srv.rss_kib() // 1024)
    alive = srv.alive()
    if not alive: problems.append('server died')
    hogs.freeze()
    st['hogs_at_stop'] = hogs.count()
    t = time.time()
    rc = srv.stop(60) if alive else None
    if alive and rc != 0: problems.append('clean stop failed (%r)' % rc)
    st['stop_seconds'] = round(time.time() - t, 1)      # with the stalled clients still connected, process exit included
    st['stop_cmdlet_seconds'] = srv.stop_seconds        # Stop-ShuruNbdServer alone
    if alive and (srv.stop_seconds is None or srv.stop_seconds > a.max_stop_seconds):
        problems.append('Stop-ShuruNbdServer took %s s (bound %s s)' % (srv.stop_seconds, a.max_stop_seconds))
    hogs.close()
    st['hogs_cut_off'] = hogs.summary()
    if hogs.failures:
        problems.append('hogs refused %d time(s) (the connection limit was reached): %s' % (sum(hogs.refused.values()), hogs.failures[0]))
    if st['canary_max_ms'] > a.max_canary_ms: problems.append('canary waited %d ms between two operations' % st['canary_max_ms'])
    st['rss_growth_mib'] = st['max_rss_mib'] - st['rss_start_mib']
    if open_seeds: st['open_input_seeds'] = open_seeds
    if st['still_open'] > 0: problems.append('%d connection(s) kept open %.0f s after EOF' % (st['still_open'], a.eof_wait))
    del st['canary_last']
    st.update(seconds=a.seconds, seed=a.seed, parallel=a.parallel, hogs=a.hogs, problems=problems[:20], ok=not problems)
    print(json.dumps(st, indent=1))
    if a.json:
        with open(a.json, 'w') as f: json.dump(st, f, indent=1)
    if not problems: shutil.rmtree(work, ignore_errors=True)
    else: print(''.join(srv.output[-30:]))
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
