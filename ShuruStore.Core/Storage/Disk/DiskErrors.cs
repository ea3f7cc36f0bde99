using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>How a disk reports storage failures to its client: a full disk is ENOSPC, anything
/// else EIO, always naming what failed.</summary>
internal static class DiskErrors
{
    public static BlockDeviceException StoreFailure(Exception e, string what) =>
        new(Errno.IsNoSpace(e) ? BlockDeviceError.NoSpace : BlockDeviceError.IO, $"{what}: {e.Message}", e);

    /// <summary>A failure of a maintenance-style operation (a checkpoint) as an engine error.</summary>
    public static ShuruStoreException AsEngineError(BlockDeviceException e, string casPath) =>
        new(e.Error == BlockDeviceError.NoSpace ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError, e.Message, casPath, e);
}
