using Microsoft.Win32.SafeHandles;
using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Reads sent from files (<see cref="IFileRangeSource"/>) instead of copied through a buffer:
/// a chunk that is stored, verified and held open by the store goes out from its chunk file; a
/// chunk still only in the base goes out from the base image (and is queued for ingestion, as a
/// Read would). Anything else in the range (a dirty or spilled chunk, a zero chunk, a chunk not
/// verified yet, the short tail of a base) sends the whole range down the ordinary Read path,
/// which verifies, ingests and caches as before.
/// </summary>
public sealed partial class CowDisk : IFileRangeSource
{
    private BaseFileLease? _baseLease;

    public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges)
    {
        CheckOpen();
        NoteClientIo();
        bool files = (_store.Capabilities & ChunkStoreCapabilities.FileRanges) != 0;
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
            if ((live ?? ParentEntry(chunk)) is { } hash)
            {
                if (hash.IsZeroChunk || !files || !_store.TryLeaseRange(hash, inChunk, n, out var range)) return false;
                ranges.Add(range);
            }
            else
            {
                if (!TryAddBaseRange(offset, n, ranges)) return false;
                if (!_readOnly) QueueIngestion(chunk);
            }
            offset += n;
            length -= n;
        }
        return true;
    }

    /// <summary>Adds base bytes [offset, +length), merged with the range before when it is the
    /// base's and adjacent (a cold 256 KiB read is one sendfile, not four).</summary>
    private bool TryAddBaseRange(long offset, int length, List<FileRange> ranges)
    {
        if (_base is null || offset + length > _baseLength) return false; // past the base: zeros, via Read
        var lease = _baseLease ??= new BaseFileLease(_base, _baseLength);
        if (ranges.Count > 0 && ranges[^1] is { } last && ReferenceEquals(last.Lease, lease)
            && last.FileOffset + last.Length == offset && last.Length + (long)length <= int.MaxValue)
        {
            ranges[^1] = last with { Length = last.Length + length };
            return true;
        }
        if (!lease.TryTake()) return false;
        var range = new FileRange(lease.Descriptor, offset, length, lease);
        ranges.Add(range); // the caller releases it, also when this returns false
        // A base that already shrank goes to Read, which answers EIO and keeps the connection.
        return lease.StillValid(range);
    }

    /// <summary>The base image lent for sendfile. Read says EIO when the base has become shorter
    /// than when the disk opened. So the length is checked before a range is lent (such a read
    /// goes to Read and gets its EIO) and after it was sent (a base that shrank during the send
    /// ends the connection before the reply completes).</summary>
    private sealed class BaseFileLease(SafeFileHandle handle, long length) : IFileRangeLease
    {
        public int Descriptor { get; } = (int)handle.DangerousGetHandle();

        public bool TryTake()
        {
            bool added = false;
            try { handle.DangerousAddRef(ref added); }
            catch (ObjectDisposedException) { return false; }
            return added;
        }

        public bool MayChange => true;

        public bool StillValid(in FileRange range) =>
            FileStatusCalls.TryStat(Descriptor, out var now, out _) && now.Identity.Length >= length;

        public void Release(in FileRange range) => handle.DangerousRelease();
    }
}
