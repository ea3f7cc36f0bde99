using System.Buffers.Binary;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>One chunk of a pack: its name and stored length (at most 64 KiB; shorter only for
/// the last piece of a disk or base image).</summary>
public readonly record struct PackEntry(ChunkHash Hash, int Length);

/// <summary>
/// A pack object: chunks concatenated after a header that names them. Little-endian:
/// magic <c>SHRUPACK</c>, u32 version 1, u32 entry count N, then N × (32-byte BLAKE3 name, u32
/// length); the chunks' bytes follow in the same order, without gaps. The pack's name is derived
/// from the header (<see cref="PackId.OfHeader"/>), so a pack read back can be checked against
/// its key, and every chunk against its name. A reader that knows where a chunk is (from a
/// <see cref="ChunkMap"/>) reads just its range; the header makes a pack self-describing for
/// verification and for rebuilding lost maps.
/// </summary>
public static class ChunkPack
{
    private static ReadOnlySpan<byte> Magic => "SHRUPACK"u8;
    private const uint Version = 1;
    private const int FixedHeader = 16;
    private const int EntrySize = ChunkHash.Size + 4;

    /// <summary>Most chunks in one pack a reader accepts (256 MiB of full chunks).</summary>
    public const int MaxEntries = 4096;

    /// <summary>Bytes of the header of a pack of <paramref name="count"/> chunks.</summary>
    public static int HeaderLength(int count) => FixedHeader + count * EntrySize;

    /// <summary>The header of a pack holding these chunks in this order.</summary>
    public static byte[] BuildHeader(IReadOnlyList<PackEntry> entries)
    {
        if (entries.Count is 0 or > MaxEntries) throw new ArgumentException($"a pack holds 1 to {MaxEntries} chunks", nameof(entries));
        var header = new byte[HeaderLength(entries.Count)];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), (uint)entries.Count);
        int at = FixedHeader;
        foreach (var e in entries)
        {
            if (e.Length is <= 0 or > ChunkHasher.ChunkSize) throw new ArgumentException($"chunk {e.Hash} has length {e.Length}", nameof(entries));
            e.Hash.CopyTo(header.AsSpan(at));
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(at + ChunkHash.Size), (uint)e.Length);
            at += EntrySize;
        }
        return header;
    }

    /// <summary>Parses and checks a pack's header from the pack's first bytes (at least the
    /// header). False with the reason when it is not a pack header.</summary>
    public static bool TryParseHeader(ReadOnlySpan<byte> data, out PackEntry[] entries, out int headerLength, out string error)
    {
        entries = [];
        headerLength = 0;
        if (data.Length < FixedHeader || !data[..8].SequenceEqual(Magic)) { error = "it does not start with a pack header"; return false; }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (version != Version) { error = $"pack version {version} is not known (expected {Version})"; return false; }
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        if (count is 0 or > MaxEntries) { error = $"its header names {count} chunks (1 to {MaxEntries} expected)"; return false; }
        headerLength = HeaderLength((int)count);
        if (data.Length < headerLength) { error = $"its header needs {headerLength} bytes, {data.Length} were read"; return false; }
        entries = new PackEntry[count];
        for (int i = 0; i < count; i++)
        {
            var at = data[(FixedHeader + i * EntrySize)..];
            int length = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(at[ChunkHash.Size..]));
            if (length is <= 0 or > ChunkHasher.ChunkSize) { error = $"header entry {i} has length {length}"; return false; }
            entries[i] = new PackEntry(ChunkHash.FromBytes(at[..ChunkHash.Size]), length);
        }
        error = "";
        return true;
    }

    /// <summary>Bytes a full pack takes: header and chunks.</summary>
    public static long TotalLength(IReadOnlyList<PackEntry> entries) => HeaderLength(entries.Count) + entries.Sum(e => (long)e.Length);
}
