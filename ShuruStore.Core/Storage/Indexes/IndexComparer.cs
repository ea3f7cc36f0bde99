namespace ShuruStore.Core.Storage;

/// <summary>A run of bytes of the virtual disk.</summary>
public readonly record struct ByteRange(long Offset, long Length)
{
    /// <summary>One past the last byte.</summary>
    public long End => Offset + Length;
}

/// <summary>The result of <see cref="IndexComparer.Compare"/>.</summary>
public sealed record IndexComparison(
    string PathA, string PathB, long DiskSizeA, long DiskSizeB,
    IReadOnlyList<ByteRange> Differences, long DifferingBytes, long DifferingChunks, long ComparedChunks)
{
    /// <summary>Whether both indexes describe the same content.</summary>
    public bool Identical => Differences.Count == 0 && DiskSizeA == DiskSizeB;

    /// <summary>Chains that stop at a missing parent (each side compared as what is left of it).</summary>
    public IReadOnlyList<MissingParentLink> MissingParents { get; init; } = [];

    /// <summary>Stored relative paths of either chain whose two readings name different files.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Compares what two indexes read as, chunk by chunk, resolving both chains. Content is
/// compared by name: equal hashes are equal content, the zero-chunk hash equals "no layer",
/// and the same base image chunk equals itself. Base pieces are only read (and hashed) when
/// the other side is not the same base piece. Never reads the chunk store. A chain that stops
/// at a missing parent is compared as it reads without it, and the result says so.
/// </summary>
public static class IndexComparer
{
    private const int CS = ChunkHasher.ChunkSize;

    /// <summary>Differing byte ranges (chunk-granular, merged, clipped to the larger disk) and totals.
    /// Past the end of the smaller disk, it reads as zeros.</summary>
    public static IndexComparison Compare(string indexA, string indexB, IndexPathResolver? paths = null)
    {
        paths ??= IndexPathResolver.ForCurrentDirectory();
        var a = IndexChainView.Open(indexA, paths);
        var b = IndexChainView.Open(indexB, paths);
        long size = Math.Max(a.DiskSize, b.DiskSize);
        long chunks = ChunkIndexFile.ChunkCountFor(size);
        var ranges = new List<ByteRange>();
        long diffBytes = 0, diffChunks = 0;
        using var baseA = new BaseReader(a);
        using var baseB = new BaseReader(b);
        for (long c = 0; c < chunks; c++)
        {
            var la = c < a.ChunkCount ? a.Locate(c) : default(ChunkLocation?);
            var lb = c < b.ChunkCount ? b.Locate(c) : default(ChunkLocation?);
            if (Same(la, lb, c, baseA, baseB)) continue;
            long off = c * CS;
            long len = Math.Min(CS, size - off);
            diffChunks++;
            diffBytes += len;
            if (ranges.Count > 0 && ranges[^1].End == off) ranges[^1] = ranges[^1] with { Length = ranges[^1].Length + len };
            else ranges.Add(new ByteRange(off, len));
        }
        return new IndexComparison(a.Chain.Path, b.Chain.Path, a.DiskSize, b.DiskSize, ranges, diffBytes, diffChunks, chunks)
        {
            MissingParents = [.. new[] { a.Chain.MissingParent, b.Chain.MissingParent }.OfType<MissingParentLink>().Distinct()],
            Warnings = [.. a.Chain.Warnings.Concat(b.Chain.Warnings).Distinct()],
        };
    }

    private static bool Same(ChunkLocation? la, ChunkLocation? lb, long chunk, BaseReader ra, BaseReader rb)
    {
        if (la is { Source: ChunkSource.Base } x && lb is { Source: ChunkSource.Base } y &&
            string.Equals(x.LayerPath, y.LayerPath, StringComparison.Ordinal))
            return true;
        return Key(la, chunk, ra) == Key(lb, chunk, rb);
    }

    // Content key: the chunk hash; zeros and all-zero base pieces map to the zero-chunk hash.
    private static ChunkHash Key(ChunkLocation? loc, long chunk, BaseReader reader)
    {
        if (loc is not { } l || l.Source == ChunkSource.Zeros) return ChunkHash.ZeroChunk;
        if (l.Hash is { } h) return h;
        return reader.PieceKey(chunk);
    }

    /// <summary>Reads base pieces on demand, hashed as lazy ingestion would name them.</summary>
    private sealed class BaseReader(IndexChainView view) : IDisposable
    {
        private FileStream? _fs;
        private readonly byte[] _buf = new byte[CS];

        public ChunkHash PieceKey(long chunk)
        {
            try
            {
                _fs ??= new FileStream(view.BaseImagePath!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing, $"base image '{view.BaseImagePath}' cannot be read: {e.Message}", view.BaseImagePath, e);
            }
            long off = chunk * CS;
            int len = (int)Math.Min(CS, Math.Max(0, _fs.Length - off));
            _fs.Position = off;
            _fs.ReadExactly(_buf, 0, len);
            var piece = _buf.AsSpan(0, len);
            return ChunkHasher.IsAllZero(piece) ? ChunkHash.ZeroChunk : ChunkHasher.Hash(piece);
        }

        public void Dispose() => _fs?.Dispose();
    }
}
