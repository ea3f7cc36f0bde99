using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;
using Xunit;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>Lazy ingestion in the background: nothing dropped, done after the reads.</summary>
public class IngestionTests
{
    private const int CS = ChunkHasher.ChunkSize;

    [Fact]
    public void OneFullReadIngestsEveryNonZeroPieceOfALargeBase()
    {
        // More pieces than the old bounded queue of copies held (1024): it skipped the rest, so
        // one full read left part of the base uningested.
        using var t = new TempDir();
        const int Chunks = 1100;
        var baseBytes = TempDir.Pattern(Chunks * CS, 7);
        for (int c = 0; c < Chunks; c += 10) baseBytes.AsSpan(c * CS, CS).Clear(); // zero pieces are never stored
        File.WriteAllBytes(t["base.img"], baseBytes);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, StatePath = t["state"] });
        var buf = new byte[1 << 20];
        for (long off = 0; off < d.Size; off += buf.Length)
        {
            int n = (int)Math.Min(buf.Length, d.Size - off);
            d.Read(off, buf.AsSpan(0, n));
            Assert.True(baseBytes.AsSpan((int)off, n).SequenceEqual(buf.AsSpan(0, n)));
        }
        // Not waited for: it runs by itself once the reads stop.
        var until = DateTime.UtcNow.AddSeconds(60);
        while (d.Statistics.ChunksIngested < Chunks - Chunks / 10 && DateTime.UtcNow < until) Thread.Sleep(20);
        Assert.Equal(Chunks - Chunks / 10, d.Statistics.ChunksIngested);
        var back = new byte[3 * CS];
        d.Read(5L * CS, back); // now from the chunk store
        Assert.Equal(baseBytes.AsSpan(5 * CS, 3 * CS).ToArray(), back);
    }

    [Fact]
    public void WritesQueuedBeforeIngestionRunsAreNeverOverwrittenByTheBase()
    {
        using var t = new TempDir();
        var baseBytes = TempDir.Pattern(64 * CS, 8);
        File.WriteAllBytes(t["base.img"], baseBytes);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas });
        var all = new byte[64 * CS];
        d.Read(0, all); // queues all 64 pieces; the reads keep ingestion waiting a moment
        var mine = TempDir.Pattern(64 * CS, 9);
        for (int c = 0; c < 64; c += 2) SpillFileTests.WriteInHalves(d, c, mine);
        d.WaitForIngestion();
        d.Read(0, all);
        for (int c = 0; c < 64; c++)
            Assert.True((c % 2 == 0 ? mine : baseBytes).AsSpan(c * CS, CS).SequenceEqual(all.AsSpan(c * CS, CS)), $"chunk {c}");
        Assert.InRange(d.Statistics.ChunksIngested, 32, 64); // an even chunk may be ingested before its write; the write still wins
    }
}
