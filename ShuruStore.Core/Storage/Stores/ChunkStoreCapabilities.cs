namespace ShuruStore.Core.Storage;

/// <summary>The fast paths a chunk store offers beyond the verified reads and batch writes every
/// store has. A disk asks once, when it opens, and never looks for a fast path by type.</summary>
[Flags]
public enum ChunkStoreCapabilities
{
    /// <summary>Only the copying, verifying reads.</summary>
    None = 0,
    /// <summary><see cref="IChunkStore.TryReadRangeNoWait"/> can answer from memory or the page
    /// cache, so small reads are served on the connection's reader thread.</summary>
    NoWaitReads = 1 << 0,
    /// <summary><see cref="IChunkStore.TryLeaseRange"/> can lend a verified local chunk file, so
    /// large reads leave with sendfile.</summary>
    FileRanges = 1 << 1,
}
