using System.Diagnostics;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

public class ChunkHashTests
{
    [Fact]
    public void ZeroChunkHashIsBlake3OfSixtyFourKiBZeros()
    {
        Assert.Equal(ChunkHash.ZeroChunk, ChunkHasher.Hash(new byte[65536]));
        Assert.Equal("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d56", ChunkHash.ZeroChunk.ToString());
        Assert.Equal("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", ChunkHasher.Hash([]).ToString());
    }

    [Fact]
    public void ParseFormatRoundTrip()
    {
        var h = ChunkHasher.Hash("hello"u8);
        Assert.True(ChunkHash.TryParse(h.ToString(), out var back));
        Assert.Equal(h, back);
        var utf8 = new byte[64];
        h.FormatUtf8(utf8);
        Assert.Equal(h.ToString(), System.Text.Encoding.ASCII.GetString(utf8));
        Assert.True(ChunkHash.TryParseUtf8(utf8, out back));
        Assert.Equal(h, back);
        Assert.Equal(h, ChunkHash.FromBytes(h.ToBytes()));
    }

    [Theory]
    [InlineData("3BDEAF8F8E98780B318106AAFDC3CA257F73DF123D97B69112B26044C91A7D56")]
    [InlineData("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d5")]
    [InlineData("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d566")]
    [InlineData("../../../../etc/passwd000000000000000000000000000000000000000000")]
    [InlineData("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d5g")]
    [InlineData("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d5F")]
    [InlineData("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d5 ")]
    [InlineData("")]
    public void ParseRejectsAnythingButSixtyFourLowercaseHex(string text)
    {
        Assert.False(ChunkHash.TryParse(text, out _));
        Assert.Throws<FormatException>(() => ChunkHash.Parse(text));
        Assert.False(ChunkHash.TryParseUtf8(System.Text.Encoding.UTF8.GetBytes(text), out _)); // the index loader's path
    }

    [Fact]
    public void ChunkNamesEqualB3sum()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        foreach (int len in new[] { 65536, 1000, 1 })
        {
            var data = TempDir.Pattern(len, len);
            var h = ChunkHasher.Hash(data);
            store.Write(h, data);
            var psi = new ProcessStartInfo("b3sum", ["--no-names", store.PathOf(h)]) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            Assert.Equal(h.ToString(), output);
        }
    }
}
