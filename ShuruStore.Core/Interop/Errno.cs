using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>Linux errno values the engine tells apart (the same on x86-64 and arm64), and the
/// exceptions built from them.</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, ENXIO = 6, EAGAIN = 11, EACCES = 13, EEXIST = 17, EXDEV = 18,
        ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, EPIPE = 32, ENOSYS = 38, EOPNOTSUPP = 95,
        ECONNRESET = 104, ENOTCONN = 107, ESHUTDOWN = 108;

    /// <summary>An IOException for the failed call just made (its errno is read here), naming
    /// what was attempted on which path; HResult carries the errno so <see cref="IsNoSpace"/> works.</summary>
    public static IOException Last(string what, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what} '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }

    /// <summary>Whether an exception means the disk is full or over quota (.NET reports ENOSPC as
    /// an IOException whose HResult carries the errno in its low bits, or as a Windows code).</summary>
    public static bool IsNoSpace(Exception e) =>
        e is IOException io && (io.HResult == ENOSPC || (io.HResult & 0xFFFF) == ENOSPC || io.HResult == unchecked((int)0x80070070) ||
                                io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) ||
                                io.Message.Contains("quota", StringComparison.OrdinalIgnoreCase));
}
