using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class StressTests
{
    private const int CS = 65536;

    [Fact]
    public async Task MixedConcurrentOperationsMatchAModel()
    {
        using var t = new TempDir();
        var baseImg = TempDir.Pattern(16 * CS, 1);
        File.WriteAllBytes(t["base.img"], baseImg);
        const int Threads = 8;
        const long Region = 3 * CS + 4096;          // regions are not chunk-aligned: neighbours share chunks
        long size = Threads * Region;
        var opts = new CowDiskOptions { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = size, StatePath = t["state"], DirtyBudgetBytes = 3 * CS };
        var d = CowDisk.Open(opts);
        var model = new byte[size];
        baseImg.CopyTo(model, 0);

        var tasks = Enumerable.Range(0, Threads).Select(w => Task.Run(() =>
        {
            var rnd = new Random(w);
            long start = w * Region;
            for (int op = 0; op < 150; op++)
            {
                long off = start + rnd.NextInt64(Region - 1);
                int len = (int)Math.Min(Region - (off - start), rnd.Next(1, 2 * CS));
                switch (rnd.Next(10))
                {
                    case < 5:
                        var data = new byte[len];
                        rnd.NextBytes(data);
                        d.Write(off, data, rnd.Next(8) == 0 ? WriteFlags.Fua : WriteFlags.None);
                        data.CopyTo(model, off);
                        break;
                    case 5:
                        d.WriteZeroes(off, len, WriteFlags.None);
                        Array.Clear(model, (int)off, len);
                        break;
                    case 6:
                        d.Flush();
                        break;
                    case 7:
                        if (w == 0) d.SaveCheckpoint(t[$"cp{op}.idx"]);
                        break;
                    default:
                        var buf = new byte[len];
                        d.Read(off, buf);
                        Assert.True(buf.AsSpan().SequenceEqual(model.AsSpan((int)off, len)), $"thread {w} op {op}: read mismatch");
                        break;
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);

        var all = new byte[size];
        d.Read(0, all);
        Assert.True(all.AsSpan().SequenceEqual(model), "final content");
        d.Flush();
        d.SimulateCrash(); // kill -9: no Dispose, no flush

        using var r = CowDisk.Open(opts);
        Array.Clear(all);
        r.Read(0, all);
        Assert.True(all.AsSpan().SequenceEqual(model), "content after a crash following a flush");
        var cp = r.SaveCheckpoint(t["final.idx"]);
        using var c = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = cp.Path, ReadOnly = true });
        Array.Clear(all);
        c.Read(0, all);
        Assert.True(all.AsSpan().SequenceEqual(model), "content of the final checkpoint");
    }
}
