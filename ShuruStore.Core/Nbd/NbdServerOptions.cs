namespace ShuruStore.Core.Nbd;

/// <summary>How an <see cref="NbdServer"/> listens and what it tells clients.</summary>
public sealed class NbdServerOptions
{
    /// <summary>Path of the Unix socket to create.</summary>
    public required string SocketPath { get; init; }

    /// <summary>Name of the single export. The empty name "" is accepted as an alias, as
    /// clients that do not name an export send it.</summary>
    public string ExportName { get; init; } = "export";

    /// <summary>Optional human-readable description (NBD_INFO_DESCRIPTION).</summary>
    public string? Description { get; init; }

    /// <summary>Largest READ/WRITE payload served (advertised as the maximum block size).
    /// Requests up to 32 MiB must be served for compatibility with qemu and libnbd.</summary>
    public int MaxPayload { get; init; } = 32 * 1024 * 1024;

    /// <summary>How long <see cref="NbdServer.Stop"/> waits for in-flight requests.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most clients served at once; further connections are closed at once. Each
    /// connection costs a thread and up to 64 MiB of requests in flight, so this bounds what
    /// clients can make the server hold.</summary>
    public int MaxConnections { get; init; } = 64;

    /// <summary>Payload memory the whole server may hold for requests in flight, across every
    /// connection (see <see cref="NbdMemoryBudget"/>); 0: sized for the machine (an eighth of
    /// its memory, between 64 MiB and 256 MiB).</summary>
    public long MaxPayloadMemory { get; init; }

    /// <summary>Payload bytes each connection may have in flight without drawing on
    /// <see cref="MaxPayloadMemory"/>: a client with small requests is served whatever others hold.</summary>
    public long ConnectionAllowance { get; init; } = 2L * 1024 * 1024;

    /// <summary>How long sending one reply may wait for a client that does not read: past it the
    /// connection is closed and what it held is freed.</summary>
    public TimeSpan ReplyWriteTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a WRITE payload that draws on <see cref="MaxPayloadMemory"/> may go
    /// without a byte arriving: past it the connection is closed and the memory freed, so clients
    /// that stop in the middle of large writes cannot hold the budget for good.</summary>
    public TimeSpan PayloadStallTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long a client may take between handshake messages before the server gives up
    /// on it (a client that connects and says nothing must not hold a thread forever).</summary>
    public TimeSpan NegotiationTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
