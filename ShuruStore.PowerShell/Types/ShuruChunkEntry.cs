namespace ShuruStore.Commands;

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
