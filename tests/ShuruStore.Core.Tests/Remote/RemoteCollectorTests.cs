using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>Collection and verification of a remote store on the real cluster.</summary>
[Collection("ceph")]
public sealed class RemoteCollectorTests(CephCluster cluster) : RemoteScratch(cluster)
{
    private static readonly RemoteCollectionOptions Now = new() { GracePeriod = TimeSpan.Zero };

    private static PublishOptions Options(LocalChain chain, S3Location root, string name) =>
        new() { IndexPath = chain.TopPath, CasPath = chain.CasPath, Destination = root.ToString(), Name = name, PackBytes = 256 * 1024, Parallelism = 1 };

    private static void Publish(PublishOptions o, CountingObjectStore store) =>
        CheckpointPublisher.Execute(CheckpointPublisher.Plan(o, store, store.Location), store);

    private static List<string> Keys(IObjectStore store, string folder) =>
        store.ListAllAsync(folder).ToBlockingEnumerable().Select(o => o.Key).ToList();

    /// <summary>A pack no index references: a real pack of one chunk.</summary>
    private static string PutOrphanPack(IObjectStore store, int seed)
    {
        var data = TempDir.Pattern(1000, seed);
        var header = ChunkPack.BuildHeader([new PackEntry(ChunkHasher.Hash(data), data.Length)]);
        string key = RemoteLayout.PackKey(PackId.OfHeader(header));
        store.PutAsync(key, header.Concat(data).ToArray()).GetAwaiter().GetResult();
        return key;
    }

    [Fact]
    public void PublishedIndexesAreRootsAndTheGracePeriodSparesRecentUploads()
    {
        var store = Store("gc");
        var chain = LocalChain.Create(Dir(), seed: 31);
        Publish(Options(chain, store.Location, "kept"), store);
        int published = Keys(store, RemoteLayout.PacksFolder).Count;
        string orphan = PutOrphanPack(store, 1);
        store.PutAsync(RemoteLayout.MapKey("gone"), new byte[100]).GetAwaiter().GetResult(); // a map whose index never came
        store.PutAsync("notes/readme.txt", new byte[10]).GetAwaiter().GetResult();           // not ours: never touched

        var young = RemoteCollector.Plan(store, store.Location, new RemoteCollectionOptions { GracePeriod = TimeSpan.FromHours(1) });
        Assert.Empty(young.Unused);
        Assert.Equal(1, young.PacksSpared);
        Assert.Equal(published, young.PacksReferenced);
        Assert.Equal(3, young.Indexes); // the base pieces, the parent, the checkpoint

        var plan = RemoteCollector.Plan(store, store.Location, Now);
        Assert.Equal(new[] { orphan, RemoteLayout.MapKey("gone") }.Order(), plan.Unused.Select(u => u.Key).Order());
        var result = RemoteCollector.Sweep(plan, store, Now);
        Assert.Equal(2, result.ObjectsRemoved);
        Assert.DoesNotContain(orphan, Keys(store, RemoteLayout.PacksFolder));
        Assert.Equal(published, Keys(store, RemoteLayout.PacksFolder).Count);
        Assert.Contains("notes/readme.txt", Keys(store, ""));

        // What is left is complete: verified and booted on an empty host.
        File.Delete(chain.BasePath);
        var verify = RemoteVerifier.Verify(store, store.Location);
        Assert.True(verify.IsHealthy);
        var (r, d) = RemoteKit.Boot(store, store.Location, "kept", Dir().Cas);
        using (r)
        using (d)
            RemoteKit.SameBytes(chain.Expected, RemoteKit.ReadAll(d));
    }

    [Fact]
    public void ProgressIsReportedOnTheCallingThreadAndEndsComplete()
    {
        // The cmdlet turns each report into Write-Progress, which only works on its own thread.
        var store = Store("gc-progress");
        var chain = LocalChain.Create(Dir(), seed: 37);
        Publish(Options(chain, store.Location, "kept"), store);
        for (int i = 0; i < 3; i++) PutOrphanPack(store, 100 + i);
        var reports = new List<(MaintenanceProgress Report, int Thread)>();
        var progress = new SynchronousProgress<MaintenanceProgress>(p => reports.Add((p, Environment.CurrentManagedThreadId)));
        int caller = Environment.CurrentManagedThreadId;

        var plan = RemoteCollector.Plan(store, store.Location, Now, progress);
        var result = RemoteCollector.Sweep(plan, store, Now, null, progress);

        Assert.Equal(3, result.ObjectsRemoved);
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.Equal(caller, r.Thread));
        var last = reports[^1].Report;
        Assert.Equal("Removing", last.Phase);
        Assert.Equal(3, last.Total);
        Assert.Equal(3, last.Done);
        Assert.Contains(reports, r => r.Report.Phase == "Scanning packs" && r.Report.Done == plan.PacksScanned);
    }

    [Fact]
    public void AnUploadInProgressIsNeverCollected()
    {
        var store = Store("gc-upload");
        var chain = LocalChain.Create(Dir(), seed: 32);
        var o = Options(chain, store.Location, "inflight");
        store.BeforePackPut = n => { if (n == 3) throw new ShuruStoreException(ShuruErrorKind.RemoteUnavailable, "cut"); };
        Assert.Throws<ShuruStoreException>(() => Publish(o, store));
        store.BeforePackPut = null;
        Assert.Equal(3, Keys(store, RemoteLayout.PacksFolder).Count);

        // No index references the three packs and they are past the (zero) grace period: the marker keeps them.
        var plan = RemoteCollector.Plan(store, store.Location, Now);
        Assert.Equal(3, plan.PacksProtectedByUploads);
        Assert.Empty(plan.Unused);

        // The upload finishes: nothing is uploaded twice, and the marker is gone.
        int before = store.PackPuts;
        var plan2 = CheckpointPublisher.Plan(o, store, store.Location);
        CheckpointPublisher.Execute(plan2, store);
        Assert.Equal(plan2.PacksToUpload, store.PackPuts - before);
        Assert.Equal(3, plan2.Packs.Count(p => p.Exists));
        Assert.Empty(Keys(store, RemoteLayout.UploadsFolder));
        Assert.Empty(RemoteCollector.Plan(store, store.Location, Now).Unused);
    }

    [Fact]
    public void AnAbandonedUploadIsCollectedAfterTheStaleAge()
    {
        var store = Store("gc-stale");
        var chain = LocalChain.Create(Dir(), seed: 33);
        store.BeforePackPut = n => { if (n == 2) throw new ShuruStoreException(ShuruErrorKind.RemoteUnavailable, "cut"); };
        Assert.Throws<ShuruStoreException>(() => Publish(Options(chain, store.Location, "abandoned"), store));
        store.BeforePackPut = null;

        var options = Now with { StaleUploadAge = TimeSpan.Zero };
        var plan = RemoteCollector.Plan(store, store.Location, options);
        Assert.Equal(0, plan.PacksProtectedByUploads);
        Assert.Contains(plan.Unused, u => u.Key == RemoteLayout.UploadKey("abandoned") && u.Reason == "abandoned upload marker");
        RemoteCollector.Sweep(plan, store, options);
        Assert.Empty(Keys(store, ""));
    }

    [Fact]
    public void APackAnUploadStartsToUseDuringTheSweepIsKept()
    {
        var store = Store("gc-race");
        string orphan = PutOrphanPack(store, 2);
        var plan = RemoteCollector.Plan(store, store.Location, Now);
        Assert.Equal(orphan, Assert.Single(plan.Unused).Key);
        // An upload that relies on the pack writes its marker after the mark, before the sweep.
        var marker = new UploadMarker(["late"], [RemoteLayout.PackOfKey(orphan)!.Value]);
        store.PutAsync(RemoteLayout.UploadKey("late"), marker.ToBytes()).GetAwaiter().GetResult();
        var result = RemoteCollector.Sweep(plan, store, Now);
        Assert.Equal((0L, 1L), (result.ObjectsRemoved, result.ObjectsRescued));
        Assert.Contains(orphan, Keys(store, RemoteLayout.PacksFolder));
    }

    [Fact]
    public void AnIndexWithoutItsMapStopsTheCollection()
    {
        var store = Store("gc-nomap");
        var chain = LocalChain.Create(Dir(), seed: 34);
        Publish(Options(chain, store.Location, "x"), store);
        PutOrphanPack(store, 3);
        store.DeleteAsync([RemoteLayout.MapKey("x")]).GetAwaiter().GetResult();
        var e = Assert.Throws<ShuruStoreException>(() => RemoteCollector.Plan(store, store.Location, Now));
        Bound.Says("nothing was collected", e);
    }

    [Fact]
    public void VerificationFindsDamagedChunksMissingPacksAndMaps()
    {
        var store = Store("verify");
        var chain = LocalChain.Create(Dir(), seed: 35);
        Publish(Options(chain, store.Location, "v"), store);
        var healthy = RemoteVerifier.Verify(store, store.Location);
        Assert.True(healthy.IsHealthy);
        Assert.Equal(3, healthy.IndexesChecked);
        Assert.True(healthy.ChunksChecked > 20);

        var packs = Keys(store, RemoteLayout.PacksFolder);
        var buffer = new byte[8 << 20];
        int n = store.GetAsync(packs[0], buffer).GetAwaiter().GetResult();
        buffer[n - 10] ^= 1; // inside the last chunk of the pack
        store.Inner.PutAsync(packs[0], buffer.AsMemory(0, n)).GetAwaiter().GetResult();
        store.DeleteAsync([packs[1]]).GetAwaiter().GetResult();
        var problems = new List<RemoteProblem>();
        var damaged = RemoteVerifier.Verify(store, store.Location, onProblem: problems.Add);
        Assert.False(damaged.IsHealthy);
        var bad = Assert.Single(problems, p => p.Kind == RemoteProblemKind.ChunkDamaged);
        Assert.Equal(store.Location.Child(packs[0]).ToString(), bad.Uri);
        Assert.NotNull(bad.Hash);
        Assert.Single(problems, p => p.Kind == RemoteProblemKind.PackMissing && p.Uri == store.Location.Child(packs[1]).ToString());

        store.DeleteAsync([RemoteLayout.MapKey("v")]).GetAwaiter().GetResult();
        problems.Clear();
        RemoteVerifier.Verify(store, store.Location, new RemoteVerifyOptions { ReadChunks = false }, problems.Add);
        Assert.Contains(problems, p => p.Kind == RemoteProblemKind.MapMissing && p.Uri == RemoteLayout.IndexUri(store.Location, "v"));
    }
}
