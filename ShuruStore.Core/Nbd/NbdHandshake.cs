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
/// anything is allocated for it.
/// </summary>
internal sealed class NbdHandshake
{
    /// <summary>Largest option payload we read. INFO/GO carry a name of up to 4096 bytes plus
    /// info requests; meta-context queries are short. Anything larger is discarded unread.</summary>
    public const int MaxOptionLength = 64 * 1024;
    /// <summary>Strings (names, queries) are at most 4096 bytes per proto.md.</summary>
    private const int MaxString = 4096;

    private readonly Socket _socket;
    private readonly IBlockDevice _device;
    private readonly NbdServerOptions _options;
    private readonly Func<bool> _isStopping;
    private readonly NbdSession _session = new();
    private bool _noZeroes;

    public NbdHandshake(Socket socket, IBlockDevice device, NbdServerOptions options, Func<bool> isStopping)
    {
        _socket = socket;
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
        if (!NbdSocketIO.ReadExact(_socket, cflags)) return Fail("client went away before sending its flags");
        uint clientFlags = BinaryPrimitives.ReadUInt32BigEndian(cflags);
        if ((clientFlags & ~ClientKnownFlags) != 0)
            return Fail($"client flags 0x{clientFlags:x} carry unknown bits; closing as proto.md requires");
        if ((clientFlags & ClientFixedNewstyle) == 0)
            return Fail("client does not speak fixed newstyle (the only style served)");
        _noZeroes = (clientFlags & ClientNoZeroes) != 0;

        Span<byte> header = stackalloc byte[16];
        // Allocated once, outside the loop: a stackalloc per oversized option would grow the
        // stack with every option a hostile client sends.
        byte[]? discardScratch = null;
        while (true)
        {
            if (!NbdSocketIO.ReadExact(_socket, header)) return Fail("client went away during option negotiation");
            ulong magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            uint option = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
            if (magic != IHaveOpt) return Fail($"bad option magic 0x{magic:x}");

            if (length > MaxOptionLength)
            {
                discardScratch ??= new byte[4096];
                if (!NbdSocketIO.Discard(_socket, length, discardScratch))
                    return Fail("client went away while an oversized option was discarded");
                if (option == OptExportName)
                    return Fail($"NBD_OPT_EXPORT_NAME of {length} bytes is too long (no error reply exists for it)");
                if (!ReplyError(option, RepErrTooBig, $"option data of {length} bytes exceeds the {MaxOptionLength}-byte limit"))
                    return Fail("client went away");
                continue;
            }
            byte[] data = new byte[length];
            if (!NbdSocketIO.ReadExact(_socket, data)) return Fail("client went away while sending option data");

            if (_isStopping())
            {
                // Shutting down: refuse politely so the client does not retry blindly.
                ReplyError(option, RepErrShutdown, "server is shutting down");
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
                    return Fail("client aborted negotiation");
                case OptList:
                    if (length != 0)
                    {
                        if (!ReplyError(option, RepErrInvalid, "NBD_OPT_LIST carries no data")) return Fail("client went away");
                        break;
                    }
                    if (!Reply(option, RepServer, NameBlob(_options.ExportName)) || !ReplyAck(option)) return Fail("client went away");
                    break;
                case OptStartTls:
                    if (!ReplyError(option, RepErrPolicy, "TLS is not configured on this server")) return Fail("client went away");
                    break;
                case OptInfo:
                case OptGo:
                {
                    var r = HandleInfo(option, data);
                    if (r == OptionOutcome.Closed) return Fail("client went away");
                    if (r == OptionOutcome.EnterTransmission) return _session;
                    break;
                }
                case OptStructuredReply:
                    if (length != 0)
                    {
                        if (!ReplyError(option, RepErrInvalid, "NBD_OPT_STRUCTURED_REPLY carries no data")) return Fail("client went away");
                        break;
                    }
                    _session.StructuredReplies = true;
                    if (!ReplyAck(option)) return Fail("client went away");
                    break;
                case OptListMetaContext:
                case OptSetMetaContext:
                    if (!HandleMetaContext(option, data)) return Fail("client went away");
                    break;
                default:
                    // Includes NBD_OPT_EXTENDED_HEADERS: 32-bit headers are all we speak.
                    if (!ReplyError(option, RepErrUnsup, $"option {option} is not supported")) return Fail("client went away");
                    break;
            }
        }
    }

    private enum OptionOutcome { Continue, EnterTransmission, Closed }

    private OptionOutcome HandleInfo(uint option, byte[] data)
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
        if (!Reply(option, RepInfo, info)) return OptionOutcome.Closed;

        if (wantName && !Reply(option, RepInfo, InfoString(InfoName, _options.ExportName))) return OptionOutcome.Closed;
        if (wantDescription && _options.Description is { } d && !Reply(option, RepInfo, InfoString(InfoDescription, d)))
            return OptionOutcome.Closed;

        // Block sizes are always sent: proto.md allows it unasked, and it tells every client
        // the largest request we serve.
        Span<byte> bs = stackalloc byte[14];
        var (min, preferred, max) = BlockSizes();
        BinaryPrimitives.WriteUInt16BigEndian(bs, InfoBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(bs[2..], min);
        BinaryPrimitives.WriteUInt32BigEndian(bs[6..], preferred);
        BinaryPrimitives.WriteUInt32BigEndian(bs[10..], max);
        if (!Reply(option, RepInfo, bs)) return OptionOutcome.Closed;

        if (!ReplyAck(option)) return OptionOutcome.Closed;
        return option == OptGo ? OptionOutcome.EnterTransmission : OptionOutcome.Continue;

        OptionOutcome Err(uint type, string message) =>
            ReplyError(option, type, message) ? OptionOutcome.Continue : OptionOutcome.Closed;
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

    private bool HandleMetaContext(uint option, byte[] data)
    {
        bool set = option == OptSetMetaContext;
        if (set && !_session.StructuredReplies)
            return ReplyError(option, RepErrInvalid, "NBD_OPT_SET_META_CONTEXT requires structured replies first");
        // u32 name length, name, u32 query count, queries (u32 length, string)
        if (data.Length < 8) return ReplyError(option, RepErrInvalid, "meta context data too short");
        uint nameLen = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLen > MaxString || nameLen > data.Length - 8) return ReplyError(option, RepErrInvalid, "export name length is inconsistent with the option length");
        string name = Encoding.UTF8.GetString(data, 4, (int)nameLen);
        int pos = 4 + (int)nameLen;
        uint count = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
        pos += 4;
        var queries = new List<string>();
        for (uint i = 0; i < count; i++)
        {
            if (data.Length - pos < 4) return ReplyError(option, RepErrInvalid, "meta context query list is truncated");
            uint qlen = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            pos += 4;
            if (qlen > MaxString || qlen > data.Length - pos) return ReplyError(option, RepErrInvalid, "meta context query length is inconsistent with the option length");
            queries.Add(Encoding.UTF8.GetString(data, pos, (int)qlen));
            pos += (int)qlen;
        }
        if (pos != data.Length) return ReplyError(option, RepErrInvalid, "trailing bytes after meta context queries");
        if (!IsOurExport(name)) return ReplyError(option, RepErrUnknown, $"unknown export '{name}'");

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
            if (!Reply(option, RepMetaContext, reply)) return false;
        }
        return ReplyAck(option);
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

    private bool ReplyAck(uint option) => Reply(option, RepAck, ReadOnlySpan<byte>.Empty);

    private bool ReplyError(uint option, uint type, string message) =>
        Reply(option, type, Encoding.UTF8.GetBytes(message));

    private bool Reply(uint option, uint type, ReadOnlySpan<byte> data)
    {
        byte[] buf = new byte[20 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(buf, OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(12), type);
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(16), (uint)data.Length);
        data.CopyTo(buf.AsSpan(20));
        return NbdSocketIO.WriteAll(_socket, buf);
    }

    private NbdSession? Fail(string reason)
    {
        FailureReason = reason;
        return null;
    }
}
