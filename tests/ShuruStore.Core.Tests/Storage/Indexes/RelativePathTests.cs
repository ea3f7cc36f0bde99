using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>Paths stored relative in an index resolve as shuru resolves them, against the working
/// directory, when that names an existing file; otherwise against the index's folder. The working
/// directory is the caller's (in pwsh the user's location, not the process directory).</summary>
[Collection(ProcessWideStateCollection.Name)]
public class RelativePathTests
{
    /// <summary>A data directory laid out as shuru's SDK lays it out when given the relative data
    /// directory "data": checkpoints name their parent and fallback relative to the folder
    /// shuru ran in, the one above "data".</summary>
    private static string MakeShuruDataDirectory(TempDir t)
    {
        string data = Directory.CreateDirectory(t["data"]).FullName;
        Directory.CreateDirectory(Path.Combine(data, "checkpoints"));
        File.WriteAllBytes(Path.Combine(data, "rootfs.img"), TempDir.Pattern(2 * 65536, 1));
        var h = ChunkHasher.Hash(TempDir.Pattern(65536, 2));
        using (var s = new FileChunkStore(t.Cas)) { s.Write(h, TempDir.Pattern(65536, 2)); s.Sync(); }
        new ChunkIndexFile(2 * 65536, null, "data/rootfs.img", [h, null]).Save(Path.Combine(data, "checkpoints", "a.idx"));
        new ChunkIndexFile(2 * 65536, "data/checkpoints/a.idx", "data/rootfs.img").Save(Path.Combine(data, "checkpoints", "b.idx"));
        return data;
    }

    [Fact]
    public void RelativePathsResolveAgainstTheWorkingDirectoryAsShuruDoes()
    {
        using var t = new TempDir();
        string data = MakeShuruDataDirectory(t);
        string b = Path.Combine(data, "checkpoints", "b.idx");
        var chain = IndexChain.Load(b, new IndexPathResolver(t.Path));
        Assert.True(chain.IsComplete);
        Assert.Equal([b, Path.Combine(data, "checkpoints", "a.idx")], chain.AllPaths.ToArray());
        Assert.Equal(Path.Combine(data, "rootfs.img"), chain.BaseImagePath);
        Assert.Empty(chain.Warnings);

        using var disk = CowDisk.Open(new CowDiskOptions { CasPath = t.Cas, IndexPath = b, ReadOnly = true, WorkingDirectory = t.Path });
        var buf = new byte[2 * 65536];
        disk.Read(0, buf);
        Assert.Equal(TempDir.Pattern(65536, 2), buf[..65536]);
        Assert.Equal(TempDir.Pattern(2 * 65536, 1)[65536..], buf[65536..]);

        // From elsewhere neither reading finds the parent: the chain stops there, naming both places.
        var lost = IndexChain.Load(b, new IndexPathResolver("/"));
        Assert.Equal("/data/checkpoints/a.idx", lost.MissingParent!.MissingPath);
        Assert.Equal(Path.Combine(data, "checkpoints", "data", "checkpoints", "a.idx"), lost.MissingParent.OtherCandidate);
    }

    [Fact]
    public void TheProcessDirectoryIsTheDefaultWorkingDirectory()
    {
        using var t = new TempDir();
        string data = MakeShuruDataDirectory(t);
        string cwd = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = t.Path;
            Assert.True(IndexChain.Load(Path.Combine(data, "checkpoints", "b.idx")).IsComplete);
            Environment.CurrentDirectory = data;
            Assert.False(IndexChain.Load(Path.Combine(data, "checkpoints", "b.idx")).IsComplete);
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }
    }

    [Fact]
    public void WhenBothReadingsNameDifferentFilesTheWorkingDirectoryWinsWithAWarning()
    {
        using var t = new TempDir();
        string vm = Directory.CreateDirectory(t["vm"]).FullName;
        File.WriteAllBytes(t["base.img"], TempDir.Pattern(65536, 1));
        File.WriteAllBytes(Path.Combine(vm, "base.img"), TempDir.Pattern(65536, 2));
        new ChunkIndexFile(65536, null, "base.img").Save(Path.Combine(vm, "a.idx"));

        var chain = IndexChain.Load(Path.Combine(vm, "a.idx"), new IndexPathResolver(t.Path));
        Assert.Equal(t["base.img"], chain.BaseImagePath);
        string warning = Assert.Single(chain.Warnings);
        Assert.Contains(t["base.img"], warning);
        Assert.Contains(Path.Combine(vm, "base.img"), warning);
        using var disk = CowDisk.Open(new CowDiskOptions { CasPath = t.Cas, IndexPath = Path.Combine(vm, "a.idx"), ReadOnly = true, WorkingDirectory = t.Path });
        Assert.Equal(chain.Warnings, disk.ChainWarnings);
        var buf = new byte[65536];
        disk.Read(0, buf);
        Assert.Equal(TempDir.Pattern(65536, 1), buf);

        // The same file reached both ways (a symlink) is no disagreement.
        File.Delete(Path.Combine(vm, "base.img"));
        File.CreateSymbolicLink(Path.Combine(vm, "base.img"), t["base.img"]);
        Assert.Empty(IndexChain.Load(Path.Combine(vm, "a.idx"), new IndexPathResolver(t.Path)).Warnings);
    }

    [Fact]
    public void RelativeFallbackResolvesAgainstTheIndexFolder()
    {
        using var dir = new TempDir();
        string sub = Directory.CreateDirectory(dir["vm"]).FullName;
        File.WriteAllBytes(Path.Combine(sub, "base.img"), TempDir.Pattern(65536, 1));
        new ChunkIndexFile(65536, null, "base.img").Save(Path.Combine(sub, "a.idx"));
        // The index names its parent relatively too; the parent's own fallback is relative to it.
        new ChunkIndexFile(65536, "a.idx", null).Save(Path.Combine(sub, "b.idx"));

        string cwd = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = "/";
            Assert.Equal(Path.Combine(sub, "base.img"), IndexChain.Load(Path.Combine(sub, "a.idx")).BaseImagePath);
            Assert.Equal(Path.Combine(sub, "base.img"), IndexChain.Load(Path.Combine(sub, "b.idx")).BaseImagePath);
            using var disk = CowDisk.Open(new CowDiskOptions { CasPath = dir.Cas, IndexPath = Path.Combine(sub, "b.idx"), ReadOnly = true });
            var buf = new byte[65536];
            disk.Read(0, buf);
            Assert.Equal(TempDir.Pattern(65536, 1), buf);
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }
    }
}

/// <summary>Tests that change process-wide state (the working directory) run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideStateCollection
{
    public const string Name = "Process-wide state";
}
