using System.Collections.Concurrent;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Write-behind: a chunk written whole by one request is most likely part of a sequential stream
/// that will not come back to it, so it is stored right away in the background and its hashing
/// and file creation overlap the transfer instead of all waiting for the final flush. Chunks
/// written piecemeal (random I/O) are not: storing each version of a chunk that is still being
/// rewritten makes chunk files nobody will reference. A failure (disk full) leaves the chunks
/// unsaved: the next flush stores them or reports why not.
/// </summary>
internal sealed class WriteBehind(ChunkTable table, ChunkSaver saver, CancellationToken closing, int maxPumps)
{
    private readonly ConcurrentQueue<long> _queue = new();
    private readonly ConcurrentDictionary<long, byte> _pending = new();
    private int _running; // pumps queued or running (at most maxPumps)

    /// <summary>Pumps to use when nothing else is said: two on a machine with two cores or more.</summary>
    public static int DefaultPumps => Math.Min(2, Environment.ProcessorCount);

    /// <summary>Chunks queued and not picked up yet.</summary>
    public int PendingCount => _pending.Count;

    /// <summary>Chunks queued and not picked up yet (a moving snapshot).</summary>
    public IEnumerable<long> Pending => _pending.Keys;

    /// <summary>Whether a chunk is queued and not picked up yet.</summary>
    public bool IsPending(long chunk) => _pending.ContainsKey(chunk);

    /// <summary>Queues a chunk just written whole (once while queued). Stripe held.</summary>
    public void Queue(long chunk)
    {
        if (_pending.TryAdd(chunk, 0)) _queue.Enqueue(chunk);
    }

    /// <summary>Starts a pump for what is queued; a second one only once a backlog builds up (a
    /// stream faster than one pump stores).</summary>
    public void Start()
    {
        if (_queue.IsEmpty) return;
        int want = table.DirtyBytes > 2L * ChunkSaver.BatchChunks * ChunkHasher.ChunkSize ? maxPumps : 1;
        for (int running = Volatile.Read(ref _running); running < want; running = Volatile.Read(ref _running))
        {
            if (Interlocked.CompareExchange(ref _running, running + 1, running) != running) continue;
            ThreadPool.UnsafeQueueUserWorkItem(static s => ((WriteBehind)s!).Pump(), this);
            return;
        }
    }

    /// <summary>Waits until no pump runs (after closing they skip their queue).</summary>
    public void WaitStopped() => Workers.SpinUntilZero(ref _running);

    /// <summary>Stores queued chunks, a batch at a time, while there are any (no parked worker).</summary>
    private void Pump()
    {
        var batch = new List<long>(ChunkSaver.BatchChunks);
        while (true)
        {
            while (true)
            {
                batch.Clear();
                while (batch.Count < ChunkSaver.BatchChunks && _queue.TryDequeue(out var c))
                {
                    _pending.TryRemove(c, out _);
                    if (table.TryClaim(c)) batch.Add(c);
                }
                if (batch.Count == 0) break;
                try
                {
                    batch.Sort();
                    if (!closing.IsCancellationRequested) saver.StoreBatch(batch);
                }
                catch { /* still unsaved (dirty or spilled): the next flush stores it or says why not */ }
                finally { foreach (var c in batch) table.Unclaim(c); }
            }
            Interlocked.Decrement(ref _running);
            // A chunk queued after the last TryDequeue but before the decrement found a pump running.
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _running, 1, 0) != 0) return;
        }
    }
}
