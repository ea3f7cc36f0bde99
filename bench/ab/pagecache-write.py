#!/usr/bin/python3
# page-cache write cost: 1 GiB as one file in 256 KiB pwrites vs 16384 files of 64 KiB; then fsync/syncfs
import os, sys, time
mode, d = sys.argv[1], sys.argv[2]
src = os.urandom(1 << 20)
t0 = time.perf_counter()
if mode == 'big':
    fd = os.open(f'{d}/big.raw', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    for i in range(4096):
        os.pwrite(fd, memoryview(src)[(i % 4) * 262144:(i % 4 + 1) * 262144], i * 262144)
    t1 = time.perf_counter(); os.fsync(fd); os.close(fd)
else:
    os.makedirs(f'{d}/chunks', exist_ok=True)
    for i in range(16384):
        fd = os.open(f'{d}/chunks/{i:08x}', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, memoryview(src)[(i % 16) * 65536:(i % 16 + 1) * 65536]); os.close(fd)
    t1 = time.perf_counter(); os.sync()
t2 = time.perf_counter()
print(f'{mode}: write {1000*(t1-t0):.0f} ms, sync {1000*(t2-t1):.0f} ms')
