#!/usr/bin/python3
"""Load test: eight concurrent fio clients (ioengine=nbd, one connection each) doing verified
random writes and reads (verify=crc32c, verify_backlog) on their own 4 MiB regions, while the
driver saves checkpoints every --interval seconds. Afterwards every checkpoint is verified:
it loads, every chunk it names exists and hashes to its name, the engine boots it read-only and
`nbdcopy` reads exactly what the .idx and chunk files say, and every 4 KiB block is either
untouched (zeros) or a whole fio block for that offset (no torn write in the cut).

Usage: load.py --seconds 60 [--json OUT]   (exit 0 = no fio error, no verify mismatch, every checkpoint good)
"""
import argparse, json, os, shutil, struct, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliab import BLOCK, Server, b3sum, log, parse_index, read_index_image

JOBS, REGION = 8, 4 << 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=int, default=60)
    ap.add_argument('--interval', type=float, default=5)
    ap.add_argument('--json')
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix='shuru-load-', dir='/tmp')
    size = JOBS * REGION
    base = os.path.join(work, 'base.raw')
    with open(base, 'wb') as f: f.truncate(size)
    cas = os.path.join(work, 'cas')
    srv = Server(os.path.join(work, 'l.sock'), cas, rootfs=base, state=os.path.join(work, 'live.state'))
    problems, cks = [], []
    st = dict(jobs=JOBS, seconds=a.seconds)
    fio = ['fio', '--name=load', '--ioengine=nbd', '--uri=' + srv.uri, '--rw=randrw', '--rwmixread=50', '--bs=4k',
           '--size=%d' % REGION, '--offset_increment=%d' % REGION, '--numjobs=%d' % JOBS, '--iodepth=8',
           '--verify=crc32c', '--verify_backlog=64', '--verify_fatal=1', '--do_verify=1',
           '--time_based', '--runtime=%d' % a.seconds, '--group_reporting=0', '--output-format=json',
           '--verify_state_save=0']
    log('load: %d fio jobs for %d s on %s' % (JOBS, a.seconds, srv.uri))
    p = subprocess.Popen(fio, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work)
    t0 = time.time()
    while p.poll() is None:
        time.sleep(a.interval)
        if p.poll() is not None: break
        path = os.path.join(work, 'ck-%02d.idx' % len(cks))
        tc = time.time()
        r = srv.checkpoint(path)
        log('checkpoint %s: %s in %.1f s' % (os.path.basename(path), r, time.time() - tc))
        if r == 'SAVED': cks.append(path)
        else: problems.append('checkpoint during load: %s' % r)
    out, err = p.communicate()
    st['fio_exit'] = p.returncode
    try:
        res = json.loads(out[out.index('{'):])
        jobs = res['jobs']
        st['fio_errors'] = sum(j['error'] for j in jobs)
        st['read_ios'] = sum(j['read']['total_ios'] for j in jobs)
        st['write_ios'] = sum(j['write']['total_ios'] for j in jobs)
        st['read_mib'] = round(sum(j['read']['io_bytes'] for j in jobs) / 2**20)
        st['write_mib'] = round(sum(j['write']['io_bytes'] for j in jobs) / 2**20)
    except Exception as e:
        problems.append('fio output unreadable: %r %s' % (e, err[-500:]))
    if p.returncode != 0 or st.get('fio_errors'):
        problems.append('fio failed (exit %s): %s' % (p.returncode, err[-1000:]))
    if 'verify' in err.lower() and 'bad' in err.lower():
        problems.append('fio verify mismatch: ' + err[-1000:])
    srv.stop()
    # Every checkpoint: loads, names existing chunks that hash right, boots, reads as the files say, no torn block.
    st['checkpoints'] = len(cks)
    st['checkpoints_verified'] = 0
    for ck in cks:
        try:
            entries = parse_index(ck)[3]
            names = sorted({h for h in entries if h})
            paths = [os.path.join(cas, 'chunks', n) for n in names]
            missing = [n for n, q in zip(names, paths) if not os.path.isfile(q)]
            if missing: problems.append('%s names missing chunks %s' % (ck, missing[:3])); continue
            bad = [os.path.basename(q) for q, h in b3sum(paths).items() if h != os.path.basename(q)]
            if bad: problems.append('%s: chunks do not hash to their names: %s' % (ck, bad[:3])); continue
            files_view = read_index_image(ck, cas)
            ro = Server(os.path.join(work, 'r.sock'), cas, index=ck, read_only=True)
            copy = os.path.join(work, 'copy.raw')
            r = subprocess.run(['nbdcopy', ro.uri, copy], capture_output=True, text=True)
            ro.stop()
            if r.returncode != 0: problems.append('nbdcopy of %s failed: %s' % (ck, r.stderr)); continue
            with open(copy, 'rb') as f: booted = f.read()
            os.unlink(copy)
            if booted != files_view: problems.append('%s: the booted disk differs from its files' % ck); continue
            torn = 0
            for off in range(0, size, BLOCK):
                blk = booted[off:off + BLOCK]
                if blk.count(0) == BLOCK: continue
                magic, _, ln, _, boff = struct.unpack_from('<HHIQQ', blk)
                if magic != 0xacca or ln != BLOCK or boff != off: torn += 1
            if torn: problems.append('%s: %d blocks are not whole fio blocks' % (ck, torn)); continue
            st['checkpoints_verified'] += 1
        except Exception as e:
            problems.append('%s: %r' % (ck, e))
    st.update(problems=problems[:20], ok=not problems)
    print(json.dumps(st, indent=1))
    if a.json:
        with open(a.json, 'w') as f: json.dump(st, f, indent=1)
    if not problems: shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
