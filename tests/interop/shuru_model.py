#!/usr/bin/python3
"""An independent model of shuru-store 0.1.2's on-disk files, written from the compatibility
spec (../shared/spec/shuru-compat.md), not from ShuruStore's code. It plays shuru's part in the
interop tests: it writes a chunk store + index the way shuru does, and reads one back the way
shuru does. Chunk names come from Debian's b3sum, an independent BLAKE3.

  shuru_model.py write IMAGE CAS INDEX     ingest IMAGE fully (non-zero 64 KiB pieces) into CAS, write INDEX
  shuru_model.py read INDEX CAS OUT        materialize INDEX (chain + fallback) into the raw file OUT
"""
import os
import struct
import subprocess
import sys
import tempfile

CHUNK = 65536
ZERO = b"ZERO"


def b3(path):
    return subprocess.run(["b3sum", "--no-names", path], check=True, capture_output=True, text=True).stdout.strip()


def write_index(path, disk_size, parent, fallback, entries):
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
    with open(path, "rb") as f:
        data = f.read()
    disk_size, count = struct.unpack_from("<QQ", data, 0)
    assert count == (disk_size + CHUNK - 1) // CHUNK, f"{path}: entry count {count} does not match size {disk_size}"
    pos = 16
    paths = []
    for _ in range(2):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        paths.append(data[pos:pos + n].decode())
        pos += n
    entries = []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        h = data[pos:pos + n]
        pos += n
        assert h == ZERO or (len(h) == 64 and all(c in b"0123456789abcdef" for c in h)), f"bad hash {h!r}"
        entries.append(h)
    return disk_size, paths[0], paths[1], entries


def cmd_write(image, cas, index):
    chunks = os.path.join(cas, "chunks")
    os.makedirs(chunks, exist_ok=True)
    size = os.path.getsize(image)
    entries = []
    with open(image, "rb") as f:
        while True:
            piece = f.read(CHUNK)
            if not piece:
                break
            if piece.count(0) == len(piece):
                entries.append(ZERO)
                continue
            fd, tmp = tempfile.mkstemp(dir=cas)
            with os.fdopen(fd, "wb") as t:
                t.write(piece)  # a short last piece is stored short, as shuru does
            name = b3(tmp)
            os.replace(tmp, os.path.join(chunks, name))
            entries.append(name.encode())
    write_index(index, size, "", os.path.abspath(image), entries)


def cmd_read(index, cas, out):
    disk_size, parent, fallback, entries = read_index(index)
    layers = [entries]
    seen = {os.path.abspath(index)}
    while parent:
        assert os.path.abspath(parent) not in seen, "cycle"
        seen.add(os.path.abspath(parent))
        _, parent_next, fb, e = read_index(parent)
        layers.append(e)
        fallback = fallback or fb
        parent = parent_next
    base = open(fallback, "rb") if fallback else None
    with open(out, "wb") as o:
        o.truncate(disk_size)
        for i in range(len(entries)):
            piece = None
            for layer in layers:
                if i < len(layer) and layer[i] != ZERO:
                    with open(os.path.join(cas, "chunks", layer[i].decode()), "rb") as c:
                        piece = c.read()
                    break
            if piece is None and base is not None:
                base.seek(i * CHUNK)
                piece = base.read(CHUNK)
            if piece:
                piece = piece.ljust(CHUNK, b"\0")[: min(CHUNK, disk_size - i * CHUNK)]
                o.seek(i * CHUNK)
                o.write(piece)


if __name__ == "__main__":
    verb, *args = sys.argv[1:]
    {"write": cmd_write, "read": cmd_read}[verb](*args)
