namespace ShuruStore.Commands;

/// <summary>One problem Test-ShuruChunkStore found in a remote store.</summary>
public sealed class ShuruRemoteProblem
{
    /// <summary>What is wrong (IndexInvalid, ParentMissing, MapMissing, MapInvalid, ChunkNotLocated,
    /// PackMissing, PackInvalid, ChunkDamaged; UnreferencedPack and StaleUpload are notes, not faults).</summary>
    public required string Kind { get; init; }
    /// <summary>The object at fault, s3://….</summary>
    public required string Uri { get; init; }
    /// <summary>The chunk concerned, if any.</summary>
    public string? Hash { get; init; }
    /// <summary>What was found.</summary>
    public required string Detail { get; init; }
    /// <summary>Whether it makes a published checkpoint unreadable.</summary>
    public bool IsFault { get; init; }
}
