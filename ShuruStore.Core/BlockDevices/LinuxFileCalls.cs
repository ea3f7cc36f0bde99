using System.Runtime.InteropServices;

namespace ShuruStore.Core.BlockDevices;

/// <summary>
/// The few libc calls .NET does not expose: hole punching, zero ranges, SEEK_DATA/SEEK_HOLE,
/// fdatasync and readahead hints. Kept in one place so the device code reads as storage logic.
/// </summary>
internal static partial class LinuxFileCalls
{
    // fallocate(2) modes (linux/falloc.h).
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int FALLOC_FL_ZERO_RANGE = 0x10;

    // lseek(2) whence values for sparse files.
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;

    public const int POSIX_FADV_WILLNEED = 3;

    // preadv2(2) flag: fail with EAGAIN rather than wait for the disk.
    public const int RWF_NOWAIT = 0x08;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENXIO = 6;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EOPNOTSUPP = 95;
    public const int ENOSYS = 38;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    /// <summary>Opens <paramref name="path"/> for writing with O_DIRECT (and O_CLOEXEC); null
    /// where the filesystem refuses it, or off Linux.</summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle? OpenDirectForWriting(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        // O_DIRECT is 040000 on x86 and 0200000 on arm (asm-generic vs arch headers).
        int oDirect = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;
        int fd = open(path, 0x1 /* O_WRONLY */ | oDirect | 0x80000 /* O_CLOEXEC */);
        return fd < 0 ? null : new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint preadv2(int fd, IoVec* iov, int iovcnt, long offset, int flags);

    /// <summary>What a read that must not wait for the disk came to.</summary>
    public enum NoWaitRead { Done, WouldBlock, Unsupported, Failed }

    /// <summary><see cref="PreadNoWait(int, Span{byte}, long)"/> through a handle, held open for
    /// the call so a Dispose racing it cannot close (or reuse) the descriptor; a closed handle is
    /// <see cref="NoWaitRead.Failed"/>.</summary>
    public static NoWaitRead PreadNoWait(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        bool added = false;
        try { handle.DangerousAddRef(ref added); }
        catch (ObjectDisposedException) { return NoWaitRead.Failed; }
        try { return PreadNoWait((int)handle.DangerousGetHandle(), buffer, offset); }
        finally { if (added) handle.DangerousRelease(); }
    }

    /// <summary>Reads the whole buffer at <paramref name="offset"/> with RWF_NOWAIT: only bytes
    /// already in the page cache. A read that stops short (end of file) is <see cref="NoWaitRead.Failed"/>:
    /// the caller's ordinary read decides what that means.</summary>
    public static unsafe NoWaitRead PreadNoWait(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                var iov = new IoVec { Base = p + done, Length = (nuint)(buffer.Length - done) };
                nint n = preadv2(fd, &iov, 1, offset + done, RWF_NOWAIT);
                if (n > 0) { done += (int)n; continue; }
                if (n == 0) return NoWaitRead.Failed;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return NoWaitRead.WouldBlock;
                return errno is EOPNOTSUPP or ENOSYS ? NoWaitRead.Unsupported : NoWaitRead.Failed;
            }
            return NoWaitRead.Done;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport("libc")]
    public static partial int posix_fadvise(int fd, long offset, long len, int advice);

    /// <summary>statx(2): fixed layout on every architecture, unlike struct stat.</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_TYPE = 0x1;
    public const int S_IFMT = 0xF000;
    public const int S_IFSOCK = 0xC000;

    private const uint STATX_INO = 0x100;

    /// <summary>Device and inode of a path without following a final symlink (0, 0 when it
    /// cannot be examined): tells whether a path still names the file we created.</summary>
    public static unsafe (ulong Device, ulong Inode) GetFileIdentity(string path)
    {
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, buf) != 0) return (0, 0);
        ulong ino = *(ulong*)(buf + 32);                                   // stx_ino
        ulong dev = ((ulong)*(uint*)(buf + 136) << 32) | *(uint*)(buf + 140); // stx_dev_major, stx_dev_minor
        return (dev, ino);
    }

    public const int S_IFREG = 0x8000;
    public const int S_IFBLK = 0x6000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFCHR = 0x2000;
    public const int S_IFIFO = 0x1000;

    /// <summary>Why a path (symlinks followed) cannot be read as a file: "a FIFO", "a socket",
    /// "a character device", "a directory"; null for a regular file, a block device, or a path
    /// that cannot be examined (opening it reports that). Opening a FIFO for reading blocks until
    /// a writer appears, so callers check this first.</summary>
    public static unsafe string? DescribeNonFile(string path)
    {
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, 0, STATX_TYPE, buf) != 0) return null;
        return (*(ushort*)(buf + 28) & S_IFMT) switch
        {
            S_IFREG or S_IFBLK => null,
            S_IFIFO => "a FIFO",
            S_IFSOCK => "a socket",
            S_IFCHR => "a character device",
            S_IFDIR => "a directory",
            _ => "not a regular file",
        };
    }

    /// <summary>File type bits (S_IFMT) of a path without following a final symlink,
    /// or -1 with the errno when the path cannot be examined.</summary>
    public static unsafe int GetFileType(string path, out int errno)
    {
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, buf) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return -1;
        }
        errno = 0;
        ushort mode = *(ushort*)(buf + 28); // stx_mode
        return mode & S_IFMT;
    }
}
