#!/usr/bin/python3
"""An independent model of shuru-store 0.1.2's files and chain resolution, written from the
compatibility spec (/work/shared/spec/shuru-compat.md), never from ShuruStore's code or choices.
It plays shuru's part in the interop tests: it writes data directories the way shuru's server
and checkpoint flow write them, and reads a disk back the way shuru 0.1.2 reads it, defects
included, so that every place where ShuruStore deliberately differs shows up as a difference
the tests must assert. Chunk names come from Debian's b3sum, an independent BLAKE3.

What it follows, as the spec states it for 0.1.2:
- paths stored in an index (parent, fallback) are used as stored: a relative one is relative to
  this process's working directory (run the model where shuru would have run);
- at start only the booted index's own fallback_path is opened; a fallback that cannot be opened
  is dropped silently and unset chunks read as zeros; parents' fallbacks are never opened;
- the parent chain is walked once from the booted index; a parent that cannot be loaded stops the
  walk with a warning on stderr (the chain is silently truncated there); a parent with fewer
  entries answers ZERO beyond its end;
- num_chunks is not checked against disk_size (0.1.3 added that): num_chunks entries are read,
  and an index answers ZERO past its last entry;
- the fallback is read only where i * 65536 < its size; a missing chunk file reads as zeros;
- a checkpoint writes the whole live index with parent_path = the index path the server was
  started with, as given, and fallback_path = the live index's own if it had one, else the open
  fallback's path as given; saving an index creates its folder (create_dir_all);
- disk_size at start only grows the disk (ZERO entries appended).
Two things the spec leaves open are fixed here and said so: a server started in lazy mode (no
index file yet) writes checkpoints with no parent, and `save-live` writes the live index back to
the index path (the SDK keeps the live index there between runs), with the parent it was loaded
with. A parent cycle is reported (exit 3) instead of looping forever as shuru would.

  shuru_model.py write IMAGE CAS INDEX
      ingest IMAGE fully (non-zero 64 KiB pieces, a short last piece stored short) into CAS and
      write INDEX with IMAGE as its fallback (absolute), no parent
  shuru_model.py read INDEX CAS OUT [DISK_SIZE]
      start shuru on an existing INDEX (grown to DISK_SIZE if given) and read the whole disk into OUT
  shuru_model.py session ROOTFS CAS INDEX DISK_SIZE OP...
      shuru's start(ROOTFS, CAS, INDEX, socket, DISK_SIZE) (ROOTFS may be "", DISK_SIZE 0), then
      OPs in order: write:OFF:LEN:BYTE (BYTE in hex), read:OFF:LEN (reads, ingesting the base
      lazily), flush, checkpoint:PATH, save-live. OFF and LEN take k and M suffixes.
  shuru_model.py derive SRC OUT PARENT FALLBACK FIRST COUNT
      an index not written by shuru's server (another tool's): SRC's size and its entries
      FIRST..FIRST+COUNT-1, every other entry ZERO, with PARENT and FALLBACK as given ("" = none)
"""
import os
import struct
import subprocess
import sys
import tempfile

CHUNK = 65536
ZERO = b"ZERO"


def b3_bytes(data, cas):
    os.makedirs(cas, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cas)
    with os.fdopen(fd, "wb") as t:
        t.write(data)
    name = subprocess.run(["b3sum", "--no-names", tmp], check=True, capture_output=True, text=True).stdout.strip()
    return name, tmp


def store_chunk(cas, data):
    """Stores DATA under its BLAKE3 name (as it is: a short piece stays short) and returns the name."""
    chunks = os.path.join(cas, "chunks")
    os.makedirs(chunks, exist_ok=True)
    name, tmp = b3_bytes(data, cas)
    target = os.path.join(chunks, name)
    if os.path.exists(target):
        os.unlink(tmp)  # write-once: an existing name is never rewritten
    else:
        os.replace(tmp, target)
    return name.encode()


def write_index(path, disk_size, parent, fallback, entries):
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)  # create_dir_all
    out = bytearray()
    out += struct.pack("<QQ", disk_size, len(entries))
    for p in (parent, fallback):
        b = p.encode()
        out += struct.pack("<I", len(b)) + b
    for e in entries:
        out += struct.pack("<I", len(e)) + e
    with open(path, "wb") as f:
        f.write(out)


def read_index(path):
    """(disk_size, parent, fallback, entries); raises on a file that cannot be parsed. No count
    check and no hash validation: 0.1.2 has neither."""
    with open(path, "rb") as f:
        data = f.read()
    disk_size, count = struct.unpack_from("<QQ", data, 0)
    pos = 16
    paths = []
    for _ in range(2):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + n > len(data):
            raise ValueError(f"{path}: path runs past the end")
        paths.append(data[pos:pos + n].decode())
        pos += n
    entries = []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + n > len(data):
            raise ValueError(f"{path}: entry runs past the end")
        entries.append(data[pos:pos + n])
        pos += n
    return disk_size, paths[0], paths[1], entries


def entry(layer, i):
    return layer[i] if i < len(layer) else ZERO


class Shuru:
    """One shuru server: start, reads, writes, flush, checkpoint."""

    def __init__(self, rootfs, cas, index_path, disk_size, ingest=True):
        self.cas = cas
        self.ingest = ingest
        self.index_path = index_path
        self.booted = bool(index_path) and os.path.exists(index_path)
        if self.booted:
            size, self.own_parent, self.own_fallback, entries = read_index(index_path)
            self.live = list(entries)
            fallback = self.own_fallback
        else:
            size = os.path.getsize(rootfs)
            self.own_parent, self.own_fallback = "", ""
            self.live = [ZERO] * ((size + CHUNK - 1) // CHUNK)
            fallback = rootfs
        self.fallback_path = ""
        self.base = None
        if fallback:
            try:
                self.base = open(fallback, "rb")
                self.fallback_path = fallback
            except OSError:
                pass  # dropped silently: unset chunks read as zeros
        self.base_size = os.fstat(self.base.fileno()).st_size if self.base else 0
        self.parents = self._load_parents()
        self.size = size
        if disk_size > size:
            self.size = disk_size
        need = (self.size + CHUNK - 1) // CHUNK
        self.live += [ZERO] * max(0, need - len(self.live))
        self.dirty = {}

    def _load_parents(self):
        layers = []
        seen = {os.path.realpath(self.index_path)} if self.booted else set()
        parent = self.own_parent
        while parent:
            if os.path.realpath(parent) in seen:
                print(f"cycle at {parent}: shuru 0.1.2 would never terminate", file=sys.stderr)
                sys.exit(3)
            seen.add(os.path.realpath(parent))
            try:
                _, next_parent, _, entries = read_index(parent)
            except (OSError, ValueError, struct.error, UnicodeDecodeError) as e:
                print(f"warning: parent {parent} cannot be loaded ({e}); chain truncated", file=sys.stderr)
                break
            layers.append(entries)
            parent = next_parent
        return layers

    def _chunk_bytes(self, name):
        try:
            with open(os.path.join(self.cas, "chunks", name.decode()), "rb") as c:
                return c.read()
        except OSError:
            return b""  # a missing chunk file reads as zeros (a 0.1.2 defect)

    def read_chunk(self, i):
        if i in self.dirty:
            return bytes(self.dirty[i])
        if entry(self.live, i) != ZERO:
            return self._chunk_bytes(self.live[i]).ljust(CHUNK, b"\0")[:CHUNK]
        for layer in self.parents:
            if entry(layer, i) != ZERO:
                return self._chunk_bytes(layer[i]).ljust(CHUNK, b"\0")[:CHUNK]
        if self.base is not None and i * CHUNK < self.base_size:
            self.base.seek(i * CHUNK)
            piece = self.base.read(CHUNK)
            if self.ingest and piece.count(0) != len(piece):
                self.live[i] = store_chunk(self.cas, piece)  # lazy ingestion
            return piece.ljust(CHUNK, b"\0")
        return bytes(CHUNK)

    def read(self, off, length):
        out = bytearray()
        end = off + length
        while off < end:
            i = off // CHUNK
            take = min(end, (i + 1) * CHUNK) - off
            out += self.read_chunk(i)[off - i * CHUNK:off - i * CHUNK + take]
            off += take
        return bytes(out)

    def write(self, off, data):
        pos = 0
        while pos < len(data):
            i = (off + pos) // CHUNK
            if i not in self.dirty:
                self.dirty[i] = bytearray(self.read_chunk(i))
            at = (off + pos) - i * CHUNK
            take = min(CHUNK - at, len(data) - pos)
            self.dirty[i][at:at + take] = data[pos:pos + take]
            pos += take

    def flush(self):
        for i, buf in sorted(self.dirty.items()):
            # The chunk covers the disk's bytes only: the tail chunk of a disk whose size is not a
            # multiple of 64 KiB is stored short.
            self.live[i] = store_chunk(self.cas, bytes(buf[:min(CHUNK, self.size - i * CHUNK)]))
        self.dirty = {}

    def checkpoint(self, path):
        self.flush()
        parent = self.index_path if self.booted else ""
        write_index(path, self.size, parent, self.own_fallback or self.fallback_path, self.live)

    def save_live(self):
        self.flush()
        write_index(self.index_path, self.size, self.own_parent, self.own_fallback or self.fallback_path, self.live)


def number(text):
    scale = {"k": 1024, "K": 1024, "M": 1 << 20}.get(text[-1:], 1)
    return int(text[:-1] if scale != 1 else text, 0) * scale


def cmd_write(image, cas, index):
    size = os.path.getsize(image)
    entries = []
    with open(image, "rb") as f:
        while True:
            piece = f.read(CHUNK)
            if not piece:
                break
            entries.append(ZERO if piece.count(0) == len(piece) else store_chunk(cas, piece))
    write_index(index, size, "", os.path.abspath(image), entries)


def cmd_read(index, cas, out, disk_size="0"):
    # A reader's view: what a client reading the whole disk gets. The chunks lazy ingestion
    # would store are left out, so that reading never changes the store under test.
    s = Shuru("", cas, index, number(disk_size), ingest=False)
    with open(out, "wb") as o:
        o.truncate(s.size)
        for i in range((s.size + CHUNK - 1) // CHUNK):
            piece = s.read_chunk(i)[:min(CHUNK, s.size - i * CHUNK)]
            if piece.count(0) != len(piece):
                o.seek(i * CHUNK)
                o.write(piece)


def cmd_session(rootfs, cas, index, disk_size, *ops):
    s = Shuru(rootfs, cas, index, number(disk_size))
    for op in ops:
        verb, _, rest = op.partition(":")
        if verb == "write":
            off, length, byte = rest.split(":")
            s.write(number(off), bytes([int(byte, 16)]) * number(length))
        elif verb == "read":
            off, length = rest.split(":")
            s.read(number(off), number(length))
        elif verb == "flush":
            s.flush()
        elif verb == "checkpoint":
            s.checkpoint(rest)
        elif verb == "save-live":
            s.save_live()
        else:
            raise SystemExit(f"unknown operation {op}")


def cmd_derive(src, out, parent, fallback, first, count):
    size, _, _, entries = read_index(src)
    lo, hi = int(first), int(first) + int(count)
    write_index(out, size, parent, fallback, [e if lo <= i < hi else ZERO for i, e in enumerate(entries)])


if __name__ == "__main__":
    verb, *args = sys.argv[1:]
    {"write": cmd_write, "read": cmd_read, "session": cmd_session, "derive": cmd_derive}[verb](*args)
