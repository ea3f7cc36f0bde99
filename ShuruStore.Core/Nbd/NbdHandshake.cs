using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using ShuruStore.Core.BlockDevices;
using static ShuruStore.Core.Nbd.NbdProtocol;

namespace ShuruStore.Core.Nbd;

/// <summary>What the client and server agreed on during negotiation.</summary>
internal sealed class NbdSession
{
    public bool StructuredReplies { get; set; }
    /// <summary>base:allocation was selected with NBD_OPT_SET_META_CONTEXT.</summary>
    public bool BaseAllocation { get; set; }
    public ushort TransmissionFlags { get; set; }
}

/// <summary>
/// The fixed-newstyle handshake and option haggling, up to the start of transmission.
/// Runs on the connection's own thread; every length the client sends is bounded before
/// anything is allocated for it. Input comes through the connection's buffered reader (a client
/// often sends its flags and first option in one go), and the replies to one option (GO answers
/// with three INFO replies and an ACK) leave in one send: the client waits for every round trip.
/// </summary>
internal sealed class NbdHandshake
{
    /// <summary>Largest option payload we read. INFO/GO carry a name of up to 4096 bytes plus
    /// info requests; meta-context queries are short. Anything larger is discarded unread.</summary>
    public const int MaxOptionLength = 64 * 1024;
    /// <summary>Strings (names, queries) are at most 4096 bytes per proto.md.</summary>
    private const int MaxString = 4096;

    private readonly Socket _socket;
    private readonly NbdRequestReader _reader;
    private readonly IBlockDevice _device;
    private readonly NbdServerOptions _options;
    private readonly Func<bool> _isStopping;
    private readonly NbdSession _session = new();
    private bool _noZeroes;
    // Option replies queued until the option is answered in full.
    private byte[] _pending = new byte[256];
    private int _pendingLength;

    /// <param name="socket">The client's connection.</param>
    /// <param name="reader">Reads from <paramref name="socket"/>; the connection keeps using it
    /// after the handshake, as the client may already have sent its first requests.</param>
    /// <param name="device">The export: its size, capabilities and block sizes are advertised.</param>
    /// <param name="options">Server limits (negotiation timeout, maximum payload).</param>
    /// <param name="isStopping">True once the server stops: options get ERR_SHUTDOWN.</param>
    public NbdHandshake(Socket socket, NbdRequestReader reader, IBlockDevice device, NbdServerOptions options, Func<bool> isStopping)
    {
        _socket = socket;
        _reader = reader;
        _device = device;
        _options = options;
        _isStopping = isStopping;
    }

    /// <summary>Why negotiation ended without a session (for the event log).</summary>
    public string? FailureReason { get; private set; }

    /// <summary>Runs the handshake. Returns the session when the client entered transmission,
    /// or null when the connection must be closed (abort, protocol violation, peer gone).</summary>
    public NbdSession? Run()
    {
        Span<byte> hello = stackalloc byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(hello, NbdMagic);
        BinaryPrimitives.WriteUInt64BigEndian(hello[8..], IHaveOpt);
        BinaryPrimitives.WriteUInt16BigEndian(hello[16..], FlagFixedNewstyle | FlagNoZeroes);
        if (!NbdSocketIO.WriteAll(_socket, hello)) return Fail("client went away before the greeting");

        Span<byte> cflags = stackalloc byte[4];
        if (!_reader.ReadExact(cflags)) return Fail("client went away before sending its flags");
        uint clientFlags = BinaryPrimitives.ReadUInt32BigEndian(cflags);
        if ((clientFlags & ~ClientKnownFlags) != 0)
            return Fail($"client flags 0x{clientFlags:x} carry unknown bits; closing as proto.md requires");
        if ((clientFlags & ClientFixedNewstyle) == 0)
            return Fail("client does not speak fixed newstyle (the only style served)");
        _noZeroes = (clientFlags & ClientNoZeroes) != 0;

        Span<byte> header = stackalloc byte[16];
        while (true)
        {
            if (!FlushReplies()) return Fail("client went away");
            if (!_reader.ReadExact(header)) return Fail("client went away during option negotiation");
            ulong magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            uint option = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
            if (magic != IHaveOpt) return Fail($"bad option magic 0x{magic:x}");

            if (length > MaxOptionLength)
            {
                if (!_reader.Discard(length))
                    return Fail("client went away while an oversized option was discarded");
                if (option == OptExportName)
                    return Fail($"NBD_OPT_EXPORT_NAME of {length} bytes is too long (no error reply exists for it)");
                ReplyError(option, RepErrTooBig, $"option data of {length} bytes exceeds the {MaxOptionLength}-byte limit");
                continue;
            }
            byte[] data = new byte[length];
            if (!_reader.ReadExact(data)) return Fail("client went away while sending option data");

            if (_isStopping())
            {
                // Shutting down: refuse politely so the client does not retry blindly.
                ReplyError(option, RepErrShutdown, "server is shutting down");
                FlushReplies();
                return Fail("server is shutting down");
            }

            switch (option)
            {
                case OptExportName:
                {
                    string name = Encoding.UTF8.GetString(data);
                    if (!IsOurExport(name)) return Fail($"NBD_OPT_EXPORT_NAME asked for unknown export '{name}'");
                    _session.TransmissionFlags = ComputeTransmissionFlags();
                    Span<byte> reply = stackalloc byte[10 + 124];
                    reply.Clear();
                    BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)_device.Size);
                    BinaryPrimitives.WriteUInt16BigEndian(reply[8..], _session.TransmissionFlags);
                    int n = _noZeroes ? 10 : 134;
                    if (!NbdSocketIO.WriteAll(_socket, reply[..n])) return Fail("client went away");
                    return _session;
                }
                case OptAbort:
                    ReplyAck(option);
                    FlushReplies();
                    return Fail("client aborted negotiation");
                case OptList:
                    if (length != 0)
                    {
                        ReplyError(option, RepErrInvalid, "NBD_OPT_LIST carries no data");
                        break;
                    }
                    Reply(option, RepServer, NameBlob(_options.ExportName));
                    ReplyAck(option);
                    break;
                case OptStartTls:
                    ReplyError(option, RepErrPolicy, "TLS is not configured on this server");
                    break;
                case OptInfo:
                case OptGo:
                    if (HandleInfo(option, data))
                        return FlushReplies() ? _session : Fail("client went away");
                    break;
                case OptStructuredReply:
                    if (length != 0)
                    {
                        ReplyError(option, RepErrInvalid, "NBD_OPT_STRUCTURED_REPLY carries no data");
                        break;
                    }
                    _session.StructuredReplies = true;
                    ReplyAck(option);
                    break;
                case OptListMetaContext:
                case OptSetMetaContext:
                    HandleMetaContext(option, data);
                    break;
                default:
                    // Includes NBD_OPT_EXTENDED_HEADERS: 32-bit headers are all we speak.
                    ReplyError(option, RepErrUnsup, $"option {option} is not supported");
                    break;
            }
        }
    }

    /// <summary>Answers INFO or GO; true when a GO succeeded (transmission starts).</summary>
    private bool HandleInfo(uint option, byte[] data)
    {
        // u32 name length, name, u16 count, count x u16
        if (data.Length < 6) return Err(RepErrInvalid, "NBD_OPT_INFO/GO data too short");
        uint nameLen = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLen > MaxString || nameLen > data.Length - 6) return Err(RepErrInvalid, "export name length is inconsistent with the option length");
        string name = Encoding.UTF8.GetString(data, 4, (int)nameLen);
        int pos = 4 + (int)nameLen;
        int count = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos));
        pos += 2;
        if (data.Length - pos != count * 2) return Err(RepErrInvalid, "information request count is inconsistent with the option length");
        if (!IsOurExport(name)) return Err(RepErrUnknown, $"unknown export '{name}'");

        bool wantName = false, wantDescription = false;
        for (int i = 0; i < count; i++)
        {
            ushort req = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos + 2 * i));
            if (req == InfoName) wantName = true;
            else if (req == InfoDescription) wantDescription = true;
        }

        _session.TransmissionFlags = ComputeTransmissionFlags();
        Span<byte> info = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info, InfoExport);
        BinaryPrimitives.WriteUInt64BigEndian(info[2..], (ulong)_device.Size);
        BinaryPrimitives.WriteUInt16BigEndian(info[10..], _session.TransmissionFlags);
        Reply(option, RepInfo, info);

        if (wantName) Reply(option, RepInfo, InfoString(InfoName, _options.ExportName));
        if (wantDescription && _options.Description is { } d) Reply(option, RepInfo, InfoString(InfoDescription, d));

        // Block sizes are always sent: proto.md allows it unasked, and it tells every client
        // the largest request we serve.
        Span<byte> bs = stackalloc byte[14];
        var (min, preferred, max) = BlockSizes();
        BinaryPrimitives.WriteUInt16BigEndian(bs, InfoBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(bs[2..], min);
        BinaryPrimitives.WriteUInt32BigEndian(bs[6..], preferred);
        BinaryPrimitives.WriteUInt32BigEndian(bs[10..], max);
        Reply(option, RepInfo, bs);
        ReplyAck(option);
        return option == OptGo;

        bool Err(uint type, string message)
        {
            ReplyError(option, type, message);
            return false;
        }
    }

    /// <summary>Minimum 1 (we accept any alignment), preferred from the device, maximum the
    /// payload limit.</summary>
    internal (uint Min, uint Preferred, uint Max) BlockSizes()
    {
        uint max = (uint)_options.MaxPayload;
        uint preferred = (uint)Math.Clamp(_device.PreferredBlockSize, 512, 32 * 1024 * 1024);
        if (!uint.IsPow2(preferred)) preferred = 4096;
        if (preferred > max) preferred = max;
        return (1, preferred, max);
    }

    private void HandleMetaContext(uint option, byte[] data)
    {
        bool set = option == OptSetMetaContext;
        if (set && !_session.StructuredReplies)
        {
            ReplyError(option, RepErrInvalid, "NBD_OPT_SET_META_CONTEXT requires structured replies first");
            return;
        }
        // u32 name length, name, u32 query count, queries (u32 length, string)
        if (data.Length < 8) { ReplyError(option, RepErrInvalid, "meta context data too short"); return; }
        uint nameLen = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLen > MaxString || nameLen > data.Length - 8) { ReplyError(option, RepErrInvalid, "export name length is inconsistent with the option length"); return; }
        string name = Encoding.UTF8.GetString(data, 4, (int)nameLen);
        int pos = 4 + (int)nameLen;
        uint count = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
        pos += 4;
        var queries = new List<string>();
        for (uint i = 0; i < count; i++)
        {
            if (data.Length - pos < 4) { ReplyError(option, RepErrInvalid, "meta context query list is truncated"); return; }
            uint qlen = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            pos += 4;
            if (qlen > MaxString || qlen > data.Length - pos) { ReplyError(option, RepErrInvalid, "meta context query length is inconsistent with the option length"); return; }
            queries.Add(Encoding.UTF8.GetString(data, pos, (int)qlen));
            pos += (int)qlen;
        }
        if (pos != data.Length) { ReplyError(option, RepErrInvalid, "trailing bytes after meta context queries"); return; }
        if (!IsOurExport(name)) { ReplyError(option, RepErrUnknown, $"unknown export '{name}'"); return; }

        bool match = set
            ? queries.Contains(BaseAllocation)
            : count == 0 || queries.Exists(q => q == BaseAllocation || q == "base:");
        if (set) _session.BaseAllocation = match;
        if (match)
        {
            byte[] ctx = Encoding.UTF8.GetBytes(BaseAllocation);
            byte[] reply = new byte[4 + ctx.Length];
            BinaryPrimitives.WriteUInt32BigEndian(reply, BaseAllocationId);
            ctx.CopyTo(reply, 4);
            Reply(option, RepMetaContext, reply);
        }
        ReplyAck(option);
    }

    internal ushort ComputeTransmissionFlags() => ComputeTransmissionFlags(_device.Capabilities, _session.StructuredReplies);

    internal static ushort ComputeTransmissionFlags(BlockDeviceCapabilities caps, bool structured)
    {
        ushort f = TFlagHasFlags;
        bool ro = (caps & BlockDeviceCapabilities.ReadOnly) != 0;
        if (ro) f |= TFlagReadOnly;
        if ((caps & BlockDeviceCapabilities.Flush) != 0) f |= TFlagSendFlush;
        if (!ro && (caps & BlockDeviceCapabilities.Fua) != 0) f |= TFlagSendFua;
        if (!ro && (caps & BlockDeviceCapabilities.Trim) != 0) f |= TFlagSendTrim;
        if (!ro && (caps & BlockDeviceCapabilities.WriteZeroes) != 0)
        {
            f |= TFlagSendWriteZeroes;
            if ((caps & BlockDeviceCapabilities.FastZero) != 0) f |= TFlagSendFastZero;
        }
        if (structured) f |= TFlagSendDf;
        if ((caps & BlockDeviceCapabilities.Cache) != 0) f |= TFlagSendCache;
        if ((caps & BlockDeviceCapabilities.MultiConnection) != 0) f |= TFlagCanMultiConn;
        return f;
    }

    private bool IsOurExport(string name) => name.Length == 0 || name == _options.ExportName;

    private static byte[] NameBlob(string name)
    {
        byte[] n = Encoding.UTF8.GetBytes(name);
        byte[] b = new byte[4 + n.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)n.Length);
        n.CopyTo(b, 4);
        return b;
    }

    private static byte[] InfoString(ushort type, string s)
    {
        byte[] n = Encoding.UTF8.GetBytes(s);
        if (n.Length > MaxString) n = n[..MaxString];
        byte[] b = new byte[2 + n.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b, type);
        n.CopyTo(b, 2);
        return b;
    }

    private void ReplyAck(uint option) => Reply(option, RepAck, ReadOnlySpan<byte>.Empty);

    private void ReplyError(uint option, uint type, string message) =>
        Reply(option, type, Encoding.UTF8.GetBytes(message));

    /// <summary>Queues one option reply; <see cref="FlushReplies"/> sends the queue.</summary>
    private void Reply(uint option, uint type, ReadOnlySpan<byte> data)
    {
        int size = 20 + data.Length;
        if (_pendingLength + size > _pending.Length)
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingLength + size));
        var buf = _pending.AsSpan(_pendingLength, size);
        BinaryPrimitives.WriteUInt64BigEndian(buf, OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(buf[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(buf[12..], type);
        BinaryPrimitives.WriteUInt32BigEndian(buf[16..], (uint)data.Length);
        data.CopyTo(buf[20..]);
        _pendingLength += size;
    }

    /// <summary>Sends the queued replies; false when the client went away.</summary>
    private bool FlushReplies()
    {
        if (_pendingLength == 0) return true;
        bool ok = NbdSocketIO.WriteAll(_socket, _pending.AsSpan(0, _pendingLength));
        _pendingLength = 0;
        return ok;
    }

    private NbdSession? Fail(string reason)
    {
        FailureReason = reason;
        return null;
    }
}
