using System.Buffers.Binary;
using System.Numerics;
using System.Text;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// The live-state journal: what the disk's live chunk map looks like beyond the index it booted
/// from, so a server killed after answering a FLUSH resumes with nothing lost.
/// <para>Layout (little-endian):</para>
/// <list type="bullet">
/// <item>header: magic <c>"SHRUSTJ1"</c> (8), version u32 = 1, disk_size u64, base_len u32 + UTF-8
/// base image path, boot_len u32 + UTF-8 booted index path, 32-byte BLAKE3 of the booted index
/// file (zeros in lazy mode), CRC32C u32 of all preceding header bytes;</item>
/// <item>records, 45 bytes each: chunk u64, kind u8 (0 = ZERO, 1 = hash), hash 32 bytes (zeros for
/// ZERO), CRC32C u32 of the 41 preceding bytes.</item>
/// </list>
/// Replay applies records in order and stops at the first short or bad record (a torn append);
/// the file is truncated there so later appends are not hidden behind garbage. Records are
/// appended and fsynced at each flush, only after the chunks they name are durable. When the
/// journal grows past a few times the chunk count it is compacted: a snapshot of every entry
/// that differs from the booted index is written to a new file that atomically replaces it.
/// </summary>
internal sealed class StateJournal : IDisposable
{
    private static ReadOnlySpan<byte> Magic => "SHRUSTJ1"u8;
    private const uint Version = 1;
    internal const int RecordSize = 45;

    private FileStream _file;
    private readonly string _path;

    private StateJournal(string path, FileStream file, long records)
    {
        _path = path; _file = file; RecordCount = records;
    }

    public long RecordCount { get; private set; }

    /// <summary>Opens the journal. A writer takes an exclusive advisory lock (FileShare.None is
    /// flock(LOCK_EX) on Unix), a reader a shared one: two servers appending to one state file
    /// would interleave records, so the second is refused. The lock dies with the process.</summary>
    private static FileStream OpenLocked(string path, bool readOnly)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return readOnly
                    ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16)
                    : new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1 << 16);
            }
            catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException && File.Exists(path))
            {
                if (attempt == 0)
                {
                    // The holder may be a disk of this process that was dropped without Dispose
                    // (how tests and embedders simulate a crash): its handle closes when finalized.
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    GC.Collect();
                    continue;
                }
                throw new ShuruStoreException(ShuruErrorKind.StateInUse,
                    $"state file '{path}' is in use by another running disk (stop that server first)", path, e);
            }
        }
    }

    /// <summary>Releases the file without writing anything (tests simulate a crash with it).</summary>
    internal void Abandon() => _file.Dispose();

    internal readonly record struct Header(long DiskSize, string BasePath, string BootIndexPath, byte[] BootFingerprint);

    /// <summary>Reads the header and every good record of an existing journal; truncates a torn tail
    /// unless <paramref name="readOnly"/>.</summary>
    public static (Header Header, List<(long Chunk, ChunkHash? Hash)> Records, StateJournal? Journal) Open(string path, bool readOnly, long maxChunkCount)
    {
        var fs = OpenLocked(path, readOnly);
        try
        {
            var header = ReadHeader(fs, path);
            var records = ReadRecords(fs, maxChunkCount, out long good);
            if (readOnly) { fs.Dispose(); return (header, records, null); }
            if (fs.Length != good) { fs.SetLength(good); FileSync.FlushToDisk(fs); }
            fs.Position = good;
            return (header, records, new StateJournal(path, fs, records.Count));
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>Reads the header and every good record without taking the file's lock, for a
    /// collector marking the chunks of a disk that may be running (its server holds the lock and
    /// keeps appending: a torn last record is simply not read, and a compaction replaces the
    /// file whole, so either version is read complete).</summary>
    public static (Header Header, List<(long Chunk, ChunkHash? Hash)> Records) ReadUnlocked(string path, long maxChunkCount)
    {
        byte[] bytes;
        // A raw descriptor: .NET's FileStream would take a flock, which the running server's refuses.
        int fd = FileDescriptors.Open(path, FileDescriptors.O_RDONLY | FileDescriptors.O_CLOEXEC);
        if (fd < 0) throw Errno.Last("opening state file", path);
        try
        {
            if (!FileStatusCalls.TryStat(fd, out var status, out int errno))
                throw new IOException($"statx of state file '{path}' failed (errno {errno})", errno);
            bytes = new byte[status.Identity.Length];
            int n = FileDescriptors.ReadAt(fd, bytes, 0, out errno);
            if (n < 0) throw new IOException($"reading state file '{path}' failed (errno {errno})", errno);
            Array.Resize(ref bytes, n);
        }
        finally { FileDescriptors.Close(fd); }
        using var ms = new MemoryStream(bytes, writable: false);
        var header = ReadHeader(ms, path);
        return (header, ReadRecords(ms, maxChunkCount, out _));
    }

    /// <summary>Records from the stream's position to the first short or bad one; <paramref name="good"/>
    /// is where that one starts.</summary>
    private static List<(long Chunk, ChunkHash? Hash)> ReadRecords(Stream fs, long maxChunkCount, out long good)
    {
        var records = new List<(long, ChunkHash?)>();
        var rec = new byte[RecordSize];
        good = fs.Position;
        while (true)
        {
            int n = fs.ReadAtLeast(rec, RecordSize, throwOnEndOfStream: false);
            if (n < RecordSize) break;
            if (Crc32C(rec.AsSpan(0, 41)) != BinaryPrimitives.ReadUInt32LittleEndian(rec.AsSpan(41))) break;
            ulong chunk = BinaryPrimitives.ReadUInt64LittleEndian(rec);
            byte kind = rec[8];
            if (chunk >= (ulong)maxChunkCount || kind > 1) break;
            records.Add(((long)chunk, kind == 1 ? ChunkHash.FromBytes(rec.AsSpan(9, 32)) : null));
            good += RecordSize;
        }
        return records;
    }

    private static Header ReadHeader(Stream fs, string path)
    {
        ShuruStoreException Bad(string what) => new(ShuruErrorKind.StateInvalid, $"state file '{path}' is invalid: {what}", path);
        var buf = new MemoryStream();
        Span<byte> tmp = stackalloc byte[8];
        void Read(Span<byte> dst)
        {
            if (fs.ReadAtLeast(dst, dst.Length, throwOnEndOfStream: false) < dst.Length) throw Bad("header is truncated");
            buf.Write(dst);
        }
        Read(tmp);
        if (!tmp.SequenceEqual(Magic)) throw Bad("not a ShuruStore state file (bad magic)");
        Read(tmp[..4]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(tmp) != Version) throw Bad("unsupported version");
        Read(tmp);
        long diskSize = BinaryPrimitives.ReadInt64LittleEndian(tmp);
        if (diskSize <= 0 || diskSize > ChunkIndexFile.MaxDiskSize) throw Bad($"disk size {diskSize} out of range");
        string ReadString()
        {
            Span<byte> l = stackalloc byte[4];
            Read(l);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(l);
            if (len > ChunkIndexFile.MaxPathBytes) throw Bad("path length out of range");
            var s = new byte[len];
            Read(s);
            return Encoding.UTF8.GetString(s);
        }
        string basePath = ReadString();
        string boot = ReadString();
        var fp = new byte[32];
        Read(fp);
        uint crc = Crc32C(buf.GetBuffer().AsSpan(0, (int)buf.Length));
        Read(tmp[..4]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(tmp) != crc) throw Bad("header checksum mismatch");
        return new Header(diskSize, basePath, boot, fp);
    }

    private static byte[] HeaderBytes(Header h)
    {
        var ms = new MemoryStream();
        Span<byte> tmp = stackalloc byte[8];
        ms.Write(Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(tmp, Version); ms.Write(tmp[..4]);
        BinaryPrimitives.WriteInt64LittleEndian(tmp, h.DiskSize); ms.Write(tmp);
        foreach (var s in new[] { h.BasePath, h.BootIndexPath })
        {
            var b = Encoding.UTF8.GetBytes(s);
            BinaryPrimitives.WriteUInt32LittleEndian(tmp, (uint)b.Length); ms.Write(tmp[..4]);
            ms.Write(b);
        }
        ms.Write(h.BootFingerprint);
        BinaryPrimitives.WriteUInt32LittleEndian(tmp, Crc32C(ms.GetBuffer().AsSpan(0, (int)ms.Length)));
        ms.Write(tmp[..4]);
        return ms.ToArray();
    }

    private static void EncodeRecord(Span<byte> rec, long chunk, ChunkHash? hash)
    {
        rec.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(rec, (ulong)chunk);
        if (hash is { } h) { rec[8] = 1; h.CopyTo(rec.Slice(9, 32)); }
        BinaryPrimitives.WriteUInt32LittleEndian(rec[41..], Crc32C(rec[..41]));
    }

    /// <summary>Writes a fresh journal (header + snapshot records) atomically over <paramref name="path"/>
    /// and opens it for appending.</summary>
    public static StateJournal Create(string path, Header header, IEnumerable<(long Chunk, ChunkHash? Hash)> snapshot)
    {
        long count = 0;
        AtomicFile.Write(path, s =>
        {
            var bs = new BufferedStream(s, 1 << 16); // not disposed: that would close the caller's stream
            bs.Write(HeaderBytes(header));
            Span<byte> rec = stackalloc byte[RecordSize];
            foreach (var (c, h) in snapshot) { EncodeRecord(rec, c, h); bs.Write(rec); count++; }
            bs.Flush();
        });
        var fs = OpenLocked(path, readOnly: false);
        fs.Seek(0, SeekOrigin.End);
        return new StateJournal(path, fs, count);
    }

    /// <summary>Replaces this journal by a compacted one.</summary>
    public void Compact(Header header, IEnumerable<(long Chunk, ChunkHash? Hash)> snapshot)
    {
        StateJournal fresh;
        try
        {
            fresh = Create(_path, header, snapshot);
        }
        catch (Exception e)
        {
            // The new file may already have replaced the old one on disk, in which case appends
            // to the old (now unlinked) file would be answered and then lost. Refuse them all.
            _brokenReason = $"compacting the live-state file '{_path}' failed ({e.Message}); restart the server to resume from it";
            throw;
        }
        _file.Dispose();
        _file = fresh._file;
        RecordCount = fresh.RecordCount;
    }

    /// <summary>Set when a failed compaction left this object writing to a file that may no longer
    /// be the one on disk.</summary>
    private string? _brokenReason;

    /// <summary>Appends records and fsyncs. On failure the file is cut back to where it was so a
    /// half-written record never sits in front of later ones.</summary>
    public void Append(IReadOnlyList<(long Chunk, ChunkHash? Hash)> records)
    {
        if (records.Count == 0) return;
        if (_brokenReason is not null) throw new IOException(_brokenReason);
        long start = _file.Position;
        var buf = new byte[records.Count * RecordSize];
        for (int i = 0; i < records.Count; i++) EncodeRecord(buf.AsSpan(i * RecordSize, RecordSize), records[i].Chunk, records[i].Hash);
        try
        {
            _file.Write(buf);
            FileSync.FlushToDisk(_file);
        }
        catch
        {
            try { _file.SetLength(start); _file.Position = start; } catch { /* replay stops at the bad record anyway */ }
            throw;
        }
        RecordCount += records.Count;
    }

    /// <summary>CRC32C (Castagnoli), hardware-accelerated where available.</summary>
    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8) crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++) crc = BitOperations.Crc32C(crc, data[i]);
        return ~crc;
    }

    public void Dispose() => _file.Dispose();
}
