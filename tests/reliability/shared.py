#!/usr/bin/python3
"""Shared store: two servers in two pwsh processes write to one chunk store (overlapping content:
both draw whole chunks from one pool of patterns, over the same base image) and save checkpoints,
while a third pwsh process imports images made of the same patterns and runs collections in a
loop, knowing nothing of the servers (grace period 0, only its own imports kept).

Promises checked at the end:
  * every chunk file's name is the BLAKE3 of its content (b3sum);
  * every checkpoint a server reported SAVED reads back, straight from the .idx and chunk files,
    exactly what the disk held when it was saved;
  * every index the collector kept reads back its source image;
  * each server, restarted from its state file, serves exactly the last flushed content.

Usage: shared.py --seconds 60 --seed 1 [--dir DIR] [--json OUT]   (exit 0 = every promise kept)
"""
import argparse, json, os, random, shutil, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliab import CHUNK, ChunkAudit, Server, close, connect, log, pwsh_cmd, read_index_image, HERE, REPO

DISK_CHUNKS = 256           # 16 MiB disks
POOL = 48                   # whole-chunk patterns shared by every writer


def pattern(i):
    rnd = random.Random(1000 + i)
    return bytes(rnd.getrandbits(8) for _ in range(256)) * (CHUNK // 256)


COLLECTOR = r'''
param([string] $Cas, [string] $Dir, [int] $Seconds, [int] $Seed)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $env:SHURU_REPO 'out/ShuruStore/ShuruStore.psd1')
$rnd = [System.Random]::new($Seed)
$kept = [System.Collections.Generic.List[string]]::new()
$deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
$n = 0
while ([DateTime]::UtcNow -lt $deadline) {
    $n++
    # An image of 28 whole chunks drawn from the shared pattern pool (files written by python)
    $img = Join-Path $Dir ("import-$n.img")
    $pool = Get-ChildItem (Join-Path $Dir 'pool') -File
    $fs = [System.IO.File]::Create($img)
    for ($i = 0; $i -lt 28; $i++) { $b = [System.IO.File]::ReadAllBytes($pool[$rnd.Next($pool.Count)].FullName); $fs.Write($b, 0, $b.Length) }
    # and 4 chunks of its own: garbage once its index is forgotten
    $own = [byte[]]::new(4 * 65536); $rnd.NextBytes($own); $fs.Write($own, 0, $own.Length)
    $fs.Dispose()
    $idx = Join-Path $Dir ("import-$n.idx")
    $null = Import-ShuruDisk -Path $img -CasPath $Cas -IndexPath $idx
    # Keep every other import; forget the rest (their chunks become garbage).
    if ($n % 2 -eq 0) { $kept.Add($idx) } else { Remove-Item $idx }
    [Console]::Out.WriteLine("IMPORT $idx $img " + ($n % 2 -eq 0)); [Console]::Out.Flush()
    if ($kept.Count -gt 0) {
        $r = Remove-ShuruUnusedChunk -CasPath $Cas -IndexPath $kept -GracePeriod 0 -Confirm:$false
        [Console]::Out.WriteLine("COLLECT removed=$($r.ChunksRemoved) rescued=$($r.ChunksRescued)"); [Console]::Out.Flush()
    }
    Start-Sleep -Milliseconds ($rnd.Next(200, 1200))
}
[Console]::Out.WriteLine('DONE'); [Console]::Out.Flush()
'''


class Writer:
    """One server process and the client that writes to it; `model` is what every byte should be."""

    def __init__(self, name, d, cas, base, seed):
        self.name = name
        self.sock = os.path.join(d, name + '.sock')
        self.state = os.path.join(d, name + '.state')
        self.cas, self.base, self.dir = cas, base, d
        self.rnd = random.Random(seed)
        with open(base, 'rb') as f:
            self.model = bytearray(f.read())
        self.server = Server(self.sock, cas, rootfs=base, state=self.state)
        if self.server.error:
            raise RuntimeError(self.server.error)
        self.h = connect(self.server.uri)
        self.checkpoints = []       # (path, expected bytes)
        self.writes = 0
        self.failures = []

    def step(self):
        r = self.rnd.random()
        if r < 0.6:
            c = self.rnd.randrange(DISK_CHUNKS)
            data = pattern(self.rnd.randrange(POOL))
            self.h.pwrite(data, c * CHUNK)
            self.model[c * CHUNK:(c + 1) * CHUNK] = data
        elif r < 0.9:
            off = self.rnd.randrange(DISK_CHUNKS * CHUNK // 4096) * 4096
            data = bytes([self.rnd.randrange(256)]) * 4096
            self.h.pwrite(data, off)
            self.model[off:off + 4096] = data
        else:
            c = self.rnd.randrange(DISK_CHUNKS)
            data = bytes(self.h.pread(CHUNK, c * CHUNK))
            if data != bytes(self.model[c * CHUNK:(c + 1) * CHUNK]):
                self.failures.append('%s: chunk %d read back wrong while running' % (self.name, c))
        self.writes += 1

    def checkpoint(self):
        self.h.flush()
        path = os.path.join(self.dir, '%s-cp%d.idx' % (self.name, len(self.checkpoints)))
        answer = self.server.checkpoint(path)
        if answer == 'SAVED':
            self.checkpoints.append((path, bytes(self.model)))
        else:
            self.failures.append('%s: checkpoint %s: %s' % (self.name, path, answer))

    def finish(self):
        self.h.flush()
        close(self.h)
        self.server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=int, default=60)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--dir')
    ap.add_argument('--json')
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix='shuru-shared-', dir='/tmp')
    os.makedirs(os.path.join(d, 'pool'), exist_ok=True)
    cas = os.path.join(d, 'cas')
    rnd = random.Random(a.seed)
    for i in range(POOL):
        with open(os.path.join(d, 'pool', 'p%02d' % i), 'wb') as f:
            f.write(pattern(i))
    base = os.path.join(d, 'base.img')
    with open(base, 'wb') as f:
        for _ in range(DISK_CHUNKS):
            f.write(pattern(rnd.randrange(POOL)) if rnd.random() < 0.7 else bytes(CHUNK))

    problems = []
    writers = [Writer('a', d, cas, base, a.seed * 10 + 1), Writer('b', d, cas, base, a.seed * 10 + 2)]
    env = dict(os.environ, SHURU_REPO=REPO)
    script = os.path.join(d, 'collector.ps1')
    with open(script, 'w') as f:
        f.write(COLLECTOR)
    cmd = pwsh_cmd()[:-1] + [script, '-Cas', cas, '-Dir', d, '-Seconds', str(a.seconds), '-Seed', str(a.seed)]
    collector = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(collector.stdout.readline, '')), daemon=True)
    reader.start()
    log('writing for %d s while a third process imports and collects' % a.seconds)
    end = time.time() + a.seconds
    last_cp = time.time()
    while time.time() < end and collector.poll() is None:
        for w in writers:
            for _ in range(20):
                w.step()
            if time.time() - last_cp > 3:
                w.checkpoint()
        if time.time() - last_cp > 3:
            last_cp = time.time()
    collector.wait(300)
    reader.join(10)
    for w in writers:
        w.finish()
        problems += w.failures
    imports = [l.split() for l in lines if l.startswith('IMPORT ')]
    collections = [l for l in lines if l.startswith('COLLECT ')]
    if collector.returncode != 0 or not any(l.startswith('DONE') for l in lines):
        problems.append('collector failed (%s): %s' % (collector.returncode, ''.join(lines[-20:])))

    log('verifying')
    audit = ChunkAudit(cas)
    audit.run()
    problems += ['chunk %s hashes to %s' % b for b in audit.bad]
    for w in writers:
        for path, expected in w.checkpoints:
            try:
                if read_index_image(path, cas) != expected:
                    problems.append('checkpoint %s reads back wrong' % path)
            except (OSError, ValueError) as e:
                problems.append('checkpoint %s does not resolve: %s' % (path, e))
    for _, idx, img, keep in imports:
        if keep == 'True':
            try:
                if read_index_image(idx, cas) != open(img, 'rb').read():
                    problems.append('kept import %s reads back wrong' % idx)
            except (OSError, ValueError) as e:
                problems.append('kept import %s does not resolve: %s' % (idx, e))
    for w in writers:
        s = Server(w.sock, cas, rootfs=base, state=w.state)
        try:
            if s.error:
                problems.append('%s does not restart from its state file: %s' % (w.name, s.error))
                continue
            h = connect(s.uri)
            got = bytearray()
            for off in range(0, DISK_CHUNKS * CHUNK, 1 << 20):
                got += h.pread(1 << 20, off)
            close(h)
            if bytes(got) != bytes(w.model):
                bad = sum(1 for c in range(DISK_CHUNKS) if got[c * CHUNK:(c + 1) * CHUNK] != w.model[c * CHUNK:(c + 1) * CHUNK])
                problems.append('%s restarted from its state file: %d chunks differ' % (w.name, bad))
        finally:
            s.stop()

    summary = {
        'seconds': a.seconds, 'seed': a.seed,
        'writes': sum(w.writes for w in writers),
        'checkpoints': sum(len(w.checkpoints) for w in writers),
        'imports': len(imports), 'collections': len(collections),
        'removed': sum(int(c.split()[1].split('=')[1]) for c in collections),
        'rescued': sum(int(c.split()[2].split('=')[1]) for c in collections),
        'chunk_files_hashed': len(audit.seen),
        'problems': len(problems), 'details': problems[:20],
    }
    print(json.dumps(summary), flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(summary, f)
    if not a.dir:
        shutil.rmtree(d, ignore_errors=True)
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
