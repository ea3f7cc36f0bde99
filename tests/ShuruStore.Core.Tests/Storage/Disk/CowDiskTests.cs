using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class CowDiskTests
{
    private const int CS = 65536;

    /// <summary>A base image: chunk 0 random, chunk 1 zeros, chunk 2 random, then a 1000-byte tail.</summary>
    private static byte[] MakeBase(TempDir t, string name = "base.img")
    {
        var b = new byte[3 * CS + 1000];
        TempDir.Pattern(CS, 10).CopyTo(b, 0);
        TempDir.Pattern(CS, 12).CopyTo(b, 2 * CS);
        TempDir.Pattern(1000, 13).CopyTo(b, 3 * CS);
        File.WriteAllBytes(t[name], b);
        return b;
    }

    private static byte[] ReadAll(CowDisk d)
    {
        var buf = new byte[d.Size];
        d.Read(0, buf);
        return buf;
    }

    private static int ChunkFiles(TempDir t) => t.ChunkFileCount;

    [Fact]
    public void LazyModeReadsBaseAndIngestsNonZeroPieces()
    {
        using var t = new TempDir();
        var b = MakeBase(t);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas });
        Assert.Equal(b.Length, d.Size);
        Assert.Null(d.BootIndexPath);
        Assert.Equal(b, ReadAll(d));
        d.WaitForIngestion();
        Assert.Equal(3, d.Statistics.ChunksIngested); // chunks 0, 2 and the short tail; zero chunk 1 not stored
        Assert.Equal(3, ChunkFiles(t));
        var tail = ChunkHasher.Hash(b.AsSpan(3 * CS));
        Assert.True(File.Exists(Path.Combine(t.Cas, "chunks", tail.ToString())));
        Assert.Equal(1000, new FileInfo(Path.Combine(t.Cas, "chunks", tail.ToString())).Length); // short, as shuru

        var cp = d.SaveCheckpoint(t["cp.idx"]);
        var idx = ChunkIndexFile.Load(t["cp.idx"]);
        Assert.Null(idx.ParentPath);
        Assert.Equal(t["base.img"], idx.FallbackPath);
        Assert.Equal(ChunkHasher.Hash(b.AsSpan(0, CS)), idx.Entries[0]);
        Assert.Null(idx.Entries[1]);
        Assert.Equal(3, cp.ChunksSet);
    }

    [Fact]
    public void MissingBaseImageIsRefusedAtOpen()
    {
        using var t = new TempDir();
        var e = Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { BaseImagePath = t["nope.img"], CasPath = t.Cas }));
        Assert.Equal(ShuruErrorKind.BaseImageMissing, e.Kind);
        Assert.Contains("nope.img", e.Message);
    }

    [Fact]
    public void WritesReadBackAndCheckpointReopens()
    {
        using var t = new TempDir();
        var b = MakeBase(t);
        var data = TempDir.Pattern(100_000, 20);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Write(30_000, data, WriteFlags.None);
            data.CopyTo(b, 30_000);
            Assert.Equal(b, ReadAll(d));
            d.SaveCheckpoint(t["cp.idx"]);
        }
        using var d2 = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["cp.idx"] });
        Assert.Equal(t["cp.idx"], d2.BootIndexPath);
        Assert.Equal(t["base.img"], d2.BaseImagePath);
        Assert.Equal(b, ReadAll(d2));
    }

    [Fact]
    public void ZeroChunksAreNeverStoredOrRead()
    {
        using var t = new TempDir();
        MakeBase(t);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = 8 * CS });
        d.Write(0, new byte[CS], WriteFlags.None);          // zeroing a base chunk: zero hash
        d.WriteZeroes(2 * CS, CS, WriteFlags.None);           // zeroing: metadata only
        d.Trim(5 * CS, CS, WriteFlags.None);                  // beyond the base: ZERO
        d.Write(6 * CS, new byte[CS], WriteFlags.None);
        d.Flush();
        var cp = d.SaveCheckpoint(t["cp.idx"]);
        var idx = ChunkIndexFile.Load(t["cp.idx"]);
        Assert.Equal(ChunkHash.ZeroChunk, idx.Entries[0]);
        Assert.Equal(ChunkHash.ZeroChunk, idx.Entries[2]);
        Assert.Null(idx.Entries[5]);
        Assert.Null(idx.Entries[6]);
        // Only the zero chunk's file (written once so shuru can read it) is in the store.
        Assert.Equal(1, ChunkFiles(t));
        Assert.Equal(0, d.Statistics.ChunksWritten);
        // It is never read from disk: removing it changes nothing for us.
        File.Delete(Path.Combine(t.Cas, "chunks", ChunkHash.ZeroChunk.ToString()));
        var buf = new byte[3 * CS];
        d.Read(0, buf);
        Assert.True(buf.AsSpan(0, CS).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(buf.AsSpan(2 * CS, CS).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void ZeroingIsMetadataOnlyAndFastZeroIsHonest()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 4 * CS });
        d.Write(0, TempDir.Pattern(4 * CS, 1), WriteFlags.None);
        d.WriteZeroes(0, 2 * CS, WriteFlags.FastZero);
        var e = Assert.Throws<BlockDeviceException>(() => d.WriteZeroes(100, 1000, WriteFlags.FastZero));
        Assert.Equal(BlockDeviceError.NotSupported, e.Error);
        d.WriteZeroes(2 * CS + 100, 1000, WriteFlags.None); // partial: zeroed by read-modify-write
        var buf = new byte[4 * CS];
        d.Read(0, buf);
        Assert.True(buf.AsSpan(0, 2 * CS).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(buf.AsSpan(2 * CS + 100, 1000).IndexOfAnyExcept((byte)0) < 0);
        Assert.NotEqual(0, buf[2 * CS + 1100]);
    }

    [Fact]
    public void ExtentsReflectLayers()
    {
        using var t = new TempDir();
        MakeBase(t);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = 10 * CS });
        d.Trim(0, CS, WriteFlags.None);                            // base shows through: zero hash, trimmed: hole
        d.WriteZeroes(2 * CS, CS, WriteFlags.NoHole);              // allocated zeros
        d.Write(6 * CS, TempDir.Pattern(CS, 3), WriteFlags.None);  // data past the base
        d.Trim(7 * CS, CS, WriteFlags.None);                       // nothing below: ZERO
        var ex = new List<Extent>();
        d.GetExtents(0, d.Size, ex);
        Assert.Equal(new List<Extent>
        {
            new(CS, ExtentFlags.Hole | ExtentFlags.Zero),
            new(CS, ExtentFlags.Data),
            new(CS, ExtentFlags.Zero),
            new(CS, ExtentFlags.Data),                             // the base's short tail chunk
            new(2 * CS, ExtentFlags.Hole | ExtentFlags.Zero),
            new(CS, ExtentFlags.Data),
            new(3 * CS, ExtentFlags.Hole | ExtentFlags.Zero),
        }, ex);
        Assert.Equal(d.Size, ex.Sum(e => e.Length));
    }

    [Fact]
    public void NoHoleZeroesStayAllocatedWhereNothingIsBelow()
    {
        // Past the base, NO_HOLE zeroing must not be recorded as "no entry": that would be
        // reported as a hole, which the protocol forbids.
        using var t = new TempDir();
        MakeBase(t);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = 10 * CS });
        d.WriteZeroes(8 * CS, CS, WriteFlags.NoHole);
        d.WriteZeroes(9 * CS, CS, WriteFlags.None);
        var ex = new List<Extent>();
        d.GetExtents(8 * CS, 2 * CS, ex);
        Assert.Equal(new Extent(CS, ExtentFlags.Zero), ex[0]);
        Assert.Equal(ExtentFlags.Hole | ExtentFlags.Zero, ex[1].Flags);
        var buf = new byte[CS];
        d.Read(8 * CS, buf);
        Assert.True(buf.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void HolesOfASparseBaseAreReportedAsHoles()
    {
        using var t = new TempDir();
        using (var f = File.Create(t["sparse.img"]))
        {
            f.SetLength(16 * CS);                       // a sparse base: holes except chunks 3 and 9
            f.Position = 3 * CS + 100; f.Write(TempDir.Pattern(10, 5));
            f.Position = 9 * CS; f.Write(TempDir.Pattern(2 * CS, 6)); // chunks 9 and 10
        }
        using var d = CowDisk.Open(new() { BaseImagePath = t["sparse.img"], CasPath = t.Cas });
        var ex = new List<Extent>();
        d.GetExtents(0, d.Size, ex);
        Assert.Equal(d.Size, ex.Sum(e => e.Length));
        // Wherever the base has data the chunk must be data; holes are only an optimisation
        // (a filesystem without SEEK_HOLE reports everything as data).
        long pos = 0;
        foreach (var e in ex)
        {
            for (long c = pos / CS; c < (pos + e.Length) / CS; c++)
                if (c is 3 or 9 or 10) Assert.Equal(ExtentFlags.Data, e.Flags);
            pos += e.Length;
        }
        if (OperatingSystem.IsLinux())
            Assert.Equal(new List<Extent>
            {
                new(3 * CS, ExtentFlags.Hole | ExtentFlags.Zero),
                new(CS, ExtentFlags.Data),
                new(5 * CS, ExtentFlags.Hole | ExtentFlags.Zero),
                new(2 * CS, ExtentFlags.Data),
                new(5 * CS, ExtentFlags.Hole | ExtentFlags.Zero),
            }, ex);
        var back = new byte[16 * CS];
        d.Read(0, back);                                 // and the holes read as zeros
        Assert.True(back.AsSpan(0, 3 * CS).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void CheckpointChainEqualsTheChainLoadedFromTheFile()
    {
        using var t = new TempDir();
        MakeBase(t);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = 10 * CS }))
        {
            d.Write(CS, TempDir.Pattern(CS, 7), WriteFlags.None);
            var lazy = d.SaveCheckpoint(t["cp1.idx"]);
            AssertSameAsLoaded(lazy, t["cp1.idx"]);
        }
        using (var d = CowDisk.Open(new() { IndexPath = t["cp1.idx"], CasPath = t.Cas }))
        {
            d.Write(5 * CS, TempDir.Pattern(CS, 8), WriteFlags.None);
            d.Trim(0, CS, WriteFlags.None);
            AssertSameAsLoaded(d.SaveCheckpoint(t["cp2.idx"]), t["cp2.idx"]);
        }
        using (var d = CowDisk.Open(new() { IndexPath = t["cp2.idx"], CasPath = t.Cas }))
            AssertSameAsLoaded(d.SaveCheckpoint(t["cp3.idx"]), t["cp3.idx"]);

        static void AssertSameAsLoaded(CheckpointInfo info, string path)
        {
            Assert.NotNull(info.Chain);
            var fromDisk = IndexChainView.Open(path);
            var held = IndexChainView.FromChain(info.Chain!);
            Assert.Equal(fromDisk.Summarize(), held.Summarize());
            Assert.Equal(fromDisk.Chain.AllPaths, held.Chain.AllPaths);
            Assert.Equal(fromDisk.Chain.BaseImagePath, held.Chain.BaseImagePath);
            Assert.Equal(fromDisk.Chain.Top.ToBytes(), held.Chain.Top.ToBytes());
        }
    }

    [Fact]
    public void MissingOrCorruptChunkIsEioNamingTheChunk()
    {
        using var t = new TempDir();
        var b = MakeBase(t);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Read(0, new byte[CS]);
            d.SaveCheckpoint(t["cp.idx"]);
        }
        var h = ChunkHasher.Hash(b.AsSpan(0, CS));
        string file = Path.Combine(t.Cas, "chunks", h.ToString());
        File.WriteAllBytes(file, b[..100]);
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["cp.idx"] }))
        {
            var e = Assert.Throws<BlockDeviceException>(() => d.Read(0, new byte[512]));
            Assert.Equal(BlockDeviceError.IO, e.Error);
            Assert.Contains(h.ToString(), e.Message);
            File.Delete(file);
            e = Assert.Throws<BlockDeviceException>(() => d.Read(0, new byte[512]));
            Assert.Contains("missing", e.Message);
            // A partial write needs the old content: EIO, not silent zeros.
            Assert.Throws<BlockDeviceException>(() => d.Write(10, new byte[] { 1 }, WriteFlags.None));
            // A whole-chunk write does not read the old chunk.
            var fresh = TempDir.Pattern(CS, 99);
            d.Write(0, fresh, WriteFlags.None);
            var back = new byte[CS];
            d.Read(0, back);
            Assert.Equal(fresh, back);
        }
    }

    [Fact]
    public void DirtyBudgetSpillsChunksToTheSpillFileAndFlushStoresThem()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 64 * CS, DirtyBudgetBytes = 4 * CS });
        var data = TempDir.Pattern(40 * CS, 5);
        for (int i = 0; i < 40; i++)
        {
            // In halves, as random I/O writes (a chunk written whole in one request is stored by
            // write-behind instead, see WriteBehindTests).
            d.Write((long)i * CS, data.AsSpan(i * CS, CS / 2), WriteFlags.None);
            d.Write((long)i * CS + CS / 2, data.AsSpan(i * CS + CS / 2, CS / 2), WriteFlags.None);
            Assert.True(d.Statistics.DirtyBytes <= 4 * CS);
        }
        // Over the budget chunks move to the (nameless) spill file, not to chunk files nobody
        // may ever reference: nothing is stored until a flush.
        Assert.True(d.Statistics.ChunksSpilled >= 36);
        Assert.True(d.Statistics.SpilledChunks >= 36);
        Assert.Equal(40, d.Statistics.DirtyChunks);
        Assert.Equal(0, ChunkFiles(t));
        // The spill file has no name; beside the chunks there is only the disk's registration.
        Assert.Equal(["chunks", "leases"], Directory.EnumerateFileSystemEntries(t.Cas).Select(Path.GetFileName).Order());
        Assert.Equal([".lease", ".refs"], Directory.EnumerateFiles(Path.Combine(t.Cas, "leases")).Select(Path.GetExtension).Order());
        var back = new byte[40 * CS];
        d.Read(0, back);
        Assert.Equal(data, back);
        // Partial reads and in-place rewrites of spilled chunks.
        var piece = TempDir.Pattern(3000, 6);
        d.Write(2L * CS + 100, piece, WriteFlags.None);
        piece.CopyTo(data, 2 * CS + 100);
        var part = new byte[5000];
        d.Read(2L * CS + 50, part);
        Assert.Equal(data.AsSpan(2 * CS + 50, 5000).ToArray(), part);

        d.Flush();
        Assert.Equal(0, d.Statistics.DirtyChunks);
        Assert.Equal(0, d.Statistics.SpilledChunks);
        Assert.Equal(40, ChunkFiles(t));
        d.Read(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public void ParallelWritesToOneChunkLoseNothing()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 4 * CS, DirtyBudgetBytes = CS });
        // 128 writers, each owning 512 bytes of chunk 1, repeatedly rewriting it; a tiny budget
        // makes spills race with the writes.
        Parallel.For(0, 128, new ParallelOptions { MaxDegreeOfParallelism = 16 }, i =>
        {
            for (int round = 1; round <= 5; round++)
            {
                var block = Enumerable.Repeat((byte)(i + round), 512).ToArray();
                d.Write(CS + i * 512L, block, WriteFlags.None);
                if (round == 3 && i % 16 == 0) d.Flush();
            }
        });
        var buf = new byte[CS];
        d.Read(CS, buf);
        for (int i = 0; i < 128; i++) Assert.True(buf.AsSpan(i * 512, 512).IndexOfAnyExcept((byte)(i + 5)) < 0, $"block {i}");
    }

    [Fact]
    public async Task CheckpointDuringConcurrentWritesIsAConsistentCut()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 8 * CS, DirtyBudgetBytes = 2 * CS });
        // Each writer owns a range across a chunk boundary (chunks 2w and 2w+1) and fills it with one
        // value per write; a cut must never show two values in one range. (Concurrent *overlapping*
        // writes may interleave chunk by chunk whatever the cut does: NBD leaves their result
        // unspecified, so the ranges are disjoint.)
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            var buf = new byte[CS];
            for (int v = 1; !stop.IsCancellationRequested; v++)
            {
                Array.Fill(buf, (byte)(v % 251 + 1));
                d.Write(2 * w * CS + CS / 2, buf, WriteFlags.None);
            }
        })).ToArray();
        for (int i = 0; i < 8; i++)
        {
            Thread.Sleep(5);
            d.SaveCheckpoint(t[$"cp{i}.idx"]);
        }
        stop.Cancel();
        await Task.WhenAll(writers);
        for (int i = 0; i < 8; i++)
        {
            using var r = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t[$"cp{i}.idx"], ReadOnly = true });
            var buf = new byte[CS];
            for (int w = 0; w < 4; w++)
            {
                r.Read(2 * w * CS + CS / 2, buf);
                Assert.True(buf.AsSpan().IndexOfAnyExcept(buf[0]) < 0, $"checkpoint {i} is a torn cut (writer {w})");
            }
        }
    }

    [Fact]
    public void CheckpointsNameTheBootedIndexAsParentAndRefuseToOverwriteTheChain()
    {
        using var t = new TempDir();
        MakeBase(t);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Write(0, new byte[] { 1 }, WriteFlags.None);
            var cp = d.SaveCheckpoint(t["a.idx"]);
            Assert.Null(cp.ParentPath);
        }
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["a.idx"] }))
        {
            d.Write(CS, new byte[] { 2 }, WriteFlags.None);
            Assert.Equal(t["a.idx"], d.SaveCheckpoint(t["b.idx"]).ParentPath);
            d.Write(2 * CS, new byte[] { 3 }, WriteFlags.None);
            Assert.Equal(t["a.idx"], d.SaveCheckpoint(t["b2.idx"]).ParentPath); // each names the booted index, as shuru
            Assert.Equal(t["a.idx"], ChunkIndexFile.Load(t["b2.idx"]).ParentPath);
            Assert.Equal(t["base.img"], ChunkIndexFile.Load(t["b2.idx"]).FallbackPath);
            var e = Assert.Throws<ShuruStoreException>(() => d.SaveCheckpoint(t["a.idx"]));
            Assert.Equal(ShuruErrorKind.CheckpointOverwritesChain, e.Kind);
        }
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["b.idx"] }))
        {
            Assert.Equal(ShuruErrorKind.CheckpointOverwritesChain, Assert.Throws<ShuruStoreException>(() => d.SaveCheckpoint(t["a.idx"])).Kind);
            Assert.Equal(ShuruErrorKind.CheckpointOverwritesChain, Assert.Throws<ShuruStoreException>(() => d.SaveCheckpoint(t["b.idx"])).Kind);
            Assert.Equal(ShuruErrorKind.CheckpointOverwritesChain, Assert.Throws<ShuruStoreException>(() => d.SaveCheckpoint(t["base.img"])).Kind);
            var buf = new byte[3 * CS];
            d.Read(0, buf);
            Assert.Equal(1, buf[0]);
            Assert.Equal(2, buf[CS]);
            Assert.NotEqual(3, buf[2 * CS]);
        }
        // The chain b -> a still opens (no cycle was created).
        Assert.Equal(2, IndexChain.Load(t["b.idx"]).AllPaths.Count());
    }

    [Fact]
    public void DiskGrowsButNeverShrinks()
    {
        using var t = new TempDir();
        var b = MakeBase(t);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = CS }))
            Assert.Equal(b.Length, d.Size);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = 10 * CS }))
        {
            Assert.Equal(10 * CS, d.Size);
            Assert.Equal(10, d.ChunkCount);
            var buf = new byte[10 * CS];
            d.Read(0, buf);
            Assert.Equal(b, buf[..b.Length]);
            Assert.True(buf.AsSpan(b.Length).IndexOfAnyExcept((byte)0) < 0);
            d.SaveCheckpoint(t["g.idx"]);
        }
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["g.idx"], DiskSize = 2 * CS }))
            Assert.Equal(10 * CS, d.Size);
    }

    [Fact]
    public void ReadOnlyRefusesWritesAndNeverWritesTheStore()
    {
        using var t = new TempDir();
        var b = MakeBase(t);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, ReadOnly = false });
        d.Dispose();
        using var r = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, ReadOnly = true });
        Assert.True(r.Capabilities.HasFlag(BlockDeviceCapabilities.ReadOnly));
        Assert.Equal(b, ReadAll(r));
        Assert.Equal(0, ChunkFiles(t));
        Assert.Equal(BlockDeviceError.Permission, Assert.Throws<BlockDeviceException>(() => r.Write(0, new byte[1], WriteFlags.None)).Error);
        Assert.Equal(BlockDeviceError.Permission, Assert.Throws<BlockDeviceException>(() => r.Trim(0, CS, WriteFlags.None)).Error);
        Assert.Equal(BlockDeviceError.Permission, Assert.Throws<BlockDeviceException>(() => r.WriteZeroes(0, CS, WriteFlags.None)).Error);
        Assert.Equal(b, File.ReadAllBytes(t["base.img"]));
    }

    [Fact]
    public void BaseImageIsNeverWritten()
    {
        using var t = new TempDir();
        var b = MakeBase(t);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Write(0, TempDir.Pattern((int)d.Size, 7), WriteFlags.Fua);
            d.Flush();
        }
        Assert.Equal(b, File.ReadAllBytes(t["base.img"]));
    }
}
