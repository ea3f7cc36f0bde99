using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;
using Xunit;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>Write-behind: chunks written whole by one request are stored in the background.</summary>
public class WriteBehindTests
{
    private const int CS = ChunkHasher.ChunkSize;

    private static int ChunkFiles(TempDir t) => t.ChunkFileCount;

    private static void WaitUntil(Func<bool> done, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(20);
        while (!done())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"timed out waiting until {what}");
            Thread.Sleep(10);
        }
    }

    [Fact]
    public void ChunksWrittenWholeAreStoredWithoutAFlushAndSurviveOne()
    {
        using var t = new TempDir();
        var opts = new CowDiskOptions { CasPath = t.Cas, DiskSize = 32 * CS, StatePath = t["state"] };
        var data = TempDir.Pattern(8 * CS, 11);
        using (var d = CowDisk.Open(opts))
        {
            d.Write(4L * CS, data, WriteFlags.None); // one request, eight whole chunks
            WaitUntil(() => d.Statistics.DirtyChunks == 0, "write-behind stored every whole chunk");
            Assert.Equal(8, d.Statistics.ChunksWritten);
            Assert.Equal(8, ChunkFiles(t));
            var back = new byte[8 * CS];
            d.Read(4L * CS, back);
            Assert.Equal(data, back);
            d.Flush();      // journals what write-behind stored
            d.SimulateCrash();
        }
        using (var d = CowDisk.Open(opts))
        {
            var back = new byte[8 * CS];
            d.Read(4L * CS, back);
            Assert.Equal(data, back);
        }
    }

    [Fact]
    public void ChunksWrittenPiecemealWaitForTheFlush()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 32 * CS });
        var data = TempDir.Pattern(8 * CS, 12);
        for (int i = 0; i < 8; i++) SpillFileTests.WriteInHalves(d, i, data);
        d.Write(9L * CS + 1, data.AsSpan(0, CS), WriteFlags.None); // unaligned: two partial chunks
        Thread.Sleep(200);
        Assert.Equal(0, d.Statistics.ChunksWritten);
        Assert.Equal(0, ChunkFiles(t));
        d.Flush();
        Assert.Equal(10, ChunkFiles(t));
    }

    [Fact]
    public void RewritesRacingWriteBehindAlwaysLeaveTheLastVersion()
    {
        using var t = new TempDir();
        var opts = new CowDiskOptions { CasPath = t.Cas, DiskSize = 16 * CS, StatePath = t["state"], DirtyBudgetBytes = 2 * CS };
        const int Threads = 4, Versions = 60;
        byte[] Version(int thread, int v) => TempDir.Pattern(CS, thread * 1000 + v);
        using (var d = CowDisk.Open(opts))
        {
            Parallel.For(0, Threads, th =>
            {
                var back = new byte[CS];
                for (int v = 0; v < Versions; v++)
                {
                    var mine = Version(th, v);
                    d.Write((long)th * CS, mine, WriteFlags.None);
                    d.Read((long)th * CS, back);
                    Assert.Equal(mine, back);
                    if (v % 7 == 0) d.Flush();
                }
            });
            d.Flush();
            d.SimulateCrash(); // the flush above is what must have made the last versions durable
        }
        using (var d = CowDisk.Open(opts))
        {
            var back = new byte[CS];
            for (int th = 0; th < Threads; th++)
            {
                d.Read((long)th * CS, back);
                Assert.Equal(Version(th, Versions - 1), back);
            }
        }
    }

    /// <summary>Counts WriteMany calls running at once and whether callers said a sync follows.</summary>
    private sealed class CountingStore(IChunkStore inner, TimeSpan perBatch) : ForwardingChunkStore(inner)
    {
        private int _running;
        public int MostAtOnce, Batches, SyncSoonBatches;
        /// <summary>The first batch waits here while it is reset: a backlog builds up behind it
        /// however slowly the writer runs (a loaded machine), so a second pump has work.</summary>
        public ManualResetEventSlim FirstBatchGate { get; } = new(true);
        public override int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false)
        {
            int now = Interlocked.Increment(ref _running);
            bool first;
            lock (this) { MostAtOnce = Math.Max(MostAtOnce, now); first = ++Batches == 1; if (syncSoon) SyncSoonBatches++; }
            try
            {
                if (first) FirstBatchGate.Wait(TimeSpan.FromSeconds(30));
                Thread.Sleep(perBatch); // a slow disk: the backlog builds up
                return Inner.WriteMany(chunks, stored, syncSoon);
            }
            finally { Interlocked.Decrement(ref _running); }
        }
    }

    [Fact]
    public void A_backlog_of_whole_chunks_is_stored_by_two_pumps_and_every_batch_is_marked_for_a_coming_sync()
    {
        // With a backlog of whole chunks, a second pump stores beside the first.
        using var t = new TempDir();
        using var store = new CountingStore(new FileChunkStore(t.Cas), TimeSpan.FromMilliseconds(50));
        const int Chunks = 1024; // 64 MiB: eight batches, far beyond the backlog that starts a second pump
        int MaxPumps = Math.Min(2, Environment.ProcessorCount);
        var data = TempDir.Pattern(Chunks * CS, 13);
        int mostAtOnce;
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = Chunks * CS, ChunkStore = store }))
        {
            store.FirstBatchGate.Reset();
            for (int i = 0; i < Chunks; i += 4) d.Write((long)i * CS, data.AsSpan(i * CS, 4 * CS), WriteFlags.None); // 256 KiB requests, like nbdcopy
            // With the first pump held, the backlog is all 64 MiB: the second pump must be storing.
            for (var until = DateTime.UtcNow.AddSeconds(10); store.MostAtOnce < MaxPumps && DateTime.UtcNow < until;) Thread.Sleep(10);
            store.FirstBatchGate.Set();
            WaitUntil(() => d.Statistics.DirtyChunks == 0, "write-behind stored every whole chunk");
            mostAtOnce = store.MostAtOnce; // before the flush, which stores beside the pumps
            d.Flush();
            var back = new byte[Chunks * CS];
            d.Read(0, back);
            Assert.True(data.AsSpan().SequenceEqual(back));
        }
        Assert.Equal(Chunks, ChunkFiles(t));
        Assert.Equal(MaxPumps, mostAtOnce);
        Assert.Equal(store.Batches, store.SyncSoonBatches);
    }
}
