namespace ShuruStore.Core.BlockDevices;

/// <summary>
/// The small surface a storage backend implements so the NBD server can export it.
/// The protocol layer validates offsets, lengths and flags against <see cref="Size"/> and
/// <see cref="Capabilities"/> before calling in, so implementations may assume
/// <c>0 &lt;= offset</c> and <c>offset + length &lt;= Size</c>.
/// Every method may be called concurrently from many threads (many connections, many requests
/// in flight per connection); implementations do their own locking.
/// Failures are reported by throwing <see cref="BlockDeviceException"/> with the errno the
/// client should see; any other exception is reported to the client as EIO.
/// Every member is part of the contract: the fast paths (<see cref="TryReadNoWait"/>,
/// <see cref="TryGetFileRanges"/>) are declared in <see cref="Capabilities"/>, and a device
/// without one answers it with false; the server never looks for them by type.
/// </summary>
public interface IBlockDevice : IDisposable
{
    /// <summary>Size of the device in bytes. Fixed for the lifetime of the device.</summary>
    long Size { get; }

    /// <summary>What the device can do; the server advertises only these.</summary>
    BlockDeviceCapabilities Capabilities { get; }

    /// <summary>Preferred I/O granularity in bytes (power of two, at least 512, e.g. 4096 or 65536).</summary>
    int PreferredBlockSize { get; }

    /// <summary>The address alignment (a power of two; 1 for none) a large WRITE payload's buffer
    /// needs to take the device's fastest write path (e.g. 4096 for O_DIRECT). The server
    /// receives payloads at such an address; a write from any other buffer must still work.</summary>
    int WriteBufferAlignment { get; }

    /// <summary>Reads <c>buffer.Length</c> bytes at <paramref name="offset"/>.</summary>
    void Read(long offset, Span<byte> buffer);

    /// <summary>Reads like <see cref="Read"/>, but only if that needs no disk I/O (the bytes are
    /// in the page cache or in memory); the server then answers on the connection's reader thread
    /// instead of handing the request to another thread. False when it would have to wait or
    /// cannot tell: the caller reads the range with <see cref="Read"/>, and the content of
    /// <paramref name="buffer"/> is undefined. Never throws for an I/O error: <see cref="Read"/>
    /// reports it. Only called when <see cref="Capabilities"/> has <see cref="BlockDeviceCapabilities.NoWaitReads"/>.</summary>
    bool TryReadNoWait(long offset, Span<byte> buffer);

    /// <summary>
    /// Appends to <paramref name="ranges"/>, in order, the file pieces that hold
    /// [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>), so the
    /// server can send them with sendfile(2) instead of copying them through a buffer; or returns
    /// false when some part cannot be sent from a file as it stands (it is only in memory, or not
    /// verified yet): the caller then uses <see cref="Read"/>. Every range appended holds a lease
    /// that the caller ends with <see cref="IFileRangeLease.Release"/> once sent, whatever this
    /// returned. Only called when <see cref="Capabilities"/> has <see cref="BlockDeviceCapabilities.FileRanges"/>.
    /// </summary>
    bool TryGetFileRanges(long offset, int length, List<FileRange> ranges);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>. With
    /// <see cref="WriteFlags.Fua"/> the data is durable when this returns.</summary>
    void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags);

    /// <summary>Makes every write that has completed so far durable.</summary>
    void Flush();

    /// <summary>Discards a range: afterwards it may read as zeros or as the old data
    /// (this device's choice), but must never fail later reads.</summary>
    void Trim(long offset, long length, WriteFlags flags);

    /// <summary>Makes a range read as zeros. <see cref="WriteFlags.NoHole"/>: keep it allocated.
    /// <see cref="WriteFlags.FastZero"/>: throw <see cref="BlockDeviceException"/> with
    /// <see cref="BlockDeviceError.NotSupported"/> if zeroing would not be faster than writing.</summary>
    void WriteZeroes(long offset, long length, WriteFlags flags);

    /// <summary>Prefetches a range (advisory; may do nothing).</summary>
    void Cache(long offset, long length);

    /// <summary>
    /// Describes the allocation state of [offset, offset+length) by appending extents to
    /// <paramref name="extents"/>, in order, starting exactly at <paramref name="offset"/>.
    /// The device must append at least one extent and may stop before the end of the range
    /// (the client asks again) or run past it (the server clips).
    /// </summary>
    void GetExtents(long offset, long length, List<Extent> extents);
}

/// <summary>Capabilities a block device has. The server maps them to NBD transmission flags.</summary>
[Flags]
public enum BlockDeviceCapabilities
{
    None = 0,
    /// <summary>Writes, trims and zeroing are refused (EPERM).</summary>
    ReadOnly = 1 << 0,
    /// <summary>Flush does real work (the server advertises SEND_FLUSH).</summary>
    Flush = 1 << 1,
    /// <summary>Per-write durability (FUA) is honoured.</summary>
    Fua = 1 << 2,
    /// <summary>Trim is implemented.</summary>
    Trim = 1 << 3,
    /// <summary>WriteZeroes is implemented efficiently (NO_HOLE honoured).</summary>
    WriteZeroes = 1 << 4,
    /// <summary>WriteZeroes honours FastZero honestly.</summary>
    FastZero = 1 << 5,
    /// <summary>GetExtents reports real holes (otherwise everything is data).</summary>
    Extents = 1 << 6,
    /// <summary>Cache (prefetch) does something useful.</summary>
    Cache = 1 << 7,
    /// <summary>Flush on any connection makes writes of every connection durable, and all
    /// connections see one consistent state (the server may advertise CAN_MULTI_CONN).</summary>
    MultiConnection = 1 << 8,
    /// <summary><see cref="IBlockDevice.TryReadNoWait"/> can serve reads at hand.</summary>
    NoWaitReads = 1 << 9,
    /// <summary><see cref="IBlockDevice.TryGetFileRanges"/> can name files for reads.</summary>
    FileRanges = 1 << 10,
}

/// <summary>Flags that modify a write-type request.</summary>
[Flags]
public enum WriteFlags
{
    None = 0,
    /// <summary>Force unit access: durable before the reply.</summary>
    Fua = 1 << 0,
    /// <summary>WriteZeroes must leave the range allocated.</summary>
    NoHole = 1 << 1,
    /// <summary>WriteZeroes must fail fast with NotSupported if it would be slow.</summary>
    FastZero = 1 << 2,
}

/// <summary>Allocation state of a run of bytes, as in NBD's base:allocation context.</summary>
[Flags]
public enum ExtentFlags : uint
{
    /// <summary>Allocated data.</summary>
    Data = 0,
    /// <summary>Not allocated (NBD_STATE_HOLE).</summary>
    Hole = 1,
    /// <summary>Reads as zeros (NBD_STATE_ZERO).</summary>
    Zero = 2,
}

/// <summary>A run of <see cref="Length"/> bytes sharing one allocation state.</summary>
public readonly record struct Extent(long Length, ExtentFlags Flags);
