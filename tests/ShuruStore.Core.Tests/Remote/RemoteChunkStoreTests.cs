using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>The remote layer over a local store, against the real cluster: verification of what
/// is fetched, one fetch per chunk, read-ahead, the cache limit.</summary>
[Collection("ceph")]
public sealed class RemoteChunkStoreTests(CephCluster cluster) : RemoteScratch(cluster)
{
    private const int CS = LocalChain.CS;
    /// <summary>A chain published as "cp" in a fresh store, its base image deleted.</summary>
    private (CountingObjectStore Store, LocalChain Chain) Published(string what, int seed, int packBytes = 256 * 1024)
    {
        var store = Store(what);
        var chain = LocalChain.Create(Dir(), seed);
        var o = new PublishOptions { IndexPath = chain.TopPath, CasPath = chain.CasPath, Destination = store.Location.ToString(), Name = "cp", PackBytes = packBytes };
        CheckpointPublisher.Execute(CheckpointPublisher.Plan(o, store, store.Location), store);
        File.Delete(chain.BasePath);
        return (store, chain);
    }

    /// <summary>Where disk chunk <paramref name="chunk"/> of a booted checkpoint lives remotely.</summary>
    private static (ChunkHash Hash, string PackKey, int Offset, int Length) Locate(RemoteCheckpoint remote, CowDisk disk, long chunk)
    {
        var chain = IndexChain.Load(remote.LocalIndexPath);
        var layers = new ChunkLayers(chain.Parents.Select(p => p.Index).Prepend(chain.Top), 0);
        var hit = layers.Resolve(chunk);
        Assert.Equal(LayerKind.Index, hit.Kind);
        Assert.True(remote.Store.Locations.TryGetOrdinal(hit.Hash, out int o));
        return (hit.Hash, remote.Store.Locations.PackKeyAt(o), remote.Store.Locations.OffsetAt(o), remote.Store.Locations.LengthAt(o));
    }

    private static byte[] GetObject(IObjectStore store, string key)
    {
        var buffer = new byte[8 << 20];
        int n = store.GetAsync(key, buffer).GetAwaiter().GetResult();
        return buffer.AsSpan(0, n).ToArray();
    }

    [Fact]
    public void ADamagedObjectIsNeverCachedOrServed()
    {
        var (store, chain) = Published("damaged", seed: 11);
        var host = Dir();
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", host.Cas, new RemoteChunkStoreOptions { ReadaheadGroups = 0 });
        using (remote)
        using (disk)
        {
            var reported = new List<RemoteObjectDamage>();
            remote.Store.ObjectDamaged += (_, d) => { lock (reported) reported.Add(d); };
            // Flip one byte of chunk 9's bytes in its pack, as a bad disk or a bad copy would.
            var (hash, packKey, offset, length) = Locate(remote, disk, 9);
            var pack = GetObject(store, packKey);
            pack[offset + length / 2] ^= 0x40;
            store.Inner.PutAsync(packKey, pack).GetAwaiter().GetResult();

            var buf = new byte[CS];
            var e = Assert.Throws<BlockDeviceException>(() => disk.Read(9L * CS, buf));
            Assert.Equal(BlockDeviceError.IO, e.Error);
            Bound.Says(hash.ToString(), e);
            Bound.Says(store.Location.Child(packKey).ToString(), e);
            Assert.False(File.Exists(Path.Combine(host.Cas, "chunks", hash.ToString())), "a damaged chunk was cached");
            // Asked again, it fails again (nothing negative is cached either), and is reported each time.
            Assert.Throws<BlockDeviceException>(() => disk.Read(9L * CS + 100, buf.AsSpan(0, 512)));
            Assert.Equal(2, remote.Store.Statistics.DamagedChunks);
            Assert.Equal(store.Location.Child(packKey).ToString(), Assert.Single(remote.Store.DamagedObjects.DistinctBy(d => d.ObjectUri)).ObjectUri);
            lock (reported) Assert.Equal(2, reported.Count);

            // Other chunks of the same pack are intact and read.
            var other = Locate(remote, disk, 30); // written with chunk 9 on the same host: same pack
            Assert.Equal(packKey, other.PackKey);
            disk.Read(30L * CS, buf);
            Assert.True(buf.AsSpan().SequenceEqual(chain.Expected.AsSpan(30 * CS, CS)));

            // Repaired remotely: the next read works.
            pack[offset + length / 2] ^= 0x40;
            store.Inner.PutAsync(packKey, pack).GetAwaiter().GetResult();
            disk.Read(9L * CS, buf);
            Assert.True(buf.AsSpan().SequenceEqual(chain.Expected.AsSpan(9 * CS, CS)));
        }
    }

    [Fact]
    public void ATruncatedObjectIsNeverCachedOrServed()
    {
        var (store, chain) = Published("truncated", seed: 12);
        var host = Dir();
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", host.Cas, new RemoteChunkStoreOptions { ReadaheadGroups = 0 });
        using (remote)
        using (disk)
        {
            var (hash, packKey, offset, length) = Locate(remote, disk, 9);
            var pack = GetObject(store, packKey);
            store.Inner.PutAsync(packKey, pack.AsMemory(0, offset + length - 1)).GetAwaiter().GetResult(); // the chunk's last byte cut off

            var e = Assert.Throws<BlockDeviceException>(() => disk.Read(9L * CS, new byte[CS]));
            Assert.Equal(BlockDeviceError.IO, e.Error);
            Bound.Says("ends", e);
            Assert.False(File.Exists(Path.Combine(host.Cas, "chunks", hash.ToString())));
            Assert.Equal(1, remote.Store.Statistics.DamagedChunks);
        }
    }

    [Fact]
    public void ManyReadersOfOneChunkShareOneFetch()
    {
        var (store, chain) = Published("single", seed: 13);
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", Dir().Cas, new RemoteChunkStoreOptions { ReadaheadGroups = 0 });
        using (remote)
        using (disk)
        {
            int getsBefore = store.Gets;
            using var go = new ManualResetEventSlim();
            var readers = Enumerable.Range(0, 16).Select(i => Task.Run(() =>
            {
                go.Wait();
                var buf = new byte[4096];
                disk.Read(30L * CS + i * 4096, buf);
                return buf.AsSpan().SequenceEqual(chain.Expected.AsSpan(30 * CS + i * 4096, 4096));
            })).ToArray();
            go.Set();
            Assert.All(Task.WhenAll(readers).GetAwaiter().GetResult(), Assert.True);
            Assert.Equal(1, remote.Store.Statistics.Fetches);
            Assert.Equal(1, store.Gets - getsBefore);
        }
    }

    [Fact]
    public void SequentialReadsFetchGroupsAheadAndRandomReadsSingleChunks()
    {
        var (store, chain) = Published("readahead", seed: 14, packBytes: 4 << 20);
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", Dir().Cas, new RemoteChunkStoreOptions { GroupChunks = 4, ReadaheadGroups = 4 });
        using (remote)
        using (disk)
        {
            // Random: two chunks far apart are one small GET each.
            var buf = new byte[CS];
            disk.Read(33L * CS, buf);
            disk.Read(2L * CS, buf);
            var s = remote.Store.Statistics;
            Assert.Equal((2L, 0L), (s.Fetches, s.Prefetches));
            Assert.True(s.BytesFetched <= 2 * CS, $"{s.BytesFetched} bytes for two chunks");

            // Sequential: far fewer GETs than chunks, most of them ahead of the reader.
            RemoteKit.SameBytes(chain.Expected, RemoteKit.ReadAll(disk));
            s = remote.Store.Statistics;
            int located = remote.Store.Locations.Count;
            Assert.True(s.Prefetches > 0, $"no read-ahead: {s}");
            Assert.True(s.Fetches < located / 2, $"{s.Fetches} GETs for {located} chunks: {s}");
            Assert.True(s.ChunksFetched >= located && s.ChunksFetched < located + located / 10, $"{s.ChunksFetched} chunks fetched for {located}: {s}");
        }
    }

    [Fact]
    public void OverlappingReadersAndReadAheadStoreEveryChunkExactlyOnce()
    {
        // Eight sequential readers starting at different chunks: their read-aheads run into each
        // other's fetches. Each chunk must be verified and written into the local store by one
        // fetch only (a second copy is a file created only to be thrown away).
        var (store, chain) = Published("overlap", seed: 17, packBytes: 4 << 20);
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", Dir().Cas, new RemoteChunkStoreOptions { GroupChunks = 4, ReadaheadGroups = 4 });
        using (remote)
        using (disk)
        {
            long chunks = disk.Size / CS;
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, reader =>
            {
                var buf = new byte[16 * 1024];
                long startChunk = reader * chunks / 8 + reader % 3;
                for (long i = 0; i < chunks * CS; i += buf.Length)
                {
                    long at = (startChunk * CS + i) % (chunks * CS);
                    disk.Read(at, buf);
                    if (!buf.AsSpan().SequenceEqual(chain.Expected.AsSpan((int)at, buf.Length))) { failures.Enqueue($"reader {reader} at {at}"); return; }
                }
            });
            Assert.Empty(failures);
            var s = remote.Store.Statistics;
            Assert.True(s.Prefetches > 0, $"no read-ahead: {s}");
            Assert.Equal(remote.Store.Locations.Count, s.ChunksFetched);
        }
    }

    [Fact]
    public void AReaderIsNeverFailedByEvictionsAroundItAndReadAheadStaysWithinASmallLimit()
    {
        // Many sequential readers over a cache far smaller than the read-ahead asked for: fetches
        // that end beside a reader evict what the others just fetched. A reader's own chunk must
        // survive until it has read it, and read-ahead that cannot be kept must not be fetched.
        var (store, chain) = Published("thrash", seed: 16, packBytes: 4 << 20);
        const long limit = 3 * CS;
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", Dir().Cas,
            new RemoteChunkStoreOptions { CacheLimitBytes = limit, GroupChunks = 2, ReadaheadGroups = 8 });
        using (remote)
        using (disk)
        {
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, reader =>
            {
                for (int round = 0; round < 3; round++)
                {
                    var got = new byte[disk.Size];
                    try
                    {
                        for (int at = 0; at < got.Length; at += 16 * 1024)
                            disk.Read(at, got.AsSpan(at, Math.Min(16 * 1024, got.Length - at)));
                    }
                    catch (Exception e) { failures.Enqueue($"reader {reader}, round {round}: {e.Message}"); return; }
                    int same = chain.Expected.AsSpan().CommonPrefixLength(got);
                    if (same != got.Length) failures.Enqueue($"reader {reader}, round {round}: differs from byte {same}");
                }
            });
            Assert.Empty(failures);
            var s = remote.Store.Statistics;
            Assert.True(s.ChunksEvicted > 0, $"nothing evicted: {s}");
            // Read-ahead within half the limit: one group (2 chunks) ahead, not eight.
            long located = remote.Store.Locations.Count;
            Assert.True(s.ChunksFetched <= 24 * located * 2, $"{s.ChunksFetched} chunks fetched for 24 reads of {located}: {s}");
        }
    }

    [Fact]
    public void AFetchedChunkBeingSentIsNotEvictedUntilItsLeaseEnds()
    {
        // The NBD server sends chunk files with sendfile under a lease, and checks afterwards that
        // the file did not change; an eviction (unlink) in between would cut the reply and close
        // the client's connection.
        var (store, _) = Published("lease", seed: 17);
        var host = Dir();
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", host.Cas,
            new RemoteChunkStoreOptions { CacheLimitBytes = 2 * CS, GroupChunks = 1, ReadaheadGroups = 0 });
        using (remote)
        using (disk)
        {
            var hashes = remote.Store.Locations.All().Select(l => l.Hash).Distinct().ToList();
            var buf = new byte[CS];
            Assert.True(remote.Store.TryRead(hashes[0], buf, out _));
            Assert.True(remote.Store.TryLeaseRange(hashes[0], 0, 4096, out var range));
            try
            {
                foreach (var h in hashes.Skip(1)) Assert.True(remote.Store.TryRead(h, buf, out _));
                Assert.True(remote.Store.Statistics.ChunksEvicted > 0, "nothing evicted");
                Assert.True(range.Lease.StillValid(range), "the chunk file being sent was evicted under it");
            }
            finally { range.Lease.Release(range); }
            // Released, it is an ordinary cached chunk again: reading past the limit evicts it.
            for (int round = 0; round < 3; round++)
                foreach (var h in hashes.Skip(1)) Assert.True(remote.Store.TryRead(h, buf, out _));
            Assert.False(File.Exists(Path.Combine(host.Cas, "chunks", hashes[0].ToString())), "a released chunk is never evicted");
        }
    }

    [Fact]
    public void TheCacheLimitEvictsOnlyChunksTheRemoteHas()
    {
        var (store, chain) = Published("limit", seed: 15);
        var host = Dir();
        const long limit = 8 * CS;
        var (remote, disk) = RemoteKit.Boot(store, store.Location, "cp", host.Cas, new RemoteChunkStoreOptions { CacheLimitBytes = limit, ReadaheadGroups = 2, GroupChunks = 2 });
        using (remote)
        using (disk)
        {
            // Chunks only this host has: written and flushed.
            disk.Write(1L * CS, TempDir.Pattern(3 * CS, 77), WriteFlags.None);
            disk.Flush();
            var localOnly = Enumerable.Range(1, 3).Select(c => ChunkHasher.Hash(TempDir.Pattern(3 * CS, 77).AsSpan((c - 1) * CS, CS))).ToList();

            var expected = chain.Expected.ToArray();
            TempDir.Pattern(3 * CS, 77).CopyTo(expected, CS);
            for (int round = 0; round < 2; round++) RemoteKit.SameBytes(expected, RemoteKit.ReadAll(disk));

            var s = remote.Store.Statistics;
            Assert.True(s.ChunksEvicted > 0, $"nothing evicted: {s}");
            Assert.True(s.CachedBytes <= limit + 2 * 2 * CS, $"{s.CachedBytes} bytes cached over a limit of {limit}: {s}");
            long remoteFiles = remote.Store.Locations.All().Count(l => File.Exists(Path.Combine(host.Cas, "chunks", l.Hash.ToString())));
            Assert.True(remoteFiles * CS <= limit + 2 * 2 * CS, $"{remoteFiles} fetched chunk files kept");
            foreach (var h in localOnly)
                Assert.True(File.Exists(Path.Combine(host.Cas, "chunks", h.ToString())), $"chunk {h}, which only this host has, was removed");
        }
    }
}
