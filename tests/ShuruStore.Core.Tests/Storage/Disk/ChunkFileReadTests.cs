using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;
using ShuruStore.Core.Storage;
using ShuruStore.Core.Tests.Storage;

using ShuruStore.Core.Tests.Nbd;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>
/// Warm reads of a chunk-store disk leave with sendfile from the verified chunk files
/// (<see cref="CowDisk.TryGetFileRanges"/>). They must return the disk's current bytes whatever
/// mix of stored, dirty and base chunks a request covers, and a chunk file altered under the
/// server must still be EIO, never its new bytes.
/// </summary>
public class ChunkFileReadTests
{
    private const int CS = 64 * 1024;
    private const int Request = 256 * 1024;

    /// <summary>A 2 MiB disk checkpointed into the store (every chunk stored), reopened from its
    /// index and served; the whole disk read once so every chunk file is verified and open.</summary>
    private static (NbdTestServer Server, byte[] Bytes, string Index) WarmServer(TempDir t)
    {
        var bytes = TempDir.Pattern(2 << 20, 11);
        File.WriteAllBytes(t["base.img"], bytes);
        using (var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas }))
        {
            d.Write(0, bytes, WriteFlags.None); // every chunk dirty, then stored by the checkpoint
            d.SaveCheckpoint(t["cp.idx"]);
        }
        var disk = CowDisk.Open(new() { CasPath = t.Cas, IndexPath = t["cp.idx"] });
        var server = new NbdTestServer(disk);
        using var c = server.Client().Connect();
        for (int off = 0; off < bytes.Length; off += Request)
            Assert.True(bytes.AsSpan(off, Request).SequenceEqual(ReadData(c, off, Request)));
        return (server, bytes, t["cp.idx"]);
    }

    private static byte[] ReadData(NbdTestClient c, long offset, int length, ulong cookie = 1)
    {
        c.SendRequest(NbdProtocol.CmdRead, (ulong)offset, (uint)length, cookie);
        return NbdTransmissionTests.ReadData(c, structured: true, offset, length);
    }

    [Fact]
    public void Warm_reads_match_the_disk_across_stored_and_dirty_chunks()
    {
        using var t = new TempDir();
        var (server, bytes, _) = WarmServer(t);
        using var s = server;
        using var c = s.Client().Connect();
        // Warm: from the chunk files. Unaligned too, and a range ending mid-chunk.
        foreach (var (off, len) in new[] { (0, Request), (CS + 100, Request), (3 * CS - 1, 100_000) })
            Assert.True(bytes.AsSpan(off, len).SequenceEqual(ReadData(c, off, len)), $"read at {off}");

        // A dirty chunk inside a request: that request is served from memory, and is current.
        var patch = TempDir.Pattern(4096, 12);
        c.SendRequest(NbdProtocol.CmdWrite, 5 * CS + 300, (uint)patch.Length, 2, payload: patch);
        Assert.Equal(0u, c.ReadReply().Error);
        patch.CopyTo(bytes, 5 * CS + 300);
        Assert.True(bytes.AsSpan(4 * CS, Request).SequenceEqual(ReadData(c, 4 * CS, Request, 3)));
    }

    [Fact]
    public void A_chunk_file_altered_after_verification_is_EIO_and_the_connection_goes_on()
    {
        using var t = new TempDir();
        var (server, bytes, index) = WarmServer(t);
        using var s = server;
        var hash = ChunkIndexFile.Load(index).Entries[9]!.Value;
        string file = Path.Combine(t.Cas, "chunks", hash.ToString());
        File.WriteAllBytes(file, TempDir.Pattern(CS, 99)); // same length, other bytes

        using var c = s.Client().Connect();
        c.SendRequest(NbdProtocol.CmdRead, 8 * CS, Request, 7);
        var replies = c.ReadChunks();
        Assert.Contains(replies, r => r.Error == NbdProtocol.EIO);
        // Still in step, and the chunks around it still read.
        Assert.True(bytes.AsSpan(12 * CS, Request).SequenceEqual(ReadData(c, 12 * CS, Request, 8)));
    }

    [Fact]
    public void Cold_reads_from_the_base_match_it_and_are_still_ingested()
    {
        using var t = new TempDir();
        var bytes = TempDir.Pattern(2 << 20, 21);
        File.WriteAllBytes(t["base.img"], bytes);
        var disk = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas });
        using var s = new NbdTestServer(disk);
        using var c = s.Client().Connect();
        for (int off = 0; off < bytes.Length; off += Request)
            Assert.True(bytes.AsSpan(off, Request).SequenceEqual(ReadData(c, off, Request)), $"read at {off}");
        disk.WaitForIngestion();
        Assert.Equal(bytes.Length / CS, t.ChunkFileCount);
    }

    [Fact]
    public void A_base_that_shrank_under_the_server_is_never_sent_as_zeros()
    {
        using var t = new TempDir();
        var bytes = TempDir.Pattern(2 << 20, 22);
        File.WriteAllBytes(t["base.img"], bytes);
        var disk = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas, ReadOnly = true });
        using var s = new NbdTestServer(disk);
        using (var f = new FileStream(t["base.img"], FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
            f.SetLength(1 << 20);
        using var c = s.Client().Connect();
        // Checked before sending: answered by Read, EIO, and the connection goes on.
        c.SendRequest(NbdProtocol.CmdRead, (ulong)(1 << 20) + 4096, Request, 3);
        Assert.Contains(c.ReadChunks(), r => r.Error == NbdProtocol.EIO);
        Assert.True(bytes.AsSpan(0, Request).SequenceEqual(ReadData(c, 0, Request, 4)));
    }
}
