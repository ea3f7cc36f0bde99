using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// The one way a chunk file gets its name. Content is written whole to a file without a name
/// (O_TMPFILE), or, where nameless files are not available, to <c>.tmp-&lt;hex&gt;-&lt;random&gt;</c>
/// in the chunk directory; then it is named, never over an existing name (linkat or renameat2
/// RENAME_NOREPLACE). So no process crash, kill -9 included, ever leaves a short chunk under a
/// valid name, and leftover temp files never parse as a hash. Nothing is fsynced here: every
/// name is reported to the store's <see cref="ChunkDurability"/>, and the store's Sync makes it
/// durable. A batch is written first and named after, so the data writes and the directory
/// updates each come together.
/// <para>A name that already exists is checked before it is relied on
/// (<see cref="Existing"/>): a torn file is replaced atomically by the right bytes, and a file
/// this process neither wrote nor verified is hashed once, since after a power loss a name can
/// exist whose content never reached the disk.</para>
/// </summary>
internal sealed class ChunkFilePublisher(string chunksPath, ChunkFileReader reader, ChunkDurability durability, StoreLease? lease)
{
    /// <summary>A chunk relied on whose file was last written longer ago than this gets its
    /// modification time renewed, so collectors that spare young chunks spare it too.</summary>
    internal static readonly TimeSpan FreshenAfter = TimeSpan.FromMinutes(1);

    /// <summary>Test hook: runs after a batch's files are written and before any is named
    /// (a throw here is a failure between the two).</summary>
    internal Action? BeforeNaming { get; set; }

    /// <summary>Stores a batch as <see cref="IChunkStore.WriteMany"/> describes.</summary>
    public int Publish(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon)
    {
        // Tmp is null for a nameless file (the usual case on Linux): nothing to rename or delete.
        var files = new List<(int Index, string? Tmp, string Path, bool Replace, int Fd)>(chunks.Count);
        // Logged before anything is published or relied on: a collector in another process reads
        // the log after setting a doomed chunk aside (see StoreLease).
        lease?.Intend(chunks.Select(c => c.Hash).ToList());
        var seen = new Dictionary<ChunkHash, int>();
        var duplicates = new List<(int Index, int First)>();
        try
        {
            for (int i = 0; i < chunks.Count; i++)
            {
                var (hash, data) = chunks[i];
                if (seen.TryGetValue(hash, out int firstIndex)) { duplicates.Add((i, firstIndex)); continue; } // same content twice
                seen[hash] = i;
                string path = reader.PathOf(hash);
                // Content this process has not stored is most likely new (a fresh write): it goes
                // straight into a nameless file, without first looking its name up. Naming refuses
                // a name that exists, and only then is what is there checked (NameOverExisting).
                if (!reader.IsKnownGood(hash))
                {
                    int nameless = FileDescriptors.TryCreateNamelessKeepOpen(chunksPath, data.Span);
                    if (nameless >= 0) { files.Add((i, null, path, false, nameless)); continue; }
                }
                var existing = Existing(hash, path, data.Length);
                if (existing == ExistingChunk.Intact) { stored[i] = true; continue; } // write-once: never rewrite
                string tmp = NewTempPath(hash);
                files.Add((i, tmp, path, existing == ExistingChunk.Torn, FileDescriptors.CreateFileKeepOpen(tmp, data.Span)));
            }
            int created = 0;
            if (files.Count > 0)
            {
                BeforeNaming?.Invoke();
                for (int t = 0; t < files.Count; t++)
                {
                    var (index, tmp, path, replace, fd) = files[t];
                    var hash = chunks[index].Hash;
                    bool named;
                    if (tmp is null)
                    {
                        try { named = FileNaming.LinkNoReplace(fd, path) || NameOverExisting(hash, fd, path, chunks[index].Data.Length); }
                        catch (NotSupportedException)
                        {
                            FileDescriptors.Close(fd); // no /proc here: write it again under a temp name
                            files[t] = files[t] with { Tmp = tmp = NewTempPath(hash), Fd = -1 };
                            files[t] = files[t] with { Fd = fd = FileDescriptors.CreateFileKeepOpen(tmp, chunks[index].Data.Span) };
                            named = NameTemp(hash, tmp, path, replace: false);
                        }
                    }
                    else named = NameTemp(hash, tmp, path, replace);
                    if (named)
                    {
                        created++;
                        reader.KeepOpen(hash, fd);
                    }
                    else FileDescriptors.Close(fd);
                    files[t] = files[t] with { Fd = -1 };
                    durability.Published(path);
                    reader.RememberGood(hash);
                    stored[index] = true;
                }
            }
            foreach (var (index, firstIndex) in duplicates) stored[index] = stored[firstIndex];
            if (syncSoon && created > 0) durability.WillSyncSoon((long)created * ChunkHasher.ChunkSize);
            return created;
        }
        catch
        {
            foreach (var (index, tmp, _, _, _) in files)
                if (tmp is not null && !stored[index]) try { File.Delete(tmp); } catch { /* ignored by readers anyway */ }
            throw;
        }
        finally
        {
            foreach (var file in files) if (file.Fd >= 0) FileDescriptors.Close(file.Fd);
        }
    }

    private enum ExistingChunk { Absent, Intact, Torn }

    /// <summary>
    /// What is already stored under a name. A file of the wrong length is a torn chunk (shuru
    /// 0.1.2 wrote chunks in place, so a crash could leave one): it is replaced, atomically, by
    /// the right bytes under the same name instead of making that chunk unreadable for good. A
    /// file of the right length that this process neither wrote nor verified is read and hashed
    /// once. An intact file may have been published by a concurrent writer whose data is not yet
    /// durable, so relying on it reports it to the durability side like a name of our own. An
    /// intact file is freshened (<see cref="Freshen"/>); one that vanished meanwhile (a collector
    /// set it aside) is absent, and the caller writes it afresh.
    /// </summary>
    private ExistingChunk Existing(ChunkHash hash, string path, int expectedLength)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return ExistingChunk.Absent;
        if (info.Length != expectedLength) return ExistingChunk.Torn;
        if (!Freshen(path, info.LastWriteTimeUtc)) return ExistingChunk.Absent;
        durability.Published(path);
        if (reader.IsKnownGood(hash)) return ExistingChunk.Intact;
        byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkHasher.ChunkSize);
        try
        {
            // Verifies (or trusts a verification this process already made of this very file).
            if (!reader.TryRead(hash, scratch.AsSpan(0, ChunkHasher.ChunkSize), out _)) return ExistingChunk.Absent;
        }
        catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.ChunkCorrupt) { return ExistingChunk.Torn; }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); }
        reader.RememberGood(hash);
        return ExistingChunk.Intact;
    }

    /// <summary>Renews the modification time of a chunk about to be relied on, as git does for
    /// objects it reuses, so a collector that spares chunks younger than its grace period spares
    /// this one; at most once per <see cref="FreshenAfter"/>. False when the file is gone.</summary>
    private static bool Freshen(string path, DateTime lastWriteUtc)
    {
        var now = DateTime.UtcNow;
        if (now - lastWriteUtc < FreshenAfter) return true;
        try { File.SetLastWriteTimeUtc(path, now); return true; }
        catch (FileNotFoundException) { return false; }
        catch (UnauthorizedAccessException) { return true; } // a read-only file someone else owns: still intact
    }

    /// <summary>The name of a nameless chunk file was taken. Intact content there (another writer
    /// published the same bytes, or an earlier process did): false, nothing to do. A torn or
    /// corrupt file: replaced atomically by this one, linked to a temp name and renamed over it.
    /// Gone again meanwhile: linked once more.</summary>
    private bool NameOverExisting(ChunkHash hash, int fd, string path, int length)
    {
        switch (Existing(hash, path, length))
        {
            case ExistingChunk.Intact:
                return false;
            case ExistingChunk.Torn:
                string tmp = NewTempPath(hash);
                if (!FileNaming.LinkNoReplace(fd, tmp)) throw new IOException($"temp name '{tmp}' is taken");
                File.Move(tmp, path, overwrite: true); // same name, right bytes
                reader.Forget(hash);
                return true;
            default:
                return FileNaming.LinkNoReplace(fd, path);
        }
    }

    /// <summary>Renames a complete temp file to its chunk name: over a torn chunk, or never over
    /// an existing name (false: another writer published the same content first, and the temp
    /// file is removed).</summary>
    private bool NameTemp(ChunkHash hash, string tmp, string path, bool replace)
    {
        if (replace)
        {
            File.Move(tmp, path, overwrite: true); // a torn chunk: same name, right bytes
            reader.Forget(hash);
            return true;
        }
        if (FileNaming.RenameNoReplace(tmp, path)) return true;
        File.Delete(tmp);
        return false;
    }

    // Random.Shared, not a Guid: a Guid costs a read of the kernel's random source per chunk.
    private string NewTempPath(ChunkHash hash) => Path.Combine(chunksPath, $".tmp-{hash}-{Random.Shared.NextInt64():x16}");
}
