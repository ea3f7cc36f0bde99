using System.Diagnostics;
using ShuruStore.Core.Threading;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Keeps clients that stop reading their replies from starving the thread pool. Requests run on
/// pool threads, and a reply to such a client blocks its sender for up to the reply-write timeout,
/// with the connection's other finished requests waiting behind it. The pool replaces blocked
/// threads only about twice a second, so a few such clients delayed every other client's
/// requests by seconds. This watch looks at every connection a few times a second and claims
/// from <see cref="ThreadPoolFloor"/> as many extra threads as the stalled replies hold, and gives
/// them back as the replies leave or the connections close.
/// </summary>
internal sealed class NbdPoolStallWatch : IDisposable
{
    /// <summary>How often the connections are looked at.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(50);

    /// <summary>A reply sending for longer than this counts as stalled: a client reading its
    /// replies takes a few milliseconds for the largest one (32 MiB).</summary>
    public static readonly TimeSpan StallAfter = TimeSpan.FromMilliseconds(100);

    private readonly Func<IEnumerable<NbdConnection>> _connections;
    // No spinning before each 50 ms wait: it would only burn a core's time slices (sched_yield).
    private readonly ManualResetEventSlim _stop = new(false, spinCount: 0);
    private readonly Thread _thread;

    public NbdPoolStallWatch(Func<IEnumerable<NbdConnection>> connections)
    {
        _connections = connections;
        _thread = new Thread(Run) { IsBackground = true, Name = "nbd-stall-watch" };
        _thread.UnsafeStart();
    }

    /// <summary>The pool threads claimed at the last look.</summary>
    public int Claimed { get; private set; }

    private void Run()
    {
        long stallTicks = (long)(StallAfter.TotalSeconds * Stopwatch.Frequency);
        while (!_stop.Wait(Period))
        {
            long now = Stopwatch.GetTimestamp();
            int stalled = 0;
            foreach (var c in _connections()) stalled += c.PoolThreadsStalled(now, stallTicks);
            if (stalled != Claimed)
            {
                ThreadPoolFloor.Compensate(this, stalled);
                Claimed = stalled;
            }
        }
        ThreadPoolFloor.Compensate(this, 0);
        Claimed = 0;
    }

    public void Dispose()
    {
        _stop.Set();
        if (_thread != Thread.CurrentThread) _thread.Join();
    }
}
