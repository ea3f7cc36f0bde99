using System.Buffers;
using ShuruStore.Core.BlockDevices;
using static ShuruStore.Core.Nbd.NbdProtocol;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Serving a lone request on the reader thread, without losing concurrency.
///
/// Handing a request to the thread pool costs a thread wake-up, and on a busy machine the woken
/// thread may wait for a CPU: about 60 us of a ~250 us connect-to-first-byte here. A READ of at
/// most 1 MiB or a BLOCK_STATUS that is the only request in flight, with nothing more received
/// behind it, is therefore served by the reader thread itself (the first read after connecting, a
/// queue-depth-1 client), and so is a lone WRITE of at most 1 MiB. Measured on this VM, QD1
/// 256 KiB reads: 225-540 us through the pool, 66 us inline (nbdkit 107 us); 4 KiB reads 265 us
/// vs 21 us: waking an idle pool thread means waking an idle vCPU. While a request runs inline
/// nobody reads the socket; so that a slow device call (a read that misses the page cache, an
/// fsync behind a FUA write, a gated test device) cannot hold up the requests sent
/// behind it, a timer hands the reader role to another thread once the inline request has run
/// for <see cref="RescueDelay"/>. That rescuer (a thread of its own) reads and dispatches
/// requests until the inline one is done, then gives the role back.
/// </summary>
internal sealed partial class NbdConnection
{
    /// <summary>Largest READ or WRITE served on the reader thread (nbdcopy uses 256 KiB, qemu up
    /// to 1 MiB); a longer one that turns out slow is covered by the rescuer like any other.</summary>
    private const int MaxInlineRequest = 1024 * 1024;

    /// <summary>How long an inline request may keep the socket unread before a rescuer takes
    /// over reading. A page-cache read of 128 KiB takes tens of microseconds.</summary>
    private static readonly TimeSpan RescueDelay = TimeSpan.FromMilliseconds(1);

    // Who holds the reader role: the connection thread reading, nobody (the connection thread
    // is running an inline request), or a rescuer thread.
    private const int RoleReader = 0, RoleFree = 1, RoleRescuer = 2;
    private int _role = RoleReader;
    private volatile bool _inlineDone;
    private string? _rescueEndReason;
    private readonly SemaphoreSlim _roleReturned = new(0);
    private Timer? _rescueTimer;

    private bool RunsInline(NbdRequest request) =>
        RunsInline(request.Type, request.Length, Volatile.Read(ref _inFlight), _reader!.Buffered, _device is IFileRangeSource);

    /// <summary>The rule: whether a request is served on the reader thread, given the requests
    /// in flight (itself included), the bytes already received behind it and whether the device
    /// names files for its ranges.</summary>
    internal static bool RunsInline(ushort type, uint length, int inFlight, int bufferedBehind, bool deviceHasFiles)
    {
        // A large READ of a device that names files for its ranges leaves with sendfile: its
        // work is the send itself, and a connection sends its replies one at a time anyway, so
        // the pool only adds hand-offs between threads (nbdcopy -C 4 of a warm chunk store or a
        // flat image, alternating with the pool version: 231-341 against 368-463 ms per GiB).
        // Served here whatever else is in flight or received behind it; the rescuer covers one
        // that turns out slow (a page-cache miss, a client not reading its replies).
        if (type == CmdRead && length is >= MinReadFromFiles and <= MaxInlineRequest && deviceHasFiles)
            return true;
        if (bufferedBehind != 0) return false;
        if (type is CmdRead or CmdWrite ? length > MaxInlineRequest : type != CmdBlockStatus) return false;
        return inFlight == 1;
    }

    /// <summary>A READ too small to leave with sendfile, of bytes the device has at hand (in the
    /// page cache or in memory; <see cref="INoWaitReader"/>): read here, whatever else is in
    /// flight, and answered on this thread like any inline request (the rescuer covers a reply
    /// the client is slow to take). One that would wait for a disk goes to the pool as before, so
    /// a cold random read never holds up the requests behind it. False: nothing was read.</summary>
    private bool TryPreread(NbdRequest request)
    {
        if (request.Type != CmdRead || request.Length is 0 or >= MinReadFromFiles || _device is not INoWaitReader device)
            return false;
        if (Validate(request, out _) != 0) return false; // the pool path answers with the error
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
    private string? ExecuteInline(NbdRequest request)
    {
        _inlineDone = false;
        Volatile.Write(ref _role, RoleFree);
        _rescueTimer ??= new Timer(static c => ((NbdConnection)c!).Rescue(), this, Timeout.Infinite, Timeout.Infinite);
        _rescueTimer.Change(RescueDelay, Timeout.InfiniteTimeSpan);

        request.Execute();

        _rescueTimer.Change(Timeout.Infinite, Timeout.Infinite);
        _inlineDone = true;
        if (Interlocked.CompareExchange(ref _role, RoleReader, RoleFree) == RoleFree) return null;
        // A rescuer is reading: it gives the role back after its current request (or the end).
        _roleReturned.Wait();
        return _rescueEndReason;
    }

    /// <summary>Timer callback: takes the reader role if the inline request is still running,
    /// and reads on a thread of its own. Not on the pool thread running this callback: a rescuer
    /// blocks in recv until the client sends more, and a few of those starved the pool (a
    /// sparse copy's four connections once stalled ~800 ms waiting for the pool to grow).</summary>
    private void Rescue()
    {
        if (Interlocked.CompareExchange(ref _role, RoleRescuer, RoleFree) != RoleFree) return;
        new Thread(ReadAsRescuer) { IsBackground = true, Name = "nbd-rescue" }.UnsafeStart();
    }

    private void ReadAsRescuer()
    {
        NbdServer.EnterServerThread();
        string? end = null;
        try
        {
            // Requests read here always go to the pool: this thread is only a stand-in.
            do end = ReadOne(mayRunInline: false);
            while (end is null && !_inlineDone);
        }
        catch (Exception ex)
        {
            end = "internal error: " + ex.Message;
            _server.Raise(NbdServerEventKind.ProtocolError, $"connection {Id}: {ex.Message}", Id, ex);
        }
        finally
        {
            _rescueEndReason = end;
            Volatile.Write(ref _role, RoleReader);
            _roleReturned.Release();
            NbdServer.LeaveServerThread();
        }
    }
}
