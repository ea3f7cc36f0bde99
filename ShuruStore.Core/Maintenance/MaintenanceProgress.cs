namespace ShuruStore.Core.Maintenance;

/// <summary>How far a maintenance operation has come. Reported synchronously on the thread that
/// runs the operation, at most a few times a second, so a caller can forward it as it likes
/// (the cmdlets turn it into Write-Progress).</summary>
/// <param name="Activity">What is being done ("Importing disk.raw").</param>
/// <param name="Phase">The current step ("Hashing chunks", "Marking", "Sweeping").</param>
/// <param name="Done">Units done (bytes or chunks, see <paramref name="Unit"/>).</param>
/// <param name="Total">Units in all (0 when unknown).</param>
/// <param name="Unit">"bytes" or "chunks".</param>
public readonly record struct MaintenanceProgress(string Activity, string Phase, long Done, long Total, string Unit)
{
    /// <summary>0 to 100, or -1 when the total is unknown.</summary>
    public int Percent => Total <= 0 ? -1 : (int)Math.Clamp(Done * 100 / Total, 0, 100);
}

/// <summary>Throttles progress reports to a few per second (and always the last one).</summary>
internal sealed class ProgressThrottle(IProgress<MaintenanceProgress>? sink, string activity)
{
    private static readonly long Interval = System.Diagnostics.Stopwatch.Frequency / 5;
    private long _last = long.MinValue;

    public void Report(string phase, long done, long total, string unit, bool force = false)
    {
        if (sink is null) return;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (!force && _last != long.MinValue && now - _last < Interval) return;
        _last = now;
        sink.Report(new MaintenanceProgress(activity, phase, done, total, unit));
    }
}

/// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (unlike
/// <see cref="Progress{T}"/>, which posts to a synchronization context or the thread pool).</summary>
public sealed class SynchronousProgress<T>(Action<T> handler) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => handler(value);
}
