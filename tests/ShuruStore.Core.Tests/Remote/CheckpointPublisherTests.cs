using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>Publishing checkpoints to the real cluster and booting them on empty hosts.</summary>
[Collection("ceph")]
public sealed class CheckpointPublisherTests(CephCluster cluster) : RemoteScratch(cluster)
{
    private static PublishOptions Options(string index, string cas, S3Location root, string? name = null) =>
        new() { IndexPath = index, CasPath = cas, Destination = root.ToString(), Name = name, PackBytes = 256 * 1024, Parallelism = 4 };

    private static PublishResult Publish(PublishOptions o, CountingObjectStore store) =>
        CheckpointPublisher.Execute(CheckpointPublisher.Plan(o, store, store.Location), store);

    [Fact]
    public void PublishOnOneHostBootOnEmptyHostsWriteAndPublishAgain()
    {
        var remote = Store("hosts");
        var hostA = Dir();
        var chain = LocalChain.Create(hostA);

        var first = Publish(Options(chain.TopPath, chain.CasPath, remote.Location, "golden"), remote);
        Assert.Equal(RemoteLayout.IndexUri(remote.Location, "golden"), first.Uri);
        Assert.Equal(3, first.IndexesPublished); // the base pieces, the parent, the top
        Assert.True(first.PacksUploaded > 1, $"{first.PacksUploaded} packs");
        // Host A's base image is gone: host B has nothing but the URI.
        File.Delete(chain.BasePath);

        var hostB = Dir();
        byte[] afterWrite;
        string savedOnB = hostB["child.idx"];
        var (remoteB, diskB) = RemoteKit.Boot(remote, remote.Location, "golden", hostB.Cas);
        using (remoteB)
        using (diskB)
        {
            Assert.Equal(0, hostB.ChunkFileCount);
            RemoteKit.SameBytes(chain.Expected, RemoteKit.ReadAll(diskB));
            // The chain is mirrored as normal local indexes: base pieces at the bottom, no base file.
            var mirror = IndexChain.Load(remoteB.LocalIndexPath);
            Assert.Equal(2, mirror.Parents.Count);
            Assert.Null(mirror.BaseImagePath);
            Assert.True(remoteB.Store.Statistics.ChunksFetched > 0);

            // Writes on B are local copy-on-write; a checkpoint names the mirror as its parent.
            diskB.Write(5L * LocalChain.CS + 3, TempDir.Pattern(70000, 99), WriteFlags.None);
            diskB.Trim(11L * LocalChain.CS, LocalChain.CS, WriteFlags.None);
            var cp = diskB.SaveCheckpoint(savedOnB);
            Assert.Equal(remoteB.LocalIndexPath, cp.ParentPath);
            afterWrite = RemoteKit.ReadAll(diskB);
        }

        // Publishing B's checkpoint uploads only what B added; its parent is the published URI.
        int putsBefore = remote.PackPuts;
        var second = Publish(Options(savedOnB, hostB.Cas, remote.Location, "child"), remote);
        Assert.Equal(1, second.IndexesPublished);
        Assert.Equal(1, remote.PackPuts - putsBefore);
        Assert.Equal(2, second.ChunksUploaded); // the two chunks the 70000-byte write touched

        var hostC = Dir();
        var (remoteC, diskC) = RemoteKit.Boot(remote, remote.Location, "child", hostC.Cas);
        using (remoteC)
        using (diskC)
        {
            RemoteKit.SameBytes(afterWrite, RemoteKit.ReadAll(diskC));
            Assert.Equal(RemoteLayout.IndexUri(remote.Location, "child"), remoteC.IndexUri);
        }
    }

    [Fact]
    public void ASecondPublishUploadsNothing()
    {
        var remote = Store("again");
        var host = Dir();
        var chain = LocalChain.Create(host, seed: 2);
        var o = Options(chain.TopPath, chain.CasPath, remote.Location);
        var first = Publish(o, remote);
        Assert.False(first.AlreadyPublished);
        int puts = remote.Puts;

        var plan = CheckpointPublisher.Plan(o, remote, remote.Location);
        Assert.True(plan.AlreadyPublished);
        Assert.Equal(0, plan.PacksToUpload);
        var second = CheckpointPublisher.Execute(plan, remote);
        Assert.True(second.AlreadyPublished);
        Assert.Equal(0, second.BytesUploaded);
        Assert.Equal(puts, remote.Puts);
        Assert.Equal(first.Uri, second.Uri);

        // Without the local record of the first publish (another store path, say) the plan still
        // finds every index published with the same bytes.
        Directory.Delete(Path.Combine(chain.CasPath, IndexOrigins.RemoteFolder), recursive: true);
        var third = Publish(o, remote);
        Assert.True(third.AlreadyPublished);
        Assert.Equal(puts, remote.Puts);
    }

    [Fact]
    public void APlanWritesNothing()
    {
        var remote = Store("whatif");
        var host = Dir();
        var chain = LocalChain.Create(host, seed: 3);
        var plan = CheckpointPublisher.Plan(Options(chain.TopPath, chain.CasPath, remote.Location, "x"), remote, remote.Location);
        Assert.Equal(3, plan.Members.Count);
        Assert.All(plan.Members, m => Assert.Equal(PublishAction.Upload, m.Action));
        Assert.True(plan.PacksToUpload > 1);
        Assert.True(plan.BytesToUpload > plan.Members.Sum(m => m.Bytes));
        Assert.Equal(0, remote.Puts);
        Assert.Empty(remote.ListAllAsync("").ToBlockingEnumerable());
    }

    [Fact]
    public void AnInterruptedPublishFinishesWhenRunAgain()
    {
        var remote = Store("resume");
        var host = Dir();
        var chain = LocalChain.Create(host, seed: 4);
        var o = Options(chain.TopPath, chain.CasPath, remote.Location, "resumed") with { Parallelism = 1 };
        int total = CheckpointPublisher.Plan(o, remote, remote.Location).PacksToUpload;
        Assert.True(total >= 4, $"{total} packs");

        // The third pack upload fails: two packs and the marker are there, no map, no index.
        remote.BeforePackPut = n => { if (n == 2) throw new ShuruStoreException(ShuruErrorKind.RemoteUnavailable, "cut"); };
        var e = Assert.Throws<ShuruStoreException>(() => Publish(o, remote));
        Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
        remote.BeforePackPut = null;
        var keys = remote.ListAllAsync("").ToBlockingEnumerable().Select(x => x.Key).ToList();
        Assert.Contains(RemoteLayout.UploadKey("resumed"), keys);
        Assert.DoesNotContain(keys, k => k.StartsWith(RemoteLayout.IndexesFolder, StringComparison.Ordinal));
        Assert.Equal(2, keys.Count(k => k.StartsWith(RemoteLayout.PacksFolder, StringComparison.Ordinal)));

        // Run again: only the missing packs go up, then maps and indexes; the marker is gone.
        var plan = CheckpointPublisher.Plan(o, remote, remote.Location);
        Assert.Equal(total - 2, plan.PacksToUpload);
        int before = remote.PackPuts;
        var done = CheckpointPublisher.Execute(plan, remote);
        Assert.Equal(total - 2, remote.PackPuts - before);
        Assert.Equal(2, done.PacksReused);
        keys = remote.ListAllAsync("").ToBlockingEnumerable().Select(x => x.Key).ToList();
        Assert.DoesNotContain(RemoteLayout.UploadKey("resumed"), keys);

        File.Delete(chain.BasePath);
        var empty = Dir();
        var (r, d) = RemoteKit.Boot(remote, remote.Location, "resumed", empty.Cas);
        using (r)
        using (d)
            RemoteKit.SameBytes(chain.Expected, RemoteKit.ReadAll(d));
    }

    [Fact]
    public void APublishedNameNeverTakesOtherContent()
    {
        var remote = Store("immutable");
        var host = Dir();
        var chain = LocalChain.Create(host, seed: 5);
        Publish(Options(chain.TopPath, chain.CasPath, remote.Location, "same"), remote);
        var e = Assert.Throws<ShuruStoreException>(() => Publish(Options(chain.ParentPath, chain.CasPath, remote.Location, "same"), remote));
        Bound.Kind(ShuruErrorKind.InvalidArgument, e);
        Bound.Says("already published with other content", e);
    }

    [Fact]
    public void AChunkMissingLocallyFailsThePlanBeforeAnyUpload()
    {
        var remote = Store("missing");
        var host = Dir();
        var chain = LocalChain.Create(host, seed: 6);
        var victim = ChunkIndexFile.Load(chain.TopPath).Entries[9]!.Value; // written on the host, not a base piece
        File.Delete(Path.Combine(chain.CasPath, "chunks", victim.ToString()));
        var e = Assert.Throws<ShuruStoreException>(() => CheckpointPublisher.Plan(Options(chain.TopPath, chain.CasPath, remote.Location), remote, remote.Location));
        Bound.Kind(ShuruErrorKind.ChunkMissing, e);
        Bound.Says(victim.ToString(), e);
        Assert.Equal(0, remote.Puts);
    }
}
