using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Small reads served on the connection's reader thread when nothing in them waits for a disk
/// (<see cref="INoWaitReader"/>): a dirty chunk is copied from memory, a zero chunk is zeros, a
/// stored chunk is read from its open, verified file only if its bytes are in the page cache,
/// and a chunk still in the base only if the base's bytes are (and it is queued for ingestion,
/// as a Read would). Anything else (a spilled chunk, a chunk not verified yet, a page-cache miss)
/// answers false, and the thread pool reads the range the ordinary way.
/// </summary>
public sealed partial class CowDisk : INoWaitReader
{
    public bool TryReadNoWait(long offset, Span<byte> buffer)
    {
        if (Volatile.Read(ref _disposed) != 0) return false;
        NoteClientIo();
        while (!buffer.IsEmpty)
        {
            long chunk = offset / CS;
            int inChunk = (int)(offset % CS);
            int n = Math.Min(buffer.Length, CS - inChunk);
            if (!TryReadPieceNoWait(chunk, inChunk, offset, buffer[..n])) return false;
            buffer = buffer[n..];
            offset += n;
        }
        return true;
    }

    private bool TryReadPieceNoWait(long chunk, int inChunk, long offset, Span<byte> dest)
    {
        ChunkHash? live;
        lock (Stripe(chunk))
        {
            if (_dirty.TryGetValue(chunk, out var dirty))
            {
                dirty.AsSpan(inChunk, dest.Length).CopyTo(dest);
                return true;
            }
            if (_spilledChunks.ContainsKey(chunk)) return false;
            live = _live[chunk];
        }
        if ((live ?? ParentEntry(chunk)) is { } hash)
        {
            if (!hash.IsZeroChunk) return (_store.Capabilities & ChunkStoreCapabilities.NoWaitReads) != 0 && _store.TryReadRangeNoWait(hash, inChunk, dest);
            dest.Clear();
            return true;
        }
        if (_base is null || chunk * CS >= _baseLength)
        {
            dest.Clear(); // nothing below: zeros
            return true;
        }
        if (offset + dest.Length > _baseLength || !TryReadBaseNoWait(offset, dest)) return false; // a short base's tail: Read
        if (!_readOnly) QueueIngestion(chunk);
        return true;
    }

    private bool TryReadBaseNoWait(long offset, Span<byte> dest) =>
        NoWaitReads.Pread(_base!, dest, offset) == NoWaitRead.Done;
}
