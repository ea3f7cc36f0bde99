using Microsoft.Win32.SafeHandles;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// The flat base image at the bottom of a disk (shuru's rootfs): read-only, its length fixed
/// when it opens. It must not shrink under the disk: bytes it no longer has are an I/O error,
/// never zeros (a missing base reading as zeros was a shuru defect).
/// </summary>
internal sealed class BaseImage : IDisposable
{
    private const int CS = ChunkHasher.ChunkSize;
    private readonly SafeFileHandle _handle;
    private BaseFileLease? _lease;

    private BaseImage(string path, SafeFileHandle handle, long length)
    {
        Path = path; _handle = handle; Length = length;
    }

    /// <summary>Absolute path.</summary>
    public string Path { get; }
    /// <summary>Bytes, as when it opened.</summary>
    public long Length { get; }

    /// <summary>Opens the image; anything but a readable regular file (or block device) is
    /// <see cref="ShuruErrorKind.BaseImageMissing"/>.</summary>
    public static BaseImage Open(string path)
    {
        if (FileStatusCalls.DescribeNonFile(path) is { } what)
            throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing, $"base image '{path}' is {what}, not a disk image", path);
        try
        {
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return new BaseImage(path, handle, RandomAccess.GetLength(handle));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing,
                $"base image '{path}' does not exist or cannot be opened: {e.Message}", path, e);
        }
    }

    /// <summary>Whether the base has bytes for this chunk.</summary>
    public bool Covers(long chunk) => chunk * CS < Length;

    /// <summary>Reads from <paramref name="start"/>; past the base's end reads as zeros. Returns
    /// how many bytes the base provided.</summary>
    public int ReadRange(long start, Span<byte> dest)
    {
        int len = start >= Length ? 0 : (int)Math.Min(dest.Length, Length - start);
        int total = 0;
        try
        {
            while (total < len)
            {
                int n = RandomAccess.Read(_handle, dest[total..len], start + total);
                if (n == 0) break;
                total += n;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            throw new BlockDeviceException(BlockDeviceError.IO, $"cannot read base image '{Path}' at {start}: {e.Message}", e);
        }
        if (total < len)
            throw new BlockDeviceException(BlockDeviceError.IO, $"base image '{Path}' is shorter than when it was opened (offset {start + total})");
        dest[len..].Clear();
        return len;
    }

    /// <summary>Reads bytes already in the page cache, or nothing (false). A range past the
    /// base's end is false too: the ordinary read decides what it holds.</summary>
    public bool TryReadNoWait(long offset, Span<byte> dest) =>
        offset + dest.Length <= Length && NoWaitReads.Pread(_handle, dest, offset) == NoWaitRead.Done;

    /// <summary>The base's next data run [Start, End) at or after the last chunk asked about,
    /// from SEEK_DATA / SEEK_HOLE; End == 0 means not looked up yet.</summary>
    public struct DataRun
    {
        public long Start, End;
        public bool Unknown; // lseek unsupported: every base chunk counts as data
    }

    /// <summary>Whether the base has data in a chunk (a chunk entirely in a hole of a sparse base
    /// reads as zeros, so BLOCK_STATUS may call it a hole and sparse copies skip it).</summary>
    public bool HasData(long chunk, ref DataRun run)
    {
        if (!OperatingSystem.IsLinux() || run.Unknown) return true;
        long start = chunk * CS, end = Math.Min(start + CS, Length);
        if (start >= run.End)
        {
            int fd = (int)_handle.DangerousGetHandle();
            long ds = SparseFiles.lseek(fd, start, SparseFiles.SEEK_DATA);
            if (ds < 0)
            {
                if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Errno.ENXIO) { run.Unknown = true; return true; }
                // ENXIO also means "past the end of the file": if the base shrank under us, the
                // range is not a hole but missing data, and reading it must be EIO, never zeros.
                if (RandomAccess.GetLength(_handle) < Length) { run.Unknown = true; return true; }
                run.Start = run.End = long.MaxValue; // no data from here to the end
            }
            else
            {
                long de = SparseFiles.lseek(fd, ds, SparseFiles.SEEK_HOLE);
                run.Start = ds;
                run.End = de < 0 ? long.MaxValue : Math.Max(de, ds + 1);
            }
        }
        return run.Start < end;
    }

    /// <summary>Adds base bytes [offset, +length) for sendfile, merged with the range before when
    /// it is the base's and adjacent (a cold 256 KiB read is one send, not four). False when the
    /// range runs past the base (zeros: the ordinary read serves it) or the base has shrunk.</summary>
    public bool TryAddFileRange(long offset, int length, List<FileRange> ranges)
    {
        if (offset + length > Length) return false;
        var lease = _lease ??= new BaseFileLease(_handle, Length);
        if (ranges.Count > 0 && ranges[^1] is { } last && ReferenceEquals(last.Lease, lease)
            && last.FileOffset + last.Length == offset && last.Length + (long)length <= int.MaxValue)
        {
            ranges[^1] = last with { Length = last.Length + length };
            return true;
        }
        if (!lease.TryTake()) return false;
        var range = new FileRange(lease.Descriptor, offset, length, lease);
        ranges.Add(range); // the caller releases it, also when this returns false
        // A base that already shrank goes to the ordinary read, which answers EIO and keeps the connection.
        return lease.StillValid(range);
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>The base lent for sendfile. The ordinary read says EIO when the base has become
    /// shorter than when the disk opened, so the length is checked before a range is lent (such a
    /// read goes to the ordinary path and gets its EIO) and after it was sent (a base that shrank
    /// during the send ends the connection before the reply completes).</summary>
    private sealed class BaseFileLease(SafeFileHandle handle, long length) : IFileRangeLease
    {
        public int Descriptor { get; } = (int)handle.DangerousGetHandle();

        public bool TryTake()
        {
            bool added = false;
            try { handle.DangerousAddRef(ref added); }
            catch (ObjectDisposedException) { return false; }
            return added;
        }

        public bool MayChange => true;

        public bool StillValid(in FileRange range) =>
            FileStatusCalls.TryStat(Descriptor, out var now, out _) && now.Identity.Length >= length;

        public void Release(in FileRange range) => handle.DangerousRelease();
    }
}
