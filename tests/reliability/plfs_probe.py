#!/usr/bin/python3
"""What a FUSE file system receives for each durability-related system call on this kernel.

Mounts plfs (tests/reliability/plfs/plfs.cpp) over a scratch directory, makes each call in turn
and prints the FUSE opcodes the kernel sent for it (counted in plfs's own receive loop, so requests
the library answers by itself, such as SYNCFS or TMPFILE, are counted too), once without and once
with the write-back cache. Also checks `plfs run`: a syncfs of the mount under it reaches the model.

Usage: plfs_probe.py [--json OUT]    (root; prints a markdown table)
"""
import argparse, ctypes, errno, fcntl, json, os, platform, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plfsctl

libc = ctypes.CDLL(None, use_errno=True)
O_TMPFILE = 0o20000000 | os.O_DIRECTORY
AT_FDCWD, AT_EMPTY_PATH, RENAME_NOREPLACE = -100, 0x1000, 1
NOISE = {'LOOKUP', 'GETATTR', 'GETXATTR', 'STATX'}   # attribute and name look-ups, listed apart


def call(fn, *a):
    r = fn(*a)
    return 'ok' if r == 0 or (isinstance(r, int) and r > 0) else 'errno %s' % errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())


def probe(m, fs):
    """[(call, result, opcodes, model events)] for one mount."""
    rows = []

    def step(name, action):
        before = fs.stats()
        try:
            res = action() or 'ok'
        except OSError as e:
            res = 'errno ' + errno.errorcode.get(e.errno, str(e.errno))
        after = fs.stats()
        diff = lambda k: {o: n - before[k].get(o, 0) for o, n in after[k].items() if n != before[k].get(o, 0)}
        ops = diff('fuse_opcodes')
        ev = {k: v for k, v in diff('ops').items() if k in ('fsync', 'fdatasync', 'fsyncdir', 'fsyncdir_datasync', 'entries_made_durable', 'write')}
        main = ', '.join('%s %d' % kv for kv in sorted(ops.items()) if kv[0] not in NOISE) or 'nothing'
        noise = ', '.join('%s %d' % kv for kv in sorted(ops.items()) if kv[0] in NOISE)
        rows.append((name, res, main + ('  (+ %s)' % noise if noise else ''), ', '.join('%s %d' % kv for kv in sorted(ev.items())),
                     after['dirty_files'], after['dirs_with_unsynced_entries']))

    f = os.path.join(m, 'f')
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    step('write(4 KiB) to a new file', lambda: os.write(fd, b'x' * 4096) and None)
    step('syncfs(fd)', lambda: call(libc.syncfs, fd))
    step('sync()', lambda: libc.sync() and None)
    step('sync_file_range(WRITE)', lambda: call(libc.sync_file_range, fd, ctypes.c_longlong(0), ctypes.c_longlong(0), 2))
    step('fdatasync(fd)', lambda: os.fdatasync(fd))
    step('fsync(fd)', lambda: os.fsync(fd))
    step('flock(LOCK_EX)', lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
    step('fcntl(F_SETLK) POSIX lock', lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
    step('close(fd)', lambda: os.close(fd))
    ro = os.open(f, os.O_RDONLY)
    step('fsync(fd opened O_RDONLY)', lambda: os.fsync(ro))
    os.close(ro)
    dfd = os.open(m, os.O_RDONLY | os.O_DIRECTORY)
    step('fsync(directory fd)', lambda: os.fsync(dfd))
    step('syncfs(directory fd)', lambda: call(libc.syncfs, dfd))
    step('open(dir, O_TMPFILE)', lambda: os.close(os.open(m, O_TMPFILE | os.O_RDWR, 0o644)))
    step('renameat2(RENAME_NOREPLACE)', lambda: call(libc.renameat2, AT_FDCWD, f.encode(), AT_FDCWD, (f + '2').encode(), RENAME_NOREPLACE))
    step('rename(2) over an existing name', lambda: (open(f, 'w').close(), os.rename(f + '2', f))[1])
    step('link(2)', lambda: os.link(f, f + '3'))
    step('unlink(2)', lambda: os.unlink(f + '3'))
    os.close(dfd)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json')
    a = ap.parse_args()
    why = plfsctl.unavailable()
    if why:
        print('plfs_probe: skipped: ' + why)
        return 0
    work = tempfile.mkdtemp(prefix='shuru-plprobe-', dir='/tmp')
    out = {'kernel': platform.release(), 'libfuse': subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'libfuse3-3'], capture_output=True, text=True).stdout}
    try:
        for wb in (False, True):
            fs = plfsctl.Plfs(os.path.join(work, 'b%d' % wb), os.path.join(work, 'm%d' % wb), os.path.join(work, 'c%d' % wb), writeback=wb)
            try:
                out['writeback' if wb else 'default'] = probe(fs.mount, fs)
                out['capable_writeback_cache' if wb else 'capable'] = fs.stats()['capable']
            finally:
                fs.unmount()
        # plfs run: the server's syncfs is held until the model has made everything durable.
        fs = plfsctl.Plfs(os.path.join(work, 'b2'), os.path.join(work, 'm2'), os.path.join(work, 'c2'))
        try:
            code = ("import ctypes,os; fd=os.open('%s/g',os.O_CREAT|os.O_RDWR); os.write(fd,b'y'*100); "
                    "ctypes.CDLL(None).syncfs(fd); ctypes.CDLL(None).syncfs(os.open('/tmp',os.O_RDONLY))" % fs.mount)
            subprocess.run(fs.runner() + ['/usr/bin/python3', '-c', code], check=True)
            st = fs.stats()
            out['plfs_run'] = {'syncfs_seen': st['ops'].get('syncfs_seen', 0), 'dirty_files_after': st['dirty_files'],
                               'dirs_with_unsynced_entries_after': st['dirs_with_unsynced_entries']}
        finally:
            fs.unmount()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('kernel %s, libfuse3 %s' % (out['kernel'], out['libfuse']))
    for mode in ('default', 'writeback'):
        print('\n%s:\n\n| call | result | FUSE requests (+ look-ups) | plfs model events | unsynced files, dirs after |\n|---|---|---|---|---|' % (
            'no write-back cache (what the harness uses)' if mode == 'default' else 'write-back cache on (-o writeback_cache)'))
        for name, res, ops, ev, df, dd in out[mode]:
            print('| %s | %s | %s | %s | %d, %d |' % (name, res, ops, ev or '-', df, dd))
    print('\nplfs run (seccomp): %s' % json.dumps(out['plfs_run']))
    if a.json:
        with open(a.json, 'w') as f: json.dump(out, f, indent=1)
    ok = out['plfs_run']['syncfs_seen'] == 1 and out['plfs_run']['dirty_files_after'] == 0
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
