using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>Tests that use the <see cref="IChunkStore"/> seam to inject delays and failures.</summary>
public class StoreSeamTests
{
    private const int CS = 65536;

    /// <summary>Wraps a store; a hook runs before each chunk is written and may block or throw
    /// (a throw fails that chunk only: the others of the batch are still stored, then the first
    /// failure is thrown, as a store that runs out of space part-way does).</summary>
    private sealed class HookStore(IChunkStore inner) : ForwardingChunkStore(inner)
    {
        public Action<ChunkHash>? BeforeWrite;
        public int Writes;
        public override int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false)
        {
            int created = 0;
            Exception? first = null;
            for (int i = 0; i < chunks.Count; i++)
            {
                try
                {
                    BeforeWrite?.Invoke(chunks[i].Hash);
                    Interlocked.Increment(ref Writes);
                    var one = new bool[1];
                    created += Inner.WriteMany([chunks[i]], one, syncSoon);
                    stored[i] = one[0];
                }
                catch (Exception e) { first ??= e; }
            }
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            return created;
        }
    }

    [Fact]
    public void LazyIngestionNeverOverwritesANewerWrite()
    {
        using var t = new TempDir();
        var b = TempDir.Pattern(2 * CS, 1);
        File.WriteAllBytes(t["base.img"], b);
        var baseHash = ChunkHasher.Hash(b.AsSpan(0, CS));
        using var store = new HookStore(new FileChunkStore(t.Cas));
        using var inIngest = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        store.BeforeWrite = h => { if (h == baseHash) { inIngest.Set(); release.Wait(); } };
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, ChunkStore = store });

        var first = new byte[CS];
        d.Read(0, first);                     // queues the ingestion of base chunk 0
        Assert.Equal(b[..CS], first);
        Assert.True(inIngest.Wait(TimeSpan.FromSeconds(30)));
        var fresh = TempDir.Pattern(CS, 2);
        d.Write(0, fresh, WriteFlags.None);   // newer than the ingestion in progress
        d.Flush();                            // stored and recorded before the ingestion finishes
        release.Set();
        d.WaitForIngestion();
        var back = new byte[CS];
        d.Read(0, back);
        Assert.Equal(fresh, back);
        d.SaveCheckpoint(t["cp.idx"]);
        Assert.Equal(ChunkHasher.Hash(fresh), ChunkIndexFile.Load(t["cp.idx"]).Entries[0]);
    }

    [Fact]
    public void FailedChunkWriteDuringFlushKeepsEveryUnsavedChunk()
    {
        using var t = new TempDir();
        using var store = new HookStore(new FileChunkStore(t.Cas));
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 8 * CS, ChunkStore = store });
        var data = TempDir.Pattern(8 * CS, 3);
        for (int i = 0; i < 8; i++) SpillFileTests.WriteInHalves(d, i, data); // piecemeal: no write-behind racing the hook
        int failures = 3;
        store.BeforeWrite = _ => { if (Interlocked.Decrement(ref failures) >= 0) throw new IOException("No space left on device"); };
        var e = Assert.Throws<BlockDeviceException>(() => d.Flush());
        Assert.Equal(BlockDeviceError.NoSpace, e.Error);
        Assert.Contains("chunk", e.Message);
        Assert.Equal(3, d.Statistics.DirtyChunks); // the failed ones are kept, the others stored
        var back = new byte[8 * CS];
        d.Read(0, back);
        Assert.Equal(data, back);
        d.Flush(); // the store recovered
        Assert.Equal(0, d.Statistics.DirtyChunks);
        d.Read(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public void WhileTheStoreIsFullMemoryStaysBoundedAndAFailedFlushKeepsEverything()
    {
        // Room is made before a write is applied, so a full store never lets memory grow past the
        // budget; a flush that cannot store keeps every unsaved chunk without pulling them into memory.
        using var t = new TempDir();
        using var store = new HookStore(new FileChunkStore(t.Cas));
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 64 * CS, ChunkStore = store, DirtyBudgetBytes = 4 * CS });
        store.BeforeWrite = _ => throw new IOException("No space left on device");
        var data = TempDir.Pattern(40 * CS, 9);
        for (int i = 0; i < 40; i++)
        {
            SpillFileTests.WriteInHalves(d, i, data);
            Assert.True(d.Statistics.DirtyBytes <= 4L * CS, $"dirty {d.Statistics.DirtyBytes} bytes past the 4-chunk budget");
        }
        var e = Assert.Throws<BlockDeviceException>(() => d.Flush());
        Assert.Equal(BlockDeviceError.NoSpace, e.Error);
        Assert.True(d.Statistics.DirtyBytes <= 4L * CS, $"a failed flush left {d.Statistics.DirtyBytes} dirty bytes in memory");
        Assert.Equal(40, d.Statistics.DirtyChunks);
        var back = new byte[40 * CS];
        d.Read(0, back);
        Assert.Equal(data, back);
        store.BeforeWrite = null; // space returns
        d.Flush();
        Assert.Equal(0, d.Statistics.DirtyChunks);
        d.Read(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public void WholeChunkWriteDoesNotReadTheOldChunk()
    {
        using var t = new TempDir();
        var b = TempDir.Pattern(4 * CS, 4);
        File.WriteAllBytes(t["base.img"], b);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas });
        // Make the base unreadable underneath the disk: any read of it would now fail.
        File.WriteAllBytes(t["base.img"], []);
        d.Write(CS, TempDir.Pattern(2 * CS, 5), WriteFlags.None);
        Assert.Throws<BlockDeviceException>(() => d.Write(3 * CS + 1, new byte[] { 1 }, WriteFlags.None)); // partial: needs the old data
        var back = new byte[2 * CS];
        d.Read(CS, back);
        Assert.Equal(TempDir.Pattern(2 * CS, 5), back);
    }
}

public class CowDiskEdgeTests
{
    private const int CS = 65536;

    [Fact]
    public void HostileOrCyclicBootIndexIsRefusedAtOpen()
    {
        using var t = new TempDir();
        File.WriteAllBytes(t["bad.idx"], [1, 2, 3]);
        Assert.Equal(ShuruErrorKind.IndexInvalid, Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["bad.idx"] })).Kind);
        new ChunkIndexFile(CS, t["self.idx"], null).Save(t["self.idx"]);
        Assert.Equal(ShuruErrorKind.IndexChainCycle, Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["self.idx"] })).Kind);
        new ChunkIndexFile(CS, null, t["gone.img"]).Save(t["nobase.idx"]);
        Assert.Equal(ShuruErrorKind.BaseImageMissing, Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["nobase.idx"] })).Kind);
        Assert.Equal(ShuruErrorKind.InvalidArgument, Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas })).Kind);
    }

    [Fact]
    public void MissingIndexPathMeansLazyModeOnTheBase()
    {
        using var t = new TempDir();
        File.WriteAllBytes(t["base.img"], TempDir.Pattern(CS, 1));
        using var d = CowDisk.Open(new() { CasPath = t.Cas, BaseImagePath = t["base.img"], IndexPath = t["not-yet.idx"] });
        Assert.Null(d.BootIndexPath);
        Assert.Equal(CS, d.Size);
        Assert.Null(d.SaveCheckpoint(t["not-yet.idx"]).ParentPath); // the first checkpoint may take that name
    }

    [Fact]
    public void OddSizedDiskHandlesItsShortLastChunk()
    {
        using var t = new TempDir();
        long size = 2 * CS + 4096;
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = size });
        Assert.Equal(3, d.ChunkCount);
        var data = TempDir.Pattern(4096, 2);
        d.Write(2 * CS, data, WriteFlags.None);  // the whole (short) last chunk
        var back = new byte[4096];
        d.Read(2 * CS, back);
        Assert.Equal(data, back);
        var ex = new List<ShuruStore.Core.BlockDevices.Extent>();
        d.GetExtents(0, size, ex);
        Assert.Equal([new(2 * CS, ShuruStore.Core.BlockDevices.ExtentFlags.Hole | ShuruStore.Core.BlockDevices.ExtentFlags.Zero), new(4096, ShuruStore.Core.BlockDevices.ExtentFlags.Data)], ex);
        d.WriteZeroes(2 * CS, 4096, ShuruStore.Core.BlockDevices.WriteFlags.FastZero); // whole short chunk: metadata only
        d.Read(2 * CS, back);
        Assert.True(back.AsSpan().IndexOfAnyExcept((byte)0) < 0);
        var cp = d.SaveCheckpoint(t["odd.idx"]);
        Assert.Equal(size, ChunkIndexFile.Load(cp.Path).DiskSize);
    }

    [Fact]
    public void PartialTrimKeepsDataAndTrimWithFuaIsDurable()
    {
        using var t = new TempDir();
        var data = TempDir.Pattern(2 * CS, 3);
        var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 2 * CS, StatePath = t["state"] });
        d.Write(0, data, WriteFlags.Fua);
        d.Trim(100, CS, WriteFlags.Fua);   // covers no whole chunk: nothing is discarded
        var back = new byte[2 * CS];
        d.Read(0, back);
        Assert.Equal(data, back);
        d.Trim(CS, CS, WriteFlags.Fua);
        d.SimulateCrash();
        using var r = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 2 * CS, StatePath = t["state"] });
        r.Read(0, back);
        Assert.Equal(data[..CS], back[..CS]);
        Assert.True(back.AsSpan(CS).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void ReadOnlyOverAStoreThatDoesNotExistYet()
    {
        using var t = new TempDir();
        var b = TempDir.Pattern(CS, 4);
        File.WriteAllBytes(t["base.img"], b);
        using var d = CowDisk.Open(new() { CasPath = t.Cas, BaseImagePath = t["base.img"], ReadOnly = true });
        var back = new byte[CS];
        d.Read(0, back);
        Assert.Equal(b, back);
        Assert.False(Directory.Exists(t.Cas));
    }
}

public class CacheTests
{
    [Fact]
    public void CacheIngestsBasePieces()
    {
        using var t = new TempDir();
        var b = TempDir.Pattern(4 * 65536, 1);
        File.WriteAllBytes(t["base.img"], b);
        using var d = CowDisk.Open(new() { CasPath = t.Cas, BaseImagePath = t["base.img"] });
        d.Cache(0, d.Size);
        d.WaitForIngestion();
        Assert.Equal(4, d.Statistics.ChunksIngested);
        d.Cache(0, d.Size); // already covered: nothing more
        d.WaitForIngestion();
        Assert.Equal(4, d.Statistics.ChunksIngested);
    }
}
