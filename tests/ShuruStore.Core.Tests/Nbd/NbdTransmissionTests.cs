using System.Buffers.Binary;
using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Tests.Nbd;

public class NbdTransmissionTests
{
    private const ushort Read = 0, Write = 1, Disc = 2, Flush = 3, Trim = 4, Cache = 5, Zero = 6, Status = 7;
    private const long Size = 64L << 20;

    private static byte[] Pattern(int n, byte seed)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)(seed + i * 7);
        return b;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Write_then_read_round_trips(bool structured)
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured);
        var data = Pattern(100_000, 3);
        c.SendRequest(Write, 12345, (uint)data.Length, cookie: 1, payload: data);
        { var rr = c.ReadReply(); Assert.Equal((1ul, 0u), (rr.Cookie, rr.Error)); }
        c.SendRequest(Read, 12345, (uint)data.Length, cookie: 2);
        Assert.Equal(data, ReadData(c, structured, 12345, data.Length));
    }

    [Fact]
    public void Errors_past_the_end_keep_the_connection_usable()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Write, Size - 10, 20, cookie: 1, payload: new byte[20]);
        Assert.Equal(28u, c.ReadReply().Error); // ENOSPC
        c.SendRequest(Read, Size - 10, 20, cookie: 2);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Trim, Size, 1, cookie: 3);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Zero, ulong.MaxValue - 5, 10, cookie: 4);
        Assert.Equal(28u, c.ReadReply().Error); // write-type: ENOSPC
        c.SendRequest(Cache, Size + 1, 0, cookie: 5);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Write, ulong.MaxValue, 1, cookie: 6, payload: [1]);
        Assert.Equal(28u, c.ReadReply().Error);
        c.SendRequest(Read, Size - 512, 512, cookie: 7);
        var ok = c.ReadReply(512);
        Assert.Equal((7ul, 0u), (ok.Cookie, ok.Error));
        Assert.Equal(6, t.Server.GetStatistics().Errors);
    }

    [Fact]
    public void Block_status_past_the_end_and_zero_length_are_invalid()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(Status, Size, 1, cookie: 1);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Status, 0, 0, cookie: 2);
        Assert.Equal(22u, c.ReadReply().Error);
    }

    [Fact]
    public void Zero_length_requests_are_successful_no_ops()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: false);
        foreach (var type in new[] { Read, Write, Trim, Zero, Cache, Flush })
        {
            c.SendRequest(type, 4096, 0, cookie: type, payload: type == Write ? [] : null);
            var r = c.ReadReply();
            Assert.Equal(((ulong)type, 0u), (r.Cookie, r.Error));
        }
        // At the very end is still inside; one past it is not.
        c.SendRequest(Read, (ulong)Size, 0, cookie: 10);
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Read, (ulong)Size + 1, 0, cookie: 11);
        Assert.Equal(22u, c.ReadReply().Error);
    }

    [Fact]
    public void Zero_length_structured_read_is_a_single_done_chunk()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(Read, 0, 0, cookie: 3);
        var chunks = c.ReadChunks();
        Assert.Single(chunks);
        Assert.Equal((ushort)0, chunks[0].Type);
    }

    [Fact]
    public void Unknown_command_and_bad_flags_are_invalid()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(42, 0, 512, cookie: 1);
        var r = c.ReadReply();
        Assert.Equal(22u, r.Error);
        Assert.Contains("unknown command", r.ErrorMessage);
        c.SendRequest(Read, 0, 512, cookie: 2, flags: 0x100);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Read, 0, 512, cookie: 3, flags: 8); // REQ_ONE on READ
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Write, 0, 4, cookie: 4, flags: 2, payload: [1, 2, 3, 4]); // NO_HOLE on WRITE
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Trim, 0, 4, cookie: 5, flags: 16); // FAST_ZERO on TRIM
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Read, 0, 8, cookie: 6);
        Assert.Equal(0u, c.ReadChunks()[^1].Error);
    }

    [Fact]
    public void Read_only_export_refuses_writes_with_eperm()
    {
        using var t = new NbdTestServer(new MemoryDevice(1 << 20, readOnly: true));
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Write, 0, 4, cookie: 1, payload: [1, 2, 3, 4]);
        Assert.Equal(1u, c.ReadReply().Error);
        c.SendRequest(Trim, 0, 4, cookie: 2);
        Assert.Equal(1u, c.ReadReply().Error);
        c.SendRequest(Zero, 0, 4, cookie: 3);
        Assert.Equal(1u, c.ReadReply().Error);
        c.SendRequest(Read, 0, 4, cookie: 4);
        Assert.Equal(0u, c.ReadReply(4).Error);
    }

    [Fact]
    public void Requests_of_32_MiB_are_served_and_33_MiB_refused_without_losing_sync()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: false);
        var big = Pattern(32 << 20, 1);
        c.SendRequest(Write, 0, (uint)big.Length, cookie: 1, payload: big);
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Read, 0, (uint)big.Length, cookie: 2);
        Assert.True(big.AsSpan().SequenceEqual(c.ReadReply(big.Length).Payload));

        c.SendRequest(Write, 0, 33u << 20, cookie: 3, payload: new byte[33 << 20]);
        { var rr = c.ReadReply(); Assert.Equal((3ul, 22u), (rr.Cookie, rr.Error)); }
        c.SendRequest(Read, 0, 33u << 20, cookie: 4);
        { var rr = c.ReadReply(); Assert.Equal((4ul, 22u), (rr.Cookie, rr.Error)); }
        // Nothing of the refused write landed, and the stream is still in sync.
        c.SendRequest(Read, 0, 16, cookie: 5);
        var r = c.ReadReply(16);
        Assert.Equal(5ul, r.Cookie);
        Assert.Equal(big[..16], r.Payload);
    }

    [Fact]
    public void Structured_read_sends_holes_for_unallocated_ranges_and_df_forbids_fragmenting()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        var data = Pattern(65536, 9);
        c.SendRequest(Write, 65536, 65536, cookie: 1, payload: data);
        Assert.Equal(0u, c.ReadReply().Error);

        c.SendRequest(Read, 0, 3 * 65536, cookie: 2);
        var chunks = c.ReadChunks();
        Assert.Equal(new ushort[] { 2, 1, 2 }, chunks.Select(x => x.Type));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64BigEndian(chunks[0].Payload));
        Assert.Equal(65536u, BinaryPrimitives.ReadUInt32BigEndian(chunks[0].Payload.AsSpan(8)));
        Assert.Equal(65536ul, BinaryPrimitives.ReadUInt64BigEndian(chunks[1].Payload));
        Assert.Equal(data, chunks[1].Payload[8..]);
        Assert.True(chunks[2].Done);
        Assert.All(chunks, ch => Assert.Equal(2ul, ch.Cookie));

        c.SendRequest(Read, 0, 3 * 65536, cookie: 3, flags: 4); // DF
        chunks = c.ReadChunks();
        Assert.Single(chunks);
        Assert.Equal(1, chunks[0].Type);
        Assert.Equal(8 + 3 * 65536, chunks[0].Payload.Length);
        Assert.Equal(data, chunks[0].Payload[(8 + 65536)..(8 + 2 * 65536)]);
    }

    [Fact]
    public void Block_status_reports_holes_clips_and_honours_req_one()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(Write, 131072, 65536, cookie: 1, payload: new byte[65536]);
        Assert.Equal(0u, c.ReadReply().Error);

        c.SendRequest(Status, 4096, 4 * 65536, cookie: 2);
        var r = c.ReadChunks().Single();
        Assert.Equal(5, r.Type);
        var ext = Extents(r.Payload);
        Assert.Equal(new[] { (131072u - 4096, 3u), (65536u, 0u), (65536u + 4096, 3u) }, ext);
        Assert.Equal(4u * 65536, (uint)ext.Sum(e => e.Len));

        c.SendRequest(Status, 4096, 4 * 65536, cookie: 3, flags: 8);
        ext = Extents(c.ReadChunks().Single().Payload);
        Assert.Equal(new[] { (131072u - 4096, 3u) }, ext);

        c.SendRequest(Status, 131072 + 100, 200, cookie: 4, flags: 8);
        ext = Extents(c.ReadChunks().Single().Payload);
        Assert.Equal(new[] { (200u, 0u) }, ext);
    }

    [Fact]
    public void Block_status_without_meta_context_is_invalid()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: true, meta: false);
        c.SendRequest(Status, 0, 4096, cookie: 1);
        Assert.Equal(22u, c.ReadReply().Error);
    }

    [Fact]
    public void Device_errors_become_the_right_errno_with_a_message()
    {
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { ReadFailure = new BlockDeviceException(BlockDeviceError.IO, "chunk abc is missing") };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect();
        c.SendRequest(Read, 0, 4096, cookie: 1, flags: 4);
        var r = c.ReadChunks().Single();
        Assert.Equal((5u, (ushort)32769), (r.Error, r.Type));
        Assert.Equal("chunk abc is missing", r.ErrorMessage);
        dev.ReadFailure = new InvalidOperationException("bug");
        c.SendRequest(Read, 0, 4096, cookie: 2, flags: 4);
        Assert.Equal(5u, c.ReadChunks().Single().Error);
        dev.ReadFailure = new BlockDeviceException(BlockDeviceError.NoSpace, "full");
        c.SendRequest(Read, 0, 4096, cookie: 3, flags: 4);
        Assert.Equal(28u, c.ReadChunks().Single().Error);
        dev.ReadFailure = null;
        c.SendRequest(Read, 0, 4096, cookie: 4, flags: 4);
        Assert.Equal(0u, c.ReadChunks().Single().Error);
        lock (t.Events) Assert.Contains(t.Events, e => e.Kind == ShuruStore.Core.Nbd.NbdServerEventKind.DeviceError);
    }

    [Fact]
    public void Fast_zero_refusal_is_enotsup_and_zeroing_works()
    {
        var dev = new TestDevice(new MemoryDevice(1 << 20));
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Write, 0, 8, cookie: 1, payload: [1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Zero, 0, 4, cookie: 2, flags: 2 | 1); // NO_HOLE | FUA
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Read, 0, 8, cookie: 3);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 5, 6, 7, 8 }, c.ReadReply(8).Payload);
        dev.ZeroFailure = new BlockDeviceException(BlockDeviceError.NotSupported, "slow");
        c.SendRequest(Zero, 0, 4, cookie: 4, flags: 16);
        Assert.Equal(95u, c.ReadReply().Error);
    }

    [Fact]
    public void Flush_fua_trim_and_cache_succeed()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Write, 0, 4, cookie: 1, flags: 1, payload: [1, 2, 3, 4]);
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Flush, 0, 0, cookie: 2);
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Trim, 0, 65536, cookie: 3);
        Assert.Equal(0u, c.ReadReply().Error);
        c.SendRequest(Cache, 0, 65536, cookie: 4);
        Assert.Equal(0u, c.ReadReply().Error);
        Assert.Equal(0, ((MemoryDevice)t.Device).AllocatedPages);
    }

    [Fact]
    public void Commands_the_device_lacks_are_invalid()
    {
        using var t = new NbdTestServer(new TestDevice(new MemoryDevice(1 << 20), BlockDeviceCapabilities.None));
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Trim, 0, 4096, cookie: 1);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Zero, 0, 4096, cookie: 2);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Cache, 0, 4096, cookie: 3);
        Assert.Equal(22u, c.ReadReply().Error);
        c.SendRequest(Write, 0, 1, cookie: 4, flags: 1, payload: [1]); // FUA not advertised
        Assert.Equal(22u, c.ReadReply().Error);
    }

    [Fact]
    public void A_slow_lone_write_does_not_hold_up_the_requests_behind_it()
    {
        // A lone write runs on the connection's reader thread; when it blocks, another thread
        // must take over reading so the requests behind it are still answered.
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Write, 0, 4, cookie: 1, payload: [9, 9, 9, 9]);
        Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));
        c.SendRequest(Read, 8192, 4096, cookie: 2);
        var r2 = c.ReadReply(4096);
        Assert.Equal((2ul, 0u), (r2.Cookie, r2.Error));
        dev.Gate.Set();
        Assert.Equal((1ul, 0u), (c.ReadReply().Cookie, 0u));
        c.SendRequest(Read, 0, 4, cookie: 3);
        Assert.Equal([9, 9, 9, 9], c.ReadReply(4).Payload);
    }

    [Fact]
    public void Replies_may_overtake_a_slow_request()
    {
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Read, 0, 4096, cookie: 1);
        Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));
        c.SendRequest(Read, 8192, 4096, cookie: 2);
        c.SendRequest(Write, 16384, 4, cookie: 3, payload: [1, 2, 3, 4]);
        int Len(ulong cookie) => cookie == 3 ? 0 : 4096;
        var first = new[] { c.ReadReply(Len), c.ReadReply(Len) }.Select(r => r.Cookie).OrderBy(x => x);
        Assert.Equal(new ulong[] { 2, 3 }, first);
        dev.Gate.Set();
        Assert.Equal(1ul, c.ReadReply(4096).Cookie);
    }

    [Fact]
    public async Task Many_clients_with_many_requests_in_flight_see_their_own_data()
    {
        using var t = new NbdTestServer();
        const int clients = 6, perClient = 100, block = 8192;
        var tasks = Enumerable.Range(0, clients).Select(ci => Task.Run(() =>
        {
            using var c = t.Client().Connect(structured: ci % 2 == 0);
            for (int i = 0; i < perClient; i++)
            {
                long off = ((long)ci * perClient + i) * block;
                c.SendRequest(Write, (ulong)off, block, cookie: (ulong)i, payload: Pattern(block, (byte)(ci * 31 + i)));
            }
            var seen = new HashSet<ulong>();
            for (int i = 0; i < perClient; i++)
            {
                var r = c.ReadReply();
                Assert.Equal(0u, r.Error);
                Assert.True(seen.Add(r.Cookie));
            }
            for (int i = 0; i < perClient; i++)
            {
                long off = ((long)ci * perClient + i) * block;
                c.SendRequest(Read, (ulong)off, block, cookie: (ulong)i, flags: (ushort)(ci % 2 == 0 ? 4 : 0));
            }
            for (int i = 0; i < perClient; i++)
            {
                var r = c.ReadReply(block);
                byte[] data = r.Structured ? r.Payload[8..] : r.Payload;
                Assert.Equal(Pattern(block, (byte)(ci * 31 + (int)r.Cookie)), data);
            }
            c.SendRequest(Disc, 0, 0);
            Assert.True(c.IsClosedByServer());
        })).ToArray();
        await Task.WhenAll(tasks);
        var stats = t.Server.GetStatistics();
        Assert.Equal(clients * perClient, stats.Requests["Write"]);
        Assert.Equal(clients * perClient, stats.Requests["Read"]);
        Assert.Equal((long)clients * perClient * block, stats.BytesWritten);
        Assert.Equal((long)clients * perClient * block, stats.BytesRead);
        Assert.Equal(clients, stats.TotalConnections);
    }

    [Fact]
    public void Disc_finishes_in_flight_requests_before_closing()
    {
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Read, 0, 4096, cookie: 7);
        Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));
        c.SendRequest(Disc, 0, 0, cookie: 8);
        dev.Gate.Set();
        var r = c.ReadReply(4096);
        Assert.Equal((7ul, 0u), (r.Cookie, r.Error));
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void A_command_sent_during_option_haggling_closes_the_connection()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendRequest(Read, 0, 512, cookie: 1); // not an option: bad option magic
        Assert.True(c.IsClosedByServer());
        lock (t.Events) Assert.DoesNotContain(t.Events, e => e.Kind == ShuruStore.Core.Nbd.NbdServerEventKind.Negotiated);
    }

    [Fact]
    public void Commands_after_disc_are_never_answered()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: false);
        // One send, so the write is on the wire before the server can close.
        c.Send([.. NbdTestClient.Request(Disc, 0, 0, cookie: 1), .. NbdTestClient.Request(Write, 0, 4, cookie: 2), 9, 9, 9, 9]);
        Assert.True(c.IsClosedByServer());
        var buf = new byte[4];
        t.Device.Read(0, buf);
        Assert.Equal(new byte[4], buf); // the write after DISC was not executed
    }

    [Fact]
    public void Bad_request_magic_closes_the_connection()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(Read, 0, 4, magic: 0x12345678);
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void Device_without_extents_reads_as_one_data_chunk_and_reports_one_data_extent()
    {
        var caps = BlockDeviceCapabilities.Flush;
        using var t = new NbdTestServer(new TestDevice(new MemoryDevice(1 << 20), caps));
        using var c = t.Client().Connect();
        c.SendRequest(Read, 0, 3 * 65536, cookie: 1);
        var chunk = c.ReadChunks().Single();
        Assert.Equal((ushort)1, chunk.Type);
        c.SendRequest(Status, 100, 5000, cookie: 2);
        Assert.Equal(new[] { (5000u, 0u) }, Extents(c.ReadChunks().Single().Payload));
    }

    [Fact]
    public void Flat_file_holes_reach_the_client_through_block_status()
    {
        string dir = Directory.CreateTempSubdirectory("nbdflat-").FullName;
        try
        {
            string img = Path.Combine(dir, "d.img");
            using (var fs = File.Create(img)) fs.SetLength(4 << 20);
            using var t = new NbdTestServer(new FlatFileDevice(img));
            using var c = t.Client().Connect();
            c.SendRequest(Write, 1 << 20, 65536, cookie: 1, flags: 1, payload: Pattern(65536, 5));
            Assert.Equal(0u, c.ReadReply().Error);
            c.SendRequest(Status, 0, 4 << 20, cookie: 2);
            var ext = Extents(c.ReadChunks().Single().Payload);
            Assert.Equal((1u << 20, 3u), ext[0]);
            Assert.Equal(0u, ext[1].Flags);
            Assert.Equal(4u << 20, (uint)ext.Sum(e => e.Len));
            c.SendRequest(Trim, 1 << 20, 65536, cookie: 3);
            Assert.Equal(0u, c.ReadReply().Error);
            c.SendRequest(Status, 0, 4 << 20, cookie: 4, flags: 8);
            Assert.Equal(new[] { (4u << 20, 3u) }, Extents(c.ReadChunks().Single().Payload));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Requests_arriving_byte_by_byte_or_batched_parse_the_same()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect(structured: false);
        // Build 50 pipelined writes (header + payload) plus one read, as one byte stream.
        var stream = new MemoryStream();
        for (int i = 0; i < 50; i++)
        {
            var h = new byte[28];
            BinaryPrimitives.WriteUInt32BigEndian(h, 0x25609513);
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), Write);
            BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(8), (ulong)i);
            BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(16), (ulong)(i * 100));
            BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(24), 100);
            stream.Write(h);
            stream.Write(Enumerable.Repeat((byte)(i + 1), 100).ToArray());
        }
        var bytes = stream.ToArray();
        c.Send(bytes.AsSpan(0, bytes.Length / 2)); // one big batch...
        foreach (var b in bytes.AsSpan(bytes.Length / 2).ToArray()) c.Send([b]); // ...then byte by byte
        var cookies = Enumerable.Range(0, 50).Select(_ => c.ReadReply()).Select(r => { Assert.Equal(0u, r.Error); return r.Cookie; });
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (ulong)i), cookies.OrderBy(x => x));
        c.SendRequest(Read, 0, 5000, cookie: 99);
        var data = c.ReadReply(5000).Payload;
        for (int i = 0; i < 50; i++) Assert.All(data.AsSpan(i * 100, 100).ToArray(), b => Assert.Equal(i + 1, b));
    }

    internal static byte[] ReadData(NbdTestClient c, bool structured, long offset, int length)
    {
        if (!structured) return c.ReadReply(length).Payload;
        var result = new byte[length];
        foreach (var ch in c.ReadChunks())
        {
            Assert.Equal(0u, ch.Error);
            if (ch.Type == 1)
            {
                long o = (long)BinaryPrimitives.ReadUInt64BigEndian(ch.Payload) - offset;
                ch.Payload.AsSpan(8).CopyTo(result.AsSpan((int)o));
            }
        }
        return result;
    }

    private static (uint Len, uint Flags)[] Extents(byte[] payload)
    {
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(payload));
        var list = new List<(uint, uint)>();
        for (int p = 4; p < payload.Length; p += 8)
            list.Add((BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(p)), BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(p + 4))));
        return list.ToArray();
    }
}
