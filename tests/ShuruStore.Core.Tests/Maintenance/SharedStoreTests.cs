using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Maintenance;

/// <summary>
/// A store shared by writers the collector knows nothing about: every writer's registration
/// (<see cref="StoreLease"/>) is a root, a reused chunk is freshened, and a chunk relied on while
/// a collection has it set aside survives. The two-process versions of these are in
/// tests/Pester/SharedStore.Tests.ps1.
/// </summary>
public class SharedStoreTests
{
    private const int CS = 65536;

    /// <summary>A chunk file written long ago by a writer that is gone: unreferenced and old.</summary>
    private static ChunkHash OldOrphan(TempDir t, int seed)
    {
        var data = TempDir.Pattern(CS, seed);
        var hash = ChunkHasher.Hash(data);
        using (var s = new FileChunkStore(t.Cas)) { s.Write(hash, data); s.Sync(); }
        File.SetLastWriteTimeUtc(ChunkPath(t, hash), DateTime.UtcNow.AddDays(-3));
        return hash;
    }

    private static string ChunkPath(TempDir t, ChunkHash h) => Path.Combine(t.Cas, "chunks", h.ToString());

    private static bool IntactChunk(TempDir t, ChunkHash h) =>
        File.Exists(ChunkPath(t, h)) && ChunkHasher.Hash(File.ReadAllBytes(ChunkPath(t, h))) == h;

    [Fact]
    public void A_registered_writer_keeps_what_it_stored_and_reused_from_a_collector_that_knows_nothing_of_it()
    {
        using var t = new TempDir();
        var reused = OldOrphan(t, 1);
        var other = OldOrphan(t, 2);
        var fresh = TempDir.Pattern(CS, 3);
        var freshHash = ChunkHasher.Hash(fresh);
        using (var writer = new FileChunkStore(t.Cas, new FileChunkStoreOptions { Holder = new StoreHolder("writer", "w") }))
        {
            writer.Write(freshHash, fresh);
            Assert.False(writer.Write(reused, TempDir.Pattern(CS, 1))); // found, not created
            writer.Sync();
            Assert.True(DateTime.UtcNow - File.GetLastWriteTimeUtc(ChunkPath(t, reused)) < TimeSpan.FromMinutes(1), "a reused chunk is freshened");

            var regs = StoreRegistrations.Read(t.Cas);
            var mine = Assert.Single(regs);
            Assert.True(mine.IsAlive);
            Assert.Equal("w", mine.Name);
            Assert.Equal(Environment.ProcessId, mine.ProcessId);

            var r = GarbageCollector.Collect(new() { CasPath = t.Cas, GracePeriod = TimeSpan.Zero });
            Assert.Equal(1, r.ChunksRemoved); // only the chunk nobody uses
            Assert.True(IntactChunk(t, reused));
            Assert.True(IntactChunk(t, freshHash));
            Assert.False(File.Exists(ChunkPath(t, other)));
            Assert.Single(r.Registrations);
        }
        // Closed without a state file: the registration is gone, and so is its protection.
        Assert.Empty(StoreRegistrations.Read(t.Cas));
        Assert.Empty(Directory.GetFiles(Path.Combine(t.Cas, StoreLease.FolderName)));
        var after = GarbageCollector.Collect(new() { CasPath = t.Cas, GracePeriod = TimeSpan.Zero });
        Assert.Equal(2, after.ChunksRemoved);
    }

    [Theory]
    [InlineData(true)]  // the writer finds the name gone and writes the chunk afresh
    [InlineData(false)] // the writer logged the name before the collector asked again: it is put back
    public void A_chunk_relied_on_while_a_collection_has_it_set_aside_survives(bool relyAfterSetAside)
    {
        using var t = new TempDir();
        var orphan = OldOrphan(t, 7);
        using var writer = new FileChunkStore(t.Cas, new FileChunkStoreOptions { Holder = new StoreHolder("writer") });
        var r = GarbageCollector.Collect(new()
        {
            CasPath = t.Cas,
            GracePeriod = TimeSpan.Zero,
            AfterSetAside = batch =>
            {
                Assert.Contains(orphan, batch);
                Assert.False(File.Exists(ChunkPath(t, orphan)));
                if (relyAfterSetAside) Assert.True(writer.Write(orphan, TempDir.Pattern(CS, 7))); // created: the old file was aside
                else writer.Lease!.Intend([orphan]);
            },
        });
        Assert.True(IntactChunk(t, orphan));
        Assert.Equal(0, r.ChunksRemoved);
        Assert.Empty(Directory.GetFiles(Path.Combine(t.Cas, "chunks"), ".gc-*"));
    }

    [Fact]
    public void A_collection_puts_back_a_set_aside_chunk_that_was_freshened_after_the_plan()
    {
        using var t = new TempDir();
        var orphan = OldOrphan(t, 8);
        var r = GarbageCollector.Collect(new()
        {
            CasPath = t.Cas,
            GracePeriod = TimeSpan.Zero,
            // A writer that does not register, but renews the chunk's age as it reuses it.
            AfterSetAside = _ => File.SetLastWriteTimeUtc(Directory.GetFiles(Path.Combine(t.Cas, "chunks"), ".gc-*").Single(), DateTime.UtcNow),
        });
        Assert.Equal(1, r.ChunksRescued);
        Assert.True(IntactChunk(t, orphan));
    }

    [Fact]
    public void A_disk_with_a_state_file_stays_a_root_after_it_closes_until_its_state_file_goes()
    {
        using var t = new TempDir();
        var data = TempDir.Pattern(4 * CS, 11);
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 8 * CS, StatePath = t["vm.state"] }))
        {
            d.Write(0, data, WriteFlags.None);
            d.Flush();
        }
        foreach (var f in Directory.GetFiles(Path.Combine(t.Cas, "chunks"))) File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-1));

        var ended = Assert.Single(StoreRegistrations.Read(t.Cas));
        Assert.False(ended.IsAlive);
        Assert.True(ended.IsRoot);
        Assert.Equal(t["vm.state"], ended.StatePath);
        var r = GarbageCollector.Collect(new() { CasPath = t.Cas, GracePeriod = TimeSpan.Zero });
        Assert.Equal(0, r.ChunksRemoved);
        using (var d = CowDisk.Open(new() { CasPath = t.Cas, DiskSize = 8 * CS, StatePath = t["vm.state"] }))
        {
            var back = new byte[4 * CS];
            d.Read(0, back);
            Assert.Equal(data, back);
            // The new holder of the state file took over: one registration, alive.
            Assert.True(Assert.Single(StoreRegistrations.Read(t.Cas)).IsAlive);
        }

        File.Delete(t["vm.state"]);
        var gone = Assert.Single(StoreRegistrations.Read(t.Cas));
        Assert.False(gone.IsRoot);
        Assert.Equal(4, GarbageCollector.Collect(new() { CasPath = t.Cas, GracePeriod = TimeSpan.Zero }).ChunksRemoved);
        Assert.True(StoreRegistrations.RemoveEnded(gone));
        Assert.Empty(StoreRegistrations.Read(t.Cas));
    }

    [Fact]
    public void A_live_registration_cannot_be_removed_and_a_broken_lease_reads_as_ended()
    {
        using var t = new TempDir();
        using var writer = new FileChunkStore(t.Cas, new FileChunkStoreOptions { Holder = new StoreHolder("writer") });
        var live = Assert.Single(StoreRegistrations.Read(t.Cas));
        Assert.False(StoreRegistrations.RemoveEnded(live));
        File.WriteAllText(Path.Combine(t.Cas, StoreLease.FolderName, "garbage" + ".lease"), "{ not json");
        var regs = StoreRegistrations.Read(t.Cas);
        Assert.Equal(2, regs.Count);
        var broken = Assert.Single(regs, r => !r.IsAlive);
        Assert.Equal("unknown", broken.Kind);
        Assert.False(broken.IsRoot);
    }

    [Fact]
    public void A_restarted_log_holds_what_the_holder_relies_on_and_what_it_logs_after()
    {
        using var t = new TempDir();
        using var writer = new FileChunkStore(t.Cas, new FileChunkStoreOptions { Holder = new StoreHolder("writer") });
        var names = Enumerable.Range(0, 10).Select(i => ChunkHasher.Hash(TempDir.Pattern(CS, 100 + i))).ToList();
        writer.Lease!.Intend(names);
        Assert.Equal(10, writer.LoggedNames);
        writer.RestartLog([names[3]]);
        writer.Lease.Intend([names[7]]);
        Assert.Equal(2, writer.LoggedNames);
        var logged = File.ReadAllBytes(writer.Lease.RefsPath).Chunk(ChunkHash.Size).Select(b => ChunkHash.FromBytes(b)).ToList();
        Assert.Equal([names[3], names[7]], logged);
        Assert.Empty(Directory.GetFiles(Path.Combine(t.Cas, StoreLease.FolderName), ".tmp-*"));
    }

    [Fact]
    public void A_collector_that_read_a_log_before_it_restarted_reads_the_new_one_from_its_start()
    {
        using var t = new TempDir();
        var orphan = OldOrphan(t, 9);
        using var writer = new FileChunkStore(t.Cas, new FileChunkStoreOptions { Holder = new StoreHolder("writer") });
        // A long log, read by the collector when it plans: it then reads on from that offset.
        writer.Lease!.Intend(Enumerable.Range(0, 100).Select(i => ChunkHasher.Hash(TempDir.Pattern(64, i))).ToList());
        var r = GarbageCollector.Collect(new()
        {
            CasPath = t.Cas,
            GracePeriod = TimeSpan.Zero,
            AfterSetAside = batch =>
            {
                Assert.Contains(orphan, batch);
                // The writer relies on the chunk, then restarts its log: the new log (one name) is
                // shorter than what the collector read of the old one.
                writer.Lease.Intend([orphan]);
                writer.RestartLog([orphan]);
            },
        });
        Assert.Equal(0, r.ChunksRemoved);
        Assert.True(IntactChunk(t, orphan));
    }

    [Fact]
    public void A_running_disk_lets_other_processes_collect_the_chunks_it_overwrote()
    {
        using var t = new TempDir();
        File.WriteAllBytes(t["base.img"], new byte[4 * CS]);
        using var d = CowDisk.Open(new() { BaseImagePath = t["base.img"], CasPath = t.Cas });
        d.LogRestartMinimum = 16;
        byte[] last = [];
        for (int i = 0; i < 200; i++)
        {
            last = TempDir.Pattern(CS, 1000 + i);
            d.Write(0, last, WriteFlags.None);
            d.Flush();
        }
        var log = Assert.Single(Directory.GetFiles(Path.Combine(t.Cas, StoreLease.FolderName), "*.refs"));
        Assert.InRange(new FileInfo(log).Length, ChunkHash.Size, 40 * ChunkHash.Size);

        // A collector that knows nothing of the disk but its registration (another process).
        var r = GarbageCollector.Collect(new() { CasPath = t.Cas, GracePeriod = TimeSpan.Zero });
        Assert.InRange(r.ChunksRemoved, 160, 199);
        var back = new byte[CS];
        d.Read(0, back);
        Assert.Equal(last, back);
        Assert.True(IntactChunk(t, ChunkHasher.Hash(last)));
    }
}
