namespace ShuruStore.Core.Threading;

/// <summary>
/// The process's thread-pool minimum, owned in one place. The pool injects a thread only about
/// every half second when all of its threads are blocked, so work that knows it blocks pool
/// threads for long says so here and the minimum rises by that much: the pool then starts a
/// replacement at once instead of starving every other user of the process.
/// <para>Two kinds of claims add up: a lasting floor (<see cref="RequireAtLeast"/>, for a
/// component that always keeps that many threads busy waiting) and compensation that comes and
/// goes (<see cref="Compensate"/>, for threads blocked now). The minimum is the larger of the
/// pool's own minimum and the lasting floors, plus every owner's compensation; it returns to
/// that when the compensation ends.</para>
/// </summary>
internal static class ThreadPoolFloor
{
    /// <summary>Compensation is capped at this many extra threads: a bound on the threads
    /// stuck clients can make the process create, whatever they do.</summary>
    public const int MaxCompensation = 1024;

    private static readonly Lock s_lock = new();
    private static readonly Dictionary<object, int> s_compensation = new(ReferenceEqualityComparer.Instance);
    private static int s_poolMinimum = -1; // the pool's minimum before this class changed it
    private static int s_floor;
    private static int s_compensated;
    private static int s_applied = -1;

    /// <summary>Keeps the minimum at <paramref name="workers"/> or more for the life of the process.</summary>
    public static void RequireAtLeast(int workers)
    {
        lock (s_lock)
        {
            s_floor = Math.Max(s_floor, workers);
            Apply();
        }
    }

    /// <summary>Sets how many pool threads <paramref name="owner"/> has blocked now (0 ends its
    /// claim). Cheap when the number did not change.</summary>
    public static void Compensate(object owner, int blockedThreads)
    {
        lock (s_lock)
        {
            s_compensation.TryGetValue(owner, out int before);
            if (before == blockedThreads) return;
            if (blockedThreads <= 0) s_compensation.Remove(owner);
            else s_compensation[owner] = blockedThreads;
            s_compensated += blockedThreads - before;
            Apply();
        }
    }

    private static void Apply()
    {
        ThreadPool.GetMinThreads(out int workers, out int io);
        if (s_poolMinimum < 0) s_poolMinimum = workers;
        int target = Math.Max(s_poolMinimum, s_floor) + Math.Min(s_compensated, MaxCompensation);
        if (target == s_applied && target == workers) return;
        // SetMinThreads refuses a minimum above the pool's maximum: capped at it.
        ThreadPool.GetMaxThreads(out int maxWorkers, out _);
        target = Math.Min(target, maxWorkers);
        if (ThreadPool.SetMinThreads(target, io)) s_applied = target;
    }
}
