// The phases of bench/remote/raw_rate.py, through ShuruStore.Core's S3ObjectStore instead of
// boto3, with the same JSON output, so the two can be compared line by line.
//
//   eval "$(tools/ceph/cluster.sh env)"
//   dotnet run -c Release --project bench/remote/ObjectStoreBench -- [--threads 32] [--reps 3]
//       [--small-count 1024] [--large-count 64] [--range-count 1024] [--latency-count 200]
//       [--warm-rounds 1] [--max-concurrency 64] [--out FILE] [--location s3://BUCKET/PREFIX] [--phases get-4m,range-1m]
//
// --threads requests are kept in flight by that many workers; --max-concurrency is the store's
// own limit (ObjectStoreOptions.MaxConcurrency). Objects go under a fresh prefix and are deleted.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShuruStore.Core.Remote;

const int KiB = 1024, MiB = 1024 * KiB;
var opts = ParseArgs(args);
int threads = int.Parse(opts.GetValueOrDefault("threads", "32"));
int reps = int.Parse(opts.GetValueOrDefault("reps", "3"));
// Unrecorded rounds of every phase first: the JIT's tiering compiles the hot paths again in the
// background during the first thousands of calls, and that CPU belongs to start-up, not to the
// steady state a long-running server is in.
int warmRounds = int.Parse(opts.GetValueOrDefault("warm-rounds", "1"));
int smallCount = int.Parse(opts.GetValueOrDefault("small-count", "1024"));
int largeCount = int.Parse(opts.GetValueOrDefault("large-count", "64"));
int rangeCount = int.Parse(opts.GetValueOrDefault("range-count", "1024"));
int latencyCount = int.Parse(opts.GetValueOrDefault("latency-count", "200"));
int maxConcurrency = int.Parse(opts.GetValueOrDefault("max-concurrency", "64"));
if (opts.TryGetValue("min-threads", out var minThreads)) ThreadPool.SetMinThreads(int.Parse(minThreads), int.Parse(minThreads));
var bucket = Environment.GetEnvironmentVariable("SHURU_TEST_BUCKET") ?? "shurustore-test";
var root = S3Location.Parse(opts.GetValueOrDefault("location", $"s3://{bucket}/bench/net-{Guid.NewGuid().ToString("N")[..12]}"));

using var store = S3ObjectStore.FromEnvironment(root, ObjectStoreOptions.Default with { MaxConcurrency = maxConcurrency });
var small = RandomNumberGenerator.GetBytes(64 * KiB);
var large = RandomNumberGenerator.GetBytes(4 * MiB);
var smallKeys = Enumerable.Range(0, smallCount).Select(i => $"s/{i:D6}").ToArray();
var largeKeys = Enumerable.Range(0, largeCount).Select(i => $"l/{i:D6}").ToArray();
var rng = new Random(1);
var results = new List<JsonObject>();

// Warm-up, not part of any phase: the SDK's start-up and the JIT's first tiers would otherwise
// be charged to the first phases (a server runs warm).
await store.PutAsync("warm", small);
await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
{
    var b = new byte[64 * KiB];
    for (int i = 0; i < 40; i++)
    {
        await store.PutAsync("warm", small);
        await store.GetAsync("warm", b);
        await store.GetRangeAsync("warm", 4096, b.AsMemory(0, 4096));
    }
}));

try
{
    for (int rep = 1 - warmRounds; rep <= reps; rep++)
    {
        var phases = new (string Name, int Count, int Size, Func<int, byte[], Task> Run)[]
        {
            ("put-64k", smallCount, 64 * KiB, (i, _) => store.PutAsync(smallKeys[i], small)),
            ("get-64k", smallCount, 64 * KiB, async (i, buf) => Expect(await store.GetAsync(smallKeys[i], buf.AsMemory(0, 64 * KiB)), 64 * KiB)),
            ("put-4m", largeCount, 4 * MiB, (i, _) => store.PutAsync(largeKeys[i], large)),
            ("get-4m", largeCount, 4 * MiB, async (i, buf) => Expect(await store.GetAsync(largeKeys[i], buf), 4 * MiB)),
            ("range-64k", rangeCount, 64 * KiB, async (i, buf) =>
                Expect(await store.GetRangeAsync(largeKeys[i % largeCount], Next(64) * 64L * KiB, buf.AsMemory(0, 64 * KiB)), 64 * KiB)),
            ("range-1m", rangeCount / 4, MiB, async (i, buf) =>
                Expect(await store.GetRangeAsync(largeKeys[i % largeCount], Next(4) * (long)MiB, buf.AsMemory(0, MiB)), MiB)),
        };
        var wanted = opts.TryGetValue("phases", out var list) ? new HashSet<string>(list.Split(',')) : null;
        if (wanted is not null)
        {
            if (wanted.Overlaps(["get-64k", "latency-64k"])) wanted.Add("put-64k");
            if (wanted.Overlaps(["get-4m", "range-64k", "range-1m"])) wanted.Add("put-4m");
        }
        foreach (var (name, count, size, run) in phases)
        {
            if (wanted is not null && !wanted.Contains(name)) continue;
            var (seconds, latencies) = await RunPhase(count, threads, run);
            var r = Summarize(name, seconds, latencies, size);
            r["rep"] = rep;
            if (rep > 0) results.Add(r);
            Console.Error.WriteLine(r.ToJsonString());
        }
        if (wanted is not null && !wanted.Overlaps(["latency-64k", "latency-put-64k"])) continue;
        var lat = new List<double>();
        var buffer = new byte[64 * KiB];
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < latencyCount; i++)
        {
            var sw = Stopwatch.StartNew();
            Expect(await store.GetAsync(smallKeys[i % smallCount], buffer), 64 * KiB);
            lat.Add(sw.Elapsed.TotalSeconds);
        }
        Cpu.Last = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        var lr = Summarize("latency-64k", total.Elapsed.TotalSeconds, lat, 64 * KiB);
        lr["rep"] = rep;
        if (rep > 0) results.Add(lr);
        Console.Error.WriteLine(lr.ToJsonString());
        lat.Clear();
        cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        total.Restart();
        for (int i = 0; i < latencyCount; i++)
        {
            var sw = Stopwatch.StartNew();
            await store.PutAsync(smallKeys[i % smallCount], small);
            lat.Add(sw.Elapsed.TotalSeconds);
        }
        Cpu.Last = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        lr = Summarize("latency-put-64k", total.Elapsed.TotalSeconds, lat, 64 * KiB);
        lr["rep"] = rep;
        if (rep > 0) results.Add(lr);
        Console.Error.WriteLine(lr.ToJsonString());
    }
}
finally
{
    await store.DeleteAsync([.. smallKeys, .. largeKeys, "warm"]);
}

var median = new JsonObject();
foreach (var name in results.Select(r => (string)r["phase"]!).Distinct())
{
    var rows = results.Where(r => (string)r["phase"]! == name).ToList();
    median[name] = new JsonObject
    {
        ["mib_per_s"] = Median(rows.Select(r => (double)r["mib_per_s"]!)),
        ["objects_per_s"] = Median(rows.Select(r => (double)r["objects_per_s"]!)),
        ["latency_ms_p50"] = Median(rows.Select(r => (double)r["latency_ms_p50"]!)),
        ["latency_ms_p99"] = Median(rows.Select(r => (double)r["latency_ms_p99"]!)),
    };
}
var report = new JsonObject
{
    ["client"] = "ShuruStore S3ObjectStore (AWSSDK.S3 " + System.Reflection.CustomAttributeExtensions
        .GetCustomAttribute<System.Reflection.AssemblyFileVersionAttribute>(typeof(Amazon.S3.AmazonS3Client).Assembly)?.Version + ")",
    ["loadavg_at_end"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "",
    ["endpoint"] = store.Endpoint,
    ["threads"] = threads,
    ["max_concurrency"] = maxConcurrency,
    ["reps"] = reps,
    ["median"] = median,
    ["runs"] = new JsonArray(results.Select(r => (JsonNode)r.DeepClone()).ToArray()),
};
var text = report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
Console.WriteLine(text);
if (opts.TryGetValue("out", out var outFile)) File.WriteAllText(outFile, text + "\n");
return 0;

int Next(int n) { lock (rng) return rng.Next(n); }

static void Expect(int got, int expected)
{
    if (got != expected) throw new InvalidOperationException($"read {got} bytes, expected {expected}");
}

// Keeps `workers` requests in flight until `count` have run; each worker has its own buffer.
static async Task<(double Seconds, List<double> Latencies)> RunPhase(int count, int workers, Func<int, byte[], Task> run)
{
    int next = -1;
    var latencies = new double[count];
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var total = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
    {
        var buffer = new byte[4 * 1024 * 1024];
        int i;
        while ((i = Interlocked.Increment(ref next)) < count)
        {
            var sw = Stopwatch.StartNew();
            await run(i, buffer);
            latencies[i] = sw.Elapsed.TotalSeconds;
        }
    })));
    var seconds = total.Elapsed.TotalSeconds;
    Cpu.Last = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
    return (seconds, latencies.ToList());
}

static JsonObject Summarize(string name, double seconds, List<double> latencies, int bytesEach)
{
    var sorted = latencies.Order().ToList();
    double P(double p) => sorted[Math.Clamp((int)Math.Round(p / 100 * (sorted.Count - 1)), 0, sorted.Count - 1)];
    return new JsonObject
    {
        ["phase"] = name,
        ["requests"] = latencies.Count,
        ["bytes_per_request"] = bytesEach,
        ["seconds"] = Math.Round(seconds, 3),
        ["mib_per_s"] = Math.Round(latencies.Count * (double)bytesEach / (1 << 20) / seconds, 1),
        ["objects_per_s"] = Math.Round(latencies.Count / seconds, 1),
        ["latency_ms_p50"] = Math.Round(P(50) * 1000, 2),
        ["latency_ms_p90"] = Math.Round(P(90) * 1000, 2),
        ["latency_ms_p99"] = Math.Round(P(99) * 1000, 2),
        ["cpu_s"] = Math.Round(Cpu.Last, 2),
        ["threadpool_threads"] = ThreadPool.ThreadCount,
    };
}

static double Median(IEnumerable<double> values)
{
    var s = values.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}

static Dictionary<string, string> ParseArgs(string[] args)
{
    var d = new Dictionary<string, string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            throw new ArgumentException($"expected --name value pairs, got '{args[i]}'");
        d[args[i][2..]] = args[++i];
    }
    return d;
}

/// <summary>CPU seconds (all threads) the last phase used.</summary>
static class Cpu
{
    public static double Last;
}
