using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>Holes and allocation: fallocate modes, SEEK_DATA / SEEK_HOLE, readahead hints.</summary>
internal static partial class SparseFiles
{
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int FALLOC_FL_ZERO_RANGE = 0x10;
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;
    public const int POSIX_FADV_WILLNEED = 3;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc")]
    public static partial int posix_fadvise(int fd, long offset, long len, int advice);
}
