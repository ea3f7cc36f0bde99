using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ShuruStore.Core.Interop;

/// <summary>What a read that must not wait for the disk came to.</summary>
internal enum NoWaitRead { Done, WouldBlock, Unsupported, Failed }

/// <summary>preadv2(2) with RWF_NOWAIT: a read of bytes already in the page cache, or nothing.</summary>
internal static unsafe partial class NoWaitReads
{
    private const int RWF_NOWAIT = 0x08;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint preadv2(int fd, IoVec* iov, int iovcnt, long offset, int flags);

    /// <summary><see cref="Pread(int, Span{byte}, long)"/> through a handle, held open for the call
    /// so a Dispose racing it cannot close (or reuse) the descriptor; a closed handle is
    /// <see cref="NoWaitRead.Failed"/>.</summary>
    public static NoWaitRead Pread(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        bool added = false;
        try { handle.DangerousAddRef(ref added); }
        catch (ObjectDisposedException) { return NoWaitRead.Failed; }
        try { return Pread((int)handle.DangerousGetHandle(), buffer, offset); }
        finally { if (added) handle.DangerousRelease(); }
    }

    /// <summary>Reads the whole buffer at <paramref name="offset"/> with RWF_NOWAIT: only bytes
    /// already in the page cache. A read that stops short (end of file) is <see cref="NoWaitRead.Failed"/>:
    /// the caller's ordinary read decides what that means.</summary>
    public static NoWaitRead Pread(int fd, Span<byte> buffer, long offset)
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
                if (errno == Errno.EINTR) continue;
                if (errno == Errno.EAGAIN) return NoWaitRead.WouldBlock;
                return errno is Errno.EOPNOTSUPP or Errno.ENOSYS ? NoWaitRead.Unsupported : NoWaitRead.Failed;
            }
            return NoWaitRead.Done;
        }
    }
}
