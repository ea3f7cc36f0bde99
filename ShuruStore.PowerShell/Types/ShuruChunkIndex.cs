namespace ShuruStore.Commands;

/// <summary>A checkpoint index file as Get-ShuruChunkIndex and Save-ShuruCheckpoint show it.</summary>
public sealed class ShuruChunkIndex
{
    /// <summary>The index file (alias property IndexPath, so an index binds to -IndexPath).</summary>
    public required string Path { get; init; }

    /// <summary>The file name of the index, as tables show it.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>Size of the disk in bytes.</summary>
    public required long DiskSize { get; init; }

    /// <summary>Number of 64 KiB chunk entries.</summary>
    public required long ChunkCount { get; init; }

    /// <summary>Entries this index sets (a hash here, including explicit zero chunks).</summary>
    public required long ChunksSetHere { get; init; }

    /// <summary>Entries set here to the well-known all-zero chunk (zeroed or trimmed ranges).</summary>
    public required long ZeroChunks { get; init; }

    /// <summary>Entries left <c>ZERO</c> here but provided by a parent index or the base image.</summary>
    public required long ChunksInherited { get; init; }

    /// <summary>Entries no layer provides: they read as zeros.</summary>
    public required long ChunksUnset { get; init; }

    /// <summary>The index this checkpoint was taken from, if any, as an absolute path (a relative
    /// one stored in the file resolved as the module resolves it; see about_ShuruStore).</summary>
    public string? ParentPath { get; init; }

    /// <summary>The file name of the parent index, as tables show it; null without a parent.</summary>
    public string? Parent => ParentPath is null ? null : System.IO.Path.GetFileName(ParentPath);

    /// <summary>The base image the index names (the index file's "fallback"; alias property
    /// FallbackPath), as an absolute path; null when the index names none.</summary>
    public string? BaseImagePath { get; init; }

    /// <summary>The chain of index files, this one first, then parents nearest first, up to a
    /// missing parent.</summary>
    public required string[] Chain { get; init; }

    /// <summary>The parent index the chain names but that does not exist, where the chain stops
    /// (shuru's checkpoint delete leaves such children); null when the chain is whole.</summary>
    public string? MissingParentPath { get; init; }

    /// <summary>The index of the chain that names <see cref="MissingParentPath"/>.</summary>
    public string? MissingParentNamedBy { get; init; }

    /// <summary>True when every parent the chain names exists.</summary>
    public bool IsChainComplete => MissingParentPath is null;

    /// <summary>How many index files the chain has (this one included).</summary>
    public int Depth => Chain.Length;

    /// <summary>Size of the index file in bytes.</summary>
    public long FileSize { get; init; }

    /// <summary>When the index file was last written.</summary>
    public DateTime LastWriteTime { get; init; }

    /// <inheritdoc />
    public override string ToString() => Path;
}

/// <summary>Which layer of a chain provides a chunk.</summary>
public enum ShuruChunkLayer
{
    /// <summary>The index itself names the chunk.</summary>
    Index,
    /// <summary>A parent index names it.</summary>
    Parent,
    /// <summary>The base image provides it (ingested lazily on first read).</summary>
    Base,
    /// <summary>No layer provides it: it reads as zeros.</summary>
    Zero,
}

/// <summary>One 64 KiB entry of an index, resolved through its chain.</summary>
public sealed class ShuruChunkEntry
{
    /// <summary>The chunk number.</summary>
    public required long Chunk { get; init; }

    /// <summary>Byte offset of the chunk on the disk.</summary>
    public required long Offset { get; init; }

    /// <summary>Bytes of the disk this chunk covers (64 KiB but for a short last chunk).</summary>
    public required int Length { get; init; }

    /// <summary>The chunk's BLAKE3 name, or null when the base image or zeros provide it.</summary>
    public string? Hash { get; init; }

    /// <summary>The layer that provides the chunk.</summary>
    public required ShuruChunkLayer Layer { get; init; }

    /// <summary>The file of that layer (index or base image); null for zeros.</summary>
    public string? Source { get; init; }

    /// <summary>True when the chunk is the well-known all-zero chunk.</summary>
    public bool IsZeroChunk { get; init; }

    /// <summary>The index the entry was read from.</summary>
    public required string IndexPath { get; init; }
}

/// <summary>A contiguous byte range where two indexes differ.</summary>
public sealed class ShuruIndexDifference
{
    /// <summary>First differing byte.</summary>
    public required long Offset { get; init; }

    /// <summary>Length of the range in bytes.</summary>
    public required long Length { get; init; }

    /// <summary>First differing chunk.</summary>
    public required long FirstChunk { get; init; }

    /// <summary>Number of chunks in the range.</summary>
    public required long ChunkCount { get; init; }

    /// <summary>The reference index.</summary>
    public required string ReferencePath { get; init; }

    /// <summary>The difference index.</summary>
    public required string DifferencePath { get; init; }
}

/// <summary>Totals of a comparison of two indexes (Compare-ShuruChunkIndex -Summary).</summary>
public sealed class ShuruIndexComparison
{
    public required string ReferencePath { get; init; }
    public required string DifferencePath { get; init; }
    /// <summary>The larger of the two disk sizes.</summary>
    public required long DiskSize { get; init; }
    public required long DifferentChunks { get; init; }
    public required long DifferentBytes { get; init; }
    public required int RangeCount { get; init; }
    public required ShuruIndexDifference[] Ranges { get; init; }
}

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

/// <summary>A registration in a chunk store (<c>&lt;cas&gt;/leases/</c>).</summary>
public sealed class ShuruStoreUser
{
    /// <summary>server, import or writer.</summary>
    public required string Kind { get; init; }
    /// <summary>The server's name (or the index an import writes).</summary>
    public string? Name { get; init; }
    /// <summary>True while its process runs and holds the registration.</summary>
    public required bool IsAlive { get; init; }
    /// <summary>Its chunks are kept by every collection: it is alive, or its state file still exists.</summary>
    public required bool KeepsChunks { get; init; }
    public required int ProcessId { get; init; }
    public required string HostName { get; init; }
    /// <summary>When it registered.</summary>
    public required DateTimeOffset Since { get; init; }
    public string? SocketPath { get; init; }
    public string? StatePath { get; init; }
    public string? BootIndexPath { get; init; }
    public string? BaseImagePath { get; init; }
    /// <summary>The registration file.</summary>
    public required string LeasePath { get; init; }

    internal static ShuruStoreUser From(Core.Storage.StoreRegistration r) => new()
    {
        Kind = r.Kind, Name = r.Name, IsAlive = r.IsAlive, KeepsChunks = r.IsRoot, ProcessId = r.ProcessId, HostName = r.HostName,
        Since = r.Since, SocketPath = r.SocketPath, StatePath = r.StatePath, BootIndexPath = r.BootIndexPath,
        BaseImagePath = r.BaseImagePath, LeasePath = r.LeasePath,
    };
}
