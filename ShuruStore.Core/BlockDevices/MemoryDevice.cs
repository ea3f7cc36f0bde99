namespace ShuruStore.Core.BlockDevices;

/// <summary>
/// A sparse in-memory device for tests and experiments: 64 KiB pages allocated on first write,
/// unallocated pages read as zeros and are reported as holes. Supports every capability so the
/// server's full feature set can be exercised without a filesystem.
/// </summary>
public sealed class MemoryDevice : IBlockDevice
{
    private const int PageShift = 16;
    private const int PageSize = 1 << PageShift;
    private readonly Dictionary<long, byte[]> _pages = new();
    // One lock keeps the page table and page contents consistent; it is the device's own lock,
    // never held by the protocol layer.
    private readonly object _lock = new();

    public MemoryDevice(long size, bool readOnly = false, int preferredBlockSize = 4096,
        BlockDeviceCapabilities? capabilities = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        Size = size;
        PreferredBlockSize = preferredBlockSize;
        Capabilities = capabilities ?? (readOnly
            ? BlockDeviceCapabilities.ReadOnly | BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Extents
              | BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.MultiConnection
            : BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim
              | BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero
              | BlockDeviceCapabilities.Extents | BlockDeviceCapabilities.Cache
              | BlockDeviceCapabilities.MultiConnection);
    }

    public long Size { get; }
    public BlockDeviceCapabilities Capabilities { get; }
    public int PreferredBlockSize { get; }
    public int WriteBufferAlignment => 1;

    /// <summary>No fast paths: <see cref="BlockDeviceCapabilities.NoWaitReads"/> and
    /// <see cref="BlockDeviceCapabilities.FileRanges"/> are never declared.</summary>
    public bool TryReadNoWait(long offset, Span<byte> buffer) => false;

    /// <inheritdoc cref="TryReadNoWait"/>
    public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges) => false;

    /// <summary>Number of allocated pages (for tests of hole handling).</summary>
    public int AllocatedPages { get { lock (_lock) return _pages.Count; } }

    public void Read(long offset, Span<byte> buffer)
    {
        lock (_lock)
        {
            while (!buffer.IsEmpty)
            {
                long page = offset >> PageShift;
                int inPage = (int)(offset & (PageSize - 1));
                int n = Math.Min(buffer.Length, PageSize - inPage);
                if (_pages.TryGetValue(page, out var p)) p.AsSpan(inPage, n).CopyTo(buffer);
                else buffer[..n].Clear();
                buffer = buffer[n..];
                offset += n;
            }
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags)
    {
        EnsureWritable();
        lock (_lock)
        {
            while (!data.IsEmpty)
            {
                long page = offset >> PageShift;
                int inPage = (int)(offset & (PageSize - 1));
                int n = Math.Min(data.Length, PageSize - inPage);
                if (!_pages.TryGetValue(page, out var p)) _pages[page] = p = new byte[PageSize];
                data[..n].CopyTo(p.AsSpan(inPage, n));
                data = data[n..];
                offset += n;
            }
        }
    }

    public void Flush() { }

    public void Trim(long offset, long length, WriteFlags flags) => Zero(offset, length, keepAllocated: false);

    public void WriteZeroes(long offset, long length, WriteFlags flags) =>
        Zero(offset, length, keepAllocated: (flags & WriteFlags.NoHole) != 0);

    public void Cache(long offset, long length) { }

    public void GetExtents(long offset, long length, List<Extent> extents)
    {
        lock (_lock)
        {
            long end = offset + length;
            long pos = offset;
            while (pos < end)
            {
                long page = pos >> PageShift;
                long pageEnd = Math.Min((page + 1) << PageShift, end);
                var flags = _pages.ContainsKey(page) ? ExtentFlags.Data : ExtentFlags.Hole | ExtentFlags.Zero;
                long len = pageEnd - pos;
                if (extents.Count > 0 && extents[^1].Flags == flags)
                    extents[^1] = new Extent(extents[^1].Length + len, flags);
                else
                    extents.Add(new Extent(len, flags));
                pos = pageEnd;
            }
        }
    }

    public void Dispose() { }

    private void Zero(long offset, long length, bool keepAllocated)
    {
        EnsureWritable();
        lock (_lock)
        {
            long end = offset + length;
            while (offset < end)
            {
                long page = offset >> PageShift;
                int inPage = (int)(offset & (PageSize - 1));
                int n = (int)Math.Min(end - offset, PageSize - inPage);
                if (n == PageSize && !keepAllocated) _pages.Remove(page);
                else if (_pages.TryGetValue(page, out var p)) p.AsSpan(inPage, n).Clear();
                else if (keepAllocated) _pages[page] = new byte[PageSize];
                offset += n;
            }
        }
    }

    private void EnsureWritable()
    {
        if ((Capabilities & BlockDeviceCapabilities.ReadOnly) != 0)
            throw new BlockDeviceException(BlockDeviceError.Permission, "The memory device is read-only.");
    }
}
