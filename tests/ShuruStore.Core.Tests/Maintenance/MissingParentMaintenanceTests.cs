using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Storage;
using ShuruStore.Core.Tests.Storage;

namespace ShuruStore.Core.Tests.Maintenance;

/// <summary>An index whose parent was deleted (shuru's checkpoint delete): verification and
/// collection work on the rest of its chain and report the link; export refuses unless allowed.</summary>
public class MissingParentMaintenanceTests
{
    private const int CS = 65536;

    [Fact]
    public void CollectionKeepsWhatTheRestOfTheChainNamesAndReportsTheLink()
    {
        using var t = new TempDir();
        var (root0, delta1) = MissingParentTests.MakeOrphan(t);
        var leaf2 = ChunkIndexFile.Load(t["leaf.idx"]).Entries[2]!.Value;
        var result = GarbageCollector.Collect(new GarbageCollectionOptions
        {
            CasPath = t.Cas, IndexPaths = [t["leaf.idx"], t["root.idx"]], GracePeriod = TimeSpan.Zero,
        });
        var link = Assert.Single(result.MissingParents);
        Assert.Equal(t["leaf.idx"], link.IndexPath);
        Assert.Equal(t["delta.idx"], link.MissingPath);
        Assert.True(File.Exists(Path.Combine(t.Cas, "chunks", leaf2.ToString())));
        Assert.True(File.Exists(Path.Combine(t.Cas, "chunks", root0.ToString())));
        // Only the deleted index named this one.
        Assert.False(File.Exists(Path.Combine(t.Cas, "chunks", delta1.ToString())));
        Assert.Equal(1, result.ChunksRemoved);
    }

    [Fact]
    public void VerificationChecksTheRestAndListsTheMissingParent()
    {
        using var t = new TempDir();
        MissingParentTests.MakeOrphan(t);
        var problems = new List<StoreProblem>();
        var r = StoreVerifier.Verify(new StoreVerifyOptions { CasPath = t.Cas, IndexPaths = [t["leaf.idx"]] }, problems.Add);
        var p = Assert.Single(problems);
        Assert.Equal(StoreProblemKind.ParentIndexMissing, p.Kind);
        Assert.Equal(t["delta.idx"], p.Path);
        Assert.Equal(t["leaf.idx"], p.ReferencedBy);
        Assert.Equal(1, r.MissingParents);
        Assert.Equal(1, r.ChunksChecked);
        Assert.False(r.IsHealthy);
    }

    [Fact]
    public void ExportRefusesByDefaultAndWritesWhatIsLeftWhenAllowed()
    {
        using var t = new TempDir();
        MissingParentTests.MakeOrphan(t);
        var e = Assert.Throws<ShuruStoreException>(() => DiskExporter.Export(t["leaf.idx"], t.Cas, t["leaf.raw"]));
        Assert.Equal(ShuruErrorKind.ParentIndexMissing, e.Kind);
        Assert.Contains(t["delta.idx"], e.Message);
        Assert.False(File.Exists(t["leaf.raw"]));

        var r = DiskExporter.Export(new DiskExportOptions { IndexPath = t["leaf.idx"], CasPath = t.Cas, Destination = t["leaf.raw"], AllowMissingParent = true });
        Assert.Equal(t["delta.idx"], r.MissingParent!.MissingPath);
        var expected = File.ReadAllBytes(t["base.img"]);
        TempDir.Pattern(CS, 22).CopyTo(expected, 2 * CS);
        Assert.Equal(expected, File.ReadAllBytes(t["leaf.raw"]));
    }

    [Fact]
    public void ImportOverAChainMissingAParentIsRefused()
    {
        using var t = new TempDir();
        MissingParentTests.MakeOrphan(t);
        var e = Assert.Throws<ShuruStoreException>(() => DiskImporter.Import(new DiskImportOptions
        {
            ImagePath = t["base.img"], CasPath = t.Cas, IndexPath = t["over.idx"], ParentIndexPath = t["leaf.idx"],
        }));
        Assert.Equal(ShuruErrorKind.ParentIndexMissing, e.Kind);
        Assert.False(File.Exists(t["over.idx"]));
    }
}
