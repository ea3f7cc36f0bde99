using System.Net.Sockets;
using System.Runtime.InteropServices;
using static ShuruStore.Core.Nbd.LinuxSocketCalls;

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
