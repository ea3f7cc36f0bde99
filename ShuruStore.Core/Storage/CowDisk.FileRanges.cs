using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Warm reads sent from the chunk files themselves (<see cref="IFileRangeSource"/>): a range whose
/// every chunk is stored, verified and held open by the store goes out with sendfile, without
/// the two copies of a read into a buffer. Anything else in the range (a dirty or spilled chunk,
/// a chunk still in the base, a zero chunk, a chunk not verified yet) sends the whole range down
/// the ordinary Read path, which verifies, ingests and caches as before.
/// </summary>
public sealed partial class CowDisk : IFileRangeSource
{
    public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges)
    {
        if (_store is not IChunkFileSource files) return false;
        CheckOpen();
        NoteClientIo();
        while (length > 0)
        {
            long chunk = offset / CS;
            int inChunk = (int)(offset % CS);
            int n = Math.Min(length, CS - inChunk);
            ChunkHash? live;
            lock (Stripe(chunk))
            {
                if (_dirty.ContainsKey(chunk) || _spilledChunks.ContainsKey(chunk)) return false;
                live = _live[chunk];
            }
            if ((live ?? ParentEntry(chunk)) is not { IsZeroChunk: false } hash) return false;
            if (!files.TryLeaseRange(hash, inChunk, n, out var range)) return false;
            ranges.Add(range);
            offset += n;
            length -= n;
        }
        return true;
    }
}
