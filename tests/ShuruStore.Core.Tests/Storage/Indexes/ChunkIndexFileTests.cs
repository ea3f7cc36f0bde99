using System.Buffers.Binary;
using System.Text;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class ChunkIndexFileTests
{
    [Fact]
    public void OneMiBAllZeroIndexIsExactly152GoldenBytes()
    {
        var idx = new ChunkIndexFile(1 << 20);
        var bytes = idx.ToBytes();
        Assert.Equal(152, bytes.Length);
        var expected = new List<byte>();
        expected.AddRange(BitConverter.GetBytes((ulong)(1 << 20)));
        expected.AddRange(BitConverter.GetBytes((ulong)16));
        expected.AddRange(new byte[8]); // two empty paths
        for (int i = 0; i < 16; i++) { expected.AddRange(new byte[] { 4, 0, 0, 0 }); expected.AddRange("ZERO"u8.ToArray()); }
        Assert.Equal(expected.ToArray(), bytes);
    }

    [Fact]
    public void GoldenBytesWithPathsAndHash()
    {
        var h = ChunkHasher.Hash("abc"u8);
        var idx = new ChunkIndexFile(65537, "/p.idx", "/base.img", [h, null]);
        var expected = new List<byte>();
        expected.AddRange(BitConverter.GetBytes((ulong)65537));
        expected.AddRange(BitConverter.GetBytes((ulong)2));
        expected.AddRange(BitConverter.GetBytes(6u)); expected.AddRange("/p.idx"u8.ToArray());
        expected.AddRange(BitConverter.GetBytes(9u)); expected.AddRange("/base.img"u8.ToArray());
        expected.AddRange(BitConverter.GetBytes(64u)); expected.AddRange(Encoding.ASCII.GetBytes(h.ToString()));
        expected.AddRange(BitConverter.GetBytes(4u)); expected.AddRange("ZERO"u8.ToArray());
        Assert.Equal(expected.ToArray(), idx.ToBytes());
    }

    [Fact]
    public void SaveLoadRoundTripAndTrailingBytesIgnored()
    {
        using var t = new TempDir();
        var h = ChunkHasher.Hash("abc"u8);
        var idx = new ChunkIndexFile(3 * 65536, "/p.idx", "/base.img", [null, h, ChunkHash.ZeroChunk]);
        idx.Save(t["a.idx"]);
        Assert.Empty(Directory.GetFiles(t.Path, ".*")); // no temp file left
        File.AppendAllText(t["a.idx"], "trailing garbage");
        var back = ChunkIndexFile.Load(t["a.idx"]);
        Assert.Equal(3 * 65536, back.DiskSize);
        Assert.Equal(3, back.ChunkCount);
        Assert.Equal("/p.idx", back.ParentPath);
        Assert.Equal("/base.img", back.FallbackPath);
        Assert.Equal(idx.Entries, back.Entries);
    }

    private static byte[] Header(ulong diskSize, ulong numChunks, uint parentLen = 0, uint fallbackLen = 0)
    {
        var b = new byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(b, diskSize);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), numChunks);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), parentLen);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(20), fallbackLen);
        return b;
    }

    private static byte[] Entry(string text) => [.. BitConverter.GetBytes((uint)Encoding.UTF8.GetByteCount(text)), .. Encoding.UTF8.GetBytes(text)];

    public static TheoryData<string, byte[]> Hostile()
    {
        var good = ChunkHasher.Hash("x"u8).ToString();
        var d = new TheoryData<string, byte[]>
        {
            { "empty", [] },
            { "truncated header", Header(65536, 1)[..12] },
            { "truncated entries", [.. Header(131072, 2), .. Entry("ZERO")] },
            { "num_chunks mismatch", [.. Header(65536, 2), .. Entry("ZERO"), .. Entry("ZERO")] },
            { "huge num_chunks", [.. Header(1UL << 49, 1UL << 33), .. Entry("ZERO")] },
            { "huge disk_size", [.. Header(ulong.MaxValue, ulong.MaxValue / 65536 + 1)] },
            { "huge parent_len", [.. Header(65536, 1, parentLen: 0xFFFFFFF0)] },
            { "parent_len past end", [.. Header(65536, 1, parentLen: 100), .. Entry("ZERO")] },
            { "huge hash_len", [.. Header(65536, 1), .. BitConverter.GetBytes(0xFFFFFFFFu), .. new byte[8]] },
            { "uppercase hash", [.. Header(65536, 1), .. Entry(good.ToUpperInvariant())] },
            { "path escape in hash", [.. Header(65536, 1), .. Entry("../../../../../../etc/passwd".PadRight(64, 'a'))] },
            { "bad sentinel", [.. Header(65536, 1), .. Entry("ZER0")] },
            { "63-char hash", [.. Header(65536, 1), .. Entry(good[..63])] },
        };
        return d;
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void HostileIndexesAreRejectedAsIndexInvalid(string what, byte[] content)
    {
        using var t = new TempDir();
        File.WriteAllBytes(t["h.idx"], content);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ShuruStoreException>(() => ChunkIndexFile.Load(t["h.idx"]));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(e.Kind == ShuruErrorKind.IndexInvalid, what + ": " + e.Kind);
        Assert.Contains(t["h.idx"], e.Message);
        Assert.Contains("offset", e.Message);
        Assert.True(allocated < 4 << 20, $"{what}: allocated {allocated} bytes before rejecting");
    }

    [Fact]
    public void MissingIndexIsIndexNotFound()
    {
        using var t = new TempDir();
        Assert.Equal(ShuruErrorKind.IndexNotFound, Assert.Throws<ShuruStoreException>(() => ChunkIndexFile.Load(t["nope.idx"])).Kind);
    }

    [Fact]
    public void ChainResolvesNearestFirstAndDetectsCycles()
    {
        using var t = new TempDir();
        new ChunkIndexFile(65536, null, "/base").Save(t["a.idx"]);
        new ChunkIndexFile(65536, t["a.idx"], null).Save(t["b.idx"]);
        new ChunkIndexFile(65536, t["b.idx"], null).Save(t["c.idx"]);
        var chain = IndexChain.Load(t["c.idx"]);
        Assert.Equal([t["c.idx"], t["b.idx"], t["a.idx"]], chain.AllPaths.ToArray());
        Assert.Equal("/base", chain.BaseImagePath);

        new ChunkIndexFile(65536, t["self.idx"], null).Save(t["self.idx"]);
        Assert.Equal(ShuruErrorKind.IndexChainCycle, Assert.Throws<ShuruStoreException>(() => IndexChain.Load(t["self.idx"])).Kind);

        new ChunkIndexFile(65536, t["y.idx"], null).Save(t["x.idx"]);
        new ChunkIndexFile(65536, t["x.idx"], null).Save(t["y.idx"]);
        Assert.Equal(ShuruErrorKind.IndexChainCycle, Assert.Throws<ShuruStoreException>(() => IndexChain.Load(t["x.idx"])).Kind);
    }

    [Fact]
    public void SaveCreatesMissingFolders()
    {
        using var t = new TempDir();
        string target = Path.Combine(t["new"], "deeper", "still", "a.idx");
        new ChunkIndexFile(65536).Save(target);
        Assert.Equal(152 - 15 * 8, new FileInfo(target).Length);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(target)!, ".*"));

        // A file where a folder should be is an I/O error naming the index, never a crash.
        File.WriteAllText(t["plain"], "x");
        var e = Assert.Throws<ShuruStoreException>(() => new ChunkIndexFile(65536).Save(Path.Combine(t["plain"], "b.idx")));
        Assert.Equal(ShuruErrorKind.IOError, e.Kind);
        Assert.Contains("b.idx", e.Message);
    }
}
