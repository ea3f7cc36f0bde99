using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;
using static ShuruStore.Core.Nbd.NbdProtocol;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Serialises replies onto one connection's socket. Every reply (all chunks of a structured
/// reply included) is written under one lock, so replies that complete concurrently never
/// interleave; the lock is only ever held for socket writes, never across a device call.
/// <para>A client that stops reading its replies blocks the thread sending one (up to the reply-write
/// timeout) and every thread waiting behind it for the lock. Those are thread-pool threads, so the
/// writer tells how many pool threads it holds and for how long its current send has lasted
/// (<see cref="PoolThreadsStalled"/>): the server compensates the pool for them, and other clients
/// keep being served.</para>
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
    private static readonly byte[] ZeroPiece = new byte[64 * 1024];

    // Pool threads inside the writer (sending, or waiting for the lock), and since when the
    // current holder has held the lock (Stopwatch ticks, 0 when nobody holds it).
    private int _poolThreadsInside;
    private long _heldSince;

    public NbdReplyWriter(Socket socket) => _socket = socket;

    /// <summary>The pool threads this writer holds up when its current reply has been sending for
    /// longer than <paramref name="stallTicks"/> (Stopwatch ticks) at <paramref name="nowTicks"/>; else 0.</summary>
    public int PoolThreadsStalled(long nowTicks, long stallTicks)
    {
        long since = Volatile.Read(ref _heldSince);
        return since != 0 && nowTicks - since > stallTicks ? Volatile.Read(ref _poolThreadsInside) : 0;
    }

    /// <summary>Takes the writer's lock for one whole reply.</summary>
    private Holder Hold()
    {
        bool pool = Thread.CurrentThread.IsThreadPoolThread;
        if (pool) Interlocked.Increment(ref _poolThreadsInside);
        _lock.Enter();
        Volatile.Write(ref _heldSince, Stopwatch.GetTimestamp());
        return new Holder(this, pool);
    }

    private readonly ref struct Holder(NbdReplyWriter writer, bool pool)
    {
        public void Dispose()
        {
            Volatile.Write(ref writer._heldSince, 0);
            writer._lock.Exit();
            if (pool) Interlocked.Decrement(ref writer._poolThreadsInside);
        }
    }

    public void SimpleReply(ulong cookie, uint error, ReadOnlySpan<byte> data = default)
    {
        using (Hold())
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
        using (Hold())
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
        using (Hold())
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
                AppendSegmentHeader(cookie, offset, s, last: i == segments.Count - 1);
                if (!s.Hole) Append(buffer.Slice(s.Start, s.Length));
            }
            FlushStage();
        }
    }

    /// <summary>
    /// A READ reply whose data is sent from files (<see cref="IBlockDevice.TryGetFileRanges"/>): a simple
    /// reply when <paramref name="segments"/> is null, else structured chunks as in
    /// <see cref="StructuredRead"/>. <paramref name="ranges"/> cover the data segments in order;
    /// the caller keeps their leases until this returns.
    /// </summary>
    /// <exception cref="BlockDeviceException">A file failed, or changed, after the reply's
    /// header had gone out. No error reply can follow a partly sent one, so the connection is
    /// shut down (the client sees it end, as when a server dies) and the error reported.</exception>
    public void ReadFromFiles(ulong cookie, long offset, int length, IReadOnlyList<ReadSegment>? segments, List<FileRange> ranges)
    {
        using (Hold())
        {
            var h = _header.AsSpan();
            int next = 0;
            if (segments is null)
            {
                WriteSimpleHeader(cookie, 0);
                Append(h[..SimpleReplyHeaderSize]);
                SendRanges(ranges, ref next, length);
                FlushStage();
                return;
            }
            for (int i = 0; i < segments.Count; i++)
            {
                var s = segments[i];
                AppendSegmentHeader(cookie, offset, s, last: i == segments.Count - 1);
                if (!s.Hole) SendRanges(ranges, ref next, s.Length);
            }
            FlushStage();
        }
    }

    /// <summary>Stages the chunk header of one piece of a structured READ reply: OFFSET_HOLE
    /// (complete in itself) or OFFSET_DATA (its data follows); the last one flagged DONE.
    /// Caller holds the lock.</summary>
    private void AppendSegmentHeader(ulong cookie, long offset, ReadSegment s, bool last)
    {
        var h = _header.AsSpan();
        ushort flags = last ? ReplyFlagDone : (ushort)0;
        BinaryPrimitives.WriteUInt64BigEndian(h[20..], (ulong)(offset + s.Start));
        if (s.Hole)
        {
            WriteChunkHeader(h, flags, ReplyTypeOffsetHole, cookie, 12);
            BinaryPrimitives.WriteUInt32BigEndian(h[28..], (uint)s.Length);
            Append(h[..32]);
        }
        else
        {
            WriteChunkHeader(h, flags, ReplyTypeOffsetData, cookie, (uint)(8 + s.Length));
            Append(h[..28]);
        }
    }

    /// <summary>Sends what is staged, then <paramref name="length"/> bytes from
    /// <paramref name="ranges"/> starting at index <paramref name="next"/>; caller holds the lock.</summary>
    private void SendRanges(List<FileRange> ranges, ref int next, int length)
    {
        FlushStage();
        while (length > 0)
        {
            var range = ranges[next++];
            length -= range.Length;
            if (!range.Lease.MayChange)
            {
                SendRange(range);
                continue;
            }
            // A file that may change is checked after its bytes were read. The reply's very last
            // data byte is held back until that check, so a failed one always leaves the reply
            // unfinished: the client cannot mistake it for a complete, wrong answer.
            bool last = next == ranges.Count && range.Length > 0;
            SendRange(last ? range with { Length = range.Length - 1 } : range);
            if (_broken) return;
            if (last) ReadHeldBackByte(range);
            if (!range.Lease.StillValid(range))
                BreakStream($"the file sent for file offset {range.FileOffset} (+{range.Length}) changed while it was sent");
            if (last) Append(_heldBack);
        }
    }

    private readonly byte[] _heldBack = new byte[1];

    private void ReadHeldBackByte(in FileRange range)
    {
        long at = range.FileOffset + range.Length - 1;
        int n = FileDescriptors.ReadAt(range.Descriptor, _heldBack, at, out int errno);
        if (n < 0) BreakStream($"reading file offset {at} failed with errno {errno}");
        if (n == 0) _heldBack[0] = 0; // the file ended: zeros, as SendRange pads
    }

    private void SendRange(in FileRange range)
    {
        if (_broken) return;
        long position = range.FileOffset;
        var stop = NbdSocketIO.SendFile(_socket, range.Descriptor, ref position, range.Length, out int errno);
        long left = range.FileOffset + range.Length - position;
        switch (stop)
        {
            case NbdSocketIO.SendFileStop.Done:
                return;
            case NbdSocketIO.SendFileStop.PeerGone:
                Abandon();
                return;
            case NbdSocketIO.SendFileStop.FileEnded:
                SendZeros(left);
                return;
            default:
                // sendfile refused or failed on the file side (errno): read the rest through a
                // buffer, which either succeeds or tells the real read error.
                SendReadThrough(range.Descriptor, position, left, errno);
                return;
        }
    }

    private void SendZeros(long count)
    {
        while (count > 0 && !_broken)
        {
            int n = (int)Math.Min(count, ZeroPiece.Length);
            Send(ZeroPiece.AsSpan(0, n));
            count -= n;
        }
    }

    private void SendReadThrough(int fd, long position, long count, int sendfileErrno)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(count, 1 << 20));
        try
        {
            while (count > 0 && !_broken)
            {
                int want = (int)Math.Min(count, buffer.Length);
                int n = FileDescriptors.ReadAt(fd, buffer.AsSpan(0, want), position, out int errno);
                if (n < 0)
                    BreakStream($"reading {count} bytes at file offset {position} failed with errno {errno} (sendfile: errno {sendfileErrno})");
                Send(buffer.AsSpan(0, n));
                position += n;
                count -= n;
                if (n < want)
                {
                    SendZeros(count); // the file ended
                    return;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A reply could not be sent (the client went away, or did not read it within the
    /// send timeout): no later reply can follow it on the stream, so the connection is shut down,
    /// which ends its reader and frees what its requests hold.</summary>
    private void Abandon()
    {
        _broken = true;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { /* already gone */ }
    }

    /// <summary>Ends a reply that cannot be completed truthfully: shuts the socket down so the
    /// client sees the connection end, and throws so the request is reported.</summary>
    private void BreakStream(string why)
    {
        _broken = true;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { /* already gone */ }
        throw new BlockDeviceException(BlockDeviceError.IO, why + "; the reply had started, so the connection is closed");
    }

    /// <summary>A BLOCK_STATUS chunk (with DONE); <paramref name="payload"/> is the context id
    /// followed by the extent descriptors.</summary>
    public void BlockStatus(ulong cookie, ReadOnlySpan<byte> payload)
    {
        using (Hold())
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
            if (!_broken && !NbdSocketIO.WriteAll(_socket, _stage.AsSpan(0, _staged), data)) Abandon();
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
        if (!NbdSocketIO.WriteAll(_socket, data)) Abandon();
    }
}

/// <summary>A piece of a READ reply: <see cref="Length"/> bytes at <see cref="Start"/> within the
/// request, either data (sent from the buffer) or a hole (sent as OFFSET_HOLE).</summary>
internal readonly record struct ReadSegment(int Start, int Length, bool Hole);
