using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Commands;

/// <summary>
/// Turns engine failures and module-level problems into ErrorRecords with stable ErrorIds
/// (the engine's <see cref="ShuruErrorKind"/> names, plus the module's own ids below) and the
/// ErrorCategory a PowerShell user would expect.
/// </summary>
internal static class ShuruErrors
{
    public const string ServerNotFound = nameof(ServerNotFound);
    public const string ServerNameInUse = nameof(ServerNameInUse);
    public const string ServerStopped = nameof(ServerStopped);
    public const string PathNotFileSystem = nameof(PathNotFileSystem);
    public const string CheckpointExists = nameof(CheckpointExists);
    public const string IndexPathNotFound = "IndexNotFound";
    public const string BaseImageGivenTwice = nameof(BaseImageGivenTwice);
    public const string SocketPathForSeveralServers = nameof(SocketPathForSeveralServers);
    public const string WaitTimeout = nameof(WaitTimeout);
    public const string NotForRemoteStore = nameof(NotForRemoteStore);
    public const string NoChunksToKeep = nameof(NoChunksToKeep);
    public const string DestinationRequired = nameof(DestinationRequired);
    public const string NotForLocalIndex = nameof(NotForLocalIndex);

    public static ErrorCategory CategoryOf(ShuruErrorKind kind) => kind switch
    {
        ShuruErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        ShuruErrorKind.IndexInvalid => ErrorCategory.InvalidData,
        ShuruErrorKind.IndexNotFound => ErrorCategory.ObjectNotFound,
        ShuruErrorKind.IndexChainCycle => ErrorCategory.InvalidData,
        ShuruErrorKind.ParentIndexMissing => ErrorCategory.ObjectNotFound,
        ShuruErrorKind.BaseImageMissing => ErrorCategory.ObjectNotFound,
        ShuruErrorKind.CheckpointOverwritesChain => ErrorCategory.InvalidOperation,
        ShuruErrorKind.ChunkMissing => ErrorCategory.ObjectNotFound,
        ShuruErrorKind.ChunkCorrupt => ErrorCategory.InvalidData,
        ShuruErrorKind.StoreInvalid => ErrorCategory.InvalidArgument,
        ShuruErrorKind.StateInvalid => ErrorCategory.InvalidData,
        ShuruErrorKind.SocketInUse => ErrorCategory.ResourceBusy,
        ShuruErrorKind.StateInUse => ErrorCategory.ResourceBusy,
        ShuruErrorKind.SocketPathNotSocket => ErrorCategory.ResourceExists,
        ShuruErrorKind.SocketPathInvalid => ErrorCategory.InvalidArgument,
        ShuruErrorKind.ImageNotFound => ErrorCategory.ObjectNotFound,
        ShuruErrorKind.NoSpace => ErrorCategory.WriteError,
        ShuruErrorKind.RemoteUnavailable => ErrorCategory.ConnectionError,
        ShuruErrorKind.RemoteObjectMissing => ErrorCategory.ObjectNotFound,
        ShuruErrorKind.RemoteAccessDenied => ErrorCategory.PermissionDenied,
        ShuruErrorKind.RemoteInvalid => ErrorCategory.InvalidArgument,
        _ => ErrorCategory.DeviceError,
    };

    /// <summary>An ErrorRecord for an engine failure, targeted at the file at fault when known.</summary>
    public static ErrorRecord From(ShuruStoreException e, object? target = null) =>
        new(e, e.Kind.ToString(), CategoryOf(e.Kind), target ?? e.Path);

    /// <summary>An ErrorRecord for a failure the engine did not classify (an I/O error, say).</summary>
    public static ErrorRecord FromUnexpected(Exception e, object? target) => e switch
    {
        ShuruStoreException s => From(s, target),
        BlockDeviceException { Error: BlockDeviceError.NoSpace } =>
            new ErrorRecord(e, nameof(ShuruErrorKind.NoSpace), ErrorCategory.WriteError, target),
        BlockDeviceException { Error: BlockDeviceError.Permission } =>
            new ErrorRecord(e, "AccessDenied", ErrorCategory.PermissionDenied, target),
        UnauthorizedAccessException => new ErrorRecord(e, "AccessDenied", ErrorCategory.PermissionDenied, target),
        FileNotFoundException or DirectoryNotFoundException => new ErrorRecord(e, "PathNotFound", ErrorCategory.ObjectNotFound, target),
        IOException => new ErrorRecord(e, nameof(ShuruErrorKind.IOError), ErrorCategory.DeviceError, target),
        _ => new ErrorRecord(e, "UnexpectedError", ErrorCategory.NotSpecified, target),
    };

    public static ErrorRecord Create(string errorId, ErrorCategory category, object? target, string message) =>
        new(new InvalidOperationException(message), errorId, category, target);
}
