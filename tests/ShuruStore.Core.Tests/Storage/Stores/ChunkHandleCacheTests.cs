using System.Diagnostics;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>
/// FileChunkStore keeps verified chunk files open (ChunkHandleCache). A cached descriptor must
/// never serve bytes the name no longer stands for: every test here alters the file behind a
/// cached handle and checks the store notices, or checks descriptors are bounded and closed.
/// Descriptors are counted by what they point at (this test's chunk directory), not by the
/// total, because other test classes run in parallel in this process.
/// </summary>
public class ChunkHandleCacheTests
{
    private static (TempDir Dir, FileChunkStore Store) NewStore(int openChunkFiles = FileChunkStore.DefaultOpenChunkFiles)
    {
        var dir = new TempDir();
        return (dir, new FileChunkStore(dir.Cas, readOnly: false, openChunkFiles));
    }

    private static ChunkHash Put(FileChunkStore store, byte[] data)
    {
        var hash = ChunkHasher.Hash(data);
        store.Write(hash, data);
        return hash;
    }

    /// <summary>Descriptors of this process open on files of <paramref name="chunksPath"/>.</summary>
    private static int OpenFilesUnder(string chunksPath)
    {
        int n = 0;
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try { target = new FileInfo(fd).LinkTarget; } catch (IOException) { continue; } // closed meanwhile
            if (target is not null && target.StartsWith(chunksPath + "/", StringComparison.Ordinal)) n++;
        }
        return n;
    }

    private static ShuruErrorKind ReadRangeFails(FileChunkStore store, ChunkHash hash) =>
        Assert.Throws<ShuruStoreException>(() => ((IChunkStore)store).TryReadRange(hash, 0, new byte[4096])).Kind;

    [Fact]
    public void Cached_reads_return_the_right_bytes_and_keep_one_descriptor()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 1);
            var shortData = TempDir.Pattern(3000, 2); // a short chunk: its tail reads as zeros
            var h = Put(store, data);
            var hs = Put(store, shortData);
            for (int round = 0; round < 3; round++) // round 0 opens and verifies, then cache hits
            {
                var range = new byte[4096];
                Assert.True(((IChunkStore)store).TryReadRange(h, 61440, range));
                Assert.Equal(data.AsSpan(61440, 4096).ToArray(), range);
                var whole = new byte[65536];
                Assert.True(store.TryRead(h, whole, out int len));
                Assert.Equal(65536, len);
                Assert.Equal(data, whole);

                var tail = new byte[4096];
                tail.AsSpan().Fill(0xee);
                Assert.True(((IChunkStore)store).TryReadRange(hs, 2048, tail));
                Assert.Equal(shortData.AsSpan(2048).ToArray(), tail[..952]);
                Assert.All(tail[952..], b => Assert.Equal(0, b));
                Assert.True(store.TryRead(hs, whole, out len));
                Assert.Equal(3000, len);
                Assert.Equal(shortData, whole[..3000]);
                Assert.All(whole[3000..], b => Assert.Equal(0, b));
            }
            Assert.Equal(2, store.OpenChunkFiles);
            Assert.Equal(2, OpenFilesUnder(store.ChunksPath));
        }
    }

    [Theory]
    [InlineData(FileChunkStore.DefaultOpenChunkFiles)]
    [InlineData(0)] // uncached: the same guarantees without the cache
    public void A_chunk_overwritten_in_place_is_corrupt_not_data(int openChunkFiles)
    {
        var (dir, store) = NewStore(openChunkFiles);
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 3);
            var h = Put(store, data);
            Assert.True(((IChunkStore)store).TryReadRange(h, 0, new byte[4096])); // verified, cached
            string path = store.PathOf(h);
            var before = File.GetLastWriteTimeUtc(path);
            var altered = (byte[])data.Clone();
            altered[10] ^= 0x01; // inside the range read next: a stale cache would serve it
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.Write(altered); // same inode, same length
            File.SetLastWriteTimeUtc(path, before.AddSeconds(1));
            Assert.Equal(ShuruErrorKind.ChunkCorrupt, ReadRangeFails(store, h));
            Assert.Equal(ShuruErrorKind.ChunkCorrupt, Assert.Throws<ShuruStoreException>(() => store.TryRead(h, new byte[65536], out _)).Kind);
            Assert.Equal(0, store.OpenChunkFiles);
            Assert.Equal(0, OpenFilesUnder(store.ChunksPath));
        }
    }

    /// <summary>A copy tool that restores the modification time (cp -p, rsync -t, touch -r) must
    /// not make a rewritten chunk look verified: the change time cannot be set back.</summary>
    [Fact]
    public void A_chunk_rewritten_with_its_old_modification_time_is_still_caught()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 4);
            var h = Put(store, data);
            Assert.True(((IChunkStore)store).TryReadRange(h, 0, new byte[4096]));
            string path = store.PathOf(h);
            string reference = dir["mtime-ref"];
            Run("cp", "-p", path, reference); // nanosecond-exact copy of the verified mtime
            var altered = (byte[])data.Clone();
            altered[0] ^= 0x80;
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.Write(altered);
            Run("touch", "-m", "-r", reference, path);
            Assert.Equal(ShuruErrorKind.ChunkCorrupt, ReadRangeFails(store, h));
        }
    }

    private static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void A_truncated_chunk_is_corrupt_and_its_descriptor_dropped()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 5);
            var h = Put(store, data);
            Assert.True(store.TryRead(h, new byte[65536], out _));
            using (var f = new FileStream(store.PathOf(h), FileMode.Open, FileAccess.Write)) f.SetLength(60000);
            // The range before the cut still exists in the file, so only the identity check
            // (size and times moved) stops the cached handle from serving it unverified.
            Assert.Equal(ShuruErrorKind.ChunkCorrupt, ReadRangeFails(store, h));
            Assert.Equal(ShuruErrorKind.ChunkCorrupt, Assert.Throws<ShuruStoreException>(() => store.TryRead(h, new byte[65536], out _)).Kind);
            Assert.Equal(0, OpenFilesUnder(store.ChunksPath));
        }
    }

    /// <summary>Documented choice: a chunk deleted under the server (garbage collection, repair,
    /// an operator) reads as missing at once, exactly as without the cache; the cached descriptor
    /// of the deleted file is closed by that read, so it does not pin the file's space.</summary>
    [Fact]
    public void A_deleted_chunk_reads_as_missing_not_from_the_open_descriptor()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 6);
            var h = Put(store, data);
            Assert.True(((IChunkStore)store).TryReadRange(h, 0, new byte[4096]));
            Assert.Equal(1, OpenFilesUnder(store.ChunksPath));
            File.Delete(store.PathOf(h));
            Assert.False(((IChunkStore)store).TryReadRange(h, 0, new byte[4096]));
            Assert.False(store.TryRead(h, new byte[65536], out _));
            Assert.Equal(0, store.OpenChunkFiles);
            Assert.Equal(0, OpenFilesUnder(store.ChunksPath)); // "(deleted)" links are not under the name either
            Assert.Equal(ShuruErrorKind.ChunkMissing, Assert.Throws<ShuruStoreException>(() => store.Read(h, new byte[65536])).Kind);

            store.Write(h, data); // written again: read from the new file
            var buf = new byte[65536];
            Assert.True(store.TryRead(h, buf, out _));
            Assert.Equal(data, buf);
        }
    }

    /// <summary>Garbage collection moves a chunk aside under another name and may put it back:
    /// while it is aside the chunk is missing, as it would be uncached; once back it reads.</summary>
    [Fact]
    public void A_chunk_renamed_away_and_back_reads_missing_then_right()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 7);
            var h = Put(store, data);
            Assert.True(((IChunkStore)store).TryReadRange(h, 0, new byte[4096]));
            string aside = Path.Combine(store.ChunksPath, ".aside");
            File.Move(store.PathOf(h), aside);
            Assert.False(((IChunkStore)store).TryReadRange(h, 0, new byte[4096]));
            File.Move(aside, store.PathOf(h));
            var buf = new byte[4096];
            Assert.True(((IChunkStore)store).TryReadRange(h, 4096, buf));
            Assert.Equal(data.AsSpan(4096, 4096).ToArray(), buf);
        }
    }

    /// <summary>A file renamed over the name (a new inode) is verified before it is served: the
    /// right content reads, other content under the name is corrupt.</summary>
    [Fact]
    public void A_chunk_replaced_by_rename_is_verified_again()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 8);
            var h = Put(store, data);
            Assert.True(((IChunkStore)store).TryReadRange(h, 0, new byte[4096]));
            string tmp = dir["replacement"];
            File.WriteAllBytes(tmp, data);
            File.Move(tmp, store.PathOf(h), overwrite: true);
            var buf = new byte[65536];
            Assert.True(store.TryRead(h, buf, out _));
            Assert.Equal(data, buf);
            Assert.Equal(1, OpenFilesUnder(store.ChunksPath)); // the old inode's descriptor was closed

            var wrong = TempDir.Pattern(65536, 9);
            File.WriteAllBytes(tmp, wrong);
            File.Move(tmp, store.PathOf(h), overwrite: true);
            Assert.Equal(ShuruErrorKind.ChunkCorrupt, ReadRangeFails(store, h));
        }
    }

    [Fact]
    public void Eviction_under_concurrent_readers_never_returns_wrong_data_or_throws()
    {
        const int capacity = 4, chunks = 16, readers = 16;
        var (dir, store) = NewStore(capacity);
        using (dir) using (store)
        {
            var data = new byte[chunks][];
            var hashes = new ChunkHash[chunks];
            for (int i = 0; i < chunks; i++)
            {
                // Short chunks of differing lengths too, so a mix-up of descriptors shows as wrong
                // bytes or a wrong length, not only as wrong content.
                data[i] = TempDir.Pattern(i % 4 == 0 ? 1000 + 100 * i : 65536, 100 + i);
                hashes[i] = Put(store, data[i]);
            }
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var stop = Stopwatch.StartNew();
            long reads = 0;
            var threads = Enumerable.Range(0, readers).Select(t => new Thread(() =>
            {
                var rnd = new Random(t);
                var range = new byte[4096];
                var whole = new byte[65536];
                var expected = new byte[65536];
                try
                {
                    while (stop.ElapsedMilliseconds < 1500)
                    {
                        int c = rnd.Next(chunks);
                        expected.AsSpan().Clear();
                        data[c].CopyTo(expected, 0);
                        if (rnd.Next(2) == 0)
                        {
                            int offset = rnd.Next(16) * 4096;
                            if (!((IChunkStore)store).TryReadRange(hashes[c], offset, range)) failures.Enqueue($"chunk {c} missing");
                            else if (!range.AsSpan().SequenceEqual(expected.AsSpan(offset, 4096))) failures.Enqueue($"chunk {c} @{offset}: wrong bytes");
                        }
                        else
                        {
                            if (!store.TryRead(hashes[c], whole, out int len)) failures.Enqueue($"chunk {c} missing");
                            else if (len != data[c].Length || !whole.AsSpan().SequenceEqual(expected)) failures.Enqueue($"chunk {c}: wrong bytes");
                        }
                        Interlocked.Increment(ref reads);
                    }
                }
                catch (Exception e) { failures.Enqueue(e.ToString()); }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            Assert.Empty(failures);
            Assert.True(reads > chunks * 10, $"only {reads} reads");
            Assert.InRange(store.OpenChunkFiles, 1, capacity);
            Assert.InRange(OpenFilesUnder(store.ChunksPath), 1, capacity);
        }
    }

    [Fact]
    public void Dispose_closes_every_cached_descriptor_and_later_reads_work_uncached()
    {
        using var dir = new TempDir();
        var store = new FileChunkStore(dir.Cas);
        var data = Enumerable.Range(0, 50).Select(i => TempDir.Pattern(65536, 200 + i)).ToArray();
        var hashes = data.Select(d => Put(store, d)).ToArray(); // written chunks may stay open for reading back
        foreach (var h in hashes) Assert.True(((IChunkStore)store).TryReadRange(h, 0, new byte[512]));
        Assert.Equal(50, OpenFilesUnder(store.ChunksPath));
        store.Dispose();
        Assert.Equal(0, OpenFilesUnder(store.ChunksPath));

        var buf = new byte[65536];
        Assert.True(store.TryRead(hashes[7], buf, out _)); // a straggling read after Dispose
        Assert.Equal(data[7], buf);
        Assert.Equal(0, OpenFilesUnder(store.ChunksPath));
    }

    [Fact]
    public void A_torn_chunk_replaced_by_a_write_is_served_from_the_new_file()
    {
        var (dir, store) = NewStore();
        using (dir) using (store)
        {
            var data = TempDir.Pattern(65536, 10);
            var h = ChunkHasher.Hash(data);
            Directory.CreateDirectory(store.ChunksPath);
            File.WriteAllBytes(store.PathOf(h), data[..100]); // torn: never verifies, never cached
            Assert.Throws<ShuruStoreException>(() => ((IChunkStore)store).TryReadRange(h, 0, new byte[100]));
            Assert.Equal(0, store.OpenChunkFiles);
            Assert.True(store.Write(h, data));
            var buf = new byte[100];
            for (int i = 0; i < 2; i++)
            {
                Assert.True(((IChunkStore)store).TryReadRange(h, 0, buf));
                Assert.Equal(data[..100], buf);
            }
            Assert.Equal(1, store.OpenChunkFiles);
        }
    }

    [Theory]
    [InlineData(20000, 17500)]       // this container: room for 16384 (1 GiB of chunks)
    [InlineData(524288, 458752)]     // systemd's default hard limit: an eighth kept back
    [InlineData(4096, 2048)]         // small limits: 2048 always left to sockets, images, temp files
    [InlineData(1024, 0)]            // an unraised soft limit: reads stay uncached
    [InlineData(-1, 0)]              // unknown
    [InlineData(long.MaxValue, 1 << 20)] // RLIM_INFINITY
    public void The_descriptor_budget_leaves_room_for_everything_else(long limit, int budget) =>
        Assert.Equal(budget, OpenFileBudget.ForLimit(limit));
}
