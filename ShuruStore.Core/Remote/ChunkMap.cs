using System.Buffers.Binary;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>Where one chunk is: pack <see cref="Pack"/> (a position in <see cref="ChunkMap.Packs"/>),
/// bytes [<see cref="Offset"/>, +<see cref="Length"/>).</summary>
public readonly record struct MapEntry(ChunkHash Hash, int Pack, int Offset, int Length);

/// <summary>
/// The chunk map of a published index (<c>maps/NAME.map</c>): where each chunk its entries name
/// lives, for the chunks its ancestors' maps do not already locate, so the maps of a chain
/// together locate every chunk of the chain. Written before the index; it names the index it
/// belongs to by the BLAKE3 of the index's bytes, so a map is never used with another index.
/// <para>Format, little-endian: magic <c>SHRUMAP1</c>, u32 version 1, 32-byte BLAKE3 of the index,
/// u32 pack count P, P × 16-byte pack id, u32 entry count N, N × (32-byte chunk name, u32 pack
/// number, u32 offset, u32 length), then the 32-byte BLAKE3 of everything before it. Entries are
/// in pack order, chunks of a pack by offset (the order they were packed: disk order), which is
/// what lets a reader turn a sequential disk read into sequential ranges of packs.</para>
/// <para>Loading checks every field before trusting or allocating for it; a damaged or hostile
/// map is refused (<see cref="ShuruErrorKind.RemoteInvalid"/>).</para>
/// </summary>
public sealed class ChunkMap
{
    private static ReadOnlySpan<byte> Magic => "SHRUMAP1"u8;
    private const uint Version = 1;
    private const int EntrySize = ChunkHash.Size + 12;
    private const int DigestSize = 32;

    /// <summary>Most bytes of one pack a map may point into (a pack of <see cref="ChunkPack.MaxEntries"/> full chunks).</summary>
    public const long MaxPackBytes = (long)ChunkPack.MaxEntries * (ChunkHasher.ChunkSize + 36) + 16;

    /// <param name="indexDigest">BLAKE3 of the published index's bytes.</param>
    /// <param name="packs">The packs the entries point into.</param>
    /// <param name="entries">The chunks, in pack order.</param>
    public ChunkMap(ReadOnlyMemory<byte> indexDigest, IReadOnlyList<PackId> packs, IReadOnlyList<MapEntry> entries)
    {
        if (indexDigest.Length != DigestSize) throw new ArgumentException("an index digest is 32 bytes", nameof(indexDigest));
        foreach (var e in entries)
            if ((uint)e.Pack >= (uint)packs.Count || e.Offset < 0 || e.Length is <= 0 or > ChunkHasher.ChunkSize || e.Offset + (long)e.Length > MaxPackBytes)
                throw new ArgumentException($"map entry of chunk {e.Hash} is out of range", nameof(entries));
        IndexDigest = indexDigest;
        Packs = packs;
        Entries = entries;
    }

    /// <summary>BLAKE3 of the published index this map belongs to.</summary>
    public ReadOnlyMemory<byte> IndexDigest { get; }
    /// <summary>The packs the entries point into.</summary>
    public IReadOnlyList<PackId> Packs { get; }
    /// <summary>The chunks, in pack order.</summary>
    public IReadOnlyList<MapEntry> Entries { get; }

    /// <summary>Whether this map belongs to the index with these bytes.</summary>
    public bool BelongsTo(ReadOnlySpan<byte> indexBytes)
    {
        Span<byte> digest = stackalloc byte[DigestSize];
        Blake3.Hasher.Hash(indexBytes, digest);
        return digest.SequenceEqual(IndexDigest.Span);
    }

    /// <summary>BLAKE3 of an index's bytes, as a map names it.</summary>
    public static byte[] DigestOf(ReadOnlySpan<byte> indexBytes)
    {
        var digest = new byte[DigestSize];
        Blake3.Hasher.Hash(indexBytes, digest);
        return digest;
    }

    /// <summary>The serialised map.</summary>
    public byte[] ToBytes()
    {
        long length = 8 + 4 + DigestSize + 4 + (long)Packs.Count * PackId.Size + 4 + (long)Entries.Count * EntrySize + DigestSize;
        var bytes = new byte[length];
        var s = bytes.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], Version);
        IndexDigest.Span.CopyTo(s[12..]);
        int at = 12 + DigestSize;
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], (uint)Packs.Count);
        at += 4;
        foreach (var p in Packs) { p.CopyTo(s[at..]); at += PackId.Size; }
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], (uint)Entries.Count);
        at += 4;
        foreach (var e in Entries)
        {
            e.Hash.CopyTo(s[at..]);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 32)..], (uint)e.Pack);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 36)..], (uint)e.Offset);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 40)..], (uint)e.Length);
            at += EntrySize;
        }
        Blake3.Hasher.Hash(s[..at], s[at..]);
        return bytes;
    }

    /// <summary>Parses a map, checking every field; <paramref name="source"/> names it in errors.</summary>
    public static ChunkMap Parse(ReadOnlySpan<byte> data, string source)
    {
        ShuruStoreException Bad(string what) => new(ShuruErrorKind.RemoteInvalid, $"chunk map {source} is invalid: {what}", source);
        if (data.Length < 8 + 4 + DigestSize + 4 + 4 + DigestSize || !data[..8].SequenceEqual(Magic)) throw Bad("it does not start with a map header");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (version != Version) throw Bad($"version {version} is not known (expected {Version})");
        Span<byte> digest = stackalloc byte[DigestSize];
        Blake3.Hasher.Hash(data[..^DigestSize], digest);
        if (!digest.SequenceEqual(data[^DigestSize..])) throw Bad("its checksum does not match (damaged or truncated)");
        var body = data[..^DigestSize];
        var indexDigest = body.Slice(12, DigestSize).ToArray();
        int at = 12 + DigestSize;
        uint packCount = BinaryPrimitives.ReadUInt32LittleEndian(body[at..]);
        at += 4;
        if (packCount > (body.Length - at) / PackId.Size) throw Bad($"it names {packCount} packs, more than its length holds");
        var packs = new PackId[packCount];
        for (int i = 0; i < packCount; i++) { packs[i] = PackId.FromBytes(body.Slice(at, PackId.Size)); at += PackId.Size; }
        if (body.Length - at < 4) throw Bad("it is truncated before the entry count");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(body[at..]);
        at += 4;
        if ((long)count * EntrySize != body.Length - at) throw Bad($"it names {count} chunks but has room for {(body.Length - at) / (double)EntrySize:0.#}");
        var entries = new MapEntry[count];
        for (int i = 0; i < count; i++)
        {
            var e = body.Slice(at, EntrySize);
            var hash = ChunkHash.FromBytes(e[..32]);
            uint pack = BinaryPrimitives.ReadUInt32LittleEndian(e[32..]);
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(e[36..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(e[40..]);
            if (pack >= packCount) throw Bad($"entry {i} names pack {pack} of {packCount}");
            if (length is 0 or > ChunkHasher.ChunkSize || offset + (long)length > MaxPackBytes) throw Bad($"entry {i} has offset {offset} and length {length}");
            entries[i] = new MapEntry(hash, (int)pack, (int)offset, (int)length);
            at += EntrySize;
        }
        return new ChunkMap(indexDigest, packs, entries);
    }
}
