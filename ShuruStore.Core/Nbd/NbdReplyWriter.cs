using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using static ShuruStore.Core.Nbd.NbdProtocol;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Serialises replies onto one connection's socket. Every reply (all chunks of a structured
/// reply included) is written under one lock, so replies that complete concurrently never
/// interleave; the lock is only ever held for socket writes, never across a device call.
/// </summary>
internal sealed class NbdReplyWriter
{
    private readonly Socket _socket;
    private readonly Lock _lock = new();
    private readonly byte[] _header = new byte[64];
    // Small replies (headers, 4 KiB reads, hole chunks) are gathered here and leave in one
    // send: a system call per reply instead of one per field. Large data goes out directly.
    private readonly byte[] _stage = new byte[StageSize];
    private int _staged;
    private volatile bool _broken;
    private const int StageSize = 64 * 1024;

    public NbdReplyWriter(Socket socket) => _socket = socket;

    public void SimpleReply(ulong cookie, uint error, ReadOnlySpan<byte> data = default)
    {
        lock (_lock)
        {
            WriteSimpleHeader(cookie, error);
            Append(_header.AsSpan(0, SimpleReplyHeaderSize));
            if (!data.IsEmpty) Append(data);
            FlushStage();
        }
    }

    /// <summary>A structured ERROR chunk (with DONE) carrying a human-readable message.</summary>
    public void StructuredError(ulong cookie, uint error, string message)
    {
        // Messages are bounded so the chunk stays small whatever the device says.
        if (message.Length > 1024) message = message[..1024];
        byte[] msg = Encoding.UTF8.GetBytes(message);
        lock (_lock)
        {
            var h = _header.AsSpan();
            WriteChunkHeader(h, ReplyFlagDone, ReplyTypeError, cookie, (uint)(6 + msg.Length));
            BinaryPrimitives.WriteUInt32BigEndian(h[20..], error);
            BinaryPrimitives.WriteUInt16BigEndian(h[24..], (ushort)msg.Length);
            Append(h[..26]);
            Append(msg);
            FlushStage();
        }
    }

    /// <summary>Writes a whole structured READ reply: data and hole chunks in order, the last
    /// one flagged DONE. <paramref name="segments"/> index into <paramref name="buffer"/>.</summary>
    public void StructuredRead(ulong cookie, long offset, ReadOnlySpan<byte> buffer, IReadOnlyList<ReadSegment> segments)
    {
        lock (_lock)
        {
            var h = _header.AsSpan();
            if (segments.Count == 0)
            {
                WriteChunkHeader(h, ReplyFlagDone, ReplyTypeNone, cookie, 0);
                Append(h[..StructuredReplyHeaderSize]);
                FlushStage();
                return;
            }
            for (int i = 0; i < segments.Count; i++)
            {
                var s = segments[i];
                ushort flags = i == segments.Count - 1 ? ReplyFlagDone : (ushort)0;
                if (s.Hole)
                {
                    WriteChunkHeader(h, flags, ReplyTypeOffsetHole, cookie, 12);
                    BinaryPrimitives.WriteUInt64BigEndian(h[20..], (ulong)(offset + s.Start));
                    BinaryPrimitives.WriteUInt32BigEndian(h[28..], (uint)s.Length);
                    Append(h[..32]);
                }
                else
                {
                    WriteChunkHeader(h, flags, ReplyTypeOffsetData, cookie, (uint)(8 + s.Length));
                    BinaryPrimitives.WriteUInt64BigEndian(h[20..], (ulong)(offset + s.Start));
                    Append(h[..28]);
                    Append(buffer.Slice(s.Start, s.Length));
                }
            }
            FlushStage();
        }
    }

    /// <summary>A BLOCK_STATUS chunk (with DONE); <paramref name="payload"/> is the context id
    /// followed by the extent descriptors.</summary>
    public void BlockStatus(ulong cookie, ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            var h = _header.AsSpan();
            WriteChunkHeader(h, ReplyFlagDone, ReplyTypeBlockStatus, cookie, (uint)payload.Length);
            Append(h[..StructuredReplyHeaderSize]);
            Append(payload);
            FlushStage();
        }
    }

    private void WriteSimpleHeader(ulong cookie, uint error)
    {
        var h = _header.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(h, SimpleReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], error);
        BinaryPrimitives.WriteUInt64BigEndian(h[8..], cookie);
    }

    private static void WriteChunkHeader(Span<byte> h, ushort flags, ushort type, ulong cookie, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(h, StructuredReplyMagic);
        BinaryPrimitives.WriteUInt16BigEndian(h[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(h[6..], type);
        BinaryPrimitives.WriteUInt64BigEndian(h[8..], cookie);
        BinaryPrimitives.WriteUInt32BigEndian(h[16..], length);
    }

    /// <summary>Queues bytes of the reply being written; caller holds the lock.</summary>
    private void Append(ReadOnlySpan<byte> data)
    {
        if (_staged + data.Length <= _stage.Length)
        {
            data.CopyTo(_stage.AsSpan(_staged));
            _staged += data.Length;
            return;
        }
        if (data.Length <= _stage.Length / 4)
        {
            FlushStage();
            data.CopyTo(_stage);
            _staged = data.Length;
        }
        else
        {
            // Large data (a read's payload) leaves together with the staged header in front
            // of it: one system call, no copy.
            if (!_broken && !NbdSocketIO.WriteAll(_socket, _stage.AsSpan(0, _staged), data)) _broken = true;
            _staged = 0;
        }
    }

    /// <summary>Sends what is staged; every reply ends with this, so nothing lingers.</summary>
    private void FlushStage()
    {
        if (_staged == 0) return;
        Send(_stage.AsSpan(0, _staged));
        _staged = 0;
    }

    private void Send(ReadOnlySpan<byte> data)
    {
        if (_broken) return;
        if (!NbdSocketIO.WriteAll(_socket, data)) _broken = true;
    }
}

/// <summary>A piece of a READ reply: <see cref="Length"/> bytes at <see cref="Start"/> within the
/// request, either data (sent from the buffer) or a hole (sent as OFFSET_HOLE).</summary>
internal readonly record struct ReadSegment(int Start, int Length, bool Hole);
