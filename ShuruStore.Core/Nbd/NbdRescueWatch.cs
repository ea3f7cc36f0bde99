using System.Diagnostics;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Hands a connection's reader role to its rescuer when a request served on its reader thread
/// runs past its rescue deadline (see <see cref="NbdRequestScheduler"/>). One thread per server
/// looks at the connections every <see cref="Tick"/> while any request is running inline, and
/// sleeps on an event once none has for <see cref="IdleTicksBeforeParking"/> ticks.
/// <para>Why not a timer per inline request: arming a runtime timer schedules the runtime's timer
/// queue, which then wakes a thread-pool thread when the deadline passes even though the request
/// ended long before (disarming does not unschedule the queue), and the woken pool thread spins
/// before it sleeps again. On two cores that wake-up per request competed with the request path
/// itself: a connection's first request and every request of a queue-depth-1 client paid for it.
/// The inline path here is two interlocked counts and a timestamp.</para>
/// </summary>
internal sealed class NbdRescueWatch : IDisposable
{
    /// <summary>How often running inline requests are looked at: the resolution of their deadlines.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    /// <summary>Ticks without any inline request before the watch parks (a client at queue depth
    /// one leaves gaps of microseconds between requests: not worth a park and a wake-up each).</summary>
    private const int IdleTicksBeforeParking = 20;

    private readonly Func<IEnumerable<NbdConnection>> _connections;
    // No spinning before it blocks: the watch parks only after idle ticks, and wakes rarely.
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly Thread _thread;
    private int _running;
    private volatile bool _parked;
    private volatile bool _stopping;

    public NbdRescueWatch(Func<IEnumerable<NbdConnection>> connections)
    {
        _connections = connections;
        _thread = new Thread(Run) { IsBackground = true, Name = "nbd-rescue-watch" };
        _thread.UnsafeStart();
    }

    /// <summary>Whether the watch is parked now (no inline request for a while): tests.</summary>
    internal bool Parked => _parked;

    /// <summary>An inline request starts (its deadline already set by the scheduler).</summary>
    public void Begin()
    {
        // The increment is a full fence: either the watch sees the count, or this sees it parked.
        if (Interlocked.Increment(ref _running) == 1 && _parked) _wake.Set();
    }

    /// <summary>An inline request ended.</summary>
    public void End() => Interlocked.Decrement(ref _running);

    private void Run()
    {
        int idle = 0;
        while (!_stopping)
        {
            if (Volatile.Read(ref _running) != 0) idle = 0;
            else if (++idle >= IdleTicksBeforeParking)
            {
                _parked = true;
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _running) == 0 && !_stopping) _wake.Wait();
                _wake.Reset();
                _parked = false;
                idle = 0;
                continue;
            }
            Thread.Sleep(Tick);
            if (Volatile.Read(ref _running) == 0) continue;
            long now = Stopwatch.GetTimestamp();
            foreach (var c in _connections()) c.RescueIfDue(now);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        if (_thread != Thread.CurrentThread) _thread.Join();
        // The event is not disposed: a connection ending late may still set it, harmlessly.
    }
}
