using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using ShuruStore.Core.BlockDevices;
using static ShuruStore.Core.Nbd.NbdProtocol;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// One client connection: the handshake, then a reader loop that keeps reading requests while
/// earlier ones run on the thread pool. Replies go out as each request completes (possibly out
/// of order, which the protocol allows) through <see cref="NbdReplyWriter"/>.
/// The number of requests and payload bytes in flight is bounded, so a fast client cannot make
/// the server buffer without limit.
/// </summary>
internal sealed class NbdConnection
{
    public const int MaxRequestsInFlight = 64;
    public const long MaxBytesInFlight = 64L * 1024 * 1024;

    [ThreadStatic] private static List<Extent>? t_extents;
    [ThreadStatic] private static List<ReadSegment>? t_segments;
    [ThreadStatic] private static List<FileRange>? t_ranges;

    /// <summary>Reads at least this long are sent from the device's files when it can
    /// (<see cref="IBlockDevice.TryGetFileRanges"/>). Below it the two copies cost less than the
    /// extra system call: a small read leaves with its header in one sendmsg.</summary>
    public const int MinReadFromFiles = 32 * 1024;

    private readonly NbdServer _server;
    private readonly Socket _socket;
    private readonly IBlockDevice _device;
    private readonly NbdServerOptions _options;
    private readonly NbdReplyWriter _writer;
    private readonly NbdCounters _counters = new();
    private readonly object _flightLock = new();
    private int _inFlight;
    private long _bytesInFlight;
    private long _allowanceInUse;
    private volatile bool _abandon;
    private bool _clientLeftWhileWaiting; // only the reader thread writes and reads it
    private NbdSession? _session;
    private int _closed;
    private NbdRequestReader? _reader;
    private readonly byte[] _requestHeader = new byte[RequestHeaderSize];
    private readonly NbdRequestScheduler _scheduler;
    private readonly bool _deviceHasFiles;
    private readonly int _writeAlignment;
    private readonly int _payloadStallMs;

    public NbdConnection(NbdServer server, Socket socket, long id)
    {
        _server = server;
        _socket = socket;
        _device = server.Device;
        _options = server.Options;
        _writer = new NbdReplyWriter(socket);
        _scheduler = new NbdRequestScheduler(this, _device, server.RescueWatch);
        _deviceHasFiles = (_device.Capabilities & BlockDeviceCapabilities.FileRanges) != 0;
        _writeAlignment = _device.WriteBufferAlignment;
        _payloadStallMs = (int)Math.Clamp(_options.PayloadStallTimeout.TotalMilliseconds, 1, int.MaxValue);
        Id = id;
    }

    public long Id { get; }
    public DateTimeOffset OpenedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Pool threads held up by a reply that has been sending for longer than
    /// <paramref name="stallTicks"/> (see <see cref="NbdPoolStallWatch"/>).</summary>
    internal int PoolThreadsStalled(long nowTicks, long stallTicks) => _writer.PoolThreadsStalled(nowTicks, stallTicks);

    /// <summary>Rescues the request running on the reader thread if it is past its deadline
    /// (see <see cref="NbdRescueWatch"/>).</summary>
    internal void RescueIfDue(long nowTicks) => _scheduler.RescueIfDue(nowTicks);

    public NbdConnectionStatistics Snapshot() => new(Id, OpenedAt, _session is not null,
        _session?.StructuredReplies ?? false, _counters.BytesRead, _counters.BytesWritten,
        _counters.SnapshotRequests(), _counters.Errors);

    /// <summary>Once the server leaves Running, new requests are answered with ESHUTDOWN. Read
    /// from the server's state so no request slips through between Stop and the connections
    /// hearing about it.</summary>
    private bool _stopping => _server.State != NbdServerState.Running;

    /// <summary>Waits until no request is in flight or <paramref name="deadlineUtc"/> passes.</summary>
    public bool WaitIdle(DateTime deadlineUtc)
    {
        lock (_flightLock)
        {
            while (_inFlight > 0)
            {
                var left = deadlineUtc - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_flightLock, left);
            }
            return true;
        }
    }

    /// <summary>Waits (at most <paramref name="bound"/>) until no request runs on the device any more. Called
    /// after <see cref="Abort"/> so the device is never closed under a running request.</summary>
    public void WaitDrained(TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        WaitIdle(deadline);
    }

    /// <summary>Closes the socket, which ends the reader loop; in-flight work is abandoned
    /// (its replies are dropped).</summary>
    public void Abort()
    {
        _abandon = true;
        lock (_flightLock) Monitor.PulseAll(_flightLock);
        CloseSocket();
    }

    /// <summary>Serves the connection on the calling thread (a worker of
    /// <see cref="NbdWorkerPool"/>): handshake, then requests until the client leaves or the
    /// connection is aborted.</summary>
    public void Run()
    {
        NbdServer.EnterServerThread();
        string endReason = "client disconnected";
        try
        {
            // Raised here, not by the accept loop, so Opened always precedes Closed and a
            // handler may even call Stop() without the server joining an unstarted thread.
            _server.Raise(NbdServerEventKind.ConnectionOpened, $"connection {Id} opened", Id);
            var reader = new NbdRequestReader(_socket);
            var handshake = new NbdHandshake(_socket, reader, _device, _options, () => _stopping);
            // Negotiation is bounded in time; transmission is not (a VM may sit idle for hours).
            _socket.ReceiveTimeout = (int)Math.Min(int.MaxValue, _options.NegotiationTimeout.TotalMilliseconds);
            _session = handshake.Run();
            _socket.ReceiveTimeout = 0;
            // A client that stops reading its replies must not hold its requests' memory forever.
            if (OperatingSystem.IsLinux()) Interop.SocketCalls.SetSendTimeout(_socket, _options.ReplyWriteTimeout);
            else _socket.SendTimeout = (int)Math.Min(int.MaxValue, _options.ReplyWriteTimeout.TotalMilliseconds);
            if (_session is null)
            {
                _server.Raise(NbdServerEventKind.NegotiationFailed, $"connection {Id}: negotiation ended: {handshake.FailureReason}", Id);
                endReason = "negotiation ended";
                return;
            }
            _server.Raise(NbdServerEventKind.Negotiated,
                $"connection {Id}: transmission started (structured replies: {_session.StructuredReplies}, base:allocation: {_session.BaseAllocation}, flags 0x{_session.TransmissionFlags:x})", Id);
            endReason = ReadLoop(reader);
            // DISC or EOF: finish what is in flight, then close (DISC semantics).
            lock (_flightLock)
                while (_inFlight > 0 && !_abandon) Monitor.Wait(_flightLock);
        }
        catch (Exception ex)
        {
            endReason = "internal error: " + ex.Message;
            _server.Raise(NbdServerEventKind.ProtocolError, $"connection {Id}: {ex.Message}", Id, ex);
        }
        finally
        {
            CloseSocket();
            _scheduler.Dispose();
            _server.OnConnectionClosed(this, endReason);
        }
    }

    private string ReadLoop(NbdRequestReader reader)
    {
        _reader = reader;
        while (true)
        {
            string? end = ReadOne(mayRunInline: true);
            if (end is not null) return end;
        }
    }

    /// <summary>Reads one request and passes it to the scheduler. Only the holder of the reader
    /// role calls this (see <see cref="NbdRequestScheduler"/>). Returns null to go on reading, or
    /// why the connection ends.</summary>
    internal string? ReadOne(bool mayRunInline)
    {
        var reader = _reader!;
        byte[] header = _requestHeader;
        if (!reader.ReadExact(header)) return "client disconnected";
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (magic != RequestMagic)
        {
            // Without a valid header we cannot find the next request: the stream is lost.
            _server.Raise(NbdServerEventKind.ProtocolError, $"connection {Id}: bad request magic 0x{magic:x8}; closing", Id);
            return "bad request magic";
        }
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4));
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6));
        ulong cookie = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8));
        ulong offset = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(16));
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24));
        Count(type);

        if (type == CmdDisc) return "client sent NBD_CMD_DISC";

        if (type == CmdWrite && (length > _options.MaxPayload || _stopping))
        {
            // Keep the stream in sync: the payload follows the header whatever we answer.
            if (!reader.Discard(length)) return "client disconnected";
            if (_stopping) Reply(cookie, ESHUTDOWN, "server is shutting down");
            else Reply(cookie, EINVAL, $"write of {length} bytes exceeds the {_options.MaxPayload}-byte maximum payload");
            return null;
        }
        if (_stopping)
        {
            Reply(cookie, ESHUTDOWN, "server is shutting down");
            return null;
        }

        long cost = type is CmdRead or CmdWrite && length <= _options.MaxPayload ? length : 0;
        var request = new NbdRequest
        {
            Connection = this, Type = type, Flags = flags, Cookie = cookie, Offset = offset, Length = length, Cost = cost,
        };
        if (cost > 0 && RefuseEarly(request, out bool inSync))
            return inSync ? null : "client disconnected";
        if (!AcquireSlot(cost, out long sharedCost))
            return _clientLeftWhileWaiting ? "client went away while its request waited for payload memory" : "connection aborted";
        request.SharedCost = sharedCost;
        if (type == CmdWrite)
        {
            request.Payload = NbdPayloadBuffers.Rent((int)length, _writeAlignment, out int start);
            request.PayloadStart = start;
            // A payload held in the server's budget must keep arriving: a client that stops in
            // the middle would otherwise keep that memory from everyone for as long as it stays.
            bool bounded = sharedCost > 0;
            if (bounded) _socket.ReceiveTimeout = _payloadStallMs;
            bool received = reader.ReadExact(request.Payload.AsSpan(start, (int)length));
            if (bounded && received) _socket.ReceiveTimeout = 0;
            if (!received)
            {
                NbdPayloadBuffers.Return(request.Payload);
                ReleaseSlot(cost, sharedCost);
                return reader.TimedOut
                    ? $"client sent nothing of a write payload for {_options.PayloadStallTimeout.TotalSeconds:0.#} s; closed to free the payload memory it held"
                    : "client disconnected in the middle of a write payload";
            }
        }
        return _scheduler.Schedule(request, mayRunInline, Volatile.Read(ref _inFlight), reader.Buffered);
    }

    /// <summary>Answers here a READ or WRITE that will be refused (past the end, unknown flags, a
    /// read-only export), before it is charged any memory: such a request must not wait in line
    /// for payload memory behind stalled clients, nor hold any, and a refused WRITE's payload is
    /// read through the reader's small buffer and dropped. True when the request was refused;
    /// <paramref name="inSync"/> false then if the client left in the middle of its payload.</summary>
    private bool RefuseEarly(NbdRequest request, out bool inSync)
    {
        inSync = true;
        uint error = Validate(request, out string? message);
        if (error == 0) return false;
        if (request.Type == CmdWrite && !_reader!.Discard(request.Length))
        {
            inSync = false;
            return true;
        }
        Reply(request.Cookie, error, message!);
        return true;
    }

    /// <summary>Reports an unexpected failure of this connection's work.</summary>
    internal void ReportError(Exception ex) =>
        _server.Raise(NbdServerEventKind.ProtocolError, $"connection {Id}: {ex.Message}", Id, ex);

    /// <summary>Admits a request of <paramref name="cost"/> payload bytes: within the connection's
    /// limits, then, for what its allowance does not cover (<paramref name="sharedCost"/>), within
    /// the server-wide budget. Waiting for either is the backpressure: nothing more is read from
    /// this client meanwhile, while its earlier requests finish and reply. False once aborted.</summary>
    private bool AcquireSlot(long cost, out long sharedCost)
    {
        sharedCost = 0;
        lock (_flightLock)
        {
            // A request larger than the byte budget is still admitted once nothing else is in
            // flight, so every legal request size can be served.
            while (!_abandon && (_inFlight >= MaxRequestsInFlight || (_bytesInFlight > 0 && _bytesInFlight + cost > MaxBytesInFlight)))
                Monitor.Wait(_flightLock);
            if (_abandon) return false;
            long fromAllowance = Math.Min(cost, Math.Max(0, _options.ConnectionAllowance - _allowanceInUse));
            _allowanceInUse += fromAllowance;
            sharedCost = cost - fromAllowance;
            _inFlight++;
            _bytesInFlight += cost;
        }
        // Outside the connection's lock: its requests in flight must be able to finish (and
        // release) while this waits for memory other connections hold.
        if (_server.PayloadBudget.Acquire(sharedCost, () => _abandon || _stopping || ClientLeft())) return true;
        ReturnSlot(cost, cost - sharedCost);
        sharedCost = 0;
        return false;
    }

    /// <summary>Whether the client hung up, seen without reading from the socket (even when it
    /// sent more requests before it left). A connection waiting for payload memory reads no
    /// requests, so without this look a client that left would keep its connection (one of
    /// <see cref="NbdServerOptions.MaxConnections"/>) until memory freed up.</summary>
    private bool ClientLeft()
    {
        bool left;
        if (OperatingSystem.IsLinux()) left = Interop.SocketCalls.PeerClosed(_socket);
        else
        {
            try { left = _socket.Poll(0, SelectMode.SelectRead) && _socket.Available == 0; } // end of stream, nothing unread
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { left = true; }
        }
        if (left) _clientLeftWhileWaiting = true;
        return left;
    }

    /// <summary>A request admitted by <see cref="AcquireSlot"/> has finished.</summary>
    private void ReleaseSlot(long cost, long sharedCost)
    {
        _server.PayloadBudget.Release(sharedCost);
        ReturnSlot(cost, cost - sharedCost);
    }

    private void ReturnSlot(long cost, long fromAllowance)
    {
        lock (_flightLock)
        {
            _inFlight--;
            _bytesInFlight -= cost;
            _allowanceInUse -= fromAllowance;
            Monitor.PulseAll(_flightLock);
        }
    }

    /// <summary>Runs one request on a thread-pool thread. No lock is held while the device works.</summary>
    internal void Execute(NbdRequest r)
    {
        NbdServer.EnterServerThread();
        try
        {
            // After Abort the client is gone and the device may be about to close: queued work
            // is dropped instead of touching the device.
            if (_abandon) return;
            // A READ or WRITE with a payload was validated when it was read (RefuseEarly).
            string? message = null;
            uint error = r.Cost > 0 ? 0 : Validate(r, out message);
            if (error != 0)
            {
                Reply(r.Cookie, error, message!);
                return;
            }
            try
            {
                Dispatch(r);
            }
            catch (Exception ex)
            {
                uint code = ex is BlockDeviceException bde ? (uint)bde.Error : EIO;
                _server.Raise(NbdServerEventKind.DeviceError,
                    $"connection {Id}: {CommandName(r.Type)} at {r.Offset} length {r.Length} failed with errno {code}: {ex.Message}", Id, ex);
                Reply(r.Cookie, code, ex.Message);
            }
        }
        finally
        {
            if (r.Payload is not null) NbdPayloadBuffers.Return(r.Payload);
            if (r.Preread is not null) ArrayPool<byte>.Shared.Return(r.Preread);
            ReleaseSlot(r.Cost, r.SharedCost);
            NbdServer.LeaveServerThread();
        }
    }

    internal uint Validate(NbdRequest r, out string? message)
    {
        var caps = _device.Capabilities;
        bool ro = (caps & BlockDeviceCapabilities.ReadOnly) != 0;
        ushort tflags = _session!.TransmissionFlags;
        message = null;

        if (r.Type > CmdBlockStatus) return Invalid($"unknown command {r.Type}", out message);
        if ((r.Flags & ~CmdKnownFlags) != 0) return Invalid($"unknown command flags 0x{r.Flags:x}", out message);
        if ((r.Flags & CmdFlagFua) != 0 && (tflags & TFlagSendFua) == 0 && r.Type is CmdWrite or CmdTrim or CmdWriteZeroes && !ro)
            return Invalid("FUA was not advertised", out message);
        if ((r.Flags & CmdFlagNoHole) != 0 && r.Type != CmdWriteZeroes) return Invalid("NO_HOLE is only valid on WRITE_ZEROES", out message);
        if ((r.Flags & CmdFlagDf) != 0 && (r.Type != CmdRead || !_session.StructuredReplies))
            return Invalid("DF is only valid on READ with structured replies", out message);
        if ((r.Flags & CmdFlagReqOne) != 0 && r.Type != CmdBlockStatus) return Invalid("REQ_ONE is only valid on BLOCK_STATUS", out message);
        if ((r.Flags & CmdFlagFastZero) != 0 && (r.Type != CmdWriteZeroes || (tflags & TFlagSendFastZero) == 0))
            return Invalid("FAST_ZERO is only valid on WRITE_ZEROES when advertised", out message);

        bool writes = r.Type is CmdWrite or CmdTrim or CmdWriteZeroes;
        if (writes && ro) { message = "the export is read-only"; return EPERM; }
        switch (r.Type)
        {
            case CmdTrim when (tflags & TFlagSendTrim) == 0:
                return Invalid("TRIM is not supported by this export", out message);
            case CmdWriteZeroes when (tflags & TFlagSendWriteZeroes) == 0:
                return Invalid("WRITE_ZEROES is not supported by this export", out message);
            case CmdCache when (tflags & TFlagSendCache) == 0:
                return Invalid("CACHE is not supported by this export", out message);
            case CmdBlockStatus when !_session.BaseAllocation:
                return Invalid("BLOCK_STATUS needs the base:allocation meta context", out message);
            case CmdBlockStatus when r.Length == 0:
                return Invalid("BLOCK_STATUS length must not be zero", out message);
            case CmdRead when r.Length > _options.MaxPayload:
                return Invalid($"read of {r.Length} bytes exceeds the {_options.MaxPayload}-byte maximum payload", out message);
        }
        if (r.Type == CmdFlush) return 0; // offset and length carry no meaning for FLUSH
        ulong size = (ulong)_device.Size;
        if (r.Offset > size || r.Length > size - r.Offset)
        {
            message = $"request [{r.Offset}, +{r.Length}) lies beyond the end of the {size}-byte export";
            // Write-type requests past the end are ENOSPC (proto.md); reads, trims and the rest EINVAL.
            return r.Type is CmdWrite or CmdWriteZeroes ? ENOSPC : EINVAL;
        }
        return 0;
    }

    private static uint Invalid(string text, out string message)
    {
        message = text;
        return EINVAL;
    }

    private void Dispatch(NbdRequest r)
    {
        long offset = (long)r.Offset;
        var wflags = WriteFlags.None;
        if ((r.Flags & CmdFlagFua) != 0) wflags |= WriteFlags.Fua;
        if ((r.Flags & CmdFlagNoHole) != 0) wflags |= WriteFlags.NoHole;
        if ((r.Flags & CmdFlagFastZero) != 0) wflags |= WriteFlags.FastZero;
        switch (r.Type)
        {
            case CmdRead:
                DoRead(r, offset);
                return;
            case CmdWrite:
                if (r.Length > 0) _device.Write(offset, r.Payload.AsSpan(r.PayloadStart, (int)r.Length), wflags);
                AddWritten(r.Length);
                break;
            case CmdFlush:
                _device.Flush();
                break;
            case CmdTrim:
                if (r.Length > 0) _device.Trim(offset, r.Length, wflags);
                break;
            case CmdWriteZeroes:
                if (r.Length > 0) _device.WriteZeroes(offset, r.Length, wflags);
                break;
            case CmdCache:
                if (r.Length > 0) _device.Cache(offset, r.Length);
                break;
            case CmdBlockStatus:
                DoBlockStatus(r, offset);
                return;
        }
        _writer.SimpleReply(r.Cookie, 0);
    }

    private void DoRead(NbdRequest r, long offset)
    {
        int length = (int)r.Length;
        // Structured replies: data and hole pieces, planned once for either way of sending.
        List<ReadSegment>? segments = null;
        if (_session!.StructuredReplies)
        {
            segments = t_segments ??= new List<ReadSegment>();
            segments.Clear();
            if (length > 0)
            {
                bool mayHole = (r.Flags & CmdFlagDf) == 0 && (_device.Capabilities & BlockDeviceCapabilities.Extents) != 0;
                if (mayHole) PlanSegments(offset, length, segments);
                else segments.Add(new ReadSegment(0, length, false));
            }
        }
        if (length >= MinReadFromFiles && _deviceHasFiles && TryReadFromFiles(r, offset, length, segments))
            return;
        // Bytes the reader thread already read (TryPreread) are sent as they are; Execute returns them.
        bool preread = r.Preread is not null;
        byte[] buffer = r.Preread ?? ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            if (segments is null)
            {
                if (length > 0 && !preread) _device.Read(offset, buffer.AsSpan(0, length));
                AddRead(length);
                _writer.SimpleReply(r.Cookie, 0, buffer.AsSpan(0, length));
                return;
            }
            if (!preread)
                foreach (var s in segments)
                    if (!s.Hole) _device.Read(offset + s.Start, buffer.AsSpan(s.Start, s.Length));
            AddRead(length);
            _writer.StructuredRead(r.Cookie, offset, buffer.AsSpan(0, length), segments);
        }
        finally
        {
            if (!preread) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Answers a READ with sendfile from the device's files (see
    /// <see cref="IBlockDevice.TryGetFileRanges"/>); false when the device cannot, and nothing was
    /// sent. <paramref name="segments"/> is null for a simple reply.</summary>
    private bool TryReadFromFiles(NbdRequest r, long offset, int length, List<ReadSegment>? segments)
    {
        var ranges = t_ranges ??= new List<FileRange>();
        ranges.Clear();
        try
        {
            if (segments is null)
            {
                if (!_device.TryGetFileRanges(offset, length, ranges)) return false;
            }
            else
            {
                foreach (var s in segments)
                    if (!s.Hole && !_device.TryGetFileRanges(offset + s.Start, s.Length, ranges)) return false;
            }
            _writer.ReadFromFiles(r.Cookie, offset, length, segments, ranges);
            AddRead(length);
            return true;
        }
        finally
        {
            foreach (var range in ranges) range.Lease.Release(range);
            ranges.Clear();
        }
    }

    /// <summary>Splits a read into data and hole pieces from the device's extents. Short holes
    /// are read as data: a hole chunk only pays off when it saves real bytes.</summary>
    private void PlanSegments(long offset, int length, List<ReadSegment> segments)
    {
        const int MinHole = 4096;
        var extents = t_extents ??= new List<Extent>();
        extents.Clear();
        _device.GetExtents(offset, length, extents);
        int pos = 0;
        foreach (var e in extents)
        {
            if (pos >= length) break;
            if (e.Length <= 0) break;
            int len = (int)Math.Min(e.Length, length - pos);
            bool hole = (e.Flags & ExtentFlags.Zero) != 0 && len >= MinHole;
            if (segments.Count > 0 && segments[^1].Hole == hole)
                segments[^1] = segments[^1] with { Length = segments[^1].Length + len };
            else
                segments.Add(new ReadSegment(pos, len, hole));
            pos += len;
        }
        if (pos < length)
        {
            // The device described less than asked: the rest is read as data.
            if (segments.Count > 0 && !segments[^1].Hole)
                segments[^1] = segments[^1] with { Length = segments[^1].Length + (length - pos) };
            else
                segments.Add(new ReadSegment(pos, length - pos, false));
        }
    }

    private void DoBlockStatus(NbdRequest r, long offset)
    {
        const int MaxExtents = 64 * 1024;
        long length = r.Length;
        var extents = t_extents ??= new List<Extent>();
        extents.Clear();
        if ((_device.Capabilities & BlockDeviceCapabilities.Extents) != 0)
            _device.GetExtents(offset, length, extents);
        else
            extents.Add(new Extent(length, ExtentFlags.Data));

        bool reqOne = (r.Flags & CmdFlagReqOne) != 0;
        // Merge, clip to the asked range, cap the count; the descriptors go out as (u32, u32).
        int count = 0;
        long covered = 0;
        uint lastFlags = 0;
        long lastLen = 0;
        var merged = new List<(long Len, uint Flags)>();
        foreach (var e in extents)
        {
            if (covered >= length) break;
            if (e.Length <= 0) break;
            long len = Math.Min(e.Length, length - covered);
            uint f = (uint)e.Flags & (StateHole | StateZero);
            if (merged.Count > 0 && lastFlags == f)
            {
                lastLen += len;
                merged[^1] = (lastLen, f);
            }
            else
            {
                if (merged.Count >= MaxExtents || (reqOne && merged.Count == 1)) break;
                merged.Add((len, f));
                lastFlags = f;
                lastLen = len;
            }
            covered += len;
        }
        count = merged.Count;
        if (count == 0) throw new BlockDeviceException(BlockDeviceError.IO, "the device reported no extents");
        if (reqOne) count = 1;

        int payloadLength = 4 + 8 * count;
        byte[] payload = ArrayPool<byte>.Shared.Rent(payloadLength);
        try
        {
            BinaryPrimitives.WriteUInt32BigEndian(payload, BaseAllocationId);
            for (int i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4 + 8 * i), (uint)merged[i].Len);
                BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8 + 8 * i), merged[i].Flags);
            }
            _writer.BlockStatus(r.Cookie, payload.AsSpan(0, payloadLength));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    private void Reply(ulong cookie, uint error, string message)
    {
        if (error != 0)
        {
            _counters.CountError();
            _server.Counters.CountError();
        }
        if (_session is { StructuredReplies: true } && error != 0)
            _writer.StructuredError(cookie, error, message);
        else
            _writer.SimpleReply(cookie, error);
    }

    private void Count(int type)
    {
        _counters.CountRequest(type);
        _server.Counters.CountRequest(type);
    }

    private void AddRead(long n)
    {
        _counters.AddRead(n);
        _server.Counters.AddRead(n);
    }

    private void AddWritten(long n)
    {
        _counters.AddWritten(n);
        _server.Counters.AddWritten(n);
    }

    private void CloseSocket()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { /* already gone */ }
        _socket.Dispose();
    }
}
