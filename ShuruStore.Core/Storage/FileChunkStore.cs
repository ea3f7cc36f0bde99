using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Chunks as files at <c>&lt;cas&gt;/chunks/&lt;64 hex&gt;</c>, byte-compatible with shuru.
/// Each chunk is written whole to a nameless file (O_TMPFILE) and then linked to its name, or,
/// where nameless files are not available, to <c>.tmp-&lt;hex&gt;-&lt;random&gt;</c> in the same
/// directory and renamed, so no process crash (kill -9 included) ever leaves a truncated chunk
/// under a valid name; leftover temp files are ignored (they never parse as a hash).
/// <para>Durability is <see cref="Sync"/>'s job, and nothing may reference a chunk (index, state
/// journal) before a Sync returned: batch writes (<see cref="WriteMany"/>) publish names before
/// their content is on disk, so one <c>syncfs</c> per flush replaces one per batch. A power loss
/// can therefore leave a name whose content never reached the disk; such a chunk is referenced
/// by nothing, and a writer that finds a name it did not write in this process verifies the
/// content before deduplicating against it (a wrong one is replaced).</para>
/// Verified chunk files are kept open (<see cref="ChunkHandleCache"/>) so a warm read is one
/// pread and one statx.
/// </summary>
public sealed class FileChunkStore : IChunkStore, IChunkFileSource
{
    private readonly bool _readOnly;
    // Generations: bumped after every name published (or found and relied on); Sync records the
    // generation its syncfs covers. A flag reset at the start of a Sync missed a rename that
    // happened during it (found in review: the next flush then skipped its sync).
    private long _publishedGen, _syncedGen;
    private Exception? _syncFailure; // set once a sync failed: durability cannot be promised any more
    // Opened at creation, before any write, so syncfs reports every writeback error since then
    // (Linux reports them only to descriptors opened before the error); -1 when not used.
    private int _syncFd = -1; // closed (and -1) after Dispose, under _syncLock

    /// <summary>Opens (and unless read-only, creates) the store under <paramref name="casPath"/>.</summary>
    public FileChunkStore(string casPath, bool readOnly = false)
        : this(casPath, readOnly, DefaultOpenChunkFiles) { }

    /// <summary>As above, keeping at most <paramref name="openChunkFiles"/> verified chunk files
    /// open for fast reads (0: none, every read opens its file).</summary>
    public FileChunkStore(string casPath, bool readOnly, int openChunkFiles)
    {
        CasPath = Path.GetFullPath(casPath);
        ChunksPath = Path.Combine(CasPath, "chunks");
        _readOnly = readOnly;
        _chunksDirUtf8 = System.Text.Encoding.UTF8.GetBytes(ChunksPath + "/");
        if (_chunksDirUtf8.AsSpan().Contains((byte)0))
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' has a NUL character in its path", CasPath);
        try
        {
            // Read-only over a store that does not exist yet is allowed (e.g. serving a base image
            // read-only); every chunk then reads as missing, which is an error, never zeros.
            if (!readOnly) Directory.CreateDirectory(ChunksPath);
            else if (File.Exists(CasPath))
                throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' is a file, not a directory", CasPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' is unusable: {e.Message}", CasPath, e);
        }
        _handles = new ChunkHandleCache(openChunkFiles);
        if (!readOnly && FileSync.HasSyncFs) _syncFd = FileSync.OpenForSyncFs(ChunksPath);
    }

    /// <summary>The store root (holds <c>chunks/</c>).</summary>
    public string CasPath { get; }
    /// <summary>The flat directory of chunk files.</summary>
    public string ChunksPath { get; }

    /// <summary>Path of a chunk's file. The name comes from a validated hash, never raw index text.</summary>
    public string PathOf(ChunkHash hash) => Path.Combine(ChunksPath, hash.ToString());

    public bool Contains(ChunkHash hash) => File.Exists(PathOf(hash));

    /// <summary>Reads a whole chunk, verified (see <see cref="TryReadRange"/> for when the hash
    /// is skipped and how a cached open file is checked).</summary>
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

    /// <summary>
    /// Reads a range of a chunk. The first read of a chunk reads and hashes all of it; later reads
    /// of a chunk whose file is unchanged since (same inode, length, modification and change time)
    /// read only the range, so a 4 KiB read costs one pread instead of a 64 KiB read and a hash.
    /// A verified file stays open (<see cref="ChunkHandleCache"/>), so a warm read is that pread
    /// and one statx. A file altered, truncated, replaced or deleted under the server is caught
    /// (its identity changes, or its link count drops to zero) and read again by name: damage is
    /// still EIO, a deleted chunk still missing, never stale or wrong data.
    /// </summary>
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
    /// for a chunk not held open, a page-cache miss, a short chunk's tail or a changed file: the
    /// caller's <see cref="TryReadRange"/> deals with each.</summary>
    public bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination)
    {
        if (!_handles.TryAcquire(hash, out var file)) return false;
        try
        {
            if (offset + (long)destination.Length > file.Identity.Length) return false;
            return NoWaitReads.Pread(file.Descriptor, destination, offset) == NoWaitRead.Done
                   && file.IsUnchanged();
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

    /// <summary>Open chunk files verified in this process; see <see cref="ChunkHandleCache"/>.</summary>
    private readonly ChunkHandleCache _handles;

    /// <summary>Chunks held open when nothing else is said: a 1 GiB working set of 64 KiB chunks
    /// (the process-wide <see cref="OpenFileBudget"/> may allow fewer).</summary>
    public const int DefaultOpenChunkFiles = 16384;

    /// <summary>Test and diagnostics view: chunk files held open now.</summary>
    internal int OpenChunkFiles => _handles.Count;

    /// <summary>
    /// A read through a cached file: the pread first, then the statx. That order is what makes
    /// the check sound: a write that reached the bytes we read has already moved the file's
    /// times, so the statx after sees it; a statx before would miss a write landing between
    /// the two calls. False when the file is no longer what was verified (or no longer has a
    /// name): the caller drops it and reads by name.
    /// </summary>
    private bool ReadCached(OpenChunkFile file, Span<byte> target, int offset)
    {
        int fd = file.Descriptor;
        if (ReadAt(fd, target, offset, file.Hash) != target.Length) return false;
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
            if (IsVerified(hash, identity))
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
                    RememberVerified(hash, before.Identity);
                    kept = _handles.TryAdd(hash, fd, before.Identity);
                }
                return true;
            }
            finally { if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
        }
        finally { if (!kept) FileDescriptors.Close(fd); }
    }

    /// <summary>pread until full or end of file; a read error (EIO from the disk) is an
    /// <see cref="IOException"/> naming the chunk file, as before.</summary>
    private int ReadAt(int fd, Span<byte> target, long offset, ChunkHash hash)
    {
        int n = FileDescriptors.ReadAt(fd, target, offset, out int errno);
        if (n < 0)
            throw new IOException($"reading chunk '{PathOf(hash)}' failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
        return n;
    }

    /// <summary>The chunk's directory as NUL-free UTF-8 with a trailing '/', so a read builds the
    /// file name on the stack instead of allocating a path string per read.</summary>
    private readonly byte[] _chunksDirUtf8;

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
            _verified.TryRemove(hash, out _);
            _handles.Invalidate(hash);
            return -1;
        }
        string message = $"opening chunk '{PathOf(hash)}' failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        // As File.OpenHandle did: callers report a permission problem as one (PermissionDenied).
        if (errno is Errno.EACCES or Errno.EPERM) throw new UnauthorizedAccessException(message);
        throw new IOException(message, errno);
    }

    /// <summary>statx of an open chunk file, refusing anything that cannot be a chunk.</summary>
    private FileStatus Status(int fd, ChunkHash hash)
    {
        if (!FileStatusCalls.TryStat(fd, out var status, out int errno))
            throw new IOException($"statx of chunk '{PathOf(hash)}' failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
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

    /// <summary>Chunks verified in this process, by name, with the identity of the file verified.
    /// Outlives the open file (<see cref="_handles"/> is smaller), so a chunk evicted from the
    /// handle cache costs an open when read again, not a 64 KiB read and a hash. Bounded: cleared
    /// when full (the cost is one more hash per chunk, never a wrong read).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ChunkHash, FileIdentity> _verified = new();
    private const int MaxVerified = 1 << 18; // 256 Ki chunks = 16 GiB of distinct chunks, ~16 MiB of memory

    private bool IsVerified(ChunkHash hash, FileIdentity identity) =>
        _verified.TryGetValue(hash, out var known) && known == identity;

    private void RememberVerified(ChunkHash hash, FileIdentity identity)
    {
        // Counted here, not with ConcurrentDictionary.Count, which takes every lock of the
        // dictionary (1-2 % of a fresh-layer write's samples). Approximate under races: it only bounds memory.
        if (_verified.TryAdd(hash, identity)) { if (Interlocked.Increment(ref _verifiedCount) > MaxVerified) ClearBounded(_verified, ref _verifiedCount); }
        else _verified[hash] = identity;
    }

    private int _verifiedCount, _publishedCount;

    private static void ClearBounded<TValue>(System.Collections.Concurrent.ConcurrentDictionary<ChunkHash, TValue> set, ref int count)
    {
        set.Clear();
        Volatile.Write(ref count, 0);
    }

    /// <summary>Nothing about this chunk's file is trusted any more.</summary>
    private void Forget(ChunkHash hash)
    {
        if (_verified.TryRemove(hash, out _)) Interlocked.Decrement(ref _verifiedCount);
        if (_published.TryRemove(hash, out _)) Interlocked.Decrement(ref _publishedCount);
        _handles.Invalidate(hash);
    }

    private ShuruStoreException Corrupt(ChunkHash hash)
    {
        Forget(hash);
        return new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is corrupt: its content does not hash to its name", PathOf(hash));
    }

    public bool Write(ChunkHash hash, ReadOnlySpan<byte> data)
    {
        if (_readOnly) throw new InvalidOperationException("the chunk store is open read-only");
        string path = PathOf(hash);
        bool replace = false;
        switch (Existing(hash, path, data.Length))
        {
            case ExistingChunk.Intact: return false; // write-once: never rewrite
            case ExistingChunk.Torn: replace = true; break;
        }
        string tmp = Path.Combine(ChunksPath, $".tmp-{hash}-{Guid.NewGuid():N}");
        try
        {
            using (var handle = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                RandomAccess.Write(handle, data, 0);
                RandomAccess.FlushToDisk(handle);
            }
            try
            {
                // RENAME_NOREPLACE, not File.Move(overwrite: false): .NET may check the target and
                // then rename, and two writers of the same content racing through that gap both
                // reported "created" (seen as a flaky import count of deduplicated chunks).
                if (replace) File.Move(tmp, path, overwrite: true);
                else if (!FileNaming.RenameNoReplace(tmp, path)) throw new IOException($"'{path}' exists");
                MarkPublished();
                // A torn file never hashed right, so it was never cached or remembered as
                // verified; forgetting anyway keeps that true without relying on it.
                if (replace) Forget(hash);
                RememberPublished(hash);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another writer published the same content first: same name, same bytes.
                MarkPublished();
                File.Delete(tmp);
                return false;
            }
        }
        catch
        {
            try { File.Delete(tmp); } catch { /* ignored by readers anyway */ }
            throw;
        }
        return true;
    }

    private enum ExistingChunk { Absent, Intact, Torn }

    /// <summary>
    /// What is already stored under a name. A file of the wrong length is a torn chunk (shuru
    /// 0.1.2 wrote chunks in place, so a crash could leave one): it is replaced, atomically, by
    /// the right bytes under the same name instead of making that chunk unreadable for good. A
    /// file of the right length that this process neither wrote nor verified is read and hashed
    /// once: after a power loss a name can exist whose content never reached the disk (see the
    /// class remarks). An intact file may have been published by a concurrent writer whose data
    /// is not yet synced, so it marks the store for the next <see cref="Sync"/>.
    /// </summary>
    private ExistingChunk Existing(ChunkHash hash, string path, int expectedLength)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return ExistingChunk.Absent;
        if (info.Length != expectedLength) return ExistingChunk.Torn;
        MarkPublished(); // relied on: its rename (perhaps a concurrent writer's) must be covered by the next Sync
        if (_published.ContainsKey(hash)) return ExistingChunk.Intact;
        byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkHasher.ChunkSize);
        try
        {
            // Verifies (or trusts a verification this process already made of this very file).
            if (!TryRead(hash, scratch.AsSpan(0, ChunkHasher.ChunkSize), out _)) return ExistingChunk.Absent;
        }
        catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.ChunkCorrupt) { return ExistingChunk.Torn; }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); }
        RememberPublished(hash);
        return ExistingChunk.Intact;
    }

    /// <summary>Chunks this process published or verified under their name: their content is
    /// right (written whole before the rename, or hashed). Bounded like the verified set.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ChunkHash, byte> _published = new();

    private void RememberPublished(ChunkHash hash)
    {
        if (_published.TryAdd(hash, 0) && Interlocked.Increment(ref _publishedCount) > MaxVerified) ClearBounded(_published, ref _publishedCount);
    }

    /// <summary>Test hook: runs after a batch's temp files are written and before any is renamed
    /// (a throw here is a failure between the two).</summary>
    internal Action? BeforeBatchRename { get; set; }

    /// <summary>Batch write: every temp file is written whole, without an fsync, then renamed to its
    /// name. Nothing is durable until <see cref="Sync"/> (one <c>syncfs</c> for everything written
    /// since the last one): callers record chunks in an index or journal only after it. A process
    /// crash at any point leaves complete chunks or ignored temp files; see the class remarks for a
    /// power loss.</summary>
    public int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false)
    {
        if (_readOnly) throw new InvalidOperationException("the chunk store is open read-only");
        if (chunks.Count <= 1 || Volatile.Read(ref _syncFd) < 0) return ChunkStoreExtensions.WriteEach(this, chunks, stored);
        // Tmp is null for a nameless file (the usual case on Linux): nothing to rename or delete.
        var temps = new List<(int Index, string? Tmp, string Path, bool Replace, int Fd)>(chunks.Count);
        var seen = new Dictionary<ChunkHash, int>();
        var duplicates = new List<(int Index, int First)>();
        try
        {
            for (int i = 0; i < chunks.Count; i++)
            {
                var (hash, data) = chunks[i];
                if (seen.TryGetValue(hash, out int firstIndex)) { duplicates.Add((i, firstIndex)); continue; } // same content twice
                seen[hash] = i;
                string path = PathOf(hash);
                // Content this process has not stored is most likely new (a fresh write): it goes
                // straight into a nameless file, without first looking its name up (an lstat per
                // chunk, 4 % of a fresh-layer write's samples). The link below refuses a name that
                // exists, and only then is what is there checked (PublishOverExisting).
                if (!_published.ContainsKey(hash))
                {
                    int nameless = FileDescriptors.TryCreateNamelessKeepOpen(ChunksPath, data.Span);
                    if (nameless >= 0) { temps.Add((i, null, path, false, nameless)); continue; }
                }
                var existing = Existing(hash, path, data.Length);
                if (existing == ExistingChunk.Intact) { stored[i] = true; continue; } // write-once: never rewrite
                bool replace = existing == ExistingChunk.Torn;
                string tmp = NewTempPath(hash);
                temps.Add((i, tmp, path, replace, FileDescriptors.CreateFileKeepOpen(tmp, data.Span)));
            }
            int created = 0;
            if (temps.Count > 0)
            {
                BeforeBatchRename?.Invoke();
                for (int t = 0; t < temps.Count; t++)
                {
                    var (index, tmp, path, replace, fd) = temps[t];
                    var hash = chunks[index].Hash;
                    bool published;
                    if (tmp is null)
                    {
                        try { published = FileNaming.LinkNoReplace(fd, path) || PublishOverExisting(hash, fd, path, chunks[index].Data.Length); }
                        catch (NotSupportedException)
                        {
                            FileDescriptors.Close(fd); // no /proc here: write it again under a temp name
                            temps[t] = temps[t] with { Tmp = tmp = NewTempPath(hash), Fd = -1 };
                            temps[t] = temps[t] with { Fd = fd = FileDescriptors.CreateFileKeepOpen(tmp, chunks[index].Data.Span) };
                            published = PublishTemp(hash, tmp, path, replace: false);
                        }
                    }
                    else published = PublishTemp(hash, tmp, path, replace);
                    if (published)
                    {
                        created++;
                        KeepOpenForReading(hash, fd);
                    }
                    else FileDescriptors.Close(fd);
                    temps[t] = temps[t] with { Fd = -1 };
                    MarkPublished();
                    RememberPublished(hash);
                    stored[index] = true;
                }
            }
            foreach (var (index, firstIndex) in duplicates) stored[index] = stored[firstIndex];
            if (syncSoon && created > 0) MaybeStartEarlySync((long)created * ChunkHasher.ChunkSize);
            return created;
        }
        catch
        {
            foreach (var (index, tmp, _, _, _) in temps)
                if (tmp is not null && !stored[index]) try { File.Delete(tmp); } catch { /* ignored by readers anyway */ }
            throw;
        }
        finally
        {
            foreach (var temp in temps) if (temp.Fd >= 0) FileDescriptors.Close(temp.Fd);
        }
    }

    /// <summary>The name of a nameless chunk file was taken. Intact content there (another writer
    /// published the same bytes, or an earlier process did): false, nothing to do. A torn or
    /// corrupt file: replaced atomically by this one, linked to a temp name and renamed over it.
    /// Gone again meanwhile: linked once more.</summary>
    private bool PublishOverExisting(ChunkHash hash, int fd, string path, int length)
    {
        switch (Existing(hash, path, length))
        {
            case ExistingChunk.Intact:
                return false;
            case ExistingChunk.Torn:
                string tmp = NewTempPath(hash);
                if (!FileNaming.LinkNoReplace(fd, tmp)) throw new IOException($"temp name '{tmp}' is taken");
                File.Move(tmp, path, overwrite: true); // same name, right bytes
                Forget(hash);
                return true;
            default:
                return FileNaming.LinkNoReplace(fd, path);
        }
    }

    /// <summary>Renames a batch's complete temp file to its chunk name: over a torn chunk, or
    /// never over an existing name (false: another writer published the same content first, and
    /// the temp file is removed).</summary>
    private bool PublishTemp(ChunkHash hash, string tmp, string path, bool replace)
    {
        if (replace)
        {
            File.Move(tmp, path, overwrite: true); // a torn chunk: same name, right bytes
            Forget(hash);
            return true;
        }
        if (FileNaming.RenameNoReplace(tmp, path)) return true;
        File.Delete(tmp);
        return false;
    }

    // Random.Shared, not a Guid: a Guid costs a read of the kernel's random source per chunk.
    private string NewTempPath(ChunkHash hash) => Path.Combine(ChunksPath, $".tmp-{hash}-{Random.Shared.NextInt64():x16}");

    /// <summary>
    /// A chunk this store just wrote is known good: its bytes came from the buffer whose hash is
    /// its name. Its descriptor (still open from the write) joins the read cache with the identity
    /// it has now that it carries its name (the rename moved its change time), so reading it back
    /// (a guest reading what it wrote, a warm read after lazy ingestion) skips the first-read hash
    /// and can be sent with sendfile at once. Not cached (full cache, no budget): closed.
    /// </summary>
    private void KeepOpenForReading(ChunkHash hash, int fd)
    {
        if (FileStatusCalls.TryStat(fd, out var status, out _) && status.Links > 0 && _handles.TryAdd(hash, fd, status.Identity)) return;
        FileDescriptors.Close(fd);
    }

    /// <summary>Makes every chunk published so far durable, content and name: one <c>syncfs</c>
    /// (batch writes skip their own fsync) and an fsync of the chunk directory.
    /// <para>Fail-stop: once a sync failed, every later one fails too. Linux reports a writeback
    /// error to a descriptor once and marks the pages clean, so a second syncfs would succeed over
    /// chunks whose content never reached the disk while their only other copy (the dirty buffer)
    /// is gone: a later FLUSH would then promise lost data. Reopening the store starts over (its
    /// writers verify any name they did not write before relying on it).</para></summary>
    public void Sync()
    {
        // Serialised: a second caller must not return while the first caller's sync, which
        // covers its chunks too, is still running.
        lock (_syncLock)
        {
            if (_syncFailure is { } failed)
                throw new IOException($"an earlier sync of chunk store '{CasPath}' failed ({failed.Message}): chunks stored before it may be lost, so nothing more can be made durable until the store is opened again", failed);
            long generation = Interlocked.Read(ref _publishedGen);
            if (generation == _syncedGen) return;
            try
            {
                SyncFault?.Invoke();
                if (_syncFd >= 0) FileSync.SyncFileSystem(_syncFd, ChunksPath);
                FileSync.FsyncDirectory(ChunksPath);
            }
            catch (Exception e)
            {
                _syncFailure = e;
                ClearBounded(_published, ref _publishedCount); // nothing written since the last good sync is known to be right
                ClearBounded(_verified, ref _verifiedCount);
                throw;
            }
            _syncedGen = generation;
        }
    }

    private void MarkPublished() => Interlocked.Increment(ref _publishedGen);

    /// <summary>Bytes of new chunks after which a stream's writer starts a sync in the background.</summary>
    internal const long EarlySyncBytes = 64L << 20;
    private long _unsyncedBytes;
    private int _earlySyncRunning;
    private long _earlySyncs;

    /// <summary>Background syncs started so far (tests).</summary>
    internal long EarlySyncs => Interlocked.Read(ref _earlySyncs);

    /// <summary>
    /// A writer that will sync soon (a stream a FLUSH follows) has stored another
    /// <paramref name="bytes"/>: every <see cref="EarlySyncBytes"/> a <see cref="Sync"/> runs on a
    /// thread of its own, so the disk writes the stream while it goes on instead of all of it
    /// inside the FLUSH's syncfs (1 GiB fresh-layer write: that syncfs took 500-600 ms, nbdkit's
    /// whole fdatasync about as long). A syncfs, not a writeback per chunk file: per-file
    /// sync_file_range made one 64 KiB disk request per chunk (15000 per GiB against 300 merged
    /// ones), which this VM's disk served far slower (docs/performance.md, step 32). A failure
    /// is kept like any sync's (every later Sync throws), so the FLUSH that follows reports it.
    /// </summary>
    private void MaybeStartEarlySync(long bytes)
    {
        if (Interlocked.Add(ref _unsyncedBytes, bytes) < EarlySyncBytes) return;
        if (Interlocked.CompareExchange(ref _earlySyncRunning, 1, 0) != 0) return;
        Interlocked.Exchange(ref _unsyncedBytes, 0);
        Interlocked.Increment(ref _earlySyncs);
        // Its own thread, not the pool's: a syncfs blocks for a long time, and a blocked pool
        // thread on a two-core machine delays the requests and write-behind queued behind it.
        new Thread(() =>
        {
            try { if (Volatile.Read(ref _syncFd) >= 0) Sync(); }
            catch (Exception) { /* kept in _syncFailure by Sync: the next Sync reports it; a background thread must not end the process */ }
            finally { Volatile.Write(ref _earlySyncRunning, 0); }
        }) { IsBackground = true, Name = "shuru-early-sync" }.UnsafeStart();
    }

    /// <summary>Test hook: runs inside <see cref="Sync"/> before the syncfs (a throw is a failed sync).</summary>
    internal Action? SyncFault { get; set; }

    private readonly object _syncLock = new();

    public IEnumerable<ChunkHash> Enumerate()
    {
        if (!Directory.Exists(ChunksPath)) yield break;
        foreach (var f in Directory.EnumerateFiles(ChunksPath))
            if (ChunkHash.TryParse(Path.GetFileName(f.AsSpan()), out var h)) yield return h;
    }

    /// <summary>Closes the chunk files held open for reads (each once no read is using it). A read
    /// after this still works, uncached.</summary>
    public void Dispose()
    {
        _handles.Dispose();
        lock (_syncLock)
        {
            if (_syncFd >= 0) FileDescriptors.Close(_syncFd);
            _syncFd = -1;
        }
    }
}
