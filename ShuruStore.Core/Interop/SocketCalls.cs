using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>
/// sendmsg(2) with two buffers: .NET's gathering Socket.Send takes arrays and pins each one
/// through a GCHandle per call; the reply path has spans (a staged header and a pooled payload)
/// and wants one system call for both. Linux x86-64/arm64 layout of struct msghdr.
/// sendfile(2): payloads sent from a file without passing through user memory.
/// poll(2) with POLLRDHUP: whether the peer closed its end, even with data of it still unread.
/// </summary>
internal static unsafe partial class SocketCalls
{
    public const int MSG_NOSIGNAL = 0x4000;

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendfile(int outFd, int inFd, long* offset, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    private const int SOL_SOCKET = 1, SO_SNDTIMEO = 21;

    /// <summary>SO_SNDTIMEO: a blocking send (send, sendmsg, sendfile) that cannot make progress
    /// for this long fails with EAGAIN. Set on the socket itself, so it also bounds the raw calls
    /// the reply path makes (.NET's own timeout covers only its managed Send).</summary>
    public static void SetSendTimeout(System.Net.Sockets.Socket socket, TimeSpan timeout)
    {
        long* tv = stackalloc long[2]; // struct timeval { time_t sec; suseconds_t usec } (64-bit)
        tv[0] = (long)timeout.TotalSeconds;
        tv[1] = (long)(timeout.TotalMicroseconds % 1_000_000);
        bool added = false;
        var handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            if (setsockopt((int)handle.DangerousGetHandle(), SOL_SOCKET, SO_SNDTIMEO, tv, 16) != 0)
                throw new IOException($"setsockopt(SO_SNDTIMEO) failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally { if (added) handle.DangerousRelease(); }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeoutMs);

    private const short POLLERR = 0x008, POLLHUP = 0x010, POLLRDHUP = 0x2000;

    /// <summary>Whether the peer has closed its end (or the socket failed), without reading:
    /// POLLRDHUP is reported as soon as the peer's FIN arrives, however much it sent before it
    /// that is still unread. A socket this process already closed counts as closed.</summary>
    public static bool PeerClosed(System.Net.Sockets.Socket socket)
    {
        bool added = false;
        var handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            var fd = new PollFd { Fd = (int)handle.DangerousGetHandle(), Events = POLLRDHUP };
            if (poll(&fd, 1, 0) < 0) return false; // EINTR and the like: look again later
            return (fd.Revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
        }
        catch (ObjectDisposedException) { return true; }
        finally { if (added) handle.DangerousRelease(); }
    }
}
