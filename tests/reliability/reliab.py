"""Shared helpers of the reliability scripts (run them with /usr/bin/python3: it has `nbd`)."""
import os, re, signal, struct, subprocess, sys, threading, time, queue

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
CHUNK = 65536
BLOCK = 4096
HEX64 = re.compile(r'^[0-9a-f]{64}$')


def log(*a):
    print(time.strftime('%H:%M:%S'), *a, flush=True)


_PSHOME = None


def pwsh_cmd():
    """The pwsh that runs the driver: the repo's dotnet tool, started as `dotnet <PSHOME>/pwsh.dll`
    so that the engine runs in the very process we kill (`dotnet pwsh` adds a launcher process)."""
    global _PSHOME
    if _PSHOME is None:
        _PSHOME = os.environ.get('SHURU_PSHOME') or subprocess.run(
            ['dotnet', 'pwsh', '-NoProfile', '-NonInteractive', '-Command', '$PSHOME'],
            cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        os.environ['SHURU_PSHOME'] = _PSHOME
    return ['dotnet', os.path.join(_PSHOME, 'pwsh.dll'), '-NoProfile', '-NonInteractive', '-File',
            os.path.join(HERE, 'crash-server.ps1')]


class Server:
    """tests/reliability/crash-server.ps1 as a child process: READY line, checkpoint commands, kill -9."""

    def __init__(self, sock, cas, rootfs=None, index=None, state=None, disk_size=0, read_only=False, dirty_limit=0,
                 timeout=120, wrapper=None, env=None):
        """wrapper: command prefix (e.g. plfs run); env: extra environment variables for the server."""
        args = (wrapper or []) + pwsh_cmd() + ['-SocketPath', sock, '-CasPath', cas]
        if rootfs: args += ['-RootfsPath', rootfs]
        if index: args += ['-IndexPath', index]
        if state: args += ['-StatePath', state]
        if disk_size: args += ['-DiskSize', str(disk_size)]
        if dirty_limit: args += ['-DirtyMemoryLimit', str(dirty_limit)]
        if read_only: args += ['-ReadOnly']
        self.sock = sock
        self.proc = subprocess.Popen(args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
                                     env=dict(os.environ, **env) if env else None)
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.uri = None
        self.pid = None
        self.error = None
        self.stop_seconds = None     # how long Stop-ShuruNbdServer took (the STOPPED line), process exit aside
        deadline = time.time() + timeout
        while True:
            line = self.next_line(max(0.1, deadline - time.time()))
            if line is None:
                self.kill()
                raise RuntimeError('server did not start: ' + ''.join(self.output[-20:]))
            if line.startswith('READY '):
                _, self.uri, pid = line.split()
                self.pid = int(pid)
                return
            if line.startswith('ERROR '):
                self.error = line
                self.proc.wait(30)
                return

    def _pump(self):
        for line in self.proc.stdout:
            self.output.append(line)
            if line.startswith('STOPPED '):
                self.stop_seconds = float(line.split()[1])
            self.lines.put(line.rstrip('\n'))
        self.lines.put(None)

    def next_line(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def send(self, line):
        try:
            self.proc.stdin.write(line + '\n')
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def checkpoint(self, path, timeout=120):
        """Asks for a checkpoint; returns 'SAVED', 'FAILED <msg>' or None (server gone)."""
        if not self.send('checkpoint ' + path):
            return None
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.next_line(deadline - time.time())
            if line is None:
                return None
            if line == 'SAVED ' + path:
                return 'SAVED'
            if line.startswith('FAILED ' + path):
                return 'FAILED ' + line[len('FAILED ' + path):].strip()
        return None

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        try:
            with open('/proc/%d/status' % self.pid) as f:
                for l in f:
                    if l.startswith('VmRSS:'):
                        return int(l.split()[1])
        except OSError:
            return -1
        return -1

    def kill(self):
        """SIGKILL the whole process (the pwsh host that runs the engine)."""
        # The server runs in its own session (process group = our child's pid): kill all of it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(60)

    def stop(self, timeout=120):
        """Clean stop: flush, close clients, remove socket."""
        if self.proc.poll() is None:
            self.send('stop')
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError('server did not stop within %d s' % timeout)
        return self.proc.returncode


def connect(uri, timeout_ms=None):
    import nbd
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def b3sum(paths):
    """{path: blake3 hex} via Debian's b3sum."""
    out = {}
    paths = list(paths)
    for i in range(0, len(paths), 500):
        part = paths[i:i + 500]
        r = subprocess.run(['b3sum', '--no-names'] + part, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError('b3sum failed: ' + r.stderr)
        for p, h in zip(part, r.stdout.split()):
            out[p] = h
    return out


class ChunkAudit:
    """Every chunk file's name is the BLAKE3 of its content; chunks are immutable, so each file is
    hashed once (by name, size and mtime) across many audits."""

    def __init__(self, cas):
        self.dir = os.path.join(cas, 'chunks')
        self.seen = {}
        self.bad = []
        self.temps = 0

    def run(self):
        if not os.path.isdir(self.dir):
            return 0
        todo = []
        self.temps = 0
        for e in os.scandir(self.dir):
            if e.name.startswith('.tmp-'):
                self.temps += 1
                continue
            st = e.stat()
            key = (st.st_size, st.st_mtime_ns)
            if self.seen.get(e.name) != key:
                todo.append(e.path)
                self.seen[e.name] = key
        for p, h in b3sum(todo).items():
            name = os.path.basename(p)
            if not HEX64.match(name) or h != name:
                self.bad.append((name, h))
        return len(todo)


def parse_index(path):
    """shuru .idx -> (disk_size, parent, fallback, [hash or None])."""
    with open(path, 'rb') as f:
        data = f.read()
    size, n = struct.unpack_from('<QQ', data, 0)
    pos = 16
    plen, = struct.unpack_from('<I', data, pos); pos += 4
    parent = data[pos:pos + plen].decode(); pos += plen
    flen, = struct.unpack_from('<I', data, pos); pos += 4
    fallback = data[pos:pos + flen].decode(); pos += flen
    entries = []
    for _ in range(n):
        hl, = struct.unpack_from('<I', data, pos); pos += 4
        h = data[pos:pos + hl].decode(); pos += hl
        entries.append(None if h == 'ZERO' else h)
    if n != (size + CHUNK - 1) // CHUNK:
        raise ValueError('%s: %d entries for %d bytes' % (path, n, size))
    return size, parent or None, fallback or None, entries


def read_index_image(path, cas):
    """The disk an index describes, read straight from the files (no engine): chain, chunks, base."""
    size, parent, fallback, entries = parse_index(path)
    layers = [entries]
    seen = {os.path.abspath(path)}
    while parent:
        if parent in seen:
            raise ValueError('cycle at ' + parent)
        seen.add(parent)
        _, parent2, fb2, e2 = parse_index(parent)
        layers.append(e2)
        fallback = fallback or fb2
        parent = parent2
    base = open(fallback, 'rb').read() if fallback else b''
    out = bytearray(size)
    for i in range(len(entries)):
        h = next((l[i] for l in layers if i < len(l) and l[i]), None)
        if h:
            with open(os.path.join(cas, 'chunks', h), 'rb') as f:
                c = f.read()
        else:
            c = base[i * CHUNK:(i + 1) * CHUNK]
        c = c[:min(CHUNK, size - i * CHUNK)]
        out[i * CHUNK:i * CHUNK + len(c)] = c
    return bytes(out)


def close(h):
    """Disconnect cleanly (NBD_CMD_DISC) and free the handle."""
    try:
        h.shutdown()
    except Exception:
        pass
    try:
        h.close()
    except Exception:
        pass
