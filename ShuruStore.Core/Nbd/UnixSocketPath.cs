using System.Net.Sockets;
using System.Text;
using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Prepares a Unix socket path for binding: a stale socket (nobody listening) is removed, a live
/// one is refused, and anything that is not a socket is never touched.
/// </summary>
internal static class UnixSocketPath
{
    /// <summary>sun_path is 108 bytes including the terminating NUL.</summary>
    private const int MaxPathBytes = 107;

    public static string Prepare(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new ShuruStoreException(ShuruErrorKind.SocketPathInvalid, "The socket path is empty.", path);
        string full = Path.GetFullPath(path);
        if (Encoding.UTF8.GetByteCount(full) > MaxPathBytes)
            throw new ShuruStoreException(ShuruErrorKind.SocketPathInvalid,
                $"The socket path '{full}' is longer than the {MaxPathBytes} bytes a Unix socket address can hold; use a shorter path.", full);
        string? dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir))
            throw new ShuruStoreException(ShuruErrorKind.SocketPathInvalid,
                $"The directory of the socket path '{full}' does not exist.", full);

        int type = FileStatusCalls.GetFileType(full, out int errno);
        if (type < 0)
        {
            if (errno == 2) return full; // ENOENT: free to bind
            throw new ShuruStoreException(ShuruErrorKind.SocketPathInvalid,
                $"The socket path '{full}' cannot be examined (errno {errno}).", full);
        }
        if (type != FileStatusCalls.S_IFSOCK)
            throw new ShuruStoreException(ShuruErrorKind.SocketPathNotSocket,
                $"'{full}' exists and is not a socket; it is left untouched. Choose another path or remove the file yourself.", full);

        if (IsLive(full))
            throw new ShuruStoreException(ShuruErrorKind.SocketInUse,
                $"A server is already listening on '{full}'.", full);
        try
        {
            File.Delete(full); // stale socket left by a server that died
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(ShuruErrorKind.SocketPathInvalid,
                $"The stale socket '{full}' cannot be removed: {ex.Message}", full, ex);
        }
        return full;
    }

    private static bool IsLive(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A fresh name in the socket's directory to bind at before publishing (the path
    /// itself when the temporary name would not fit in a socket address).</summary>
    public static string TemporaryNameFor(string path)
    {
        string tmp = Path.Combine(Path.GetDirectoryName(path)!, ".s" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant());
        return Encoding.UTF8.GetByteCount(tmp) <= MaxPathBytes ? tmp : path;
    }

    public static bool IsSocket(string path) =>
        FileStatusCalls.GetFileType(path, out _) == FileStatusCalls.S_IFSOCK;
}
