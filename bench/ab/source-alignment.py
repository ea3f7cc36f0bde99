import os, sys, time, mmap
# 1 GiB into a fresh file in 256 KiB pwrites from a page-aligned source at byte offset OFF
d = sys.argv[1]
res = {}
for rnd in range(2):
    for off in [int(x) for x in sys.argv[2:]]:
        buf = mmap.mmap(-1, (1 << 20) + 8192)
        buf.write(os.urandom((1 << 20) + 8192))
        mv = memoryview(buf)
        p = f'{d}/al-{off}.raw'
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        t0 = time.perf_counter(); c0 = os.times()
        for i in range(4096):
            s = off + (i % 4) * 262144
            os.pwrite(fd, mv[s:s + 262144], i * 262144)
        t1 = time.perf_counter(); c1 = os.times()
        os.close(fd); os.unlink(p); mv.release(); buf.close()
        print(f'off {off:5d}: {1000*(t1-t0):.0f} ms, sys {1000*(c1.system-c0.system):.0f} ms', flush=True)
