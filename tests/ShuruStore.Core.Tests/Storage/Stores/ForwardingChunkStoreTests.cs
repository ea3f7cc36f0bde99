using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>
/// Adding a layer in front of a chunk store is one class: a store derived from
/// <see cref="ForwardingChunkStore"/> keeps every fast path of the store behind it (batched
/// writes, no-wait reads, file ranges for sendfile), and a layer that cannot offer one says so in
/// its capabilities and the disk visibly does without it.
/// </summary>
public class ForwardingChunkStoreTests
{
    private const int CS = 65536;

    /// <summary>A layer that only counts what reaches the store behind it.</summary>
    private sealed class CountingStore(IChunkStore inner, ChunkStoreCapabilities? capabilities = null) : ForwardingChunkStore(inner)
    {
        public int Batches, LargestBatch, NoWaitCalls, NoWaitServed, LeaseCalls, LeasesGranted, RangeReads;

        public override ChunkStoreCapabilities Capabilities => capabilities ?? base.Capabilities;

        public override int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false)
        {
            lock (this) { Batches++; LargestBatch = Math.Max(LargestBatch, chunks.Count); }
            return base.WriteMany(chunks, stored, syncSoon);
        }

        public override bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination)
        {
            Interlocked.Increment(ref NoWaitCalls);
            bool served = base.TryReadRangeNoWait(hash, offset, destination);
            if (served) Interlocked.Increment(ref NoWaitServed);
            return served;
        }

        public override bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range)
        {
            Interlocked.Increment(ref LeaseCalls);
            bool granted = base.TryLeaseRange(hash, offset, length, out range);
            if (granted) Interlocked.Increment(ref LeasesGranted);
            return granted;
        }

        public override bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination)
        {
            Interlocked.Increment(ref RangeReads);
            return base.TryReadRange(hash, offset, destination);
        }
    }

    private static (CowDisk Disk, byte[] Data) WriteAndFlush(TempDir t, IChunkStore store, int chunks)
    {
        var data = TempDir.Pattern(chunks * CS, 21);
        var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = chunks * CS, ChunkStore = store });
        for (int i = 0; i < chunks; i += 4) d.Write((long)i * CS, data.AsSpan(i * CS, 4 * CS), WriteFlags.None);
        d.Flush();
        return (d, data);
    }

    [Fact]
    public void Batched_writes_no_wait_reads_and_file_ranges_reach_the_store_behind_a_layer()
    {
        using var t = new TempDir();
        using var store = new CountingStore(new FileChunkStore(t.Cas));
        var (d, data) = WriteAndFlush(t, store, 16);
        using (d)
        {
            Assert.True(store.LargestBatch > 1, $"chunks reached the store one at a time (largest batch {store.LargestBatch})");
            Assert.Equal(16, new FileChunkStore(t.Cas, readOnly: true).Enumerate().Count());

            // A small read of a stored chunk, at hand in the page cache: served without waiting.
            var small = new byte[4096];
            Assert.True(d.TryReadNoWait(3 * CS + 8192, small));
            Assert.Equal(data.AsSpan(3 * CS + 8192, 4096).ToArray(), small);
            Assert.True(store.NoWaitServed > 0, "the no-wait read never reached the store behind the layer");

            // A large read: sent from the chunk files.
            var ranges = new List<FileRange>();
            try
            {
                Assert.True(d.TryGetFileRanges(4 * CS, 2 * CS, ranges));
                Assert.Equal(2, store.LeasesGranted);
                var back = new byte[2 * CS];
                int at = 0;
                foreach (var r in ranges)
                {
                    using var fs = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(r.Descriptor, ownsHandle: false), FileAccess.Read);
                    at += RandomAccess.Read(fs.SafeFileHandle, back.AsSpan(at, r.Length), r.FileOffset);
                }
                Assert.Equal(data.AsSpan(4 * CS, 2 * CS).ToArray(), back);
            }
            finally { foreach (var r in ranges) r.Lease.Release(r); }
        }
    }

    [Fact]
    public void A_layer_without_fast_paths_is_never_asked_for_them_and_reads_stay_right()
    {
        using var t = new TempDir();
        using var store = new CountingStore(new FileChunkStore(t.Cas), ChunkStoreCapabilities.None);
        var (d, data) = WriteAndFlush(t, store, 8);
        using (d)
        {
            Assert.False(d.TryReadNoWait(2 * CS, new byte[4096]));
            var ranges = new List<FileRange>();
            Assert.False(d.TryGetFileRanges(2 * CS, CS, ranges));
            foreach (var r in ranges) r.Lease.Release(r);
            Assert.Equal(0, store.NoWaitCalls);
            Assert.Equal(0, store.LeaseCalls);

            var back = new byte[8 * CS];
            d.Read(0, back);
            Assert.Equal(data, back);
            Assert.True(store.RangeReads > 0);
        }
    }
}
