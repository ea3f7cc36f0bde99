using System.Buffers;
using System.Buffers.Binary;
using System.Text;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// shuru's <c>.idx</c> file, byte-compatible: little-endian disk_size u64, num_chunks u64,
/// parent_len u32 + UTF-8, fallback_len u32 + UTF-8, then per chunk hash_len u32 + hash
/// (64 lowercase hex or the 4-byte sentinel <c>ZERO</c>). There is no magic or checksum, so
/// loading validates every field before trusting or allocating for it: a hostile or truncated
/// index is rejected with <see cref="ShuruErrorKind.IndexInvalid"/> naming the file and offset.
/// An entry is <c>null</c> for <c>ZERO</c> ("not set here, look further down").
/// </summary>
public sealed class ChunkIndexFile
{
    /// <summary>Longest parent/fallback path accepted (PATH_MAX on Linux).</summary>
    public const int MaxPathBytes = 4096;
    /// <summary>Largest disk accepted: 1 PiB (16 Gi entries would never fit in memory anyway).</summary>
    public const long MaxDiskSize = 1L << 50;
    private const int ChunkSize = ChunkHasher.ChunkSize;
    private static readonly byte[] ZeroSentinel = "ZERO"u8.ToArray();
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <summary>Creates an index of <paramref name="diskSize"/> bytes with every entry ZERO.</summary>
    public ChunkIndexFile(long diskSize, string? parentPath = null, string? fallbackPath = null)
        : this(diskSize, parentPath, fallbackPath, new ChunkHash?[ChunkCountFor(diskSize)]) { }

    /// <summary>Creates an index from entries (null = ZERO). The array is used, not copied.</summary>
    public ChunkIndexFile(long diskSize, string? parentPath, string? fallbackPath, ChunkHash?[] entries)
    {
        if (diskSize < 0 || diskSize > MaxDiskSize) throw new ArgumentOutOfRangeException(nameof(diskSize));
        if (entries.LongLength != ChunkCountFor(diskSize))
            throw new ArgumentException($"{entries.Length} entries for a disk of {diskSize} bytes; expected {ChunkCountFor(diskSize)}", nameof(entries));
        CheckPath(parentPath, nameof(parentPath));
        CheckPath(fallbackPath, nameof(fallbackPath));
        DiskSize = diskSize;
        ParentPath = string.IsNullOrEmpty(parentPath) ? null : parentPath;
        FallbackPath = string.IsNullOrEmpty(fallbackPath) ? null : fallbackPath;
        Entries = entries;
    }

    private static void CheckPath(string? p, string name)
    {
        if (p is null) return;
        if (Encoding.UTF8.GetByteCount(p) > MaxPathBytes) throw new ArgumentException($"path longer than {MaxPathBytes} bytes", name);
        if (p.Contains('\0')) throw new ArgumentException("path contains NUL", name);
    }

    /// <summary>Number of 64 KiB entries a disk of this size has: ceil(size / 65536).</summary>
    public static long ChunkCountFor(long diskSize) => (diskSize + ChunkSize - 1) / ChunkSize;

    /// <summary>Virtual size in bytes.</summary>
    public long DiskSize { get; }
    /// <summary>Number of entries (= ceil(DiskSize / 65536)).</summary>
    public long ChunkCount => Entries.LongLength;
    /// <summary>The index this one was checkpointed from, or null.</summary>
    public string? ParentPath { get; }
    /// <summary>The flat base image at the bottom of the chain, or null.</summary>
    public string? FallbackPath { get; }
    /// <summary>One entry per chunk; null means the <c>ZERO</c> sentinel.</summary>
    public ChunkHash?[] Entries { get; }
    /// <summary>The file this was loaded from, if any.</summary>
    public string? SourcePath { get; private init; }

    /// <summary>Entry <paramref name="chunk"/> or null (ZERO) when the index is shorter.</summary>
    public ChunkHash? EntryAt(long chunk) => chunk < Entries.LongLength ? Entries[chunk] : null;

    /// <summary>Loads and fully validates an index. Missing file: <see cref="ShuruErrorKind.IndexNotFound"/>;
    /// any malformed field: <see cref="ShuruErrorKind.IndexInvalid"/>.</summary>
    public static ChunkIndexFile Load(string path)
    {
        string full = Path.GetFullPath(path);
        if (FileStatusCalls.DescribeNonFile(full) is { } what)
            throw new ShuruStoreException(ShuruErrorKind.IndexInvalid, $"index '{full}' is {what}, not a file", full);
        FileStream fs;
        try { fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new ShuruStoreException(ShuruErrorKind.IndexNotFound, $"index '{full}' does not exist", full, e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ShuruStoreException(ShuruErrorKind.IOError, $"cannot open index '{full}': {e.Message}", full, e); }
        using (fs)
        {
            try { return Parse(fs, full); }
            catch (EndOfStreamException e)
            { throw Invalid(full, fs.Position, "file is truncated", e); }
            catch (IOException e) when (e is not EndOfStreamException)
            { throw new ShuruStoreException(ShuruErrorKind.IOError, $"cannot read index '{full}': {e.Message}", full, e); }
        }
    }

    private static ShuruStoreException Invalid(string file, long offset, string what, Exception? inner = null) =>
        new(ShuruErrorKind.IndexInvalid, $"index '{file}' is invalid at byte offset {offset}: {what}", file, inner);

    private static ChunkIndexFile Parse(Stream s, string file)
    {
        long fileLength = s.Length;
        Span<byte> b8 = stackalloc byte[8];
        long pos = 0;

        void ReadExact(Span<byte> dst)
        {
            if (fileLength - pos < dst.Length) throw Invalid(file, pos, $"file is truncated (needs {dst.Length} more bytes, {Math.Max(0, fileLength - pos)} left)");
            s.ReadExactly(dst);
            pos += dst.Length;
        }

        ReadExact(b8);
        ulong diskSize = BinaryPrimitives.ReadUInt64LittleEndian(b8);
        if (diskSize > MaxDiskSize) throw Invalid(file, 0, $"disk_size {diskSize} exceeds the supported maximum {MaxDiskSize}");
        ReadExact(b8);
        ulong numChunks = BinaryPrimitives.ReadUInt64LittleEndian(b8);
        ulong expected = ((ulong)diskSize + ChunkSize - 1) / ChunkSize;
        if (numChunks != expected) throw Invalid(file, 8, $"num_chunks {numChunks} does not match ceil(disk_size {diskSize} / 65536) = {expected}");

        string? parent = ReadPath("parent_path");
        string? fallback = ReadPath("fallback_path");

        // Every entry takes at least 8 bytes (u32 length + "ZERO"): refuse before allocating.
        if ((ulong)(fileLength - pos) / 8 < numChunks)
            throw Invalid(file, pos, $"num_chunks {numChunks} needs at least {numChunks * 8} bytes of entries, the file has {fileLength - pos} left");

        // The map is one array in memory: beyond Array.MaxLength entries it cannot exist.
        if (numChunks > (ulong)Array.MaxLength)
            throw Invalid(file, 8, $"num_chunks {numChunks} exceeds the supported maximum of {Array.MaxLength} entries");

        // A (sparse) file can be long enough for any count: grow the array as entries prove valid,
        // so a bad entry is refused before a large allocation.
        var entries = new ChunkHash?[(int)Math.Min(numChunks, 1UL << 16)];
        Span<byte> hashText = stackalloc byte[ChunkHash.HexLength];
        Span<byte> b4 = stackalloc byte[4];
        for (long i = 0; i < (long)numChunks; i++)
        {
            if (i == entries.Length) Array.Resize(ref entries, (int)Math.Min(numChunks, (ulong)entries.Length * 2));
            long at = pos;
            ReadExact(b4);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(b4);
            if (len == 4)
            {
                ReadExact(b4);
                if (!b4.SequenceEqual(ZeroSentinel)) throw Invalid(file, at, $"entry {i}: 4-byte hash is not the ZERO sentinel");
                entries[i] = null;
            }
            else if (len == ChunkHash.HexLength)
            {
                ReadExact(hashText);
                if (!ChunkHash.TryParseUtf8(hashText, out var h))
                    throw Invalid(file, at, $"entry {i}: hash is not 64 lowercase hex characters");
                entries[i] = h;
            }
            else throw Invalid(file, at, $"entry {i}: hash_len {len} (must be 64, or 4 for ZERO)");
        }
        return new ChunkIndexFile((long)diskSize, parent, fallback, entries) { SourcePath = file };

        string? ReadPath(string field)
        {
            long at = pos;
            Span<byte> l = stackalloc byte[4];
            ReadExact(l);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(l);
            if (len > MaxPathBytes) throw Invalid(file, at, $"{field} length {len} exceeds {MaxPathBytes} bytes");
            if (len > fileLength - pos) throw Invalid(file, at, $"{field} length {len} runs past the end of the file");
            if (len == 0) return null;
            var bytes = new byte[len];
            ReadExact(bytes);
            string text;
            try { text = StrictUtf8.GetString(bytes); }
            catch (DecoderFallbackException e) { throw Invalid(file, at + 4, $"{field} is not valid UTF-8", e); }
            if (text.Contains('\0')) throw Invalid(file, at + 4, $"{field} contains a NUL character");
            return text;
        }
    }

    /// <summary>The exact bytes shuru would write for this index.</summary>
    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        WriteTo(ms);
        return ms.ToArray();
    }

    /// <summary>Serialises in shuru's format.</summary>
    public void WriteTo(Stream stream)
    {
        var parent = Encoding.UTF8.GetBytes(ParentPath ?? "");
        var fallback = Encoding.UTF8.GetBytes(FallbackPath ?? "");
        var buf = new byte[24 + parent.Length + fallback.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(buf, (ulong)DiskSize);
        BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(8), (ulong)ChunkCount);
        BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(16), (uint)parent.Length);
        parent.CopyTo(buf, 20);
        BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(20 + parent.Length), (uint)fallback.Length);
        fallback.CopyTo(buf, 24 + parent.Length);
        stream.Write(buf);
        // Entries go out in 1 MiB blocks: one Stream.Write per 68-byte entry cost more than the fsync.
        const int EntryMax = 4 + ChunkHash.HexLength;
        byte[] block = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            int used = 0;
            foreach (var e in Entries)
            {
                if (used > block.Length - EntryMax) { stream.Write(block, 0, used); used = 0; }
                var entry = block.AsSpan(used);
                if (e is { } h)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(entry, ChunkHash.HexLength);
                    h.FormatUtf8(entry[4..EntryMax]);
                    used += EntryMax;
                }
                else
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(entry, 4);
                    ZeroSentinel.CopyTo(entry[4..]);
                    used += 8;
                }
            }
            stream.Write(block, 0, used);
        }
        finally { ArrayPool<byte>.Shared.Return(block); }
    }

    /// <summary>Saves atomically (temp file, fsync, rename, directory fsync): a crash leaves the
    /// old index or the new one, never half of one. A missing folder is created first, with its
    /// missing ancestors, as shuru does (<c>create_dir_all</c>), and made durable too.</summary>
    public void Save(string path)
    {
        try
        {
            DurableDirectory.CreateAll(Path.GetDirectoryName(Path.GetFullPath(path))!);
            AtomicFile.Write(path, WriteTo);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kind = Errno.IsNoSpace(e) ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError;
            throw new ShuruStoreException(kind, $"cannot save index '{path}': {e.Message}", path, e);
        }
    }
}
