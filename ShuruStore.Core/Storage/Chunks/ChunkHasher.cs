namespace ShuruStore.Core.Storage;

/// <summary>Names chunks: BLAKE3-256 of the exact stored bytes, as shuru does.</summary>
public static class ChunkHasher
{
    /// <summary>Chunk size used by shuru's index format.</summary>
    public const int ChunkSize = 65536;

    /// <summary>BLAKE3-256 of <paramref name="data"/>.</summary>
    public static ChunkHash Hash(ReadOnlySpan<byte> data)
    {
        Span<byte> output = stackalloc byte[ChunkHash.Size];
        Blake3.Hasher.Hash(data, output);
        return ChunkHash.FromBytes(output);
    }

    /// <summary>Whether every byte is zero (vectorised; used to keep zero chunks out of the store).</summary>
    public static bool IsAllZero(ReadOnlySpan<byte> data) => !data.ContainsAnyExcept((byte)0);

    private static int _warmUpStarted;

    /// <summary>
    /// Gets the hash code compiled to its optimised form before a client needs it, on a background
    /// thread, once per process. The runtime first runs a method unoptimised and recompiles it
    /// only after it has been called often enough and a quiet delay has passed, and unoptimised
    /// hashing is an order of magnitude slower, which a freshly started server would pay on the
    /// first thousands of chunks a client writes. A few hundred hashes in the background, with
    /// pauses so they never take a whole core, move that cost before the first request.
    /// </summary>
    public static void WarmUpInBackground()
    {
        if (Interlocked.Exchange(ref _warmUpStarted, 1) != 0) return;
        var thread = new Thread(WarmUp) { IsBackground = true, Name = "shuru-hash-warmup" };
        thread.Start();
    }

    private static void WarmUp()
    {
        var data = new byte[ChunkSize];
        new Random(1).NextBytes(data);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Until most of the last 64 hashes ran at optimised speed (~15-20 µs for 64 KiB here;
        // unoptimised 200-1000 µs, partly optimised ~50). The runtime only promotes methods once
        // no new code has been compiled for a while, and a process that is still starting up keeps
        // compiling, so this may take seconds: pauses keep it to a small share of one core.
        ulong recent = 0; // one bit per recent hash: 1 = fast
        while (clock.ElapsedMilliseconds < 20_000)
        {
            long before = clock.ElapsedTicks;
            Hash(data);
            IsAllZero(data);
            bool fast = (clock.ElapsedTicks - before) * 1_000_000 / System.Diagnostics.Stopwatch.Frequency < 25;
            recent = (recent << 1) | (fast ? 1UL : 0UL);
            if (System.Numerics.BitOperations.PopCount(recent) >= 56) return;
            Thread.Sleep(fast ? 0 : 2);
        }
    }
}