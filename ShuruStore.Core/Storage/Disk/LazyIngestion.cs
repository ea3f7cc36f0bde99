using System.Buffers;
using System.Collections.Concurrent;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Lazy ingestion: a non-zero base piece that a client read becomes a chunk recorded in the live
/// map, as shuru does, but off the read path and after it.
/// <para>The queue holds chunk numbers, not copies: the worker reads the piece from the base
/// again (immutable, and page-cached since the client just read it), so nothing is dropped for
/// lack of room and one full read ingests the whole base. The worker yields while clients are
/// doing I/O: storing a chunk means hashing it and creating a file, which would take the CPU the
/// client's read needs on a small machine. It looks again before every group of
/// <see cref="GroupChunks"/> pieces, so a client that starts reading waits for one group at most,
/// not a whole batch. A checkpoint waiting for ingestion makes it run at once.</para>
/// </summary>
internal sealed class LazyIngestion(ChunkTable table, BaseImage baseImage, IChunkStore store, CancellationToken closing)
{
    private const int CS = ChunkHasher.ChunkSize;

    /// <summary>How long after the last client request ingestion waits before working.</summary>
    private const int YieldMs = 20;

    /// <summary>Pieces read, hashed and stored between two looks at the clients.</summary>
    private const int GroupChunks = 16;

    /// <summary>Chunks waiting at most (16 GiB of base, ~20 MiB of bookkeeping): past it a read
    /// does not queue its piece, and a later read queues it again.</summary>
    private const int MaxPending = 1 << 18;

    private readonly ConcurrentQueue<long> _queue = new();
    private readonly ConcurrentDictionary<long, byte> _pending = new();
    // How many _pending holds, kept apart: ConcurrentDictionary.Count takes every one of its locks
    // (up to 1,024 once the table has grown), and Queue runs on every cold read.
    private int _pendingCount;
    // Held (shared) by a batch from storing its pieces to recording them; taken whole by
    // HoldBack, so the store's log can restart with nothing in between.
    private readonly ReaderWriterLockSlim _storing = new();
    private long _queued, _done, _lastClientIo, _ingested;
    private int _running, _urgent;

    /// <summary>Base pieces stored and recorded so far.</summary>
    public long Ingested => Interlocked.Read(ref _ingested);

    /// <summary>Called by every client read and write: ingestion waits for a quiet moment.</summary>
    public void NoteClientIo() => Volatile.Write(ref _lastClientIo, Environment.TickCount64);

    /// <summary>Queues a base piece a client read (each at most once while it waits).</summary>
    public void Queue(long chunk)
    {
        if (Volatile.Read(ref _pendingCount) >= MaxPending) return;
        if (!_pending.TryAdd(chunk, 0)) return; // already waiting
        Interlocked.Increment(ref _pendingCount);
        _queue.Enqueue(chunk);
        Interlocked.Increment(ref _queued);
        // A thread of its own while there is work (it sleeps while clients are busy, which a pool
        // thread should not), none once the queue is empty.
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
            new Thread(static s => ((LazyIngestion)s!).Pump()) { IsBackground = true, Name = "shuru-ingest" }.Start(this);
    }

    /// <summary>Waits until every ingestion queued before the call is done, letting it run without
    /// yielding to clients.</summary>
    public void WaitForQueued()
    {
        Interlocked.Increment(ref _urgent);
        try
        {
            long target = Interlocked.Read(ref _queued);
            var spin = new SpinWait();
            while (Interlocked.Read(ref _done) < target && !closing.IsCancellationRequested)
                spin.SpinOnce(sleep1Threshold: 10);
        }
        finally { Interlocked.Decrement(ref _urgent); }
    }

    /// <summary>Waits for the batch being stored, if any, to record its pieces, and keeps the next
    /// one from starting until disposed (see <see cref="StoreLease.Restart"/>).</summary>
    public StoringHeldBack HoldBack()
    {
        _storing.EnterWriteLock();
        return new StoringHeldBack(_storing);
    }

    public readonly struct StoringHeldBack(ReaderWriterLockSlim? storing) : IDisposable
    {
        public void Dispose() => storing?.ExitWriteLock(); // default: nothing was held
    }

    /// <summary>Waits for a running pump to stop (after closing it skips its queue).</summary>
    public void WaitStopped() => Workers.SpinUntilZero(ref _running);

    private void Pump()
    {
        var batch = new List<long>(GroupChunks);
        while (true)
        {
            while (true)
            {
                YieldToClients();
                batch.Clear();
                while (batch.Count < GroupChunks && _queue.TryDequeue(out var c)) batch.Add(c);
                if (batch.Count == 0) break;
                try
                {
                    batch.Sort();
                    if (!closing.IsCancellationRequested) Ingest(batch);
                }
                catch { /* ingestion is a cache: a failure leaves the base providing the data */ }
                finally
                {
                    foreach (var c in batch)
                    {
                        if (_pending.TryRemove(c, out _)) Interlocked.Decrement(ref _pendingCount);
                        Interlocked.Increment(ref _done);
                    }
                }
            }
            Volatile.Write(ref _running, 0);
            // A chunk queued after the last TryDequeue but before the reset found the pump running.
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _running, 1, 0) != 0) return;
        }
    }

    private void YieldToClients()
    {
        while (Volatile.Read(ref _urgent) == 0 && !closing.IsCancellationRequested &&
               Environment.TickCount64 - Volatile.Read(ref _lastClientIo) < YieldMs)
            Thread.Sleep(5);
    }

    private void Ingest(List<long> chunks)
    {
        var buffers = new List<byte[]>(chunks.Count);
        var batchChunks = new List<long>(chunks.Count);
        var batch = new List<(ChunkHash, ReadOnlyMemory<byte>)>(chunks.Count);
        bool[] stored = [];
        _storing.EnterReadLock();
        try
        {
            foreach (var chunk in chunks)
            {
                if (table.ResolveNow(chunk).Kind != ChunkPlaceKind.Base) continue; // written (or ingested) since it was queued
                var buf = ArrayPool<byte>.Shared.Rent(CS);
                buffers.Add(buf);
                int len = baseImage.ReadRange(chunk * CS, buf.AsSpan(0, CS));
                if (ChunkHasher.IsAllZero(buf.AsSpan(0, len))) continue;
                // Short at the end of the base, as shuru stores it.
                batch.Add((ChunkHasher.Hash(buf.AsSpan(0, len)), buf.AsMemory(0, len)));
                batchChunks.Add(chunk);
            }
            stored = new bool[batch.Count];
            if (batch.Count > 0) store.WriteMany(batch, stored);
        }
        finally
        {
            for (int i = 0; i < stored.Length; i++) if (stored[i]) Record(batchChunks[i], batch[i].Item1);
            _storing.ExitReadLock();
            foreach (var buf in buffers) ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>Records an ingested piece unless a write (or zeroing) got there first: never
    /// overwrite a newer write with older base data.</summary>
    private void Record(long chunk, ChunkHash hash)
    {
        lock (table.Stripe(chunk))
        {
            if (table.Resolve(chunk).Kind != ChunkPlaceKind.Base) return;
            table.SetLive(chunk, hash);
            Interlocked.Increment(ref _ingested);
        }
    }
}
