namespace ShuruStore.Commands;

/// <summary>What is wrong with a chunk store file, as Test-ShuruChunkStore reports it.</summary>
public enum ShuruStoreProblemKind
{
    /// <summary>An index names a chunk the store does not hold.</summary>
    Missing,
    /// <summary>A chunk file does not hash to its name (or is longer than 64 KiB).</summary>
    Corrupt,
    /// <summary>A leftover temporary file of an interrupted chunk write.</summary>
    TempFile,
    /// <summary>A chunk an interrupted Remove-ShuruUnusedChunk set aside.</summary>
    QuarantinedChunk,
    /// <summary>A file that is not a chunk (left alone).</summary>
    UnknownFile,
    /// <summary>A registration whose process ended: its state file keeps its chunks while it
    /// exists; -Repair removes the registration once it keeps nothing.</summary>
    EndedRegistration,
    /// <summary>An index given (or one of its parents) names a parent index that does not exist:
    /// its chain stops there, and chunks set only in that parent are lost to it. Path is the
    /// missing index, ReferencedBy the index naming it. Nothing to repair in the store.</summary>
    ParentIndexMissing,
}
