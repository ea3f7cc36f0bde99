using System.Buffers.Binary;
using System.Text;
using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Tests.Nbd;

public class NbdHandshakeTests
{
    [Fact]
    public void Greeting_is_fixed_newstyle_with_no_zeroes()
    {
        using var t = new NbdTestServer();
        using var c = t.Client();
        var (magic, opt, flags) = c.ReadGreeting();
        Assert.Equal(0x4e42444d41474943ul, magic);
        Assert.Equal(NbdTestClient.IHaveOpt, opt);
        Assert.Equal(3, flags);
    }

    [Theory]
    [InlineData(4u)]
    [InlineData(0x80000001u)]
    public void Unknown_client_flags_close_the_connection(uint flags)
    {
        using var t = new NbdTestServer();
        using var c = t.Client();
        c.ReadGreeting();
        c.SendClientFlags(flags);
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void Client_without_fixed_newstyle_is_closed()
    {
        using var t = new NbdTestServer();
        using var c = t.Client();
        c.ReadGreeting();
        c.SendClientFlags(0);
        Assert.True(c.IsClosedByServer());
    }

    [Theory]
    [InlineData(3u, 10)]
    [InlineData(1u, 134)]
    public void Export_name_ends_negotiation_with_or_without_zeroes(uint clientFlags, int expected)
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello(clientFlags);
        c.SendOption(1, Encoding.UTF8.GetBytes("export"));
        var reply = c.ReadBytes(expected);
        Assert.Equal(64L << 20, (long)BinaryPrimitives.ReadUInt64BigEndian(reply));
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8));
        Assert.Equal(1, flags & 1);
        Assert.Equal(0, flags & 128); // no DF without structured replies
        Assert.All(reply.Skip(10), b => Assert.Equal(0, b));
        // Transmission works: a simple read.
        c.SendRequest(0, 0, 512, cookie: 9);
        var r = c.ReadReply(512);
        Assert.Equal((9ul, 0u), (r.Cookie, r.Error));
    }

    [Fact]
    public void Export_name_empty_is_accepted_and_unknown_closes()
    {
        using var t = new NbdTestServer();
        using (var c = t.Client().Hello())
        {
            c.SendOption(1, []);
            Assert.Equal(64L << 20, (long)BinaryPrimitives.ReadUInt64BigEndian(c.ReadBytes(10)));
        }
        using (var c = t.Client().Hello())
        {
            c.SendOption(1, Encoding.UTF8.GetBytes("nope"));
            Assert.True(c.IsClosedByServer());
        }
    }

    [Fact]
    public void Abort_is_acked_then_closed()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(2, []);
        var r = c.ReadOptionReply();
        Assert.Equal((2u, 1u), (r.Option, r.Type));
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void List_returns_the_export_and_rejects_data()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(3, []);
        var replies = c.ReadOptionReplies();
        Assert.Equal(2u, replies[0].Type);
        Assert.Equal(6u, BinaryPrimitives.ReadUInt32BigEndian(replies[0].Data));
        Assert.Equal("export", Encoding.UTF8.GetString(replies[0].Data, 4, 6));
        Assert.Equal(1u, replies[^1].Type);
        c.SendOption(3, [1, 2, 3]);
        Assert.Equal(0x80000003u, c.ReadOptionReply().Type);
    }

    [Fact]
    public void StartTls_is_refused_by_policy_and_negotiation_continues()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(5, []);
        Assert.Equal(0x80000002u, c.ReadOptionReply().Type);
        c.SendOption(8, []);
        Assert.Equal(1u, c.ReadOptionReply().Type);
    }

    [Fact]
    public void Info_reports_export_name_description_and_block_sizes_then_go_enters_transmission()
    {
        using var t = new NbdTestServer(description: "test disk");
        using var c = t.Client().Hello();
        c.SendOption(6, NbdTestClient.InfoData("export", 1, 2, 3));
        var replies = c.ReadOptionReplies();
        Assert.Equal(1u, replies[^1].Type);
        var infos = replies.Where(r => r.Type == 3).ToDictionary(r => BinaryPrimitives.ReadUInt16BigEndian(r.Data), r => r.Data);
        Assert.Equal(64L << 20, (long)BinaryPrimitives.ReadUInt64BigEndian(infos[0].AsSpan(2)));
        Assert.Equal("export", Encoding.UTF8.GetString(infos[1], 2, infos[1].Length - 2));
        Assert.Equal("test disk", Encoding.UTF8.GetString(infos[2], 2, infos[2].Length - 2));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(infos[3].AsSpan(2)));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32BigEndian(infos[3].AsSpan(6)));
        Assert.Equal(32u << 20, BinaryPrimitives.ReadUInt32BigEndian(infos[3].AsSpan(10)));

        // INFO stays in negotiation; GO without info requests still gets INFO_EXPORT and block sizes.
        c.SendOption(7, NbdTestClient.InfoData(""));
        replies = c.ReadOptionReplies();
        Assert.Contains(replies, r => r.Type == 3 && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == 0);
        Assert.Contains(replies, r => r.Type == 3 && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == 3);
        Assert.Equal(1u, replies[^1].Type);
        c.SendRequest(3, 0, 0, cookie: 5);
        Assert.Equal(0u, c.ReadReply().Error);
    }

    [Fact]
    public void Info_unknown_export_and_malformed_data_are_errors_and_negotiation_continues()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(6, NbdTestClient.InfoData("other"));
        Assert.Equal(0x80000006u, c.ReadOptionReply().Type);
        c.SendOption(7, NbdTestClient.InfoData("other"));
        Assert.Equal(0x80000006u, c.ReadOptionReply().Type);
        // Name length pointing past the data.
        var bad = NbdTestClient.InfoData("export");
        BinaryPrimitives.WriteUInt32BigEndian(bad, 1000);
        c.SendOption(7, bad);
        Assert.Equal(0x80000003u, c.ReadOptionReply().Type);
        // Request count disagreeing with the length.
        bad = NbdTestClient.InfoData("export", 1);
        c.SendOption(6, bad[..^1]);
        Assert.Equal(0x80000003u, c.ReadOptionReply().Type);
        c.SendOption(7, [0, 0]);
        Assert.Equal(0x80000003u, c.ReadOptionReply().Type);
        c.SendOption(7, NbdTestClient.InfoData("export"));
        Assert.Equal(1u, c.ReadOptionReplies()[^1].Type);
    }

    [Fact]
    public void Set_meta_context_before_structured_reply_is_invalid()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(10, NbdTestClient.MetaData("export", "base:allocation"));
        Assert.Equal(0x80000003u, c.ReadOptionReply().Type);
    }

    [Fact]
    public void List_and_set_meta_context_offer_base_allocation()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(9, NbdTestClient.MetaData("export"));
        var replies = c.ReadOptionReplies();
        Assert.Equal(4u, replies[0].Type);
        Assert.Equal("base:allocation", Encoding.UTF8.GetString(replies[0].Data, 4, replies[0].Data.Length - 4));
        Assert.Equal(1u, replies[^1].Type);

        c.SendOption(8, []);
        Assert.Equal(1u, c.ReadOptionReply().Type);
        c.SendOption(10, NbdTestClient.MetaData("export", "qemu:dirty-bitmap:x", "base:allocation"));
        replies = c.ReadOptionReplies();
        Assert.Single(replies, r => r.Type == 4);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(replies[0].Data));
        c.SendOption(10, NbdTestClient.MetaData("nope", "base:allocation"));
        Assert.Equal(0x80000006u, c.ReadOptionReply().Type);
        var truncated = NbdTestClient.MetaData("export", "base:allocation");
        c.SendOption(10, truncated[..^3]);
        Assert.Equal(0x80000003u, c.ReadOptionReply().Type);
    }

    [Theory]
    [InlineData(11u)]
    [InlineData(4u)]
    [InlineData(12345u)]
    public void Unsupported_options_are_refused_and_reading_continues(uint option)
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(option, [1, 2, 3, 4]);
        var r = c.ReadOptionReply();
        Assert.Equal((option, 0x80000001u), (r.Option, r.Type));
        c.SendOption(8, []);
        Assert.Equal(1u, c.ReadOptionReply().Type);
    }

    [Fact]
    public void Oversized_option_is_discarded_and_answered_too_big()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        int size = 1 << 20;
        c.SendOptionHeader(6, (uint)size);
        c.Send(new byte[size]);
        Assert.Equal(0x80000009u, c.ReadOptionReply().Type);
        c.SendOption(7, NbdTestClient.InfoData("export"));
        Assert.Equal(1u, c.ReadOptionReplies()[^1].Type);
    }

    [Fact]
    public void Many_oversized_options_in_a_row_do_not_exhaust_the_server()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        var junk = new byte[64 * 1024 + 1];
        for (int i = 0; i < 400; i++)
        {
            c.SendOptionHeader(12345, (uint)junk.Length);
            c.Send(junk);
            Assert.Equal(0x80000009u, c.ReadOptionReply().Type);
        }
        c.SendOption(7, NbdTestClient.InfoData("export"));
        Assert.Equal(1u, c.ReadOptionReplies()[^1].Type);
    }

    [Fact]
    public void Bad_option_magic_closes()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.Send(new byte[16]);
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void Read_only_device_advertises_read_only_and_no_write_commands()
    {
        using var t = new NbdTestServer(new MemoryDevice(1 << 20, readOnly: true));
        using var c = t.Client().Connect();
        ushort f = c.TransmissionFlags;
        Assert.Equal(2, f & 2);
        Assert.Equal(0, f & (8 | 32 | 64 | 2048));
        Assert.Equal(128, f & 128);
    }

    [Fact]
    public void Flags_follow_device_capabilities()
    {
        using var t = new NbdTestServer(new TestDevice(new MemoryDevice(1 << 20), BlockDeviceCapabilities.None));
        using var c = t.Client().Connect();
        Assert.Equal(1 | 128, c.TransmissionFlags); // HAS_FLAGS and DF (structured) only
        using var full = new NbdTestServer();
        using var c2 = full.Client().Connect();
        Assert.Equal(1 | 4 | 8 | 32 | 64 | 128 | 256 | 1024 | 2048, c2.TransmissionFlags);
    }

    [Fact]
    public void Oversized_export_name_option_closes_after_discarding()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOptionHeader(1, 100_000);
        c.Send(new byte[100_000]);
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void Longest_legal_export_name_is_read_and_refused_as_unknown()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Hello();
        c.SendOption(6, NbdTestClient.InfoData(new string('x', 4096), 0, 1, 2, 3));
        Assert.Equal(0x80000006u, c.ReadOptionReply().Type);
    }

    [Fact]
    public void Custom_export_name_is_in_the_uri_and_list()
    {
        var dir = Directory.CreateTempSubdirectory("nbdx-").FullName;
        try
        {
            using var s = new ShuruStore.Core.Nbd.NbdServer(new MemoryDevice(4096),
                new ShuruStore.Core.Nbd.NbdServerOptions { SocketPath = Path.Combine(dir, "s"), ExportName = "disk0" });
            s.Start();
            Assert.Equal($"nbd+unix:///disk0?socket={dir}/s", s.Uri);
            using var c = new NbdTestClient(s.SocketPath).Connect(export: "disk0");
            Assert.Equal(4096, c.ExportSize);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Negotiation_and_first_request_sent_in_one_write_are_all_served()
    {
        // The handshake reads through the connection's buffer: whatever it read ahead (here the
        // options after the flags, and a request after GO) must reach the next stage intact.
        using var t = new NbdTestServer();
        t.Device.Write(0, "hello"u8, WriteFlags.None);
        using var c = t.Client();
        c.ReadGreeting();
        var burst = new MemoryStream();
        burst.Write(NbdTestClient.BE32(3));
        burst.Write(Option(8, []));
        burst.Write(Option(7, NbdTestClient.InfoData("export")));
        burst.Write(NbdTestClient.Request(0, 0, 5, cookie: 9));
        c.Send(burst.ToArray());

        Assert.Equal(1u, c.ReadOptionReply().Type);
        var go = c.ReadOptionReplies();
        Assert.Equal(1u, go[^1].Type);
        var chunks = c.ReadChunks();
        var data = Assert.Single(chunks);
        Assert.Equal(9ul, data.Cookie);
        Assert.Equal("hello"u8.ToArray(), data.Payload.AsSpan(8).ToArray());

        static byte[] Option(uint option, byte[] payload)
        {
            var b = new byte[16 + payload.Length];
            BinaryPrimitives.WriteUInt64BigEndian(b, NbdTestClient.IHaveOpt);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), option);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), (uint)payload.Length);
            payload.CopyTo(b, 16);
            return b;
        }
    }
}
