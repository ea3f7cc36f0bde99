using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class IndexToolsTests
{
    private const int CS = 65536;

    /// <summary>base (4 chunks: data, zeros, data, data) → a.idx (chunk 0 written) → b.idx (chunk 2 written, disk grown to 6 chunks).</summary>
    private static void MakeChain(TempDir t)
    {
        var b = new byte[4 * CS];
        TempDir.Pattern(CS, 1).CopyTo(b, 0);
        TempDir.Pattern(2 * CS, 2).CopyTo(b, 2 * CS);
        File.WriteAllBytes(t["base.img"], b);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Write(0, TempDir.Pattern(CS, 3), WriteFlags.None);
            d.SaveCheckpoint(t["a.idx"]);
        }
        using (var d = CowDisk.Open(new() { IndexPath = t["a.idx"], CasPath = t.Cas, DiskSize = 6 * CS }))
        {
            d.Write(2 * CS, TempDir.Pattern(CS, 4), WriteFlags.None);
            d.SaveCheckpoint(t["b.idx"]);
        }
    }

    [Fact]
    public void InspectorCountsLayers()
    {
        using var t = new TempDir();
        MakeChain(t);
        var s = IndexInspector.Inspect(t["b.idx"]);
        Assert.Equal(6 * CS, s.DiskSize);
        Assert.Equal(t["a.idx"], s.ParentPath);
        Assert.Equal(t["base.img"], s.FallbackPath);
        Assert.Equal(1, s.ParentCount);
        // b's live map held a's entries (chunk 0) plus chunk 2.
        Assert.Equal(2, s.SetHere);
        Assert.Equal(4, s.ZeroEntries);
        Assert.Equal(0, s.InheritedFromParents);
        Assert.Equal(2, s.FromBase);      // chunks 1 (zero piece, never ingested) and 3
        Assert.Equal(2, s.ReadAsZeros);   // grown chunks 4, 5

        var locs = IndexInspector.Locate(t["b.idx"], 0, 6);
        Assert.Equal([ChunkSource.ThisIndex, ChunkSource.Base, ChunkSource.ThisIndex, ChunkSource.Base, ChunkSource.Zeros, ChunkSource.Zeros],
            locs.Select(l => l.Source).ToArray());
        Assert.Equal(2 * CS, locs[2].Offset);

        // A hand-made child with only ZERO entries inherits from its parents.
        new ChunkIndexFile(6 * CS, t["b.idx"], null).Save(t["c.idx"]);
        var c = IndexInspector.Inspect(t["c.idx"]);
        Assert.Equal(0, c.SetHere);
        Assert.Equal(2, c.InheritedFromParents);
        Assert.Equal(t["b.idx"], IndexInspector.Locate(t["c.idx"], 2, 1)[0].LayerPath);
    }

    [Fact]
    public void ComparerFindsDifferingRanges()
    {
        using var t = new TempDir();
        MakeChain(t);
        var same = IndexComparer.Compare(t["a.idx"], t["a.idx"]);
        Assert.True(same.Identical);

        var cmp = IndexComparer.Compare(t["a.idx"], t["b.idx"]);
        Assert.Equal([new ByteRange(2 * CS, CS)], cmp.Differences); // grown chunks read as zeros on both sides
        Assert.Equal(CS, cmp.DifferingBytes);
        Assert.Equal(1, cmp.DifferingChunks);
        Assert.False(cmp.Identical);

        // A zero-hash entry equals an all-zero base piece and a region past the end.
        using (var d = CowDisk.Open(new() { IndexPath = t["a.idx"], CasPath = t.Cas }))
        {
            d.WriteZeroes(0, 2 * CS, WriteFlags.None);
            d.SaveCheckpoint(t["z.idx"]);
        }
        var z = IndexComparer.Compare(t["a.idx"], t["z.idx"]);
        Assert.Equal([new ByteRange(0, CS)], z.Differences);
    }
}
