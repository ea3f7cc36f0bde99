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
    [LibraryImport("libc", SetLastError = true)]
    private static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);

    private const uint SYNC_FILE_RANGE_WRITE = 2;

    /// <summary>Linux: starts writing a range of a file's dirty pages to disk and returns without
    /// waiting (sync_file_range WRITE). Advisory: it promises nothing, so a failure is ignored (an
    /// I/O error still reaches the next fsync or syncfs).</summary>
    public static void StartWriteback(int fd, long offset, long length)
    {
        if (OperatingSystem.IsLinux()) sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
    }
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openCreate(string path, int flags, int mode);
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint pwrite(int fd, byte* buf, nint count, long offset);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

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

    // Linux open(2) flags and renameat2(2) (same values on x86-64 and arm64).
    private const int O_WRONLY = 0x1, O_RDWR = 0x2, O_CREAT = 0x40, O_EXCL = 0x80, O_CLOEXEC = 0x80000;
    private const int O_TMPFILE = 0x410000; // __O_TMPFILE | O_DIRECTORY (x86-64, arm64)

    /// <summary>Opens a new file in <paramref name="dir"/> that has no name (Linux O_TMPFILE, mode
    /// 0600 unless given): nothing to clean up after a crash. -1 where the filesystem does not
    /// support it.</summary>
    public static int OpenNamelessFile(string dir, int mode = 0x180) => openCreate(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);

    private const int AT_FDCWD = -100;
    private const uint RENAME_NOREPLACE = 1;
    private const int EEXIST = 17, EINVAL = 22, ENOSYS = 38;
    private static int s_noReplaceUnsupported;

    private static IOException Errno(string what, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what} '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }

    /// <summary>Linux: creates <paramref name="path"/> (which must not exist) holding
    /// <paramref name="data"/>, no fsync: open + pwrite + close, without the flock, fstat and
    /// lseek calls a <see cref="Microsoft.Win32.SafeHandles.SafeFileHandle"/> adds (a batch of
    /// 64 KiB chunk files is dominated by per-file system calls).</summary>
    public static void CreateFileNoSync(string path, ReadOnlySpan<byte> data) => close(CreateFileKeepOpen(path, data));

    /// <summary>As <see cref="CreateFileNoSync"/>, but returns the descriptor (read-write), which
    /// the caller closes: a chunk store keeps the files it wrote open for reading them back.</summary>
    public static int CreateFileKeepOpen(string path, ReadOnlySpan<byte> data)
    {
        int fd = openCreate(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0x1a4 /* 0644 */);
        if (fd < 0) throw Errno("creating", path);
        bool written = false;
        try { WriteAll(fd, data, path); written = true; return fd; }
        finally { if (!written) close(fd); }
    }

    private static unsafe void WriteAll(int fd, ReadOnlySpan<byte> data, string path)
    {
        fixed (byte* p = data)
        {
            long done = 0;
            while (done < data.Length)
            {
                nint n = pwrite(fd, p + done, (nint)(data.Length - done), done);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == 4 /* EINTR */) continue;
                    throw Errno("writing", path);
                }
                done += n;
            }
        }
    }

    private const int AT_SYMLINK_FOLLOW = 0x400;
    private static int s_namelessUnsupported;

    /// <summary>Test hook: true makes <see cref="TryCreateNamelessKeepOpen"/> return -1, as on a
    /// filesystem without O_TMPFILE, so the named-temp path stays tested on Linux.</summary>
    internal static bool NamelessFilesDisabled { get; set; }

    /// <summary>Test hook: true makes <see cref="LinkNoReplace"/> link through /proc/self/fd, as
    /// for a process without CAP_DAC_READ_SEARCH, so that path stays tested when tests run as root.</summary>
    internal static bool EmptyPathLinkDisabled { get; set; }
    private static int s_emptyPathLinkUnsupported;

    /// <summary>Linux: a new nameless file (O_TMPFILE, mode 0644) in <paramref name="dir"/> holding
    /// <paramref name="data"/>, no fsync, for <see cref="LinkNoReplace"/> to name. Against a named
    /// temp file and a rename it saves two directory updates per file (insert and remove the temp
    /// name), and a crash before the link leaves nothing behind. -1 where the filesystem (or an
    /// earlier failed link) says nameless files cannot be used here: write a named temp instead.</summary>
    public static int TryCreateNamelessKeepOpen(string dir, ReadOnlySpan<byte> data)
    {
        if (!OperatingSystem.IsLinux() || NamelessFilesDisabled || Volatile.Read(ref s_namelessUnsupported) != 0) return -1;
        int fd = OpenNamelessFile(dir, 0x1a4 /* 0644, as named chunk files */);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is EOPNOTSUPP or EISDIR or EINVAL) { Volatile.Write(ref s_namelessUnsupported, 1); return -1; }
            throw Errno("creating a nameless file in", dir);
        }
        bool written = false;
        try { WriteAll(fd, data, dir); written = true; return fd; }
        finally { if (!written) close(fd); }
    }

    /// <summary>Gives a file from <see cref="TryCreateNamelessKeepOpen"/> the name
    /// <paramref name="path"/>, atomically and never over an existing file: false when
    /// <paramref name="path"/> exists (the nameless file disappears when its descriptor closes).
    /// Throws <see cref="NotSupportedException"/> where linking through <c>/proc/self/fd</c> is
    /// not possible (no /proc); later calls of <see cref="TryCreateNamelessKeepOpen"/> then
    /// return -1 so callers fall back to named temp files.</summary>
    public static bool LinkNoReplace(int fd, string path)
    {
        // linkat(fd, "", AT_EMPTY_PATH) names the descriptor itself, but only for a process with
        // CAP_DAC_READ_SEARCH (root, a service with the capability); elsewhere the kernel says
        // ENOENT and the link goes through /proc/self/fd, which needs no capability. Where it
        // works it saves the procfs lookup: 4 % of a fresh-layer write's samples (performance.md, step 29).
        if (!EmptyPathLinkDisabled && Volatile.Read(ref s_emptyPathLinkUnsupported) == 0)
        {
            if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0) return true;
            int first = Marshal.GetLastPInvokeError();
            if (first == EEXIST) return false;
            if (first is not (ENOENT or EPERM or EINVAL)) throw Errno("linking", path);
            Volatile.Write(ref s_emptyPathLinkUnsupported, 1); // not allowed here: /proc from now on
        }
        if (linkat(AT_FDCWD, $"/proc/self/fd/{fd}", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST) return false;
        if (errno is ENOENT or EPERM or EXDEV or ENOTDIR)
        {
            Volatile.Write(ref s_namelessUnsupported, 1);
            throw new NotSupportedException($"cannot link a nameless file to '{path}' (errno {errno})");
        }
        throw Errno("linking", path);
    }

    private const int EXDEV = 18, EISDIR = 21, EOPNOTSUPP = 95;

    /// <summary>Linux: renames <paramref name="from"/> to <paramref name="to"/> unless
    /// <paramref name="to"/> exists (renameat2 RENAME_NOREPLACE, one system call). Returns false
    /// when <paramref name="to"/> exists. Falls back to <see cref="File.Move(string, string, bool)"/>
    /// on filesystems without RENAME_NOREPLACE.</summary>
    public static bool RenameNoReplace(string from, string to)
    {
        if (Volatile.Read(ref s_noReplaceUnsupported) == 0)
        {
            if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == EEXIST) return false;
            if (errno != EINVAL && errno != ENOSYS) throw Errno("renaming", from);
            Volatile.Write(ref s_noReplaceUnsupported, 1);
        }
        try { File.Move(from, to, overwrite: false); return true; }
        catch (IOException) when (File.Exists(to)) { return false; }
    }

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

    // ---- Chunk file reads (FileChunkStore keeps verified chunk files open, see ChunkHandleCache) ----
    // Raw descriptors rather than SafeFileHandle: File.OpenHandle adds an fstat (and the old read
    // path two more for length and time), and reads of a cached file must cost one pread and one
    // statx, nothing else. Linux values; the chunk store's read path is Linux-only (statx).

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static unsafe partial int openRaw(byte* path, int flags);
    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static unsafe partial int statxRaw(int dirfd, byte* path, int flags, uint mask, byte* buffer);
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint pread(int fd, byte* buf, nint count, long offset);
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int getrlimit(int resource, ulong* limits);

    private const int O_NONBLOCK = 0x800;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1, STATX_NLINK = 0x4, STATX_MTIME = 0x40, STATX_CTIME = 0x80, STATX_INO = 0x100, STATX_SIZE = 0x200;
    private const int RLIMIT_NOFILE = 7;
    private const int EINTR = 4;
    /// <summary>errno values a caller of <see cref="OpenForRead"/> distinguishes.</summary>
    public const int EPERM = 1, ENOENT = 2, EACCES = 13, ENOTDIR = 20;

    /// <summary>Opens a file read-only by a NUL-terminated UTF-8 path (no string, no managed
    /// handle). O_NONBLOCK: a FIFO under a chunk name must not block the open until a writer
    /// appears (the caller rejects anything but a regular file after <see cref="TryStat"/>);
    /// it changes nothing for regular files. Returns the descriptor, or -1 with the errno.</summary>
    public static unsafe int OpenForRead(ReadOnlySpan<byte> pathNul, out int errno)
    {
        fixed (byte* p = pathNul)
        {
            int fd;
            do { fd = openRaw(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK); }
            while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            return fd;
        }
    }

    /// <summary>What one <c>statx</c> on an open descriptor tells about a chunk file.</summary>
    public readonly record struct FileStatus(int Type, uint Links, ChunkFileIdentity Identity);

    /// <summary><c>statx(fd, "", AT_EMPTY_PATH)</c>: type, link count, inode, size and both
    /// timestamps in one call (statx has the same layout on every architecture, struct stat
    /// does not). False with the errno on failure.</summary>
    public static unsafe bool TryStat(int fd, out FileStatus status, out int errno)
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
            Type: *(ushort*)(buf + 28) & 0xF000,                     // stx_mode & S_IFMT
            Links: *(uint*)(buf + 16),                               // stx_nlink
            Identity: new ChunkFileIdentity(
                Inode: *(ulong*)(buf + 32),                          // stx_ino
                Length: *(long*)(buf + 40),                          // stx_size
                ModifiedNanos: Nanos(buf + 112),                     // stx_mtime
                ChangedNanos: Nanos(buf + 96)));                     // stx_ctime
        return true;
    }

    /// <summary>Reads into <paramref name="target"/> at <paramref name="offset"/> until it is full
    /// or the file ends; returns the bytes read, or -1 with the errno on a read error (the caller
    /// names the file in its exception: building a name or a closure per read would allocate).</summary>
    public static unsafe int ReadAt(int fd, Span<byte> target, long offset, out int errno)
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
                if (errno == EINTR) continue;
                return -1;
            }
        }
        errno = 0;
        return total;
    }

    /// <summary>The soft RLIMIT_NOFILE of this process (how many descriptors it may hold open),
    /// or -1 when it cannot be read. .NET raises the soft limit to the hard limit at start-up, so
    /// this is normally the hard limit; RLIM_INFINITY reads as <see cref="long.MaxValue"/>.</summary>
    public static unsafe long OpenFileLimit()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        ulong* limits = stackalloc ulong[2]; // struct rlimit { rlim_t cur, max } (64-bit)
        if (getrlimit(RLIMIT_NOFILE, limits) != 0) return -1;
        return limits[0] > long.MaxValue ? long.MaxValue : (long)limits[0];
    }

    /// <summary>Whether an exception means the disk is full or over quota.</summary>
    public static bool IsNoSpace(Exception e) =>
        e is IOException io && (io.HResult == 28 || (io.HResult & 0xFFFF) == 28 || io.HResult == unchecked((int)0x80070070) ||
                                io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) ||
                                io.Message.Contains("quota", StringComparison.OrdinalIgnoreCase));
}
