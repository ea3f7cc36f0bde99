using System.Diagnostics;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;
using Xunit;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>The spill file: where unsaved chunks go past the dirty-memory budget.</summary>
public class SpillFileTests
{
    private const int CS = ChunkHasher.ChunkSize;

    [Fact]
    public void SpillFileIsNamelessAndGivesSpaceBack()
    {
        using var t = new TempDir();
        Directory.CreateDirectory(t.Cas);
        using var f = SpillFile.Create(t.Cas);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Cas)); // O_TMPFILE: nothing to clean after a crash
        var data = TempDir.Pattern(CS, 1);
        f.Write(3, 0, data);
        f.Write(3, 100, new byte[] { 7, 8, 9 });
        data[100] = 7; data[101] = 8; data[102] = 9;
        var back = new byte[CS];
        f.Read(3, 0, back);
        Assert.Equal(data, back);
        f.Release(3);
        f.Read(3, 0, back); // released: reads as a hole (the disk never asks for a released chunk)
        Assert.True(back.AsSpan().IndexOfAnyExcept((byte)0) < 0);
        Assert.Throws<IOException>(() => f.Read(10, 0, back)); // past the end: damage, never zeros
    }

    [Fact]
    public void SpilledChunksCountAsUnsavedForExtentsZeroingAndCheckpoints()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 16 * CS, DirtyBudgetBytes = CS });
        var data = TempDir.Pattern(6 * CS, 2);
        for (int i = 0; i < 6; i++) WriteInHalves(d, i, data);
        Assert.True(d.Statistics.SpilledChunks >= 4);
        var extents = new List<Extent>();
        d.GetExtents(0, 16 * CS, extents);
        Assert.Equal(new Extent(6 * CS, ExtentFlags.Data), extents[0]);
        d.WriteZeroes(CS, CS, WriteFlags.None); // a spilled chunk zeroed: leaves the spill file
        data.AsSpan(CS, CS).Clear();
        var info = d.SaveCheckpoint(t["ck.idx"]);
        Assert.Equal(0, d.Statistics.DirtyChunks);
        Assert.Equal(5, info.ChunksSet);
        var back = new byte[6 * CS];
        d.Read(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public void WhenTheSpillFileCannotGrowWritesFailBeforeApplyingAndRecoverOnceSpaceReturns()
    {
        // A real full filesystem (as root, like the reliability suite): the spill file shares the
        // chunk store's filesystem, so a full disk shows up here first.
        using var t = new TempDir();
        string mnt = t["mnt"];
        Directory.CreateDirectory(mnt);
        Mount($"-t tmpfs -o size=1m tmpfs {mnt}");
        try
        {
            string cas = Path.Combine(mnt, "cas");
            using var d = CowDisk.Open(new() { CasPath = cas, DiskSize = 64 * CS, DirtyBudgetBytes = 2 * CS });
            var data = TempDir.Pattern(40 * CS, 3);
            long failedAt = -1; // offset of the first request that failed
            for (int i = 0; i < 80 && failedAt < 0; i++) // 40 chunks, in halves (random I/O)
            {
                long at = (long)i * (CS / 2);
                try { d.Write(at, data.AsSpan((int)at, CS / 2), WriteFlags.None); }
                catch (BlockDeviceException e)
                {
                    Assert.Equal(BlockDeviceError.NoSpace, e.Error);
                    failedAt = at;
                }
                Assert.True(d.Statistics.DirtyBytes <= 2L * CS);
            }
            Assert.True(failedAt > 4 * CS, $"the first spills should fit (failed at {failedAt})");
            var back = new byte[CS / 2];
            d.Read(failedAt, back);
            Assert.True(back.AsSpan().IndexOfAnyExcept((byte)0) < 0, "a failed write must not read back");
            var before = new byte[failedAt];
            d.Read(0, before);
            Assert.Equal(data.AsSpan(0, before.Length).ToArray(), before); // answered writes intact

            Mount($"-o remount,size=16m tmpfs {mnt}");
            d.Write(failedAt, data.AsSpan((int)failedAt, 40 * CS - (int)failedAt), WriteFlags.None);
            d.Flush();
            var all = new byte[40 * CS];
            d.Read(0, all);
            Assert.Equal(data, all);
        }
        finally { Mount($"-l {mnt}", umount: true); }
    }

    /// <summary>Writes chunk <paramref name="i"/> of <paramref name="data"/> in two requests, as
    /// random I/O does: a chunk written whole in one request goes to write-behind instead.</summary>
    internal static void WriteInHalves(CowDisk d, int i, byte[] data)
    {
        d.Write((long)i * CS, data.AsSpan(i * CS, CS / 2), WriteFlags.None);
        d.Write((long)i * CS + CS / 2, data.AsSpan(i * CS + CS / 2, CS / 2), WriteFlags.None);
    }

    private static void Mount(string args, bool umount = false)
    {
        using var p = Process.Start(new ProcessStartInfo(umount ? "umount" : "mount", args) { RedirectStandardError = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 && !umount)
            throw new InvalidOperationException($"mount {args} failed ({err.Trim()}): this test needs root, as the reliability suite does");
    }
}

/// <summary>The block-granular spill against a byte-array model: random unaligned writes over a
/// base shorter than the disk, a budget of two chunks, reads, flushes and checkpoints.</summary>
public class SpillModelTests
{
    private const int CS = ChunkHasher.ChunkSize;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomWritesThroughTheSpillFileReadBackLikeTheModel(int seed)
    {
        using var t = new TempDir();
        long size = 24L * CS;
        var baseBytes = TempDir.Pattern((int)(20.5 * CS), 100 + seed); // ends mid-chunk, before the disk does
        File.WriteAllBytes(t["base.img"], baseBytes);
        var model = new byte[size];
        baseBytes.CopyTo(model, 0);
        var opts = new CowDiskOptions { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = size, DirtyBudgetBytes = 2 * CS, StatePath = t["state"] };
        var rng = new Random(seed);
        long spilled = 0;
        var d = CowDisk.Open(opts);
        try
        {
            for (int op = 0; op < 1500; op++)
            {
                int kind = rng.Next(100);
                long off = rng.NextInt64(size);
                int len = (int)Math.Min(size - off, rng.Next(100) < 70 ? rng.Next(1, 9000) : rng.Next(1, 3 * CS));
                if (kind < 60)
                {
                    var data = new byte[len];
                    rng.NextBytes(data);
                    d.Write(off, data, WriteFlags.None);
                    data.CopyTo(model, off);
                }
                else if (kind < 90)
                {
                    var back = new byte[len];
                    d.Read(off, back);
                    Assert.True(model.AsSpan((int)off, len).SequenceEqual(back), $"op {op}: read {off}+{len} differs");
                }
                else if (kind < 96) d.Flush();
                else if (kind < 98)
                {
                    spilled += d.Statistics.ChunksSpilled;
                    d.Flush();
                    d.SimulateCrash(); // flushed state must come back exactly
                    d = CowDisk.Open(opts);
                }
                else d.SaveCheckpoint(t[$"ck{op}.idx"]);
            }
            spilled += d.Statistics.ChunksSpilled;
            Assert.True(spilled > 50, $"the test must exercise the spill file ({spilled} chunks spilled)");
            var all = new byte[size];
            d.Read(0, all);
            Assert.Equal(model, all);
        }
        finally { d.Dispose(); }
    }
}
