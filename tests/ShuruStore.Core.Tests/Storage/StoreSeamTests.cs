using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>Tests that use the <see cref="IChunkStore"/> seam to inject delays and failures.</summary>
public class StoreSeamTests
{
    private const int CS = 65536;

    /// <summary>Wraps a store; a hook runs before each write and may block or throw.</summary>
    private sealed class HookStore(IChunkStore inner) : IChunkStore
    {
        public Action<ChunkHash>? BeforeWrite;
        public int Writes;
        public bool Contains(ChunkHash hash) => inner.Contains(hash);
        public bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength) => inner.TryRead(hash, destination, out storedLength);
        public bool Write(ChunkHash hash, ReadOnlySpan<byte> data)
        {
            BeforeWrite?.Invoke(hash);
            Interlocked.Increment(ref Writes);
            return inner.Write(hash, data);
        }
        public void Sync() => inner.Sync();
        public IEnumerable<ChunkHash> Enumerate() => inner.Enumerate();
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task LazyIngestionNeverOverwritesANewerWrite()
    {
        using var t = new TempDir();
        var b = TempDir.Pattern(2 * CS, 1);
        File.WriteAllBytes(t["base.img"], b);
        var baseHash = ChunkHasher.Hash(b.AsSpan(0, CS));
        using var store = new HookStore(new FileChunkStore(t.Cas));
        using var inIngest = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        store.BeforeWrite = h => { if (h == baseHash) { inIngest.Set(); release.Wait(); } };
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, ChunkStore = store });

        var reader = Task.Run(() => { var buf = new byte[CS]; d.Read(0, buf); return buf; });
        Assert.True(inIngest.Wait(TimeSpan.FromSeconds(30)));
        var fresh = TempDir.Pattern(CS, 2);
        d.Write(0, fresh, WriteFlags.None);   // newer than the ingestion in progress
        d.Flush();                            // stored and recorded before the ingestion finishes
        release.Set();
        Assert.Equal(b[..CS], await reader); // the read that started first saw the base
        var back = new byte[CS];
        d.Read(0, back);
        Assert.Equal(fresh, back);
        d.SaveCheckpoint(t["cp.idx"]);
        Assert.Equal(ChunkHasher.Hash(fresh), ChunkIndexFile.Load(t["cp.idx"]).Entries[0]);
    }

    [Fact]
    public void FailedChunkWriteDuringFlushKeepsEveryUnsavedChunk()
    {
        using var t = new TempDir();
        using var store = new HookStore(new FileChunkStore(t.Cas));
        using var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 8 * CS, ChunkStore = store });
        var data = TempDir.Pattern(8 * CS, 3);
        d.Write(0, data, WriteFlags.None);
        int failures = 3;
        store.BeforeWrite = _ => { if (Interlocked.Decrement(ref failures) >= 0) throw new IOException("No space left on device"); };
        var e = Assert.Throws<BlockDeviceException>(() => d.Flush());
        Assert.Equal(BlockDeviceError.NoSpace, e.Error);
        Assert.Contains("chunk", e.Message);
        Assert.Equal(3, d.Statistics.DirtyChunks); // the failed ones are kept, the others stored
        var back = new byte[8 * CS];
        d.Read(0, back);
        Assert.Equal(data, back);
        d.Flush(); // the store recovered
        Assert.Equal(0, d.Statistics.DirtyChunks);
        d.Read(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public void WholeChunkWriteDoesNotReadTheOldChunk()
    {
        using var t = new TempDir();
        var b = TempDir.Pattern(4 * CS, 4);
        File.WriteAllBytes(t["base.img"], b);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas });
        // Make the base unreadable underneath the disk: any read of it would now fail.
        File.WriteAllBytes(t["base.img"], []);
        d.Write(CS, TempDir.Pattern(2 * CS, 5), WriteFlags.None);
        Assert.Throws<BlockDeviceException>(() => d.Write(3 * CS + 1, new byte[] { 1 }, WriteFlags.None)); // partial: needs the old data
        var back = new byte[2 * CS];
        d.Read(CS, back);
        Assert.Equal(TempDir.Pattern(2 * CS, 5), back);
    }
}
