namespace ShuruStore.Core.BlockDevices;

/// <summary>Errors a block device reports; values are the NBD protocol's errno numbers.</summary>
public enum BlockDeviceError
{
    Permission = 1,      // EPERM
    IO = 5,              // EIO
    OutOfMemory = 12,    // ENOMEM
    Invalid = 22,        // EINVAL
    NoSpace = 28,        // ENOSPC
    Overflow = 75,       // EOVERFLOW
    NotSupported = 95,   // ENOTSUP
    Shutdown = 108,      // ESHUTDOWN
}

/// <summary>
/// A device failure the client should see as a specific NBD error. The message is sent to
/// structured-reply clients and logged, so it names the file or chunk at fault.
/// </summary>
public class BlockDeviceException : IOException
{
    public BlockDeviceException(BlockDeviceError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    public BlockDeviceError Error { get; }
}
