namespace ShuruStore.Commands;

/// <summary>Totals of Test-ShuruChunkStore -Summary.</summary>
public sealed class ShuruStoreTestResult
{
    /// <summary>The chunk store.</summary>
    public required string CasPath { get; init; }
    /// <summary>No missing and no corrupt chunk, and no given index whose chain names a parent
    /// index that does not exist.</summary>
    public bool IsHealthy { get; init; }
    /// <summary>Chunks verified.</summary>
    public long ChunksChecked { get; init; }
    /// <summary>Bytes re-hashed.</summary>
    public long BytesChecked { get; init; }
    /// <summary>Chunks named by the indexes but absent.</summary>
    public long Missing { get; init; }
    /// <summary>Chunks whose content does not match their name.</summary>
    public long Corrupt { get; init; }
    /// <summary>Leftover temporary files.</summary>
    public long TempFiles { get; init; }
    /// <summary>Chunks set aside by an interrupted collection.</summary>
    public long QuarantinedChunks { get; init; }
    /// <summary>Files that are not chunks.</summary>
    public long UnknownFiles { get; init; }
    /// <summary>Registrations whose process has ended (reported under Problems as EndedRegistration).</summary>
    public long EndedRegistrations { get; init; }
    /// <summary>Parent indexes named by the given chains that do not exist (reported under
    /// Problems as ParentIndexMissing).</summary>
    public long MissingParents { get; init; }
    /// <summary>Files -Repair removed or restored.</summary>
    public long Repaired { get; init; }
    /// <summary>The problems, as the cmdlet emits them without -Summary.</summary>
    public ShuruStoreProblem[] Problems { get; init; } = [];
    /// <summary>How long the check took.</summary>
    public TimeSpan Duration { get; init; }
}
