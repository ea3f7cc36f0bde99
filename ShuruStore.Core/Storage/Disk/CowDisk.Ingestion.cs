using System.Buffers;
using System.Collections.Concurrent;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Lazy ingestion: a non-zero base piece that a client read becomes a chunk recorded in the live
/// map, as shuru does, but off the read path and after it.
/// <para>The queue holds chunk numbers, not copies: the worker reads the piece from the base
/// again (immutable, and page-cached since the client just read it), so nothing is ever dropped
/// for lack of room and one full read ingests the whole base. The worker yields while clients are
/// doing I/O: storing a chunk means hashing it and creating a file, which on these 2-core VMs took
/// the CPU the client's read needed (a cold read ran at 0.30 of a flat one while ingesting
/// alongside). A checkpoint (or a test) waiting for ingestion makes it run at once.</para>
/// </summary>
public sealed partial class CowDisk
{
    /// <summary>How long after the last client request ingestion waits before working.</summary>
    private const int IngestYieldMs = 20;

    private readonly ConcurrentQueue<long> _ingestQueue = new();
    private readonly ConcurrentDictionary<long, byte> _ingestPending = new();
    private long _ingestQueued, _ingestDone, _lastClientIo;
    private int _ingestRunning, _ingestUrgent;

    /// <summary>Called by every client read and write: ingestion waits for a quiet moment.</summary>
    private void NoteClientIo() => Volatile.Write(ref _lastClientIo, Environment.TickCount64);

    /// <summary>Chunks waiting at most (16 GiB of base, ~20 MiB of bookkeeping): past it a read
    /// does not queue its piece, and a later read queues it again.</summary>
    private const int MaxIngestPending = 1 << 18;

    private void QueueIngestion(long chunk)
    {
        if (_ingestPending.Count >= MaxIngestPending) return;
        if (!_ingestPending.TryAdd(chunk, 0)) return; // already waiting
        _ingestQueue.Enqueue(chunk);
        Interlocked.Increment(ref _ingestQueued);
        // A thread of its own while there is work (it sleeps while clients are busy, which a pool
        // thread should not), none once the queue is empty.
        if (Interlocked.CompareExchange(ref _ingestRunning, 1, 0) == 0)
            new Thread(static s => ((CowDisk)s!).IngestPump()) { IsBackground = true, Name = "shuru-ingest" }.Start(this);
    }

    private void IngestPump()
    {
        var batch = new List<long>(StoreBatchChunks);
        while (true)
        {
            while (true)
            {
                YieldToClients();
                batch.Clear();
                while (batch.Count < StoreBatchChunks && _ingestQueue.TryDequeue(out var c)) batch.Add(c);
                if (batch.Count == 0) break;
                try
                {
                    // A batch at a time: the pieces share the store's batch path (FileChunkStore.WriteMany).
                    batch.Sort();
                    if (Volatile.Read(ref _disposed) == 0) Ingest(batch);
                }
                catch { /* ingestion is a cache: a failure leaves the base providing the data */ }
                finally
                {
                    foreach (var c in batch)
                    {
                        _ingestPending.TryRemove(c, out _);
                        Interlocked.Increment(ref _ingestDone);
                    }
                }
            }
            Volatile.Write(ref _ingestRunning, 0);
            // A chunk queued after the last TryDequeue but before the reset found the pump running.
            if (_ingestQueue.IsEmpty || Interlocked.CompareExchange(ref _ingestRunning, 1, 0) != 0) return;
        }
    }

    private void YieldToClients()
    {
        while (Volatile.Read(ref _ingestUrgent) == 0 && Volatile.Read(ref _disposed) == 0 &&
               Environment.TickCount64 - Volatile.Read(ref _lastClientIo) < IngestYieldMs)
            Thread.Sleep(5);
    }

    private void Ingest(List<long> chunks)
    {
        var buffers = new List<byte[]>(chunks.Count);
        var batchChunks = new List<long>(chunks.Count);
        var batch = new List<(ChunkHash, ReadOnlyMemory<byte>)>(chunks.Count);
        bool[] stored = [];
        try
        {
            foreach (var chunk in chunks)
            {
                bool fromBase;
                lock (Stripe(chunk)) fromBase = _live[chunk] is null && !_dirty.ContainsKey(chunk) && !_spilledChunks.ContainsKey(chunk);
                if (!fromBase) continue; // written (or ingested) since it was queued
                var buf = ArrayPool<byte>.Shared.Rent(CS);
                buffers.Add(buf);
                if (!ReadBase(chunk, buf, out int len) || ChunkHasher.IsAllZero(buf.AsSpan(0, len))) continue;
                // Short at the end of the base, as shuru stores it.
                batch.Add((ChunkHasher.Hash(buf.AsSpan(0, len)), buf.AsMemory(0, len)));
                batchChunks.Add(chunk);
            }
            stored = new bool[batch.Count];
            if (batch.Count > 0) _store.WriteMany(batch, stored);
        }
        finally
        {
            for (int i = 0; i < stored.Length; i++) if (stored[i]) Record(batchChunks[i], batch[i].Item1);
            foreach (var buf in buffers) ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>Records an ingested piece unless a write (or zeroing) got there first: never
    /// overwrite a newer write with older base data.</summary>
    private void Record(long chunk, ChunkHash hash)
    {
        lock (Stripe(chunk))
        {
            if (_live[chunk] is null && !_dirty.ContainsKey(chunk) && !_spilledChunks.ContainsKey(chunk))
            {
                _live[chunk] = hash;
                _changed[chunk] = 1;
                Interlocked.Increment(ref _ingested);
            }
        }
    }

    /// <summary>Waits until every ingestion queued before the call is done, letting it run without
    /// yielding to clients (checkpoints call it so they record ingested chunks as shuru's would).</summary>
    internal void WaitForIngestion()
    {
        Interlocked.Increment(ref _ingestUrgent);
        try
        {
            long target = Interlocked.Read(ref _ingestQueued);
            var spin = new SpinWait();
            while (Interlocked.Read(ref _ingestDone) < target && Volatile.Read(ref _disposed) == 0)
                spin.SpinOnce(sleep1Threshold: 10);
        }
        finally { Interlocked.Decrement(ref _ingestUrgent); }
    }

    /// <summary>Waits for a running ingestion pump to stop (after dispose it skips its queue).</summary>
    private void WaitIngestionStopped() => SpinUntilZero(ref _ingestRunning);
}
