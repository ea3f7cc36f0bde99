using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Hosting;

/// <summary>Everything needed to serve one disk: what to serve (a chunk-store disk or a flat
/// image) and where (a Unix socket). Mirrors shuru's start(rootfs, cas_dir, index, socket, size).</summary>
public sealed class DiskServerOptions
{
    /// <summary>The base image (shuru's rootfs_path): fallback layer, ingested lazily.</summary>
    public string? RootfsPath { get; init; }

    /// <summary>The chunk-store directory (holds <c>chunks/</c>).</summary>
    public string? CasPath { get; init; }

    /// <summary>Boot from this index if it exists; otherwise lazy mode on the base image. A
    /// published checkpoint (<c>s3://BUCKET/PREFIX/indexes/NAME.idx</c>) boots through
    /// <see cref="CasPath"/> as its local cache (see <see cref="Remote"/>).</summary>
    public string? IndexPath { get; init; }

    /// <summary>For a published checkpoint, or a local one whose chain reaches one: object-store
    /// limits (a read of uncached data fails with EIO within <c>ObjectStore.Deadline</c>),
    /// read-ahead and the local cache's size limit. Endpoint and credentials come from the AWS
    /// environment and profile, never from here.</summary>
    public RemoteCheckpointOptions Remote { get; init; } = RemoteCheckpointOptions.Default;

    /// <summary>Where the server listens.</summary>
    public required string SocketPath { get; init; }

    /// <summary>Grow the disk to this size (never shrinks). 0: keep the size.</summary>
    public long DiskSize { get; init; }

    /// <summary>Keep the live disk map durable in this file at every flush; resume from it.</summary>
    public string? StatePath { get; init; }

    /// <summary>Serve this raw image as a plain flat file (no chunk store).</summary>
    public string? ImagePath { get; init; }

    /// <summary>Refuse writes.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Bound on memory held by unsaved writes before chunks go to the store early.</summary>
    public long DirtyBudgetBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>The server's name, as registrations in the chunk store show it.</summary>
    public string? Name { get; init; }

    /// <summary>Payload memory the server may hold for requests in flight across all its clients
    /// (see <see cref="Nbd.NbdServerOptions.MaxPayloadMemory"/>); 0: sized for the machine.</summary>
    public long MaxPayloadMemory { get; init; }

    /// <summary>Export description shown to clients that ask (NBD_INFO_DESCRIPTION).</summary>
    public string? Description { get; init; }

    /// <summary>Flat image: large aligned writes go to the disk directly (O_DIRECT). Off unless
    /// SHURUSTORE_DIRECT_WRITES=1 (see <see cref="EngineEnvironment"/>).</summary>
    public bool DirectWrites { get; init; } = EngineEnvironment.DirectWrites;

    /// <summary>Chunk store: how published chunks are made durable.</summary>
    public ChunkDurabilityMode Durability { get; init; } = EngineEnvironment.Durability;

    /// <summary>Rounds of the process's warm-up rehearsal when this is its first disk (0: none).</summary>
    public int WarmUpRounds { get; init; } = EngineEnvironment.WarmUpRounds;

    /// <summary>Chunk store: the directory relative paths stored in the index chain are first
    /// resolved against (<see cref="CowDiskOptions.WorkingDirectory"/>); null: the process's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Chunk store: serve an index whose chain stops at a missing parent
    /// (<see cref="CowDiskOptions.AllowMissingParent"/>).</summary>
    public bool AllowMissingParent { get; init; }

    /// <summary>True when the options describe a flat image rather than a chunk-store disk.</summary>
    public bool IsFlat => ImagePath is not null;
}
