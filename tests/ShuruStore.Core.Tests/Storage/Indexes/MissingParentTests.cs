using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>shuru's <c>checkpoint delete</c> removes a parent without looking at its children. The
/// chain then stops at the missing parent: inspection and comparison work on what is left and
/// say so; serving refuses unless told to accept it.</summary>
public class MissingParentTests
{
    private const int CS = 65536;

    /// <summary>base.img (4 data chunks) ← root.idx (chunk 0 written) ← delta.idx (ZERO but chunk 1,
    /// as an import over a parent writes it) ← leaf.idx (ZERO but chunk 2, no fallback of its own),
    /// then delta.idx deleted.</summary>
    internal static (ChunkHash Root0, ChunkHash Delta1) MakeOrphan(TempDir t)
    {
        var b = new byte[4 * CS];
        for (int i = 0; i < 4; i++) TempDir.Pattern(CS, 10 + i).CopyTo(b, i * CS);
        File.WriteAllBytes(t["base.img"], b);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Write(0, TempDir.Pattern(CS, 20), WriteFlags.None);
            d.SaveCheckpoint(t["root.idx"]);
        }
        ChunkHash delta1 = ChunkHasher.Hash(TempDir.Pattern(CS, 21)), leaf2 = ChunkHasher.Hash(TempDir.Pattern(CS, 22));
        using (var s = new FileChunkStore(t.Cas))
        {
            s.Write(delta1, TempDir.Pattern(CS, 21));
            s.Write(leaf2, TempDir.Pattern(CS, 22));
            s.Sync();
        }
        new ChunkIndexFile(4 * CS, t["root.idx"], t["base.img"], [null, delta1, null, null]).Save(t["delta.idx"]);
        new ChunkIndexFile(4 * CS, t["delta.idx"], t["base.img"], [null, null, leaf2, null]).Save(t["leaf.idx"]);
        File.Delete(t["delta.idx"]);
        return (ChunkIndexFile.Load(t["root.idx"]).Entries[0]!.Value, delta1);
    }

    [Fact]
    public void TheChainStopsAtTheMissingParentAndRecordsTheLink()
    {
        using var t = new TempDir();
        MakeOrphan(t);
        var chain = IndexChain.Load(t["leaf.idx"]);
        Assert.False(chain.IsComplete);
        Assert.Empty(chain.Parents);
        Assert.Equal(t["leaf.idx"], chain.MissingParent!.IndexPath);
        Assert.Equal(t["delta.idx"], chain.MissingParent.StoredPath);
        Assert.Equal(t["delta.idx"], chain.MissingParent.MissingPath);
        Assert.Equal(t["base.img"], chain.BaseImagePath);

        var e = Assert.Throws<ShuruStoreException>(() => chain.RequireComplete("cannot do it", "accept it"));
        Assert.Equal(ShuruErrorKind.ParentIndexMissing, e.Kind);
        Assert.Equal(t["delta.idx"], e.Path);
        Assert.Contains($"'{t["leaf.idx"]}' names parent '{t["delta.idx"]}'", e.Message);
        Assert.Contains($"from the base image '{t["base.img"]}' or as zeros", e.Message);

        // A link deeper down: the chain keeps the parents before it.
        new ChunkIndexFile(4 * CS, t["leaf.idx"], null).Save(t["child.idx"]);
        var deeper = IndexChain.Load(t["child.idx"]);
        Assert.Equal([t["child.idx"], t["leaf.idx"]], deeper.AllPaths.ToArray());
        Assert.Equal(t["leaf.idx"], deeper.MissingParent!.IndexPath);
    }

    [Fact]
    public void InspectionAndComparisonWorkOnWhatIsLeft()
    {
        using var t = new TempDir();
        MakeOrphan(t);
        var s = IndexInspector.Inspect(t["leaf.idx"]);
        Assert.Equal(t["delta.idx"], s.MissingParent!.MissingPath);
        Assert.Equal(t["delta.idx"], s.ResolvedParentPath);
        Assert.Equal(1, s.SetHere);
        Assert.Equal(3, s.FromBase); // chunk 1 was the delta's: now the base image's
        Assert.Equal(ChunkSource.Base, IndexInspector.Locate(t["leaf.idx"], 1, 1)[0].Source);

        var cmp = IndexComparer.Compare(t["root.idx"], t["leaf.idx"]);
        Assert.Equal(t["delta.idx"], Assert.Single(cmp.MissingParents).MissingPath);
        Assert.Equal([new ByteRange(0, 1 * CS), new ByteRange(2 * CS, CS)], cmp.Differences);
    }

    [Fact]
    public void ServingRefusesByDefaultAndReadsWhatIsLeftWhenAllowed()
    {
        using var t = new TempDir();
        MakeOrphan(t);
        var e = Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["leaf.idx"], ReadOnly = true }));
        Assert.Equal(ShuruErrorKind.ParentIndexMissing, e.Kind);
        Assert.Contains(t["delta.idx"], e.Message);
        Assert.Contains("AllowMissingParent", e.Message);

        using var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["leaf.idx"], ReadOnly = true, AllowMissingParent = true });
        Assert.Equal(t["delta.idx"], d.MissingParent!.MissingPath);
        var buf = new byte[4 * CS];
        d.Read(0, buf);
        var baseBytes = File.ReadAllBytes(t["base.img"]);
        Assert.Equal(baseBytes[..CS], buf[..CS]);                   // root.idx is beyond the gap: not read
        Assert.Equal(baseBytes[CS..(2 * CS)], buf[CS..(2 * CS)]);   // the delta's chunk is lost: base data
        Assert.Equal(TempDir.Pattern(CS, 22), buf[(2 * CS)..(3 * CS)]);
    }

    [Fact]
    public void ACheckpointOfSuchADiskCarriesTheLink()
    {
        using var t = new TempDir();
        MakeOrphan(t);
        using var d = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["leaf.idx"], AllowMissingParent = true });
        var info = d.SaveCheckpoint(t["next.idx"]);
        Assert.Equal(t["delta.idx"], info.Chain!.MissingParent!.MissingPath);
        Assert.Equal(t["delta.idx"], IndexChain.Load(t["next.idx"]).MissingParent!.MissingPath);
    }
}
