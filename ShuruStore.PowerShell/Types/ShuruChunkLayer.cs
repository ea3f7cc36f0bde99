namespace ShuruStore.Commands;

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
