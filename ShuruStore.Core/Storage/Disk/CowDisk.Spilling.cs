using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// The spill file side of <see cref="CowDisk"/>: where unsaved chunks go past the dirty budget.
/// <para>Kept in 4 KiB blocks, not whole chunks: a random writer's evicted chunk usually has one
/// or two blocks written, the rest still equal to what lies below (the live entry, a parent, the
/// base), which cannot change while the chunk is unsaved. Only written blocks go to the spill file;
/// reads merge them over what lies below. Measured on these VMs, writing into new file pages costs
/// 6-10x more than into cached ones, so moving 64 KiB per eviction instead of the written 4 KiB
/// made eviction the whole cost of a random write (probe: 1 GiB working set, 256 MiB budget,
/// 200k 4 KiB writes: 4.1 s with whole chunks, 0.87 s with no eviction at all).</para>
/// <para>All of it runs under the chunk's stripe lock.</para>
/// </summary>
public sealed partial class CowDisk
{
    private const int BS = 4096;
    private const int BlocksPerChunk = CS / BS;
    private const uint AllBlocks = (1u << BlocksPerChunk) - 1;

    /// <summary>The 4 KiB blocks of a chunk that bytes [inChunk, inChunk + length) touch.</summary>
    private static uint BlocksOf(int inChunk, int length)
    {
        if (length <= 0) return 0;
        int first = inChunk / BS, last = (inChunk + length - 1) / BS;
        return (uint)(((1UL << (last + 1)) - 1) & ~((1UL << first) - 1));
    }

    /// <summary>Moves dirty buffers to the spill file (their written blocks only).</summary>
    private void MoveToSpillFile(List<long> chunks)
    {
        foreach (var chunk in chunks)
        {
            lock (Stripe(chunk))
            {
                if (!_dirty.TryGetValue(chunk, out var buf)) continue; // stored or zeroed meanwhile
                uint blocks = _dirtyBlocks.TryGetValue(chunk, out var b) ? b : AllBlocks;
                for (int first = 0; first < BlocksPerChunk;)
                {
                    if ((blocks & (1u << first)) == 0) { first++; continue; }
                    int end = first + 1;
                    while (end < BlocksPerChunk && (blocks & (1u << end)) != 0) end++;
                    WriteSpilled(chunk, first * BS, buf.AsSpan(first * BS, (end - first) * BS));
                    first = end;
                }
                _spilledChunks[chunk] = blocks;
                _dirty.TryRemove(chunk, out _);
                _dirtyBlocks.TryRemove(chunk, out _);
                _chunkPool.Return(buf);
                Interlocked.Add(ref _dirtyBytes, -CS);
                Interlocked.Increment(ref _spilled);
            }
        }
    }

    /// <summary>A write into a chunk that is in the spill file. A block it covers only in part and
    /// that the spill file does not hold yet is first completed from below.</summary>
    private void WriteIntoSpill(long chunk, int inChunk, ReadOnlySpan<byte> piece)
    {
        uint valid = _spilledChunks[chunk];
        int end = inChunk + piece.Length;
        Span<byte> block = stackalloc byte[BS];
        foreach (int b in (ReadOnlySpan<int>)[inChunk / BS, (end - 1) / BS])
        {
            int start = b * BS;
            bool partial = inChunk > start || end < start + BS;
            if (!partial || (valid & (1u << b)) != 0) continue;
            ReadBelow(chunk, start, block);
            int from = Math.Max(inChunk, start), to = Math.Min(end, start + BS);
            piece.Slice(from - inChunk, to - from).CopyTo(block[(from - start)..]);
            WriteSpilled(chunk, start, block);
            valid |= 1u << b;
        }
        WriteSpilled(chunk, inChunk, piece);
        _spilledChunks[chunk] = valid | BlocksOf(inChunk, piece.Length);
    }

    /// <summary>Reads a range of a spilled chunk: its blocks in the spill file, the rest from below.</summary>
    private void ReadSpilledRange(long chunk, int inChunk, Span<byte> dest)
    {
        uint valid = _spilledChunks[chunk];
        int pos = inChunk, end = inChunk + dest.Length;
        while (pos < end)
        {
            bool inSpill = (valid & (1u << (pos / BS))) != 0;
            int runEnd = Math.Min(end, (pos / BS + 1) * BS);
            while (runEnd < end && ((valid & (1u << (runEnd / BS))) != 0) == inSpill) runEnd = Math.Min(end, runEnd + BS);
            var part = dest.Slice(pos - inChunk, runEnd - pos);
            if (inSpill) ReadSpilled(chunk, pos, part);
            else ReadBelow(chunk, pos, part);
            pos = runEnd;
        }
    }

    /// <summary>What a chunk holds below unsaved writes: its live entry, else the nearest parent's,
    /// else the base, else zeros. Immutable while the chunk is unsaved.</summary>
    private void ReadBelow(long chunk, int inChunk, Span<byte> dest)
    {
        if ((_live[chunk] ?? ParentEntry(chunk)) is { } h) ReadStoredRange(h, chunk, inChunk, dest);
        else ReadBaseRange(chunk * CS + inChunk, dest);
    }

    private SpillFile SpillFileForWrite()
    {
        if (Volatile.Read(ref _spillFile) is { } f) return f;
        lock (_spillFileLock)
        {
            if (_spillFile is null)
            {
                try { Volatile.Write(ref _spillFile, SpillFile.Create(CasPath)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                { throw StoreFailure(e, $"cannot create a spill file in '{CasPath}'"); }
            }
            return _spillFile!;
        }
    }

    private void WriteSpilled(long chunk, int inChunk, ReadOnlySpan<byte> data)
    {
        var file = SpillFileForWrite();
        try { file.Write(chunk, inChunk, data); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw StoreFailure(e, $"disk chunk {chunk}: cannot write to the spill file in '{file.Location}'"); }
    }

    private void ReadSpilled(long chunk, int inChunk, Span<byte> dest)
    {
        try { _spillFile!.Read(chunk, inChunk, dest); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: cannot read the spill file in '{_spillFile!.Location}': {e.Message}", e); }
    }
}
