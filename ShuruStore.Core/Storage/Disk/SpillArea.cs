namespace ShuruStore.Core.Storage;

/// <summary>
/// Where unsaved chunks go past the dirty-memory budget: the disk's <see cref="SpillFile"/>,
/// kept in 4 KiB blocks, not whole chunks. A random writer's evicted chunk usually has one or two
/// blocks written, the rest still equal to what lies below (the live entry, a parent, the base),
/// which cannot change while the chunk is unsaved. Only written blocks go to the spill file, and
/// reads merge them over what lies below: writing into new file pages costs several times more
/// than into cached ones, so moving 64 KiB per eviction instead of the written 4 KiB would make
/// eviction the whole cost of a random write.
/// <para>Every member but <see cref="MoveToSpillFile"/> runs with the chunk's stripe held.</para>
/// </summary>
internal sealed class SpillArea(ChunkTable table, SavedChunkReader below, ChunkBufferPool pool, string casPath) : IDisposable
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int BS = 4096;
    private const int BlocksPerChunk = CS / BS;

    private SpillFile? _file; // created on the first spill
    private readonly object _fileLock = new();
    private long _moves;

    /// <summary>Moves of a dirty chunk out of memory into the spill file so far.</summary>
    public long Moves => Interlocked.Read(ref _moves);

    /// <summary>The 4 KiB blocks of a chunk that bytes [inChunk, inChunk + length) touch.</summary>
    public static uint BlocksOf(int inChunk, int length)
    {
        if (length <= 0) return 0;
        int first = inChunk / BS, last = (inChunk + length - 1) / BS;
        return (uint)(((1UL << (last + 1)) - 1) & ~((1UL << first) - 1));
    }

    /// <summary>Moves dirty buffers to the spill file (their written blocks only). Takes each
    /// chunk's stripe; a chunk stored or zeroed meanwhile is skipped.</summary>
    public void MoveToSpillFile(List<long> chunks)
    {
        foreach (var chunk in chunks)
        {
            lock (table.Stripe(chunk))
            {
                var place = table.Resolve(chunk);
                if (place.Kind != ChunkPlaceKind.Dirty) continue;
                var buf = place.Buffer!;
                uint blocks = table.DirtyBlocks(chunk);
                for (int first = 0; first < BlocksPerChunk;)
                {
                    if ((blocks & (1u << first)) == 0) { first++; continue; }
                    int end = first + 1;
                    while (end < BlocksPerChunk && (blocks & (1u << end)) != 0) end++;
                    Write(chunk, first * BS, buf.AsSpan(first * BS, (end - first) * BS));
                    first = end;
                }
                table.SetSpilled(chunk, blocks);
                table.RemoveDirty(chunk);
                pool.Return(buf);
                Interlocked.Increment(ref _moves);
            }
        }
    }

    /// <summary>A write into a chunk that is in the spill file (<paramref name="valid"/>: its
    /// blocks there). A block it covers only in part and that the spill file does not hold yet is
    /// first completed from below.</summary>
    public void WriteInto(long chunk, uint valid, int inChunk, ReadOnlySpan<byte> piece)
    {
        int end = inChunk + piece.Length;
        Span<byte> block = stackalloc byte[BS];
        foreach (int b in (ReadOnlySpan<int>)[inChunk / BS, (end - 1) / BS])
        {
            int start = b * BS;
            bool partial = inChunk > start || end < start + BS;
            if (!partial || (valid & (1u << b)) != 0) continue;
            below.Read(table.ResolveSaved(chunk), chunk, start, block);
            int from = Math.Max(inChunk, start), to = Math.Min(end, start + BS);
            piece.Slice(from - inChunk, to - from).CopyTo(block[(from - start)..]);
            Write(chunk, start, block);
            valid |= 1u << b;
        }
        Write(chunk, inChunk, piece);
        table.SetSpilled(chunk, valid | BlocksOf(inChunk, piece.Length));
    }

    /// <summary>Reads a range of a spilled chunk (<paramref name="valid"/>: its blocks in the
    /// spill file): those blocks from the file, the rest from below.</summary>
    public void ReadRange(long chunk, uint valid, int inChunk, Span<byte> dest)
    {
        int pos = inChunk, end = inChunk + dest.Length;
        while (pos < end)
        {
            bool inSpill = (valid & (1u << (pos / BS))) != 0;
            int runEnd = Math.Min(end, (pos / BS + 1) * BS);
            while (runEnd < end && ((valid & (1u << (runEnd / BS))) != 0) == inSpill) runEnd = Math.Min(end, runEnd + BS);
            var part = dest.Slice(pos - inChunk, runEnd - pos);
            if (inSpill) Read(chunk, pos, part);
            else below.Read(table.ResolveSaved(chunk), chunk, pos, part);
            pos = runEnd;
        }
    }

    /// <summary>A chunk left the spill file (stored or zeroed): gives its space back.</summary>
    public void Release(long chunk) => Volatile.Read(ref _file)?.Release(chunk);

    private SpillFile FileForWrite()
    {
        if (Volatile.Read(ref _file) is { } f) return f;
        lock (_fileLock)
        {
            if (_file is null)
            {
                try { Volatile.Write(ref _file, SpillFile.Create(casPath)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                { throw DiskErrors.StoreFailure(e, $"cannot create a spill file in '{casPath}'"); }
            }
            return _file!;
        }
    }

    private void Write(long chunk, int inChunk, ReadOnlySpan<byte> data)
    {
        var file = FileForWrite();
        try { file.Write(chunk, inChunk, data); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw DiskErrors.StoreFailure(e, $"disk chunk {chunk}: cannot write to the spill file in '{file.Location}'"); }
    }

    private void Read(long chunk, int inChunk, Span<byte> dest)
    {
        var file = _file!;
        try { file.Read(chunk, inChunk, dest); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new BlockDevices.BlockDeviceException(BlockDevices.BlockDeviceError.IO, $"disk chunk {chunk}: cannot read the spill file in '{file.Location}': {e.Message}", e); }
    }

    public void Dispose() => _file?.Dispose();
}
