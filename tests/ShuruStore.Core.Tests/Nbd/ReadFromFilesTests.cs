using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>
/// READs of at least <see cref="NbdConnection.MinReadFromFiles"/> bytes from a device that can
/// describe its files (<see cref="IBlockDevice.TryGetFileRanges"/>) are sent with sendfile(2). The bytes a
/// client gets must be the same as through Read, in every reply form, and a file that changes
/// or fails under the send must never desynchronise the stream.
/// </summary>
public class ReadFromFilesTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("rff-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>An 8 MiB sparse image: random data, a 2 MiB hole at 3 MiB, random data.</summary>
    private (string Path, byte[] Bytes) SparseImage()
    {
        var bytes = new byte[8 * MiB];
        new Random(7).NextBytes(bytes);
        bytes.AsSpan(3 * MiB, 2 * MiB).Clear();
        string path = Path.Combine(_dir, "disk.img");
        using (var fs = new FileStream(path, FileMode.Create))
        {
            fs.SetLength(bytes.Length);
            fs.Write(bytes, 0, 3 * MiB);
            fs.Position = 5 * MiB;
            fs.Write(bytes, 5 * MiB, 3 * MiB);
        }
        return (path, bytes);
    }

    /// <summary>Reads [offset, +length) and rebuilds the bytes from whatever chunks came back.</summary>
    private static byte[] Read(NbdTestClient c, bool structured, long offset, int length, out int holeChunks, ulong cookie = 9)
    {
        c.SendRequest(NbdProtocol.CmdRead, (ulong)offset, (uint)length, cookie);
        holeChunks = 0;
        if (!structured)
        {
            var simple = c.ReadReply(length);
            Assert.Equal(0u, simple.Error);
            return simple.Payload;
        }
        var result = new byte[length];
        var seen = new bool[length];
        foreach (var chunk in c.ReadChunks())
        {
            Assert.Equal(cookie, chunk.Cookie);
            Assert.Equal(0u, chunk.Error);
            if (chunk.Type == NbdProtocol.ReplyTypeNone) continue;
            long at = (long)BinaryPrimitives.ReadUInt64BigEndian(chunk.Payload) - offset;
            if (chunk.Type == NbdProtocol.ReplyTypeOffsetData)
            {
                chunk.Payload.AsSpan(8).CopyTo(result.AsSpan((int)at));
                seen.AsSpan((int)at, chunk.Payload.Length - 8).Fill(true);
            }
            else
            {
                Assert.Equal(NbdProtocol.ReplyTypeOffsetHole, chunk.Type);
                int n = (int)BinaryPrimitives.ReadUInt32BigEndian(chunk.Payload.AsSpan(8));
                seen.AsSpan((int)at, n).Fill(true);
                holeChunks++;
            }
        }
        Assert.DoesNotContain(false, seen);
        return result;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Large_reads_of_a_flat_image_match_the_file(bool structured)
    {
        var (path, bytes) = SparseImage();
        using var t = new NbdTestServer(new FlatFileDevice(path));
        using var c = t.Client().Connect(structured: structured);
        (long Offset, int Length)[] reads =
        [
            (0, MiB), (3 * MiB - 100_000, 256 * 1024), (4 * MiB, MiB), (7 * MiB + 123, 500_000),
            (8 * MiB - 32 * 1024, 32 * 1024), (MiB + 1, 8 * MiB - MiB - 1),
        ];
        int holes = 0;
        ulong cookie = 1;
        foreach (var (offset, length) in reads)
        {
            var got = Read(c, structured, offset, length, out int h, cookie++);
            holes += h;
            Assert.True(bytes.AsSpan((int)offset, length).SequenceEqual(got), $"read at {offset} length {length}");
        }
        // The hole is still sent as a hole, not as zeros read from the file.
        if (structured) Assert.True(holes >= 2, $"expected hole chunks, got {holes}");
    }

    [Fact]
    public void A_file_that_shrank_reads_as_zeros_past_its_end_and_the_connection_goes_on()
    {
        var (path, bytes) = SparseImage();
        using var t = new NbdTestServer(new FlatFileDevice(path));
        using var c = t.Client().Connect(structured: false);
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
            fs.SetLength(MiB + 4096);

        var got = Read(c, structured: false, MiB, MiB, out _);
        Assert.True(bytes.AsSpan(MiB, 4096).SequenceEqual(got.AsSpan(0, 4096)));
        Assert.True(got.AsSpan(4096).IndexOfAnyExcept((byte)0) < 0, "bytes past the new end of the file must be zeros");
        // Still in step: the next request gets its own reply.
        var again = Read(c, structured: false, 0, 64 * 1024, out _, cookie: 10);
        Assert.True(bytes.AsSpan(0, 64 * 1024).SequenceEqual(again));
    }

    [Fact]
    public void A_file_handle_already_closed_falls_back_to_Read()
    {
        string spare = Path.Combine(_dir, "closed");
        File.WriteAllBytes(spare, new byte[MiB]);
        var closed = File.OpenHandle(spare);
        closed.Dispose();
        var inner = new MemoryDevice(4 * MiB);
        var data = new byte[256 * 1024];
        new Random(3).NextBytes(data);
        inner.Write(MiB, data, WriteFlags.None);
        using var t = new NbdTestServer(new FileRangeDevice(inner, closed));
        using var c = t.Client().Connect();

        Assert.True(data.AsSpan().SequenceEqual(Read(c, structured: true, MiB, data.Length, out _)));
    }

    [Theory]
    // A large READ of a device with files: on the reader thread, whatever else is in flight.
    [InlineData(NbdProtocol.CmdRead, 256 * 1024, 64, 28, true, true)]
    [InlineData(NbdProtocol.CmdRead, 32 * 1024, 8, 0, true, true)]
    [InlineData(NbdProtocol.CmdRead, 1024 * 1024, 2, 0, true, true)]
    // Larger than an inline request, or smaller than a read from files: the pool when busy.
    [InlineData(NbdProtocol.CmdRead, 2 * 1024 * 1024, 2, 0, true, false)]
    [InlineData(NbdProtocol.CmdRead, 4096, 32, 0, true, false)]
    // A device without files: inline only when alone.
    [InlineData(NbdProtocol.CmdRead, 256 * 1024, 2, 0, false, false)]
    [InlineData(NbdProtocol.CmdRead, 256 * 1024, 1, 28, false, false)]
    [InlineData(NbdProtocol.CmdRead, 256 * 1024, 1, 0, false, true)]
    [InlineData(NbdProtocol.CmdWrite, 4096, 1, 0, true, true)]
    [InlineData(NbdProtocol.CmdWrite, 256 * 1024, 2, 0, true, false)]
    [InlineData(NbdProtocol.CmdBlockStatus, 8 * 1024 * 1024, 1, 0, true, true)]
    [InlineData(NbdProtocol.CmdFlush, 0, 1, 0, true, false)]
    public void Which_requests_the_reader_thread_serves_itself(ushort type, uint length, int inFlight, int buffered, bool files, bool inline)
    {
        Assert.Equal(inline, NbdRequestScheduler.RunsInline(type, length, inFlight, buffered, files));
    }

    [Fact]
    public void A_large_read_from_files_that_stalls_does_not_hold_up_the_requests_behind_it()
    {
        // Large reads from files are served on the reader thread even with more requests in
        // flight; when one stalls, the rescuer reads and answers the requests behind it.
        var (path, bytes) = SparseImage();
        using var file = File.OpenHandle(path);
        var inner = new MemoryDevice(bytes.Length);
        inner.Write(0, bytes, WriteFlags.None);
        var dev = new FileRangeDevice(inner, file) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);
        c.Send([.. NbdTestClient.Request(NbdProtocol.CmdRead, (ulong)MiB, 64 * 1024, 1),
                .. NbdTestClient.Request(NbdProtocol.CmdRead, 0, 256 * 1024, 2)]); // stalls in the device
        Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));
        var first = c.ReadReply(64 * 1024);
        Assert.Equal((1ul, 0u), (first.Cookie, first.Error));
        Assert.True(bytes.AsSpan(MiB, 64 * 1024).SequenceEqual(first.Payload));
        c.SendRequest(NbdProtocol.CmdRead, 6 * MiB, 4096, 3);            // answered meanwhile
        var small = c.ReadReply(4096);
        Assert.Equal((3ul, 0u), (small.Cookie, small.Error));
        Assert.True(bytes.AsSpan(6 * MiB, 4096).SequenceEqual(small.Payload));
        for (ulong cookie = 4; cookie < 8; cookie++)                      // more large reads behind it
            c.SendRequest(NbdProtocol.CmdRead, (ulong)(5 * MiB) + (cookie - 4) * 65536, 65536, cookie);
        var late = Enumerable.Range(0, 4).Select(_ => c.ReadReply(65536)).ToList();
        Assert.Equal(new ulong[] { 4, 5, 6, 7 }, late.Select(r => r.Cookie).Order());
        foreach (var r in late)
            Assert.True(bytes.AsSpan(5 * MiB + (int)(r.Cookie - 4) * 65536, 65536).SequenceEqual(r.Payload));
        dev.Gate.Set();
        var stalled = c.ReadReply(256 * 1024);
        Assert.Equal((2ul, 0u), (stalled.Cookie, stalled.Error));
        Assert.True(bytes.AsSpan(0, 256 * 1024).SequenceEqual(stalled.Payload));
    }

    [Fact]
    public void A_file_that_fails_after_the_reply_started_closes_that_connection_only()
    {
        // A directory: sendfile refuses it (EINVAL) and the read-through fallback fails (EISDIR)
        // after the chunk header is out, which no error reply can repair.
        int fd = open(_dir, 0 /* O_RDONLY */);
        Assert.True(fd >= 0);
        var inner = new MemoryDevice(4 * MiB);
        var data = new byte[MiB];
        Array.Fill(data, (byte)0x5a);
        inner.Write(0, data, WriteFlags.None);
        using var t = new NbdTestServer(new FileRangeDevice(inner, new SafeFileHandle(fd, ownsHandle: true)));
        using (var c = t.Client().Connect())
        {
            c.SendRequest(NbdProtocol.CmdRead, 0, 256 * 1024, 5);
            Assert.Throws<EndOfStreamException>(() => c.ReadChunks());
        }
        WaitFor(t, NbdServerEventKind.DeviceError);

        // The server and a new connection are fine; a short read does not go through the file.
        using var next = t.Client().Connect();
        var small = Read(next, structured: true, 0, 4096, out _);
        Assert.Equal(4096, small.Length);
    }

    [Fact]
    public void A_file_that_changed_while_it_was_sent_closes_the_connection_and_every_lease_ends()
    {
        var (path, _) = SparseImage();
        var inner = new MemoryDevice(8 * MiB);
        var data = new byte[MiB];
        Array.Fill(data, (byte)0x33);
        inner.Write(0, data, WriteFlags.None);
        var device = new FileRangeDevice(inner, File.OpenHandle(path)) { Valid = false };
        using var t = new NbdTestServer(device);
        using (var c = t.Client().Connect())
        {
            c.SendRequest(NbdProtocol.CmdRead, 0, 256 * 1024, 5);
            Assert.Throws<EndOfStreamException>(() => c.ReadChunks());
        }
        WaitFor(t, NbdServerEventKind.DeviceError);
        Assert.Equal(0, Volatile.Read(ref device.Leases));

        device.Valid = true;
        using var next = t.Client().Connect();
        Assert.Equal(256 * 1024, Read(next, structured: true, 0, 256 * 1024, out _).Length);
        Assert.Equal(0, Volatile.Read(ref device.Leases));
    }

    private static void WaitFor(NbdTestServer t, NbdServerEventKind kind)
    {
        // Reported once the failing request unwinds, which may be just after the client saw EOF.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            lock (t.Events) if (t.Events.Any(e => e.Kind == kind)) return;
            Thread.Sleep(10);
        }
        Assert.Fail($"no {kind} event");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    /// <summary>A memory device that claims its bytes are in <paramref name="file"/> (at the
    /// same offsets), to put the server's file path in front of a handle it cannot use.</summary>
    private sealed class FileRangeDevice(MemoryDevice inner, SafeFileHandle file) : IBlockDevice, IFileRangeLease
    {
        /// <summary>What the lease answers after a range was sent.</summary>
        public bool Valid { get; set; } = true;
        public int Leases;

        /// <summary>A range asked for at this offset waits for <see cref="Gate"/>.</summary>
        public long GatedOffset { get; set; } = -1;
        public ManualResetEventSlim Gate { get; } = new(false);
        public ManualResetEventSlim Entered { get; } = new(false);

        public long Size => inner.Size;
        public BlockDeviceCapabilities Capabilities => inner.Capabilities | BlockDeviceCapabilities.FileRanges;
        public int PreferredBlockSize => inner.PreferredBlockSize;
        public int WriteBufferAlignment => 1;
        public bool TryReadNoWait(long offset, Span<byte> buffer) => false;
        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);
        public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags) => inner.Write(offset, data, flags);
        public void Flush() => inner.Flush();
        public void Trim(long offset, long length, WriteFlags flags) => inner.Trim(offset, length, flags);
        public void WriteZeroes(long offset, long length, WriteFlags flags) => inner.WriteZeroes(offset, length, flags);
        public void Cache(long offset, long length) => inner.Cache(offset, length);
        public void GetExtents(long offset, long length, List<Extent> extents) => inner.GetExtents(offset, length, extents);
        public void Dispose() => inner.Dispose();

        public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges)
        {
            if (offset == GatedOffset)
            {
                Entered.Set();
                Gate.Wait(TimeSpan.FromSeconds(30));
            }
            bool added = false;
            try { file.DangerousAddRef(ref added); }
            catch (ObjectDisposedException) { return false; }
            Interlocked.Increment(ref Leases);
            ranges.Add(new FileRange((int)file.DangerousGetHandle(), offset, length, this));
            return true;
        }

        public bool MayChange => true;
        public bool StillValid(in FileRange range) => Valid;

        public void Release(in FileRange range)
        {
            Interlocked.Decrement(ref Leases);
            file.DangerousRelease();
        }
    }
}
