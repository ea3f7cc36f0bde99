#!/usr/bin/python3
"""Stalled writers against the server-wide payload budget: may clients that stop in the middle of
a WRITE payload keep the server's request memory from everyone else for good?

--writers clients each send a 32 MiB WRITE header and part of its payload, then nothing (the write
hogs of hogs.py; with the default budget of 256 MiB, nine hold all of it). Then:
  1. a well-behaved client sends one 32 MiB READ inside the disk: it must be answered within --wait s;
  2. as many clients as the connection limit leaves room for each send a 32 MiB READ (or, with
     --leave-with write, a WRITE header and 64 KiB of its payload) and disconnect: within
     --leave-wait s the server must let them go, so that a new client still gets in (it must
     notice that they left while they wait for memory, not when memory frees).
A small request (inside the per-connection allowance) is answered at once throughout; that is
checked too, as the contrast.

Usage: budget.py [--writers 12] [--wait 120] [--leave-with read|write] [--leave-wait 5] [--json OUT]   (exit 0 = both promises kept)
"""
import argparse, json, os, shutil, socket, struct, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd
from reliab import Server, close, connect, log
from hogs import IHAVEOPT, REQ_MAGIC, stall

SIZE = 64 << 20
BIG = 32 << 20
MAX_CONNECTIONS = 64          # the server's default connection limit


def gave_up_client(path, kind):
    """Negotiates, sends one 32 MiB request and disconnects at once; True if the server let it in.
    kind 'read': a READ header (the server has read all of it); 'write': a WRITE header and the
    first 64 KiB of its payload (bytes the server has not read yet when the client leaves)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        if len(s.recv(18)) < 18: return False
        s.sendall(struct.pack('>I', 3) + struct.pack('>QII', IHAVEOPT, 7, 12) + struct.pack('>I', 6) + b'export' + struct.pack('>H', 0))
        time.sleep(0.05)
        s.recv(65536)
        if kind == 'read': s.sendall(struct.pack('>IHHQQI', REQ_MAGIC, 0, 0, 7, 0, BIG))
        else: s.sendall(struct.pack('>IHHQQI', REQ_MAGIC, 0, 1, 7, 0, BIG) + bytes(64 << 10))
        return True
    except OSError:
        return False
    finally:
        s.close()


def answered_within(h, buf, wait):
    """Issues a READ into buf; seconds until its answer, or None if none came within wait."""
    t = time.time()
    c = h.aio_pread(buf, 0)
    while time.time() - t < wait:
        h.poll(1000)
        if h.aio_command_completed(c): return round(time.time() - t, 1)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--writers', type=int, default=12)
    ap.add_argument('--wait', type=float, default=120)
    ap.add_argument('--leave-with', choices=('read', 'write'), default='read',
                    help='what the clients that leave send first: a READ header, or a WRITE header and part of its payload')
    ap.add_argument('--leave-wait', type=float, default=5, help='how soon the server must let the clients that left go')
    ap.add_argument('--json')
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix='shuru-budget-', dir='/tmp')
    base = os.path.join(work, 'base.raw')
    with open(base, 'wb') as f: f.truncate(SIZE)
    srv = Server(os.path.join(work, 'b.sock'), os.path.join(work, 'cas'), rootfs=base)
    problems, st = [], dict(writers=a.writers, wait_s=a.wait, leave_with=a.leave_with)
    writers = [stall(srv.sock, 'write') for _ in range(a.writers)]
    time.sleep(2)
    log('budget: %d stalled writers; a 32 MiB READ from a well-behaved client' % a.writers)
    h = connect(srv.uri)
    small = answered_within(h, nbd.Buffer(64 << 10), 10)
    st['small_read_s'] = small
    if small is None: problems.append('a 64 KiB READ was not answered within 10 s')
    st['big_read_s'] = answered_within(h, nbd.Buffer(BIG), a.wait)
    if st['big_read_s'] is None:
        problems.append('a 32 MiB READ was not answered within %d s while %d writers were stalled' % (a.wait, a.writers))
        del h               # closes the socket without NBD_CMD_DISC: libnbd's shutdown would wait for the READ in flight
    else:
        close(h)

    # Phase 2 on a full budget again: the first writers may have been cut off by now.
    for w in writers: w.close()
    time.sleep(1)
    writers = [stall(srv.sock, 'write') for _ in range(a.writers)]
    time.sleep(2)
    room = MAX_CONNECTIONS - a.writers
    log('budget: %d clients send a 32 MiB %s and leave; then a new client' % (room, a.leave_with.upper()))
    st['gave_up_let_in'] = sum(gave_up_client(srv.sock, a.leave_with) for _ in range(room))
    t, st['new_client_after_s'] = time.time(), None
    while time.time() - t < a.leave_wait:
        try:
            h = connect(srv.uri)
            close(h)
            st['new_client_after_s'] = round(time.time() - t, 1)
            break
        except nbd.Error:
            time.sleep(1)
    if st['new_client_after_s'] is None:
        problems.append('%d clients sent a 32 MiB %s and left; %g s later a new client was still refused (the connection limit)' % (
            room, a.leave_with.upper(), a.leave_wait))
    tt = time.time()
    srv.stop(60)
    st['stop_seconds'] = round(time.time() - tt, 1)
    for s in writers: s.close()
    st.update(problems=problems, ok=not problems)
    print(json.dumps(st, indent=1))
    if a.json:
        with open(a.json, 'w') as f: json.dump(st, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
