namespace ShuruStore.Core.Nbd;

/// <summary>A point-in-time snapshot of a server's counters.</summary>
public sealed record NbdServerStatistics(
    int ActiveConnections,
    long TotalConnections,
    long BytesRead,
    long BytesWritten,
    IReadOnlyDictionary<string, long> Requests,
    long Errors,
    IReadOnlyList<NbdConnectionStatistics> Connections)
{
    /// <summary>Total requests of every type.</summary>
    public long TotalRequests => Requests.Values.Sum();
}

/// <summary>A point-in-time snapshot of one open connection's counters.</summary>
public sealed record NbdConnectionStatistics(
    long Id,
    DateTimeOffset OpenedAt,
    bool Negotiated,
    bool StructuredReplies,
    long BytesRead,
    long BytesWritten,
    IReadOnlyDictionary<string, long> Requests,
    long Errors);
