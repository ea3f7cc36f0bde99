using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Maintenance;

/// <summary>What a file in <c>&lt;cas&gt;/chunks/</c> is, by its name.</summary>
internal enum ChunkFileKind
{
    /// <summary>A chunk: 64 lowercase hex.</summary>
    Chunk,
    /// <summary><c>.tmp-*</c>: a chunk write that was interrupted (or is in progress).</summary>
    Temporary,
    /// <summary><c>.gc-&lt;hash&gt;-*</c>: a chunk set aside by a garbage collection that was interrupted.</summary>
    Quarantined,
    /// <summary>Anything else (never touched).</summary>
    Other,
}

/// <summary>Naming rules of the chunk directory shared by the verifier and the collector.</summary>
internal static class ChunkFileNames
{
    /// <summary>Prefix of chunk writes in progress (see <see cref="FileChunkStore"/>).</summary>
    public const string TempPrefix = ".tmp-";
    /// <summary>Prefix of chunks a collection set aside before deleting them.</summary>
    public const string QuarantinePrefix = ".gc-";

    public static ChunkFileKind Classify(string name, out ChunkHash hash)
    {
        hash = default;
        if (ChunkHash.TryParse(name, out hash)) return ChunkFileKind.Chunk;
        if (name.StartsWith(TempPrefix, StringComparison.Ordinal)) return ChunkFileKind.Temporary;
        if (name.StartsWith(QuarantinePrefix, StringComparison.Ordinal) && name.Length > QuarantinePrefix.Length + ChunkHash.HexLength &&
            ChunkHash.TryParse(name.AsSpan(QuarantinePrefix.Length, ChunkHash.HexLength), out hash))
            return ChunkFileKind.Quarantined;
        return ChunkFileKind.Other;
    }

    public static string QuarantineName(ChunkHash hash) => $"{QuarantinePrefix}{hash}-{Guid.NewGuid().ToString("N")[..12]}";

    /// <summary>Re-hashes a chunk file: null when it is sound, else why not.</summary>
    public static string? CheckContent(string path, ChunkHash expected, byte[] buffer, out long length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        length = RandomAccess.GetLength(handle);
        if (length > ChunkHasher.ChunkSize) return $"{length} bytes, more than 64 KiB";
        int total = 0;
        while (total < length)
        {
            int n = RandomAccess.Read(handle, buffer.AsSpan(total, (int)length - total), total);
            if (n == 0) break;
            total += n;
        }
        if (total != length) return $"shorter than its size ({total} of {length} bytes read)";
        var actual = ChunkHasher.Hash(buffer.AsSpan(0, total));
        return actual == expected ? null : $"content hashes to {actual}";
    }
}
