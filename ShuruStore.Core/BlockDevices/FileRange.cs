namespace ShuruStore.Core.BlockDevices;

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
