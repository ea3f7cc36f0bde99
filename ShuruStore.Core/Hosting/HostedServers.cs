namespace ShuruStore.Core.Hosting;

/// <summary>The disks this process serves now: hosting decides what runs beside them (the
/// warm-up pauses while any of their clients is connected; the C heap is trimmed while any is
/// served, see <see cref="NativeHeapTrim"/>).</summary>
internal static class HostedServers
{
    private static readonly object s_lock = new();
    private static readonly HashSet<DiskServer> s_servers = [];

    public static void Add(DiskServer server)
    {
        lock (s_lock)
        {
            if (s_servers.Add(server)) NativeHeapTrim.Process.Start();
        }
    }

    public static void Remove(DiskServer server)
    {
        lock (s_lock)
        {
            if (s_servers.Remove(server)) NativeHeapTrim.Process.Stop();
        }
    }

    /// <summary>Clients connected now to every disk this process serves.</summary>
    public static int ClientConnections
    {
        get { lock (s_lock) return s_servers.Sum(s => s.Server.ConnectionCount); }
    }
}
