using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>
/// Making data durable: fsync and fdatasync of a file, fsync of a directory (so entries created
/// or renamed in it survive a crash), syncfs of a whole filesystem, and the advisory start of a
/// writeback.
/// </summary>
internal static partial class FileSync
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);

    private const uint SYNC_FILE_RANGE_WRITE = 2;

    /// <summary>fsync(2) of a descriptor; 0 or -1 with the errno.</summary>
    public static int Fsync(int fd) => fsync(fd);

    /// <summary>fdatasync(2) of a descriptor; 0 or -1 with the errno.</summary>
    public static int Fdatasync(int fd) => fdatasync(fd);

    /// <summary>Writes a stream's buffer out and fsyncs its file, throwing when the fsync fails.
    /// <c>FileStream.Flush(true)</c> is not enough: .NET ignores an fsync that returns an error
    /// (EIO from the disk), so a caller would promise durability the disk refused.</summary>
    public static void FlushToDisk(FileStream stream)
    {
        stream.Flush();
        if (!OperatingSystem.IsLinux()) { stream.Flush(flushToDisk: true); return; }
        bool added = false;
        var handle = stream.SafeFileHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            while (fsync(fd) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR) continue;
                throw new IOException($"fsync of '{stream.Name}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
            }
        }
        finally { if (added) handle.DangerousRelease(); }
    }

    /// <summary>fsyncs a file by path (opened read-only for it); throws on failure.</summary>
    public static void FsyncFile(string path)
    {
        int fd = FileDescriptors.Open(path, FileDescriptors.O_RDONLY | FileDescriptors.O_CLOEXEC);
        if (fd < 0) throw Errno.Last("opening for fsync", path);
        try { if (fsync(fd) != 0) throw Errno.Last("fsync of", path); }
        finally { FileDescriptors.Close(fd); }
    }

    /// <summary>fsyncs a directory so entries created or renamed in it are durable.</summary>
    public static void FsyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return; // NTFS metadata is journaled; no directory handle fsync
        int fd = FileDescriptors.OpenDirectory(dir, "fsync");
        try
        {
            if (fsync(fd) != 0)
                throw new IOException($"fsync of directory '{dir}' failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally { FileDescriptors.Close(fd); }
    }

    /// <summary>Whether <see cref="SyncFileSystem"/> is available (Linux <c>syncfs</c>).</summary>
    public static bool HasSyncFs => OperatingSystem.IsLinux();

    /// <summary>Opens a directory for <see cref="SyncFileSystem"/>. Open it <em>before</em> writing
    /// the files it must make durable: <c>syncfs</c> reports a writeback error only to descriptors
    /// opened before the error happened, so background writeback failing on a file written
    /// earlier is never missed.</summary>
    public static int OpenForSyncFs(string dir) => FileDescriptors.OpenDirectory(dir, "syncfs");

    /// <summary>Linux <c>syncfs</c> on the filesystem of <paramref name="fd"/>: one call makes every
    /// file written there durable (data and metadata), far cheaper than one fsync per small file.</summary>
    public static void SyncFileSystem(int fd, string dir)
    {
        if (syncfs(fd) != 0)
            throw new IOException($"syncfs of '{dir}' failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Starts writing a range of a file's dirty pages to disk and returns without
    /// waiting (sync_file_range WRITE). Advisory: it promises nothing, so a failure is ignored (an
    /// I/O error still reaches the next fsync or syncfs).</summary>
    public static void StartWriteback(int fd, long offset, long length)
    {
        if (OperatingSystem.IsLinux()) sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
    }
}
