using System.Net.Sockets;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Buffered reading of a connection's input, from the client's flags to its last request.
/// Clients pipeline requests, so one receive often brings several 28-byte headers and small write
/// payloads (and, during negotiation, the flags with the first option); serving them from a
/// buffer saves a system call per field. Large payloads bypass the buffer and land directly in
/// their destination.
/// </summary>
internal sealed class NbdRequestReader
{
    private readonly Socket _socket;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;

    public NbdRequestReader(Socket socket, int bufferSize = 64 * 1024)
    {
        _socket = socket;
        _buffer = new byte[bufferSize];
    }

    /// <summary>Bytes received and not yet consumed: more requests already sent by the client.</summary>
    public int Buffered => _end - _start;

    /// <summary>The last read failed because the socket's receive timeout passed (the client
    /// stalled), not because the client went away.</summary>
    public bool TimedOut { get; private set; }

    /// <summary>Fills <paramref name="destination"/>; false when the peer went away first.</summary>
    public bool ReadExact(Span<byte> destination)
    {
        int buffered = _end - _start;
        if (buffered >= destination.Length)
        {
            _buffer.AsSpan(_start, destination.Length).CopyTo(destination);
            _start += destination.Length;
            return true;
        }
        _buffer.AsSpan(_start, buffered).CopyTo(destination);
        _start = _end = 0;
        destination = destination[buffered..];
        if (destination.Length >= _buffer.Length) // big payload: straight into it, no double copy
        {
            while (!destination.IsEmpty)
            {
                int n = Receive(destination);
                if (n <= 0) return false;
                destination = destination[n..];
            }
            return true;
        }

        while (_end < destination.Length)
        {
            int n = Receive(_buffer.AsSpan(_end));
            if (n <= 0) return false;
            _end += n;
        }
        _buffer.AsSpan(0, destination.Length).CopyTo(destination);
        _start = destination.Length;
        return true;
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes (refused payloads), in pieces no
    /// larger than the buffer.</summary>
    public bool Discard(long count)
    {
        while (count > 0)
        {
            if (_end == _start)
            {
                _start = _end = 0;
                int n = Receive(_buffer);
                if (n <= 0) return false;
                _end = n;
            }
            int take = (int)Math.Min(count, _end - _start);
            _start += take;
            count -= take;
        }
        return true;
    }

    private int Receive(Span<byte> into)
    {
        try
        {
            return _socket.Receive(into, SocketFlags.None);
        }
        catch (SocketException ex)
        {
            TimedOut = ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock;
            return -1;
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
    }
}
