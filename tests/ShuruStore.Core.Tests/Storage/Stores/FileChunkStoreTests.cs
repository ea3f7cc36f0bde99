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

/// <summary>shuru 0.1.2 wrote chunks in place, so a crash could leave a truncated file under a
/// valid name: such a chunk must not stay unreadable once the guest writes the same content
/// again and the FLUSH succeeds.</summary>
public class TornChunkRepairTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_torn_chunk_under_its_name_is_replaced_by_the_next_write_of_that_content(bool batch)
    {
        using var dir = new TempDir();
        using var store = new FileChunkStore(dir.Cas);
        var data = TempDir.Pattern(65536, 42);
        var other = TempDir.Pattern(65536, 43);
        var hash = ChunkHasher.Hash(data);
        Directory.CreateDirectory(store.ChunksPath);
        File.WriteAllBytes(store.PathOf(hash), data.AsSpan(0, 100).ToArray()); // what a crash left
        var buf = new byte[65536];
        Assert.Throws<ShuruStoreException>(() => store.TryRead(hash, buf, out _));

        if (batch)
        {
            var stored = new bool[2];
            store.WriteMany([(hash, data), (ChunkHasher.Hash(other), other)], stored);
            Assert.All(stored, Assert.True);
        }
        else Assert.True(store.Write(hash, data));
        store.Sync();

        Assert.True(store.TryRead(hash, buf, out int len));
        Assert.Equal(65536, len);
        Assert.Equal(data, buf);
        Assert.Empty(Directory.GetFiles(store.ChunksPath, ".tmp-*"));
    }
}

/// <summary>Range reads skip re-hashing a chunk verified before, but only while its file is
/// unchanged: damage after the first verification is still caught.</summary>
public class VerifiedRangeReadTests
{
    private static (TempDir Dir, FileChunkStore Store, byte[] Data, ChunkHash Hash) Stored()
    {
        var dir = new TempDir();
        var store = new FileChunkStore(dir.Cas);
        var data = TempDir.Pattern(65536, 77);
        var hash = ChunkHasher.Hash(data);
        store.Write(hash, data);
        return (dir, store, data, hash);
    }

    [Fact]
    public void A_range_read_returns_the_range_before_and_after_verification()
    {
        var (dir, store, data, hash) = Stored();
        using (dir) using (store)
        {
            var buf = new byte[4096];
            for (int i = 0; i < 2; i++) // first read verifies, second takes the fast path
            {
                Assert.True(((IChunkStore)store).TryReadRange(hash, 8192, buf));
                Assert.Equal(data.AsSpan(8192, 4096).ToArray(), buf);
            }
        }
    }

    [Fact]
    public void A_chunk_altered_after_verification_is_corrupt_not_data()
    {
        var (dir, store, data, hash) = Stored();
        using (dir) using (store)
        {
            var buf = new byte[4096];
            Assert.True(((IChunkStore)store).TryReadRange(hash, 0, buf));
            string path = store.PathOf(hash);
            var before = File.GetLastWriteTimeUtc(path);
            var altered = (byte[])data.Clone();
            altered[100] ^= 0x40;
            File.WriteAllBytes(path, altered);
            File.SetLastWriteTimeUtc(path, before.AddSeconds(1)); // a later change, whatever the clock's granularity
            Assert.Throws<ShuruStoreException>(() => ((IChunkStore)store).TryReadRange(hash, 0, buf));
            Assert.Throws<ShuruStoreException>(() => store.TryRead(hash, new byte[65536], out _));
        }
    }

    [Fact]
    public void A_chunk_truncated_or_deleted_after_verification_is_caught()
    {
        var (dir, store, data, hash) = Stored();
        using (dir) using (store)
        {
            var buf = new byte[4096];
            Assert.True(((IChunkStore)store).TryReadRange(hash, 0, buf));
            string path = store.PathOf(hash);
            using (var f = File.OpenWrite(path)) f.SetLength(1000);
            Assert.Throws<ShuruStoreException>(() => ((IChunkStore)store).TryReadRange(hash, 0, buf));
            File.Delete(path);
            Assert.False(((IChunkStore)store).TryReadRange(hash, 0, buf));
        }
    }
}
