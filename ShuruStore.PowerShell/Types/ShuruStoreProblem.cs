namespace ShuruStore.Commands;

/// <summary>One problem Test-ShuruChunkStore found.</summary>
public sealed class ShuruStoreProblem
{
    /// <summary>What is wrong.</summary>
    public required ShuruStoreProblemKind Kind { get; init; }
    /// <summary>The chunk concerned, when there is one.</summary>
    public string? Hash { get; init; }
    /// <summary>The file concerned (for a missing chunk, where it should be).</summary>
    public required string Path { get; init; }
    /// <summary>Size of the file (0 when missing).</summary>
    public long Length { get; init; }
    /// <summary>An index naming the chunk, when indexes were given (for a missing parent index:
    /// the index naming it).</summary>
    public string? ReferencedBy { get; init; }
    /// <summary>What was found.</summary>
    public required string Detail { get; init; }
    /// <summary>Whether -Repair removed (or, for a set-aside chunk, restored) the file.</summary>
    public bool Repaired { get; init; }
}
