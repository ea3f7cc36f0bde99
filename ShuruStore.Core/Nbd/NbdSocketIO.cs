using System.Net.Sockets;
using System.Runtime.InteropServices;
using static ShuruStore.Core.Interop.SocketCalls;
using static ShuruStore.Core.Interop.Errno;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Exact-length blocking socket I/O. A peer that goes away mid-message is reported as "false"
/// rather than an exception: for a server that is the normal end of a connection.
/// </summary>
internal static class NbdSocketIO
{
    public static bool ReadExact(Socket socket, Span<byte> buffer)
    {
        try
        {
            while (!buffer.IsEmpty)
            {
                int n = socket.Receive(buffer, SocketFlags.None);
                if (n == 0) return false;
                buffer = buffer[n..];
            }
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes through <paramref name="scratch"/>.</summary>
    public static bool Discard(Socket socket, long count, Span<byte> scratch)
    {
        while (count > 0)
        {
            int n = (int)Math.Min(count, scratch.Length);
            if (!ReadExact(socket, scratch[..n])) return false;
            count -= n;
        }
        return true;
    }

    /// <summary>Writes <paramref name="head"/> then <paramref name="body"/>, on Linux with one
    /// sendmsg for both (a reply header and its payload) rather than a send each.</summary>
    public static unsafe bool WriteAll(Socket socket, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        if (!OperatingSystem.IsLinux()) return WriteAll(socket, head) && WriteAll(socket, body);
        var handle = socket.SafeHandle;
        bool added = false;
        try
        {
            // Holds the descriptor open (and unreused) while the call runs, even if another
            // thread closes the socket; shutdown(2) by that thread still wakes a blocked send.
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            fixed (byte* h = head)
            fixed (byte* b = body)
            {
                var iov = stackalloc IoVec[2];
                iov[0] = new IoVec { Base = h, Length = (nuint)head.Length };
                iov[1] = new IoVec { Base = b, Length = (nuint)body.Length };
                var msg = new MsgHdr { Iov = iov, IovLength = 2 };
                while (msg.IovLength > 0)
                {
                    nint n = sendmsg(fd, &msg, MSG_NOSIGNAL);
                    if (n < 0)
                    {
                        if (Marshal.GetLastPInvokeError() == EINTR) continue;
                        return false;
                    }
                    // Skip what was sent: whole buffers first, then part of the next one.
                    while (msg.IovLength > 0 && (nuint)n >= msg.Iov->Length)
                    {
                        n -= (nint)msg.Iov->Length;
                        msg.Iov++;
                        msg.IovLength--;
                    }
                    if (msg.IovLength > 0)
                    {
                        msg.Iov->Base += n;
                        msg.Iov->Length -= (nuint)n;
                    }
                }
                return true;
            }
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>What <see cref="SendFile"/> ran into before sending everything.</summary>
    public enum SendFileStop { Done, PeerGone, FileEnded, FileFailed }

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <paramref name="fileDescriptor"/> from
    /// <paramref name="fileOffset"/> with sendfile(2), advancing <paramref name="fileOffset"/>
    /// by what was sent. Stops early when the peer goes away, when the file ends (it shrank), or
    /// when reading the file fails or the file cannot be sent this way (<paramref name="errno"/>
    /// says why); the caller sends the rest another way or ends the connection. The caller
    /// keeps <paramref name="fileDescriptor"/> open (a lease) for the duration.
    /// </summary>
    public static unsafe SendFileStop SendFile(Socket socket, int fileDescriptor, ref long fileOffset, long count, out int errno)
    {
        errno = 0;
        var handle = socket.SafeHandle;
        bool added = false;
        try
        {
            // As in WriteAll: the descriptor stays ours while the call runs, and a shutdown(2)
            // from Abort still wakes a send blocked on a full socket buffer.
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            int inFd = fileDescriptor;
            long position = fileOffset;
            try
            {
                while (count > 0)
                {
                    nint n = sendfile(fd, inFd, &position, (nuint)Math.Min(count, 1L << 30));
                    if (n > 0)
                    {
                        count -= n;
                        continue;
                    }
                    if (n == 0) return SendFileStop.FileEnded;
                    errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR) continue;
                    // EAGAIN on this blocking socket: the send timeout passed with the client not reading.
                    return errno is EPIPE or ECONNRESET or ENOTCONN or ESHUTDOWN or EAGAIN ? SendFileStop.PeerGone : SendFileStop.FileFailed;
                }
                return SendFileStop.Done;
            }
            finally
            {
                fileOffset = position;
            }
        }
        catch (ObjectDisposedException)
        {
            return SendFileStop.PeerGone;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    public static bool WriteAll(Socket socket, ReadOnlySpan<byte> data)
    {
        try
        {
            while (!data.IsEmpty)
            {
                int n = socket.Send(data, SocketFlags.None);
                data = data[n..];
            }
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }
}
