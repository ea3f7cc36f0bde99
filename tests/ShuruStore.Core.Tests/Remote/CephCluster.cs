using System.Diagnostics;
using ShuruStore.Core.Remote;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>
/// The real one-node Ceph cluster of tools/ceph/cluster.sh: started (installed first if need be)
/// once for the collection, its S3 settings read from <c>cluster.sh env</c> and also put into
/// this process's environment. It is left running afterwards (starting is then a no-op for the
/// next run; <c>cluster.sh stop</c> removes it). A cluster that cannot start fails every test of
/// the collection: nothing here is skipped or imitated.
/// </summary>
public sealed class CephCluster
{
    public CephCluster()
    {
        Script = FindScript();
        var start = Run("start", TimeSpan.FromMinutes(15));
        if (start.ExitCode != 0) throw new InvalidOperationException($"tools/ceph/cluster.sh start failed: {start}");
        var env = Run("env", TimeSpan.FromSeconds(30));
        if (env.ExitCode != 0) throw new InvalidOperationException($"tools/ceph/cluster.sh env failed: {env}");
        foreach (var line in env.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith("export ", StringComparison.Ordinal)) continue;
            var eq = line.IndexOf('=');
            Environment[line[7..eq]] = line[(eq + 1)..];
        }
        foreach (var name in new[] { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_S3", "SHURU_TEST_BUCKET",
                     "SHURU_TEST_ENDPOINT_TLS", "SHURU_TEST_CA_BUNDLE" })
        {
            if (!Environment.ContainsKey(name)) throw new InvalidOperationException($"cluster.sh env printed no {name}: {env}");
            System.Environment.SetEnvironmentVariable(name, Environment[name]);
        }
        // The AWS SDK trusts the CAs of this bundle (the system's plus the cluster's self-signed one).
        System.Environment.SetEnvironmentVariable("AWS_CA_BUNDLE", Environment["SHURU_TEST_CA_BUNDLE"]);
    }

    public string Script { get; }

    /// <summary>The variables <c>cluster.sh env</c> exports.</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

    public string Bucket => Environment["SHURU_TEST_BUCKET"];
    public string AccessKey => Environment["AWS_ACCESS_KEY_ID"];
    public string SecretKey => Environment["AWS_SECRET_ACCESS_KEY"];
    public Uri Endpoint => new(Environment["AWS_ENDPOINT_URL_S3"]);
    /// <summary>The same radosgw over https (a self-signed certificate for 127.0.0.1).</summary>
    public string TlsEndpoint => Environment["SHURU_TEST_ENDPOINT_TLS"];

    /// <summary>Settings resolved from the cluster's variables only (not the process environment
    /// nor a profile), optionally with other credentials or endpoint.</summary>
    public S3ClientSettings Settings(S3Credentials? credentials = null, string? endpoint = null) =>
        S3ClientSettings.Resolve(endpoint: endpoint, credentials: credentials,
            environment: name => Environment.TryGetValue(name, out var v) ? v : null);

    /// <summary>A fresh prefix in the test bucket, so tests never see each other's objects.</summary>
    public S3Location NewLocation(string what) =>
        S3Location.Parse($"s3://{Bucket}/tests/{what}-{Guid.NewGuid():N}");

    /// <summary>Runs a verb of cluster.sh and fails the test when it fails.</summary>
    public void MustRun(string verb)
    {
        var r = Run(verb, TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, $"cluster.sh {verb} failed: {r}");
    }

    internal Nbd.ExternalTool.Result Run(string verb, TimeSpan timeout) =>
        Nbd.ExternalTool.Run("/bin/bash", [Script, verb], timeout);

    private static string FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tools", "ceph", "cluster.sh");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("tools/ceph/cluster.sh not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>Every test that uses the cluster is in this collection: they run one at a time,
/// because some of them stop or pause radosgw.</summary>
[CollectionDefinition("ceph")]
public sealed class CephCollection : ICollectionFixture<CephCluster>;

/// <summary>Time bounds of the failure tests.</summary>
internal static class Bound
{
    /// <summary>How much later than its deadline a call may end on this busy 2-core machine.</summary>
    public static readonly TimeSpan Slack = TimeSpan.FromSeconds(3);

    /// <summary>Asserts the kind of a failure, showing its message when it is another.</summary>
    public static void Kind(ShuruErrorKind expected, ShuruStoreException e) =>
        Assert.True(e.Kind == expected, $"expected {expected}, got {e.Kind}: {e.Message}");

    /// <summary>Asserts that a failure's message contains a text, showing the message when not.</summary>
    public static void Says(string text, Exception e) =>
        Assert.True(e.Message.Contains(text, StringComparison.Ordinal), $"expected '{text}' in: {e.Message}");

    public static async Task<(T Exception, TimeSpan Elapsed)> ThrowsWithin<T>(TimeSpan bound, Func<Task> call) where T : Exception
    {
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<T>(call);
        sw.Stop();
        Assert.True(sw.Elapsed <= bound + Slack, $"took {sw.Elapsed.TotalSeconds:0.0} s, bound {bound.TotalSeconds:0.0} s + {Slack.TotalSeconds} s slack: {e.Message}");
        return (e, sw.Elapsed);
    }
}
