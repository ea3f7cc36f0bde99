using System.Diagnostics;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Tests.Storage;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>S3ObjectStore against the real Ceph cluster (radosgw) of tools/ceph/cluster.sh.</summary>
[Collection("ceph")]
public sealed class S3ObjectStoreTests(CephCluster cluster) : IDisposable
{
    private readonly List<S3ObjectStore> _stores = [];

    private S3ObjectStore Store(string what, ObjectStoreOptions? options = null, S3Credentials? credentials = null,
        int listPageSize = S3ObjectStore.MaxBatch, int deleteBatchSize = S3ObjectStore.MaxBatch)
    {
        var s = new S3ObjectStore(cluster.NewLocation(what), cluster.Settings(credentials), options)
        { ListPageSize = listPageSize, DeleteBatchSize = deleteBatchSize };
        _stores.Add(s);
        return s;
    }

    public void Dispose()
    {
        foreach (var s in _stores)
        {
            // Leave nothing behind in the memstore OSD (its objects live in memory).
            try
            {
                var keys = s.ListAllAsync("").ToBlockingEnumerable().Select(o => o.Key).ToList();
                if (keys.Count > 0) s.DeleteAsync(keys).GetAwaiter().GetResult();
            }
            catch (ShuruStoreException) { }
            s.Dispose();
        }
    }

    [Fact]
    public async Task PutThenGetReturnsTheSameBytes()
    {
        var store = Store("roundtrip");
        var small = TempDir.Pattern(65536, 1);
        var large = TempDir.Pattern(4 << 20, 2);
        await store.PutAsync("chunks/a", small);
        await store.PutAsync("packs/b", large);

        var buffer = new byte[4 << 20];
        Assert.Equal(65536, await store.GetAsync("chunks/a", buffer));
        Assert.True(buffer.AsSpan(0, 65536).SequenceEqual(small));
        Assert.Equal(4 << 20, await store.GetAsync("packs/b", buffer));
        Assert.True(buffer.AsSpan().SequenceEqual(large));

        // An empty object and a slice of a larger array (the stream must start at the slice).
        await store.PutAsync("empty", ReadOnlyMemory<byte>.Empty);
        Assert.Equal(0, await store.GetAsync("empty", buffer));
        await store.PutAsync("slice", large.AsMemory(1000, 5000));
        Assert.Equal(5000, await store.GetAsync("slice", buffer));
        Assert.True(buffer.AsSpan(0, 5000).SequenceEqual(large.AsSpan(1000, 5000)));

        // A put replaces the object of the same key.
        await store.PutAsync("chunks/a", large.AsMemory(0, 100));
        Assert.Equal(100, await store.GetAsync("chunks/a", buffer));
    }

    [Fact]
    public async Task RangeGetReadsExactlyTheRange()
    {
        var store = Store("range");
        var pack = TempDir.Pattern(4 << 20, 3);
        await store.PutAsync("pack", pack);

        var chunk = new byte[65536];
        foreach (var offset in new long[] { 0, 65536, 3 * 65536 + 17, (4 << 20) - 65536 })
        {
            Array.Clear(chunk);
            Assert.Equal(65536, await store.GetRangeAsync("pack", offset, chunk));
            Assert.True(chunk.AsSpan().SequenceEqual(pack.AsSpan((int)offset, 65536)), $"range at {offset}");
        }
        var mib = new byte[1 << 20];
        Assert.Equal(1 << 20, await store.GetRangeAsync("pack", 2 << 20, mib));
        Assert.True(mib.AsSpan().SequenceEqual(pack.AsSpan(2 << 20, 1 << 20)));

        // Past the end: what is there, then nothing.
        Assert.Equal(1000, await store.GetRangeAsync("pack", (4 << 20) - 1000, chunk));
        Assert.True(chunk.AsSpan(0, 1000).SequenceEqual(pack.AsSpan((4 << 20) - 1000)));
        Assert.Equal(0, await store.GetRangeAsync("pack", 4 << 20, chunk));
        Assert.Equal(0, await store.GetRangeAsync("pack", 5 << 20, chunk));
    }

    [Fact]
    public async Task WholeGetIntoASmallerBufferFailsAndSaysSo()
    {
        var store = Store("small-buffer");
        await store.PutAsync("x", new byte[1000]);
        var e = await Assert.ThrowsAsync<ShuruStoreException>(() => store.GetAsync("x", new byte[999]));
        Bound.Kind(ShuruErrorKind.RemoteInvalid, e);
        Bound.Says("1000 bytes", e);
    }

    [Fact]
    public async Task HeadTellsLengthOrNullWhenMissing()
    {
        var store = Store("head");
        await store.PutAsync("dir/obj", new byte[12345]);
        var info = await store.HeadAsync("dir/obj");
        Assert.NotNull(info);
        Assert.Equal(("dir/obj", 12345L), (info.Key, info.Length));
        Assert.True(info.LastModified is { } written && Math.Abs((DateTimeOffset.UtcNow - written).TotalMinutes) < 10,
            $"last modified {info.LastModified} is not about now");
        Assert.Null(await store.HeadAsync("dir/none"));
    }

    [Fact]
    public async Task ListReturnsRelativeKeysPageByPage()
    {
        var store = Store("list", listPageSize: 10);
        var keys = Enumerable.Range(0, 25).Select(i => $"chunks/{i:x4}").Append("index/a.idx").Append("chunksx").ToList();
        await Task.WhenAll(keys.Select((k, i) => store.PutAsync(k, new byte[i + 1])));

        var first = await store.ListPageAsync("chunks/", null);
        Assert.Equal(10, first.Objects.Count);
        Assert.NotNull(first.ContinuationToken);

        var all = await store.ListAllAsync("chunks/").ToListAsync();
        Assert.Equal(keys.Where(k => k.StartsWith("chunks/")).Order(StringComparer.Ordinal), all.Select(o => o.Key));
        Assert.Equal(5, all.Single(o => o.Key == "chunks/0004").Length);

        var everything = await store.ListAllAsync("").ToListAsync();
        Assert.Equal(keys.Order(StringComparer.Ordinal), everything.Select(o => o.Key));
        Assert.Empty(await store.ListAllAsync("nothing/").ToListAsync());
    }

    [Fact]
    public async Task DeleteRemovesInBatchesAndIgnoresMissingKeys()
    {
        var store = Store("delete", deleteBatchSize: 10);
        var keys = Enumerable.Range(0, 23).Select(i => $"k/{i}").ToList();
        await Task.WhenAll(keys.Select(k => store.PutAsync(k, new byte[10])));
        await store.PutAsync("keep", new byte[1]);

        await store.DeleteAsync([.. keys, "k/never-existed"]);
        Assert.Equal(["keep"], (await store.ListAllAsync("").ToListAsync()).Select(o => o.Key));
        await store.DeleteAsync([]);
        await store.DeleteAsync(["keep"]);
        Assert.Null(await store.HeadAsync("keep"));
    }

    [Fact]
    public async Task MissingObjectAndMissingBucketAreRemoteObjectMissing()
    {
        var store = Store("missing");
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ShuruStoreException>(() => store.GetAsync("chunks/nope", new byte[10]));
        Bound.Kind(ShuruErrorKind.RemoteObjectMissing, e);
        Assert.Equal($"{store.Location}/chunks/nope", e.Path);
        Bound.Says("NoSuchKey", e);
        e = await Assert.ThrowsAsync<ShuruStoreException>(() => store.GetRangeAsync("chunks/nope", 0, new byte[10]));
        Bound.Kind(ShuruErrorKind.RemoteObjectMissing, e);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), "a missing object is an answer, not retried until the deadline");

        using var noBucket = new S3ObjectStore(S3Location.Parse("s3://shurustore-no-such-bucket/x"), cluster.Settings());
        e = await Assert.ThrowsAsync<ShuruStoreException>(() => noBucket.GetAsync("y", new byte[10]));
        Bound.Kind(ShuruErrorKind.RemoteObjectMissing, e);
        Bound.Says("NoSuchBucket", e);
        e = await Assert.ThrowsAsync<ShuruStoreException>(() => noBucket.PutAsync("y", new byte[10]));
        Bound.Kind(ShuruErrorKind.RemoteObjectMissing, e);
    }

    [Fact]
    public async Task HttpsWorksWithUnsignedPayloadsAndAnUntrustedCertificateIsInvalid()
    {
        using var store = new S3ObjectStore(cluster.NewLocation("https"), cluster.Settings(endpoint: cluster.TlsEndpoint));
        Assert.StartsWith("https://", store.Endpoint);
        var pack = TempDir.Pattern(4 << 20, 9);
        await store.PutAsync("pack", pack);
        await store.PutAsync("small", pack.AsMemory(5, 65536));
        var buffer = new byte[4 << 20];
        Assert.Equal(4 << 20, await store.GetAsync("pack", buffer));
        Assert.True(buffer.AsSpan().SequenceEqual(pack));
        Assert.Equal(65536, await store.GetRangeAsync("pack", 65536, buffer.AsMemory(0, 65536)));
        Assert.True(buffer.AsSpan(0, 65536).SequenceEqual(pack.AsSpan(65536, 65536)));
        Assert.Equal(65536, await store.GetAsync("small", buffer));
        Assert.True(buffer.AsSpan(0, 65536).SequenceEqual(pack.AsSpan(5, 65536)));
        Assert.Equal(["pack", "small"], (await store.ListAllAsync("").ToListAsync()).Select(o => o.Key));
        await store.DeleteAsync(["pack", "small"]);
        Assert.Null(await store.HeadAsync("pack"));

        // The certificate names 127.0.0.1 only: "localhost" does not match it. Not retried.
        var byName = cluster.TlsEndpoint.Replace("127.0.0.1", "localhost");
        using var untrusted = new S3ObjectStore(cluster.NewLocation("https"), cluster.Settings(endpoint: byName));
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ShuruStoreException>(() => untrusted.HeadAsync("x"));
        Bound.Kind(ShuruErrorKind.RemoteInvalid, e);
        Bound.Says("TLS with https://localhost", e);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"a certificate problem is final: {sw.Elapsed}");
    }

    [Fact]
    public async Task ARejectedPutDoesNotBreakTheNextRequestOnItsConnection()
    {
        // radosgw 16 answers a PUT it rejects before reading the body (no such bucket, bad
        // signature) and leaves the body on the keep-alive connection: the next request there
        // is read from the middle of it and answered 400. One connection makes it certain.
        var options = ObjectStoreOptions.Default with { MaxConcurrency = 1 };
        var store = Store("rejected-put", options);
        var data = TempDir.Pattern(65536, 8);
        await store.PutAsync("obj", data);
        using var noBucket = new S3ObjectStore(S3Location.Parse("s3://shurustore-no-such-bucket/x"), cluster.Settings(), options);
        var buffer = new byte[65536];
        for (int i = 0; i < 5; i++)
        {
            var e = await Assert.ThrowsAsync<ShuruStoreException>(() => noBucket.PutAsync("y", data.AsMemory(0, 10)));
            Bound.Kind(ShuruErrorKind.RemoteObjectMissing, e);
            Assert.Equal(65536, await store.GetAsync("obj", buffer));
            Assert.True(buffer.AsSpan().SequenceEqual(data));
            Assert.Equal(65536, (await store.HeadAsync("obj"))?.Length);
        }
    }

    [Fact]
    public async Task WrongCredentialsAreAccessDeniedWithoutTheSecretAnywhere()
    {
        const string wrongSecret = "not-the-secret-5f3c1e9a7b2d4c6e8f0a1b2c";
        foreach (var (accessKey, expectedCode) in new[] { (cluster.AccessKey, "SignatureDoesNotMatch"), ("SHURUUNKNOWNKEY00000", "InvalidAccessKeyId") })
        {
            var credentials = S3Credentials.FromKeys(accessKey, wrongSecret);
            var store = Store("denied", credentials: credentials);
            foreach (Func<Task> call in new Func<Task>[]
            {
                () => store.GetAsync("x", new byte[10]),
                () => store.PutAsync("x", new byte[10]),
                () => store.ListPageAsync("", null),
                () => store.HeadAsync("x"),
            })
            {
                var sw = Stopwatch.StartNew();
                var e = await Assert.ThrowsAsync<ShuruStoreException>(call);
                Bound.Kind(ShuruErrorKind.RemoteAccessDenied, e);
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"denied is final, not retried: {sw.Elapsed}");
                var everything = e.ToString() + e.Path + string.Join("|", e.Data.Values.Cast<object>());
                Assert.DoesNotContain(wrongSecret, everything);
                Assert.DoesNotContain(cluster.SecretKey, everything);
                Assert.DoesNotContain(accessKey, everything);
                if (!e.Message.StartsWith("HEAD")) Assert.Contains(expectedCode, e.Message);
            }
            Assert.DoesNotContain(wrongSecret, store.ToString() + store.Description + credentials + cluster.Settings(credentials));
            Assert.DoesNotContain(accessKey, store.ToString() + store.Description + credentials + cluster.Settings(credentials));
        }
    }

    [Fact]
    public async Task ManyRequestsRunInParallelButNeverMoreThanTheLimit()
    {
        var store = Store("concurrency", ObjectStoreOptions.Default with { MaxConcurrency = 8 });
        var data = TempDir.Pattern(65536, 4);
        await store.PutAsync("obj", data);
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ =>
        {
            var b = new byte[65536];
            await store.GetAsync("obj", b);
            return b.AsSpan().SequenceEqual(data);
        }));
        Assert.All(results, Assert.True);
        Assert.InRange(store.PeakInFlight, 2, 8);
        Assert.Equal(0, store.InFlight);
    }

    [Fact]
    public async Task CancellationEndsACallAtOnce()
    {
        var store = Store("cancel");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.GetAsync("x", new byte[1], cts.Token));
    }

    [Fact]
    public async Task StoppedRadosgwFailsWithinTheDeadlineAndWorksAgainWhenBack()
    {
        var options = new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(4), AttemptTimeout = TimeSpan.FromSeconds(1), ConnectTimeout = TimeSpan.FromSeconds(1) };
        var store = Store("rgw-stop", options);
        var data = TempDir.Pattern(65536, 5);
        await store.PutAsync("obj", data);
        var buffer = new byte[65536];
        cluster.MustRun("rgw-stop");
        try
        {
            var (e, elapsed) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.GetAsync("obj", buffer));
            Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
            Bound.Says("did not answer within 4 s", e);
            Assert.Matches(@"\(([3-9]|\d\d+) attempts", e.Message); // retried with backoff, not given up at the first refusal
            Assert.True(elapsed >= options.Deadline - TimeSpan.FromSeconds(1.5), $"gave up early: {elapsed}");
            (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.PutAsync("other", data));
            Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
        }
        finally
        {
            cluster.MustRun("rgw-start");
        }
        Array.Clear(buffer);
        Assert.Equal(65536, await store.GetAsync("obj", buffer));
        Assert.True(buffer.AsSpan().SequenceEqual(data));
    }

    [Fact]
    public async Task RadosgwComingBackDuringTheRetriesIsSeen()
    {
        var options = new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(30), AttemptTimeout = TimeSpan.FromSeconds(2) };
        var store = Store("rgw-return", options);
        var data = TempDir.Pattern(1000, 6);
        await store.PutAsync("obj", data);
        cluster.MustRun("rgw-stop");
        Task<int> read;
        try
        {
            read = store.GetAsync("obj", new byte[1000]);
            await Task.Delay(1500);
            Assert.False(read.IsCompleted, "the read should still be retrying");
        }
        finally
        {
            cluster.MustRun("rgw-start");
        }
        Assert.Equal(1000, await read);
    }

    [Fact]
    public async Task PausedRadosgwThatAcceptsButNeverAnswersFailsWithinTheDeadline()
    {
        var options = new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(4), AttemptTimeout = TimeSpan.FromSeconds(1.5) };
        var store = Store("rgw-pause", options);
        var data = TempDir.Pattern(65536, 7);
        await store.PutAsync("obj", data);
        cluster.MustRun("rgw-pause");
        try
        {
            var (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.GetAsync("obj", new byte[65536]));
            Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
            Bound.Says("no answer within", e);
        }
        finally
        {
            cluster.MustRun("rgw-resume");
        }
        var buffer = new byte[65536];
        Assert.Equal(65536, await store.GetAsync("obj", buffer));
        Assert.True(buffer.AsSpan().SequenceEqual(data));
    }

    [Fact]
    public async Task AnEndpointThatAcceptsButNeverAnswersFailsWithinTheDeadline()
    {
        using var silent = new SilentListener();
        var options = new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(3), AttemptTimeout = TimeSpan.FromSeconds(1) };
        using var store = new S3ObjectStore(S3Location.Parse($"s3://{cluster.Bucket}/silent"), cluster.Settings(endpoint: silent.Url), options);

        var (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.GetAsync("x", new byte[65536]));
        Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
        Bound.Says("did not answer within 3 s", e);
        Bound.Says("last: no answer within", e);
        Assert.Equal($"s3://{cluster.Bucket}/silent/x", e.Path);
        Assert.True(silent.Accepted >= 2, $"each attempt opens a new connection: {silent.Accepted}");

        // A large body that never gets read: the send stalls once the socket buffers fill.
        (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.PutAsync("y", new byte[16 << 20]));
        Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
        (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.ListPageAsync("", null));
        Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
        Assert.DoesNotContain(cluster.SecretKey, e.ToString());
    }

    [Fact]
    public async Task ARefusedPortFailsWithinTheDeadlineNamingTheEndpoint()
    {
        // A port that was just free: connections are refused at once, so every attempt fails fast
        // and the store retries with backoff until the deadline.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var options = new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(2) };
        using var store = new S3ObjectStore(S3Location.Parse($"s3://{cluster.Bucket}"), cluster.Settings(endpoint: $"http://127.0.0.1:{port}"), options);
        var (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(options.Deadline, () => store.HeadAsync("x"));
        Bound.Kind(ShuruErrorKind.RemoteUnavailable, e);
        Assert.Contains($"127.0.0.1:{port}", e.ToString());
    }
}

/// <summary>A TCP listener on 127.0.0.1 that accepts every connection, reads nothing and never
/// answers: what a hung object store looks like from the client.</summary>
internal sealed class SilentListener : IDisposable
{
    private readonly System.Net.Sockets.TcpListener _listener = new(System.Net.IPAddress.Loopback, 0);
    private readonly List<System.Net.Sockets.TcpClient> _held = [];
    private readonly CancellationTokenSource _stop = new();
    private int _accepted;

    public SilentListener()
    {
        _listener.Start();
        Url = $"http://127.0.0.1:{((System.Net.IPEndPoint)_listener.LocalEndpoint).Port}";
        _ = AcceptLoop();
    }

    public string Url { get; }
    public int Accepted => Volatile.Read(ref _accepted);

    private async Task AcceptLoop()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var c = await _listener.AcceptTcpClientAsync(_stop.Token);
                c.ReceiveBufferSize = 4096;
                lock (_held) _held.Add(c);
                Interlocked.Increment(ref _accepted);
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_held) foreach (var c in _held) c.Dispose();
    }
}
