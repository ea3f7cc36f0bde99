using System.Runtime.InteropServices;

namespace ShuruStore.Core.Hosting;

/// <summary>
/// Gives the C heap's free pages back to the system while this process serves disks: every
/// <see cref="DefaultInterval"/>, glibc's <c>malloc_trim(0)</c>.
/// </summary>
/// <remarks>
/// Why: the runtime's own native allocations come from glibc's malloc arenas, which glibc hands
/// to threads (a new one when threads contend); a serving process's threads come and go (the
/// NBD worker pool and the runtime's pool grow under load and retire idle threads), so over a
/// server's life more arenas are reached (up to eight per core), each keeping the free pages of
/// its busiest moment. Nothing is live in them, yet the process's resident size climbs in steps
/// for as long as new arenas are reached. Freeing only trims the top of an arena; <c>malloc_trim</c>
/// returns every free page of every arena. It walks the free lists (milliseconds) and takes each
/// arena's lock briefly, so it runs rarely, off the request paths, and only while disks are
/// served. Elsewhere (musl, macOS, Windows) there is no <c>malloc_trim</c> and nothing is done.
/// </remarks>
internal sealed class NativeHeapTrim(TimeSpan interval, Func<bool> trim)
{
    /// <summary>Time between two trims while a disk is served.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(30);

    /// <summary>The process's schedule, started and stopped by <see cref="HostedServers"/>.</summary>
    public static NativeHeapTrim Process { get; } = new(DefaultInterval, TrimNow);

    private static bool s_unavailable = !OperatingSystem.IsLinux();

    private readonly object _lock = new();
    private Timer? _timer;
    private int _users;
    private long _trims;

    /// <summary>Whether trims are scheduled (some disk is served).</summary>
    public bool IsRunning
    {
        get { lock (_lock) return _timer is not null; }
    }

    /// <summary>Trims done by the schedule so far.</summary>
    public long Trims => Interlocked.Read(ref _trims);

    /// <summary>A served disk starts: trims run every interval until every starter has called
    /// <see cref="Stop"/>.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_users++ > 0) return;
            _timer = new Timer(static s => ((NativeHeapTrim)s!).Tick(), this, interval, interval);
        }
    }

    /// <summary>A served disk stops; the last one stops the trims, and returns once a trim
    /// already queued or running has ended: after it, none runs (a trim arriving late, after the
    /// process has gone on to other work, would be a surprise).</summary>
    public void Stop()
    {
        Timer? stopped;
        lock (_lock)
        {
            if (_users == 0 || --_users > 0) return;
            stopped = _timer;
            _timer = null;
        }
        if (stopped is null) return;
        using var done = new ManualResetEvent(false);
        if (stopped.Dispose(done)) done.WaitOne();
    }

    private void Tick()
    {
        if (trim()) Interlocked.Increment(ref _trims);
    }

    /// <summary>Returns the C heap's free pages to the system now. False where the C library
    /// has no <c>malloc_trim</c> (then it is never tried again).</summary>
    public static bool TrimNow()
    {
        if (Volatile.Read(ref s_unavailable)) return false;
        try
        {
            _ = malloc_trim(0);
            return true;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            Volatile.Write(ref s_unavailable, true);
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);
}
