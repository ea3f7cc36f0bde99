using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Maintenance;

/// <summary>What is wrong with a file (or a missing file) of a chunk store.</summary>
public enum StoreProblemKind
{
    /// <summary>An index names a chunk the store does not hold.</summary>
    Missing,
    /// <summary>A chunk file's content does not hash to its name, or it is longer than 64 KiB.</summary>
    Corrupt,
    /// <summary>A leftover temporary file of an interrupted chunk write (<c>.tmp-*</c>).</summary>
    TempFile,
    /// <summary>A chunk an interrupted garbage collection set aside (<c>.gc-*</c>).</summary>
    QuarantinedChunk,
    /// <summary>A file that is neither a chunk nor one of ours (never touched).</summary>
    UnknownFile,
    /// <summary>A registration whose process ended (killed, or stopped leaving a resumable state
    /// file): its state file is a root while it exists; repair removes the registration once the
    /// state file is gone.</summary>
    EndedRegistration,
    /// <summary>A given index (or one of its parents) names a parent index that does not exist:
    /// its chain stops there, and the chunks set only in the missing parent are lost to it.</summary>
    ParentIndexMissing,
}

/// <summary>One problem found by <see cref="StoreVerifier"/>.</summary>
/// <param name="Kind">What is wrong.</param>
/// <param name="Hash">The chunk concerned, when there is one.</param>
/// <param name="Path">The file concerned (for Missing, where it should be).</param>
/// <param name="Length">Size of the file in bytes (0 when missing).</param>
/// <param name="ReferencedBy">For Missing and Corrupt chunks reached from indexes: an index naming it;
/// for a missing parent index: the index naming it.</param>
/// <param name="Detail">A sentence saying what was found.</param>
/// <param name="Repaired">Whether the repair removed (or restored) the file.</param>
public sealed record StoreProblem(StoreProblemKind Kind, ChunkHash? Hash, string Path, long Length, string? ReferencedBy, string Detail, bool Repaired);
