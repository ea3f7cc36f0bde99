using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class FileChunkStoreTests
{
    [Fact]
    public void WriteIsOnceAndReadVerifies()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var data = TempDir.Pattern(65536, 1);
        var h = ChunkHasher.Hash(data);
        Assert.True(store.Write(h, data));
        Assert.False(store.Write(h, data)); // idempotent, never rewritten
        Assert.True(store.Contains(h));
        var buf = new byte[65536];
        Assert.Equal(65536, store.Read(h, buf));
        Assert.Equal(data, buf);
        store.Sync();
        Assert.Equal([h], store.Enumerate().ToArray());
    }

    [Fact]
    public void ShortChunkIsZeroFilled()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var data = TempDir.Pattern(100, 2);
        var h = ChunkHasher.Hash(data);
        store.Write(h, data);
        var buf = Enumerable.Repeat((byte)0xEE, 65536).ToArray();
        Assert.Equal(100, store.Read(h, buf));
        Assert.Equal(data, buf[..100]);
        Assert.True(buf.AsSpan(100).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void LeftoverTempFileIsIgnored()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var data = TempDir.Pattern(65536, 3);
        var h = ChunkHasher.Hash(data);
        // A crash between write and rename leaves a truncated temp file.
        File.WriteAllBytes(Path.Combine(store.ChunksPath, $".tmp-{h}-deadbeef"), data[..10]);
        Assert.False(store.Contains(h));
        Assert.Empty(store.Enumerate());
        Assert.True(store.Write(h, data));
        Assert.Equal([h], store.Enumerate().ToArray());
        Assert.Equal(data, File.ReadAllBytes(store.PathOf(h)));
    }

    [Fact]
    public void MissingChunkIsAnErrorNeverZeros()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var h = ChunkHasher.Hash("x"u8);
        Assert.False(store.TryRead(h, new byte[65536], out _));
        var e = Assert.Throws<ShuruStoreException>(() => store.Read(h, new byte[65536]));
        Assert.Equal(ShuruErrorKind.ChunkMissing, e.Kind);
        Assert.Contains(h.ToString(), e.Message);
    }

    [Fact]
    public void CorruptChunkIsDetected()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var data = TempDir.Pattern(65536, 4);
        var h = ChunkHasher.Hash(data);
        store.Write(h, data);
        File.WriteAllBytes(store.PathOf(h), data[..1000]); // truncated under a valid name
        var e = Assert.Throws<ShuruStoreException>(() => store.Read(h, new byte[65536]));
        Assert.Equal(ShuruErrorKind.ChunkCorrupt, e.Kind);
        Assert.Contains(h.ToString(), e.Message);
        data[5] ^= 1;
        File.WriteAllBytes(store.PathOf(h), data);
        Assert.Equal(ShuruErrorKind.ChunkCorrupt, Assert.Throws<ShuruStoreException>(() => store.Read(h, new byte[65536])).Kind);
    }

    [Fact]
    public void ScanCountsChunksAndTempFiles()
    {
        using var t = new TempDir();
        using (var store = new FileChunkStore(t.Cas))
        {
            store.Write(ChunkHash.ZeroChunk, new byte[65536]);
            var d = TempDir.Pattern(500, 5);
            store.Write(ChunkHasher.Hash(d), d);
            File.WriteAllBytes(Path.Combine(store.ChunksPath, ".tmp-x-1"), [1]);
        }
        var info = ChunkStoreInfo.Scan(t.Cas);
        Assert.Equal(2, info.ChunkCount);
        Assert.Equal(65536 + 500, info.TotalBytes);
        Assert.True(info.ZeroChunkPresent);
        Assert.Equal(1, info.TempFileCount);
    }
}
