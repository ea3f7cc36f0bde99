namespace ShuruStore.Core.Nbd;

/// <summary>Wire constants of the NBD protocol (doc/proto.md of NetworkBlockDevice/nbd).
/// Every integer on the wire is big-endian.</summary>
internal static class NbdProtocol
{
    public const ulong NbdMagic = 0x4e42444d41474943;       // "NBDMAGIC"
    public const ulong IHaveOpt = 0x49484156454F5054;       // "IHAVEOPT"
    public const ulong OptionReplyMagic = 0x3e889045565a9;
    public const uint RequestMagic = 0x25609513;
    public const uint SimpleReplyMagic = 0x67446698;
    public const uint StructuredReplyMagic = 0x668e33ef;

    // Handshake flags (server) and client flags.
    public const ushort FlagFixedNewstyle = 1 << 0;
    public const ushort FlagNoZeroes = 1 << 1;
    public const uint ClientFixedNewstyle = 1 << 0;
    public const uint ClientNoZeroes = 1 << 1;
    public const uint ClientKnownFlags = ClientFixedNewstyle | ClientNoZeroes;

    // Options.
    public const uint OptExportName = 1;
    public const uint OptAbort = 2;
    public const uint OptList = 3;
    public const uint OptStartTls = 5;
    public const uint OptInfo = 6;
    public const uint OptGo = 7;
    public const uint OptStructuredReply = 8;
    public const uint OptListMetaContext = 9;
    public const uint OptSetMetaContext = 10;
    public const uint OptExtendedHeaders = 11;

    // Option reply types.
    public const uint RepAck = 1;
    public const uint RepServer = 2;
    public const uint RepInfo = 3;
    public const uint RepMetaContext = 4;
    public const uint RepErrUnsup = 0x80000001;
    public const uint RepErrPolicy = 0x80000002;
    public const uint RepErrInvalid = 0x80000003;
    public const uint RepErrPlatform = 0x80000004;
    public const uint RepErrTlsReqd = 0x80000005;
    public const uint RepErrUnknown = 0x80000006;
    public const uint RepErrShutdown = 0x80000007;
    public const uint RepErrBlockSizeReqd = 0x80000008;
    public const uint RepErrTooBig = 0x80000009;

    // NBD_OPT_INFO / NBD_OPT_GO information types.
    public const ushort InfoExport = 0;
    public const ushort InfoName = 1;
    public const ushort InfoDescription = 2;
    public const ushort InfoBlockSize = 3;

    // Transmission flags.
    public const ushort TFlagHasFlags = 1 << 0;
    public const ushort TFlagReadOnly = 1 << 1;
    public const ushort TFlagSendFlush = 1 << 2;
    public const ushort TFlagSendFua = 1 << 3;
    public const ushort TFlagRotational = 1 << 4;
    public const ushort TFlagSendTrim = 1 << 5;
    public const ushort TFlagSendWriteZeroes = 1 << 6;
    public const ushort TFlagSendDf = 1 << 7;
    public const ushort TFlagCanMultiConn = 1 << 8;
    public const ushort TFlagSendCache = 1 << 10;
    public const ushort TFlagSendFastZero = 1 << 11;

    // Commands.
    public const ushort CmdRead = 0;
    public const ushort CmdWrite = 1;
    public const ushort CmdDisc = 2;
    public const ushort CmdFlush = 3;
    public const ushort CmdTrim = 4;
    public const ushort CmdCache = 5;
    public const ushort CmdWriteZeroes = 6;
    public const ushort CmdBlockStatus = 7;
    public const int CommandTypeCount = 8;

    // Command flags.
    public const ushort CmdFlagFua = 1 << 0;
    public const ushort CmdFlagNoHole = 1 << 1;
    public const ushort CmdFlagDf = 1 << 2;
    public const ushort CmdFlagReqOne = 1 << 3;
    public const ushort CmdFlagFastZero = 1 << 4;
    public const ushort CmdKnownFlags = 0x1F;

    // Structured reply.
    public const ushort ReplyFlagDone = 1 << 0;
    public const ushort ReplyTypeNone = 0;
    public const ushort ReplyTypeOffsetData = 1;
    public const ushort ReplyTypeOffsetHole = 2;
    public const ushort ReplyTypeBlockStatus = 5;
    public const ushort ReplyTypeError = 32769;
    public const ushort ReplyTypeErrorOffset = 32770;

    // Errors (the protocol's own numbers, equal to Linux errno values).
    public const uint EPERM = 1;
    public const uint EIO = 5;
    public const uint ENOMEM = 12;
    public const uint EINVAL = 22;
    public const uint ENOSPC = 28;
    public const uint EOVERFLOW = 75;
    public const uint ENOTSUP = 95;
    public const uint ESHUTDOWN = 108;

    // base:allocation states.
    public const uint StateHole = 1;
    public const uint StateZero = 2;

    public const string BaseAllocation = "base:allocation";
    /// <summary>Our id for base:allocation; any non-zero value the server chooses.</summary>
    public const uint BaseAllocationId = 1;

    public const int RequestHeaderSize = 28;
    public const int SimpleReplyHeaderSize = 16;
    public const int StructuredReplyHeaderSize = 20;

    public static string CommandName(int type) => type switch
    {
        CmdRead => "Read",
        CmdWrite => "Write",
        CmdDisc => "Disconnect",
        CmdFlush => "Flush",
        CmdTrim => "Trim",
        CmdCache => "Cache",
        CmdWriteZeroes => "WriteZeroes",
        CmdBlockStatus => "BlockStatus",
        _ => "Unknown",
    };
}
