using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>A deliberately tiny raw-socket NBD client: it sends exactly the bytes a test asks
/// for, including malformed ones, and decodes replies without interpretation.</summary>
internal sealed class NbdTestClient : IDisposable
{
    public const ulong IHaveOpt = 0x49484156454F5054;
    public const ulong OptReplyMagic = 0x3e889045565a9;
    private readonly Socket _s;

    public NbdTestClient(string socketPath)
    {
        _s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _s.Connect(new UnixDomainSocketEndPoint(socketPath));
        // A test that waits for a reply that never comes fails instead of hanging.
        _s.ReceiveTimeout = 20000;
    }

    public ushort TransmissionFlags { get; private set; }
    public long ExportSize { get; private set; }

    public (ulong Magic, ulong Opt, ushort Flags) ReadGreeting()
    {
        var b = ReadBytes(18);
        return (BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(8)),
            BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(16)));
    }

    public void SendClientFlags(uint flags) => Send(BE32(flags));

    /// <summary>Greeting plus fixed-newstyle client flags (NO_ZEROES too).</summary>
    public NbdTestClient Hello(uint flags = 3)
    {
        ReadGreeting();
        SendClientFlags(flags);
        return this;
    }

    public void SendOption(uint option, byte[] data) => SendOptionHeader(option, (uint)data.Length, data);

    public void SendOptionHeader(uint option, uint length, byte[]? data = null)
    {
        var h = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(h, IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(12), length);
        Send(h);
        if (data is { Length: > 0 }) Send(data);
    }

    public (uint Option, uint Type, byte[] Data) ReadOptionReply()
    {
        var h = ReadBytes(20);
        Assert.Equal(OptReplyMagic, BinaryPrimitives.ReadUInt64BigEndian(h));
        uint len = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(16));
        return (BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(8)), BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(12)), ReadBytes((int)len));
    }

    /// <summary>Reads option replies up to and including the ACK (or an error).</summary>
    public List<(uint Type, byte[] Data)> ReadOptionReplies()
    {
        var list = new List<(uint, byte[])>();
        while (true)
        {
            var r = ReadOptionReply();
            list.Add((r.Type, r.Data));
            if (r.Type == 1 || (r.Type & 0x80000000) != 0) return list;
        }
    }

    public static byte[] InfoData(string name, params ushort[] requests)
    {
        var n = Encoding.UTF8.GetBytes(name);
        var d = new byte[4 + n.Length + 2 + 2 * requests.Length];
        BinaryPrimitives.WriteUInt32BigEndian(d, (uint)n.Length);
        n.CopyTo(d, 4);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(4 + n.Length), (ushort)requests.Length);
        for (int i = 0; i < requests.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(6 + n.Length + 2 * i), requests[i]);
        return d;
    }

    public static byte[] MetaData(string name, params string[] queries)
    {
        var ms = new MemoryStream();
        var n = Encoding.UTF8.GetBytes(name);
        ms.Write(BE32((uint)n.Length)); ms.Write(n);
        ms.Write(BE32((uint)queries.Length));
        foreach (var q in queries) { var qb = Encoding.UTF8.GetBytes(q); ms.Write(BE32((uint)qb.Length)); ms.Write(qb); }
        return ms.ToArray();
    }

    /// <summary>Full negotiation through NBD_OPT_GO.</summary>
    public NbdTestClient Connect(bool structured = true, bool meta = true, string export = "export")
    {
        Hello();
        if (structured)
        {
            SendOption(8, []);
            Assert.Equal(1u, ReadOptionReply().Type);
        }
        if (structured && meta)
        {
            SendOption(10, MetaData(export, "base:allocation"));
            var r = ReadOptionReplies();
            Assert.Equal(4u, r[0].Type);
            Assert.Equal(1u, r[^1].Type);
        }
        SendOption(7, InfoData(export));
        foreach (var (type, data) in ReadOptionReplies())
        {
            if (type == 3 && BinaryPrimitives.ReadUInt16BigEndian(data) == 0)
            {
                ExportSize = (long)BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                TransmissionFlags = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
            }
            else Assert.True(type is 1 or 3, $"unexpected reply type 0x{type:x}");
        }
        return this;
    }

    public void SendRequest(ushort type, ulong offset, uint length, ulong cookie = 1, ushort flags = 0, byte[]? payload = null, uint magic = 0x25609513)
    {
        var h = Request(type, offset, length, cookie, flags, magic);
        Send(h);
        if (payload is not null) Send(payload);
    }

    /// <summary>The 28-byte request header, for tests that need several requests in one send.</summary>
    public static byte[] Request(ushort type, ulong offset, uint length, ulong cookie = 1, ushort flags = 0, uint magic = 0x25609513)
    {
        var h = new byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(h, magic);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(24), length);
        return h;
    }

    /// <summary>One reply or one structured chunk. <paramref name="simpleDataLength"/> is the
    /// data length a successful simple reply carries (the client must know it).</summary>
    public Reply ReadReply(int simpleDataLength = 0) => ReadReply(_ => simpleDataLength);

    /// <summary>As above, with the data length looked up by cookie (out-of-order replies).</summary>
    public Reply ReadReply(Func<ulong, int> simpleDataLength)
    {
        var m = ReadBytes(4);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(m);
        if (magic == 0x67446698)
        {
            var h = ReadBytes(12);
            uint err = BinaryPrimitives.ReadUInt32BigEndian(h);
            ulong cookie = BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(4));
            int n = simpleDataLength(cookie);
            byte[] data = err == 0 && n > 0 ? ReadBytes(n) : [];
            return new Reply(false, cookie, err, 0, 0, true, data);
        }
        Assert.Equal(0x668e33efu, magic);
        var c = ReadBytes(16);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(c);
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(c.AsSpan(2));
        ulong ck = BinaryPrimitives.ReadUInt64BigEndian(c.AsSpan(4));
        uint len = BinaryPrimitives.ReadUInt32BigEndian(c.AsSpan(12));
        var payload = ReadBytes((int)len);
        uint error = (type & 0x8000) != 0 ? BinaryPrimitives.ReadUInt32BigEndian(payload) : 0;
        return new Reply(true, ck, error, type, flags, (flags & 1) != 0, payload);
    }

    /// <summary>Reads chunks until DONE for one structured request.</summary>
    public List<Reply> ReadChunks()
    {
        var list = new List<Reply>();
        while (true)
        {
            var r = ReadReply();
            list.Add(r);
            if (r.Done) return list;
        }
    }

    /// <summary>True if the server closed the connection (EOF) rather than sending more.</summary>
    public bool IsClosedByServer()
    {
        var b = new byte[1];
        try { return _s.Receive(b) == 0; }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset) { return true; }
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty) data = data[_s.Send(data)..];
    }

    public byte[] ReadBytes(int n)
    {
        var b = new byte[n];
        int got = 0;
        while (got < n)
        {
            int r = _s.Receive(b, got, n - got, SocketFlags.None);
            if (r == 0) throw new EndOfStreamException($"server closed after {got} of {n} bytes");
            got += r;
        }
        return b;
    }

    public static byte[] BE32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); return b; }

    public void Dispose() => _s.Dispose();
}

internal sealed record Reply(bool Structured, ulong Cookie, uint Error, ushort Type, ushort Flags, bool Done, byte[] Payload)
{
    public string ErrorMessage => Structured && Error != 0
        ? Encoding.UTF8.GetString(Payload, 6, BinaryPrimitives.ReadUInt16BigEndian(Payload.AsSpan(4))) : "";
}
