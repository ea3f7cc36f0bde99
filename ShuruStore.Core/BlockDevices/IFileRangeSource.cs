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
    /// returns false when some part cannot be sent from a file as it stands (it is only in
    /// memory, or not verified yet); the caller then reads the range through
    /// <see cref="IBlockDevice.Read"/>. The same validation rules apply as for Read.
    /// </summary>
    /// <remarks>
    /// Every range appended holds a lease on its descriptor, which the caller ends with
    /// <see cref="IFileRangeLease.Release"/> once sent, whatever this method returned. Bytes a
    /// file no longer has (it shrank) are sent as zeros, as Read of a flat image does.
    /// </remarks>
    bool TryGetFileRanges(long offset, int length, List<FileRange> ranges);
}

/// <summary><see cref="Length"/> bytes of the open file <see cref="Descriptor"/> at
/// <see cref="FileOffset"/>, kept open by <see cref="Lease"/>.</summary>
public readonly record struct FileRange(int Descriptor, long FileOffset, int Length, IFileRangeLease Lease);

/// <summary>What keeps a <see cref="FileRange"/>'s descriptor open and valid while it is sent.</summary>
public interface IFileRangeLease
{
    /// <summary>True when the file can change under the server in a way that makes its bytes
    /// wrong (a chunk file, whose content must match its name); the server then calls
    /// <see cref="StillValid"/> after sending, and holds the reply's last byte back until then.</summary>
    bool MayChange { get; }

    /// <summary>Called after the range's bytes were read: false if the file may have changed
    /// meanwhile. Some bytes are already out, so the server ends the connection before the reply
    /// is complete rather than answer with them.</summary>
    bool StillValid(in FileRange range);

    /// <summary>Ends the lease taken for one range.</summary>
    void Release(in FileRange range);
}
