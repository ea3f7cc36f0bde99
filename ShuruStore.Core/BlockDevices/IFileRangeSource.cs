using Microsoft.Win32.SafeHandles;

namespace ShuruStore.Core.BlockDevices;

/// <summary>
/// Optional surface of a device whose bytes sit in files that the server may send straight to a
/// client's socket with sendfile(2). A READ answered through <see cref="IBlockDevice.Read"/>
/// copies its data twice on the server (page cache into a user buffer, the buffer into the
/// socket); sendfile hands page-cache pages to a Unix socket without either copy. Measured on
/// the 2-core VM, 1 GiB sent in 256 KiB pieces over a socketpair: 372-408 ms of server CPU with
/// pread + send, 152-163 ms with sendfile (docs/performance.md, step 21).
/// </summary>
public interface IFileRangeSource
{
    /// <summary>
    /// Appends to <paramref name="ranges"/>, in order, the file pieces that hold
    /// [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>), or
    /// returns false when some part cannot be sent from a file as it stands (for example it is
    /// only in memory); the caller then discards what was appended and reads the range through
    /// <see cref="IBlockDevice.Read"/>. The same validation rules apply as for Read.
    /// </summary>
    /// <remarks>
    /// The caller takes a reference on each handle (<c>DangerousAddRef</c>) before sending and
    /// falls back to Read if one is already closed, so a device may close a handle it described
    /// at any time. Bytes a file no longer has (it shrank) are sent as zeros, as Read of a flat
    /// image does.
    /// </remarks>
    bool TryGetFileRanges(long offset, int length, List<FileRange> ranges);
}

/// <summary><see cref="Length"/> bytes of <see cref="File"/> at <see cref="FileOffset"/>.</summary>
public readonly record struct FileRange(SafeFileHandle File, long FileOffset, int Length);
