using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ShuruStore.Core.Interop;

/// <summary>
/// Raw descriptors where a <see cref="SafeFileHandle"/> costs calls the hot paths cannot afford
/// (File.OpenHandle adds an fstat, its writes a flock, an fstat and an lseek): open, positional
/// read and write, close, nameless files. Linux flag values (x86-64 and arm64).
/// </summary>
internal static unsafe partial class FileDescriptors
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openCreate(string path, int flags, int mode);
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int openRaw(byte* path, int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(int fd, byte* buf, nint count, long offset);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pwrite(int fd, byte* buf, nint count, long offset);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, ulong* limits);

    public const int O_RDONLY = 0, O_WRONLY = 0x1, O_RDWR = 0x2, O_CREAT = 0x40, O_EXCL = 0x80, O_NONBLOCK = 0x800,
        O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    private const int O_DIRECTORY_MAC = 0x100000;
    private const int O_TMPFILE = 0x410000; // __O_TMPFILE | O_DIRECTORY
    private const int RLIMIT_NOFILE = 7;

    /// <summary>Opens a path with raw flags; -1 with the errno left for the caller.</summary>
    public static int Open(string path, int flags) => open(path, flags);

    /// <summary>Opens (or creates, with <paramref name="mode"/>) a path with raw flags; -1 with the
    /// errno left for the caller.</summary>
    public static int Open(string path, int flags, int mode) => openCreate(path, flags, mode);

    /// <summary>Opens a directory read-only (for fsync or syncfs); throws when it cannot.</summary>
    public static int OpenDirectory(string dir, string purpose)
    {
        int fd = open(dir, O_RDONLY | (OperatingSystem.IsMacOS() ? O_DIRECTORY_MAC : O_DIRECTORY) | O_CLOEXEC);
        if (fd < 0) throw new IOException($"cannot open directory '{dir}' to {purpose} it (errno {Marshal.GetLastPInvokeError()})");
        return fd;
    }

    /// <summary>Closes a descriptor this layer returned.</summary>
    public static void Close(int fd) => close(fd);

    /// <summary>Opens a file read-only by a NUL-terminated UTF-8 path (no string, no managed
    /// handle). O_NONBLOCK: a FIFO under a file name must not block the open until a writer
    /// appears (the caller rejects anything but a regular file after a statx); it changes
    /// nothing for regular files. Returns the descriptor, or -1 with the errno.</summary>
    public static int OpenForRead(ReadOnlySpan<byte> pathNul, out int errno)
    {
        fixed (byte* p = pathNul)
        {
            int fd;
            do { fd = openRaw(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK); }
            while (fd < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            return fd;
        }
    }

    /// <summary>Opens <paramref name="path"/> for writing with O_DIRECT (and O_CLOEXEC); null
    /// where the filesystem refuses it, or off Linux.</summary>
    public static SafeFileHandle? OpenDirectForWriting(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        // O_DIRECT is 040000 on x86 and 0200000 on arm (asm-generic vs arch headers).
        int oDirect = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;
        int fd = open(path, O_WRONLY | oDirect | O_CLOEXEC);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Opens a new file in <paramref name="dir"/> that has no name (Linux O_TMPFILE, mode
    /// 0600 unless given): nothing to clean up after a crash. -1 where the filesystem does not
    /// support it (the errno tells why).</summary>
    public static int OpenNamelessFile(string dir, int mode = 0x180) => openCreate(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);

    /// <summary>Creates <paramref name="path"/> (which must not exist) holding
    /// <paramref name="data"/>, no fsync, and returns its read-write descriptor, which the caller
    /// closes.</summary>
    public static int CreateFileKeepOpen(string path, ReadOnlySpan<byte> data)
    {
        int fd = openCreate(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0x1a4 /* 0644 */);
        if (fd < 0) throw Errno.Last("creating", path);
        bool written = false;
        try { WriteAll(fd, data, 0, path); written = true; return fd; }
        finally { if (!written) close(fd); }
    }

    private static int s_namelessUnsupported;

    /// <summary>Test hook: true makes <see cref="TryCreateNamelessKeepOpen"/> return -1, as on a
    /// filesystem without O_TMPFILE, so the named-temp path stays tested on Linux.</summary>
    internal static bool NamelessFilesDisabled { get; set; }

    /// <summary>Whether nameless files may be tried (Linux, not turned off, not refused before).</summary>
    public static bool NamelessFilesUsable =>
        OperatingSystem.IsLinux() && !NamelessFilesDisabled && Volatile.Read(ref s_namelessUnsupported) == 0;

    /// <summary>After a link of a nameless file failed for good: use named temp files from now on.</summary>
    public static void GiveUpNamelessFiles() => Volatile.Write(ref s_namelessUnsupported, 1);

    /// <summary>A new nameless file (O_TMPFILE, mode 0644) in <paramref name="dir"/> holding
    /// <paramref name="data"/>, no fsync, for <see cref="FileNaming.LinkNoReplace"/> to name.
    /// Against a named temp file and a rename it saves two directory updates (insert and remove
    /// the temp name), and a crash before the link leaves nothing behind. -1 where nameless files
    /// cannot be used here: the caller writes a named temp file instead.</summary>
    public static int TryCreateNamelessKeepOpen(string dir, ReadOnlySpan<byte> data)
    {
        if (!NamelessFilesUsable) return -1;
        int fd = OpenNamelessFile(dir, 0x1a4 /* 0644, as named files */);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errno.EOPNOTSUPP or Errno.EISDIR or Errno.EINVAL) { GiveUpNamelessFiles(); return -1; }
            throw Errno.Last("creating a nameless file in", dir);
        }
        bool written = false;
        try { WriteAll(fd, data, 0, dir); written = true; return fd; }
        finally { if (!written) close(fd); }
    }

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="offset"/>, retrying
    /// short writes and EINTR.</summary>
    public static void WriteAll(int fd, ReadOnlySpan<byte> data, long offset, string path)
    {
        fixed (byte* p = data)
        {
            long done = 0;
            while (done < data.Length)
            {
                nint n = pwrite(fd, p + done, (nint)(data.Length - done), offset + done);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
                    throw Errno.Last("writing", path);
                }
                done += n;
            }
        }
    }

    /// <summary>Reads into <paramref name="target"/> at <paramref name="offset"/> until it is full
    /// or the file ends; returns the bytes read, or -1 with the errno on a read error (the caller
    /// names the file in its exception: building a name or a closure per read would allocate).</summary>
    public static int ReadAt(int fd, Span<byte> target, long offset, out int errno)
    {
        int total = 0;
        fixed (byte* p = target)
        {
            while (total < target.Length)
            {
                nint n = pread(fd, p + total, target.Length - total, offset + total);
                if (n > 0) { total += (int)n; continue; }
                if (n == 0) break;
                errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR) continue;
                return -1;
            }
        }
        errno = 0;
        return total;
    }

    /// <summary>The soft RLIMIT_NOFILE of this process (how many descriptors it may hold open),
    /// or -1 when it cannot be read. .NET raises the soft limit to the hard limit at start-up, so
    /// this is normally the hard limit; RLIM_INFINITY reads as <see cref="long.MaxValue"/>.</summary>
    public static long OpenFileLimit()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        ulong* limits = stackalloc ulong[2]; // struct rlimit { rlim_t cur, max } (64-bit)
        if (getrlimit(RLIMIT_NOFILE, limits) != 0) return -1;
        return limits[0] > long.MaxValue ? long.MaxValue : (long)limits[0];
    }
}
