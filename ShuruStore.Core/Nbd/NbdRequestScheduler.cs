using System.Buffers;
using System.Diagnostics;
using ShuruStore.Core.BlockDevices;
using static ShuruStore.Core.Nbd.NbdProtocol;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Decides which thread serves each request of one connection: the thread pool, or the
/// connection's reader thread itself. This is the connection's one seam for scheduling.
/// <para>Handing a request to the pool costs a thread wake-up, and on a busy machine the woken
/// thread may wait for a CPU, which dominates a small request's latency. So a request is served
/// on the reader thread when that cannot hold up the requests behind it: a READ or BLOCK_STATUS
/// (or a WRITE of at most <see cref="MaxInlineRequest"/>) that is the only request in flight with
/// nothing received behind it; a large READ the device sends from files (its work is the send
/// itself, and a connection sends its replies one at a time anyway); and a small READ of bytes
/// the device has at hand (<see cref="IBlockDevice.TryReadNoWait"/>). Everything else goes to the pool.</para>
/// <para>While a request runs inline nobody reads the socket. So that a slow device call (a read
/// that misses the page cache, an fsync behind a FUA write) cannot hold up the requests sent
/// behind it, the server's <see cref="NbdRescueWatch"/> hands the reader role to the
/// connection's rescuer thread once the inline request has run for <see cref="RescueDelay"/>;
/// the rescuer reads and dispatches requests to the pool until the inline one is done, then
/// gives the role back and waits for the next time.
/// A large read sent from files waits longer (<see cref="SendBoundRescueDelay"/>) before it is
/// rescued: its time is the send itself, and replies leave one at a time, so requests read
/// behind it could not be answered sooner; the rescue is then only there so that a client that
/// sends without reading never deadlocks with a server that sends without reading.</para>
/// </summary>
internal sealed class NbdRequestScheduler(NbdConnection connection, IBlockDevice device, NbdRescueWatch watch) : IDisposable
{
    /// <summary>Largest READ or WRITE served on the reader thread (nbdcopy uses 256 KiB, qemu up
    /// to 1 MiB); a longer one that turns out slow is covered by the rescuer like any other.</summary>
    private const int MaxInlineRequest = 1024 * 1024;

    /// <summary>How long an inline request may keep the socket unread before a rescuer takes
    /// over reading. A page-cache read of 128 KiB takes tens of microseconds.</summary>
    private static readonly TimeSpan RescueDelay = TimeSpan.FromMilliseconds(1);

    /// <summary>How long a large read sent from files may keep the socket unread (see the class remarks).</summary>
    private static readonly TimeSpan SendBoundRescueDelay = TimeSpan.FromMilliseconds(20);

    // Who holds the reader role: the connection thread reading, nobody (the connection thread
    // is running an inline request), or a rescuer thread.
    private const int RoleReader = 0, RoleFree = 1, RoleRescuer = 2;
    private int _role = RoleReader;
    private volatile bool _inlineDone;
    private string? _rescueEndReason;
    private readonly SemaphoreSlim _roleReturned = new(0);
    // When the inline request running now is due for a rescue (Stopwatch ticks); 0: none running.
    private long _rescueAt;
    // The rescuer: a thread of this connection, started at the first rescue and parked between
    // rescues (starting a thread per rescue cost more than the rescue).
    private readonly SemaphoreSlim _rescueWanted = new(0);
    private Thread? _rescuer;
    private volatile bool _disposed;
    private readonly bool _deviceHasFiles = (device.Capabilities & BlockDeviceCapabilities.FileRanges) != 0;
    private readonly bool _deviceHasNoWait = (device.Capabilities & BlockDeviceCapabilities.NoWaitReads) != 0;

    /// <summary>Serves or hands on a request just read. <paramref name="mayRunInline"/>: the
    /// caller is the connection's reader thread (a rescuer only ever hands on). Returns null to go
    /// on reading, or why the connection ended while a rescuer was reading.</summary>
    public string? Schedule(NbdRequest request, bool mayRunInline, int inFlight, int bufferedBehind)
    {
        if (mayRunInline && (RunsInline(request.Type, request.Length, inFlight, bufferedBehind, _deviceHasFiles) || TryPreread(request)))
            return ExecuteInline(request, IsSendBound(request.Type, request.Length, _deviceHasFiles) ? SendBoundRescueDelay : RescueDelay);
        ThreadPool.UnsafeQueueUserWorkItem(request, preferLocal: false);
        return null;
    }

    /// <summary>The rule: whether a request is served on the reader thread, given the requests
    /// in flight (itself included), the bytes already received behind it and whether the device
    /// names files for its ranges.</summary>
    internal static bool RunsInline(ushort type, uint length, int inFlight, int bufferedBehind, bool deviceHasFiles)
    {
        // A large READ sent from files: served here whatever else is in flight or received behind
        // it; the rescuer covers one that turns out slow (a page-cache miss, a client not reading
        // its replies).
        if (IsSendBound(type, length, deviceHasFiles))
            return true;
        if (bufferedBehind != 0) return false;
        if (type is CmdRead or CmdWrite ? length > MaxInlineRequest : type != CmdBlockStatus) return false;
        return inFlight == 1;
    }

    /// <summary>Whether a request's time is mostly its send: a large READ of a device that sends it from files.</summary>
    internal static bool IsSendBound(ushort type, uint length, bool deviceHasFiles) =>
        type == CmdRead && length is >= NbdConnection.MinReadFromFiles and <= MaxInlineRequest && deviceHasFiles;

    /// <summary>A READ too small to leave with sendfile, of bytes the device has at hand: read
    /// here, whatever else is in flight, and answered on this thread like any inline request. One
    /// that would wait for a disk goes to the pool, so a cold random read never holds up the
    /// requests behind it. False: nothing was read.</summary>
    private bool TryPreread(NbdRequest request)
    {
        // A READ with a length reaches the scheduler only once validated (NbdConnection.RefuseEarly).
        if (!_deviceHasNoWait || request.Type != CmdRead || request.Length is 0 or >= NbdConnection.MinReadFromFiles) return false;
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)request.Length);
        if (device.TryReadNoWait((long)request.Offset, buffer.AsSpan(0, (int)request.Length)))
        {
            request.Preread = buffer;
            return true;
        }
        ArrayPool<byte>.Shared.Return(buffer);
        return false;
    }

    /// <summary>Runs <paramref name="request"/> on the connection thread. Returns null to go on
    /// reading, or why the connection ended while a rescuer was reading.</summary>
    private string? ExecuteInline(NbdRequest request, TimeSpan rescueDelay)
    {
        _inlineDone = false;
        Volatile.Write(ref _role, RoleFree);
        Volatile.Write(ref _rescueAt, Stopwatch.GetTimestamp() + rescueDelay.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond);
        watch.Begin();

        request.Execute();

        Volatile.Write(ref _rescueAt, 0);
        watch.End();
        _inlineDone = true;
        if (Interlocked.CompareExchange(ref _role, RoleReader, RoleFree) == RoleFree) return null;
        // A rescuer is reading: it gives the role back after its current request (or the end).
        _roleReturned.Wait();
        return _rescueEndReason;
    }

    /// <summary>Called by the server's <see cref="NbdRescueWatch"/>: rescues the inline request
    /// running now if it is past its deadline.</summary>
    public void RescueIfDue(long nowTicks)
    {
        long at = Volatile.Read(ref _rescueAt);
        if (at != 0 && nowTicks >= at) Rescue();
    }

    /// <summary>Takes the reader role if the inline request is still running, and wakes the
    /// rescuer. The rescuer is a thread of its own, never a pool thread: it blocks in recv until
    /// the client sends more, and a few of those would starve the pool.</summary>
    private void Rescue()
    {
        if (_disposed || Interlocked.CompareExchange(ref _role, RoleRescuer, RoleFree) != RoleFree) return;
        if (_rescuer is null)
        {
            _rescuer = new Thread(RescuerLoop) { IsBackground = true, Name = "nbd-rescue" };
            _rescuer.UnsafeStart();
        }
        _rescueWanted.Release();
    }

    private void RescuerLoop()
    {
        while (true)
        {
            _rescueWanted.Wait();
            if (_disposed) return;
            ReadAsRescuer();
        }
    }

    private void ReadAsRescuer()
    {
        NbdServer.EnterServerThread();
        string? end = null;
        try
        {
            // Requests read here always go to the pool: this thread is only a stand-in.
            do end = connection.ReadOne(mayRunInline: false);
            while (end is null && !_inlineDone);
        }
        catch (Exception ex)
        {
            end = "internal error: " + ex.Message;
            connection.ReportError(ex);
        }
        finally
        {
            _rescueEndReason = end;
            Volatile.Write(ref _role, RoleReader);
            _roleReturned.Release();
            NbdServer.LeaveServerThread();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _rescueWanted.Release(); // a parked rescuer ends
    }
}
