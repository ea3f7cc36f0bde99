namespace ShuruStore.Commands;

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
