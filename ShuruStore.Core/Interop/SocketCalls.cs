using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>
/// sendmsg(2) with two buffers: .NET's gathering Socket.Send takes arrays and pins each one
/// through a GCHandle per call; the reply path has spans (a staged header and a pooled payload)
/// and wants one system call for both. Linux x86-64/arm64 layout of struct msghdr.
/// sendfile(2): payloads sent from a file without passing through user memory.
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
}
