using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>
/// flock(2) advisory locks, taken explicitly rather than through .NET's FileShare mapping: a lock
/// belongs to the open file description, dies with the process (kill -9 included), and another
/// process can test it without waiting. Used to tell a live registration from an ended one.
/// </summary>
internal static partial class FileLocks
{
    private const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    private const int EWOULDBLOCK = Errno.EAGAIN;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    /// <summary>Takes an exclusive lock without waiting: false when someone else holds one.</summary>
    public static bool TryLockExclusive(int fd) => TryLock(fd, LOCK_EX);

    /// <summary>Takes a shared lock without waiting: false when someone holds an exclusive one.</summary>
    public static bool TryLockShared(int fd) => TryLock(fd, LOCK_SH);

    public static void Unlock(int fd) => flock(fd, LOCK_UN);

    private static bool TryLock(int fd, int kind)
    {
        while (true)
        {
            if (flock(fd, kind | LOCK_NB) == 0) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EINTR) continue;
            if (errno == EWOULDBLOCK) return false;
            throw new IOException($"flock failed (errno {errno})", errno);
        }
    }
}
