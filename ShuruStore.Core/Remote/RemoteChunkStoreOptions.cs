namespace ShuruStore.Core.Remote;

/// <summary>
/// How a <see cref="RemoteChunkStore"/> fetches and keeps chunks. Holds no endpoint or
/// credentials, so it is safe to print.
/// </summary>
/// <remarks>
/// Rules, and why:
/// <list type="bullet">
/// <item>A read that misses the local cache fetches just its chunk (one ranged GET of 64 KiB),
/// unless the chunk before it in pack order was fetched too: then the reader is going through
/// the disk in order, and the rest of its fetch group (<see cref="GroupChunks"/> chunks, 1 MiB)
/// comes in one ranged GET, with <see cref="ReadaheadGroups"/> groups fetched ahead of it. A
/// GET costs about the same whether it carries 64 KiB or 1 MiB, so sequential reads need large
/// ranges and many in flight, and random reads small ones.</item>
/// <item>At most <see cref="MaxPrefetches"/> read-ahead fetches are in flight; a read-ahead that
/// finds no free slot is dropped, never queued (the reader fetches that group itself when it
/// gets there). Fetches a reader waits for are as many as the readers waiting.</item>
/// <item><see cref="CacheLimitBytes"/> bounds the bytes of fetched chunks kept locally; past it,
/// chunks that were fetched and are located in the remote are deleted, least recently used
/// first (CLOCK). A chunk only this host has (written by the disk and not in the remote) is
/// never counted or removed, nor is a chunk a reader is fetching before it has read it. With a
/// limit, read-ahead is capped at half of it (at least one group): read-ahead the cache cannot
/// keep is evicted before the reader gets there and fetched twice.</item>
/// </list>
/// </remarks>
public sealed record RemoteChunkStoreOptions
{
    /// <summary>Chunks per ranged GET for a sequential reader (16: 1 MiB).</summary>
    public int GroupChunks { get; init; } = 16;

    /// <summary>Fetch groups kept in flight ahead of a sequential reader (32: 32 MiB).</summary>
    public int ReadaheadGroups { get; init; } = 32;

    /// <summary>Read-ahead fetches in flight at most.</summary>
    public int MaxPrefetches { get; init; } = 32;

    /// <summary>Bytes of fetched chunks kept in the local store at most; 0: no limit.</summary>
    public long CacheLimitBytes { get; init; }

    /// <summary>The defaults.</summary>
    public static RemoteChunkStoreOptions Default { get; } = new();

    /// <summary>Throws <see cref="ShuruStoreException"/> (<see cref="ShuruErrorKind.InvalidArgument"/>)
    /// when a value is out of range.</summary>
    public void Validate()
    {
        if (GroupChunks is < 1 or > 64)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(GroupChunks)} must be 1 to 64 (it is {GroupChunks})");
        if (ReadaheadGroups is < 0 or > 1024)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(ReadaheadGroups)} must be 0 to 1024 (it is {ReadaheadGroups})");
        if (MaxPrefetches is < 0 or > 1024)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(MaxPrefetches)} must be 0 to 1024 (it is {MaxPrefetches})");
        if (CacheLimitBytes < 0)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(CacheLimitBytes)} must not be negative (it is {CacheLimitBytes})");
    }
}
