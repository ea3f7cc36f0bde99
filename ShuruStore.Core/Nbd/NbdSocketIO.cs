using System.Net.Sockets;

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
