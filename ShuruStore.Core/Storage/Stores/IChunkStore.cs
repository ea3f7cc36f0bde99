using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// A content-addressed chunk store: chunks are immutable, a name always means the same bytes.
/// Every member is part of the contract, with no default bodies, so a store that wraps another
/// (a cache in front of a remote, a test hook) has to decide for each one whether it forwards
/// it; the easy way is to derive from <see cref="ForwardingChunkStore"/>. The fast paths a store
/// can offer are declared in <see cref="Capabilities"/>: a disk uses a fast path only when the
/// store declares it, and a store that does not declare one answers its method with false.
/// </summary>
public interface IChunkStore : IDisposable
{
    /// <summary>Which fast paths this store offers (<see cref="TryReadRangeNoWait"/>,
    /// <see cref="TryLeaseRange"/>).</summary>
    ChunkStoreCapabilities Capabilities { get; }

    /// <summary>Whether a chunk with this name is present (no content check).</summary>
    bool Contains(ChunkHash hash);

    /// <summary>Reads a chunk into <paramref name="destination"/> (at least 65536 bytes),
    /// zero-filling a short chunk up to 64 KiB. Returns false if the chunk is absent. The content
    /// is verified against the name: a mismatch throws <see cref="ShuruStoreException"/> with
    /// <see cref="ShuruErrorKind.ChunkCorrupt"/>.</summary>
    bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength);

    /// <summary>Reads <c>destination.Length</c> bytes at <paramref name="offset"/> within a chunk
    /// (zero-filled past a short chunk's end), verified like <see cref="TryRead"/>; a store may skip
    /// re-hashing a chunk it has verified and that has not changed since. False if absent.</summary>
    bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination);

    /// <summary>Reads a range as <see cref="TryReadRange"/> would, but only when that needs no
    /// disk or network I/O (a chunk already verified whose bytes are in the page cache). False
    /// when it would have to wait, or the store cannot tell: the caller then uses
    /// <see cref="TryReadRange"/>, and <paramref name="destination"/> is undefined. Only useful
    /// when <see cref="Capabilities"/> has <see cref="ChunkStoreCapabilities.NoWaitReads"/>.</summary>
    bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination);

    /// <summary>Leases the local file holding bytes [<paramref name="offset"/>, +<paramref name="length"/>)
    /// of a chunk, so the bytes can be sent with sendfile. False when the chunk's content is not
    /// known good as its file stands now (not verified yet, changed since, deleted), the file is
    /// shorter than the range, or the store keeps no local files: the caller reads the chunk the
    /// ordinary, verifying way instead. The caller releases a lease it got. Only useful when
    /// <see cref="Capabilities"/> has <see cref="ChunkStoreCapabilities.FileRanges"/>.</summary>
    bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range);

    /// <summary>Stores chunks under their names: the only way chunks enter a store.
    /// Write-once and idempotent: an existing chunk is never rewritten. A store may leave
    /// durability to the next <see cref="Sync"/>, so callers reference chunks (in an index or a
    /// journal) only after a Sync; a name only ever appears over complete content.
    /// <paramref name="stored"/>[i] becomes true once chunk i is present (created or already
    /// there). Returns how many this call created. A failure is thrown after the chunks that
    /// could be stored are; the others may be written again.
    /// <paramref name="syncSoon"/>: the caller will <see cref="Sync"/> these before long (a write
    /// stream that a FLUSH follows), so the store may start moving them to the disk right away.</summary>
    int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false);

    /// <summary>Makes every chunk written so far durable (including its name).</summary>
    void Sync();

    /// <summary>Names in the log of this store's registration (<see cref="StoreLease"/>): every
    /// name stored or relied on since the log last started. 0 for a store opened without one.</summary>
    long LoggedNames { get; }

    /// <summary>Starts the registration's log afresh with <paramref name="reliedOn"/>, the names
    /// its holder relies on now that no other root of the registration covers, so that what the
    /// holder stored and no longer uses can be collected (<see cref="StoreLease.Restart"/>). The
    /// caller holds back its own stores meanwhile. Nothing happens without a registration.</summary>
    void RestartLog(IReadOnlyCollection<ChunkHash> reliedOn);

    /// <summary>Names of every stored chunk.</summary>
    IEnumerable<ChunkHash> Enumerate();
}
