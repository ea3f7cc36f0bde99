using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>The batched durability path: temp files made durable together, then renamed.</summary>
public class BatchWriteTests
{
    private const int CS = 65536;

    private static List<(ChunkHash, ReadOnlyMemory<byte>)> Chunks(int count, int seed)
    {
        var list = new List<(ChunkHash, ReadOnlyMemory<byte>)>();
        for (int i = 0; i < count; i++)
        {
            var data = TempDir.Pattern(CS, seed + i);
            list.Add((ChunkHasher.Hash(data), data));
        }
        return list;
    }

    [Fact]
    public void BatchStoresEveryChunkOnceAndSkipsDuplicates()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var chunks = Chunks(5, 10);
        Assert.True(store.Write(chunks[0].Item1, chunks[0].Item2.Span)); // already present: skipped
        chunks.Add(chunks[1]);                                           // same content twice in a batch
        Assert.Equal(4, store.WriteMany(chunks, new bool[chunks.Count]));
        store.Sync();
        Assert.Equal(chunks.Select(c => c.Item1.ToString()).Distinct().Order(), store.Enumerate().Select(h => h.ToString()).Order());
        var buf = new byte[CS];
        foreach (var (h, data) in chunks)
        {
            Assert.Equal(CS, store.Read(h, buf));
            Assert.Equal(data.ToArray(), buf);
        }
        Assert.Empty(Directory.EnumerateFiles(store.ChunksPath, ".tmp-*"));
    }

    [Fact]
    public void ChunksABatchWroteAreReadBackFromTheirOpenFilesAndAChangeIsStillCaught()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var chunks = Chunks(4, 40);
        Assert.Equal(4, store.WriteMany(chunks, new bool[chunks.Count]));
        Assert.Equal(4, store.OpenChunkFiles); // kept open from the write, known good without a read
        var buf = new byte[CS];
        Assert.Equal(CS, store.Read(chunks[0].Item1, buf));
        Assert.Equal(chunks[0].Item2.ToArray(), buf);
        Assert.True(store.TryLeaseRange(chunks[1].Item1, 0, CS, out var range)); // sendable at once
        ((IFileRangeLease)range.Lease).Release(range);

        // Altered after the write (same length, new bytes): the identity moved, so the read goes
        // back to the name and the hash catches it.
        File.WriteAllBytes(store.PathOf(chunks[2].Item1), TempDir.Pattern(CS, 99));
        Assert.False(store.TryLeaseRange(chunks[2].Item1, 0, CS, out _));
        var e = Assert.Throws<ShuruStoreException>(() => store.Read(chunks[2].Item1, buf));
        Assert.Equal(ShuruErrorKind.ChunkCorrupt, e.Kind);
    }

    [Fact]
    public void Concurrent_writers_of_the_same_chunk_report_exactly_one_creation()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        const int Writers = 4, Rounds = 200;
        using var barrier = new Barrier(Writers);
        var created = new int[Rounds];
        var threads = Enumerable.Range(0, Writers).Select(_ => new Thread(() =>
        {
            for (int r = 0; r < Rounds; r++)
            {
                var data = TempDir.Pattern(4096, 1000 + r);
                var hash = ChunkHasher.Hash(data);
                barrier.SignalAndWait();
                if (store.Write(hash, data)) Interlocked.Increment(ref created[r]);
            }
        })).ToList();
        threads.ForEach(th => th.Start());
        threads.ForEach(th => th.Join());
        Assert.All(created, c => Assert.Equal(1, c));
    }

    [Theory]
    [InlineData(true)]  // Linux default: nameless files (O_TMPFILE) linked to their names
    [InlineData(false)] // filesystems without O_TMPFILE: named temp files renamed
    public void CrashBetweenBatchWriteAndRenameLeavesNoChunkNames(bool nameless)
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        var chunks = Chunks(4, 20);
        int seenTemps = -1;
        store.BeforeBatchRename = () =>
        {
            // The state a crash or failure at this point leaves: no chunk names; complete temp
            // files where named temps are used, nothing at all where the files have no name yet.
            var temps = Directory.EnumerateFiles(store.ChunksPath, ".tmp-*").ToList();
            seenTemps = temps.Count;
            Assert.All(temps, f => Assert.Equal(CS, new FileInfo(f).Length));
            Assert.Empty(store.Enumerate());
            throw new IOException("simulated crash before the renames");
        };
        if (FileSync.HasSyncFs)
        {
            FileDescriptors.NamelessFilesDisabled = !nameless;
            try { Assert.Throws<IOException>(() => store.WriteMany(chunks, new bool[chunks.Count])); }
            finally { FileDescriptors.NamelessFilesDisabled = false; }
            Assert.Equal(nameless ? 0 : 4, seenTemps);
            Assert.Empty(Directory.EnumerateFileSystemEntries(store.ChunksPath)); // the failure cleaned up
            Assert.Empty(store.Enumerate());
            Assert.All(chunks, c => Assert.False(store.Contains(c.Item1)));
        }
        store.BeforeBatchRename = null;
        Assert.Equal(4, store.WriteMany(chunks, new bool[chunks.Count])); // everything can be written again
        Assert.Equal(chunks.Select(c => c.Item1.ToString()).Order(), store.Enumerate().Select(h => h.ToString()).Order());
    }

    [Theory]
    [InlineData(false)] // root (tests, many services): linkat names the descriptor itself
    [InlineData(true)]  // without CAP_DAC_READ_SEARCH: linked through /proc/self/fd
    public void ANameWithTheRightLengthButWrongContentIsVerifiedAndReplacedNotDeduplicated(bool linkThroughProc)
    {
        FileNaming.EmptyPathLinkDisabled = linkThroughProc;
        try { RightLengthWrongContent(); }
        finally { FileNaming.EmptyPathLinkDisabled = false; }
    }

    private static void RightLengthWrongContent()
    {
        // Batch writes publish names before a sync makes their content durable, so after a power
        // loss a name can exist whose bytes never reached the disk. A later writer of that content
        // must not take the name on trust (its index would then reference garbage).
        using var t = new TempDir();
        var chunks = Chunks(3, 21);
        using (var first = new FileChunkStore(t.Cas))
            Directory.CreateDirectory(first.ChunksPath);
        string victim = Path.Combine(t.Cas, "chunks", chunks[1].Item1.ToString());
        File.WriteAllBytes(victim, TempDir.Pattern(CS, 99)); // right length, wrong bytes
        using var store = new FileChunkStore(t.Cas);
        var stored = new bool[chunks.Count];
        Assert.Equal(3, store.WriteMany(chunks, stored));   // the damaged one counts as written again
        Assert.All(stored, Assert.True);
        var back = new byte[CS];
        Assert.True(store.TryRead(chunks[1].Item1, back, out _));
        Assert.Equal(chunks[1].Item2.ToArray(), back);
        // An intact chunk found under its name is deduplicated (verified once, not rewritten).
        using var again = new FileChunkStore(t.Cas);
        Assert.Equal(0, again.WriteMany(chunks, new bool[chunks.Count]));
    }

    [Fact]
    public void A_stream_that_will_sync_soon_syncs_in_the_background_and_a_failure_there_reaches_the_next_sync()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        int chunksPerSync = (int)(SyncFsDurability.EarlySyncBytes / CS);
        var syncs = 0;
        store.SyncFault = () => { if (Interlocked.Increment(ref syncs) == 1) throw new IOException("disk gone (injected)"); };

        var quiet = Chunks(chunksPerSync + 8, 5000);                 // no sync announced: none started
        store.WriteMany(quiet, new bool[quiet.Count]);
        Assert.Equal(0, store.EarlySyncs);

        var stream = Chunks(chunksPerSync + 8, 9000);                // a stream a FLUSH will follow
        for (int i = 0; i < stream.Count; i += 128)
        {
            var batch = stream.Skip(i).Take(128).ToList();
            store.WriteMany(batch, new bool[batch.Count], syncSoon: true);
        }
        Assert.Equal(1, store.EarlySyncs);
        var until = DateTime.UtcNow.AddSeconds(20);
        while (Volatile.Read(ref syncs) == 0 && DateTime.UtcNow < until) Thread.Sleep(10);
        Assert.Equal(1, Volatile.Read(ref syncs));
        // The background sync failed (the hook runs under the sync lock, so this Sync waits for
        // it): the FLUSH's own sync must say so, not report success.
        var e = Assert.Throws<IOException>(() => store.Sync());
        Assert.Contains("disk gone", e.Message);
    }

    [Fact]
    public void SyncRunsWheneverANameWasPublishedOrReliedOnSinceTheLastOne()
    {
        using var t = new TempDir();
        using var store = new FileChunkStore(t.Cas);
        int syncs = 0;
        store.SyncFault = () => syncs++;
        var chunks = Chunks(3, 22);
        store.WriteMany(chunks, new bool[chunks.Count]);
        store.Sync();
        Assert.Equal(1, syncs);
        store.Sync();
        Assert.Equal(1, syncs); // nothing new
        Assert.Equal(0, store.WriteMany(chunks, new bool[chunks.Count])); // found and relied on
        store.Sync();
        Assert.Equal(2, syncs);   // a concurrent writer's rename of those names may not be synced yet
    }

    [Fact]
    public void AfterAFailedSyncEverySyncFailsUntilTheStoreIsOpenedAgain()
    {
        // Linux reports a writeback error to a descriptor once, so a second syncfs would succeed
        // over chunks that never reached the disk and a later FLUSH would promise them.
        using var t = new TempDir();
        var chunks = Chunks(3, 23);
        using (var store = new FileChunkStore(t.Cas))
        {
            store.WriteMany(chunks, new bool[chunks.Count]);
            store.SyncFault = () => throw new IOException("Input/output error");
            Assert.Throws<IOException>(() => store.Sync());
            store.SyncFault = null; // the second syncfs would report nothing
            var e = Assert.Throws<IOException>(() => store.Sync());
            Assert.Contains("earlier sync", e.Message);
            Assert.Throws<IOException>(() => store.Sync());
        }
        using var reopened = new FileChunkStore(t.Cas);
        Assert.Equal(0, reopened.WriteMany(chunks, new bool[chunks.Count])); // verified, then relied on
        reopened.Sync();
    }

    [Fact]
    public void SpilledChunksStayReadableUntilStoredAndSurviveAFailedBatch()
    {
        using var t = new TempDir();
        var store = new FileChunkStore(t.Cas);
        bool fail = true;
        store.BeforeBatchRename = () => { if (fail) throw new IOException("simulated failure before the renames"); };
        var opts = new CowDiskOptions { CasPath = t.Cas, DiskSize = 16 * CS, StatePath = t["state"], DirtyBudgetBytes = 2 * CS, ChunkStore = store };
        var data = TempDir.Pattern(8 * CS, 30);
        var d = CowDisk.Open(opts);
        // Over budget: the write spills a batch; on Linux the batch fails before its renames.
        try { d.Write(0, data, WriteFlags.None); }
        catch (BlockDeviceException e) { Assert.Equal(BlockDeviceError.IO, e.Error); }
        Assert.Empty(store.Enumerate());
        var back = new byte[data.Length];
        d.Read(0, back);
        Assert.Equal(data, back);                 // not renamed: served from memory
        Assert.Throws<BlockDeviceException>(() => d.Flush());
        d.Read(0, back);
        Assert.Equal(data, back);                 // a failed flush drops nothing

        fail = false;
        d.Write(9 * CS, data.AsSpan(0, 3 * CS), WriteFlags.None); // spills (budget) in a batch
        d.Flush();
        d.Read(0, back);
        Assert.Equal(data, back);
        d.SimulateCrash();
        Assert.Empty(Directory.EnumerateFiles(store.ChunksPath, ".tmp-*"));

        using var r = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 16 * CS, StatePath = t["state"] });
        r.Read(0, back);
        Assert.Equal(data, back);
        var tail = new byte[3 * CS];
        r.Read(9 * CS, tail);
        Assert.Equal(data.AsSpan(0, 3 * CS).ToArray(), tail);
        store.Dispose();
    }

    [Fact]
    public void PooledBufferTailIsClearedAtTheEndOfAnOddSizedDisk()
    {
        using var t = new TempDir();
        long size = 2 * CS + 1000;
        var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = size, StatePath = t["state"], DirtyBudgetBytes = CS });
        var noise = TempDir.Pattern(2 * CS, 40);
        d.Write(0, noise, WriteFlags.None); // buffers go back to the pool full of noise
        d.Flush();
        var last = TempDir.Pattern(1000, 41);
        d.Write(2 * CS, last, WriteFlags.None); // a whole (short) last chunk in a reused buffer
        d.Flush();
        d.SimulateCrash();
        using var store = new FileChunkStore(t.Cas);
        var expected = new byte[CS];
        last.CopyTo(expected, 0);
        Assert.True(store.Contains(ChunkHasher.Hash(expected))); // stored as shuru would: zero tail
    }
}
