using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>What one <c>statx</c> on an open descriptor tells: file type bits, link count and
/// identity.</summary>
internal readonly record struct FileStatus(int Type, uint Links, FileIdentity Identity);

/// <summary>
/// statx(2) lookups. statx has the same layout on every architecture, struct stat does not.
/// </summary>
internal static unsafe partial class FileStatusCalls
{
    public const int S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFREG = 0x8000, S_IFBLK = 0x6000, S_IFDIR = 0x4000,
        S_IFCHR = 0x2000, S_IFIFO = 0x1000;

    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1, STATX_NLINK = 0x4, STATX_MTIME = 0x40, STATX_CTIME = 0x80, STATX_INO = 0x100, STATX_SIZE = 0x200;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static partial int statxRaw(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    /// <summary><c>statx(fd, "", AT_EMPTY_PATH)</c>: type, link count, inode, size and both
    /// timestamps in one call. False with the errno on failure.</summary>
    public static bool TryStat(int fd, out FileStatus status, out int errno)
    {
        byte* buf = stackalloc byte[256];
        byte empty = 0;
        if (statxRaw(fd, &empty, AT_EMPTY_PATH, STATX_TYPE | STATX_NLINK | STATX_INO | STATX_SIZE | STATX_MTIME | STATX_CTIME, buf) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            status = default;
            return false;
        }
        errno = 0;
        static long Nanos(byte* ts) => *(long*)ts * 1_000_000_000L + *(uint*)(ts + 8); // statx_timestamp: s64 sec, u32 nsec
        status = new FileStatus(
            Type: *(ushort*)(buf + 28) & S_IFMT,                     // stx_mode & S_IFMT
            Links: *(uint*)(buf + 16),                               // stx_nlink
            Identity: new FileIdentity(
                Inode: *(ulong*)(buf + 32),                          // stx_ino
                Length: *(long*)(buf + 40),                          // stx_size
                ModifiedNanos: Nanos(buf + 112),                     // stx_mtime
                ChangedNanos: Nanos(buf + 96)));                     // stx_ctime
        return true;
    }

    /// <summary>Device and inode of a path without following a final symlink (0, 0 when it
    /// cannot be examined): tells whether a path still names the file we created.</summary>
    public static (ulong Device, ulong Inode) GetFileIdentity(string path)
    {
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, buf) != 0) return (0, 0);
        ulong ino = *(ulong*)(buf + 32);                                   // stx_ino
        ulong dev = ((ulong)*(uint*)(buf + 136) << 32) | *(uint*)(buf + 140); // stx_dev_major, stx_dev_minor
        return (dev, ino);
    }

    /// <summary>Why a path (symlinks followed) cannot be read as a file: "a FIFO", "a socket",
    /// "a character device", "a directory"; null for a regular file, a block device, or a path
    /// that cannot be examined (opening it reports that). Opening a FIFO for reading blocks until
    /// a writer appears, so callers check this first.</summary>
    public static string? DescribeNonFile(string path)
    {
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, 0, STATX_TYPE, buf) != 0) return null;
        int type = *(ushort*)(buf + 28) & S_IFMT;
        return type is S_IFREG or S_IFBLK ? null : DescribeType(type);
    }

    /// <summary>The words for a file type that is not a regular file.</summary>
    public static string DescribeType(int type) => type switch
    {
        S_IFIFO => "a FIFO",
        S_IFSOCK => "a socket",
        S_IFCHR => "a character device",
        S_IFBLK => "a block device",
        S_IFDIR => "a directory",
        _ => "not a regular file",
    };

    /// <summary>File type bits (S_IFMT) of a path without following a final symlink,
    /// or -1 with the errno when the path cannot be examined.</summary>
    public static int GetFileType(string path, out int errno)
    {
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, buf) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return -1;
        }
        errno = 0;
        return *(ushort*)(buf + 28) & S_IFMT; // stx_mode
    }
}
