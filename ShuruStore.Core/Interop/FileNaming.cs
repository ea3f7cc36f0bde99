using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>
/// Giving a file its name atomically and never over an existing one: renameat2 with
/// RENAME_NOREPLACE, and linkat of a nameless file. A name published this way always names
/// complete content, so a crash never leaves a half-written file under it.
/// </summary>
internal static partial class FileNaming
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_FOLLOW = 0x400;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint RENAME_NOREPLACE = 1;
    private static int s_noReplaceUnsupported;
    private static int s_emptyPathLinkUnsupported;

    /// <summary>Test hook: true makes <see cref="LinkNoReplace"/> link through /proc/self/fd, as
    /// for a process without CAP_DAC_READ_SEARCH, so that path stays tested when tests run as root.</summary>
    internal static bool EmptyPathLinkDisabled { get; set; }

    /// <summary>Renames <paramref name="from"/> to <paramref name="to"/> unless
    /// <paramref name="to"/> exists (one system call). Returns false when <paramref name="to"/>
    /// exists. Falls back to <see cref="File.Move(string, string, bool)"/> on filesystems without
    /// RENAME_NOREPLACE.</summary>
    public static bool RenameNoReplace(string from, string to)
    {
        if (Volatile.Read(ref s_noReplaceUnsupported) == 0)
        {
            if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EEXIST) return false;
            if (errno != Errno.EINVAL && errno != Errno.ENOSYS) throw Errno.Last("renaming", from);
            Volatile.Write(ref s_noReplaceUnsupported, 1);
        }
        try { File.Move(from, to, overwrite: false); return true; }
        catch (IOException) when (File.Exists(to)) { return false; }
    }

    /// <summary>Gives a nameless file (<see cref="FileDescriptors.TryCreateNamelessKeepOpen"/>) the
    /// name <paramref name="path"/>, atomically and never over an existing file: false when
    /// <paramref name="path"/> exists (the nameless file disappears when its descriptor closes).
    /// Throws <see cref="NotSupportedException"/> where linking through <c>/proc/self/fd</c> is
    /// not possible (no /proc); nameless files are then given up for the process.</summary>
    public static bool LinkNoReplace(int fd, string path)
    {
        // linkat(fd, "", AT_EMPTY_PATH) names the descriptor itself, but only for a process with
        // CAP_DAC_READ_SEARCH; elsewhere the kernel says ENOENT and the link goes through
        // /proc/self/fd, which needs no capability but costs a procfs lookup.
        if (!EmptyPathLinkDisabled && Volatile.Read(ref s_emptyPathLinkUnsupported) == 0)
        {
            if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0) return true;
            int first = Marshal.GetLastPInvokeError();
            if (first == Errno.EEXIST) return false;
            if (first is not (Errno.ENOENT or Errno.EPERM or Errno.EINVAL)) throw Errno.Last("linking", path);
            Volatile.Write(ref s_emptyPathLinkUnsupported, 1); // not allowed here: /proc from now on
        }
        if (linkat(AT_FDCWD, $"/proc/self/fd/{fd}", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.EEXIST) return false;
        if (errno is Errno.ENOENT or Errno.EPERM or Errno.EXDEV or Errno.ENOTDIR)
        {
            FileDescriptors.GiveUpNamelessFiles();
            throw new NotSupportedException($"cannot link a nameless file to '{path}' (errno {errno})");
        }
        throw Errno.Last("linking", path);
    }
}
