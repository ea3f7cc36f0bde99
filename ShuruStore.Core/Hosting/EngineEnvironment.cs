using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Hosting;

/// <summary>
/// The environment variables that tune the engine, read in this one place: they are the
/// outermost layer that fills the defaults of <see cref="DiskServerOptions"/>. Nothing below the
/// hosting layer reads the environment; everything there takes an option.
/// <list type="bullet">
/// <item><c>SHURUSTORE_WARMUP</c>: <c>0</c> turns the process's warm-up off; a positive number sets its rounds.</item>
/// <item><c>SHURUSTORE_DIRECT_WRITES</c>: <c>1</c> sends a flat image's large aligned writes to the disk directly (O_DIRECT); unset or anything else: every write goes through the page cache.</item>
/// <item><c>SHURUSTORE_DURABILITY</c>: <c>fsync</c> makes chunk stores durable by per-file fsyncs,
/// <c>syncfs</c> by one syncfs per flush; unset: the platform's default.</item>
/// </list>
/// </summary>
public static class EngineEnvironment
{
    /// <summary>Warm-up rounds: 0 is off.</summary>
    public static int WarmUpRounds =>
        Environment.GetEnvironmentVariable("SHURUSTORE_WARMUP") switch
        {
            "0" => 0,
            { } v when int.TryParse(v, out int r) && r > 0 => r,
            _ => ProcessWarmUp.DefaultRounds,
        };

    /// <summary>Whether a flat image's large aligned writes go to the disk directly (opt-in: on a
    /// quiet machine the page cache wins, and what a guest wrote it reads back from memory).</summary>
    public static bool DirectWrites => Environment.GetEnvironmentVariable("SHURUSTORE_DIRECT_WRITES") == "1";

    /// <summary>How chunk stores make published chunks durable.</summary>
    public static ChunkDurabilityMode Durability =>
        Environment.GetEnvironmentVariable("SHURUSTORE_DURABILITY")?.Trim().ToLowerInvariant() switch
        {
            "fsync" => ChunkDurabilityMode.FsyncEach,
            "syncfs" => ChunkDurabilityMode.SyncFs,
            _ => ChunkDurabilityMode.Auto,
        };
}
