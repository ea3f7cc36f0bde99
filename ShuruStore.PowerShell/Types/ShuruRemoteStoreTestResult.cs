namespace ShuruStore.Commands;

/// <summary>What Test-ShuruChunkStore found in a remote store (-CasPath s3://…).</summary>
public sealed class ShuruRemoteStoreTestResult
{
    /// <summary>The remote store.</summary>
    public required string CasPath { get; init; }
    /// <summary>No fault: every published checkpoint is complete and every chunk read was intact.</summary>
    public bool IsHealthy { get; init; }
    /// <summary>Published indexes checked.</summary>
    public int IndexesChecked { get; init; }
    /// <summary>Packs checked.</summary>
    public long PacksChecked { get; init; }
    /// <summary>Chunks read and hashed.</summary>
    public long ChunksChecked { get; init; }
    /// <summary>Their bytes.</summary>
    public long BytesChecked { get; init; }
    /// <summary>Problems that make a checkpoint unreadable.</summary>
    public int Faults { get; init; }
    /// <summary>Notes (unreferenced packs, abandoned uploads).</summary>
    public int Notes { get; init; }
    /// <summary>Every problem and note.</summary>
    public ShuruRemoteProblem[] Problems { get; init; } = [];
    /// <summary>How long it took.</summary>
    public TimeSpan Duration { get; init; }
}
