using System.Diagnostics;
using ShuruStore.Core.Hosting;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Tests.Nbd;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>A server booted from a published checkpoint while radosgw goes away: uncached reads
/// fail with EIO within the deadline, everything cached keeps working on the same connection and
/// on new ones, and reads work again once radosgw is back. Through the real NBD server.</summary>
[Collection("ceph")]
public sealed class RemoteOutageTests(CephCluster cluster) : RemoteScratch(cluster)
{
    private const int CS = LocalChain.CS;
    private const ushort Read = 0;
    private const uint Eio = 5;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);
    private (DiskServer Server, LocalChain Chain, TempDir Host) Serve(string what, int seed)
    {
        var store = Store(what);
        var chain = LocalChain.Create(Dir(), seed);
        var o = new PublishOptions { IndexPath = chain.TopPath, CasPath = chain.CasPath, Destination = store.Location.ToString(), Name = "cp", PackBytes = 256 * 1024 };
        CheckpointPublisher.Execute(CheckpointPublisher.Plan(o, store, store.Location), store);
        File.Delete(chain.BasePath);
        var host = Dir();
        var server = DiskServer.Start(new DiskServerOptions
        {
            IndexPath = RemoteLayout.IndexUri(store.Location, "cp"),
            CasPath = host.Cas,
            SocketPath = host["nbd.sock"],
            WarmUpRounds = 0,
            Remote = new RemoteCheckpointOptions
            {
                ObjectStore = new ObjectStoreOptions { Deadline = Deadline, AttemptTimeout = TimeSpan.FromSeconds(2), ConnectTimeout = TimeSpan.FromSeconds(1) },
                Cache = new RemoteChunkStoreOptions { ReadaheadGroups = 0 }, // uncached stays uncached
            },
        });
        return (server, chain, host);
    }

    private static NbdTestClient Connect(TempDir host) => new NbdTestClient(host["nbd.sock"]).Connect(structured: false, meta: false);

    private static byte[] ReadOk(NbdTestClient client, long offset, int length)
    {
        client.SendRequest(Read, (ulong)offset, (uint)length, cookie: 7);
        var r = client.ReadReply(length);
        Assert.True(r.Error == 0, $"read at {offset} failed with error {r.Error}");
        return r.Payload;
    }

    /// <summary>With the store gone: an uncached read and a cached one sent behind it on the same
    /// connection; the cached one is answered first and right, the uncached one with EIO within the
    /// deadline; a new connection reads cached data too.</summary>
    private static void CheckOutage(NbdTestClient client, TempDir host, LocalChain chain)
    {
        var clock = Stopwatch.StartNew();
        client.SendRequest(Read, 40L * CS, 4096, cookie: 1);       // never read: not cached
        client.SendRequest(Read, 2L * CS + 512, 4096, cookie: 2);  // read before: cached
        var first = client.ReadReply(c => c == 2 ? 4096 : 0);
        Assert.Equal(2ul, first.Cookie);
        Assert.Equal(0u, first.Error);
        Assert.True(first.Payload.AsSpan().SequenceEqual(chain.Expected.AsSpan(2 * CS + 512, 4096)));
        var second = client.ReadReply(0);
        clock.Stop();
        Assert.Equal(1ul, second.Cookie);
        Assert.Equal(Eio, second.Error);
        Assert.True(clock.Elapsed <= Deadline + Bound.Slack, $"EIO after {clock.Elapsed.TotalSeconds:0.0} s, deadline {Deadline.TotalSeconds} s");

        using var other = Connect(host);
        Assert.True(ReadOk(other, 3L * CS, 8192).AsSpan().SequenceEqual(chain.Expected.AsSpan(3 * CS, 8192)));
    }

    [Fact]
    public void RadosgwStoppedMidUseGivesEioInTimeAndReadsRecover()
    {
        var (server, chain, host) = Serve("stopped", seed: 21);
        using (server)
        {
            using var client = Connect(host);
            for (int c = 0; c < 6; c++) ReadOk(client, (long)c * CS, CS); // cached now
            Cluster.MustRun("rgw-stop");
            try
            {
                CheckOutage(client, host, chain);
            }
            finally
            {
                Cluster.MustRun("rgw-start");
            }
            // Back: the same read on the same connection works.
            Assert.True(ReadOk(client, 40L * CS, 4096).AsSpan().SequenceEqual(chain.Expected.AsSpan(40 * CS, 4096)));
            Assert.True(server.Remote!.Store.Statistics.FetchFailures > 0);
        }
    }

    [Fact]
    public void RadosgwPausedGivesEioInTimeAndReadsRecover()
    {
        var (server, chain, host) = Serve("paused", seed: 22);
        using (server)
        {
            using var client = Connect(host);
            for (int c = 0; c < 6; c++) ReadOk(client, (long)c * CS, CS);
            Cluster.MustRun("rgw-pause");
            try
            {
                CheckOutage(client, host, chain);
            }
            finally
            {
                Cluster.MustRun("rgw-resume");
            }
            Assert.True(ReadOk(client, 40L * CS, 4096).AsSpan().SequenceEqual(chain.Expected.AsSpan(40 * CS, 4096)));
        }
    }

    [Fact]
    public void ACachedCheckpointBootsWhileTheStoreIsAway()
    {
        var (server, chain, host) = Serve("offline", seed: 23);
        string uri = server.Options.IndexPath!;
        using (server)
        {
            using var client = Connect(host);
            ReadOk(client, 0, CS);
        }
        Cluster.MustRun("rgw-stop");
        try
        {
            // The mirror is complete: a restart needs nothing from the store for what is cached.
            using var again = DiskServer.Start(new DiskServerOptions
            {
                IndexPath = uri, CasPath = host.Cas, SocketPath = host["nbd2.sock"], WarmUpRounds = 0,
                Remote = new RemoteCheckpointOptions { ObjectStore = new ObjectStoreOptions { Deadline = Deadline } },
            });
            using var client = new NbdTestClient(host["nbd2.sock"]).Connect(structured: false, meta: false);
            Assert.True(ReadOk(client, 100, 1000).AsSpan().SequenceEqual(chain.Expected.AsSpan(100, 1000)));
        }
        finally
        {
            Cluster.MustRun("rgw-start");
        }
    }
}
