using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.BlockDevices;

/// <summary>
/// A raw image file exported as a block device. All I/O is positional (pread/pwrite through
/// <see cref="RandomAccess"/>), so concurrent requests need no locking: the kernel orders them.
/// One file descriptor serves every connection, so an fsync covers writes from all of them,
/// which is what lets the server advertise multi-connection consistency.
/// </summary>
public sealed class FlatFileDevice : IBlockDevice
{
    private const int ZeroBufferSize = 1 << 20;
    private readonly SafeFileHandle _handle;
    private readonly int _fd;
    private readonly IFileRangeLease _lease;
    private readonly bool _readOnly;
    // Learned on first failure; a stale "true" read by another thread only costs one more
    // failing syscall, so plain fields are enough.
    private bool _punchSupported = true;
    private bool _zeroRangeSupported = true;
    private bool _noWaitSupported = true;
    // The same file opened with O_DIRECT, for large aligned writes (see WriteDirect); null when
    // turned off or refused by the filesystem. _directFailed: a direct write failed, stop using it.
    private readonly SafeFileHandle? _direct;
    private volatile bool _directFailed;
    private long _directWrites;

    /// <summary>Writes that went to the disk with O_DIRECT (tests).</summary>
    internal long DirectWrites => Interlocked.Read(ref _directWrites);

    // The last data run SEEK_HOLE found. On a fully allocated file SEEK_HOLE walks every extent
    // up to the end of the file, and the NBD server asks for the
    // extents of every READ it answers: a sequential read would pay that per request. A run is
    // only ever a claim of data, which is always safe to report (the bytes are read and sent),
    // and data only turns into a hole when this device punches one, which bumps the generation.
    private KnownDataRun? _knownData;
    private long _layoutGeneration;

    private sealed record KnownDataRun(long Start, long End, long Generation);

    /// <summary>Opens <paramref name="path"/>. A missing or unopenable file is
    /// <see cref="ShuruErrorKind.ImageNotFound"/>. <paramref name="directWrites"/>: large aligned
    /// writes go to the disk with O_DIRECT where the filesystem allows it.</summary>
    public FlatFileDevice(string path, bool readOnly = false, bool directWrites = true)
    {
        Path = System.IO.Path.GetFullPath(path);
        _readOnly = readOnly;
        if (!File.Exists(Path))
            throw new ShuruStoreException(ShuruErrorKind.ImageNotFound,
                $"Image file '{Path}' does not exist.", Path);
        try
        {
            _handle = File.OpenHandle(Path, FileMode.Open,
                readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(ShuruErrorKind.ImageNotFound,
                $"Image file '{Path}' cannot be opened {(readOnly ? "for reading" : "for reading and writing")}: {ex.Message}",
                Path, ex);
        }
        _fd = (int)_handle.DangerousGetHandle();
        if (!readOnly && directWrites) _direct = FileDescriptors.OpenDirectForWriting(Path);
        _lease = new HandleLease(_handle);
        Size = RandomAccess.GetLength(_handle);
        var caps = BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Extents
                   | BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.MultiConnection
                   | BlockDeviceCapabilities.NoWaitReads | BlockDeviceCapabilities.FileRanges;
        caps |= readOnly
            ? BlockDeviceCapabilities.ReadOnly
            : BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim
              | BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero;
        Capabilities = caps;
    }

    public string Path { get; }
    public long Size { get; }
    public BlockDeviceCapabilities Capabilities { get; }
    public int PreferredBlockSize => 4096;
    /// <summary>Page-aligned payloads go to the disk with O_DIRECT when direct writes are on.</summary>
    public int WriteBufferAlignment => _direct is null ? 1 : DirectAlignment;
    private const int DirectAlignment = 4096;

    public void Read(long offset, Span<byte> buffer)
    {
        int done = 0;
        try
        {
            while (done < buffer.Length)
            {
                int n = RandomAccess.Read(_handle, buffer[done..], offset + done);
                if (n == 0)
                {
                    // The file shrank under us: what is past its end reads as zeros rather
                    // than failing, like a sparse tail would.
                    buffer[done..].Clear();
                    return;
                }
                done += n;
            }
        }
        catch (Exception ex) when (ex is IOException && ex is not BlockDeviceException)
        {
            throw Fail("read", offset, buffer.Length, ex);
        }
    }

    /// <summary>A page-cache read (preadv2 with RWF_NOWAIT); false when any byte of the range
    /// would come from the disk, past the end of the file, or on a kernel without RWF_NOWAIT
    /// (learned once).</summary>
    public bool TryReadNoWait(long offset, Span<byte> buffer)
    {
        if (!_noWaitSupported) return false;
        var result = NoWaitReads.Pread(_handle, buffer, offset);
        if (result == NoWaitRead.Unsupported) _noWaitSupported = false;
        return result == NoWaitRead.Done;
    }

    /// <summary>Every byte of a flat image is in its one file, at its own offset. The lease is a
    /// reference on the handle, so a Dispose racing a send cannot close the descriptor under it.</summary>
    public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges)
    {
        bool added = false;
        try { _handle.DangerousAddRef(ref added); }
        catch (ObjectDisposedException) { return false; }
        ranges.Add(new FileRange(_fd, offset, length, _lease));
        return true;
    }

    private sealed class HandleLease(SafeFileHandle handle) : IFileRangeLease
    {
        // A flat image has no identity to check: writes through this device are ordinary
        // concurrent requests, and a file changed by someone else is served as it now is.
        public bool MayChange => false;
        public bool StillValid(in FileRange range) => true;
        public void Release(in FileRange range) => handle.DangerousRelease();
    }

    // Large buffered writes to one file serialise in the kernel on its inode lock, where a
    // waiting writer spins while the holder copies. Taking turns here first lets a waiting
    // thread sleep instead.
    private const int SerialWriteSize = 32 * 1024;

    // A write this large is most likely part of a stream (a copy, an image being written, a
    // guest's large sequential I/O) that a FLUSH will follow. Its pages are started for the disk
    // early (sync_file_range WRITE, no wait), so the disk works while the stream goes on instead
    // of all of it inside the final fsync; small writes (random I/O, often rewritten soon) are
    // left to the kernel. Not per write but per 8 MiB window, once a write reaches its end: a
    // writeback per request would cut the stream into many small disk requests, which disks
    // serve far slower than the few large ones the kernel's own writeback makes.
    internal const int StreamWriteSize = 128 * 1024;
    internal const long WritebackWindow = 8L << 20;
    private long _writebacksStarted;

    /// <summary>Windows whose writeback this device started early (tests).</summary>
    internal long WritebacksStarted => Interlocked.Read(ref _writebacksStarted);

    /// <summary>Starts the writeback of the whole windows that a write ending at or past their end
    /// completes (from the window the write starts in); the windows' earlier writes have
    /// usually landed by then, and a page that has not is written by the next fsync.</summary>
    private void StartWritebackOfCompletedWindows(long offset, int length)
    {
        long completedTo = (offset + length) / WritebackWindow * WritebackWindow;
        long from = offset / WritebackWindow * WritebackWindow;
        if (completedTo <= offset) return; // ends inside the window it starts in
        FileSync.StartWriteback(_fd, from, completedTo - from);
        Interlocked.Increment(ref _writebacksStarted);
    }

    /// <summary>
    /// A large write whose offset, length and buffer are 4 KiB-aligned (a stream's requests: the
    /// NBD server receives large payloads at the <see cref="WriteBufferAlignment"/> this device
    /// asks for) goes to the disk with O_DIRECT, which skips copying each request into new
    /// page-cache pages, the dominant cost of a buffered stream write. The kernel keeps the
    /// page cache coherent (it writes back and drops the range first), and what FLUSH makes durable
    /// is unchanged: the fsync covers the inode whichever descriptor wrote. The cost: bytes just
    /// written this way are read back from the disk, not from the page cache. False when the write
    /// does not qualify or a direct write failed (direct writes then stop, and the page-cache path
    /// answers this one and reports its own error if the disk is at fault).
    /// </summary>
    private unsafe bool WriteDirect(long offset, ReadOnlySpan<byte> data)
    {
        var direct = _direct;
        if (direct is null || _directFailed || offset % DirectAlignment != 0 || data.Length % DirectAlignment != 0) return false;
        fixed (byte* p = data)
            if ((nuint)p % DirectAlignment != 0) return false;
        try
        {
            RandomAccess.Write(direct, data, offset);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            _directFailed = true;
            return false;
        }
        Interlocked.Increment(ref _directWrites);
        return true;
    }

    private readonly object _largeWrites = new();

    public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags)
    {
        EnsureWritable();
        try
        {
            if (data.Length < SerialWriteSize) RandomAccess.Write(_handle, data, offset);
            else if (data.Length >= StreamWriteSize && WriteDirect(offset, data)) { /* on the disk already */ }
            else
            {
                lock (_largeWrites) RandomAccess.Write(_handle, data, offset);
                if (data.Length >= StreamWriteSize) StartWritebackOfCompletedWindows(offset, data.Length);
            }
        }
        catch (Exception ex) when (ex is IOException && ex is not BlockDeviceException)
        {
            throw Fail("write", offset, data.Length, ex);
        }
        if ((flags & WriteFlags.Fua) != 0) DataSync();
    }

    public void Flush()
    {
        if (_readOnly) return;
        if (FileSync.Fsync(_fd) != 0)
            throw Failed("fsync", Marshal.GetLastPInvokeError());
    }

    public void Trim(long offset, long length, WriteFlags flags)
    {
        EnsureWritable();
        if (length == 0) return;
        // Trim is advisory: where the filesystem cannot punch holes the data simply stays.
        if (_punchSupported && !TryFallocate(SparseFiles.FALLOC_FL_PUNCH_HOLE | SparseFiles.FALLOC_FL_KEEP_SIZE, offset, length, ref _punchSupported))
        {
            // unsupported: nothing to do
        }
        if ((flags & WriteFlags.Fua) != 0) DataSync();
    }

    public void WriteZeroes(long offset, long length, WriteFlags flags)
    {
        EnsureWritable();
        if (length == 0) return;
        bool done = false;
        if ((flags & WriteFlags.NoHole) == 0 && _punchSupported)
            done = TryFallocate(SparseFiles.FALLOC_FL_PUNCH_HOLE | SparseFiles.FALLOC_FL_KEEP_SIZE, offset, length, ref _punchSupported);
        if (!done && _zeroRangeSupported)
            done = TryFallocate(SparseFiles.FALLOC_FL_ZERO_RANGE | SparseFiles.FALLOC_FL_KEEP_SIZE, offset, length, ref _zeroRangeSupported);
        if (!done)
        {
            if ((flags & WriteFlags.FastZero) != 0)
                throw new BlockDeviceException(BlockDeviceError.NotSupported,
                    $"'{Path}': the filesystem cannot zero ranges cheaply; fast zero refused.");
            WriteZeroBytes(offset, length);
        }
        if ((flags & WriteFlags.Fua) != 0) DataSync();
    }

    public void Cache(long offset, long length)
    {
        // Advisory readahead; the result does not matter to the client.
        SparseFiles.posix_fadvise(_fd, offset, length, SparseFiles.POSIX_FADV_WILLNEED);
    }

    public void GetExtents(long offset, long length, List<Extent> extents)
    {
        long end = offset + length;
        long pos = offset;
        long generation = Volatile.Read(ref _layoutGeneration);
        var known = Volatile.Read(ref _knownData);
        if (known is not null && known.Generation == generation && pos >= known.Start && pos < known.End)
        {
            long knownEnd = Math.Min(known.End, end);
            extents.Add(new Extent(knownEnd - pos, ExtentFlags.Data));
            pos = knownEnd;
        }
        while (pos < end)
        {
            long data = SparseFiles.lseek(_fd, pos, SparseFiles.SEEK_DATA);
            if (data < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.ENXIO)
                {
                    // No data from pos to the end of the file: one hole.
                    extents.Add(new Extent(end - pos, ExtentFlags.Hole | ExtentFlags.Zero));
                    return;
                }
                if (extents.Count == 0) extents.Add(new Extent(length, ExtentFlags.Data));
                return; // SEEK_DATA unsupported: report data, which is always safe.
            }
            if (data > pos)
            {
                long holeEnd = Math.Min(data, end);
                extents.Add(new Extent(holeEnd - pos, ExtentFlags.Hole | ExtentFlags.Zero));
                pos = holeEnd;
                continue;
            }
            long hole = SparseFiles.lseek(_fd, pos, SparseFiles.SEEK_HOLE);
            if (hole < 0 || hole <= pos) hole = end;
            else Volatile.Write(ref _knownData, new KnownDataRun(pos, hole, generation));
            long dataEnd = Math.Min(hole, end);
            extents.Add(new Extent(dataEnd - pos, ExtentFlags.Data));
            pos = dataEnd;
        }
    }

    public void Dispose()
    {
        _direct?.Dispose();
        _handle.Dispose();
    }

    private bool TryFallocate(int mode, long offset, long length, ref bool supportedFlag)
    {
        if (SparseFiles.fallocate(_fd, mode, offset, length) == 0)
        {
            // A punched hole (or a zeroed range, which may be deallocated too) ends any data
            // run known so far; a run computed concurrently carries the old generation.
            Interlocked.Increment(ref _layoutGeneration);
            return true;
        }
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Errno.EOPNOTSUPP or Errno.ENOSYS)
        {
            // Remember so later requests do not pay for a failing syscall.
            supportedFlag = false;
            return false;
        }
        throw Failed("fallocate", errno);
    }

    private void WriteZeroBytes(long offset, long length)
    {
        byte[] zeros = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, ZeroBufferSize));
        try
        {
            Array.Clear(zeros);
            while (length > 0)
            {
                int n = (int)Math.Min(length, zeros.Length);
                RandomAccess.Write(_handle, zeros.AsSpan(0, n), offset);
                offset += n;
                length -= n;
            }
        }
        catch (IOException ex) when (ex is not BlockDeviceException)
        {
            throw Fail("write zeros", offset, length, ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(zeros);
        }
    }

    private void DataSync()
    {
        if (FileSync.Fdatasync(_fd) != 0)
            throw Failed("fdatasync", Marshal.GetLastPInvokeError());
    }

    private void EnsureWritable()
    {
        if (_readOnly)
            throw new BlockDeviceException(BlockDeviceError.Permission, $"'{Path}' is opened read-only.");
    }

    private BlockDeviceException Failed(string what, int errno)
    {
        var error = errno == Errno.ENOSPC ? BlockDeviceError.NoSpace : BlockDeviceError.IO;
        return new BlockDeviceException(error, $"{what} on '{Path}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
    }

    private BlockDeviceException Fail(string what, long offset, long length, Exception ex)
    {
        // .NET reports ENOSPC as an IOException whose HResult carries the errno in its low bits.
        bool noSpace = (ex.HResult & 0xFFFF) == Errno.ENOSPC || ex.Message.Contains("No space left", StringComparison.Ordinal);
        return new BlockDeviceException(noSpace ? BlockDeviceError.NoSpace : BlockDeviceError.IO,
            $"{what} of {length} bytes at offset {offset} on '{Path}' failed: {ex.Message}", ex);
    }
}
