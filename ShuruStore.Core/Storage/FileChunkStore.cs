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
            if (!readOnly) Directory.CreateDirectory(ChunksPath);
            else if (!Directory.Exists(CasPath))
                throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' does not exist", CasPath);
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
        string path = PathOf(hash);
        // Opening a FIFO blocks until a writer appears: anything but a file under a chunk name is damage.
        if (BlockDevices.LinuxFileCalls.DescribeNonFile(path) is { } what)
            throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is {what}, not a chunk file", path);
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try { handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
        using (handle)
        {
            long len = RandomAccess.GetLength(handle);
            if (len > ChunkHasher.ChunkSize)
                throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is {len} bytes, more than 64 KiB", path);
            var target = destination[..(int)len];
            int total = 0;
            while (total < target.Length)
            {
                int n = RandomAccess.Read(handle, target[total..], total);
                if (n == 0) break;
                total += n;
            }
            if (total != len || ChunkHasher.Hash(target) != hash)
                throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {hash} is corrupt: its content does not hash to its name", path);
            destination[total..ChunkHasher.ChunkSize].Clear();
            storedLength = total;
            return true;
        }
    }

    public bool Write(ChunkHash hash, ReadOnlySpan<byte> data)
    {
        if (_readOnly) throw new InvalidOperationException("the chunk store is open read-only");
        string path = PathOf(hash);
        if (File.Exists(path)) return false; // write-once: never rewrite
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
                File.Move(tmp, path, overwrite: false);
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
        Volatile.Write(ref _dirDirty, 1);
        return true;
    }

    public void Sync()
    {
        if (Interlocked.Exchange(ref _dirDirty, 0) == 0) return;
        try { NativeIO.FsyncDirectory(ChunksPath); }
        catch { Volatile.Write(ref _dirDirty, 1); throw; }
    }

    public IEnumerable<ChunkHash> Enumerate()
    {
        if (!Directory.Exists(ChunksPath)) yield break;
        foreach (var f in Directory.EnumerateFiles(ChunksPath))
            if (ChunkHash.TryParse(Path.GetFileName(f.AsSpan()), out var h)) yield return h;
    }

    public void Dispose() { }
}
