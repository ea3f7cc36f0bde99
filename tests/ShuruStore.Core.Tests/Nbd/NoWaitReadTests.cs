using System.Runtime.InteropServices;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;
using ShuruStore.Core.Storage;
using ShuruStore.Core.Tests.Storage;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>
/// Small reads the device has at hand (<see cref="IBlockDevice.TryReadNoWait"/>) are answered by the
/// connection's reader thread; anything that would wait for a disk goes to the thread pool.
/// These tests take pages out of the page cache with POSIX_FADV_DONTNEED (clean pages of a file
/// on a disk filesystem: the test directory is under /tmp, on ext4 here) to make "would wait" real.
/// </summary>
public class NoWaitReadTests
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int MiB = 1024 * 1024;

    [DllImport("libc")]
    private static extern int posix_fadvise(int fd, long offset, long length, int advice);

    /// <summary>Writes the file's dirty pages out, then drops them from the page cache.</summary>
    private static void Evict(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        fs.Flush(flushToDisk: true);
        Assert.Equal(0, posix_fadvise((int)fs.SafeFileHandle.DangerousGetHandle(), 0, 0, 4 /* POSIX_FADV_DONTNEED */));
    }

    [Fact]
    public void A_flat_image_reads_without_waiting_only_what_the_page_cache_holds()
    {
        using var t = new TempDir();
        string path = t["disk.img"];
        var bytes = TempDir.Pattern(4 * MiB, 1);
        File.WriteAllBytes(path, bytes);
        Evict(path);
        using var d = new FlatFileDevice(path);
        var got = new byte[4096];

        Assert.False(d.TryReadNoWait(MiB, got));          // on the disk only: the caller must not wait here
        d.Read(MiB, got);                                  // the ordinary read brings it in
        Assert.True(d.TryReadNoWait(MiB, got));
        Assert.True(bytes.AsSpan(MiB, 4096).SequenceEqual(got));

        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
            fs.SetLength(2 * MiB);
        Assert.False(d.TryReadNoWait(3 * MiB, got));      // past the end of a file that shrank: Read decides (zeros)
        d.Read(3 * MiB, got);
        Assert.True(got.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void A_chunk_disk_reads_without_waiting_from_memory_the_page_cache_and_the_base()
    {
        using var t = new TempDir();
        var baseBytes = TempDir.Pattern(4 * CS, 2);
        File.WriteAllBytes(t["base.img"], baseBytes);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = 8 * CS });
        var got = new byte[4096];

        // A chunk still in the base, whose bytes are in the page cache (just written).
        Assert.True(d.TryReadNoWait(CS + 4096, got));
        Assert.True(baseBytes.AsSpan(CS + 4096, 4096).SequenceEqual(got));
        // Past the base and never written: zeros.
        Assert.True(d.TryReadNoWait(6 * CS, got));
        Assert.True(got.AsSpan().IndexOfAnyExcept((byte)0) < 0);

        // A dirty chunk is read from memory.
        var data = TempDir.Pattern(4096, 3);
        d.Write(2 * CS, data, WriteFlags.None);
        Assert.True(d.TryReadNoWait(2 * CS, got));
        Assert.Equal(data, got);

        // Once stored (flush) and verified by a read, from its open chunk file while its pages are cached.
        d.Flush();
        d.Read(2 * CS, got);
        Assert.True(d.TryReadNoWait(2 * CS, got));
        Assert.Equal(data, got);
        string chunkFile = Path.Combine(t.Cas, "chunks", ChunkHasher.Hash(ChunkOf(baseBytes, 2, data)).ToString());
        Assert.True(File.Exists(chunkFile));
        Evict(chunkFile);
        Assert.False(d.TryReadNoWait(2 * CS, got));       // on the disk only
        got.AsSpan().Clear();
        d.Read(2 * CS, got);
        Assert.Equal(data, got);
        Assert.True(d.TryReadNoWait(2 * CS, got));

        // A base chunk whose bytes left the page cache waits for the disk: not here.
        Evict(t["base.img"]);
        Assert.False(d.TryReadNoWait(3 * CS, got));
    }

    [Fact]
    public void A_spilled_chunk_is_not_read_without_waiting_and_reads_back_the_ordinary_way()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 16 * CS, DirtyBudgetBytes = CS });
        var data = TempDir.Pattern(4096, 4);
        for (int i = 0; i < 4; i++) d.Write(i * CS + 8192, data, WriteFlags.None); // partial chunks: spilled past the budget
        Assert.True(d.Statistics.SpilledChunks >= 2);
        var got = new byte[4096];
        int spilledAndRefused = 0;
        for (int i = 0; i < 4; i++)
        {
            if (!d.TryReadNoWait(i * CS + 8192, got))
            {
                spilledAndRefused++;
                d.Read(i * CS + 8192, got);
            }
            Assert.Equal(data, got);
        }
        Assert.True(spilledAndRefused >= 2, $"spilled chunks answered without waiting: {spilledAndRefused} refused");
    }

    [Fact]
    public void The_reader_thread_answers_what_the_device_has_at_hand_and_the_pool_the_rest()
    {
        var inner = new MemoryDevice(8 * MiB);
        var bytes = TempDir.Pattern(8 * MiB, 5);
        inner.Write(0, bytes, WriteFlags.None);
        var dev = new AtHandDevice(inner) { ColdFrom = 6 * MiB };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);

        // 32 small reads sent at once (one send, so they arrive together), 8 of them "cold".
        // A reader thread whose inline request runs past the rescue delay (the first batch JITs
        // the path; a loaded CI machine may stall any batch) hands reading to a rescuer, which
        // sends everything to the pool: so up to five batches, until one is answered undisturbed.
        var requests = new List<byte>();
        var offsets = new Dictionary<ulong, long>();
        for (ulong cookie = 1; cookie <= 32; cookie++)
        {
            long offset = cookie <= 24 ? (long)cookie * 65536 : 6 * MiB + (long)(cookie - 24) * 65536;
            offsets[cookie] = offset;
            requests.AddRange(NbdTestClient.Request(NbdProtocol.CmdRead, (ulong)offset, 4096, cookie));
        }
        var seen = new List<(int AtHand, int Cold, int Warm)>();
        for (int batch = 0; batch < 5; batch++)
        {
            dev.Reset();
            c.Send(requests.ToArray());
            for (int i = 0; i < 32; i++)
            {
                var r = c.ReadReply(4096);
                Assert.Equal(0u, r.Error);
                Assert.True(bytes.AsSpan((int)offsets[r.Cookie], 4096).SequenceEqual(r.Payload), $"cookie {r.Cookie}");
            }
            seen.Add((dev.AnsweredAtHand, dev.ColdReads, dev.WarmReads));
            Assert.Equal(8, dev.ColdReads);                      // never answered at hand
            Assert.Equal(24, dev.AnsweredAtHand + dev.WarmReads);
            if (dev.AnsweredAtHand == 24) return;                // only the cold ones went the ordinary way
        }
        Assert.Fail("no batch had its warm reads answered by the reader thread: " + string.Join(", ", seen));
    }

    private static byte[] ChunkOf(byte[] baseBytes, int chunk, byte[] head)
    {
        var c = baseBytes.AsSpan(chunk * CS, CS).ToArray();
        head.CopyTo(c, 0);
        return c;
    }

    /// <summary>Answers reads below <see cref="ColdFrom"/> at hand; counts which way each read went.</summary>
    private sealed class AtHandDevice(MemoryDevice inner) : IBlockDevice
    {
        public long ColdFrom { get; init; }
        public int AnsweredAtHand, ColdReads, WarmReads;

        public void Reset() => AnsweredAtHand = ColdReads = WarmReads = 0;

        public bool TryReadNoWait(long offset, Span<byte> buffer)
        {
            if (offset >= ColdFrom) return false;
            inner.Read(offset, buffer);
            Interlocked.Increment(ref AnsweredAtHand);
            return true;
        }

        public void Read(long offset, Span<byte> buffer)
        {
            Interlocked.Increment(ref offset >= ColdFrom ? ref ColdReads : ref WarmReads);
            inner.Read(offset, buffer);
        }

        public long Size => inner.Size;
        public BlockDeviceCapabilities Capabilities => inner.Capabilities | BlockDeviceCapabilities.NoWaitReads;
        public int PreferredBlockSize => inner.PreferredBlockSize;
        public int WriteBufferAlignment => 1;
        public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges) => false;
        public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags) => inner.Write(offset, data, flags);
        public void Flush() => inner.Flush();
        public void Trim(long offset, long length, WriteFlags flags) => inner.Trim(offset, length, flags);
        public void WriteZeroes(long offset, long length, WriteFlags flags) => inner.WriteZeroes(offset, length, flags);
        public void Cache(long offset, long length) => inner.Cache(offset, length);
        public void GetExtents(long offset, long length, List<Extent> extents) => inner.GetExtents(offset, length, extents);
        public void Dispose() => inner.Dispose();
    }
}
