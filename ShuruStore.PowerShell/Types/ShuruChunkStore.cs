namespace ShuruStore.Commands;

/// <summary>A chunk store as Get-ShuruChunkStore shows it.</summary>
public sealed class ShuruChunkStore
{
    /// <summary>The store directory (the one holding <c>chunks/</c>).</summary>
    public required string Path { get; init; }
    public required long ChunkCount { get; init; }
    /// <summary>Bytes held by chunk files.</summary>
    public required long TotalBytes { get; init; }
    /// <summary>True when the well-known all-zero chunk is stored (shuru reads it from disk).</summary>
    public required bool HasZeroChunk { get; init; }
    /// <summary>Leftover temporary files of interrupted writes (never valid chunks).</summary>
    public required long TemporaryFiles { get; init; }
    /// <summary>Who uses the store: servers and imports in any process while they run, and ended
    /// registrations (a killed server, or a stopped one whose state file keeps its disk resumable).</summary>
    public ShuruStoreUser[] Users { get; init; } = [];
    /// <summary>How many of <see cref="Users"/> are running now.</summary>
    public int LiveUsers => Users.Count(u => u.IsAlive);
}
