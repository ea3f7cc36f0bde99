using System.Collections;
using System.Reflection;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Hosting;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>Serving published checkpoints with DiskServer: local checkpoints saved over them, and
/// what the server object shows.</summary>
[Collection("ceph")]
public sealed class RemoteCheckpointTests(CephCluster cluster) : RemoteScratch(cluster)
{
    private const int CS = LocalChain.CS;
    private (CountingObjectStore Store, LocalChain Chain, string Uri) Published(string what, int seed)
    {
        var store = Store(what);
        var chain = LocalChain.Create(Dir(), seed);
        var o = new PublishOptions { IndexPath = chain.TopPath, CasPath = chain.CasPath, Destination = store.Location.ToString(), Name = "cp" };
        var result = CheckpointPublisher.Execute(CheckpointPublisher.Plan(o, store, store.Location), store);
        File.Delete(chain.BasePath);
        return (store, chain, result.Uri);
    }

    [Fact]
    public void ALocalCheckpointOverAPublishedOneBootsThroughTheRemote()
    {
        var (_, chain, uri) = Published("local-over-remote", seed: 41);
        var host = Dir();
        byte[] expected;
        using (var server = DiskServer.Start(new DiskServerOptions { IndexPath = uri, CasPath = host.Cas, SocketPath = host["a.sock"], WarmUpRounds = 0 }))
        {
            Assert.NotNull(server.Remote);
            var disk = server.Disk!;
            var buf = new byte[CS];
            disk.Read(0, buf); // a little fetched, most not
            disk.Write(12L * CS, TempDir.Pattern(CS, 5), WriteFlags.None);
            var cp = server.SaveCheckpoint(host["mine.idx"]);
            Assert.Equal(server.Remote!.LocalIndexPath, cp.ParentPath);
            expected = chain.Expected.ToArray();
            TempDir.Pattern(CS, 5).CopyTo(expected, 12 * CS);
        }

        // Booted later from the local file: the chain reaches the mirror, so the remote tier comes with it.
        using (var server = DiskServer.Start(new DiskServerOptions { IndexPath = host["mine.idx"], CasPath = host.Cas, SocketPath = host["b.sock"], WarmUpRounds = 0 }))
        {
            Assert.NotNull(server.Remote);
            Assert.Equal(uri, server.Remote!.IndexUri);
            Assert.Equal(host["mine.idx"], server.Remote.LocalIndexPath);
            RemoteKit.SameBytes(expected, RemoteKit.ReadAll(server.Disk!));
        }

        // A store that never mirrored anything boots local indexes without the remote tier.
        var plainDir = Dir();
        var plain = LocalChain.Create(plainDir, seed: 44);
        using (var server = DiskServer.Start(new DiskServerOptions { IndexPath = plain.TopPath, CasPath = plain.CasPath, SocketPath = plainDir["c.sock"], WarmUpRounds = 0 }))
            Assert.Null(server.Remote);
    }

    [Fact]
    public void APublishedCheckpointNeedsNoBaseImage()
    {
        var (_, _, uri) = Published("no-base", seed: 42);
        var host = Dir();
        File.WriteAllBytes(host["base.img"], new byte[CS]);
        var e = Assert.Throws<ShuruStoreException>(() => DiskServer.Start(new DiskServerOptions
        {
            IndexPath = uri, CasPath = host.Cas, SocketPath = host["s.sock"], WarmUpRounds = 0, RootfsPath = host["base.img"],
        }));
        Bound.Kind(ShuruErrorKind.InvalidArgument, e);
        Assert.False(File.Exists(host["s.sock"]));
    }

    [Fact]
    public void AMissingPublishedIndexIsIndexNotFound()
    {
        var store = Store("none");
        var host = Dir();
        var e = Assert.Throws<ShuruStoreException>(() => DiskServer.Start(new DiskServerOptions
        {
            IndexPath = RemoteLayout.IndexUri(store.Location, "nothing"), CasPath = host.Cas, SocketPath = host["s.sock"], WarmUpRounds = 0,
        }));
        Bound.Kind(ShuruErrorKind.IndexNotFound, e);
        Bound.Says(RemoteLayout.IndexUri(store.Location, "nothing"), e);
    }

    [Fact]
    public void NothingAServerShowsContainsTheCredentials()
    {
        var (store, _, uri) = Published("secrets", seed: 43);
        var host = Dir();
        using var server = DiskServer.Start(new DiskServerOptions { IndexPath = uri, CasPath = host.Cas, SocketPath = host["s.sock"], WarmUpRounds = 0 });
        server.Disk!.Read(0, new byte[CS]);
        var texts = new List<string>();
        Collect(server, texts, depth: 0, new HashSet<object>(ReferenceEqualityComparer.Instance));
        Assert.True(texts.Count > 20, $"only {texts.Count} values looked at");
        foreach (var t in texts)
        {
            Assert.DoesNotContain(Cluster.SecretKey, t, StringComparison.Ordinal);
            Assert.DoesNotContain(Cluster.AccessKey, t, StringComparison.Ordinal);
        }

        // Nor does a failure: the same store with a wrong secret.
        var wrong = new S3ObjectStore(store.Location, Cluster.Settings(S3Credentials.FromKeys(Cluster.AccessKey, "not-the-secret-" + Cluster.SecretKey[..4])));
        var e = Assert.Throws<ShuruStoreException>(() => RemoteCheckpoint.Open(wrong, store.Location, "cp", Dir().Cas, ownsRemote: true));
        Bound.Kind(ShuruErrorKind.RemoteAccessDenied, e);
        Assert.DoesNotContain("not-the-secret", e.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Cluster.AccessKey, e.ToString(), StringComparison.Ordinal);
    }

    /// <summary>The ToString() of an object and of every public property reachable from it.</summary>
    private static void Collect(object? value, List<string> texts, int depth, HashSet<object> seen)
    {
        if (value is null || depth > 5) return;
        texts.Add(value.ToString() ?? "");
        var type = value.GetType();
        if (type.IsPrimitive || value is string || type.IsEnum || !seen.Add(value)) return;
        if (value is IEnumerable items and not byte[])
        {
            int n = 0;
            foreach (var item in items) { if (n++ > 8) break; Collect(item, texts, depth + 1, seen); }
            return;
        }
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0) continue;
            object? v;
            try { v = p.GetValue(value); }
            catch (TargetInvocationException) { continue; }
            Collect(v, texts, depth + 1, seen);
        }
    }
}
