namespace ShuruStore.Core.Maintenance;

/// <summary>
/// Progress of work that runs on pool threads, reported from the thread that waits for it.
/// The workers only move counters (<see cref="Start"/>, <see cref="Advance"/>); the waiting thread
/// reads them a few times a second and reports, because callers such as the cmdlets can only
/// report (Write-Progress) on their own thread.
/// </summary>
internal sealed class PolledProgress
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private readonly object _lock = new();
    private string? _phase;
    private string _unit = "";
    private long _total;
    private long _done;

    /// <summary>Begins a phase: <paramref name="total"/> units (0: unknown), none done yet.</summary>
    public void Start(string phase, long total, string unit)
    {
        lock (_lock)
        {
            _phase = phase;
            _total = total;
            _unit = unit;
            _done = 0;
        }
    }

    /// <summary>Counts <paramref name="units"/> more done in the current phase; any thread.</summary>
    public void Advance(long units = 1)
    {
        lock (_lock) _done += units;
    }

    private (string? Phase, long Done, long Total, string Unit) Snapshot()
    {
        lock (_lock) return (_phase, _done, _total, _unit);
    }

    /// <summary>Waits for <paramref name="work"/>, reporting its progress to <paramref name="throttle"/>
    /// on this thread, and the last phase once more, complete, when it ends; returns its result
    /// or rethrows its failure.</summary>
    public static T RunReporting<T>(Task<T> work, PolledProgress progress, ProgressThrottle throttle)
    {
        while (Task.WaitAny([work], PollInterval) < 0) Report(progress, throttle, force: false);
        var result = work.GetAwaiter().GetResult();
        Report(progress, throttle, force: true);
        return result;
    }

    private static void Report(PolledProgress progress, ProgressThrottle throttle, bool force)
    {
        var (phase, done, total, unit) = progress.Snapshot();
        if (phase is not null) throttle.Report(phase, done, total, unit, force);
    }
}
