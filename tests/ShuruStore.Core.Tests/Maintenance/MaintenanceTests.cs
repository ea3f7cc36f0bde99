using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Storage;
using ShuruStore.Core.Tests.Storage;

namespace ShuruStore.Core.Tests.Maintenance;

public class MaintenanceTests
{
    private const int CS = 65536;

    /// <summary>40 chunks: random ones, zero ones (every 3rd), a repeated one, and a 1000-byte tail.</summary>
    private static byte[] MakeImage(TempDir t, string name = "image.raw", int chunks = 40, int seed = 1)
    {
        var b = new byte[chunks * CS + 1000];
        for (int i = 0; i < chunks; i++)
        {
            if (i % 3 == 1) continue; // zeros
            var piece = TempDir.Pattern(CS, seed * 1000 + i);
            piece.CopyTo(b, i * CS);
        }
        if (chunks > 6) Array.Copy(b, 3 * CS, b, 6 * CS, CS); // chunk 6 = chunk 3: deduplicated within one import
        TempDir.Pattern(1000, seed + 7).CopyTo(b, chunks * CS);
        File.WriteAllBytes(t[name], b);
        return b;
    }

    private static string ChunksDir(TempDir t) => Path.Combine(t.Cas, "chunks");

    private static string[] ChunkFiles(TempDir t) => Directory.Exists(ChunksDir(t))
        ? Directory.GetFiles(ChunksDir(t)).Where(f => ChunkHash.TryParse(Path.GetFileName(f), out _)).ToArray() : [];

    /// <summary>Every file in chunks/ is a chunk that hashes to its name; no temp file left.</summary>
    private static void AssertStoreConsistent(TempDir t)
    {
        if (!Directory.Exists(ChunksDir(t))) return;
        foreach (var f in Directory.GetFiles(ChunksDir(t)))
        {
            Assert.True(ChunkHash.TryParse(Path.GetFileName(f), out var h), $"stray file {f}");
            Assert.Equal(h, ChunkHasher.Hash(File.ReadAllBytes(f)));
        }
    }

    private static byte[] ReadDisk(string cas, string index)
    {
        using var d = CowDisk.Open(new() { CasPath = cas, IndexPath = index, ReadOnly = true });
        var buf = new byte[d.Size];
        d.Read(0, buf);
        return buf;
    }

    [Fact]
    public void ImportThenExportRoundTripsAndSkipsZeroChunks()
    {
        using var t = new TempDir();
        var image = MakeImage(t);
        var r = DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["image.idx"] });
        Assert.Equal(image.Length, r.DiskSize);
        Assert.Equal(41, r.ChunkCount);
        Assert.Equal(13, r.ChunksZero);                 // chunks 1, 4, ..., 37
        Assert.Equal(1, r.ChunksPresent);               // chunk 6 repeats chunk 3
        Assert.Equal(41 - 13 - 1, r.ChunksNew);
        Assert.Equal(r.ChunksNew, ChunkFiles(t).Length); // no zero chunk stored
        Assert.Equal((r.ChunksNew - 1) * CS + 1000, r.BytesStored); // the tail is stored short, as shuru ingests it
        var idx = ChunkIndexFile.Load(t["image.idx"]);
        Assert.Null(idx.Entries[1]);
        Assert.Null(idx.ParentPath);
        Assert.Null(idx.FallbackPath);

        Assert.Equal(image, ReadDisk(t.Cas, t["image.idx"]));
        var e = DiskExporter.Export(t["image.idx"], t.Cas, t["out.raw"]);
        Assert.Equal(image, File.ReadAllBytes(t["out.raw"]));
        Assert.Equal(13, e.ChunksZero);
        Assert.Equal(28, e.ChunksFromStore);
        AssertStoreConsistent(t);

        // A second import shares every chunk.
        var again = DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["again.idx"] });
        Assert.Equal(0, again.ChunksNew);
        Assert.Equal(28, again.ChunksPresent);
        Assert.Equal(0, again.BytesStored);
    }

    [Fact]
    public void ImportsAByteRange()
    {
        using var t = new TempDir();
        var image = MakeImage(t);
        long off = 3 * CS + 123, len = 10 * CS + 77;
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["r.idx"], Offset = off, Length = len });
        DiskExporter.Export(t["r.idx"], t.Cas, t["r.raw"]);
        Assert.Equal(image.AsSpan((int)off, (int)len).ToArray(), File.ReadAllBytes(t["r.raw"]));
        Assert.Throws<ShuruStoreException>(() => DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["bad.idx"], Offset = image.Length - 10, Length = 11 }));
        Assert.False(File.Exists(t["bad.idx"]));
    }

    [Fact]
    public void ImportOnTopOfAParentStoresOnlyTheDifference()
    {
        using var t = new TempDir();
        var image = MakeImage(t);
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["parent.idx"] });
        var changed = (byte[])image.Clone();
        TempDir.Pattern(CS, 99).CopyTo(changed, 2 * CS);  // new data
        Array.Clear(changed, 0, CS);                       // zeros over data
        File.WriteAllBytes(t["changed.raw"], changed);
        var r = DiskImporter.Import(new() { ImagePath = t["changed.raw"], CasPath = t.Cas, IndexPath = t["child.idx"], ParentIndexPath = t["parent.idx"] });
        Assert.Equal(1, r.ChunksNew);
        Assert.Equal(t["parent.idx"], r.ParentPath);
        var idx = ChunkIndexFile.Load(t["child.idx"]);
        Assert.Equal(ChunkHash.ZeroChunk, idx.Entries[0]);
        Assert.NotNull(idx.Entries[2]);
        Assert.Equal(2, idx.Entries.Count(e => e is not null));
        Assert.True(File.Exists(Path.Combine(ChunksDir(t), ChunkHash.ZeroChunk.ToString()))); // shuru reads every named chunk
        Assert.Equal(changed, ReadDisk(t.Cas, t["child.idx"]));
        DiskExporter.Export(t["child.idx"], t.Cas, t["child.raw"]);
        Assert.Equal(changed, File.ReadAllBytes(t["child.raw"]));
        // Never over its own chain.
        var ex = Assert.Throws<ShuruStoreException>(() => DiskImporter.Import(new() { ImagePath = t["changed.raw"], CasPath = t.Cas, IndexPath = t["parent.idx"], ParentIndexPath = t["parent.idx"], Overwrite = true }));
        Assert.Equal(ShuruErrorKind.CheckpointOverwritesChain, ex.Kind);
    }

    [Fact]
    public void ImportOverAFallbackLeavesEqualPiecesToIt()
    {
        using var t = new TempDir();
        var image = MakeImage(t, "base.raw");
        var changed = (byte[])image.Clone();
        TempDir.Pattern(CS, 42).CopyTo(changed, 7 * CS);
        File.WriteAllBytes(t["changed.raw"], changed);
        var r = DiskImporter.Import(new() { ImagePath = t["changed.raw"], CasPath = t.Cas, IndexPath = t["delta.idx"], FallbackPath = t["base.raw"] });
        Assert.Equal(1, r.ChunksNew);
        Assert.Equal(1, ChunkFiles(t).Length);
        Assert.Equal(t["base.raw"], ChunkIndexFile.Load(t["delta.idx"]).FallbackPath);
        Assert.Equal(changed, ReadDisk(t.Cas, t["delta.idx"]));
        var e = DiskExporter.Export(t["delta.idx"], t.Cas, t["delta.out"]);
        Assert.Equal(changed, File.ReadAllBytes(t["delta.out"]));
        Assert.True(e.ChunksFromBase > 0);
    }

    [Fact]
    public void ExportMatchesTheServedDiskOfACheckpointChain()
    {
        using var t = new TempDir();
        MakeImage(t, "base.raw");
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.raw"], CasPath = t.Cas }))
        {
            d.Write(CS + 100, TempDir.Pattern(5000, 5), WriteFlags.None);
            d.WriteZeroes(3 * CS, CS, WriteFlags.None);
            d.SaveCheckpoint(t["cp1.idx"]);
        }
        byte[] expected;
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["cp1.idx"], DiskSize = 50 * CS }))
        {
            d.Write(45 * CS, TempDir.Pattern(CS, 6), WriteFlags.None);
            d.Trim(9 * CS, CS, WriteFlags.None);
            d.SaveCheckpoint(t["cp2.idx"]);
            expected = new byte[d.Size];
            d.Read(0, expected);
        }
        var e = DiskExporter.Export(t["cp2.idx"], t.Cas, t["cp2.raw"]);
        Assert.Equal(expected, File.ReadAllBytes(t["cp2.raw"]));
        Assert.Equal(50L * CS, e.DiskSize);
        Assert.True(e.ChunksFromBase > 0 && e.ChunksFromStore > 0 && e.ChunksZero > 0);
    }

    [Fact]
    public void ExportFailsOnAMissingChunkAndLeavesNothing()
    {
        using var t = new TempDir();
        MakeImage(t);
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["i.idx"] });
        File.Delete(ChunkFiles(t)[0]);
        var ex = Assert.Throws<ShuruStoreException>(() => DiskExporter.Export(t["i.idx"], t.Cas, t["o.raw"]));
        Assert.Equal(ShuruErrorKind.ChunkMissing, ex.Kind);
        Assert.Empty(Directory.GetFiles(t.Path, "*o.raw*"));
        // Never over the index itself, never an existing file without overwrite.
        Assert.Equal(ShuruErrorKind.CheckpointOverwritesChain,
            Assert.Throws<ShuruStoreException>(() => DiskExporter.Export(t["i.idx"], t.Cas, t["i.idx"], overwrite: true)).Kind);
    }

    [Fact]
    public void CancelledImportLeavesWholeChunksAndNoIndex()
    {
        using var t = new TempDir();
        MakeImage(t, chunks: 80);
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<MaintenanceProgress>(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() =>
            DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["c.idx"] }, progress, cts.Token));
        Assert.False(File.Exists(t["c.idx"]));
        Assert.NotEmpty(ChunkFiles(t));
        Assert.True(ChunkFiles(t).Length < 50);
        AssertStoreConsistent(t);
        Assert.Empty(Directory.GetFiles(t.Path, ".*tmp*"));
    }

    [Fact]
    public void CancelledExportLeavesNoFile()
    {
        using var t = new TempDir();
        MakeImage(t, chunks: 80);
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["i.idx"] });
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<MaintenanceProgress>(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() => DiskExporter.Export(t["i.idx"], t.Cas, t["o.raw"], false, progress, cts.Token));
        Assert.Empty(Directory.GetFiles(t.Path, "*o.raw*"));
    }

    [Fact]
    public void VerifierFindsCorruptMissingAndTempFilesAndRepairsOnlyWhenAsked()
    {
        using var t = new TempDir();
        MakeImage(t);
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["i.idx"] });
        var files = ChunkFiles(t);
        File.WriteAllBytes(files[0], [1, 2, 3]);              // corrupt
        File.Delete(files[1]);                                // missing
        string tmp = Path.Combine(ChunksDir(t), ".tmp-" + new string('a', 64) + "-x");
        File.WriteAllBytes(tmp, [9]);
        File.SetLastWriteTimeUtc(tmp, DateTime.UtcNow.AddHours(-2));
        string young = Path.Combine(ChunksDir(t), ".tmp-young");
        File.WriteAllBytes(young, [9]);
        File.WriteAllBytes(Path.Combine(ChunksDir(t), "README"), [1]);

        // Every chunk: corrupt found, missing cannot be known without an index.
        var problems = new List<StoreProblem>();
        var all = StoreVerifier.Verify(new() { CasPath = t.Cas }, problems.Add);
        Assert.Equal(1, all.Corrupt);
        Assert.Equal(0, all.Missing);
        Assert.Equal(2, all.TempFiles);
        Assert.Equal(1, all.UnknownFiles);
        Assert.False(all.IsHealthy);
        Assert.True(File.Exists(files[0]));                   // untouched without Repair

        // From the index: missing found too, with the index naming it.
        problems.Clear();
        var reach = StoreVerifier.Verify(new() { CasPath = t.Cas, IndexPaths = [t["i.idx"]] }, problems.Add);
        Assert.Equal(1, reach.Missing);
        Assert.Equal(1, reach.Corrupt);
        var missing = Assert.Single(problems, p => p.Kind == StoreProblemKind.Missing);
        Assert.Equal(Path.GetFileName(files[1]), missing.Hash.ToString());
        Assert.Equal(t["i.idx"], missing.ReferencedBy);

        // Repair declined: nothing changes.
        StoreVerifier.Verify(new() { CasPath = t.Cas, Repair = true, ConfirmRepair = _ => false });
        Assert.True(File.Exists(files[0]) && File.Exists(tmp));

        // Repair: corrupt chunk and stale temp file go; the young temp file and the unknown file stay.
        problems.Clear();
        var fixedUp = StoreVerifier.Verify(new() { CasPath = t.Cas, Repair = true }, problems.Add);
        Assert.Equal(2, fixedUp.Repaired);
        Assert.False(File.Exists(files[0]));
        Assert.False(File.Exists(tmp));
        Assert.True(File.Exists(young));
        Assert.True(File.Exists(Path.Combine(ChunksDir(t), "README")));
        Assert.True(StoreVerifier.Verify(new() { CasPath = t.Cas }).IsHealthy);
    }

    [Fact]
    public void CollectorKeepsReachableChainsRemovesTheRestAndRespectsGrace()
    {
        using var t = new TempDir();
        var image = MakeImage(t);
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["parent.idx"] });
        var changed = (byte[])image.Clone();
        TempDir.Pattern(CS, 77).CopyTo(changed, 0);
        Array.Clear(changed, 2 * CS, CS);
        File.WriteAllBytes(t["changed.raw"], changed);
        DiskImporter.Import(new() { ImagePath = t["changed.raw"], CasPath = t.Cas, IndexPath = t["child.idx"], ParentIndexPath = t["parent.idx"] });
        var other = MakeImage(t, "other.raw", chunks: 8, seed: 5);
        DiskImporter.Import(new() { ImagePath = t["other.raw"], CasPath = t.Cas, IndexPath = t["other.idx"] });
        int before = ChunkFiles(t).Length;
        var unrelated = ChunkIndexFile.Load(t["other.idx"]).Entries.OfType<ChunkHash>().Distinct().ToList();

        // Within the grace period nothing goes.
        var young = GarbageCollector.Collect(new() { CasPath = t.Cas, IndexPaths = [t["child.idx"]] });
        Assert.Equal(0, young.ChunksRemoved);
        Assert.Equal(unrelated.Count, young.ChunksSpared);

        // A plan touches nothing.
        var plan = GarbageCollector.Plan(new() { CasPath = t.Cas, IndexPaths = [t["child.idx"]], GracePeriod = TimeSpan.Zero });
        Assert.Equal(unrelated.Count, plan.Unused.Count);
        Assert.Equal(before, ChunkFiles(t).Length);

        var r = GarbageCollector.Collect(new() { CasPath = t.Cas, IndexPaths = [t["child.idx"]], GracePeriod = TimeSpan.Zero });
        Assert.Equal(unrelated.Count, r.ChunksRemoved);
        Assert.Equal(before - unrelated.Count, ChunkFiles(t).Length);
        Assert.All(unrelated, h => Assert.False(File.Exists(Path.Combine(ChunksDir(t), h.ToString()))));
        Assert.True(File.Exists(Path.Combine(ChunksDir(t), ChunkHash.ZeroChunk.ToString())));
        // The child still reads whole (its parent's chunks were kept).
        Assert.Equal(changed, ReadDisk(t.Cas, t["child.idx"]));
        Assert.Equal(image, ReadDisk(t.Cas, t["parent.idx"]));
        AssertStoreConsistent(t);
        Assert.Empty(Directory.GetFiles(ChunksDir(t), ".gc-*"));

        // An unreadable index stops the collection before anything goes.
        File.WriteAllBytes(t["broken.idx"], [1, 2, 3]);
        Assert.Throws<ShuruStoreException>(() => GarbageCollector.Collect(new() { CasPath = t.Cas, IndexPaths = [t["broken.idx"]], GracePeriod = TimeSpan.Zero }));
        Assert.Equal(before - unrelated.Count, ChunkFiles(t).Length);
    }

    [Fact]
    public void CollectorKeepsWhatARunningDiskStoredAndWhatItStartsToUseDuringTheSweep()
    {
        using var t = new TempDir();
        MakeImage(t, "base.raw");
        MakeImage(t, "other.raw", chunks: 4, seed: 9);
        DiskImporter.Import(new() { ImagePath = t["other.raw"], CasPath = t.Cas, IndexPath = t["other.idx"] });
        var orphan = TempDir.Pattern(CS, 1234);
        var orphanHash = ChunkHasher.Hash(orphan);
        using (var s = new FileChunkStore(t.Cas)) s.Write(orphanHash, orphan);

        using var d = CowDisk.Open(new() { BaseImagePath = t["base.raw"], CasPath = t.Cas });
        var written = TempDir.Pattern(3 * CS, 8);
        d.Write(10 * CS, written, WriteFlags.None);
        d.Flush(); // stored, in no index
        var read = new byte[CS];
        d.Read(0, read); // lazily ingested, in no index
        d.WaitForIngestion(); // ingestion runs in the background: let it land before the mark

        // The sweep re-asks the disk: simulate the disk starting to use the orphan between mark and sweep.
        int asked = 0;
        IReadOnlyCollection<ChunkHash> Live()
        {
            var set = d.GetReferencedChunks().ToHashSet();
            if (asked++ > 0) set.Add(orphanHash);
            return set;
        }
        var r = GarbageCollector.Collect(new() { CasPath = t.Cas, IndexPaths = [t["other.idx"]], LiveReferences = [Live], GracePeriod = TimeSpan.Zero });
        Assert.Equal(1, r.ChunksRescued);
        Assert.Equal(0, r.ChunksRemoved);
        Assert.True(File.Exists(Path.Combine(ChunksDir(t), orphanHash.ToString())));
        var back = new byte[3 * CS];
        d.Read(10 * CS, back);
        Assert.Equal(written, back);
        d.SaveCheckpoint(t["after.idx"]);
        Assert.True(StoreVerifier.Verify(new() { CasPath = t.Cas, IndexPaths = [t["after.idx"]] }).IsHealthy);

        // Without the disk the orphan goes, and the next collection cleans what an interrupted one set aside.
        string aside = Path.Combine(ChunksDir(t), ".gc-" + orphanHash + "-deadbeef0000");
        File.Move(Path.Combine(ChunksDir(t), orphanHash.ToString()), aside);
        var problems = new List<StoreProblem>();
        StoreVerifier.Verify(new() { CasPath = t.Cas }, problems.Add);
        Assert.Contains(problems, p => p.Kind == StoreProblemKind.QuarantinedChunk && p.Hash == orphanHash);
        var r2 = GarbageCollector.Collect(new() { CasPath = t.Cas, IndexPaths = [t["after.idx"], t["other.idx"]], GracePeriod = TimeSpan.Zero });
        Assert.Equal(1, r2.ChunksRemoved);
        Assert.Empty(Directory.GetFiles(ChunksDir(t), ".gc-*"));
        AssertStoreConsistent(t);
    }

    [Fact]
    public void CancelledCollectionLeavesEveryRemainingChunkInPlace()
    {
        using var t = new TempDir();
        MakeImage(t, chunks: 80);
        DiskImporter.Import(new() { ImagePath = t["image.raw"], CasPath = t.Cas, IndexPath = t["i.idx"] });
        File.WriteAllBytes(t["e.raw"], TempDir.Pattern(CS, 1));
        DiskImporter.Import(new() { ImagePath = t["e.raw"], CasPath = t.Cas, IndexPath = t["keep.idx"] });
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var o = new GarbageCollectionOptions { CasPath = t.Cas, IndexPaths = [t["keep.idx"]], GracePeriod = TimeSpan.Zero };
        var plan = GarbageCollector.Plan(o);
        Assert.ThrowsAny<OperationCanceledException>(() => GarbageCollector.Sweep(plan, o, cancel: cts.Token));
        Assert.Equal(plan.ChunksScanned, ChunkFiles(t).Length);
        Assert.Empty(Directory.GetFiles(ChunksDir(t), ".gc-*"));
        AssertStoreConsistent(t);
    }
}
