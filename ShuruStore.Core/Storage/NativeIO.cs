using System.Runtime.InteropServices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Durability helpers .NET lacks: fsync of a directory (so a rename survives a crash) and the
/// atomic "temp file, fsync, rename, fsync directory" pattern used for every file we publish.
/// shuru wrote files in place without fsync; a crash left truncated chunks and half indexes.
/// </summary>
internal static partial class NativeIO
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);

    private const int O_RDONLY = 0;
    private const int O_DIRECTORY_LINUX = 0x10000;
    private const int O_DIRECTORY_MAC = 0x100000;

    /// <summary>fsyncs a directory so entries created or renamed in it are durable.</summary>
    public static void FsyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return; // NTFS metadata is journaled; no directory handle fsync
        int flags = O_RDONLY | (OperatingSystem.IsMacOS() ? O_DIRECTORY_MAC : O_DIRECTORY_LINUX);
        int fd = open(dir, flags);
        if (fd < 0) throw new IOException($"cannot open directory '{dir}' to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (fsync(fd) != 0)
                throw new IOException($"fsync of directory '{dir}' failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally { close(fd); }
    }

    /// <summary>Whether <see cref="SyncFileSystem"/> is available (Linux <c>syncfs</c>).</summary>
    public static bool HasSyncFs => OperatingSystem.IsLinux();

    /// <summary>Opens a directory for <see cref="SyncFileSystem"/>. Open it <em>before</em> writing
    /// the files it must make durable: <c>syncfs</c> reports a writeback error only to descriptors
    /// opened before the error happened (Linux 5.8+), so background writeback failing on a file
    /// written earlier is never missed.</summary>
    public static int OpenForSyncFs(string dir)
    {
        int fd = open(dir, O_RDONLY | O_DIRECTORY_LINUX);
        if (fd < 0) throw new IOException($"cannot open directory '{dir}' to syncfs it (errno {Marshal.GetLastPInvokeError()})");
        return fd;
    }

    /// <summary>Linux <c>syncfs</c> on the filesystem of <paramref name="fd"/>: one call makes every
    /// file written there durable (data and metadata), far cheaper than one fsync per small file.</summary>
    public static void SyncFileSystem(int fd, string dir)
    {
        if (syncfs(fd) != 0)
            throw new IOException($"syncfs of '{dir}' failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Closes a descriptor from <see cref="OpenForSyncFs"/>.</summary>
    public static void CloseFd(int fd) => close(fd);

    /// <summary>Publishes a file atomically: writes a recognisable temp file next to it, fsyncs it,
    /// renames it over <paramref name="path"/> and fsyncs the directory. Readers see the old file
    /// or the complete new one, never a half-written one.</summary>
    public static void WriteFileAtomic(string path, Action<Stream> write)
    {
        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        string tmp = System.IO.Path.Combine(dir, "." + System.IO.Path.GetFileName(full) + ".tmp-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch { /* best effort: the temp name is ignored by readers */ }
            throw;
        }
        FsyncDirectory(dir);
    }

    /// <summary>Whether an exception means the disk is full or over quota.</summary>
    public static bool IsNoSpace(Exception e) =>
        e is IOException io && (io.HResult == 28 || (io.HResult & 0xFFFF) == 28 || io.HResult == unchecked((int)0x80070070) ||
                                io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) ||
                                io.Message.Contains("quota", StringComparison.OrdinalIgnoreCase));
}
