namespace ShuruStore.Core.Nbd;

/// <summary>
/// The payload memory a whole server may hold for requests in flight (WRITE payloads being
/// received and held, READ replies being built and sent), across all its connections. A
/// connection whose next request would go past it stops reading requests until earlier ones
/// finish, anywhere on the server (backpressure: it keeps answering what it has). So clients
/// that stall in the middle of large requests can pin at most this much, however many connect.
/// <para>Waiters are served in the order they came: a large request is not passed over for
/// good by smaller ones arriving after it (nor a well-behaved client by stalled ones that kept
/// asking).</para>
/// <para>Each connection also has an allowance (<see cref="NbdServerOptions.ConnectionAllowance"/>)
/// that needs nothing from this budget, so a well-behaved client with small requests is served
/// even while stalled clients hold all of it.</para>
/// </summary>
internal sealed class NbdMemoryBudget(long limit)
{
    private readonly object _lock = new();
    private readonly LinkedList<long> _waiting = new(); // the amounts asked for, first come first
    private long _used;

    /// <summary>Bytes that may be charged at once.</summary>
    public long Limit { get; } = limit;

    /// <summary>Bytes charged now.</summary>
    public long Used { get { lock (_lock) return _used; } }

    /// <summary>Requests waiting in line for memory now.</summary>
    public int Waiting { get { lock (_lock) return _waiting.Count; } }

    /// <summary>Charges <paramref name="bytes"/>, waiting while that would pass the limit (a
    /// request larger than the whole limit is admitted once nothing else is charged, so every
    /// legal request size can be served). False when <paramref name="abandoned"/> says the
    /// caller gave up meanwhile; nothing is charged then.</summary>
    public bool Acquire(long bytes, Func<bool> abandoned)
    {
        if (bytes <= 0) return true;
        lock (_lock)
        {
            if (_waiting.Count == 0 && Fits(bytes))
            {
                _used += bytes;
                return true;
            }
            var turn = _waiting.AddLast(bytes);
            try
            {
                while (_waiting.First != turn || !Fits(bytes))
                {
                    if (abandoned()) return false;
                    Monitor.Wait(_lock, 50); // the connection's abort does not know this lock: look again soon
                }
                _used += bytes;
                return true;
            }
            finally
            {
                _waiting.Remove(turn);
                Monitor.PulseAll(_lock); // the next in line may fit too, or may now be first
            }
        }
    }

    private bool Fits(long bytes) => _used == 0 || _used + bytes <= Limit;

    public void Release(long bytes)
    {
        if (bytes <= 0) return;
        lock (_lock)
        {
            _used -= bytes;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>A default for this machine: an eighth of its memory, between 64 MiB and 256 MiB.</summary>
    public static long DefaultLimit()
    {
        long total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Clamp(total / 8, 64L << 20, 256L << 20);
    }
}
