using System.Runtime.InteropServices;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;
using ShuruStore.Core.Tests.Storage;

using ShuruStore.Core.Tests.Nbd;

namespace ShuruStore.Core.Tests.BlockDevices;

/// <summary>
/// Large aligned writes to a flat image go to the disk with O_DIRECT (FlatFileDevice.WriteDirect),
/// received into aligned buffers (NbdPayloadBuffers). The test directory is under /tmp, on ext4
/// here, which accepts O_DIRECT.
/// </summary>
public unsafe class DirectWriteTests
{
    private const int MiB = 1024 * 1024;
    private const int Len = 256 * 1024;

    [DllImport("libc")]
    private static extern int posix_fadvise(int fd, long offset, long length, int advice);

    private static string Image(TempDir t, long size)
    {
        string p = t["disk.img"];
        using var fs = File.Create(p);
        fs.SetLength(size);
        return p;
    }

    [Fact]
    public void Large_aligned_writes_go_to_the_disk_directly_and_read_back_coherently()
    {
        using var t = new TempDir();
        string path = Image(t, 8 * MiB);
        byte* mem = (byte*)NativeMemory.AlignedAlloc(Len + 4096, 4096);
        try
        {
            var aligned = new Span<byte>(mem, Len);
            new Random(9).NextBytes(aligned);
            var expected = aligned.ToArray();
            using (var d = new FlatFileDevice(path, directWrites: true))
            {
                var old = new byte[Len];
                d.Read(MiB, old);                                   // the range's pages are cached before the write
                d.Write(MiB, aligned, WriteFlags.None);
                Assert.Equal(1, d.DirectWrites);
                var back = new byte[Len];
                d.Read(MiB, back);
                Assert.Equal(expected, back);                       // no stale page-cache copy

                d.Write(MiB + 4096, new byte[] { 1, 2, 3 }, WriteFlags.None); // a small write on top: page cache
                expected[4096] = 1; expected[4097] = 2; expected[4098] = 3;
                d.Read(MiB, back);
                Assert.Equal(expected, back);

                var unaligned = new Span<byte>(mem + 512, Len - 4096); // buffer not 4 KiB-aligned
                d.Write(2 * MiB, unaligned, WriteFlags.None);
                d.Write(3 * MiB + 512, aligned, WriteFlags.None);     // offset not aligned
                d.Write(4 * MiB, aligned[..(Len - 512)], WriteFlags.None); // length not aligned
                Assert.Equal(1, d.DirectWrites);
                var tail = new byte[Len - 4096];
                d.Read(2 * MiB, tail);
                Assert.True(unaligned.SequenceEqual(tail));
                d.Flush();
            }

            // What FLUSH made durable is in the file, read with the page cache dropped.
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
                Assert.Equal(0, posix_fadvise((int)fs.SafeFileHandle.DangerousGetHandle(), 0, 0, 4 /* DONTNEED */));
            var file = File.ReadAllBytes(path);
            Assert.True(expected.AsSpan().SequenceEqual(file.AsSpan(MiB, Len)));

            using var off = new FlatFileDevice(path, directWrites: false);
            off.Write(5 * MiB, aligned, WriteFlags.None);
            Assert.Equal(0, off.DirectWrites);
        }
        finally { NativeMemory.AlignedFree(mem); }
    }

    [Fact]
    public void Large_payloads_are_received_at_aligned_addresses_and_small_ones_from_the_shared_pool()
    {
        foreach (int length in new[] { 128 * 1024, 256 * 1024, 256 * 1024 + 1, 2 * MiB, 4 * MiB })
        {
            var a = NbdPayloadBuffers.Rent(length, 4096, out int start);
            fixed (byte* p = a)
                Assert.Equal(0u, (nuint)(p + start) % 4096);
            Assert.True(a.Length - start >= length, $"{length}: {a.Length - start} bytes from the start");
            NbdPayloadBuffers.Return(a);
        }
        var small = NbdPayloadBuffers.Rent(4096, 4096, out int s0);
        Assert.Equal(0, s0);
        NbdPayloadBuffers.Return(small);
    }

    [Fact]
    public void A_streamed_write_from_a_client_reaches_the_disk_directly()
    {
        using var t = new TempDir();
        string path = Image(t, 8 * MiB);
        var dev = new FlatFileDevice(path, directWrites: true);
        using var s = new NbdTestServer(dev);
        using var c = s.Client().Connect(structured: false);
        var data = TempDir.Pattern(Len, 11);
        for (ulong i = 0; i < 4; i++) c.SendRequest(NbdProtocol.CmdWrite, (ulong)MiB + i * Len, Len, 10 + i, payload: data);
        for (int i = 0; i < 4; i++) Assert.Equal(0u, c.ReadReply().Error);
        Assert.Equal(4, dev.DirectWrites);
        c.SendRequest(NbdProtocol.CmdRead, (ulong)MiB + Len, Len, 20);
        var r = c.ReadReply(Len);
        Assert.Equal(data, r.Payload);
    }
}
