using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>
/// The base image of a local chain as an index of its own, so a published chain needs no image
/// file: entry <c>c</c> names the chunk of base piece <c>c</c> (hashed as lazy ingestion would
/// store it: 64 KiB, shorter at the base's end), for every piece the chain can fall through to,
/// that is every piece the bottom index leaves <c>ZERO</c>. All-zero pieces stay <c>ZERO</c>:
/// with nothing below, they read as zeros, as the base did. Its disk size is the base's length.
/// </summary>
internal static class BasePiecesIndex
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int PiecesPerRead = 64;

    /// <summary>The index of the pieces of <paramref name="basePath"/> that <paramref name="bottom"/>
    /// leaves to the base, and where each named chunk starts in the base.</summary>
    public static (ChunkIndexFile Index, Dictionary<ChunkHash, long> Offsets) Build(string basePath, ChunkIndexFile bottom, CancellationToken cancel)
    {
        using var handle = DiskImporter.OpenRead(basePath, ShuruErrorKind.BaseImageMissing, "base image");
        long length = RandomAccess.GetLength(handle);
        long count = ChunkIndexFile.ChunkCountFor(length);
        var entries = new ChunkHash?[count];
        var offsets = new Dictionary<ChunkHash, long>();
        var buffer = new byte[PiecesPerRead * CS];
        for (long first = 0; first < count; first += PiecesPerRead)
        {
            cancel.ThrowIfCancellationRequested();
            long start = first * CS;
            int want = (int)Math.Min(buffer.Length, length - start);
            DiskImporter.ReadExactly(handle, buffer.AsSpan(0, want), start, basePath);
            int pieces = (int)Math.Min(PiecesPerRead, count - first);
            var hashes = new ChunkHash?[pieces];
            Parallel.For(0, pieces, i =>
            {
                if (bottom.EntryAt(first + i) is not null) return; // never falls through to the base
                var piece = buffer.AsSpan(i * CS, Math.Min(CS, want - i * CS));
                if (!ChunkHasher.IsAllZero(piece)) hashes[i] = ChunkHasher.Hash(piece);
            });
            for (int i = 0; i < pieces; i++)
            {
                if (hashes[i] is not { } h) continue;
                entries[first + i] = h;
                offsets.TryAdd(h, (first + i) * CS);
            }
        }
        return (new ChunkIndexFile(length, null, null, entries), offsets);
    }

    /// <summary>Reads a base piece for upload and checks it still hashes to its planned name.</summary>
    public static int ReadPiece(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string basePath, long offset, ChunkHash expected, Span<byte> destination)
    {
        long length = RandomAccess.GetLength(handle);
        int len = (int)Math.Min(CS, length - offset);
        if (len <= 0)
            throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing, $"base image '{basePath}' is shorter than when the publish was planned", basePath);
        DiskImporter.ReadExactly(handle, destination[..len], offset, basePath);
        if (ChunkHasher.Hash(destination[..len]) != expected)
            throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt,
                $"base image '{basePath}' changed at byte {offset} since the publish was planned (piece no longer hashes to {expected})", basePath);
        return len;
    }
}
