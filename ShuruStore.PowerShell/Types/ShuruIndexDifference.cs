namespace ShuruStore.Commands;

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
