namespace ShuruStore.Core.BlockDevices;

/// <summary>
/// A device that can tell a read it can serve at once (the bytes are in the page cache or in
/// memory) from one that would wait for a disk. The NBD server serves the first kind on the
/// connection's reader thread and hands only the second kind to the thread pool: a small
/// page-cache read costs a few microseconds, while handing it to another thread costs a wake-up
/// and, on a busy two-core machine, a context switch each way (4 KiB random reads at queue depth
/// 32 on a flat image: about 85k requests per second through the pool against 135k here).
/// </summary>
public interface INoWaitReader
{
    /// <summary>Reads <c>buffer.Length</c> bytes at <paramref name="offset"/> if that needs no
    /// disk I/O. False when it would have to wait, or cannot tell: the caller then reads the
    /// range with <see cref="IBlockDevice.Read"/>, and the content of <paramref name="buffer"/>
    /// is undefined. Never throws for an I/O error: <see cref="IBlockDevice.Read"/> reports it.</summary>
    bool TryReadNoWait(long offset, Span<byte> buffer);
}
