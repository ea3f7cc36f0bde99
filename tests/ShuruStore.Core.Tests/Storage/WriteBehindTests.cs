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
}
