using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class StateJournalTests
{
    private const int CS = 65536;

    private static CowDiskOptions Opts(TempDir t, long size = 16 * CS, string? index = null) =>
        new() { CasPath = t.Cas, DiskSize = size, StatePath = t["state"], IndexPath = index };

    // "Crash": the disk object is abandoned without Dispose (no flush-on-close runs).
    private static void Crash(CowDisk d) => d.SimulateCrash();

    [Fact]
    public void FlushedWritesSurviveACrash()
    {
        using var t = new TempDir();
        var data = TempDir.Pattern(3 * CS + 500, 1);
        var d = CowDisk.Open(Opts(t));
        d.Write(1000, data, WriteFlags.None);
        d.Trim(10 * CS, CS, WriteFlags.None);
        d.Flush();
        d.Write(12 * CS, TempDir.Pattern(CS, 2), WriteFlags.None); // never flushed: may be lost
        Crash(d);

        using var r = CowDisk.Open(Opts(t));
        var buf = new byte[data.Length];
        r.Read(1000, buf);
        Assert.Equal(data, buf);
    }

    [Fact]
    public void FuaWriteSurvivesACrash()
    {
        using var t = new TempDir();
        var data = TempDir.Pattern(4096, 3);
        var d = CowDisk.Open(Opts(t));
        d.Write(5 * CS + 7, data, WriteFlags.Fua);
        Crash(d);
        using var r = CowDisk.Open(Opts(t));
        var buf = new byte[4096];
        r.Read(5 * CS + 7, buf);
        Assert.Equal(data, buf);
    }

    [Fact]
    public void TornTailIsIgnoredAndLaterAppendsStillReplay()
    {
        using var t = new TempDir();
        var a = TempDir.Pattern(CS, 4);
        var d = CowDisk.Open(Opts(t));
        d.Write(0, a, WriteFlags.None);
        d.Flush();
        Crash(d);
        // A torn append: part of a record, then garbage.
        using (var fs = new FileStream(t["state"], FileMode.Append)) fs.Write(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 });

        var b = TempDir.Pattern(CS, 5);
        var d2 = CowDisk.Open(Opts(t));
        var buf = new byte[CS];
        d2.Read(0, buf);
        Assert.Equal(a, buf);
        d2.Write(CS, b, WriteFlags.None);
        d2.Flush();
        Crash(d2);

        using var r = CowDisk.Open(Opts(t));
        r.Read(0, buf); Assert.Equal(a, buf);
        r.Read(CS, buf); Assert.Equal(b, buf);
    }

    [Fact]
    public void CorruptRecordStopsReplay()
    {
        using var t = new TempDir();
        var d = CowDisk.Open(Opts(t));
        d.Write(0, TempDir.Pattern(CS, 6), WriteFlags.None);
        d.Flush();
        d.Write(CS, TempDir.Pattern(CS, 7), WriteFlags.None);
        d.Flush();
        Crash(d);
        var bytes = File.ReadAllBytes(t["state"]);
        bytes[^3] ^= 0xFF; // damage the last record's CRC
        File.WriteAllBytes(t["state"], bytes);
        using var r = CowDisk.Open(Opts(t));
        var buf = new byte[CS];
        r.Read(0, buf);
        Assert.Equal(TempDir.Pattern(CS, 6), buf);
        r.Read(CS, buf);
        Assert.True(buf.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void StateOfAnotherDiskIsRefused()
    {
        using var t = new TempDir();
        File.WriteAllBytes(t["base.img"], TempDir.Pattern(CS, 8));
        using (var d = CowDisk.Open(Opts(t))) { d.Write(0, new byte[] { 1 }, WriteFlags.None); }
        var e = Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, BaseImagePath = t["base.img"], StatePath = t["state"] }));
        Assert.Equal(ShuruErrorKind.StateInvalid, e.Kind);
        File.WriteAllText(t["junk"], "not a state file at all");
        e = Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, DiskSize = CS, StatePath = t["junk"] }));
        Assert.Equal(ShuruErrorKind.StateInvalid, e.Kind);
    }

    [Fact]
    public void StateIsTiedToTheBootedIndexContent()
    {
        using var t = new TempDir();
        new ChunkIndexFile(4 * CS).Save(t["boot.idx"]);
        using (var d = CowDisk.Open(Opts(t, 0, t["boot.idx"]))) d.Write(0, new byte[] { 9 }, WriteFlags.None);
        using (var d = CowDisk.Open(Opts(t, 0, t["boot.idx"])))
        {
            var b = new byte[1];
            d.Read(0, b);
            Assert.Equal(9, b[0]); // clean close flushed
        }
        new ChunkIndexFile(8 * CS).Save(t["boot.idx"]); // a different index under the same name
        Assert.Equal(ShuruErrorKind.StateInvalid, Assert.Throws<ShuruStoreException>(() => CowDisk.Open(Opts(t, 0, t["boot.idx"]))).Kind);
    }

    [Fact]
    public void JournalIsCompactedWhenItGrows()
    {
        using var t = new TempDir();
        var d = CowDisk.Open(Opts(t, 2 * CS));
        d.JournalCompactRecords = 50;
        for (int i = 0; i < 500; i++)
        {
            d.Write((i % 2) * CS, BitConverter.GetBytes(i), WriteFlags.Fua);
        }
        long len = new FileInfo(t["state"]).Length;
        Assert.True(len < 60 * 45 + 200, $"journal is {len} bytes");
        Crash(d);
        using var r = CowDisk.Open(Opts(t, 2 * CS));
        var buf = new byte[4];
        r.Read(0, buf); Assert.Equal(498, BitConverter.ToInt32(buf));
        r.Read(CS, buf); Assert.Equal(499, BitConverter.ToInt32(buf));
    }

    [Fact]
    public void GrownSizeIsResumed()
    {
        using var t = new TempDir();
        var d = CowDisk.Open(Opts(t, 4 * CS));
        d.Write(3 * CS, new byte[] { 5 }, WriteFlags.Fua);
        Crash(d);
        using var r = CowDisk.Open(new() { CasPath = t.Cas, StatePath = t["state"], DiskSize = CS });
        Assert.Equal(4 * CS, r.Size);
    }
}

public class StateLockTests
{
    [Fact]
    public void SecondWriterOnOneStateFileIsRefused()
    {
        using var t = new TempDir();
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 65536, StatePath = t["state"] });
        var e = Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 65536, StatePath = t["state"] }));
        Assert.Equal(ShuruErrorKind.StateInUse, e.Kind);
        d.Dispose();
        using var again = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 65536, StatePath = t["state"] });
    }
}

public class StateDropTests
{
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference WriteFlushAndDrop(TempDir t, byte[] data)
    {
        var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 4 * 65536, StatePath = t["state"] });
        d.Write(1234, data, ShuruStore.Core.BlockDevices.WriteFlags.None);
        d.Flush();
        return new WeakReference(d);
        // dropped here without Dispose: nothing else is flushed
    }

    [Fact]
    public void DiskDroppedWithoutDisposeResumes()
    {
        using var t = new TempDir();
        var data = TempDir.Pattern(100_000, 9);
        var w = WriteFlushAndDrop(t, data);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        Assert.False(w.IsAlive, "disk still reachable");
        using var r = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 4 * 65536, StatePath = t["state"] });
        var back = new byte[data.Length];
        r.Read(1234, back);
        Assert.Equal(data, back);
    }
}

public class StateFormatTests
{
    [Fact]
    public void Crc32CMatchesTheStandardCheckValue()
    {
        Assert.Equal(0xE3069283u, StateJournal.Crc32C("123456789"u8));
        Assert.Equal(0u, StateJournal.Crc32C([]));
    }

    [Fact]
    public void StateFileLayout()
    {
        using var t = new TempDir();
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 2 * 65536, StatePath = t["state"] }))
            d.WriteZeroes(0, 65536, ShuruStore.Core.BlockDevices.WriteFlags.Fua); // nothing below: a ZERO record
        var bytes = File.ReadAllBytes(t["state"]);
        Assert.Equal("SHRUSTJ1"u8.ToArray(), bytes[..8]);
        Assert.Equal(1u, BitConverter.ToUInt32(bytes, 8));
        Assert.Equal(2L * 65536, BitConverter.ToInt64(bytes, 12));
        int header = 8 + 4 + 8 + 4 + 4 + 32 + 4; // empty base and boot paths
        Assert.Equal(StateJournal.Crc32C(bytes.AsSpan(0, header - 4)), BitConverter.ToUInt32(bytes, header - 4));
        Assert.Equal(0, (bytes.Length - header) % StateJournal.RecordSize);
    }
}

public class HostileStateTests
{
    [Fact]
    public void HostileStateHeaderIsStateInvalid()
    {
        using var t = new TempDir();
        var b = new List<byte>();
        b.AddRange("SHRUSTJ1"u8.ToArray());
        b.AddRange(BitConverter.GetBytes(1u));
        b.AddRange(BitConverter.GetBytes(65536L));
        b.AddRange(BitConverter.GetBytes(0xFFFFFFF0u)); // base path length: absurd
        File.WriteAllBytes(t["state"], b.ToArray());
        var e = Assert.Throws<ShuruStoreException>(() => CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 65536, StatePath = t["state"] }));
        Assert.Equal(ShuruErrorKind.StateInvalid, e.Kind);
        Assert.Contains(t["state"], e.Message);
    }

    [Fact]
    public void ChainDepthIsBounded()
    {
        using var t = new TempDir();
        new ChunkIndexFile(65536).Save(t["i0.idx"]);
        for (int i = 1; i <= 5; i++) new ChunkIndexFile(65536, t[$"i{i - 1}.idx"], null).Save(t[$"i{i}.idx"]);
        Assert.Equal(6, IndexChain.Load(t["i5.idx"], maxDepth: 5).AllPaths.Count());
        Assert.Equal(ShuruErrorKind.IndexInvalid, Assert.Throws<ShuruStoreException>(() => IndexChain.Load(t["i5.idx"], maxDepth: 4)).Kind);
    }
}
