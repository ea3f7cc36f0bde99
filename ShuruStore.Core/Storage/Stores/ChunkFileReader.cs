using System.Runtime.InteropServices;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Verified reads of chunk files. The first read of a chunk reads and hashes all of it; later
/// reads of a file unchanged since (same <see cref="FileIdentity"/>) read only the range asked
/// for. A verified file stays open (<see cref="ChunkHandleCache"/>), so a warm read is one pread
/// and one statx. A file altered, truncated, replaced or deleted under the store is caught (its
/// identity changes, or its link count drops to zero) and read again by name: damage is still
/// <see cref="ShuruErrorKind.ChunkCorrupt"/>, a deleted chunk still missing, never stale or
/// wrong data.
/// </summary>
internal sealed class ChunkFileReader : IDisposable
{
    /// <summary>Distinct chunks remembered as verified (16 GiB of chunks, ~16 MiB of memory).</summary>
    internal const int MaxRemembered = 1 << 18;

    private readonly string _chunksPath;
    /// <summary>The chunk directory as NUL-free UTF-8 with a trailing '/', so a read builds the
    /// file name on the stack instead of allocating a path string per read.</summary>
    private readonly byte[] _chunksDirUtf8;
    private readonly ChunkHandleCache _handles;
    /// <summary>Chunks verified in this process, with the identity of the file verified. Outlives
    /// the open file (the handle cache is smaller), so a chunk evicted from the cache costs an open
    /// when read again, not a 64 KiB read and a hash.</summary>
    private readonly BoundedChunkMap<FileIdentity> _verified = new(MaxRemembered);
    /// <summary>Chunks this process published or verified under their name: their content is
    /// right (written whole before it was named, or hashed), whatever file now holds it.</summary>
    private readonly BoundedChunkMap<byte> _knownGood = new(MaxRemembered);

    public ChunkFileReader(string chunksPath, int openChunkFiles)
    {
        _chunksPath = chunksPath;
        _chunksDirUtf8 = System.Text.Encoding.UTF8.GetBytes(chunksPath + "/");
        if (_chunksDirUtf8.AsSpan().Contains((byte)0))
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{Path.GetDirectoryName(chunksPath)}' has a NUL character in its path", chunksPath);
        _handles = new ChunkHandleCache(openChunkFiles);
    }

    /// <summary>Chunk files held open now.</summary>
    public int OpenFiles => _handles.Count;

    /// <summary>Path of a chunk's file. The name comes from a validated hash, never raw index text.</summary>
    public string PathOf(ChunkHash hash) => Path.Combine(_chunksPath, hash.ToString());

    /// <summary>Reads a whole chunk, verified.</summary>
    public bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength)
    {
        var whole = destination[..ChunkHasher.ChunkSize];
        if (_handles.TryAcquire(hash, out var file))
        {
            int length = (int)file.Identity.Length;
            bool served;
            try { served = ReadCached(file, whole[..length], 0); }
            finally { file.Release(); }
            if (served)
            {
                whole[length..].Clear();
                storedLength = length;
                return true;
            }
            _handles.Invalidate(hash, file);
        }
        return ReadByName(hash, 0, whole, out storedLength);
    }

    /// <summary>Reads a range of a chunk, verified (see the class remarks).</summary>
    public bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination)
    {
        if (_handles.TryAcquire(hash, out var file))
        {
            int stored = (int)Math.Clamp(file.Identity.Length - offset, 0, destination.Length);
            bool served;
            try { served = ReadCached(file, destination[..stored], offset); }
            finally { file.Release(); }
            if (served)
            {
                destination[stored..].Clear(); // a short chunk's tail reads as zeros
                return true;
            }
            _handles.Invalidate(hash, file);
        }
        return ReadByName(hash, offset, destination, out _);
    }

    /// <summary>A range of a cached, verified chunk file whose bytes are in the page cache
    /// (preadv2 with RWF_NOWAIT), checked after the read as <see cref="ReadCached"/> does. False
    /// for a chunk not held open, a page-cache miss, a short chunk's tail or a changed file.</summary>
    public bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination)
    {
        if (!_handles.TryAcquire(hash, out var file)) return false;
        try
        {
            if (offset + (long)destination.Length > file.Identity.Length) return false;
            return NoWaitReads.Pread(file.Descriptor, destination, offset) == NoWaitRead.Done && file.IsUnchanged();
        }
        finally { file.Release(); }
    }

    /// <summary>
    /// Lends the cached, verified file of a chunk for sendfile. Checked with one statx before
    /// (a file changed since it was verified is not lent: the caller's ordinary read re-verifies
    /// it and answers EIO if it is damaged) and by the server after sending
    /// (<see cref="OpenChunkFile.StillValid"/>), the same two-sided rule as a cached pread.
    /// </summary>
    public bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range)
    {
        range = default;
        if (!_handles.TryAcquire(hash, out var file)) return false;
        if (offset + (long)length > file.Identity.Length || !file.IsUnchanged())
        {
            file.Release();
            return false;
        }
        range = new FileRange(file.Descriptor, offset, length, file);
        return true;
    }

    /// <summary>
    /// A chunk the store just wrote is known good: its bytes came from the buffer whose hash is its
    /// name. Its descriptor (still open from the write) joins the cache with the identity it has
    /// now that it carries its name (naming moved its change time), so reading it back skips the
    /// first-read hash and can be sent with sendfile at once. Not cached (full cache, no budget):
    /// closed.
    /// </summary>
    public void KeepOpen(ChunkHash hash, int fd)
    {
        if (FileStatusCalls.TryStat(fd, out var status, out _) && status.Links > 0 && _handles.TryAdd(hash, fd, status.Identity)) return;
        FileDescriptors.Close(fd);
    }

    /// <summary>Whether this process published or verified the content under this name.</summary>
    public bool IsKnownGood(ChunkHash hash) => _knownGood.ContainsKey(hash);

    /// <summary>The content under this name is right (just published, or just verified).</summary>
    public void RememberGood(ChunkHash hash) => _knownGood.Set(hash, 0);

    /// <summary>Nothing about this chunk's file is trusted any more.</summary>
    public void Forget(ChunkHash hash)
    {
        _verified.Remove(hash);
        _knownGood.Remove(hash);
        _handles.Invalidate(hash);
    }

    /// <summary>Nothing verified or published so far is trusted any more (after a failed sync:
    /// nothing written since the last good one is known to have reached the disk).</summary>
    public void ForgetAll()
    {
        _knownGood.Clear();
        _verified.Clear();
    }

    /// <summary>
    /// A read through a cached file: the pread first, then the statx. That order is what makes
    /// the check sound: a write that reached the bytes we read has already moved the file's
    /// times, so the statx after sees it; a statx before would miss a write landing between
    /// the two calls. False when the file is no longer what was verified (or no longer has a
    /// name): the caller drops it and reads by name.
    /// </summary>
    private bool ReadCached(OpenChunkFile file, Span<byte> target, int offset)
    {
        if (ReadAt(file.Descriptor, target, offset, file.Hash) != target.Length) return false;
        return file.IsUnchanged();
    }

    /// <summary>
    /// Reads a chunk by opening its name: used on a cache miss and after the cached file changed.
    /// A file whose identity was verified before (and is unchanged across the read) is read for
    /// the range only; otherwise all of it is read and hashed. A file that verified and did not
    /// change while being read is kept open for the next read.
    /// </summary>
    private bool ReadByName(ChunkHash hash, int offset, Span<byte> destination, out int storedLength)
    {
        storedLength = 0;
        int fd = OpenByName(hash);
        if (fd < 0) return false;
        bool kept = false;
        try
        {
            var before = Status(fd, hash);
            var identity = before.Identity;
            if (_verified.TryGetValue(hash, out var known) && known == identity)
            {
                int stored = (int)Math.Clamp(identity.Length - offset, 0, destination.Length);
                if (ReadAt(fd, destination[..stored], offset, hash) == stored &&
                    FileStatusCalls.TryStat(fd, out var after, out _) && after.Links > 0 && after.Identity == identity)
                {
                    destination[stored..].Clear();
                    storedLength = (int)identity.Length;
                    kept = _handles.TryAdd(hash, fd, identity);
                    return true;
                }
                // Changed since it was verified, or while we read it: verify what it holds now.
                before = Status(fd, hash);
            }
            bool whole = offset == 0 && destination.Length == ChunkHasher.ChunkSize;
            byte[]? rented = whole ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkHasher.ChunkSize);
            try
            {
                var chunk = whole ? destination : rented.AsSpan(0, ChunkHasher.ChunkSize);
                int length = (int)before.Identity.Length;
                if (ReadAt(fd, chunk[..length], 0, hash) != length || ChunkHasher.Hash(chunk[..length]) != hash)
                    throw Corrupt(hash);
                chunk[length..].Clear();
                if (!whole) chunk.Slice(offset, destination.Length).CopyTo(destination);
                storedLength = length;
                // The bytes are right whatever happens next (they hashed to the name). Trust the
                // file for later reads only if it did not change while it was read and hashed.
                if (FileStatusCalls.TryStat(fd, out var after, out _) && after.Links > 0 && after.Identity == before.Identity)
                {
                    _verified.Set(hash, before.Identity);
                    kept = _handles.TryAdd(hash, fd, before.Identity);
                }
                return true;
            }
            finally { if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
        }
        finally { if (!kept) FileDescriptors.Close(fd); }
    }

    /// <summary>pread until full or end of file; a read error (EIO from the disk) is an
    /// <see cref="IOException"/> naming the chunk file.</summary>
    private int ReadAt(int fd, Span<byte> target, long offset, ChunkHash hash)
    {
        int n = FileDescriptors.ReadAt(fd, target, offset, out int errno);
        if (n < 0)
            throw new IOException($"reading chunk '{PathOf(hash)}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
        return n;
    }

    /// <summary>Opens a chunk file by name; -1 when it does not exist.</summary>
    private int OpenByName(ChunkHash hash)
    {
        int length = _chunksDirUtf8.Length + ChunkHash.HexLength + 1;
        Span<byte> path = length <= 1024 ? stackalloc byte[length] : new byte[length];
        _chunksDirUtf8.CopyTo(path);
        hash.FormatUtf8(path[_chunksDirUtf8.Length..]);
        path[^1] = 0;
        int fd = FileDescriptors.OpenForRead(path, out int errno);
        if (fd >= 0) return fd;
        if (errno is Errno.ENOENT or Errno.ENOTDIR)
        {
            _verified.Remove(hash);
            _handles.Invalidate(hash);
            return -1;
        }
        string message = $"opening chunk '{PathOf(hash)}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        // Callers report a permission problem as one (PermissionDenied).
        if (errno is Errno.EACCES or Errno.EPERM) throw new UnauthorizedAccessException(message);
        throw new IOException(message, errno);
    }

    /// <summary>statx of an open chunk file, refusing anything that cannot be a chunk.</summary>
    private FileStatus Status(int fd, ChunkHash hash)
    {
        if (!FileStatusCalls.TryStat(fd, out var status, out int errno))
            throw new IOException($"statx of chunk '{PathOf(hash)}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
        if (status.Type != FileStatusCalls.S_IFREG)
        {
            Forget(hash);
            throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is {FileStatusCalls.DescribeType(status.Type)}, not a chunk file", PathOf(hash));
        }
        if (status.Identity.Length > ChunkHasher.ChunkSize)
        {
            Forget(hash);
            throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is {status.Identity.Length} bytes, more than 64 KiB", PathOf(hash));
        }
        return status;
    }

    private ShuruStoreException Corrupt(ChunkHash hash)
    {
        Forget(hash);
        return new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is corrupt: its content does not hash to its name", PathOf(hash));
    }

    /// <summary>Closes the chunk files held open (each once no read is using it). A read after
    /// this still works, uncached.</summary>
    public void Dispose() => _handles.Dispose();
}
