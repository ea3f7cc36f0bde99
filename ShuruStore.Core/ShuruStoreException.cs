namespace ShuruStore.Core;

/// <summary>
/// What went wrong, in terms a user can act on. The PowerShell layer turns each kind into a
/// stable ErrorId (the enum member's name) and an ErrorCategory, so never rename a member.
/// New kinds are appended.
/// </summary>
public enum ShuruErrorKind
{
    /// <summary>A parameter value is out of range or inconsistent with others.</summary>
    InvalidArgument,
    /// <summary>An index file is malformed (bad lengths, bad hash, wrong entry count, truncated).</summary>
    IndexInvalid,
    /// <summary>An index file does not exist.</summary>
    IndexNotFound,
    /// <summary>The parent chain of an index refers back to itself.</summary>
    IndexChainCycle,
    /// <summary>An index names a parent index that does not exist.</summary>
    ParentIndexMissing,
    /// <summary>The base (fallback) image does not exist or cannot be opened.</summary>
    BaseImageMissing,
    /// <summary>A checkpoint would overwrite the booted index or an index of its chain.</summary>
    CheckpointOverwritesChain,
    /// <summary>A chunk named by an index is not in the store.</summary>
    ChunkMissing,
    /// <summary>A chunk's content does not hash to its name.</summary>
    ChunkCorrupt,
    /// <summary>The chunk store directory does not exist or is unusable.</summary>
    StoreInvalid,
    /// <summary>The live-state file is unreadable or belongs to another disk.</summary>
    StateInvalid,
    /// <summary>A live server already listens on the socket path.</summary>
    SocketInUse,
    /// <summary>The socket path exists and is not a socket (never deleted).</summary>
    SocketPathNotSocket,
    /// <summary>The socket path is unusable (too long, directory missing, no permission).</summary>
    SocketPathInvalid,
    /// <summary>An image file to serve or read does not exist or cannot be opened.</summary>
    ImageNotFound,
    /// <summary>Disk full or quota reached while writing the store.</summary>
    NoSpace,
    /// <summary>Any other I/O failure.</summary>
    IOError,
    /// <summary>The live-state file is locked by another running disk.</summary>
    StateInUse,
    /// <summary>The object store did not answer in time, refused or dropped the connection, or
    /// kept failing with server errors or throttling until the deadline; retrying later may work.</summary>
    RemoteUnavailable,
    /// <summary>An object (or the bucket holding it) does not exist in the object store.</summary>
    RemoteObjectMissing,
    /// <summary>The object store rejected the credentials or the request's permissions, or no
    /// credentials were found.</summary>
    RemoteAccessDenied,
    /// <summary>A remote location, endpoint or request is malformed, or the object store's answer
    /// cannot be right (wrong length, object larger than expected); retrying does not help.</summary>
    RemoteInvalid,
}

/// <summary>An engine failure with a kind the caller can branch on and a message that names the
/// file at fault and, where there is one, the fix.</summary>
public class ShuruStoreException : Exception
{
    public ShuruStoreException(ShuruErrorKind kind, string message, string? path = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Path = path;
    }

    /// <summary>What went wrong.</summary>
    public ShuruErrorKind Kind { get; }

    /// <summary>The file or directory at fault, when there is one.</summary>
    public string? Path { get; }
}
