using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Optional surface of a chunk store that keeps chunks in local files: it can lend the open file
/// of a chunk so the NBD server sends the bytes with sendfile (<see cref="IFileRangeSource"/>).
/// A remote or in-memory store simply does not implement it, and reads take the copying path.
/// </summary>
public interface IChunkFileSource
{
    /// <summary>Leases the file holding bytes [<paramref name="offset"/>, +<paramref name="length"/>)
    /// of a chunk. False when the chunk's content is not known good as its file stands now
    /// (not verified in this process yet, changed since, deleted) or the file is shorter than the
    /// range: the caller reads the chunk the ordinary, verifying way instead.</summary>
    bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range);
}
