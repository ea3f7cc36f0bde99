"""Stalled clients ("hogs") kept stalled for a whole run, for the server-wide memory bound.

Three kinds, each a way a client can stop half-way:
  read    after GO, pipelines 64 READs of a whole 16 MiB disk and never reads a reply: the server
          holds the replies it has built until sending one blocks past its reply-write timeout;
  write   after GO, sends a 32 MiB WRITE header and only part of the payload, then nothing: the
          server holds the payload buffer while it waits for the rest;
  silent  connects, takes the greeting and never says anything: the server waits in the handshake.

The server may cut a hog off (that is what its timeouts are for). A hog it cut off is replaced
by a new one of the same kind, so that the number of stalled clients stays the same all along;
how long each one lived is kept per kind (the timeouts, measured).
"""
import select, socket, struct, threading, time

IHAVEOPT, REQ_MAGIC = 0x49484156454F5054, 0x25609513
KINDS = ('read', 'write', 'silent')
READ_LENGTH = 16 << 20            # the fuzz disk's size: a READ the server must really serve
WRITE_LENGTH = 32 << 20           # the largest payload the server accepts
# After a cut, wait before replacing the hog: the server forgets the closed connection a moment
# after closing it, and a replacement arriving first would count against its connection limit.
REPLACE_DELAY = 1.0


def stall(path, kind):
    """Connects one hog of this kind and stalls it; returns the socket (kept open).
    Raises OSError when the server does not let it in (e.g. refused at its connection limit)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(10)
    greeting = s.recv(18)
    if len(greeting) < 18:
        s.close()
        raise OSError('no greeting (refused at the connection limit?)')
    if kind == 'silent':
        return s
    s.sendall(struct.pack('>I', 3) + struct.pack('>QII', IHAVEOPT, 7, 12) + struct.pack('>I', 6) + b'export' + struct.pack('>H', 0))
    time.sleep(0.1)
    s.recv(65536)
    s.setblocking(False)
    try:
        if kind == 'read':
            s.sendall(b''.join(struct.pack('>IHHQQI', REQ_MAGIC, 0, 0, j, 0, READ_LENGTH) for j in range(64)))
        else:
            s.sendall(struct.pack('>IHHQQI', REQ_MAGIC, 0, 1, 1, 0, WRITE_LENGTH) + bytes([0x5a]) * (WRITE_LENGTH // 2))
    except BlockingIOError:
        pass          # as much as the socket took: the rest is never sent
    return s


class Hogs:
    """n hogs, kinds in turn, replaced when the server cuts one off (see the module's doc)."""

    def __init__(self, path, n, kinds=KINDS):
        self.path, self.kinds = path, kinds
        self.lock = threading.Lock()
        self.live = {}              # fd -> [socket, kind, connected at]
        self.lifetimes = {k: [] for k in kinds}
        self.refused = {k: 0 for k in kinds}    # attempts the server did not let in (retried)
        self.failures = []          # why, the first few
        self.stop = threading.Event()
        self.missing = []           # kinds to replace (also those not let in at the start)
        for i in range(n):
            if self._add(kinds[i % len(kinds)]) is None: self.missing.append(kinds[i % len(kinds)])
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _add(self, kind):
        try:
            s = stall(self.path, kind)
        except OSError as e:
            self.refused[kind] += 1
            if len(self.failures) < 5: self.failures.append('%s hog: %s' % (kind, e))
            return None
        with self.lock:
            self.live[s.fileno()] = [s, kind, time.time()]
        return s.fileno()

    def _watch(self):
        # POLLRDHUP shows the server's close without reading (a read hog never reads its replies).
        p = select.poll()
        with self.lock:
            for fd in self.live: p.register(fd, select.POLLRDHUP)
        missing = self.missing
        while not self.stop.is_set():
            for fd, _ in p.poll(200):
                with self.lock:
                    s, kind, since = self.live.pop(fd)
                p.unregister(fd)
                s.close()
                self.lifetimes[kind].append(time.time() - since)
                missing.append(kind)
            if missing and not self.stop.wait(REPLACE_DELAY):
                for kind in list(missing):
                    fd = self._add(kind)
                    if fd is not None:
                        p.register(fd, select.POLLRDHUP)
                        missing.remove(kind)

    def count(self):
        with self.lock:
            return len(self.live)

    def freeze(self):
        """Stops replacing hogs (before the server's stop, which cuts them all), keeps them open."""
        self.stop.set()
        self.thread.join(10)

    def close(self):
        self.freeze()
        with self.lock:
            for s, _, _ in self.live.values(): s.close()
            self.live.clear()

    def summary(self):
        """Per kind: how many the server cut off and how long they had lived (seconds)."""
        out = {}
        for k, ls in self.lifetimes.items():
            out[k] = dict(cut_off=len(ls), refused_then=self.refused[k], lived_min_s=round(min(ls), 1) if ls else None, lived_max_s=round(max(ls), 1) if ls else None)
        return out
