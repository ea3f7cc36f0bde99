namespace ShuruStore.Core.Storage;

/// <summary>
/// Chunks as files at <c>&lt;cas&gt;/chunks/&lt;64 hex&gt;</c>, byte-compatible with shuru.
/// Each chunk is written to <c>.tmp-&lt;hex&gt;-&lt;random&gt;</c> in the same directory, fsynced and
/// renamed, so a crash never leaves a truncated chunk under a valid name; leftover temp files
/// are ignored (they never parse as a hash). The directory fsync is deferred to
/// <see cref="Sync"/> so a flush pays for it once, not once per chunk.
/// </summary>
public sealed class FileChunkStore : IChunkStore
{
    private readonly bool _readOnly;
    private int _dirDirty; // 1 when a rename happened since the last directory fsync

    /// <summary>Opens (and unless read-only, creates) the store under <paramref name="casPath"/>.</summary>
    public FileChunkStore(string casPath, bool readOnly = false)
    {
        CasPath = Path.GetFullPath(casPath);
        ChunksPath = Path.Combine(CasPath, "chunks");
        _readOnly = readOnly;
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
    }

    /// <summary>The store root (holds <c>chunks/</c>).</summary>
    public string CasPath { get; }
    /// <summary>The flat directory of chunk files.</summary>
    public string ChunksPath { get; }

    /// <summary>Path of a chunk's file. The name comes from a validated hash, never raw index text.</summary>
    public string PathOf(ChunkHash hash) => Path.Combine(ChunksPath, hash.ToString());

    public bool Contains(ChunkHash hash) => File.Exists(PathOf(hash));

    public bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength)
    {
        storedLength = 0;
        if (OpenChunk(hash, out string path) is not { } handle) return false;
        using (handle)
        {
            var identity = IdentityOf(handle, hash, path);
            var target = destination[..(int)identity.Length];
            int total = ReadAt(handle, target, 0);
            if (total != identity.Length || (!IsVerified(hash, identity) && ChunkHasher.Hash(target) != hash))
                throw Corrupt(hash, path);
            RememberVerified(hash, identity);
            destination[total..ChunkHasher.ChunkSize].Clear();
            storedLength = total;
            return true;
        }
    }

    /// <summary>
    /// Reads a range of a chunk. The first read of a chunk reads and hashes all of it; later reads
    /// of a chunk whose file is unchanged since (same length and modification time, checked on the
    /// open handle) read only the range, so a 4 KiB read costs one pread instead of a 64 KiB read
    /// and a hash. A file altered, truncated, replaced or deleted under the server is caught (its
    /// time or length changes, or it is gone) and re-verified: damage is still EIO, never data.
    /// </summary>
    public bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination)
    {
        if (OpenChunk(hash, out string path) is not { } handle) return false;
        using (handle)
        {
            var identity = IdentityOf(handle, hash, path);
            if (!IsVerified(hash, identity))
            {
                byte[] whole = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkHasher.ChunkSize);
                try
                {
                    var target = whole.AsSpan(0, (int)identity.Length);
                    if (ReadAt(handle, target, 0) != identity.Length || ChunkHasher.Hash(target) != hash) throw Corrupt(hash, path);
                    RememberVerified(hash, identity);
                    whole.AsSpan((int)identity.Length, ChunkHasher.ChunkSize - (int)identity.Length).Clear();
                    whole.AsSpan(offset, destination.Length).CopyTo(destination);
                }
                finally { System.Buffers.ArrayPool<byte>.Shared.Return(whole); }
                return true;
            }
            // Verified and unchanged: read just the range; a short chunk's tail reads as zeros.
            int stored = (int)Math.Clamp(identity.Length - offset, 0, destination.Length);
            if (ReadAt(handle, destination[..stored], offset) != stored) throw Corrupt(hash, path);
            destination[stored..].Clear();
            return true;
        }
    }

    /// <summary>What a verified chunk file looked like: if either changes, it is verified again.</summary>
    private readonly record struct FileIdentity(long Length, long LastWriteTicks);

    /// <summary>Chunks verified in this process, by name. Bounded: cleared when full (the cost is
    /// one more hash per chunk, never a wrong read).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ChunkHash, FileIdentity> _verified = new();
    private const int MaxVerified = 1 << 18; // 256 Ki chunks = 16 GiB of distinct chunks, ~16 MiB of memory

    private bool IsVerified(ChunkHash hash, FileIdentity identity) =>
        _verified.TryGetValue(hash, out var known) && known == identity;

    private void RememberVerified(ChunkHash hash, FileIdentity identity)
    {
        if (_verified.Count >= MaxVerified) _verified.Clear();
        _verified[hash] = identity;
    }

    private Microsoft.Win32.SafeHandles.SafeFileHandle? OpenChunk(ChunkHash hash, out string path)
    {
        path = PathOf(hash);
        // Opening a FIFO blocks until a writer appears: anything but a file under a chunk name is damage.
        if (BlockDevices.LinuxFileCalls.DescribeNonFile(path) is { } what)
        {
            _verified.TryRemove(hash, out _);
            throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is {what}, not a chunk file", path);
        }
        try { return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (FileNotFoundException) { _verified.TryRemove(hash, out _); return null; }
        catch (DirectoryNotFoundException) { _verified.TryRemove(hash, out _); return null; }
    }

    private static FileIdentity IdentityOf(Microsoft.Win32.SafeHandles.SafeFileHandle handle, ChunkHash hash, string path)
    {
        long len = RandomAccess.GetLength(handle);
        if (len > ChunkHasher.ChunkSize)
            throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is {len} bytes, more than 64 KiB", path);
        return new FileIdentity(len, File.GetLastWriteTimeUtc(handle).Ticks);
    }

    private static int ReadAt(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> target, long offset)
    {
        int total = 0;
        while (total < target.Length)
        {
            int n = RandomAccess.Read(handle, target[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private ShuruStoreException Corrupt(ChunkHash hash, string path)
    {
        _verified.TryRemove(hash, out _);
        return new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is corrupt: its content does not hash to its name", path);
    }

    public bool Write(ChunkHash hash, ReadOnlySpan<byte> data)
    {
        if (_readOnly) throw new InvalidOperationException("the chunk store is open read-only");
        string path = PathOf(hash);
        bool replace = false;
        switch (Existing(path, data.Length))
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
            // Marked before the rename: a concurrent writer that finds the name already there
            // relies on the next Sync covering this directory entry.
            Volatile.Write(ref _dirDirty, 1);
            try
            {
                File.Move(tmp, path, overwrite: replace);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another writer published the same content first: same name, same bytes.
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
    /// the right bytes under the same name instead of making that chunk unreadable for good.
    /// An intact file may have been renamed by a concurrent writer whose directory entry is not
    /// yet synced, so it marks the directory for the next <see cref="Sync"/>.
    /// </summary>
    private ExistingChunk Existing(string path, int expectedLength)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return ExistingChunk.Absent;
        if (info.Length != expectedLength) return ExistingChunk.Torn;
        Volatile.Write(ref _dirDirty, 1);
        return ExistingChunk.Intact;
    }

    /// <summary>Test hook: runs after a batch's temp files are durable and before any is renamed
    /// (a throw here is a crash between the two).</summary>
    internal Action? BeforeBatchRename { get; set; }

    /// <summary>Batch write: every temp file is written without its own fsync, one <c>syncfs</c>
    /// makes them all durable, then they are renamed to their names. The crash guarantee is the
    /// one of <see cref="Write"/>: a name only appears once its content is durable; a crash before
    /// the renames leaves only temp files (ignored). Without <c>syncfs</c> (not Linux) each chunk
    /// goes through <see cref="Write"/>.</summary>
    public int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored)
    {
        if (_readOnly) throw new InvalidOperationException("the chunk store is open read-only");
        if (chunks.Count <= 1 || !NativeIO.HasSyncFs) return ChunkStoreExtensions.WriteEach(this, chunks, stored);
        var temps = new List<(int Index, string Tmp, string Path, bool Replace)>(chunks.Count);
        var seen = new Dictionary<ChunkHash, int>();
        var duplicates = new List<(int Index, int First)>();
        int dirFd = NativeIO.OpenForSyncFs(ChunksPath); // before the writes, see OpenForSyncFs
        try
        {
            for (int i = 0; i < chunks.Count; i++)
            {
                var (hash, data) = chunks[i];
                if (seen.TryGetValue(hash, out int firstIndex)) { duplicates.Add((i, firstIndex)); continue; } // same content twice
                seen[hash] = i;
                string path = PathOf(hash);
                var existing = Existing(path, data.Length);
                if (existing == ExistingChunk.Intact) { stored[i] = true; continue; } // write-once: never rewrite
                // Random.Shared, not a Guid: a Guid costs a read of the kernel's random source per chunk.
                string tmp = Path.Combine(ChunksPath, $".tmp-{hash}-{Random.Shared.NextInt64():x16}");
                temps.Add((i, tmp, path, existing == ExistingChunk.Torn));
                NativeIO.CreateFileNoSync(tmp, data.Span);
            }
            int created = 0;
            if (temps.Count > 0)
            {
                NativeIO.SyncFileSystem(dirFd, ChunksPath); // every temp file above is now durable
                BeforeBatchRename?.Invoke();
                Volatile.Write(ref _dirDirty, 1); // before the renames, as in Write
                foreach (var (index, tmp, path, replace) in temps)
                {
                    if (replace)
                    {
                        File.Move(tmp, path, overwrite: true); // a torn chunk: same name, right bytes
                        created++;
                    }
                    else if (NativeIO.RenameNoReplace(tmp, path)) created++;
                    else File.Delete(tmp); // another writer published the same content first
                    stored[index] = true;
                }
            }
            foreach (var (index, firstIndex) in duplicates) stored[index] = stored[firstIndex];
            return created;
        }
        catch
        {
            foreach (var (index, tmp, _, _) in temps)
                if (!stored[index]) try { File.Delete(tmp); } catch { /* ignored by readers anyway */ }
            throw;
        }
        finally { NativeIO.CloseFd(dirFd); }
    }

    public void Sync()
    {
        // Serialised: a second caller must not return while the first caller's directory fsync,
        // which covers its renames too, is still running.
        lock (_syncLock)
        {
            if (Interlocked.Exchange(ref _dirDirty, 0) == 0) return;
            try { NativeIO.FsyncDirectory(ChunksPath); }
            catch { Volatile.Write(ref _dirDirty, 1); throw; }
        }
    }

    private readonly object _syncLock = new();

    public IEnumerable<ChunkHash> Enumerate()
    {
        if (!Directory.Exists(ChunksPath)) yield break;
        foreach (var f in Directory.EnumerateFiles(ChunksPath))
            if (ChunkHash.TryParse(Path.GetFileName(f.AsSpan()), out var h)) yield return h;
    }

    public void Dispose() { }
}
