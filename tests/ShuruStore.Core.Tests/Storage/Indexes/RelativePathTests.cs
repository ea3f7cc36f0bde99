using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>Paths stored relative in an index resolve against the index's folder, never the
/// process working directory (in pwsh the process directory is not the user's location).</summary>
[Collection(ProcessWideStateCollection.Name)]
public class RelativePathTests
{
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
